"""Evaluated model folders: a trained model with its held-out test metrics in its card.

A training stage exports its model before anything has scored it on held-out data, so that
folder's card can only show the best validation score. Each evaluation stage therefore
writes, beside its ``metrics.json``, one folder per model it evaluated::

    <evaluated>/<name>/model.safetensors   the same weights (hard-linked where possible)
    <evaluated>/<name>/config.json         the training folder's document + ``heldout``
    <evaluated>/<name>/splits.tsv          who was trained, validated and tested on
    <evaluated>/<name>/README.md           the card, with the test metrics and intervals

These are the folders to hand to someone else: they load like any pretrained folder
(:func:`neuroai.models.load_pretrained`) and their card answers "what did it score, on
whom, with what uncertainty". The training folder stays as it was (its checksum is in the
provenance of everything downstream of it); the weights are hard-linked, so an evaluated
folder costs no disk space where the file system allows links, and is a copy otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroai.errors import ArtifactError, ConfigError
from neuroai.models.card import write_model_card
from neuroai.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME

SPLITS_NAME = "splits.tsv"


@dataclass(frozen=True)
class EvaluatedModel:
    """One model an evaluation stage scored.

    Parameters
    ----------
    name : str
        Folder name inside the evaluated-models folder (``finetune``, ``site``...).
    source : path-like
        The training stage's pretrained folder (``config.json`` + weights).
    metrics : mapping
        Held-out metrics, ``{label: {"estimate", "ci_low", "ci_high", ...}}``; labels are
        shown as they are (``"recording AUROC"``, ``"Dice GM"``).
    evaluation : mapping
        How they were measured: ``stage``, ``metrics_file``, ``n_test`` and its ``unit``,
        ``bootstrap`` settings, ``task``; anything JSON-able.
    splits : path-like | None
        The split file of the training stage (copied into the folder).
    datasets : sequence of str
        Datasets the model was trained and tested on.
    data_cards : sequence of str
        Their data cards.
    """

    name: str
    source: str | os.PathLike
    metrics: Mapping[str, Mapping[str, Any]]
    evaluation: Mapping[str, Any] = field(default_factory=dict)
    splits: str | os.PathLike | None = None
    datasets: Sequence[str] = ()
    data_cards: Sequence[str] = ()


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source, target)


def write_evaluated_folder(folder: str | os.PathLike, entry: EvaluatedModel) -> Path:
    """Write one evaluated folder into ``folder`` (an existing, empty folder)."""
    folder, source = Path(folder), Path(entry.source)
    config_path = source / CONFIG_NAME
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"Cannot write the evaluated copy of {source}: it has no {CONFIG_NAME}. Run the "
            "training stage that writes it first."
        ) from None
    except ValueError as exc:
        raise ArtifactError(
            f"Cannot write the evaluated copy of {source}: {config_path} is not JSON ({exc}). "
            "Delete the folder and rerun its training stage."
        ) from None
    weights_name = str(document.get("weights", WEIGHTS_NAME))
    weights = source / weights_name
    if not weights.is_file():
        raise ArtifactError(
            f"Cannot write the evaluated copy of {source}: {weights_name} is missing. Delete "
            "the folder and rerun its training stage."
        )
    _link_or_copy(weights, folder / weights_name)
    heldout: dict[str, Any] = {
        "metrics": {k: dict(v) for k, v in entry.metrics.items()},
        **{k: v for k, v in entry.evaluation.items()},
        "trained_folder": os.fspath(source),
    }
    if entry.datasets:
        document["datasets"] = list(entry.datasets)
    if entry.data_cards:
        document["data_cards"] = list(entry.data_cards)
    if entry.splits is not None and Path(entry.splits).is_file():
        shutil.copyfile(entry.splits, folder / SPLITS_NAME)
        document["splits"] = SPLITS_NAME
    document["heldout"] = heldout
    (folder / CONFIG_NAME).write_text(json.dumps(document, indent=2, default=str) + "\n")
    write_model_card(folder, json.loads(json.dumps(document, default=str)))
    return folder


def write_evaluated_models(
    output: str | os.PathLike,
    entries: Sequence[EvaluatedModel],
    *,
    stage: str,
    params: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the evaluated-models folder of an evaluation stage, atomically, with provenance.

    Parameters
    ----------
    output : path-like
        The folder; one subfolder per entry (see :class:`EvaluatedModel`).
    entries : sequence of EvaluatedModel
        The models scored; names must be unique.
    stage, params, extra
        Provenance of the folder; its inputs are the entries' training folders and split
        files.
    """
    from neuroai.io import write_artifact

    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ArtifactError(f"Cannot write {output}: model names repeat ({names}).")
    inputs = [Path(e.source) for e in entries]
    inputs += [Path(e.splits) for e in entries if e.splits is not None]

    def write(tmp: Path) -> None:
        for entry in entries:
            (tmp / entry.name).mkdir()
            write_evaluated_folder(tmp / entry.name, _relative_metrics_file(entry, output))

    return write_artifact(
        output,
        write,
        stage=stage,
        params=params,
        inputs=list(dict.fromkeys(inputs)),
        extra={"models": names, **dict(extra or {})},
        directory=True,
    )


def write_evaluations(
    output: str | os.PathLike,
    scored: Sequence[tuple[str, str | os.PathLike, Mapping[str, Any], Mapping[str, Any]]],
    *,
    stage: str,
    metrics_file: str | os.PathLike,
    params: Mapping[str, Any] | None = None,
    splits: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    datasets: Sequence[str] | None = None,
    default_datasets: Sequence[str] = (),
) -> Path:
    """The evaluated-models folder of an evaluation stage, from what it scored.

    What the four evaluation stages share: the ``--datasets`` pairs, the split files, the
    metrics cut to their estimates and intervals, the stage and metrics file in every
    model's ``evaluation`` record.

    Parameters
    ----------
    output : path-like
        The folder (see :func:`write_evaluated_models`).
    scored : sequence of (name, source, metrics, evaluation)
        Per model: its folder name, its training folder, its metrics
        (``{label: {"estimate", "ci_low", "ci_high", ...}}``) and what the stage says of how
        they were measured (``task``, ``n_test``, ``unit``, ``bootstrap``, ``note`` ...).
    stage : str
        The evaluation stage.
    metrics_file : path-like
        The stage's metrics file (named in every card, relative to its folder).
    params : mapping | None
        The stage's parameters (provenance).
    splits : path-like | sequence of path-like | None
        One split file for every model, or one per model in the order of ``scored``.
    datasets : sequence of str | None
        ``NAME=CARD`` pairs (the stage's ``--datasets``).
    default_datasets : sequence of str
        Dataset names when ``datasets`` gives none.

    Raises
    ------
    ConfigError
        When a split file per model is given for another number of models.
    """
    scored = list(scored)
    if splits is None or isinstance(splits, str | os.PathLike):
        per_model = [splits] * len(scored)
    else:
        per_model = list(splits) or [None] * len(scored)
        if len(per_model) != len(scored):
            raise ConfigError(
                f"Cannot write {output}: {len(scored)} models but {len(per_model)} split files. "
                "Pass one splits.tsv per model, in the order of the models."
            )
    names, cards = parse_datasets(datasets)
    entries = [
        EvaluatedModel(
            name=name,
            source=source,
            metrics={label: interval(value) for label, value in metrics.items()},
            evaluation={"stage": stage, **evaluation, "metrics_file": str(metrics_file)},
            splits=split,
            datasets=names or list(default_datasets),
            data_cards=cards,
        )
        for (name, source, metrics, evaluation), split in zip(scored, per_model, strict=True)
    ]
    return write_evaluated_models(output, entries, stage=stage, params=params)


def _relative_metrics_file(entry: EvaluatedModel, output: str | os.PathLike) -> EvaluatedModel:
    """The entry with its ``metrics_file`` given relative to its evaluated folder."""
    metrics_file = entry.evaluation.get("metrics_file")
    if not metrics_file:
        return entry
    relative = os.path.relpath(Path(metrics_file), Path(output) / entry.name)
    evaluation = {**entry.evaluation, "metrics_file": Path(relative).as_posix()}
    return EvaluatedModel(**{**entry.__dict__, "evaluation": evaluation})


def interval(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The estimate and interval of a metric entry, without its other fields."""
    keys = ("estimate", "ci_low", "ci_high", "n")
    return {k: entry[k] for k in keys if k in entry}


def parse_datasets(values: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """``["NAME=CARD", ...]`` (the ``--datasets`` option) as dataset names and card files."""
    names, cards = [], []
    for value in values or ():
        name, sep, card = value.partition("=")
        if not name or not sep:
            raise ConfigError(
                f"--datasets takes NAME=CARD pairs (a data card may be empty: NAME=), got {value!r}."
            )
        names.append(name)
        if card:
            cards.append(card)
    return names, cards


def add_evaluated_options(parser) -> None:
    """The options an evaluation stage takes to write its evaluated-models folder."""
    parser.add_argument(
        "--evaluated-output",
        default=None,
        help="folder of evaluated copies of the models (held-out metrics in their cards)",
    )
    parser.add_argument(
        "--splits", nargs="+", default=None, help="the training stages' splits.tsv files"
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=None,
        metavar="NAME=CARD",
        help="datasets behind the models and their data cards' file names",
    )
