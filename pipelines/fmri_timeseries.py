"""Region time series of one BIDS or fMRIPrep run: parcellate, clean, QC.

Finds the run by its key in the dataset, streams its 4D image through the atlas,
removes the confounds of the chosen strategy, filters and scales, and writes
the BIDS-derivatives region time series (*_timeseries.tsv with a JSON sidecar),
the run's QC traces (framewise displacement or DVARS, global signal) as JSON and
its carpet (sampled voxels x time, float16) as .npy, each with provenance.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np

from neuroai import get_logger
from neuroai.errors import DataError, did_you_mean
from neuroai.fmri.atlas import Atlas, atlas_paths, load_atlas
from neuroai.fmri.qc import summarize_trace
from neuroai.fmri.run_timeseries import RunTimeseries, run_timeseries
from neuroai.io import index_bold_runs, save_array, save_json, write_region_timeseries
from neuroai.io.bids import parse_name
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.fmri_timeseries")

#: The positional parameters of :func:`run` (files, not parameters).
POSITIONAL = ("root", "run_key", "output", "qc_output", "carpet_output")
#: :func:`run`'s parameters that go to :func:`run_timeseries` as they are.
EXTRACTION_OPTIONS = (
    "detrend",
    "standardize",
    "standardize_confounds",
    "filter",
    "low_pass",
    "high_pass",
    "extrapolate",
    "use_mask",
    "resample",
    "chunk_mb",
    "non_finite",
    "n_carpet_voxels",
)
CONFOUND_OPTIONS = (
    "motion",
    "wm_csf",
    "global_signal",
    "compcor",
    "n_compcor",
    "scrub",
    "fd_threshold",
    "std_dvars_threshold",
    "ica_aroma",
    "demean",
)


def find_run(root, key: str, *, layout: str, desc: str = "preproc"):
    """The :class:`~neuroai.io.BoldRun` with run key ``key`` in a dataset."""
    parsed = parse_name(f"{key}_bold.nii")
    if parsed is None or "sub" not in parsed[0]:
        raise DataError(f"{key!r} is not a run key (sub-<label>_..._task-<label>...).")
    entities = parsed[0]
    runs = index_bold_runs(
        root,
        layout,
        subjects=[entities["sub"]],
        sessions=[entities["ses"]] if "ses" in entities else None,
        desc=desc,
    )
    if key not in runs:
        raise DataError(
            f"No run {key!r} in {root} (layout {layout}).{did_you_mean(key, runs)} "
            f"Runs of this subject: {', '.join(runs) or 'none'}."
        )
    return runs[key]


def run(
    root: str | Path,
    run_key: str,
    output: str | Path,
    qc_output: str | Path,
    carpet_output: str | Path,
    *,
    layout: str,
    atlas: dict,
    desc: str = "preproc",
    strategy: list[str] | tuple[str, ...] = (),
    motion: str = "full",
    wm_csf: str = "basic",
    global_signal: str = "basic",
    compcor: str = "anat_combined",
    n_compcor: int | str = "all",
    scrub: int = 5,
    fd_threshold: float = 0.5,
    std_dvars_threshold: float = 1.5,
    ica_aroma: str = "full",
    demean: bool = True,
    detrend: bool = True,
    standardize: str | None = "zscore_sample",
    standardize_confounds: bool = True,
    filter: str | bool = "butterworth",  # noqa: A002 - nilearn's name
    low_pass: float | None = 0.1,
    high_pass: float | None = 0.01,
    extrapolate: bool = False,
    use_mask: bool = True,
    resample: str = "warn",
    chunk_mb: float = 64.0,
    non_finite: str = "error",
    n_carpet_voxels: int = 400,
) -> Path:
    """Extract and clean one run's region time series; write them with QC.

    Parameters
    ----------
    root : path-like
        The dataset folder (raw BIDS or fMRIPrep derivatives).
    run_key : str
        The run (``sub-01_task-rest_run-1[_space-...]``).
    output : path-like
        Destination ``*_timeseries.tsv`` (n_kept_volumes x n_regions; sidecar beside).
    qc_output : path-like
        Destination QC JSON (motion or DVARS trace, global signal, summaries).
    carpet_output : path-like
        Destination carpet ``.npy`` (n_carpet_voxels x n_volumes, float16).
    layout : {"bids", "fmriprep"}
        The dataset's layout.
    atlas : dict
        Atlas spec (``labels_img`` / ``maps_img`` / ``coordinates``, ``labels``,
        ``radius_mm`` ...); relative paths resolve against ``root``.
    desc : str
        fMRIPrep ``desc`` of the images.
    strategy, motion, wm_csf, global_signal, compcor, n_compcor, scrub, fd_threshold,
    std_dvars_threshold, ica_aroma, demean
        Confound selection (see :func:`neuroai.fmri.load_confounds`).
    detrend, standardize, standardize_confounds, filter, low_pass, high_pass, extrapolate
        Cleaning (see :func:`neuroai.fmri.clean`).
    use_mask, resample, chunk_mb, non_finite, n_carpet_voxels
        Extraction (see :func:`neuroai.fmri.run_timeseries.run_timeseries`).

    Returns
    -------
    Path
        ``output``.
    """
    params = {k: v for k, v in locals().items() if k not in POSITIONAL}
    bold = find_run(root, run_key, layout=layout, desc=desc)
    parcellation = load_atlas(atlas, root=root)
    result = _extract(bold, parcellation, params)
    return save_run(
        result,
        output,
        qc_output,
        carpet_output,
        root=root,
        bold=bold,
        atlas=parcellation,
        params=params,
    )


def stage_params(**params) -> dict:
    """:func:`run`'s keyword parameters, those not given at their defaults (as its record
    keeps them).

    Raises
    ------
    TypeError
        A parameter :func:`run` does not take, or no ``layout`` or ``atlas``.
    """
    bound = inspect.signature(run).bind(*[None] * len(POSITIONAL), **params)
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k not in POSITIONAL}


def extract_run(run_key: str, *, root: str | Path, atlas: Atlas, params: dict) -> RunTimeseries:
    """One run's region time series and QC traces, not written: the task of the batch
    stage (neuroai.pipelines.fmri_timeseries_batch), which writes them with
    :func:`save_run`.

    Parameters
    ----------
    run_key : str
        The run.
    root : path-like
        The dataset folder (absolute on a Dask worker).
    atlas : Atlas
        The parcellation, loaded.
    params : dict
        :func:`run`'s keyword parameters (:func:`stage_params`).
    """
    bold = find_run(root, run_key, layout=params["layout"], desc=params["desc"])
    return _extract(bold, atlas, params)


def _extract(bold, atlas: Atlas, params: dict) -> RunTimeseries:
    return run_timeseries(
        bold,
        atlas,
        strategy=params["strategy"],
        confound_options={k: params[k] for k in CONFOUND_OPTIONS},
        **{k: params[k] for k in EXTRACTION_OPTIONS},
        qc=True,
    )


def save_run(
    result: RunTimeseries,
    output: str | Path,
    qc_output: str | Path,
    carpet_output: str | Path,
    *,
    root: str | Path,
    bold,
    atlas: Atlas,
    params: dict,
) -> Path:
    """Write one run's time series (:func:`extract_run`), QC and carpet, each with its
    provenance record (the same whether the run was extracted alone or in a batch).

    Parameters
    ----------
    result : RunTimeseries
    output, qc_output, carpet_output : path-like
        See :func:`run`.
    root : path-like
        The dataset folder as given (the records name the files under it).
    bold : BoldRun
        The run, found under ``root``.
    atlas : Atlas
        The parcellation, loaded from ``root`` (its description goes in the sidecar).
    params : dict
        :func:`run`'s keyword parameters.

    Returns
    -------
    Path
        ``output``.
    """
    inputs = [p for p in (bold.path, bold.confounds, bold.mask, *bold.sidecars) if p is not None]
    inputs += list(atlas_paths(params["atlas"], root=root).values())
    write_region_timeseries(
        output,
        result.timeseries,
        tr=result.tr,
        regions=result.regions,
        sidecar={
            "Atlas": atlas.describe(),
            "Sources": [str(bold.path)],
            "ConfoundStrategy": list(params["strategy"]),
            "Confounds": result.confounds,
            "VolumesKept": result.kept.tolist(),
            "NumberOfVolumes": result.n_volumes,
            "EmptyRegions": result.empty_regions,
            "Cleaning": {
                "detrend": params["detrend"],
                "standardize": params["standardize"],
                "filter": params["filter"],
                "low_pass_hz": params["low_pass"],
                "high_pass_hz": params["high_pass"],
            },
        },
        stage="fmri_timeseries",
        params=params,
        inputs=inputs,
    )
    fd_threshold = params["fd_threshold"]
    qc = {
        "run": bold.key,
        "tr": result.tr,
        "n_volumes": result.n_volumes,
        "n_kept": int(result.kept.size),
        "n_regions": len(result.regions),
        "empty_regions": result.empty_regions,
        "motion_measure": result.motion_name,
        "motion": result.motion,
        "motion_summary": summarize_trace(
            result.motion, threshold=fd_threshold if "framewise" in result.motion_name else None
        ),
        "dvars_pct": result.dvars,
        "kept": result.kept,
        "confounds": result.confounds,
    }
    provenance = {"stage": "fmri_timeseries", "params": params, "inputs": [output]}
    save_json(qc_output, qc, **provenance)
    save_array(
        carpet_output,
        result.carpet,
        **provenance,
        extra={"carpet_regions": np.asarray(result.carpet_regions).tolist()},
    )
    logger.info(
        "Wrote %s (%d of %d volumes x %d regions, %s)",
        output,
        result.kept.size,
        result.n_volumes,
        len(result.regions),
        result.motion_name,
    )
    return Path(output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.fmri_timeseries")
    parser.add_argument("--root", required=True, help="dataset folder (BIDS or fMRIPrep)")
    parser.add_argument("--run-key", required=True, help="run key, e.g. sub-01_task-rest_run-1")
    parser.add_argument("--output", required=True, help="destination *_timeseries.tsv")
    parser.add_argument("--qc-output", required=True, help="destination QC .json")
    parser.add_argument("--carpet-output", required=True, help="destination carpet .npy")
    args = parser.parse_args(argv)
    execute(args, run, args.root, args.run_key, args.output, args.qc_output, args.carpet_output)


if __name__ == "__main__":
    main(sys.argv[1:])
