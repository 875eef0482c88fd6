"""A ``dask scheduler`` and ``dask worker`` started as separate processes, for tests of
the stages that send their runs to a Dask scheduler (``--scheduler tcp://...``)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def _address(scheduler_file: Path, log: Path, timeout: float) -> str:
    """The address a ``dask scheduler`` wrote to its scheduler file (waiting for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return json.loads(scheduler_file.read_text())["address"]
        time.sleep(0.2)
    raise AssertionError(f"no scheduler address in {timeout} s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def dask_processes(
    folder: str | Path, *, require_task: str | None = None, timeout: float = 60
) -> Iterator[str]:
    """Start a ``dask scheduler`` and one single-threaded ``dask worker`` on localhost.

    Both run in ``folder`` (their logs and scheduler file go there), so a relative path
    sent to the worker would not resolve as in the test's folder.

    Parameters
    ----------
    folder : path-like
        The processes' working folder.
    require_task : str | None
        A task prefix (``"one_thread"``, :func:`neuroai.fmri.cohort.map_runs`'s tasks)
        that the scheduler must have run by the end: the work did go through Dask.
    timeout : float
        Seconds to wait for the scheduler, the worker and their exit.

    Yields
    ------
    str
        The scheduler's address (``tcp://127.0.0.1:<port>``).

    Raises
    ------
    AssertionError
        No address in time, a process that did not exit with 0, or no ``require_task``.
    """
    from dask.distributed import Client

    folder = Path(folder)
    file = str(folder / "scheduler.json")
    dask = [sys.executable, "-m", "dask"]  # the `dask` command of this environment
    commands = {
        "scheduler": [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0"],
        "worker": [*dask, "worker", "--nthreads", "1", "--no-nanny"],
    }
    processes = []
    with contextlib.ExitStack() as stack:
        try:
            for name, command in commands.items():
                log = stack.enter_context(open(folder / f"{name}.log", "w"))
                command += ["--scheduler-file", file, "--no-dashboard"]
                processes.append(
                    subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
                )
                address = _address(folder / "scheduler.json", folder / "scheduler.log", timeout)
            with Client(address, timeout=timeout) as client:
                client.wait_for_workers(1, timeout=timeout)
            yield address
            with Client(address, timeout=timeout) as client:
                prefixes = client.run_on_scheduler(
                    lambda dask_scheduler: sorted(dask_scheduler.task_prefixes)
                )
                client.shutdown()  # the scheduler, and with it the worker
            if require_task is not None:
                assert require_task in prefixes, prefixes
            for process in processes:
                assert process.wait(timeout=timeout) == 0, process.args
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=30)
