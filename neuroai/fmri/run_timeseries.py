"""From one BIDS or fMRIPrep run to cleaned region time series and its QC.

:func:`run_timeseries` chains, for one :class:`~neuroai.io.bids.BoldRun`: the
repetition time (JSON sidecar), the confounds (fMRIPrep table, by strategy, or
for raw BIDS the global signal measured in the image), one streaming pass of
:class:`~neuroai.fmri.extraction.AtlasMasker` (region signals, global signal,
DVARS, carpet), and :func:`~neuroai.fmri.cleaning.clean`. Each stage's options
are plain keyword arguments, so the Snakemake stage, the cohort API and a
notebook call the same function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from neuroai._logging import get_logger
from neuroai.errors import ConfigError, DataError
from neuroai.fmri.atlas import Atlas
from neuroai.fmri.cleaning import clean
from neuroai.fmri.confounds import _SUFFIXES, check_strategy, load_confounds
from neuroai.fmri.extraction import AtlasMasker, image_tr
from neuroai.fmri.qc import carpet_image, motion_trace
from neuroai.io.bids import BoldRun, repetition_time

logger = get_logger(__name__)

#: Strategies a raw BIDS run supports: computed from the image itself.
RAW_STRATEGIES = ("global_signal",)


@dataclass
class RunTimeseries:
    """Cleaned region time series of one run, with what the report needs.

    Attributes
    ----------
    key : str
        The run key.
    timeseries : ndarray, shape (n_kept, n_regions)
        Cleaned region signals (volumes censored by the sample mask removed).
    regions : list of str
        Region names.
    tr : float
        Repetition time in seconds.
    n_volumes : int
        Volumes in the image.
    kept : ndarray of int, shape (n_kept,)
        Indices of the volumes kept.
    empty_regions : list of str
        Regions without voxels in this image (zeros).
    confounds : list of str
        Names of the regressors removed.
    motion_name : str
        ``"framewise displacement (mm)"`` or ``"DVARS (% of mean signal)"``.
    motion : ndarray, shape (n_volumes,)
        That trace (DVARS starts with 0).
    dvars : ndarray, shape (n_volumes,)
        DVARS in percent of the mean brain signal (first volume 0).
    carpet : ndarray, shape (n_carpet_voxels, n_volumes) | None
        Detrended, z-scored voxel rows (float16).
    carpet_regions : ndarray | None
        Region index of each carpet row.
    """

    key: str
    timeseries: np.ndarray
    regions: list[str]
    tr: float
    n_volumes: int
    kept: np.ndarray
    empty_regions: list[str] = field(default_factory=list)
    confounds: list[str] = field(default_factory=list)
    motion_name: str = ""
    motion: np.ndarray | None = None
    dvars: np.ndarray | None = None
    carpet: np.ndarray | None = None
    carpet_regions: np.ndarray | None = None


def _image_confounds(strategy: Sequence[str], global_signal: np.ndarray, model: str):
    """Global-signal regressors of a raw run, with fMRIPrep's names and expansions."""
    import pandas as pd

    unsupported = [s for s in strategy if s not in RAW_STRATEGIES]
    if unsupported:
        raise ConfigError(
            f"Confound strategies {unsupported} need fMRIPrep's confounds table, which raw BIDS "
            f"runs do not have. For raw runs use {list(RAW_STRATEGIES)} (computed from the "
            "image) or an empty strategy, or run fMRIPrep and use layout 'fmriprep'."
        )
    if "global_signal" not in strategy:
        return None
    columns = {"global_signal": global_signal}
    change = np.diff(global_signal)
    derivative = np.r_[change[0], change]  # the first row copies the second, as nilearn does
    if "derivative1" in _SUFFIXES[model]:
        columns["global_signal_derivative1"] = derivative
    if "power2" in _SUFFIXES[model]:
        columns["global_signal_power2"] = global_signal**2
    if "derivative1_power2" in _SUFFIXES[model]:
        columns["global_signal_derivative1_power2"] = derivative**2
    table = pd.DataFrame(columns)
    return table - table.mean(axis=0)


def run_timeseries(
    run: BoldRun,
    atlas: Atlas,
    *,
    strategy: Sequence[str] = (),
    confound_options: dict | None = None,
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
    qc: bool = True,
    n_carpet_voxels: int = 400,
) -> RunTimeseries:
    """Region time series of one run, cleaned, with QC traces.

    Parameters
    ----------
    run : BoldRun
        From :func:`neuroai.io.index_bold_runs`.
    atlas : Atlas
        The parcellation (in the run's space).
    strategy : sequence of str
        Confound strategy (:mod:`neuroai.fmri.confounds`); for raw BIDS runs only
        ``"global_signal"`` (measured in the atlas's voxels).
    confound_options : dict | None
        Options of :func:`~neuroai.fmri.confounds.load_confounds` (``motion``,
        ``scrub``, ``fd_threshold`` ...).
    detrend, standardize, standardize_confounds, filter, low_pass, high_pass, extrapolate
        See :func:`neuroai.fmri.clean`; band-pass 0.01-0.1 Hz by default.
    use_mask : bool
        Restrict the atlas to fMRIPrep's brain mask when the run has one.
    resample, chunk_mb, non_finite
        See :class:`~neuroai.fmri.extraction.AtlasMasker`.
    qc : bool
        Also compute DVARS, the global signal and the carpet.
    n_carpet_voxels : int
        Rows of the carpet.

    Returns
    -------
    RunTimeseries

    Raises
    ------
    DataError
        Missing TR, 3D image, NaN voxels, an fMRIPrep run without its confounds
        file when a strategy is asked for, every volume censored ...
    ConfigError
        A strategy that the run's layout cannot provide.
    """
    options = dict(confound_options or {})
    strategy = list(strategy)
    check_strategy(strategy, **options)
    tr = repetition_time(run)
    header_tr = image_tr(run.path)
    if header_tr is not None and abs(header_tr - tr) > 0.01 * tr:
        logger.warning(
            "%s: RepetitionTime %.4g s in the sidecar but %.4g s in the NIfTI header; using the "
            "sidecar (BIDS).",
            run.path,
            tr,
            header_tr,
        )
    mask = run.mask if (use_mask and run.mask is not None) else None
    needs_gs = run.layout != "fmriprep" and "global_signal" in strategy
    extractor = AtlasMasker(
        atlas,
        mask_img=mask,
        resample=resample,
        chunk_mb=chunk_mb,
        non_finite=non_finite,
        qc=qc or needs_gs,
        n_carpet_voxels=n_carpet_voxels,
    )
    extraction = extractor.fit(run.path).transform_detail(run.path)
    n_volumes = extraction.timeseries.shape[0]
    sample_mask = None
    confounds = None
    if run.layout == "fmriprep":
        if strategy and run.confounds is None:
            raise DataError(
                f"{run.path} has no fMRIPrep confounds table beside it "
                "(*_desc-confounds_timeseries.tsv), but the confound strategy "
                f"{strategy} needs one."
            )
        if run.confounds is not None:
            confounds, sample_mask = load_confounds(run.confounds, strategy, **options)
    else:
        confounds = _image_confounds(
            strategy, extraction.global_signal, options.get("global_signal", "basic")
        )
    if confounds is not None and len(confounds) != n_volumes:
        raise DataError(
            f"The confounds table {run.confounds} has {len(confounds)} rows but {run.path} has "
            f"{n_volumes} volumes: they do not belong to the same run."
        )
    kept = np.arange(n_volumes) if sample_mask is None else np.asarray(sample_mask)
    cleaned = clean(
        extraction.timeseries,
        confounds=None if confounds is None or confounds.shape[1] == 0 else confounds.to_numpy(),
        sample_mask=sample_mask,
        t_r=tr,
        detrend=detrend,
        standardize=standardize,
        standardize_confounds=standardize_confounds,
        filter=filter,
        low_pass=low_pass,
        high_pass=high_pass,
        extrapolate=extrapolate,
    )
    empty = [extraction.regions.index(r) for r in extraction.empty_regions]
    cleaned[:, empty] = 0.0
    result = RunTimeseries(
        key=run.key,
        timeseries=cleaned,
        regions=extraction.regions,
        tr=tr,
        n_volumes=n_volumes,
        kept=kept,
        empty_regions=extraction.empty_regions,
        confounds=[] if confounds is None else list(confounds.columns),
    )
    if qc:
        mean_signal = float(np.mean(extraction.global_signal))
        dvars = np.r_[0.0, extraction.dvars] / (abs(mean_signal) or 1.0) * 100
        result.dvars = dvars
        trace = motion_trace(run.confounds) if run.confounds is not None else None
        if trace is not None:
            result.motion_name, result.motion = trace[0], np.asarray(trace[1], dtype=float)
        else:
            result.motion_name, result.motion = "DVARS (% of mean signal)", dvars
        result.carpet = carpet_image(extraction.carpet)
        result.carpet_regions = extraction.carpet_regions
    return result
