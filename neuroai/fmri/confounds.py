"""Confound regressors from fMRIPrep's confounds table, by named strategy.

The strategies and their options are the ones nilearn's
:func:`nilearn.interfaces.fmriprep.load_confounds` names, with the same
meaning, and :func:`load_confounds` returns the same table and sample mask
(tested against nilearn):

``motion``
    6 rigid-body parameters; ``motion="basic"`` (6), ``"derivatives"`` (12),
    ``"power2"`` (12) or ``"full"`` (24: parameters, derivatives, squares).
``wm_csf``, ``global_signal``
    Mean white-matter and CSF signals, or the global signal, with the same
    four expansions.
``compcor``
    CompCor components listed in the confounds JSON: ``"anat_combined"``,
    ``"anat_separated"``, ``"temporal"``, ``"temporal_anat_combined"``,
    ``"temporal_anat_separated"``; ``n_compcor`` components per mask or ``"all"``.
    Needs ``high_pass`` (fMRIPrep computes CompCor on high-pass filtered data).
``high_pass``
    fMRIPrep's discrete cosine regressors (``cosine*``).
``scrub``
    Censor volumes with framewise displacement above ``fd_threshold`` (mm) or
    standardised DVARS above ``std_dvars_threshold``, and segments of fewer
    than ``scrub`` volumes left between them; returned as a sample mask.
``ica_aroma``
    ``"basic"``: the ``aroma*`` noise regressors; ``"full"``: none (the image
    must be fMRIPrep's ``desc-smoothAROMAnonaggr`` output).
``non_steady_state``
    Always applied: volumes flagged ``non_steady_state_outlier*`` are censored.

Derivative columns start with ``n/a``; the first row takes the second row's
value. With ``demean=True`` every regressor is centred on the volumes kept.

This reader is our own, not a call to nilearn's, for what nilearn's cannot do:
nilearn finds the table from the path of the preprocessed image, and accepts only
``*_desc-preproc_bold.nii.gz`` (or CIFTI/GIFTI) names. Given the table's own path, or
a run stored as an uncompressed ``.nii`` (the neuropycon demo's), it raises
``ValueError: Unsupported input.`` (``benchmarks/nilearn_equivalents.py`` records
both); :func:`load_confounds` takes the ``*_desc-confounds_timeseries.tsv`` that the
BIDS index found, whatever the image, and names the missing columns and the
strategy that needs them in its :class:`~neuroai.errors.DataError`. The same
benchmark finds it no faster than nilearn's (CPU time ratio nilearn / ours 1.03-1.15
on a 1200-volume, 349-column table under the simple, scrubbing and compcor
presets; peak memory 4.5-6.9 MB against nilearn's 4.9-15.2 MB): use nilearn's where
the image path is at hand and named as fMRIPrep names it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from neuroai._logging import get_logger
from neuroai.errors import ConfigError, DataError, check_option

logger = get_logger(__name__)

STRATEGIES = (
    "motion",
    "high_pass",
    "wm_csf",
    "global_signal",
    "compcor",
    "ica_aroma",
    "scrub",
    "non_steady_state",
)
MODELS = ("basic", "power2", "derivatives", "full")
COMPCOR = (
    "anat_combined",
    "anat_separated",
    "temporal",
    "temporal_anat_combined",
    "temporal_anat_separated",
)
#: nilearn's ``load_confounds_strategy`` presets.
PRESETS: dict[str, dict] = {
    "simple": {"strategy": ("high_pass", "motion", "wm_csf"), "motion": "full", "wm_csf": "basic"},
    "scrubbing": {
        "strategy": ("high_pass", "motion", "wm_csf", "scrub"),
        "motion": "full",
        "wm_csf": "full",
        "scrub": 5,
        "fd_threshold": 0.5,
        "std_dvars_threshold": 1.5,
    },
    "compcor": {
        "strategy": ("high_pass", "motion", "compcor"),
        "motion": "full",
        "compcor": "anat_combined",
        "n_compcor": "all",
    },
    "ica_aroma": {
        "strategy": ("high_pass", "wm_csf", "ica_aroma"),
        "wm_csf": "basic",
        "ica_aroma": "full",
    },
}
_SUFFIXES = {
    "basic": (),
    "derivatives": ("derivative1",),
    "power2": ("power2",),
    "full": ("derivative1", "power2", "derivative1_power2"),
}
MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


def _expand(names: Sequence[str], model: str) -> list[str]:
    return list(names) + [f"{n}_{s}" for n in names for s in _SUFFIXES[model]]


def check_strategy(strategy: Sequence[str], **options) -> None:
    """Validate a strategy and its options; raise :class:`ConfigError`.

    Parameters
    ----------
    strategy : sequence of str
        Names from :data:`STRATEGIES`.
    **options
        ``motion``, ``wm_csf``, ``global_signal`` (one of :data:`MODELS`),
        ``compcor`` (one of :data:`COMPCOR`), ``n_compcor``, ``ica_aroma``,
        ``scrub``, ``fd_threshold``, ``std_dvars_threshold``.
    """
    if isinstance(strategy, str) or not isinstance(strategy, (list, tuple)):
        raise ConfigError(
            f"The confound strategy must be a list of names such as ['motion', 'wm_csf'], "
            f"got {strategy!r}."
        )
    for name in strategy:
        if name == "tedana":
            raise ConfigError(
                "The 'tedana' confound strategy is not supported: it reads tedana's own "
                "outputs, not fMRIPrep's confounds table."
            )
        check_option("confounds strategy", name, STRATEGIES)
    if "compcor" in strategy and "high_pass" not in strategy:
        raise ConfigError(
            "The 'compcor' strategy needs 'high_pass' in the strategy too: fMRIPrep computes "
            "CompCor components on high-pass filtered data, so the cosine regressors must be "
            "removed with them."
        )
    for key in ("motion", "wm_csf", "global_signal"):
        if key in options and options[key] is not None:
            check_option(key, options[key], MODELS)
    if options.get("compcor") is not None:
        check_option("compcor", options["compcor"], COMPCOR)
    if options.get("ica_aroma") is not None:
        check_option("ica_aroma", options["ica_aroma"], ("full", "basic"))
    n_compcor = options.get("n_compcor", "all")
    if n_compcor != "all" and (not isinstance(n_compcor, int) or n_compcor < 1):
        raise ConfigError(f"n_compcor must be 'all' or a positive integer, got {n_compcor!r}.")
    scrub = options.get("scrub", 5)
    if not isinstance(scrub, int) or isinstance(scrub, bool) or scrub < 0:
        raise ConfigError(
            f"scrub (the shortest segment kept) must be an integer >= 0, got {scrub!r}."
        )


def resolve_preset(denoise_strategy: str, **overrides) -> dict:
    """Options of one of nilearn's presets (:data:`PRESETS`), with overrides.

    ``global_signal`` given as a model name adds the global signal, as
    nilearn's ``load_confounds_strategy`` does.
    """
    check_option("denoise_strategy", denoise_strategy, PRESETS)
    params = dict(PRESETS[denoise_strategy])
    params["strategy"] = tuple(params["strategy"])
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "global_signal":
            params["strategy"] += ("global_signal",)
        params[key] = value
    return params


def _read_table(path: Path):
    import pandas as pd

    if not path.is_file():
        raise DataError(f"Confounds file {path} does not exist.")
    table = pd.read_csv(path, sep="\t", encoding="utf-8", na_values=["n/a"])
    if any(any(ch.isupper() for ch in str(col)) and "_" not in str(col) for col in table.columns):
        raise DataError(
            f"{path} has CamelCase column names: it was written by fMRIPrep 1.0/1.1, whose "
            "confounds are not supported. Re-run a recent fMRIPrep (>= 1.2)."
        )
    try:
        float(table.columns[0])
    except ValueError:
        pass
    else:
        raise DataError(f"{path} has no header row; fMRIPrep confounds tables always have one.")
    return table


def _require(table, columns: Sequence[str], path: Path, strategy: str) -> list[str]:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(
            f"{path} lacks the columns {missing} that the {strategy!r} confound strategy needs. "
            "Choose a strategy that this confounds file supports, or a model with fewer terms."
        )
    return list(columns)


def _compcor_columns(meta: Mapping, compcor: str, n_compcor) -> list[str]:
    prefixes = {
        "temporal_anat_combined": ("t", "a"),
        "temporal_anat_separated": ("t", "a"),
        "temporal": ("t",),
        "anat_combined": ("a",),
        "anat_separated": ("a",),
    }[compcor]
    masks = ("combined",) if compcor.endswith("combined") else ("WM", "CSF")
    columns: list[str] = []
    for prefix in prefixes:
        count = sum(1 for name in meta if f"{prefix}_comp_cor" in name)
        names = [f"{prefix}_comp_cor_{i:02d}" for i in range(count)]
        groups = (
            [[n for n in names if meta.get(n, {}).get("Mask") == m] for m in masks]
            if prefix == "a"
            else [names]
        )
        for group in groups:
            if n_compcor != "all" and n_compcor < len(group):
                group = group[:n_compcor]
            columns.extend(group)
    return columns


def _scrub_index(fd, std_dvars, fd_threshold, std_dvars_threshold, scrub, n) -> np.ndarray:
    """Indices of censored volumes: outliers, then segments shorter than ``scrub``."""
    outliers = np.union1d(
        np.flatnonzero(fd > fd_threshold), np.flatnonzero(std_dvars > std_dvars_threshold)
    )
    if scrub <= 0 or outliers.size == 0:
        return outliers
    censored = set(outliers.tolist())
    if outliers[0] < scrub:
        censored.update(range(outliers[0]))
    if n - (outliers[-1] + 1) < scrub:
        censored.update(range(outliers[-1], n))
    gaps = np.diff(outliers)
    for i in np.flatnonzero((gaps > 1) & (gaps < scrub + 1)):
        censored.update(range(outliers[i] + 1, outliers[i + 1]))
    return np.array(sorted(censored), dtype=int)


def load_confounds(
    confounds_file: str | os.PathLike,
    strategy: Sequence[str] = ("motion", "high_pass", "wm_csf"),
    *,
    motion: str = "full",
    scrub: int = 5,
    fd_threshold: float = 0.5,
    std_dvars_threshold: float = 1.5,
    wm_csf: str = "basic",
    global_signal: str = "basic",
    compcor: str = "anat_combined",
    n_compcor: int | str = "all",
    ica_aroma: str = "full",
    demean: bool = True,
):
    """Select confound regressors and the sample mask of one fMRIPrep run.

    Parameters
    ----------
    confounds_file : path-like
        ``*_desc-confounds_timeseries.tsv`` (its ``.json`` beside it is read for
        ``compcor``).
    strategy : sequence of str
        Noise components to select (see the module docstring).
    motion, wm_csf, global_signal : {"basic", "power2", "derivatives", "full"}
        Expansion of each component.
    scrub : int
        After censoring outliers, also censor segments shorter than this many
        volumes (0 keeps every segment).
    fd_threshold : float
        Framewise displacement threshold in mm.
    std_dvars_threshold : float
        Standardised DVARS threshold.
    compcor : str
        CompCor variant (see the module docstring).
    n_compcor : int or "all"
        Components per mask.
    ica_aroma : {"full", "basic"}
        See the module docstring.
    demean : bool
        Centre each regressor (on the kept volumes when some are censored).

    Returns
    -------
    confounds : pandas.DataFrame | None
        Regressors, shape (n_volumes, n_regressors), columns sorted by name;
        ``None`` when ``strategy`` is empty.
    sample_mask : ndarray of int | None
        Indices of the volumes kept, or ``None`` when none is censored.

    Raises
    ------
    ConfigError
        Unknown strategy or option.
    DataError
        Missing file, missing columns for a strategy, a missing JSON for
        CompCor, or every volume censored.

    Notes
    -----
    Equal to ``nilearn.interfaces.fmriprep.load_confounds(image, ...)`` (tested), and
    kept as our own because nilearn's reads only through a ``.nii.gz``/CIFTI/GIFTI
    image path, refusing the table's own path and ``.nii`` runs, as
    ``benchmarks/nilearn_equivalents.py`` records; it is not faster (ratio 1.03-1.15).
    """
    import pandas as pd

    options = dict(
        motion=motion,
        wm_csf=wm_csf,
        global_signal=global_signal,
        compcor=compcor,
        n_compcor=n_compcor,
        ica_aroma=ica_aroma,
        scrub=scrub,
    )
    check_strategy(strategy, **options)
    path = Path(confounds_file)
    table = _read_table(path)
    meta: dict = {}
    meta_path = path.with_name(path.name.replace(".tsv", ".json"))
    if "compcor" in strategy:
        if not meta_path.is_file():
            raise DataError(
                f"The CompCor strategy needs {meta_path.name} beside {path} (it says which mask "
                "each component comes from); fMRIPrep >= 1.4 writes it."
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    selected: list[str] = [c for c in table.columns if "non_steady_state" in c]
    outlier_frames: list[pd.DataFrame] = []
    for name in strategy:
        if name == "motion":
            selected += _require(table, _expand(MOTION, motion), path, name)
        elif name == "wm_csf":
            selected += _require(table, _expand(["csf", "white_matter"], wm_csf), path, name)
        elif name == "global_signal":
            selected += _require(table, _expand(["global_signal"], global_signal), path, name)
        elif name == "high_pass":
            selected += [c for c in table.columns if "cosine" in c]
        elif name == "compcor":
            columns = _compcor_columns(meta, compcor, n_compcor)
            if not columns:
                raise DataError(f"{meta_path} lists no {compcor} CompCor components.")
            selected += _require(table, columns, path, name)
        elif name == "ica_aroma" and ica_aroma == "basic":
            columns = [c for c in table.columns if "aroma" in c]
            if not columns:
                raise DataError(f"{path} has no 'aroma*' columns for the ica_aroma strategy.")
            selected += columns
        elif name == "scrub":
            _require(table, ["framewise_displacement", "std_dvars"], path, name)
            index = _scrub_index(
                table["framewise_displacement"].to_numpy(),
                table["std_dvars"].to_numpy(),
                fd_threshold,
                std_dvars_threshold,
                scrub,
                len(table),
            )
            one_hot = np.zeros((len(table), index.size), dtype=int)
            one_hot[index, np.arange(index.size)] = 1
            outlier_frames.append(
                pd.DataFrame(one_hot, columns=[f"motion_outlier_{i}" for i in range(index.size)])
            )
    chosen = table.loc[:, list(dict.fromkeys(selected))]
    chosen = pd.concat([chosen.reset_index(drop=True), *outlier_frames], axis=1)
    outlier_cols = sorted(
        c for c in chosen.columns if "motion_outlier" in c or "non_steady_state" in c
    )
    regressor_cols = sorted(set(chosen.columns) - set(outlier_cols))
    sample_mask = None
    if outlier_cols:
        flagged = chosen[outlier_cols].T.drop_duplicates().T.sum(axis=1).to_numpy()
        sample_mask = np.flatnonzero(flagged == 0)
        if sample_mask.size == 0:
            raise DataError(
                f"Every volume of {path} is censored (non-steady-state or scrubbing "
                f"thresholds fd>{fd_threshold} mm, std_dvars>{std_dvars_threshold}). "
                "Raise the thresholds or exclude this run."
            )
    regressors = chosen[regressor_cols].astype(float)
    if regressors.size:
        first = regressors.to_numpy()[0]
        nan = np.isnan(first)
        if nan.any():
            regressors.iloc[0, np.flatnonzero(nan)] = regressors.iloc[1, np.flatnonzero(nan)]
        if np.isnan(regressors.to_numpy()).any():
            bad = regressors.columns[np.isnan(regressors.to_numpy()).any(axis=0)].tolist()
            raise DataError(f"{path}: columns {bad} hold n/a values beyond the first row.")
        if demean:
            rows = slice(None) if sample_mask is None else sample_mask
            regressors = regressors - regressors.iloc[rows].mean(axis=0)
    if len(strategy) == 0:
        return None, sample_mask
    return regressors, sample_mask
