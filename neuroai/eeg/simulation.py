"""EEG simulation on real anatomy: a region-level forward model from ``tvb-data``.

In the spirit of SEREEGA (Krol et al. 2018, J Neurosci Methods 309:13-24),
scalp EEG is the projection of simulated source activity through a lead field.
The anatomy is what ``tvb-data`` ships:

- ``projectionMatrix/projection_eeg_65_surface_16k.npy``: an EEG lead field of
  65 sensors over a 16,384-vertex cortical surface (sensors IO1 and IO2 are all
  NaN and are dropped: 63 sensors remain);
- ``regionMapping/regionMapping_16k_76.txt``: each vertex's region of the
  76-region parcellation;
- ``connectivity/connectivity_76.zip``: region names, centres and the
  structural connectome (weights);
- ``sensors/eeg_brainstorm_65.txt``: sensor names (10-10, old names combined as
  ``T7/T3``) and positions.

Summing the lead-field columns of each region's vertices gives a 63 x 76 region
lead field (a region is a patch of cortex with uniform activity). Sources are
region time series; this module provides the generators (coloured noise,
narrow-band rhythms with waxing and waning envelopes, spike-and-wave trains,
evolving rhythmic discharges) and the projection. The demo cohort
(:mod:`neuroai.datasets.eeg_demo`) composes them.
"""

from __future__ import annotations

import functools
import io
import zipfile
from dataclasses import dataclass
from importlib.resources import files

import numpy as np

from neuroai.errors import DataError


@dataclass(frozen=True)
class HeadModel:
    """A region-level EEG forward model.

    Attributes
    ----------
    sensors : list of str
        63 sensor names in 10-05 spelling (``T7`` for ``T7/T3``).
    positions : ndarray, shape (63, 3)
        Sensor positions (mm, tvb-data's head frame).
    leadfield : ndarray, shape (63, 76)
        Scalp potential per unit region activity (not re-referenced).
    regions : list of str
        76 region names (``rV1``, ``lPCIP`` ...; ``r``/``l`` for the hemisphere).
    centres : ndarray, shape (76, 3)
        Region centres (mm).
    weights : ndarray, shape (76, 76)
        Structural connectome (arbitrary units), zero diagonal.
    """

    sensors: list[str]
    positions: np.ndarray
    leadfield: np.ndarray
    regions: list[str]
    centres: np.ndarray
    weights: np.ndarray

    def region_indices(self, names) -> np.ndarray:
        """Indices of regions whose name, without the hemisphere letter, is in ``names``."""
        wanted = set(names)
        return np.array([i for i, r in enumerate(self.regions) if r[1:] in wanted], dtype=int)

    def sensor_index(self, name: str) -> int:
        return self.sensors.index(name)


def _tvb_root():
    try:
        return files("tvb_data")
    except ModuleNotFoundError as exc:
        raise DataError(
            "The EEG demo needs the 'tvb-data' package for its anatomy (lead field, region "
            "mapping, connectome). Install the demo extras: pip install -e '.[demo]'."
        ) from exc


@functools.cache
def load_head_model() -> HeadModel:
    """Load the tvb-data anatomy as a :class:`HeadModel` (cached)."""
    root = _tvb_root()
    projection = np.load(
        root / "projectionMatrix" / "projection_eeg_65_surface_16k.npy", allow_pickle=False
    )
    lines = (root / "sensors" / "eeg_brainstorm_65.txt").read_text().split("\n")
    rows = [line.split() for line in lines if line.strip()]
    names = [row[0].split("/")[0] for row in rows]
    positions = np.array([[float(v) for v in row[1:4]] for row in rows])
    usable = ~np.isnan(projection).all(axis=1)
    mapping = np.loadtxt(
        io.StringIO((root / "regionMapping" / "regionMapping_16k_76.txt").read_text())
    )
    mapping = mapping.astype(int)
    with zipfile.ZipFile(
        io.BytesIO((root / "connectivity" / "connectivity_76.zip").read_bytes())
    ) as zf:
        centres_rows = [
            r.split() for r in zf.read("centres.txt").decode().splitlines() if r.strip()
        ]
        weights = np.loadtxt(io.StringIO(zf.read("weights.txt").decode()))
    regions = [r[0] for r in centres_rows]
    centres = np.array([[float(v) for v in r[1:4]] for r in centres_rows])
    n_regions = len(regions)
    leadfield = np.zeros((int(usable.sum()), n_regions))
    vertex_leadfield = np.nan_to_num(projection[usable])
    for region in range(n_regions):
        leadfield[:, region] = vertex_leadfield[:, mapping == region].sum(axis=1)
    np.fill_diagonal(weights, 0.0)
    return HeadModel(
        sensors=[n for n, ok in zip(names, usable, strict=True) if ok],
        positions=positions[usable],
        leadfield=leadfield,
        regions=regions,
        centres=centres,
        weights=weights,
    )


def colored_noise(
    rng: np.random.Generator, n_series: int, n_times: int, sfreq: float, exponent: float
) -> np.ndarray:
    """Gaussian noise with power ~ 1 / f**exponent, unit SD per series.

    Returns
    -------
    ndarray, shape (n_series, n_times)
    """
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    shape = np.zeros_like(freqs)
    shape[1:] = freqs[1:] ** (-exponent / 2)
    spectrum = np.fft.rfft(rng.standard_normal((n_series, n_times)), axis=1) * shape
    out = np.fft.irfft(spectrum, n=n_times, axis=1)
    return out / out.std(axis=1, keepdims=True)


def band_noise(
    rng: np.random.Generator,
    n_series: int,
    n_times: int,
    sfreq: float,
    low: float,
    high: float,
) -> np.ndarray:
    """Gaussian noise band-limited to [low, high] Hz (smooth edges), unit SD per series."""
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    centre, half = (low + high) / 2, (high - low) / 2
    shape = np.exp(-0.5 * ((freqs - centre) / max(half, 1e-3)) ** 4)
    spectrum = np.fft.rfft(rng.standard_normal((n_series, n_times)), axis=1) * shape
    out = np.fft.irfft(spectrum, n=n_times, axis=1)
    return out / out.std(axis=1, keepdims=True)


def envelope(
    rng: np.random.Generator, n_times: int, sfreq: float, depth: float = 0.6
) -> np.ndarray:
    """A slow positive amplitude envelope (waxing and waning below 0.3 Hz), mean 1."""
    slow = band_noise(rng, 1, n_times, sfreq, 0.02, 0.3)[0]
    env = np.clip(1 + depth * slow, 0.05, None)
    return env / env.mean()


def burst_window(n_times: int, sfreq: float, start_s: float, stop_s: float, ramp_s: float = 0.5):
    """A 0..1 window that is 1 between start and stop with raised-cosine ramps."""
    t = np.arange(n_times) / sfreq
    out = np.zeros(n_times)
    inside = (t >= start_s) & (t <= stop_s)
    out[inside] = 1.0
    ramp = max(ramp_s, 1 / sfreq)
    up = (t >= start_s - ramp) & (t < start_s)
    down = (t > stop_s) & (t <= stop_s + ramp)
    out[up] = 0.5 - 0.5 * np.cos(np.pi * (t[up] - start_s + ramp) / ramp)
    out[down] = 0.5 + 0.5 * np.cos(np.pi * (t[down] - stop_s) / ramp)
    return out


def spike_wave_train(n_times: int, sfreq: float, start_s: float, stop_s: float, rate_hz: float):
    """A spike-and-wave train: a sharp spike (~25 ms) then a slow wave (~120 ms), per cycle.

    Returns a unit-peak waveform (spikes positive, waves negative) of shape (n_times,).
    """
    out = np.zeros(n_times)
    lag = np.arange(int(0.4 * sfreq)) / sfreq - 0.1  # one cycle's support, 0.1 s before the spike
    cycle = np.exp(-0.5 * (lag / 0.012) ** 2) - 0.6 * np.exp(-0.5 * ((lag - 0.14) / 0.06) ** 2)
    for onset in np.arange(start_s, stop_s, 1 / rate_hz):
        first = int(round((onset - 0.1) * sfreq))
        lo, hi = max(first, 0), min(first + cycle.size, n_times)
        if hi > lo:
            out[lo:hi] += cycle[lo - first : hi - first]
    return out


def evolving_discharge(
    n_times: int, sfreq: float, start_s: float, stop_s: float, f_start: float, f_stop: float
):
    """A rhythmic discharge whose frequency glides from f_start to f_stop Hz while
    its amplitude builds up and ends abruptly: a seizure-like waveform, unit peak."""
    t = np.arange(n_times) / sfreq
    out = np.zeros(n_times)
    inside = (t >= start_s) & (t <= stop_s)
    tau = (t[inside] - start_s) / max(stop_s - start_s, 1e-6)
    freq = f_start + (f_stop - f_start) * tau
    phase = 2 * np.pi * np.cumsum(freq) / sfreq
    sharp = np.sign(np.sin(phase)) * np.abs(np.sin(phase)) ** 0.5
    out[inside] = sharp * np.minimum(1.0, 0.2 + 1.6 * tau)
    return out


def project(head: HeadModel, sources: np.ndarray) -> np.ndarray:
    """Scalp potentials of region sources: ``leadfield @ sources``.

    Parameters
    ----------
    sources : ndarray, shape (76, n_times)

    Returns
    -------
    ndarray, shape (63, n_times)
    """
    return head.leadfield @ sources


def scale_to(component: np.ndarray, target_rms: float, *, reference: str = "median") -> np.ndarray:
    """Scale sensor data so its per-channel RMS has the given median (or maximum).

    Parameters
    ----------
    component : ndarray, shape (n_sensors, n_times)
    target_rms : float
        Wanted RMS in microvolts.
    reference : {"median", "max"}
        Which channel statistic reaches ``target_rms``.
    """
    rms = np.sqrt((component**2).mean(axis=1))
    value = np.median(rms) if reference == "median" else rms.max()
    return component * (target_rms / value) if value > 0 else component


def scale_peak(component: np.ndarray, target_peak: float) -> np.ndarray:
    """Scale sensor data so its largest absolute value is ``target_peak`` (microvolts)."""
    peak = np.abs(component).max()
    return component * (target_peak / peak) if peak > 0 else component
