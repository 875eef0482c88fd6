"""4D BOLD runs: finding them in a BIDS folder and opening them with checks.

A run is a 4D NIfTI image ``sub-<label>/[ses-<label>/]func/sub-<label>_..._bold.nii[.gz]``
whose last axis is time, with a usable affine (voxel to world millimetres) and a
repetition time, taken from a BIDS JSON sidecar (``RepetitionTime``, seconds) or,
failing that, from the NIfTI header. Data are never read here: :func:`open_bold`
returns nibabel's lazy proxy, so callers can stream frames.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroai.errors import DataError
from neuroai.io.bids import subject_func_files

BOLD_SUFFIXES = ("_bold.nii.gz", "_bold.nii")


@dataclass(frozen=True)
class OpenedBold:
    """One 4D BOLD image, opened lazily and checked (what :func:`open_bold` returns).

    Not :class:`neuroai.io.BoldRun`, which is a run *found* in a BIDS or fMRIPrep
    dataset (its entities, sidecars, confounds); this is the image itself, with
    its affine and repetition time checked.

    Attributes
    ----------
    path : Path
        The NIfTI file.
    image : nibabel.Nifti1Image
        The image; ``image.dataobj`` is a lazy array proxy of shape
        (n_x, n_y, n_z, n_frames).
    affine : ndarray, shape (4, 4)
        Voxel indices to world coordinates in millimetres.
    tr : float
        Repetition time in seconds.
    tr_source : str
        Where ``tr`` came from (``"sidecar"`` or ``"header"``).
    """

    path: Path
    image: object
    affine: np.ndarray
    tr: float
    tr_source: str

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return tuple(int(n) for n in self.image.shape)

    @property
    def n_frames(self) -> int:
        return int(self.image.shape[3])


def bold_sidecar(path: str | os.PathLike) -> Path:
    """The BIDS JSON sidecar of a ``*_bold.nii[.gz]`` file."""
    path = Path(path)
    for suffix in (".nii.gz", ".nii"):
        if path.name.endswith(suffix):
            return path.with_name(path.name[: -len(suffix)] + ".json")
    return path.with_suffix(".json")


def _check_affine(path: Path, image) -> np.ndarray:
    header = image.header
    codes = [int(header.get(key, 0) or 0) for key in ("sform_code", "qform_code")]
    if "sform_code" in header and not any(codes):
        raise DataError(
            f"{path} has no affine: its NIfTI header sets neither an sform nor a qform "
            "(sform_code = qform_code = 0), so its voxels cannot be placed in MNI space. "
            "Write the image with its voxel-to-world transform (for example with nibabel, "
            "img.set_sform(affine, code='mni')), or re-export it from the preprocessing tool."
        )
    affine = np.asarray(image.affine, dtype=np.float64)
    linear = affine[:3, :3]
    if not np.isfinite(affine).all() or abs(np.linalg.det(linear)) < 1e-6:
        raise DataError(
            f"{path} has a singular or non-finite affine (determinant of its 3x3 part "
            f"{np.linalg.det(linear) if np.isfinite(linear).all() else 'not finite'}), so "
            f"voxel positions are undefined:\n{np.array2string(affine, precision=3)}\n"
            "Fix the header's sform/qform (voxel sizes must be non-zero)."
        )
    return affine


def _repetition_time(path: Path, image) -> tuple[float, str]:
    sidecar = bold_sidecar(path)
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"The sidecar {sidecar} is not valid JSON: {exc}.") from exc
        tr = meta.get("RepetitionTime") if isinstance(meta, dict) else None
        if tr is not None:
            if isinstance(tr, bool) or not isinstance(tr, (int, float)) or not tr > 0:
                raise DataError(
                    f"{sidecar} gives RepetitionTime {tr!r}; it must be a positive number of seconds."
                )
            return float(tr), "sidecar"
    zooms = image.header.get_zooms()
    unit = image.header.get_xyzt_units()[1] if hasattr(image.header, "get_xyzt_units") else "sec"
    scale = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}.get(unit)
    tr = float(zooms[3]) * scale if len(zooms) > 3 and scale else 0.0
    if not tr > 0:
        found = (
            f"its header gives no time unit for pixdim[4] = {float(zooms[3]):g}"
            if len(zooms) > 3 and scale is None
            else "the header's fourth voxel size (pixdim[4]) is 0"
        )
        raise DataError(
            f"{path} has no repetition time: no BIDS sidecar {sidecar.name} with RepetitionTime, "
            f'and {found}. Add the sidecar ({{"RepetitionTime": <seconds>}}) or set the '
            "header's time units and pixdim[4]."
        )
    return tr, "header"


def open_bold(path: str | os.PathLike) -> OpenedBold:
    """Open a 4D BOLD run lazily and check it.

    Parameters
    ----------
    path : path-like
        A NIfTI image (.nii or .nii.gz), 4D with time last.

    Returns
    -------
    OpenedBold

    Raises
    ------
    DataError
        The file is missing or unreadable, is not 4D (a 3D image is a single
        volume, not a run), has no frames, has a missing or singular affine, or
        has no repetition time.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise DataError(f"BOLD run {path} does not exist.")
    try:
        image = nib.load(path, mmap=False)  # read only the frames asked, keep memory flat
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise DataError(f"{path} is not a readable NIfTI image ({exc}).") from exc
    shape = tuple(image.shape)
    if len(shape) != 4:
        hint = (
            " It is a single 3D volume; a run needs its frames stacked along a fourth "
            "(time) axis, for example with nilearn.image.concat_imgs."
            if len(shape) == 3
            else ""
        )
        raise DataError(f"{path} has shape {shape}; a BOLD run must be 4D (x, y, z, time).{hint}")
    if shape[3] < 1 or min(shape[:3]) < 1:
        raise DataError(f"{path} has shape {shape}: it holds no frames.")
    affine = _check_affine(path, image)
    tr, tr_source = _repetition_time(path, image)
    return OpenedBold(path=path, image=image, affine=affine, tr=tr, tr_source=tr_source)


def _run_name(path: Path) -> str | None:
    for suffix in BOLD_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def bold_files_by_subject(
    root: str | os.PathLike, *, subjects: Sequence[str] | None = None
) -> dict[str, list[Path]]:
    """Find the 4D BOLD files of a BIDS(-derivatives) dataset, per subject.

    Looks for ``sub-<label>/[ses-<label>/]func/sub-<label>_*_bold.nii[.gz]``, whatever
    their other entities (``desc``, ``space``). For runs with their entities,
    sidecars and confounds, and filters by session, task, run and space, use
    :func:`neuroai.io.index_bold_runs`.

    Parameters
    ----------
    root : path-like
        The dataset folder.
    subjects : sequence of str | None
        Keep only these subject labels (without ``sub-``).

    Returns
    -------
    dict
        Subject label to its runs, sorted by file name (sessions, tasks and run
        numbers in BIDS order); subjects sorted by label.
    """
    files = subject_func_files(root, "*_bold.nii*", subjects=subjects)
    runs = {}
    for label, paths in files.items():
        named = sorted((p for p in paths if _run_name(p) is not None), key=lambda p: p.name)
        if named:
            runs[label] = named
    if subjects is not None:
        missing = sorted({str(s) for s in subjects} - set(runs))
        if missing:
            raise DataError(
                f"Subjects {missing} have no 4D BOLD runs (*_bold.nii[.gz]) under {root}."
            )
    if not runs:
        raise DataError(
            f"No 4D BOLD runs found under {root}: expected "
            "sub-<label>/[ses-<label>/]func/sub-<label>_..._bold.nii[.gz]."
        )
    return runs


_RENAMED = {"BoldRun": "OpenedBold", "index_bold_runs": "bold_files_by_subject"}


def __getattr__(name: str):
    if name in _RENAMED:
        new = _RENAMED[name]
        warnings.warn(
            f"neuroai.tokenizers.runs.{name} was renamed {new}: neuroai.io.{name} is "
            f"a different thing with the same name. The old name will be removed.",
            FutureWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
