"""Demo EEG cohort: TUAB-like EDF recordings simulated on real anatomy.

No real multi-channel EEG longer than seconds can be had offline, so the demo
simulates it with the forward model of :mod:`neuroai.eeg.simulation` (the
``tvb-data`` lead field, region mapping and connectome):

- background: 1/f region noise (exponent 1.0-1.6) coupled through the
  connectome; posterior alpha (peak 9.5-11 Hz, waxing and waning) in visual cortex,
  precuneus and posterior parietal regions; a little central beta;
- abnormal recordings (about half) carry one or two labelled pathologies:
  focal slowing (polymorphic 1-3.5 Hz delta bursts in a temporal or frontal
  region and its strongest connectome neighbours, ``slow``), generalised
  slowing (alpha slowed to 6.8-7.8 Hz, continuous theta-delta, and frontal
  intermittent rhythmic delta bursts, ``slow``), 3-3.5 Hz generalised
  spike-and-wave bursts (``spsw``) or a focal seizure-like discharge gliding from
  7 to 3 Hz and spreading to connected regions (``seiz``);
- artifacts, added at the electrodes and annotated: eye blinks (``eyem``),
  temporal muscle bursts (``musc``), electrode pops (``elpp``), and in some
  recordings a saturated electrode or a flat (disconnected) stretch (``elec``);
  60 Hz line noise and an ECG channel are added unannotated.

Each recording is written as EDF with TUH-style channel names (``EEG FP1-REF``,
old names T3/T4/T5/T6, an ``EEG EKG1-REF`` channel; a quarter referenced to the
ears, ``-LE``, in ``02_tcp_le``) in a TUAB-like layout, with TUAR-style artifact
annotations (``.csv``, channel-based on TCP derivations) and term-based
pathology annotations (``.csv_bi``)::

    <root>/edf/{train,eval}/{normal,abnormal}/{01_tcp_ar,02_tcp_le}/<patient>_s001_t000.{edf,csv,csv_bi}
    <root>/recordings.tsv      manifest: key, path, label, split, pathology, artifacts

The lead field has no A1/A2 electrodes (TUH recordings have them), so the files
have none: standardising to a montage that needs them interpolates them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuroai._logging import get_logger, progress
from neuroai.eeg import simulation as sim
from neuroai.eeg.edf import write_edf
from neuroai.eeg.montages import ELECTRODES_1020, TCP_PAIRS
from neuroai.eeg.tuh import TuhSpan, write_tuh_csv
from neuroai.errors import ConfigError

logger = get_logger(__name__)

#: TUH channel order and spelling of the 19 electrodes (old names, upper case).
TUH_ORDER = ("FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
             "F7", "F8", "T3", "T4", "T5", "T6", "FZ", "CZ", "PZ")  # fmt: skip
_NEW = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
PATHOLOGIES = ("focal_slowing", "generalized_slowing", "spike_wave", "seizure")
PHYSICAL_RANGE_UV = (-3000.0, 3000.0)
MONTAGE_FOLDERS = {"ar": "01_tcp_ar", "le": "02_tcp_le"}


def _standard(tuh: str) -> str:
    """TUH spelling -> 10-05 spelling (``FP1`` -> ``Fp1``, ``T3`` -> ``T7``)."""
    name = _NEW.get(tuh, tuh)
    return next(e for e in ELECTRODES_1020 if e.upper() == name.upper())


def _tuh(standard: str) -> str:
    """10-05 spelling -> TUH spelling (``T7`` -> ``T3``, ``Fp1`` -> ``FP1``)."""
    old = {v: k for k, v in _NEW.items()}
    return old.get(standard, standard.upper())


@dataclass(frozen=True)
class DemoRecording:
    """One planned recording of the demo cohort.

    Attributes
    ----------
    index : int
        Position in the cohort (drives the random seed).
    key : str
        ``<patient>_s001_t000``.
    label : str
        ``normal`` or ``abnormal``.
    split : str
        ``train`` or ``eval``.
    reference : str
        ``ar`` (average, ``-REF``) or ``le`` (ears, ``-LE``).
    """

    index: int
    key: str
    label: str
    split: str
    reference: str

    @property
    def relpath(self) -> Path:
        """EDF path relative to the dataset root."""
        folder = MONTAGE_FOLDERS[self.reference]
        return Path("edf") / self.split / self.label / folder / f"{self.key}.edf"


def _patient_id(index: int) -> str:
    letters = []
    for _ in range(8):
        index, rest = divmod(index, 26)
        letters.append(chr(ord("a") + rest))
    return "".join(reversed(letters))


def demo_plan(
    n_recordings: int = 40,
    *,
    abnormal_fraction: float = 0.5,
    eval_fraction: float = 0.2,
    seed: int = 0,
) -> list[DemoRecording]:
    """The demo cohort's recordings: keys, labels, splits, references (cheap, no I/O).

    Labels are shuffled with ``seed``; within each label the last
    ``eval_fraction`` go to the eval split; every fourth recording is
    ear-referenced.
    """
    if n_recordings < 2:
        raise ConfigError(f"The EEG demo needs at least 2 recordings, got {n_recordings}.")
    if not 0 < abnormal_fraction < 1 or not 0 <= eval_fraction < 1:
        raise ConfigError(
            f"abnormal_fraction must be in (0, 1) and eval_fraction in [0, 1); got "
            f"{abnormal_fraction} and {eval_fraction}."
        )
    n_abnormal = max(1, min(n_recordings - 1, round(n_recordings * abnormal_fraction)))
    labels = np.array(["abnormal"] * n_abnormal + ["normal"] * (n_recordings - n_abnormal))
    labels = labels[np.random.default_rng(seed).permutation(n_recordings)]
    splits = np.array(["train"] * n_recordings, dtype=object)
    for label in ("normal", "abnormal"):
        members = np.flatnonzero(labels == label)
        n_eval = int(round(len(members) * eval_fraction))
        if n_eval:
            splits[members[-n_eval:]] = "eval"
    return [
        DemoRecording(
            index=i,
            key=f"{_patient_id(i + 1)}_s001_t000",
            label=str(labels[i]),
            split=str(splits[i]),
            reference="le" if i % 4 == 3 else "ar",
        )
        for i in range(n_recordings)
    ]


@dataclass
class SimulatedRecording:
    """Signals and annotations of one simulated recording.

    Attributes
    ----------
    data_uv : ndarray, shape (20, n_times)
        The 19 electrodes in TUH order, then the ECG, in microvolts.
    ch_names : list of str
        EDF labels (``EEG FP1-REF`` ... ``EEG EKG1-REF``).
    artifacts : list of TuhSpan
        Channel-based artifact spans (TCP derivations in TUH spelling).
    pathology : list of TuhSpan
        Term-based pathology spans (``TERM``), without background.
    kinds : list of str
        Pathologies present (empty for normal recordings).
    """

    data_uv: np.ndarray
    ch_names: list[str]
    artifacts: list[TuhSpan] = field(default_factory=list)
    pathology: list[TuhSpan] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)


def _tcp_channels(electrodes: Sequence[str]) -> list[str]:
    """TCP derivations (TUH spelling) that involve any of the electrodes."""
    wanted = set(electrodes)
    return [f"{_tuh(a)}-{_tuh(c)}" for a, c in TCP_PAIRS if a in wanted or c in wanted]


def _bursts(rng, duration_s: float, length: tuple, gap: tuple, margin: float = 2.0):
    """Non-overlapping (start, stop) times: bursts of random length separated by random gaps."""
    spans, t = [], margin + rng.uniform(*gap) / 2
    while True:
        stop = t + rng.uniform(*length)
        if stop > duration_s - margin:
            return spans
        spans.append((t, stop))
        t = stop + rng.uniform(*gap)


def _neighbours(head: sim.HeadModel, region: int, k: int) -> np.ndarray:
    hemisphere = head.regions[region][0]
    order = np.argsort(head.weights[region])[::-1]
    same = [j for j in order if head.regions[j][0] == hemisphere and j != region]
    return np.array(same[:k], dtype=int)


def _pathology(rng, kind: str, head, n: int, sfreq: float, duration_s: float):
    """Sensor-level pathology signal (63 x n, microvolts) and its spans."""
    n_regions = len(head.regions)
    src = np.zeros((n_regions, n))
    spans: list[tuple[float, float, str]] = []
    if kind == "focal_slowing":
        candidates = head.region_indices(["TCC", "TCI", "TCS", "TCV", "PFCVL", "PFCDL", "PMCVL"])
        focus = int(rng.choice(candidates))
        delta = sim.band_noise(rng, 1, n, sfreq, 1.0, 3.5)[0]
        src[focus] = delta
        src[_neighbours(head, focus, 2)] = 0.5 * delta
        sensors = sim.scale_to(sim.project(head, src), rng.uniform(30, 45), reference="max")
        mask = np.zeros(n)
        for start, stop in _bursts(rng, duration_s, (3, 10), (3, 12)):
            mask = np.maximum(mask, sim.burst_window(n, sfreq, start, stop))
            spans.append((start, stop, "slow"))
        return sensors * mask, spans
    if kind == "generalized_slowing":
        slow = sim.band_noise(rng, n_regions, n, sfreq, 2.0, 6.0)
        slow = slow + 0.5 * (head.weights / head.weights.sum(1).max()) @ slow
        sensors = sim.scale_to(sim.project(head, slow), rng.uniform(10, 16))
        frontal = head.region_indices(["PFCM", "PFCDM", "PFCORB", "PFCPOL", "PFCDL"])
        rhythm = np.zeros(n)
        t = np.arange(n) / sfreq
        for start, stop in _bursts(rng, duration_s, (2, 5), (10, 25)):
            freq = rng.uniform(2.0, 3.0)
            rhythm += sim.burst_window(n, sfreq, start, stop, 0.3) * np.sin(2 * np.pi * freq * t)
            spans.append((start, stop, "slow"))
        src[frontal] = rhythm
        firda = sim.project(head, src)
        if np.abs(firda).max() > 0:
            sensors = sensors + sim.scale_peak(firda, rng.uniform(60, 90))
        return sensors, spans
    if kind == "spike_wave":
        weights = np.full(n_regions, 0.5)
        weights[head.region_indices(["PFCM", "PFCDM", "PFCDL", "PFCCL", "PMCM", "CCA", "CCR"])] = (
            1.0
        )
        train = np.zeros(n)
        for start, stop in _bursts(rng, duration_s, (2, 6), (12, 30)):
            train += sim.spike_wave_train(n, sfreq, start, stop, rng.uniform(3.0, 3.5))
            spans.append((start, stop, "spsw"))
        src = weights[:, None] * train[None, :]
        return sim.scale_peak(sim.project(head, src), rng.uniform(150, 250)), spans
    if kind == "seizure":
        candidates = head.region_indices(["TCC", "TCI", "TCS", "HC", "PHC", "PFCDL", "PMCDL"])
        focus = int(rng.choice(candidates))
        length = min(rng.uniform(20, 40), 0.6 * duration_s)
        start = rng.uniform(0.15 * duration_s, 0.9 * duration_s - length)
        stop = start + length
        wave = sim.evolving_discharge(
            n, sfreq, start, stop, rng.uniform(6, 8), rng.uniform(2.5, 3.5)
        )
        src[focus] = wave
        spread = sim.burst_window(n, sfreq, start + 0.3 * length, stop, 2.0)
        src[_neighbours(head, focus, 3)] = 0.7 * wave * spread
        spans.append((start, stop, "seiz"))
        return sim.scale_peak(sim.project(head, src), rng.uniform(120, 200)), spans
    raise ConfigError(f"Unknown pathology {kind!r}; expected one of {PATHOLOGIES}.")


def _distance_weights(head, centre: np.ndarray, scale_mm: float) -> np.ndarray:
    return np.exp(-np.linalg.norm(head.positions - centre, axis=1) / scale_mm)


def simulate_recording(
    plan: DemoRecording,
    *,
    duration_s: float = 120.0,
    sfreq: float = 250.0,
    line_freq: float = 60.0,
    seed: int = 0,
) -> SimulatedRecording:
    """Simulate one recording of the demo cohort (see the module docstring)."""
    head = sim.load_head_model()
    rng = np.random.default_rng([seed, plan.index])
    n = int(round(duration_s * sfreq))
    t = np.arange(n) / sfreq
    n_regions = len(head.regions)
    coupling = head.weights / head.weights.sum(1).max()
    background = sim.colored_noise(rng, n_regions, n, sfreq, rng.uniform(1.0, 1.6))
    background = background + 0.5 * coupling @ background
    sensors = sim.scale_to(sim.project(head, background), rng.uniform(9, 14))
    kinds: list[str] = []
    if plan.label == "abnormal":
        kinds = sorted(rng.choice(PATHOLOGIES, size=int(rng.integers(1, 3)), replace=False))
    slowed = "generalized_slowing" in kinds
    alpha_peak = rng.uniform(6.8, 7.8) if slowed else rng.uniform(9.5, 11.0)
    alpha_src = np.zeros((n_regions, n))
    drive = sim.band_noise(rng, 2, n, sfreq, alpha_peak - 0.8, alpha_peak + 0.8)
    weights = {"V1": 1.0, "V2": 1.0, "PCM": 0.6, "PCIP": 0.4}
    regions = head.region_indices(weights)
    own = sim.band_noise(rng, len(regions), n, sfreq, alpha_peak - 0.8, alpha_peak + 0.8)
    for k, region in enumerate(regions):
        hemisphere = 0 if head.regions[region][0] == "r" else 1
        weight = weights[head.regions[region][1:]]
        alpha_src[region] = weight * (0.8 * drive[hemisphere] + 0.2 * own[k])
    alpha = sim.project(head, alpha_src) * sim.envelope(rng, n, sfreq)
    sensors += sim.scale_to(alpha, rng.uniform(14, 22) * (0.6 if slowed else 1.0), reference="max")
    beta_src = np.zeros((n_regions, n))
    beta_src[head.region_indices(["M1", "S1", "PMCDL", "PMCM"])] = sim.band_noise(
        rng, 1, n, sfreq, 14, 25
    )[0]
    sensors += sim.scale_to(sim.project(head, beta_src), 2.5, reference="max")
    pathology: list[TuhSpan] = []
    for kind in kinds:
        signal, spans = _pathology(rng, kind, head, n, sfreq, duration_s)
        sensors += signal
        pathology += [TuhSpan("TERM", a, b, label) for a, b, label in spans]
    artifacts: list[TuhSpan] = []
    index = {name: i for i, name in enumerate(head.sensors)}
    # Eye blinks: frontal-polar positive deflections of 0.2-0.4 s.
    eye = (head.positions[index["Fp1"]] + head.positions[index["Fp2"]]) / 2
    blink_map = _distance_weights(head, eye, 30.0)
    blink_map /= blink_map[[index["Fp1"], index["Fp2"]]].mean()
    for onset in np.sort(rng.uniform(2, duration_s - 2, size=int(rng.integers(5, 16)))):
        width = rng.uniform(0.2, 0.4)
        span = slice(int(onset * sfreq), int((onset + width) * sfreq) + 1)
        wave = 0.5 - 0.5 * np.cos(2 * np.pi * (t[span] - onset) / width)
        sensors[:, span] += rng.uniform(80, 200) * blink_map[:, None] * wave[None, :]
        for channel in _tcp_channels(["Fp1", "Fp2"]):
            artifacts.append(TuhSpan(channel, max(0.0, onset - 0.1), onset + width + 0.1, "eyem"))
    # Muscle: 20-110 Hz bursts over one temporal region.
    for start, stop in _bursts(rng, duration_s, (1, 5), (15, 40)):
        side = ("T7", "F7", "P7") if rng.random() < 0.5 else ("T8", "F8", "P8")
        spatial = _distance_weights(head, head.positions[index[side[0]]], 35.0)
        span = slice(int((start - 0.2) * sfreq), int((stop + 0.2) * sfreq) + 1)
        length = span.stop - span.start
        noise = sim.band_noise(rng, 1, length, sfreq, 20, min(110, sfreq / 2 - 5))[0]
        mask = sim.burst_window(length, sfreq, 0.2, 0.2 + stop - start, 0.2)
        sensors[:, span] += rng.uniform(15, 35) * spatial[:, None] * (noise * mask)[None, :]
        for channel in _tcp_channels(side):
            artifacts.append(TuhSpan(channel, start, stop, "musc"))
    # Re-reference as recorded: average of all sensors, or linked ears (TP9/TP10).
    if plan.reference == "le":
        sensors = sensors - sensors[[index["TP9"], index["TP10"]]].mean(axis=0)
    else:
        sensors = sensors - sensors.mean(axis=0)
    electrodes = [_standard(name) for name in TUH_ORDER]
    data = sensors[[index[name] for name in electrodes]]
    # Electrode pops: a step that decays, on one electrode.
    for onset in rng.uniform(5, duration_s - 5, size=int(rng.integers(0, 4))):
        channel = int(rng.integers(len(electrodes)))
        tau = rng.uniform(0.1, 0.5)
        span = slice(int(np.ceil(onset * sfreq)), n)
        step = np.exp(-(t[span] - onset) / tau)
        data[channel, span] += rng.choice([-1, 1]) * rng.uniform(150, 400) * step
        for name in _tcp_channels([electrodes[channel]]):
            artifacts.append(TuhSpan(name, onset, onset + 5 * tau, "elpp"))
    # Line noise (unannotated).
    phases = rng.uniform(0, 2 * np.pi, size=(len(electrodes), 1))
    data += rng.uniform(1, 4, size=(len(electrodes), 1)) * np.sin(
        2 * np.pi * line_freq * t + phases
    )
    # Electrode faults in some recordings, on top of everything: an electrode at the
    # amplifier rail, or every channel dead (digital zeros).
    fault = rng.random()
    if fault < 0.12:
        channel = int(rng.integers(len(electrodes)))
        start = rng.uniform(5, duration_s - 15)
        stop = start + rng.uniform(3, 8)
        data[channel, (t >= start) & (t < stop)] = PHYSICAL_RANGE_UV[1]
        for name in _tcp_channels([electrodes[channel]]):
            artifacts.append(TuhSpan(name, start, stop, "elec"))
    elif fault < 0.22:
        start = rng.uniform(5, duration_s - 15)
        stop = start + rng.uniform(4, 10)
        data[:, (t >= start) & (t < stop)] = 0.0
        for name in _tcp_channels(electrodes):
            artifacts.append(TuhSpan(name, start, stop, "elec"))
    # The ECG channel.
    beat = 60.0 / rng.uniform(60, 90)
    lag = np.arange(int(beat * sfreq)) / sfreq  # one heartbeat: QRS spike, then T wave
    cycle = 800 * np.exp(-0.5 * ((lag - 0.1) / 0.012) ** 2)
    cycle += 150 * np.exp(-0.5 * ((lag - 0.35) / 0.05) ** 2)
    ecg = np.resize(cycle, n)
    suffix = "LE" if plan.reference == "le" else "REF"
    names = [f"EEG {name}-{suffix}" for name in TUH_ORDER] + [f"EEG EKG1-{suffix}"]
    artifacts.sort(key=lambda span: (span.start, span.channel))
    pathology.sort(key=lambda span: span.start)
    return SimulatedRecording(
        data_uv=np.vstack([data, ecg]),
        ch_names=names,
        artifacts=artifacts,
        pathology=pathology,
        kinds=list(kinds),
    )


def _with_background(spans: list[TuhSpan], duration_s: float) -> list[TuhSpan]:
    """Term-based spans with the gaps filled by ``bckg``, as TUH files have them."""
    merged = sorted(spans, key=lambda span: span.start)
    out, t = [], 0.0
    for span in merged:
        if span.start > t:
            out.append(TuhSpan("TERM", t, span.start, "bckg"))
        out.append(span)
        t = max(t, span.stop)
    if t < duration_s:
        out.append(TuhSpan("TERM", t, duration_s, "bckg"))
    return out


def write_demo_recording(
    root: str | os.PathLike,
    plan: DemoRecording,
    *,
    duration_s: float = 120.0,
    sfreq: float = 250.0,
    line_freq: float = 60.0,
    seed: int = 0,
) -> dict:
    """Simulate one recording and write its EDF, ``.csv`` and ``.csv_bi`` files.

    Returns
    -------
    dict
        The recording's manifest row.
    """
    rec = simulate_recording(
        plan, duration_s=duration_s, sfreq=sfreq, line_freq=line_freq, seed=seed
    )
    edf = Path(root) / plan.relpath
    write_tuh_csv(edf.with_suffix(".csv"), rec.artifacts, duration=duration_s)
    write_tuh_csv(
        edf.with_suffix(".csv_bi"), _with_background(rec.pathology, duration_s), duration=duration_s
    )
    # The EDF last: a recording whose EDF exists has its annotation files.
    write_edf(
        edf, rec.data_uv, sfreq=sfreq, ch_names=rec.ch_names, physical_range_uv=PHYSICAL_RANGE_UV
    )
    artifact_counts: dict[str, int] = {}
    for span in rec.artifacts:
        artifact_counts[span.label] = artifact_counts.get(span.label, 0) + 1
    return {
        "key": plan.key,
        "path": str(plan.relpath),
        "label": plan.label,
        "split": plan.split,
        "reference": plan.reference,
        "pathology": ";".join(rec.kinds),
        "pathology_spans": len(rec.pathology),
        "artifact_rows": ";".join(f"{k}:{v}" for k, v in sorted(artifact_counts.items())),
    }


def manifest_path(root: str | os.PathLike) -> Path:
    return Path(root) / "recordings.tsv"


def build_eeg_demo(
    root: str | os.PathLike,
    *,
    n_recordings: int = 40,
    duration_s: float = 120.0,
    sfreq: float = 250.0,
    abnormal_fraction: float = 0.5,
    eval_fraction: float = 0.2,
    line_freq: float = 60.0,
    seed: int = 0,
) -> list[Path]:
    """Build the demo EEG cohort under ``root`` (see the module docstring).

    Parameters
    ----------
    root : path-like
        Dataset folder.
    n_recordings : int
        Number of recordings (one per patient).
    duration_s : float
        Length of each recording in seconds.
    sfreq : float
        Sampling frequency in Hz.
    abnormal_fraction, eval_fraction : float
        Share of abnormal recordings, and of each class in the eval split.
    line_freq : float
        Power-line frequency of the simulated line noise, Hz.
    seed : int
        Random seed; the cohort is a deterministic function of the parameters.

    Returns
    -------
    list of Path
        The EDF files, in plan order.
    """
    import pandas as pd

    from neuroai.io.store import save_table

    if duration_s < 30:
        raise ConfigError(f"duration_s must be at least 30 s for the EEG demo, got {duration_s}.")
    plan = demo_plan(
        n_recordings, abnormal_fraction=abnormal_fraction, eval_fraction=eval_fraction, seed=seed
    )
    rows = [
        write_demo_recording(
            root, item, duration_s=duration_s, sfreq=sfreq, line_freq=line_freq, seed=seed
        )
        for item in progress(plan, desc="simulating EEG")
    ]
    params = {
        "n_recordings": n_recordings,
        "duration_s": duration_s,
        "sfreq": sfreq,
        "abnormal_fraction": abnormal_fraction,
        "eval_fraction": eval_fraction,
        "line_freq": line_freq,
        "seed": seed,
    }
    paths = [Path(root) / item.relpath for item in plan]
    save_table(manifest_path(root), pd.DataFrame(rows), stage="eeg_demo", params=params)
    logger.info("Wrote %d simulated EEG recordings under %s", len(paths), root)
    return paths
