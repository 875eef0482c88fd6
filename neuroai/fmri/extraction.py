"""Region time series from 4D BOLD images, streamed in chunks of volumes.

:func:`extract_timeseries` equals nilearn's ``NiftiLabelsMasker`` (label
atlases), ``NiftiMapsMasker`` (probabilistic maps) and ``NiftiSpheresMasker``
(coordinates), followed by the same optional cleaning (:func:`clean`), but it
never holds the whole run in memory: volumes are read through nibabel's array
proxy a chunk at a time (about ``chunk_mb`` MiB), reduced to regions with a
precomputed sparse (labels, spheres) or dense (maps) matrix, and dropped. Peak
memory is the chunk plus the (n_timepoints x n_regions) result, whatever the
length of the run; compressed ``.nii.gz`` files are decompressed once, front to
back.

:class:`AtlasMasker` is the scikit-learn estimator behind it: ``fit`` places the atlas on
the image grid once (resampling it with a logged warning if needed) and
``transform_detail`` also returns, from the same single pass, the quality
measures the report shows: the global signal and DVARS inside the brain, and a
carpet of sampled voxel time courses.

Bad input is refused with a message naming the file: a 3D image, fewer than 2
volumes, NaN or Inf values in the voxels used (or replaced by 0 with a logged
warning when ``non_finite="zero"``, which is what nilearn does silently), an
atlas with no region in the image or the brain mask.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

from neuroai._logging import get_logger
from neuroai.errors import ConfigError, DataError, check_option
from neuroai.fmri.atlas import AFFINE_TOL, Atlas, Reducer, _load_image
from neuroai.fmri.cleaning import FILTERS, STANDARDIZE

logger = get_logger(__name__)


@dataclass
class Extraction:
    """What one streaming pass over a run yields.

    Attributes
    ----------
    timeseries : ndarray, shape (n_timepoints, n_regions)
        Mean (labels, spheres) or fitted (maps) signal per region, float64,
        in the image's units.
    regions : list of str
        Region names, one per column.
    empty_regions : list of str
        Regions with no voxel in this image (columns of zeros).
    source : str
        The image.
    global_signal : ndarray, shape (n_timepoints,) | None
        Mean over the brain voxels (the brain mask, or the atlas's voxels
        without one).
    dvars : ndarray, shape (n_timepoints - 1,) | None
        Root mean square over brain voxels of the volume-to-volume change, in
        image units (DVARS of Power et al. 2012).
    carpet : ndarray, shape (n_carpet_voxels, n_timepoints) | None
        Raw time courses of sampled brain voxels, ordered by region (float32).
    carpet_regions : ndarray, shape (n_carpet_voxels,) | None
        Region index of each carpet row (-1 outside every region).
    """

    timeseries: np.ndarray
    regions: list[str]
    empty_regions: list[str] = field(default_factory=list)
    source: str = ""
    global_signal: np.ndarray | None = None
    dvars: np.ndarray | None = None
    carpet: np.ndarray | None = None
    carpet_regions: np.ndarray | None = None


def load_bold(img):
    """Load a 4D BOLD image for streaming; returns ``(image, name)``.

    Compressed files are opened with ``keep_file_open=True`` so that reading
    chunks front to back decompresses the file once.

    Raises
    ------
    DataError
        Missing or unreadable file, not 4D, fewer than 2 volumes, a
        non-numeric data type.
    """
    import nibabel as nib
    from nibabel.arrayproxy import ArrayProxy

    image, name = _load_image(img, "BOLD image")
    filename = image.get_filename() if hasattr(image, "get_filename") else None
    if (
        filename
        and str(filename).endswith(".gz")
        and isinstance(image.dataobj, ArrayProxy)
        and not getattr(image.dataobj, "_keep_file_open", False)
    ):
        image = nib.load(filename, keep_file_open=True)
    shape = image.shape
    if len(shape) == 3:
        raise DataError(
            f"{name} is a 3D image (shape {shape}); a run of BOLD must be 4D "
            "(x, y, z, time). Give the whole run, not one volume."
        )
    if len(shape) != 4:
        raise DataError(f"{name} has shape {shape}; a run of BOLD must be 4D (x, y, z, time).")
    if shape[3] < 2:
        raise DataError(f"{name} has {shape[3]} volume; a time series needs at least 2.")
    dtype = image.get_data_dtype()
    if dtype.kind not in "iuf" or dtype.names:
        raise DataError(f"{name} stores {dtype} values; BOLD must be integer or float.")
    return image, name


def _mask_on_grid(mask_img, image, name: str) -> np.ndarray:
    mask, mask_name = _load_image(mask_img, "brain mask")
    if len(mask.shape) != 3:
        raise DataError(f"The brain mask {mask_name} has shape {mask.shape}; it must be 3D.")
    same = (
        tuple(mask.shape) == tuple(image.shape[:3])
        and np.abs(mask.affine - image.affine).max() <= AFFINE_TOL
    )
    if not same:
        from nilearn.image import resample_img

        logger.warning(
            "The brain mask %s is not on the grid of %s; resampling it (nearest neighbour).",
            mask_name,
            name,
        )
        mask = resample_img(
            mask,
            target_affine=image.affine,
            target_shape=image.shape[:3],
            interpolation="nearest",
            force_resample=True,
            copy_header=True,
        )
    data = np.asanyarray(mask.dataobj)
    keep = np.isfinite(data) & (data != 0)
    if not keep.any():
        raise DataError(f"The brain mask {mask_name} is empty on the grid of {name}.")
    return keep


#: Region-signal cleaning keywords of :class:`AtlasMasker` and
#: :func:`extract_timeseries`, with ``NiftiLabelsMasker``'s defaults (nilearn 0.14).
MASKER_CLEAN_DEFAULTS = {
    "standardize": False,
    "standardize_confounds": True,
    "detrend": False,
    "low_pass": None,
    "high_pass": None,
    "t_r": None,
}


class AtlasMasker(TransformerMixin, BaseEstimator):
    """Parcellate 4D images with an atlas, streaming chunks of volumes.

    The scikit-learn estimator behind :func:`extract_timeseries`, shaped like
    nilearn's ``NiftiLabelsMasker``: parameters here, the atlas placed on the
    image grid by :meth:`fit`, region signals (cleaned as the masker cleans
    them) from :meth:`transform`. The cleaning keywords have the masker's
    names and defaults, so ``AtlasMasker(atlas, **kw).fit_transform(img)``
    equals ``NiftiLabelsMasker(atlas, **kw).fit_transform(img)``.

    Parameters
    ----------
    atlas : Atlas, path-like or nibabel image
        An :class:`~neuroai.fmri.atlas.Atlas`; a path or image is read as a
        label atlas (3D) or as probabilistic maps (4D). Required by :meth:`fit`
        (``None`` only so that the estimator is default-constructible).
    mask_img : path-like, nibabel image or None
        Brain mask on (or resampled to) the image grid; atlas voxels outside
        it are not used.
    standardize : {False, None, "zscore_sample", "psc"}
        Final scaling of each region signal (nilearn's default: ``False``).
    standardize_confounds : bool
        z-score confounds before regressing them out.
    detrend : bool
        Remove linear trends (nilearn's masker default: ``False``; note that
        :func:`neuroai.fmri.clean`, like ``nilearn.signal.clean``, defaults to
        ``True``).
    low_pass, high_pass : float or None
        Butterworth cutoffs in Hz (need ``t_r``).
    t_r : float or None
        Repetition time in seconds.
    filter : {"butterworth", "cosine", False}
        Temporal filter (nilearn passes it through ``clean_args``).
    extrapolate : bool
        With a Butterworth filter and a sample mask, extrapolate censored edge
        volumes (``nilearn.signal.clean``'s keyword).
    resample : {"warn", "error"}
        An atlas on another grid is resampled with a logged warning, or refused.
    chunk_mb : float
        Approximate size of one chunk of volumes in MiB (peak memory scale).
    non_finite : {"error", "zero"}
        NaN or Inf in the voxels used: refuse the image, or replace by 0 with a
        logged warning.
    qc : bool
        Also compute the global signal, DVARS and a carpet in the same pass.
    n_carpet_voxels : int
        Rows of the carpet (sampled evenly across regions).

    Attributes
    ----------
    atlas_ : Atlas
        The atlas read from ``atlas``.
    reducer_ : Reducer
        The atlas on the grid of the last fitted image.
    grid_ : tuple
        ``(shape, affine)`` of that grid.
    mask_ : ndarray of bool, shape (x, y, z) | None
        The brain mask on that grid.
    n_features_out_ : int
        Number of regions (columns of :meth:`transform`).
    """

    def __init__(
        self,
        atlas=None,
        *,
        mask_img=None,
        standardize=False,
        standardize_confounds: bool = True,
        detrend: bool = False,
        low_pass: float | None = None,
        high_pass: float | None = None,
        t_r: float | None = None,
        filter: str | bool = "butterworth",  # noqa: A002 - nilearn's name
        extrapolate: bool = False,
        resample: str = "warn",
        chunk_mb: float = 64.0,
        non_finite: str = "error",
        qc: bool = False,
        n_carpet_voxels: int = 400,
    ) -> None:
        self.atlas = atlas
        self.mask_img = mask_img
        self.standardize = standardize
        self.standardize_confounds = standardize_confounds
        self.detrend = detrend
        self.low_pass = low_pass
        self.high_pass = high_pass
        self.t_r = t_r
        self.filter = filter
        self.extrapolate = extrapolate
        self.resample = resample
        self.chunk_mb = chunk_mb
        self.non_finite = non_finite
        self.qc = qc
        self.n_carpet_voxels = n_carpet_voxels

    def _validate_params(self) -> None:  # noqa: D401 - sklearn hook name
        if self.atlas is None:
            raise ConfigError(
                "AtlasMasker needs an atlas (a label image, probabilistic maps or an Atlas); "
                "got atlas=None."
            )
        check_option("resample", self.resample, ("warn", "error"))
        check_option("non_finite", self.non_finite, ("error", "zero"))
        check_option("standardize", self.standardize, (False, *STANDARDIZE))
        check_option("filter", self.filter, FILTERS)
        if not (isinstance(self.chunk_mb, (int, float)) and self.chunk_mb > 0):
            raise ConfigError(f"chunk_mb must be a positive number of MiB, got {self.chunk_mb!r}.")

    def _atlas(self) -> Atlas:
        if isinstance(self.atlas, Atlas):
            return self.atlas
        image, _ = _load_image(self.atlas, "atlas")
        if len(image.shape) == 4:
            return Atlas.from_maps(self.atlas)
        return Atlas.from_labels(self.atlas)

    def fit(self, img, y=None) -> AtlasMasker:
        """Place the atlas (and mask) on the grid of ``img``; reads no volume.

        Parameters
        ----------
        img : path-like or nibabel image
            A 4D run on the grid the atlas is placed on.
        y : None
            Ignored (scikit-learn's signature).
        """
        self._validate_params()
        image, name = load_bold(img)
        mask = _mask_on_grid(self.mask_img, image, name) if self.mask_img is not None else None
        self.atlas_ = self._atlas()
        self.reducer_ = self.atlas_.reducer(
            image.shape[:3], image.affine, mask=mask, resample=self.resample, image_name=name
        )
        self.grid_ = (tuple(image.shape[:3]), np.asarray(image.affine))
        self.mask_ = mask
        self.n_features_out_ = self.reducer_.n_regions
        self._qc_voxels(image.shape[:3])
        return self

    def _qc_voxels(self, shape) -> None:
        if not self.qc:
            self.brain_voxels_ = self.carpet_voxels_ = self.carpet_regions_ = None
            return
        reducer = self.reducer_
        if self.mask_ is not None:
            brain = np.flatnonzero(self.mask_.ravel(order="F"))
        else:
            brain = np.unique(reducer.voxels)
        # Region of each brain voxel: the row holding its largest weight.
        weights = reducer.weights
        if sparse.issparse(weights):
            column_region = np.asarray(abs(weights).argmax(axis=0)).ravel()
        else:
            column_region = np.abs(weights).argmax(axis=0)
        by_voxel = np.argsort(reducer.voxels)
        ordered = reducer.voxels[by_voxel]
        pos = np.minimum(np.searchsorted(ordered, brain), ordered.size - 1)
        inside = ordered[pos] == brain
        region = np.full(brain.size, -1)
        region[inside] = column_region[by_voxel[pos[inside]]]
        order = np.lexsort((brain, np.where(region < 0, np.iinfo(int).max, region)))
        n = min(self.n_carpet_voxels, brain.size)
        pick = order[np.linspace(0, brain.size - 1, n).round().astype(int)]
        self.brain_voxels_ = brain
        self.carpet_voxels_ = brain[pick]
        self.carpet_regions_ = region[pick]

    def transform(self, img, confounds=None, sample_mask=None) -> np.ndarray:
        """Region time series of ``img``, cleaned as nilearn's maskers clean them.

        Parameters
        ----------
        img : path-like or nibabel image
            4D run.
        confounds : ndarray, shape (n_timepoints, n_confounds) | None
            Regressors to project out.
        sample_mask : ndarray | None
            Volumes to keep (indices or boolean mask).

        Returns
        -------
        ndarray, shape (n_kept, n_regions)
        """
        return self.transform_detail(img, confounds=confounds, sample_mask=sample_mask).timeseries

    def fit_transform(self, img, y=None, confounds=None, sample_mask=None) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` (one streaming pass)."""
        return self.fit(img).transform(img, confounds=confounds, sample_mask=sample_mask)

    def transform_detail(self, img, confounds=None, sample_mask=None) -> Extraction:
        """Like :meth:`transform`, with the quality measures of the same pass.

        The QC measures (global signal, DVARS, carpet) are always those of the
        uncleaned image.
        """
        self._validate_params()
        image, name = load_bold(img)
        if (
            not hasattr(self, "reducer_")
            or self.grid_[0] != tuple(image.shape[:3])
            or np.abs(self.grid_[1] - image.affine).max() > AFFINE_TOL
        ):
            self.fit(image)
        result = self._stream(image, name)
        options = self._clean_options(confounds, sample_mask)
        if options is not None:
            from neuroai.fmri.cleaning import clean

            empty = [result.regions.index(r) for r in result.empty_regions]
            cleaned = clean(result.timeseries, **options)
            cleaned[:, empty] = 0.0
            result.timeseries = cleaned
        return result

    def _clean_options(self, confounds, sample_mask) -> dict | None:
        """Options of :func:`clean`, or ``None`` when they would change nothing."""
        standardize = self.standardize or None
        if (
            not self.detrend
            and standardize is None
            and confounds is None
            and sample_mask is None
            and self.low_pass is None
            and self.high_pass is None
        ):
            return None
        return {
            "confounds": confounds,
            "sample_mask": sample_mask,
            "t_r": self.t_r,
            "detrend": self.detrend,
            "standardize": standardize,
            "standardize_confounds": self.standardize_confounds,
            "filter": self.filter,
            "low_pass": self.low_pass,
            "high_pass": self.high_pass,
            "extrapolate": self.extrapolate,
        }

    def _stream(self, image, name: str) -> Extraction:
        reducer: Reducer = self.reducer_
        n_grid = int(np.prod(image.shape[:3]))
        n_time = int(image.shape[3])
        per_volume = n_grid * 8 + reducer.voxels.size * 8
        chunk = int(max(1, min(n_time, self.chunk_mb * 2**20 // per_volume)))
        out = np.empty((n_time, reducer.n_regions))
        qc = self.qc
        if qc:
            brain = self.brain_voxels_
            global_signal = np.empty(n_time)
            dvars = np.empty(n_time - 1)
            carpet = np.empty((self.carpet_voxels_.size, n_time), dtype=np.float32)
            previous = None
        for start in range(0, n_time, chunk):
            stop = min(n_time, start + chunk)
            block = np.asanyarray(image.dataobj[..., start:stop])
            flat = block.reshape(n_grid, stop - start, order="F")
            values = reducer.gather(flat)
            values = self._check_finite(values, reducer.voxels, name, start, image.shape[:3])
            out[start:stop] = reducer.reduce(values)
            if qc:
                values = flat[brain].astype(np.float64)
                values = self._check_finite(values, brain, name, start, image.shape[:3])
                global_signal[start:stop] = values.mean(axis=0)
                joined = values if previous is None else np.column_stack([previous, values])
                change = np.diff(joined, axis=1)
                dvars[max(start - 1, 0) : stop - 1] = np.sqrt((change**2).mean(axis=0))
                previous = values[:, -1]
                carpet[:, start:stop] = np.nan_to_num(flat[self.carpet_voxels_], posinf=0, neginf=0)
            del block, flat
        if reducer.empty:
            out[:, [reducer.names.index(r) for r in reducer.empty]] = 0.0
        result = Extraction(out, list(reducer.names), list(reducer.empty), name)
        if qc:
            result.global_signal = global_signal
            result.dvars = dvars
            result.carpet = carpet
            result.carpet_regions = self.carpet_regions_
        return result

    def _check_finite(
        self, values: np.ndarray, voxels: np.ndarray, name: str, start: int, shape
    ) -> np.ndarray:
        """Refuse, or zero with a warning, NaN/Inf in gathered voxel values (n_voxels, n_volumes)."""
        bad = ~np.isfinite(values)
        if not bad.any():
            return values
        vox, vol = np.nonzero(bad)
        if self.non_finite == "error":
            raise DataError(
                f"{name} has {int(bad.sum())} NaN or Inf values in the voxels used (first at "
                f"volume {start + int(vol[0])}, voxel "
                f"{tuple(int(i) for i in np.unravel_index(voxels[vox[0]], shape, order='F'))}). "
                "Fix the image, restrict it with a brain mask, or pass non_finite='zero' to "
                "replace them by 0."
            )
        logger.warning(
            "%s: %d NaN or Inf values in volumes %d-%d replaced by 0.",
            name,
            int(bad.sum()),
            start,
            start + values.shape[1] - 1,
        )
        values = values.copy()
        values[bad] = 0
        return values


def extract_timeseries(
    img,
    atlas,
    *,
    confounds=None,
    sample_mask=None,
    mask_img=None,
    standardize=False,
    standardize_confounds: bool = True,
    detrend: bool = False,
    low_pass: float | None = None,
    high_pass: float | None = None,
    t_r: float | None = None,
    filter: str | bool = "butterworth",  # noqa: A002 - nilearn's name
    extrapolate: bool = False,
    resample: str = "warn",
    chunk_mb: float = 64.0,
    non_finite: str = "error",
) -> np.ndarray:
    """Region time series of a 4D image, streamed in chunks of volumes.

    Every keyword that ``NiftiLabelsMasker`` also has carries the masker's
    default (``standardize=False``, ``detrend=False`` ...), so
    ``extract_timeseries(img, atlas, **kw)`` equals
    ``NiftiLabelsMasker(atlas, **kw).fit_transform(img)`` for the same ``kw``.

    Parameters
    ----------
    img : path-like or nibabel image
        4D BOLD run (``.nii`` or ``.nii.gz``).
    atlas : Atlas, path-like or nibabel image
        Label image (3D), probabilistic maps (4D), or an
        :class:`~neuroai.fmri.atlas.Atlas` (for example spheres from
        :meth:`Atlas.from_coordinates`).
    confounds, sample_mask
        As in the maskers' ``transform`` (see :func:`neuroai.fmri.clean`).
    mask_img, standardize, standardize_confounds, detrend, low_pass, high_pass, t_r,
    filter, extrapolate, resample, chunk_mb, non_finite
        See :class:`AtlasMasker`.

    Returns
    -------
    ndarray, shape (n_kept, n_regions)
        float64. Without cleaning options it equals ``NiftiLabelsMasker`` /
        ``NiftiMapsMasker`` / ``NiftiSpheresMasker`` ``.fit_transform(img)``.

    Examples
    --------
    >>> ts = extract_timeseries("sub-01_task-rest_bold.nii.gz", "atlas.nii.gz")  # doctest: +SKIP
    """
    masker = AtlasMasker(
        atlas,
        mask_img=mask_img,
        standardize=standardize,
        standardize_confounds=standardize_confounds,
        detrend=detrend,
        low_pass=low_pass,
        high_pass=high_pass,
        t_r=t_r,
        filter=filter,
        extrapolate=extrapolate,
        resample=resample,
        chunk_mb=chunk_mb,
        non_finite=non_finite,
    )
    return masker.fit(img).transform(img, confounds=confounds, sample_mask=sample_mask)


def __getattr__(name: str):
    if name == "RegionExtractor":
        import warnings

        warnings.warn(
            "neuroai.fmri.RegionExtractor was renamed AtlasMasker (it clashed with "
            "nilearn.regions.RegionExtractor, which does something else); cleaning options "
            "are now AtlasMasker parameters. The old name will be removed.",
            FutureWarning,
            stacklevel=2,
        )
        return AtlasMasker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def image_tr(img) -> float | None:
    """The repetition time in the NIfTI header (seconds), or ``None`` if not set."""
    image, _ = (
        _load_image(img, "BOLD image") if isinstance(img, (str, os.PathLike, Path)) else (img, "")
    )
    zooms = image.header.get_zooms()
    if len(zooms) < 4 or not zooms[3] > 0:
        return None
    units = image.header.get_xyzt_units()[1] if hasattr(image.header, "get_xyzt_units") else "sec"
    factor = {"msec": 1e-3, "usec": 1e-6}.get(units, 1.0)
    return float(zooms[3]) * factor
