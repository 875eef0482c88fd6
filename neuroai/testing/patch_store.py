"""A tiny labelled EEG patch store for tests of the models that train on patch stores.

Recordings alternate normal / abnormal (abnormal ones carry a 2 Hz rhythm, labelled
``slow`` in half of their windows and ``spsw`` in one), the last two recordings are
the ``eval`` split (``n_eval`` of them; 0 for a store without one, as TUAR, TUSL or a
BIDS cohort), consecutive recordings may belong to one subject
(``recordings_per_subject``), and blinks (``eyem``, or TUAR's combined ``eyem_musc``) are
annotated in some windows, so every built-in EEGFormer task has positives. Sizes are
small and unequal on purpose (5 channels, 400-sample windows at 100 Hz).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroai.eeg.patches import PatchLayout, window_patches
from neuroai.eeg.store import PatchPart, write_patch_store
from neuroai.testing.eeg import eeg_signals

CHANNELS = ("Fp1", "C3", "Cz", "C4", "O2")


def tiny_patch_store(
    path: str | os.PathLike,
    *,
    n_recordings: int = 6,
    windows_per_recording: int = 3,
    sfreq: float = 100.0,
    window_samples: int = 400,
    patch_len: int = 20,
    seed: int = 0,
    name_prefix: str = "rec",
    channels: Sequence[str] = CHANNELS,
    recordings_per_subject: int = 1,
    n_eval: int = 2,
    patient_namespace: str | None = None,
) -> Path:
    """Write a tiny patch store (see the module docstring) and return its folder.

    The store has ``n_recordings * windows_per_recording`` windows of
    ``len(channels)`` channels; spectral patches: ``(window_samples // 2) // patch_len``.
    Recording ``r`` belongs to subject ``r // recordings_per_subject`` (named as the
    recording when each subject has one, ``<name_prefix>sub<k>`` otherwise); the last
    ``n_eval`` recordings are the ``eval`` split, so a subject may have recordings on
    both sides of the store's own split. ``patient_namespace`` is written into the header
    (:mod:`neuroai.eeg.patients`): stores that share one share their subjects.
    """
    rng = np.random.default_rng(seed)
    layout = PatchLayout(window_samples, patch_len, patch_len)
    n_chans = len(channels)
    t = np.arange(window_samples) / sfreq
    windows, rows = [], []
    for r in range(n_recordings):
        abnormal = r % 2 == 1
        split = "eval" if r >= n_recordings - n_eval else "train"
        subject = (
            f"{name_prefix}{r:02d}"
            if recordings_per_subject == 1
            else f"{name_prefix}sub{r // recordings_per_subject:02d}"
        )
        for w in range(windows_per_recording):
            signal = eeg_signals(n_chans, window_samples, sfreq, seed=seed * 1000 + r * 50 + w)
            events = []
            if abnormal and w % 2 == 0:
                signal[1:4] += 40 * np.sin(2 * np.pi * 2.0 * t + rng.uniform(0, 6.3))
                events.append("slow")
            if abnormal and w == 1:
                signal += 30 * np.sign(np.sin(2 * np.pi * 3.0 * t))
                events.append("spsw")
            if (r + w) % 3 == 0:
                signal[0] += 80 * np.exp(-(((t - 1.5) / 0.15) ** 2))
                events.append("eyem" if r % 2 else "eyem_musc")
            windows.append(signal)
            rows.append(
                {
                    "recording": f"{name_prefix}{r:02d}",
                    "subject": subject,
                    "session": "s001",
                    "split": split,
                    "label": "abnormal" if abnormal else "normal",
                    "events": ";".join(sorted(events)),
                    "start_s": w * window_samples / sfreq,
                }
            )
    patches, stats = window_patches(np.stack(windows), layout, dtype="float16")
    n = len(rows)
    index = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    index.update(
        {
            "window": np.arange(n),
            "channel_set": np.zeros(n, dtype=np.int64),
            "row": np.arange(n) * n_chans,
            "n_channels": np.full(n, n_chans),
        }
    )
    part = PatchPart(index, [list(channels)], patches, stats)
    params = {"sfreq": sfreq, "window_samples": window_samples, "patch_len": patch_len}
    return write_patch_store(
        path,
        [part],
        layout=layout,
        sfreq=sfreq,
        dtype="float16",
        params=params,
        stage="test",
        patient_namespace=patient_namespace,
    )
