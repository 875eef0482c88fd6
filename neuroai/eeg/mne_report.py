"""A recording's quality control in an ``mne.Report``.

:func:`add_qc_to_report` adds what :func:`neuroai.eeg.process_recording` found
about one recording (its ``qc`` summary, also saved by the ``eeg_recording``
stage as ``<key>_qc.json``) to an MNE report, beside whatever the user puts
there (the raw traces, ICA components, evoked responses):

- a table of the channel decisions (renamed, dropped with the reason,
  interpolated, reference) and of the windows (kept, and rejected by reason);
- the channel-mean power spectrum of the kept windows (uV^2/Hz, log scale).

Everything goes into one section named after the recording, so many recordings
share one report.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np

from neuroai.errors import DataError

#: The QC keys the report reads.
QC_KEYS = ("recording", "channels", "windows", "psd")


def _rows(pairs) -> str:
    return "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in pairs
    )


def _table(qc: Mapping[str, Any]) -> str:
    channels, windows = qc["channels"], qc["windows"]
    dropped = ", ".join(f"{name} ({why})" for name, why in sorted(channels["dropped"].items()))
    renamed = ", ".join(f"{a} -> {b}" for a, b in sorted(channels["renamed"].items()))
    channel_rows = [
        ("source", qc.get("source", channels.get("source", ""))),
        ("montage", channels.get("montage") or "10-05 names"),
        ("channels", f"{len(channels['channels'])}: {', '.join(channels['channels'])}"),
        ("interpolated", ", ".join(channels["interpolated"]) or "none"),
        ("dropped", dropped or "none"),
        ("renamed", renamed or "none"),
        ("reference", channels.get("reference", "")),
    ]
    window_rows = [(reason, count) for reason, count in windows.items()]
    return (
        "<table class='table table-sm'><caption>Channels</caption>"
        f"{_rows(channel_rows)}</table>"
        "<table class='table table-sm'><caption>Windows</caption>"
        f"{_rows(window_rows)}</table>"
    )


def _psd_figure(qc: Mapping[str, Any], title: str):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    freqs = np.asarray(qc["psd"]["freqs"], dtype=float)
    power = np.asarray(qc["psd"]["power"], dtype=float)
    fig = Figure(figsize=(5.0, 3.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if freqs.size:
        ax.semilogy(freqs, power, color="#08519c", lw=1.2)
    else:
        ax.text(0.5, 0.5, "no window kept", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power (uV^2/Hz)")
    ax.set_title(title, fontsize=9)
    return fig


def add_qc_to_report(report, qc: Mapping[str, Any], *, section: str | None = None):
    """Add one recording's quality control to an ``mne.Report``.

    Parameters
    ----------
    report : mne.Report
        The report to add to (modified in place).
    qc : mapping
        The ``qc`` of a :class:`~neuroai.eeg.ProcessedRecording` (or the
        ``<key>_qc.json`` the ``eeg_recording`` stage wrote, loaded).
    section : str | None
        The report section; the recording key by default.

    Returns
    -------
    mne.Report
        ``report``.

    Raises
    ------
    DataError
        When ``qc`` lacks a key the report needs (it is not a recording's QC).
    """
    missing = [key for key in QC_KEYS if key not in qc]
    if missing:
        raise DataError(
            f"This is not a recording's QC summary: it lacks {missing} (expected the qc of "
            "neuroai.eeg.process_recording or an eeg_recording *_qc.json)."
        )
    key = qc["recording"].get("key") or "recording"
    section = section or key
    report.add_html(
        _table(qc), title=f"{key}: channels and windows", section=section, tags=("neuroai-qc",)
    )
    report.add_figure(
        _psd_figure(qc, f"{key}: kept windows"),
        title=f"{key}: power spectrum",
        caption="Channel-mean Welch power of the kept windows, after preprocessing.",
        section=section,
        tags=("neuroai-qc",),
    )
    return report
