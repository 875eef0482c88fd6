"""``neuroai init``: a starter config and a data card for a dataset on disk.

The folder is first checked against the layout the user names (the ``layout`` values
of ``workflows/schemas/config/datasets.schema.yaml``), cheaply: names only, no image or
recording opened (a Decathlon task's ``dataset.json`` is read). When it does not look
like that layout, the error says what was expected and what the folder holds. The
config written names the dataset, lists it in the sections that process that kind of
data, and passes the workflow's own config validation before it is written; the data
card is ``workflows/templates/data_card.yaml`` filled in with what was found.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from neuroai.errors import ConfigError, DataError

_NIFTI = ("_bold.nii.gz", "_bold.nii")
_EEG_FORMATS = (".edf", ".bdf", ".fif", ".vhdr", ".set")


@dataclass(frozen=True)
class Layout:
    """What a layout looks like on disk and which config sections process it."""

    expected: str
    modality: str
    sections: tuple[str, ...]
    count_name: str
    find: Callable[[Path], Iterator[Path]]


def _bids_files(folder: str, suffixes: tuple[str, ...]) -> Callable[[Path], Iterator[Path]]:
    def find(root: Path) -> Iterator[Path]:
        for pattern in (f"sub-*/{folder}/*", f"sub-*/ses-*/{folder}/*"):
            for path in root.glob(pattern):
                if path.name.endswith(suffixes):
                    yield path

    return find


def _files_below(suffixes: tuple[str, ...]) -> Callable[[Path], Iterator[Path]]:
    def find(root: Path) -> Iterator[Path]:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.lower().endswith(suffixes) and not name.startswith("."):
                    yield Path(folder) / name

    return find


def _decathlon(root: Path) -> Iterator[Path]:
    from neuroai.io.decathlon import read_decathlon

    try:
        dataset = read_decathlon(root)
    except DataError:
        return
    for case in dataset.training + dataset.test:
        yield case.image


#: Layout (as the config schema names it) -> its shape on disk and its sections.
LAYOUTS: dict[str, Layout] = {
    "region_timeseries": Layout(
        "sub-*/[ses-*/]func/*_timeseries.tsv (region time series, JSON sidecars beside)",
        "fmri-regions",
        ("static_fc",),
        "subjects",
        _bids_files("func", ("_timeseries.tsv",)),
    ),
    "bids": Layout(
        "sub-*/[ses-*/]func/*_bold.nii[.gz] (raw BIDS)",
        "fmri-volumes",
        ("fmri_timeseries", "static_fc"),
        "subjects",
        _bids_files("func", _NIFTI),
    ),
    "fmriprep": Layout(
        "sub-*/[ses-*/]func/*_desc-preproc_bold.nii[.gz] (fMRIPrep derivatives)",
        "fmri-volumes",
        ("fmri_timeseries", "static_fc"),
        "subjects",
        _bids_files("func", tuple(f"_desc-preproc{s}" for s in _NIFTI)),
    ),
    "bold_volumes": Layout(
        "sub-*/[ses-*/]func/*_bold.nii[.gz] (4D BOLD in MNI space)",
        "fmri-volumes",
        ("tokens",),
        "subjects",
        _bids_files("func", _NIFTI),
    ),
    "tuh": Layout(
        "*.edf files below the folder (TUH corpus layout)",
        "eeg",
        ("eeg",),
        "recordings",
        _files_below((".edf",)),
    ),
    "bids_eeg": Layout(
        "sub-*/[ses-*/]eeg/*_eeg.{edf,bdf,vhdr,set,fif} (BIDS-EEG)",
        "eeg",
        ("eeg",),
        "subjects",
        _bids_files("eeg", tuple(f"_eeg{s}" for s in _EEG_FORMATS)),
    ),
    "eeg_files": Layout(
        "EEG files (.edf, .bdf, .fif, .vhdr, .set) below the folder",
        "eeg",
        ("eeg",),
        "recordings",
        _files_below(_EEG_FORMATS),
    ),
    "decathlon": Layout(
        "dataset.json with imagesTr/ and labelsTr/ (Medical Segmentation Decathlon task)",
        "mri-segmentation",
        ("segmentation",),
        "cases",
        _decathlon,
    ),
}


def schema_layouts(root: Path) -> list[str]:
    """The ``layout`` values the workflow's dataset schema accepts."""
    path = root / "workflows" / "schemas" / "config" / "datasets.schema.yaml"
    schema = yaml.safe_load(path.read_text(encoding="utf-8"))
    return list(schema["additionalProperties"]["properties"]["layout"]["enum"])


def _found(root: Path) -> str:
    """A short account of what a folder holds, for an error message."""
    entries = sorted(root.iterdir(), key=lambda p: p.name)
    if not entries:
        return "the folder is empty"
    shown = [p.name + ("/" if p.is_dir() else "") for p in entries[:8]]
    more = f" and {len(entries) - 8} more" if len(entries) > 8 else ""
    text = f"it holds {', '.join(shown)}{more}"
    for kind in ("func", "eeg", "anat"):
        folder = next(
            iter(sorted(root.glob(f"sub-*/{kind}")) + sorted(root.glob(f"sub-*/ses-*/{kind}"))),
            None,
        )
        if folder is not None:
            files = sorted(p.name for p in folder.iterdir())[:5]
            text += f"; {folder.relative_to(root)}/ holds {', '.join(files) or 'nothing'}"
            break
    if (root / "dataset.json").is_file():
        from neuroai.io.decathlon import read_decathlon

        try:
            read_decathlon(root)
        except DataError as exc:
            text += f"; dataset.json: {exc}"
    return text


def check_layout(root: str | os.PathLike, layout: str) -> dict[str, int]:
    """Check that ``root`` looks like ``layout``; return the counts found.

    Raises
    ------
    ConfigError
        Unknown layout (with the nearest name).
    DataError
        The folder is missing or does not look like the layout: the message says
        what was expected and what the folder holds.
    """
    from neuroai.errors import check_option

    check_option("layout", layout, LAYOUTS)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder: point `neuroai init` at the dataset's folder.")
    spec = LAYOUTS[layout]
    first = next(spec.find(root), None)
    if first is None:
        raise DataError(
            f"{root} does not look like layout {layout!r}: expected {spec.expected}, but "
            f"{_found(root)}. Check the folder, or name the layout it has (--layout)."
        )
    if spec.count_name == "subjects":
        count = sum(1 for p in root.glob("sub-*") if p.is_dir())
    else:
        count = sum(1 for _ in spec.find(root))
    return {spec.count_name: count}


def dataset_name(root: Path) -> str:
    """A config-safe dataset name (``[a-z0-9_]+``) from a folder name."""
    name = re.sub(r"[^a-z0-9]+", "_", root.resolve().name.lower()).strip("_")
    return name or "my_dataset"


def atlas_entry(path: str | os.PathLike, labels: str | os.PathLike | None) -> dict:
    """The ``atlas:`` of a 4D dataset from a file: spheres (.tsv), labels (3D) or maps (4D)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"--atlas {path} does not exist.")
    if path.name.endswith((".tsv", ".csv")):
        entry = {"coordinates": str(path)}
    elif path.name.endswith((".nii", ".nii.gz")):
        import nibabel

        ndim = len(nibabel.load(path).shape)
        entry = {"maps_img" if ndim == 4 else "labels_img": str(path)}
    else:
        raise ConfigError(
            f"--atlas {path}: expected a label or probabilistic image (.nii, .nii.gz) or a TSV "
            "of sphere centres (x, y, z in mm)."
        )
    if labels is not None:
        labels = Path(labels).resolve()
        if not labels.is_file():
            raise ConfigError(f"--atlas-labels {labels} does not exist.")
        entry["labels"] = str(labels)
    return entry


def starter_config(
    root: Path, layout: str, name: str, card: Path, atlas: dict | None
) -> tuple[str, dict]:
    """The starter config as YAML text (with comments) and as the mapping it parses to."""
    spec = LAYOUTS[layout]
    dataset: dict = {"card": str(card), "layout": layout, "root": str(root)}
    if layout in ("bids", "fmriprep"):
        if atlas is None:
            raise ConfigError(
                f"Layout {layout!r} needs an atlas to turn the 4D runs into region time series: "
                "pass --atlas with a label image (3D .nii.gz), probabilistic maps (4D) or a TSV "
                "of sphere centres, and --atlas-labels with the region names (optional)."
            )
        dataset["atlas"] = atlas
        if layout == "bids":  # raw BIDS has no fMRIPrep confounds table
            dataset["confounds"] = {"strategy": ["high_pass"]}
    config = {"datasets": {name: dataset}}
    for section in spec.sections:
        config[section] = {"datasets": [name]}
    config["report"] = {"title": f"neuroai: {name}"}
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    text = (
        f"# neuroai starter config for {root} (layout {layout}), written by `neuroai init`.\n"
        "# Run it with `neuroai run --configfile <this file> --cores N` (add -n for a dry run).\n"
        "# Every key is checked against workflows/schemas/config.schema.yaml; see\n"
        "# `neuroai stage <stage> --help` for the parameters of each section.\n"
        f"{body}"
    )
    return text, config


def starter_card(template: Path, name: str, layout: str, counts: dict[str, int]) -> str:
    """The data card template with the dataset's name, modality and counts filled in."""
    spec = LAYOUTS[layout]
    text = template.read_text(encoding="utf-8")
    replacements = {
        r"^name: .*$": f"name: {name}",
        r"^title: .*$": f'title: "{name}"',
        r"^modality: .*$": f"modality: {spec.modality}",
        r"^counts:\n  subjects: 0$": "counts:\n"
        + "".join(f"  {k}: {v}\n" for k, v in counts.items()).rstrip("\n"),
    }
    for pattern, value in replacements.items():
        text, n = re.subn(pattern, value, text, count=1, flags=re.MULTILINE)
        if n != 1:
            raise FileNotFoundError(
                f"The data card template {template} has no line matching {pattern!r}; it is "
                "not the template this neuroai version ships."
            )
    header = (
        f"# The data card of {name}, written by `neuroai init` from {template.name}: replace\n"
        "# the template's text below with what is true of your data.\n"
    )
    return header + text


def write_new(path: Path, text: str) -> None:
    """Write ``text`` to a new file, atomically; never replace an existing one."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    try:
        os.link(partial, path)  # fails if ``path`` appeared meanwhile
    except FileExistsError as exc:
        raise ConfigError(f"{path} exists; neuroai init never overwrites a file.") from exc
    finally:
        partial.unlink()


def init_dataset(
    folder: str | os.PathLike,
    layout: str,
    *,
    workflow: Path,
    output: str | os.PathLike = "neuroai.yaml",
    name: str | None = None,
    atlas: str | os.PathLike | None = None,
    atlas_labels: str | os.PathLike | None = None,
) -> tuple[Path, Path]:
    """Check ``folder`` against ``layout`` and write a starter config and data card.

    Parameters
    ----------
    folder : path-like
        The dataset.
    layout : str
        One of the layouts the config schema accepts.
    workflow : Path
        The workflow folder (its schemas and the data card template).
    output : path-like
        The config to write; the card goes beside it as ``<name>.yaml``.
    name : str | None
        The dataset's name in the config; by default made from the folder name.
    atlas, atlas_labels : path-like | None
        ``bids`` and ``fmriprep`` only: the parcellation (see :func:`atlas_entry`).

    Returns
    -------
    (Path, Path)
        The config and the card written.

    Raises
    ------
    ConfigError
        An unknown layout, a bad name, an existing file, a config that fails validation.
    DataError
        The folder does not look like the layout.
    """
    from neuroai.config import validate_config
    from neuroai.datasets.cards import load_card
    from neuroai.errors import check_option

    check_option("layout", layout, schema_layouts(workflow))
    root = Path(folder).resolve()
    counts = check_layout(root, layout)
    name = name or dataset_name(root)
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ConfigError(f"--name {name!r}: dataset names are lower-case letters, digits and _.")
    output = Path(output).resolve()
    card = output.with_name(f"{name}.yaml")
    if card == output:
        raise ConfigError(f"The config {output} and the data card would be the same file.")
    for path in (output, card):
        if path.exists():
            raise ConfigError(f"{path} exists; neuroai init never overwrites a file.")
    entry = atlas_entry(atlas, atlas_labels) if atlas is not None else None
    text, config = starter_config(root, layout, name, card, entry)
    card_text = starter_card(
        workflow / "workflows" / "templates" / "data_card.yaml", name, layout, counts
    )
    validate_config(
        config,
        workflow / "workflows" / "schemas" / "config.schema.yaml",
        source=f"The starter config for {root}",
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    write_new(card, card_text)
    try:
        load_card(card, schema=workflow / "workflows" / "schemas" / "data_card.schema.yaml")
        write_new(output, text)
    except BaseException:
        card.unlink()
        raise
    return output, card
