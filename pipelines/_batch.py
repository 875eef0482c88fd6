"""What the batched per-run stages (``<stage>_batch``) share: one process writes the
per-run artifacts of many runs into one batch folder.

A batch folder holds, for every run that succeeded, exactly the files the per-run
stage writes for it (the same bytes: each batch stage calls its per-run stage's own
writer), plus ``failures.tsv`` (``run``, ``stage``, ``error``: the runs left out under
``on_error="skip"``; only its header otherwise). Its record (``<folder>.prov.json``)
lists the runs written and the runs that failed, and is written last: a folder without
it is not complete.

With ``on_error="fail"`` (the default) the first failing run stops the batch with its
error, which names the run and its file, and no batch folder is left behind. With
``"skip"`` a run whose input is unreadable or corrupt (a truncated NIfTI or EDF, values
that are not numbers) is listed in ``failures.tsv``, whatever it had written is removed,
and the batch goes on (a batch whose runs all fail is an empty folder with its table).
A :class:`~neuroai.errors.ConfigError` (bad parameters) and any error that is not an
input error (a bug) fail the batch under ``"skip"`` too. A run whose input an earlier
batched stage left out (:class:`LeftOut`) is left out under ``"fail"`` too.

Where the runs are computed: :class:`RunResults` sends a batch's runs through
:func:`neuroai.fmri.cohort.map_runs`, one after the other in the batch's process, or on
a Dask scheduler (``--scheduler tcp://host:8786``, else ``DASK_SCHEDULER_ADDRESS``), and
hands the results back in the batch's order; the batch process writes them. Either way
the task reads its files by absolute path (workers run elsewhere) and returns an input
error instead of raising it (:func:`attempt`), so a failed run is handled as above, its
message naming the files as they were given; the results, and so the files written,
are the same bytes.
"""

from __future__ import annotations

import csv
import functools
import inspect
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from neuroai import get_logger
from neuroai.errors import ConfigError, DataError, NeuroaiError

logger = get_logger("stage.batch")

FAILURES = "failures.tsv"
FAILURE_COLUMNS = ("run", "stage", "error")
ON_ERROR = ("fail", "skip")
#: The errors a corrupt or unreadable input raises (the readers' own, and ours); any
#: other exception is a bug and fails the batch under "skip" too.
INPUT_ERRORS = (NeuroaiError, OSError, EOFError, ValueError)


class LeftOut(DataError):
    """A run's input was not made because the run failed in an earlier batched stage
    (``on_error="skip"`` there): the run is left out here too, whatever ``on_error``."""


def require_input(path: str | Path, suffix: str) -> None:
    """Raise :class:`LeftOut` when ``path`` (a run's ``<key><suffix>`` input) is missing
    because its batch folder lists the run in its ``failures.tsv``."""
    path = Path(path)
    if path.exists() or not path.name.endswith(suffix):
        return
    key = path.name[: -len(suffix)]
    for folder in path.parents:
        if folder.name.startswith("batch-"):
            for row in read_failures(folder):
                if row["run"] == key:
                    raise LeftOut(
                        f"{path} was not made: run {key} failed in {row['stage']} and was left "
                        f"out there ({row['error']})."
                    )
            return


def unique_keys(paths: Iterable[str | Path], key_of: Callable[[str | Path], str]) -> dict:
    """Run key -> path, refusing two runs of one batch with the same key."""
    keys: dict[str, str | Path] = {}
    for path in paths:
        key = key_of(path)
        if key in keys:
            raise DataError(
                f"Two runs of the batch are named {key}: {keys[key]} and {path}. Each run "
                "writes files named after its key, so the run keys of a batch must differ."
            )
        keys[key] = path
    return keys


def takes_params_of(per_run: Callable) -> Callable:
    """Give a batch stage's ``run(..., on_error, **params)`` the keyword-only parameters
    of the per-run stage's ``run`` as its signature, so that ``--params`` is checked
    against them (an unknown or misspelled key is refused, naming the valid ones)."""

    def decorate(batch_run: Callable) -> Callable:
        own = inspect.signature(batch_run)
        fixed = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
        names = {p.name for p in fixed}
        shared = [
            p
            for p in inspect.signature(per_run).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in names
        ]
        batch_run.__signature__ = own.replace(parameters=fixed + shared)
        return batch_run

    return decorate


def attempt(task: Callable, item: Any, **options: Any) -> Any:
    """``task(item, **options)``, or the input error it raised, returned: a task that
    fails on a Dask worker then reaches :func:`write_batch` as one that failed here."""
    try:
        return task(item, **options)
    except INPUT_ERRORS as exc:
        return exc


def where_runs(scheduler: str | None) -> str:
    """Where a batch computes its runs: ``scheduler`` (a Dask scheduler address), else
    ``DASK_SCHEDULER_ADDRESS``, else ``"sequential"`` (in this process)."""
    where = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or "sequential"
    logger.info(
        "Computing the runs %s",
        "in this process" if where == "sequential" else f"on the Dask scheduler {where}",
    )
    return where


class RunResults:
    """A batch's runs computed by :func:`neuroai.fmri.cohort.map_runs`, taken in order.

    Parameters
    ----------
    task : callable
        A module-level function (Dask workers import it by name): ``task(item,
        **shared, **options)`` computes one run and returns what the batch writes.
    items : mapping
        Run key -> the task's first argument, in the batch's order; paths in it must be
        absolute (a worker's folder is not this process's).
    scheduler : str
        ``"sequential"`` or a Dask scheduler address (:func:`where_runs`).
    given : mapping
        Run key -> its input as given (a relative path, or the dataset root): a run
        whose input was given relative has this folder taken off the paths its error
        names, as when the run is read from here.
    desc : str
        Label of the progress bar.
    shared : mapping | None
        Arguments common to every run (an atlas), sent to each worker once.
    **options
        More keyword arguments of ``task``.

    Notes
    -----
    The tasks start at the first :meth:`take` (:func:`write_batch` may refuse the batch
    before), and :meth:`close` cancels those not taken.
    """

    def __init__(
        self,
        task: Callable,
        items: Mapping[str, Any],
        *,
        scheduler: str,
        given: Mapping[str, Any],
        desc: str,
        shared: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self._start = functools.partial(
            _map_runs,
            functools.partial(attempt, task),
            items,
            scheduler=scheduler,
            shared=shared,
            desc=desc,
            **options,
        )
        self._given = given
        self._scheduler = scheduler
        self._results: Iterator[tuple[str, Any]] | None = None

    def take(self, key: str) -> Any:
        """Run ``key``'s result (the runs are taken in the order of ``items``).

        Raises
        ------
        Exception
            The input error the run's task returned (:data:`INPUT_ERRORS`), or any other
            error it raised.
        ConfigError
            No Dask scheduler answers at the address.
        RuntimeError
            The scheduler or its workers failed (a lost connection): not the run's input.
        """
        if self._results is None:
            self._results = self._start()
        try:
            done, outcome = next(self._results)
        except INPUT_ERRORS as exc:  # not the run's: its own come back from attempt
            if isinstance(exc, ConfigError):  # no scheduler at that address
                raise
            raise RuntimeError(
                f"The runs of the batch could not be computed ({self._scheduler}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if done != key:
            raise RuntimeError(f"Expected the result of run {key}, got that of {done}.")
        if isinstance(outcome, BaseException):
            if not Path(self._given[key]).is_absolute():
                _name_as_given(outcome, f"{Path.cwd()}{os.sep}")
            raise outcome
        return outcome

    def close(self) -> None:
        """Cancel the runs not taken, and close the client a scheduler address opened."""
        if self._results is not None:
            self._results.close()

    def __enter__(self) -> RunResults:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _map_runs(task, items, **kwargs):
    from neuroai.fmri.cohort import map_runs

    return map_runs(task, items, **kwargs)


def _name_as_given(exc: BaseException, folder: str) -> None:
    """Take ``folder`` (this process's, with its separator) off the paths an error's
    message names: the task read the files by absolute path."""

    def strip(value: Any) -> Any:
        return value.replace(folder, "") if isinstance(value, str) else value

    exc.args = tuple(strip(arg) for arg in exc.args)
    for name in ("filename", "filename2"):
        if isinstance(getattr(exc, name, None), str):
            setattr(exc, name, strip(getattr(exc, name)))
    if hasattr(exc, "__notes__"):
        exc.__notes__ = [strip(note) for note in exc.__notes__]


def write_batch(
    output: str | Path,
    runs: Mapping[str, Any],
    write_run: Callable[[str, Any, Path], None],
    run_outputs: Callable[[str, Path], list[Path]],
    *,
    stage: str,
    params: Mapping[str, Any],
    on_error: str = "fail",
    in_place: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the batch folder ``output``: ``write_run(key, item, folder)`` for every run.

    Parameters
    ----------
    output : path-like
        The batch folder.
    runs : mapping
        Run key -> what ``write_run`` takes (a path, a recording), in the batch's order.
    write_run : callable
        Writes one run's artifacts inside ``folder`` (the per-run stage's writer).
    run_outputs : callable
        ``run_outputs(key, folder)``: the files and folders ``write_run`` writes for a run
        (removed when the run fails under ``on_error="skip"``).
    stage : str
        The per-run stage (``failures.tsv``'s ``stage`` column); the folder's record has
        stage ``<stage>_batch``.
    params : mapping
        The per-run stage's parameters (in the folder's record).
    on_error : {"fail", "skip"}
        See the module docstring.
    in_place : bool
        Write the runs straight into ``output`` (removed whole if the batch fails), for
        stages whose records name their own outputs (a temporary folder's name would be
        recorded); otherwise into a temporary folder renamed onto ``output`` at the end.
    extra : mapping | None
        More facts for the folder's record.

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    DataError
        A failing run (``on_error="fail"``); the message names the run and the error
        names its file.
    """
    from neuroai.io import write_artifact

    if on_error not in ON_ERROR:
        raise ConfigError(
            f"on_error must be one of {', '.join(ON_ERROR)}; got {on_error!r}. 'fail' stops "
            "at the first bad run, 'skip' lists it in failures.tsv and goes on."
        )
    if not runs:
        raise DataError(f"The batch {output} has no run to compute.")
    output = Path(output)
    done: list[str] = []
    failed: list[dict[str, str]] = []
    failed_keys: list[str] = []

    def write_all(folder: Path) -> None:
        for key, item in runs.items():
            try:
                write_run(key, item, folder)
            except INPUT_ERRORS as exc:
                if isinstance(exc, ConfigError) or (
                    on_error == "fail" and not isinstance(exc, LeftOut)
                ):
                    if isinstance(exc, DataError):
                        raise DataError(f"Run {key} failed: {exc}") from exc
                    exc.add_note(f"(while processing run {key} of the batch {output})")
                    raise
                _remove(run_outputs(key, folder))
                message = " ".join(f"{type(exc).__name__}: {exc}".split())
                logger.warning("Run %s failed and is left out (on_error='skip'): %s", key, message)
                failed.append({"run": key, "stage": stage, "error": message})
                failed_keys.append(key)
            else:
                done.append(key)
        _write_failures(folder / FAILURES, failed)

    record = {
        "runs": done,
        "failed": failed_keys,  # filled in as the runs are written, before the record
        "on_error": on_error,
        **(extra or {}),
    }
    if not in_place:
        write_artifact(
            output,
            write_all,
            stage=f"{stage}_batch",
            params=params,
            extra=record,
            directory=True,
        )
    else:
        _write_in_place(output, write_all, stage=f"{stage}_batch", params=params, extra=record)
    logger.info(
        "Wrote %s (%d runs%s)",
        output,
        len(done),
        f"; {len(failed)} failed, listed in {FAILURES}" if failed else "",
    )
    return output


def _write_in_place(output: Path, write_all, *, stage, params, extra) -> None:
    from neuroai.io import atomic_open, provenance_path
    from neuroai.io.provenance import make_record

    sidecar = provenance_path(output)
    sidecar.unlink(missing_ok=True)
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    try:
        write_all(output)
    except BaseException:
        shutil.rmtree(output, ignore_errors=True)
        raise
    record = make_record(artifact=output, stage=stage, params=params, inputs=[], extra=extra)
    with atomic_open(sidecar, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=False)
        handle.write("\n")


def _remove(paths: Iterable[Path]) -> None:
    """Remove what a failed run wrote (files, folders and their records)."""
    from neuroai.io import provenance_path

    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
        provenance_path(path).unlink(missing_ok=True)


def _write_failures(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, FAILURE_COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_failures(folder: str | Path) -> list[dict[str, str]]:
    """The rows of a batch folder's ``failures.tsv`` (none when it has no such file)."""
    path = Path(folder) / FAILURES
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
