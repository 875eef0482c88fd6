"""Atlases for parcellation: label images, probabilistic maps, coordinate spheres.

An :class:`Atlas` says what the regions are; :meth:`Atlas.reducer` places it on
an image grid and returns a :class:`Reducer`, a linear map from voxel values to
region values that :mod:`neuroai.fmri.extraction` applies to chunks of volumes:

- label images: the mean of each label's voxels, as nilearn's
  ``NiftiLabelsMasker`` (strategy ``"mean"``);
- probabilistic maps: the least-squares fit of the maps to each volume, as
  ``NiftiMapsMasker`` (the pseudo-inverse of the maps, computed once);
- spheres around coordinates (mm, in the image's world space): the mean of the
  voxels within ``radius`` mm, plus the voxel nearest each centre, as
  ``NiftiSpheresMasker``.

An atlas on another grid than the image is resampled to the image grid
(nearest neighbour for labels, continuous for maps) with a logged warning, as
the maskers do with ``resampling_target="data"``; ``resample="error"`` refuses
instead. Regions left with no voxel (outside the field of view or the brain
mask) are kept as empty regions whose signal is 0, so every run of a dataset has
the same regions; :attr:`Reducer.empty` lists them, and an atlas with no region
left at all is an error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

from neuroai._logging import get_logger
from neuroai.errors import ConfigError, DataError, check_option

logger = get_logger(__name__)

KINDS = ("labels", "maps", "spheres")
#: Affines closer than this (in mm) count as the same grid.
AFFINE_TOL = 1000 * np.finfo(np.float32).eps


def _load_image(img, what: str):
    import nibabel as nib

    if isinstance(img, (str, os.PathLike)):
        path = Path(img)
        if not path.is_file():
            raise DataError(f"The {what} {path} does not exist.")
        try:
            return nib.load(path), str(path)
        except Exception as exc:  # nibabel raises many types for corrupt files
            raise DataError(f"The {what} {path} is not a readable NIfTI image: {exc}") from exc
    if hasattr(img, "affine") and hasattr(img, "dataobj"):
        return img, f"the {what} image given in memory"
    raise DataError(f"The {what} must be a path or a nibabel image, got {type(img).__name__}.")


def _read_names(path: str | os.PathLike, values: Sequence) -> list[str]:
    """Region names from a BIDS ``dseg.tsv`` (index, name) or a text file (one per line)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"The atlas labels file {path} does not exist.")
    if path.suffix == ".tsv":
        import pandas as pd

        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        if not {"index", "name"} <= set(table.columns):
            raise DataError(
                f"{path} must have the BIDS look-up table columns 'index' and 'name'; "
                f"it has {', '.join(table.columns)}."
            )
        lookup = {float(i): n for i, n in zip(table["index"], table["name"], strict=True)}
        missing = [v for v in values if float(v) not in lookup]
        if missing:
            raise DataError(f"{path} names no region for atlas values {missing[:10]}.")
        return [lookup[float(v)] for v in values]
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) != len(values):
        raise DataError(
            f"{path} lists {len(names)} region names but the atlas has {len(values)} regions."
        )
    return names


@dataclass
class Reducer:
    """Voxels to regions on one image grid: ``regions = weights @ volume[voxels]``.

    Attributes
    ----------
    voxels : ndarray of int, shape (n_voxels,)
        Fortran-order flat indices (as NIfTI stores volumes) of the voxels used.
    weights : sparse or ndarray, shape (n_regions, n_voxels)
        Membership (labels, spheres: 1 for each voxel of a region) or the
        maps' pseudo-inverse.
    names : list of str
        Region names, one per row.
    empty : list of str
        Regions with no voxel on this grid (their signal is 0).
    divisor : ndarray, shape (n_regions,) | None
        Voxels per region: region sums are divided by it (a mean computed as
        ``sum / count``, in the voxel order of ``voxels``, as scipy.ndimage's
        mean does, so float32 results round the same way).
    """

    voxels: np.ndarray
    weights: sparse.csr_matrix | np.ndarray
    names: list[str]
    empty: list[str] = field(default_factory=list)
    divisor: np.ndarray | None = None

    @property
    def n_regions(self) -> int:
        return len(self.names)

    def gather(self, chunk: np.ndarray) -> np.ndarray:
        """The voxels the atlas uses from a chunk of volumes, as float64.

        Parameters
        ----------
        chunk : ndarray, shape (n_grid_voxels, n_volumes)
            Volumes flattened in Fortran order.

        Returns
        -------
        ndarray, shape (n_voxels, n_volumes)
        """
        values = chunk[self.voxels]
        return values if values.dtype == np.float64 else values.astype(np.float64)

    def reduce(self, values: np.ndarray) -> np.ndarray:
        """Region values from :meth:`gather`'s output, shape (n_volumes, n_regions)."""
        out = np.asarray(self.weights @ values)
        if self.divisor is not None:
            out /= self.divisor[:, None]
        return out.T

    def apply(self, chunk: np.ndarray) -> np.ndarray:
        """Region values of a chunk of volumes (n_grid_voxels, n_volumes) -> (n_volumes, n_regions)."""
        return self.reduce(self.gather(chunk))


@dataclass
class Atlas:
    """A parcellation: label image, probabilistic maps, or coordinates with spheres.

    Build one with :meth:`from_labels`, :meth:`from_maps` or
    :meth:`from_coordinates` (or :func:`load_atlas` from a config mapping).

    Attributes
    ----------
    kind : {"labels", "maps", "spheres"}
    image : nibabel image | None
        Label image (3D) or maps (4D).
    source : str
        Where it came from (for messages and provenance).
    names : list of str
        Region names.
    values : list of float
        Label values of the regions (labels only).
    coords : ndarray, shape (n_regions, 3) | None
        Sphere centres in mm (spheres only).
    radius : float
        Sphere radius in mm (spheres only).
    allow_overlap : bool
        Whether spheres may share voxels.
    background_label : float
        The value that marks no region (labels only).
    """

    kind: str
    image: object | None
    source: str
    names: list[str]
    values: list[float] = field(default_factory=list)
    coords: np.ndarray | None = None
    radius: float = 0.0
    allow_overlap: bool = False
    background_label: float = 0

    @classmethod
    def from_labels(
        cls,
        labels_img,
        *,
        labels: str | os.PathLike | Sequence[str] | None = None,
        background_label: float = 0,
    ) -> Atlas:
        """A label atlas.

        Parameters
        ----------
        labels_img : path-like or nibabel image
            3D image of integer labels.
        labels : path-like, sequence of str, or None
            Region names: a BIDS ``dseg.tsv`` (``index``, ``name``), a text file
            with one name per region (in increasing label order), a list, or
            ``None`` for ``label-<value>``.
        background_label : float
            The value that marks no region.
        """
        image, source = _load_image(labels_img, "atlas")
        if len(image.shape) != 3:
            raise DataError(
                f"{source} has shape {image.shape}; a label atlas is a 3D image. "
                "A 4D atlas holds probabilistic maps: use maps_img instead."
            )
        data = np.asanyarray(image.dataobj)
        if not np.isfinite(data).all():
            raise DataError(f"{source} contains NaN or Inf values.")
        values = [float(v) for v in np.unique(data) if v != background_label]
        if not values:
            raise DataError(f"{source} holds only the background label {background_label}.")
        if labels is None:
            names = [f"label-{int(v) if float(v).is_integer() else v}" for v in values]
        elif isinstance(labels, (str, os.PathLike)):
            names = _read_names(labels, values)
        else:
            names = [str(n) for n in labels]
            if len(names) != len(values):
                raise DataError(
                    f"Got {len(names)} region names for the {len(values)} labels of {source}."
                )
        return cls("labels", image, source, names, values=values, background_label=background_label)

    @classmethod
    def from_maps(cls, maps_img, *, labels: Sequence[str] | str | None = None) -> Atlas:
        """A probabilistic atlas: a 4D image, one non-negative map per region."""
        image, source = _load_image(maps_img, "atlas maps")
        if len(image.shape) != 4:
            raise DataError(f"{source} has shape {image.shape}; probabilistic maps are 4D.")
        n_maps = image.shape[3]
        if labels is None:
            names = [f"map-{i:03d}" for i in range(n_maps)]
        elif isinstance(labels, (str, os.PathLike)):
            names = _read_names(labels, list(range(n_maps)))
        else:
            names = [str(n) for n in labels]
            if len(names) != n_maps:
                raise DataError(f"Got {len(names)} names for the {n_maps} maps of {source}.")
        return cls("maps", image, source, names)

    @classmethod
    def from_coordinates(
        cls,
        coords,
        *,
        radius: float = 5.0,
        names: Sequence[str] | None = None,
        allow_overlap: bool = False,
    ) -> Atlas:
        """Spheres of ``radius`` mm around world coordinates.

        Parameters
        ----------
        coords : array-like of shape (n_regions, 3), or path-like
            Centres in mm; or a TSV with columns ``x``, ``y``, ``z`` (and ``name``).
        radius : float
            Sphere radius in mm; 0 takes the nearest voxel only.
        names : sequence of str | None
            Region names (``sphere-<i>`` by default).
        allow_overlap : bool
            Allow spheres to share voxels (refused by default, as in nilearn).
        """
        source = "coordinates given in memory"
        if isinstance(coords, (str, os.PathLike)):
            import pandas as pd

            path = Path(coords)
            if not path.is_file():
                raise DataError(f"The coordinates file {path} does not exist.")
            table = pd.read_csv(path, sep="\t")
            if not {"x", "y", "z"} <= set(table.columns):
                raise DataError(f"{path} needs columns x, y, z (mm); it has {list(table.columns)}.")
            if names is None and "name" in table.columns:
                names = [str(n) for n in table["name"]]
            coords = table[["x", "y", "z"]].to_numpy(dtype=float)
            source = str(path)
        coords = np.asarray(coords, dtype=float)
        if coords.ndim != 2 or coords.shape[1] != 3 or len(coords) == 0:
            raise DataError(
                f"Sphere centres must be an (n, 3) array of mm; got shape {coords.shape}."
            )
        if not np.isfinite(coords).all():
            raise DataError(f"The sphere centres of {source} contain NaN or Inf.")
        if radius is None or radius < 0:
            raise ConfigError(f"The sphere radius must be >= 0 mm, got {radius!r}.")
        names = (
            list(names) if names is not None else [f"sphere-{i:03d}" for i in range(len(coords))]
        )
        if len(names) != len(coords):
            raise DataError(f"Got {len(names)} names for {len(coords)} sphere centres.")
        return cls(
            "spheres",
            None,
            source,
            names,
            coords=coords,
            radius=float(radius),
            allow_overlap=allow_overlap,
        )

    @property
    def n_regions(self) -> int:
        return len(self.names)

    def describe(self) -> dict:
        """A JSON-able summary (for sidecars and provenance)."""
        info = {"kind": self.kind, "source": self.source, "n_regions": self.n_regions}
        if self.kind == "spheres":
            info.update(radius_mm=self.radius, coordinates_mm=self.coords.tolist())
        return info

    def reducer(
        self,
        shape: Sequence[int],
        affine: np.ndarray,
        *,
        mask: np.ndarray | None = None,
        resample: str = "warn",
        image_name: str = "the image",
    ) -> Reducer:
        """Place the atlas on an image grid.

        Parameters
        ----------
        shape : sequence of int
            The image's spatial shape (3 values).
        affine : ndarray, shape (4, 4)
            The image's voxel-to-world affine (mm).
        mask : ndarray of bool, shape ``shape`` | None
            Voxels that may be used (a brain mask on the image grid).
        resample : {"warn", "error"}
            What to do when the atlas is on another grid.
        image_name : str
            The image, for messages.

        Raises
        ------
        DataError
            The atlas is on another grid and ``resample="error"``, no region
            has a voxel on the grid (or inside the mask), spheres overlap.
        """
        check_option("resample", resample, ("warn", "error"))
        shape = tuple(int(s) for s in shape[:3])
        if mask is not None and mask.shape != shape:
            raise DataError(f"The mask has shape {mask.shape}, but {image_name} has {shape}.")
        if self.kind == "spheres":
            return self._sphere_reducer(shape, affine, mask, image_name)
        data = self._on_grid(shape, affine, resample, image_name)
        if self.kind == "labels":
            return self._label_reducer(data, mask, image_name)
        return self._maps_reducer(data, mask, image_name)

    def _on_grid(self, shape, affine, resample, image_name) -> np.ndarray:
        same = (
            tuple(self.image.shape[:3]) == shape
            and np.abs(np.asarray(self.image.affine) - affine).max() <= AFFINE_TOL
        )
        if same:
            return np.asanyarray(self.image.dataobj)
        problem = (
            f"The atlas {self.source} (shape {tuple(self.image.shape[:3])}) is not on the grid of "
            f"{image_name} (shape {shape})"
        )
        if resample == "error":
            raise DataError(
                f"{problem}. Resample the atlas to the image grid, or allow resampling "
                "(resample='warn')."
            )
        from nilearn.image import resample_img

        logger.warning(
            "%s: resampling it to the image grid (%s interpolation).",
            problem,
            "nearest" if self.kind == "labels" else "continuous",
        )
        resampled = resample_img(
            self.image,
            target_affine=affine,
            target_shape=shape,
            interpolation="nearest" if self.kind == "labels" else "continuous",
            force_resample=True,
            copy_header=True,
        )
        return np.asanyarray(resampled.dataobj)

    def _finish(self, present: np.ndarray, image_name: str, where: str) -> list[str]:
        empty = [n for n, ok in zip(self.names, present, strict=True) if not ok]
        if len(empty) == self.n_regions:
            raise DataError(
                f"No region of the atlas {self.source} has a voxel {where} of {image_name}: "
                "the atlas and the image are probably in different spaces (check that both "
                "are in the same template, e.g. MNI152NLin2009cAsym, or in the same native space)."
            )
        if empty:
            logger.warning(
                "%d of %d atlas regions have no voxel %s of %s; their signal is set to 0: %s",
                len(empty),
                self.n_regions,
                where,
                image_name,
                ", ".join(empty[:10]) + (" ..." if len(empty) > 10 else ""),
            )
        return empty

    def _label_reducer(self, data, mask, image_name) -> Reducer:
        data = np.asarray(data)
        keep = data != self.background_label
        if mask is not None:
            keep &= mask
        # Voxels in C order (as scipy.ndimage sums them), addressed by Fortran-order
        # index (as NIfTI stores a volume).
        c_order = np.flatnonzero(keep)
        voxels = np.ravel_multi_index(np.unravel_index(c_order, data.shape), data.shape, order="F")
        index = {v: i for i, v in enumerate(self.values)}
        found, codes = np.unique(data.ravel()[c_order], return_inverse=True)
        region = np.array([index.get(float(v), -1) for v in found], dtype=int)[codes]
        known = region >= 0  # nearest-neighbour resampling creates no new value; be safe
        voxels, region = voxels[known], region[known]
        counts = np.bincount(region, minlength=self.n_regions)
        weights = sparse.csr_matrix(
            (np.ones(voxels.size), (region, np.arange(voxels.size))),
            shape=(self.n_regions, voxels.size),
        )
        where = "inside the brain mask" if mask is not None else "on the grid"
        empty = self._finish(counts > 0, image_name, where)
        return Reducer(
            voxels, weights, list(self.names), empty, np.maximum(counts, 1).astype(float)
        )

    def _maps_reducer(self, data, mask, image_name) -> Reducer:
        maps = np.asarray(data, dtype=np.float64).reshape(-1, data.shape[3], order="F")
        if not np.isfinite(maps).all():
            raise DataError(f"The atlas maps {self.source} contain NaN or Inf values.")
        if mask is not None:
            maps = maps * mask.ravel(order="F")[:, None]
        voxels = np.flatnonzero((maps != 0).any(axis=1))
        present = (maps[voxels] != 0).any(axis=0)
        where = "inside the brain mask" if mask is not None else "on the grid"
        empty = self._finish(present, image_name, where)
        design = maps[voxels][:, present]
        inverse = np.zeros((self.n_regions, voxels.size))
        inverse[present] = np.linalg.pinv(design)
        return Reducer(voxels, inverse, list(self.names), empty)

    def _sphere_reducer(self, shape, affine, mask, image_name) -> Reducer:
        from scipy.spatial import cKDTree

        n_grid = int(np.prod(shape))
        candidates = (
            np.flatnonzero(mask.ravel(order="F")) if mask is not None else np.arange(n_grid)
        )
        ijk = np.stack(np.unravel_index(candidates, shape, order="F"), axis=1)
        world = ijk @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
        tree = cKDTree(world)
        members = tree.query_ball_point(self.coords, r=self.radius)
        inverse = np.linalg.inv(affine)
        position = {int(v): i for i, v in enumerate(candidates)}
        truncated = {}
        for i, key in enumerate(map(tuple, world.astype(int))):
            truncated.setdefault(key, i)
        rows, cols = [], []
        for region, (centre, found) in enumerate(zip(self.coords, members, strict=True)):
            chosen = set(found)
            nearest = np.round(inverse[:3, :3] @ centre + inverse[:3, 3]).astype(int)
            if np.all(nearest >= 0) and np.all(nearest < shape):
                flat = int(np.ravel_multi_index(tuple(nearest), shape, order="F"))
                if flat in position:
                    chosen.add(position[flat])
            same_cell = truncated.get(tuple(centre.astype(int)))
            if same_cell is not None:
                chosen.add(same_cell)
            rows.extend([region] * len(chosen))
            cols.extend(sorted(chosen))
        rows, cols = np.asarray(rows, dtype=int), np.asarray(cols, dtype=int)
        counts = np.bincount(rows, minlength=self.n_regions)
        where = "inside the brain mask" if mask is not None else "on the grid"
        if (counts == 0).any():
            empty_names = [n for n, c in zip(self.names, counts, strict=True) if c == 0]
            raise DataError(
                f"Spheres {empty_names[:10]} of {self.source} have no voxel {where} of "
                f"{image_name}: their centres lie outside the image (are the coordinates in "
                "the image's space?)."
            )
        if not self.allow_overlap and np.bincount(cols).max() > 1:
            raise DataError(
                f"Spheres of radius {self.radius} mm around the centres of {self.source} "
                "overlap; reduce the radius or set allow_overlap."
            )
        used = np.unique(cols)
        local = np.searchsorted(used, cols)
        weights = sparse.csr_matrix(
            (np.ones(rows.size), (rows, local)), shape=(self.n_regions, used.size)
        )
        return Reducer(candidates[used], weights, list(self.names), [], counts.astype(float))


#: Keys of an atlas spec that name files.
ATLAS_FILE_KEYS = ("labels_img", "maps_img", "coordinates", "labels")


def atlas_paths(spec: dict, *, root: str | os.PathLike | None = None) -> dict[str, Path]:
    """The files an atlas spec names, relative paths resolved against ``root``."""
    paths = {}
    for key in ATLAS_FILE_KEYS:
        if spec.get(key):
            path = Path(spec[key])
            paths[key] = path if path.is_absolute() or root is None else Path(root) / path
    return paths


def load_atlas(spec: dict, *, root: str | os.PathLike | None = None) -> Atlas:
    """Build an :class:`Atlas` from a config mapping.

    Parameters
    ----------
    spec : dict
        Exactly one of ``labels_img``, ``maps_img`` or ``coordinates`` (paths),
        with optional ``labels`` (names file), ``background_label``,
        ``radius_mm`` and ``allow_overlap``.
    root : path-like | None
        Folder that relative paths are resolved against (the dataset root).
    """
    given = [k for k in ("labels_img", "maps_img", "coordinates") if spec.get(k)]
    if len(given) != 1:
        raise ConfigError(
            "An atlas needs exactly one of 'labels_img', 'maps_img' or 'coordinates'; "
            f"got {given or 'none'}."
        )
    paths = atlas_paths(spec, root=root)
    labels = paths.get("labels")
    if given[0] == "labels_img":
        return Atlas.from_labels(
            paths["labels_img"], labels=labels, background_label=spec.get("background_label", 0)
        )
    if given[0] == "maps_img":
        return Atlas.from_maps(paths["maps_img"], labels=labels)
    return Atlas.from_coordinates(
        paths["coordinates"],
        radius=spec.get("radius_mm", 5.0),
        allow_overlap=spec.get("allow_overlap", False),
    )
