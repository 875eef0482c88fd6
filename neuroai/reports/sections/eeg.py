"""EEG report section: windows, channel coverage and interpolations, spectra, traces.

Drawn from each dataset's ``summary.json`` and ``examples.npy`` (the ``eeg_store``
stage's outputs); nothing is recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neuroai.io import load_array, load_json
from neuroai.reports import qc as qm
from neuroai.reports.html import Section, details, figure, flagged_table, table, text

REASONS = ("flat", "saturated", "bad_annotation")


def power_spectra(freqs, classes: dict[str, list[float]], *, title: str = "") -> Figure:
    """Mean channel power spectral density per class, log scale.

    Parameters
    ----------
    freqs : array-like, shape (n_freqs,)
        Hz.
    classes : dict
        Class name -> power, shape (n_freqs,), uV^2/Hz.
    """
    fig = Figure(figsize=(5.6, 3.6))
    ax = fig.add_subplot()
    for name, power in classes.items():
        ax.semilogy(freqs, power, label=name)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power (uV$^2$/Hz)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if classes:
        ax.legend(fontsize=8)
    return fig


def channel_coverage(coverage: dict[str, dict[str, int]], n_recordings: int, *, title: str = ""):
    """Recordings per electrode: present in the file, or interpolated (stacked bars)."""
    names = list(coverage)
    present = np.array([coverage[n]["present"] for n in names])
    interpolated = np.array([coverage[n]["interpolated"] for n in names])
    fig = Figure(figsize=(max(5.0, 0.28 * len(names) + 1.5), 3.2))
    ax = fig.add_subplot()
    x = np.arange(len(names))
    ax.bar(x, present, label="in the file", color="#2166ac")
    ax.bar(x, interpolated, bottom=present, label="interpolated", color="#d6604d")
    ax.axhline(n_recordings, color="k", lw=0.6, ls=":")
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    ax.set_ylabel("recordings")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def traces(signal: np.ndarray, channels: Sequence[str], sfreq: float, *, title: str = ""):
    """Stacked channel traces of one window (one row per channel, common scale)."""
    n_channels, n_samples = signal.shape
    t = np.arange(n_samples) / sfreq
    finite = signal[np.isfinite(signal)]
    spacing = 4 * float(np.percentile(np.abs(finite), 95)) if finite.size else 1.0
    fig = Figure(figsize=(8.0, 0.28 * n_channels + 1.2))
    ax = fig.add_subplot()
    for i in range(n_channels):
        ax.plot(t, signal[i] - i * spacing, lw=0.5, color="#1a1a1a")
    ax.set_yticks(-np.arange(n_channels) * spacing, list(channels)[:n_channels], fontsize=6)
    ax.set_xlabel("time (s)")
    ax.set_xlim(t[0], t[-1])
    ax.set_title(title, fontsize=10)
    return fig


def render_eeg(paths: Sequence[Path]) -> list[Section]:
    """One section over every EEG dataset of the run.

    Parameters
    ----------
    paths : sequence of Path
        ``summary.json`` artifacts of the ``eeg_store`` stage or of
        :func:`neuroai.eeg.process_cohort` (``examples.npy`` beside each is read too).
    """
    sections = []
    for summary_path in paths:
        summary = load_json(summary_path)  # from the eeg_store stage or process_cohort
        examples = load_array(summary_path.with_name("examples.npy"))
        dataset = summary["dataset"]
        section = Section(
            f"eeg-{dataset}",
            f"EEG windows and patch stores: {dataset}",
            page=(f"dataset-{dataset}", f"Dataset {dataset}"),
        )
        _render_dataset(section, summary, examples)
        _render_group_qc(section, summary)
        sections.append(section)
    return sections


#: Absolute limit of the EEG group QC: a recording that loses more than half
#: of its windows to flat or saturated channels or bad annotations is flagged.
REJECTED_LIMIT = 0.5
#: Recordings per dataset whose spectrum is included besides the flagged ones.
MAX_SPECTRA = 6


def eeg_group_qc(recordings: Sequence[dict]) -> tuple[list[tuple], list[list[str]]]:
    """Rows of a dataset's group QC table and the reasons each recording is flagged.

    Parameters
    ----------
    recordings : sequence of dict
        The ``recordings`` entries of an EEG cohort summary.

    Returns
    -------
    rows : list of tuple
        ``(recording, label, duration s, windows, rejected, rejected %,
        interpolated, dropped)`` per recording.
    reasons : list of list of str
        Per recording, why it is flagged (empty when it is not).
    """
    rows, rejected, interpolated = [], [], []
    for r in recordings:
        total = r["windows"].get("total", 0)
        fraction = r["windows"].get("rejected", 0) / total if total else 1.0
        rows.append(
            (
                r["recording"],
                r["label"],
                f"{r['duration_s']:g}",
                total,
                r["windows"].get("rejected", 0),
                f"{100 * fraction:.1f}",
                ", ".join(r["interpolated"]) or "-",
                ", ".join(r["dropped"]) or "-",
            )
        )
        rejected.append(fraction)
        interpolated.append(len(r["interpolated"]))
    reasons = qm.flag_outliers(
        {
            qm.Measure("rejected fraction", limit=REJECTED_LIMIT, floor=0.2): rejected,
            qm.Measure("interpolated channels"): interpolated,
        }
    )
    return rows, reasons


def _render_group_qc(section: Section, summary: dict) -> None:
    recordings = summary["recordings"]
    rows, reasons = eeg_group_qc(recordings)
    flagged = [i for i, r in enumerate(reasons) if r]
    section.add(
        "<h3>Group QC</h3>",
        text(
            f"{len(recordings)} recordings; {len(flagged)} flagged. A recording is flagged when "
            f"its fraction of rejected windows or its number of interpolated electrodes has a "
            f"robust z-score above {qm.ROBUST_Z:g} within this dataset (rejected fractions up to "
            f"20% excepted), or when more than "
            f"{REJECTED_LIMIT:.0%} of its windows were rejected.",
            cls="note",
        ),
        flagged_table(
            rows,
            reasons,
            [
                "recording",
                "label",
                "duration s",
                "windows",
                "rejected",
                "rejected %",
                "interpolated",
                "dropped",
            ],
        ),
    )
    freqs = summary["psd"]["freqs"]
    classes = summary["psd"]["classes"]
    order = flagged + [i for i in range(len(recordings)) if i not in flagged]
    shown = 0
    for i in order:
        if shown >= max(MAX_SPECTRA, len(flagged)):
            break
        r = recordings[i]
        if not r.get("psd"):
            continue
        curves = {r["recording"]: r["psd"]}
        if r["label"] in classes:
            curves[f"mean of {r['label']} recordings"] = classes[r["label"]]
        section.add(
            details(
                f"Spectrum: {r['recording']}" + (" (flagged)" if reasons[i] else ""),
                figure(
                    power_spectra(freqs, curves, title=r["recording"]),
                    caption="Welch power spectral density of the recording's kept windows "
                    "(mean over channels) against the mean of its class.",
                ),
            )
        )
        shown += 1


def _render_dataset(section: Section, summary: dict, examples: np.ndarray) -> None:
    dataset = summary["dataset"]
    windows = summary["windows"]
    store = summary["store"]
    montage = summary.get("montage") or "all EEG channels (10-05 names)"
    section.add(
        text(
            f"{summary['n_recordings']} recordings, montage {montage}; {windows.get('total', 0)} "
            f"windows of {store['window_s']:g} s, {windows.get('kept', 0)} kept in the patch store "
            f"({store['n_rows']} channel rows of {store['n_patches']} patches x "
            f"{store['patch_len']}, {store['dtype']}; time patches {store['segments']['time']}, "
            f"FFT-amplitude patches {store['segments']['spectrum']})."
        ),
    )
    rows = [(name, v["recordings"], v["windows"]) for name, v in summary["classes"].items()]
    section.add(table(rows, ["recording label", "recordings", "windows kept"]))
    if summary["psd"]["classes"]:
        section.add(
            figure(
                power_spectra(
                    summary["psd"]["freqs"],
                    summary["psd"]["classes"],
                    title=f"{dataset}: power spectrum by class",
                ),
                caption=(
                    "Welch power spectral density of the kept windows after filtering and "
                    "resampling (microvolts, before clipping and normalisation), averaged over "
                    "channels, then over the recordings of each class."
                ),
            )
        )
    if summary["coverage"]:
        interpolations = sum(v["interpolated"] for v in summary["coverage"].values())
        section.add(
            figure(
                channel_coverage(
                    summary["coverage"],
                    summary["n_recordings"],
                    title=f"{dataset}: electrodes per recording",
                ),
                caption=(
                    f"Recordings in which each electrode of the montage was in the file or was "
                    f"interpolated (spherical splines); {interpolations} interpolations in all."
                ),
            )
        )
    rejected = [(reason, windows.get(reason, 0)) for reason in REASONS]
    rejected.append(("any (rejected)", windows.get("rejected", 0)))
    section.add(
        "<p><b>Rejected windows</b> (a window may have several reasons)</p>",
        table(rejected, ["reason", "windows"]),
    )
    if summary["events"]:
        section.add(
            "<p><b>Annotation labels</b> (windows overlapping each label)</p>",
            table(list(summary["events"].items()), ["label", "windows"]),
        )
    for k, meta in enumerate(summary["examples"]):
        events = meta["events"] or "none"
        section.add(
            figure(
                traces(
                    examples[k, : len(meta["channels"])],
                    meta["channels"],
                    meta["sfreq"],
                    title=f"{meta['recording']} ({meta['label']}), window at {meta['start_s']:g} s",
                ),
                caption=(
                    f"Example window of a {meta['label']} recording after preprocessing "
                    f"(reconstructed from the stored time patches; annotations: {events})."
                ),
            )
        )
    if summary.get("failed"):
        section.add(
            text(f"Recordings left out: {', '.join(sorted(summary['failed']))}.", cls="note")
        )
