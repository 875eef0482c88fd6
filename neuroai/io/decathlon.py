"""Labelled volumes in the Medical Segmentation Decathlon layout.

A Decathlon task folder::

    dataset.json     name, modality {"0": "MRI"}, labels {"0": "background", ...},
                     training [{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}],
                     test ["./imagesTs/y.nii.gz"]
    imagesTr/ labelsTr/ imagesTs/
    labelsTs/        optional (nnU-Net convention): labels of the test images

Multi-modal images are 4D NIfTI with the modalities on the last axis (BraTS).
:func:`read_decathlon` lists the cases; :func:`check_case` reads a case's headers and
label values and refuses, naming the case, labels that ``dataset.json`` does not
declare, image and label of different shapes or affines, and missing voxel spacing.

The file lists come from MONAI's ``monai.data.load_decathlon_datalist`` (the same
paths, joined to the task folder and normalised as MONAI does, so a list handed to
MONAI's datasets and ours name the same files); :meth:`DecathlonDataset.datalist`
gives them back in MONAI's form. What neuroai adds on top: the labels and
modalities as typed mappings, case identifiers (unique), the optional
``labelsTs/``, and a :class:`~neuroai.errors.DataError` naming ``dataset.json`` and
the entry for a listed file that does not exist, malformed JSON or entries, and an
empty ``test`` list (where MONAI raises ``IndexError``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroai.errors import DataError
from neuroai.io.atomic import atomic_open


@dataclass(frozen=True)
class DecathlonCase:
    """One case: its identifier, image, and label (None for unlabelled test cases)."""

    id: str
    image: Path
    label: Path | None = None


@dataclass(frozen=True)
class DecathlonDataset:
    """A Decathlon task folder.

    Attributes
    ----------
    root : Path
        The folder holding ``dataset.json``.
    name : str
        Task name.
    labels : dict of int to str
        Label value to class name, background (0) included.
    modalities : dict of int to str
        Image channel to modality name.
    training, test : list of DecathlonCase
        Labelled training cases; test cases (labelled when ``labelsTs/`` has them).
    description : dict
        The whole ``dataset.json``.
    """

    root: Path
    name: str
    labels: dict[int, str]
    modalities: dict[int, str]
    training: list[DecathlonCase]
    test: list[DecathlonCase]
    description: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def in_channels(self) -> int:
        return len(self.modalities)

    @property
    def class_names(self) -> list[str]:
        """Names of the classes in label order, background first."""
        return [self.labels[k] for k in sorted(self.labels)]

    def datalist(self, split: str = "training") -> list[dict[str, str]]:
        """The cases as MONAI's data list: ``[{"image": path, "label": path}, ...]``.

        Equal to ``monai.data.load_decathlon_datalist(root / "dataset.json",
        data_list_key=split, base_dir=root)`` for the cases of ``split``
        (``"training"`` or ``"test"``; test cases carry ``"label"`` only when
        ``labelsTs/`` has it), ready for ``monai.data.CacheDataset``.
        """
        return [
            {"image": str(c.image), **({"label": str(c.label)} if c.label else {})}
            for c in self.cases(split)
        ]

    def cases(self, split: str) -> list[DecathlonCase]:
        """``"training"``, ``"test"`` or ``"all"`` cases."""
        if split == "training":
            return list(self.training)
        if split == "test":
            return list(self.test)
        if split == "all":
            return [*self.training, *self.test]
        raise DataError(f"Unknown split {split!r}; use 'training', 'test' or 'all'.")


def case_id(path: str | os.PathLike) -> str:
    """Identifier of a case: the file name without ``.nii.gz`` / ``.nii``."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _check_entries(source: Path, key: str, entries: list) -> None:
    """Refuse entries MONAI would pass on unchecked: missing keys, lists of files."""
    for entry in entries:
        if key == "training":
            if not isinstance(entry, Mapping) or "image" not in entry or "label" not in entry:
                raise DataError(
                    f"{source}: each training entry needs 'image' and 'label', got {entry!r}."
                )
            files = [entry["image"], entry["label"]]
        elif isinstance(entry, Mapping):
            if "image" not in entry:
                raise DataError(f"{source}: the test entry {entry!r} has no 'image'.")
            files = [entry["image"]]
        else:
            files = [entry]
        if not all(isinstance(f, str) for f in files):
            raise DataError(
                f"{source}: the {key} entry {entry!r} must name one file per image (and label); "
                "lists of files per case are not read. Stack the modalities of a case into one "
                "4D NIfTI (modalities on the last axis), as the Decathlon does."
            )


def _datalist(source: Path, root: Path, key: str, entries: list) -> list[dict]:
    """MONAI's data list for ``key``: ``load_decathlon_datalist`` where MONAI is installed.

    Without MONAI (a light install listing a dataset), the same rule MONAI applies:
    ``os.path.normpath(os.path.join(base_dir, entry))`` (tested equal to MONAI's).
    """
    _check_entries(source, key, entries)
    if not entries:
        return []  # MONAI reads entries[0] of the test list
    try:
        from monai.data import load_decathlon_datalist
    except ImportError:
        items = [e if isinstance(e, Mapping) else {"image": e} for e in entries]
        return [
            {
                k: os.path.normpath(os.path.join(root, v)) if k in ("image", "label") else v
                for k, v in item.items()
            }
            for item in items
        ]
    return load_decathlon_datalist(source, data_list_key=key, base_dir=root)


def _existing(path: str, entry: str, what: str, source: Path) -> Path:
    if not Path(path).is_file():
        raise DataError(f"{source}: the {what} {entry!r} does not exist (looked for {path}).")
    return Path(path)


def _entries(description: dict, key: str, source: Path) -> list:
    entries = description.get(key, [])
    if not isinstance(entries, list):
        raise DataError(f"{source}: {key!r} must be a list of cases, got {type(entries).__name__}.")
    return entries


def read_decathlon(root: str | os.PathLike) -> DecathlonDataset:
    """Read ``dataset.json`` of a Decathlon task folder and list its cases.

    The paths are those of ``monai.data.load_decathlon_datalist`` with the task
    folder (made absolute) as ``base_dir``: joined and normalised, symbolic
    links kept.

    Raises
    ------
    DataError
        Missing ``dataset.json``, missing keys, label values that are not integers,
        malformed entries, or listed files that do not exist (naming the case).
    """
    root = Path(root)
    if root.is_file() and root.name == "dataset.json":
        root = root.parent
    root = root.absolute()
    source = root / "dataset.json"
    if not source.is_file():
        raise DataError(
            f"{root} is not a Decathlon task folder: dataset.json is missing. Point the "
            "workflow at the folder that holds dataset.json, imagesTr/ and labelsTr/."
        )
    try:
        description = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{source} is not valid JSON ({exc}).") from exc
    for key in ("labels", "training"):
        if key not in description:
            raise DataError(
                f"{source} has no {key!r} entry; a Decathlon dataset.json needs labels and training."
            )
    try:
        labels = {int(k): str(v) for k, v in description["labels"].items()}
    except ValueError as exc:
        raise DataError(
            f"{source}: label values must be integers, got {list(description['labels'])}."
        ) from exc
    if 0 not in labels:
        raise DataError(f"{source}: labels must declare the background as 0.")
    modalities = {int(k): str(v) for k, v in description.get("modality", {"0": "image"}).items()}
    raw_training = _entries(description, "training", source)
    raw_test = _entries(description, "test", source)
    training = []
    for entry, item in zip(
        raw_training, _datalist(source, root, "training", raw_training), strict=True
    ):
        image = _existing(item["image"], entry["image"], "image", source)
        label = _existing(item["label"], entry["label"], f"label of case {case_id(image)}", source)
        training.append(DecathlonCase(case_id(image), image, label))
    test = []
    for entry, item in zip(raw_test, _datalist(source, root, "test", raw_test), strict=True):
        image_entry = entry["image"] if isinstance(entry, Mapping) else entry
        image = _existing(item["image"], image_entry, "test image", source)
        label = root / "labelsTs" / image.name
        test.append(DecathlonCase(case_id(image), image, label if label.is_file() else None))
    ids = [c.id for c in training + test]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DataError(f"{source}: case identifiers must be unique; repeated: {duplicates}.")
    return DecathlonDataset(
        root,
        str(description.get("name", root.name)),
        labels,
        modalities,
        training,
        test,
        description,
    )


def check_case(
    case: DecathlonCase, labels: Mapping[int, str], *, atol: float = 1e-3
) -> dict[str, Any]:
    """Check one case's files against each other and ``dataset.json``.

    Parameters
    ----------
    case : DecathlonCase
        The case.
    labels : mapping of int to str
        The declared labels.
    atol : float
        Tolerance on affine entries (mm).

    Returns
    -------
    dict
        ``shape`` (spatial, voxels), ``spacing`` (mm), ``channels``, and the label
        ``values`` present.

    Raises
    ------
    DataError
        Naming the case: missing or non-positive spacing, image and label of
        different shapes or affines, label values not declared in ``dataset.json``.
    """
    import nibabel as nib

    image = nib.load(case.image)
    zooms = _raw_zooms(case.image, type(image.header))
    if zooms.size < 3 or not np.all(np.isfinite(zooms)) or np.any(zooms <= 0):
        raise DataError(
            f"Case {case.id}: {case.image.name} has missing or invalid voxel spacing "
            f"{zooms.tolist()} (pixdim); set the spacing in the NIfTI header."
        )
    shape = tuple(int(s) for s in image.shape[:3])
    channels = int(image.shape[3]) if image.ndim == 4 else 1
    info: dict[str, Any] = {"shape": shape, "spacing": zooms.tolist(), "channels": channels}
    if case.label is None:
        return info
    label = nib.load(case.label)
    if tuple(label.shape[:3]) != shape or label.ndim > 3 and label.shape[3] != 1:
        raise DataError(
            f"Case {case.id}: image {case.image.name} has shape {tuple(image.shape)} but label "
            f"{case.label.name} has shape {tuple(label.shape)}; they must cover the same voxels."
        )
    if not np.allclose(image.affine, label.affine, atol=atol):
        raise DataError(
            f"Case {case.id}: image and label affines differ (image {np.round(image.affine, 3).tolist()}, "
            f"label {np.round(label.affine, 3).tolist()}); resample the label onto the image grid."
        )
    values = np.unique(np.asarray(label.dataobj))
    if not np.all(np.equal(np.mod(values, 1), 0)):
        raise DataError(
            f"Case {case.id}: label {case.label.name} holds non-integer values {values[:5].tolist()}."
        )
    unknown = sorted(set(values.astype(int).tolist()) - set(labels))
    if unknown:
        raise DataError(
            f"Case {case.id}: label {case.label.name} holds values {unknown} that dataset.json does "
            f"not declare (declared: {dict(sorted(labels.items()))})."
        )
    info["values"] = values.astype(int).tolist()
    return info


def _raw_zooms(path: Path, header_class) -> np.ndarray:
    """Voxel sizes as stored: nibabel silently replaces a zero pixdim by 1 on loading."""
    from nibabel.openers import ImageOpener

    with ImageOpener(path) as handle:
        header = header_class.from_fileobj(handle, check=False)
    return np.asarray(header["pixdim"][1:4], dtype=float)


def write_dataset_json(
    root: str | os.PathLike,
    *,
    name: str,
    labels: Mapping[int, str],
    modalities: Mapping[int, str],
    training: Sequence[tuple[str, str]],
    test: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``dataset.json`` (atomically) for files already in place.

    Parameters
    ----------
    root : path-like
        Task folder.
    name : str
        Task name.
    labels, modalities : mapping of int to str
        Label and channel names.
    training : sequence of (image, label)
        Paths relative to ``root`` (``"imagesTr/x.nii.gz"``).
    test : sequence of str
        Test image paths relative to ``root``.
    extra : mapping | None
        Further entries (description, reference, licence).
    provenance : mapping | None
        When given (``stage``, ``params``, ``inputs``), ``dataset.json`` is written
        with a provenance record (see :func:`neuroai.io.write_artifact`); write it
        last, as the mark that the dataset is complete.
    """
    document = {
        "name": name,
        **dict(extra or {}),
        "tensorImageSize": "4D" if len(modalities) > 1 else "3D",
        "modality": {str(k): v for k, v in sorted(modalities.items())},
        "labels": {str(k): v for k, v in sorted(labels.items())},
        "numTraining": len(training),
        "numTest": len(test),
        "training": [{"image": f"./{i}", "label": f"./{lab}"} for i, lab in training],
        "test": [f"./{t}" for t in test],
    }
    path = Path(root) / "dataset.json"
    text = json.dumps(document, indent=2) + "\n"
    if provenance is not None:
        from neuroai.io.store import write_artifact

        return write_artifact(
            path, lambda tmp: tmp.write_text(text, encoding="utf-8"), **provenance
        )
    with atomic_open(path) as handle:
        handle.write(text)
    return path
