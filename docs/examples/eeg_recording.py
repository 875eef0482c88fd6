# ruff: noqa: T201 (an example prints what it shows; the docs hook hides this line)
"""A simulated TUAB-like EEG recording: TUH channel names to the TCP montage, windows, patches."""

import tempfile

import mne

from neuroai.datasets import build_eeg_demo
from neuroai.eeg import EEGParams, index_eeg_recordings, process_recording, read_raw

mne.set_log_level("WARNING")

with tempfile.TemporaryDirectory() as folder:
    # Two 60-second recordings of the demo cohort (simulated on tvb-data's real lead field),
    # written as EDF files with TUH channel names and .csv/.csv_bi annotations.
    build_eeg_demo(folder, n_recordings=2, duration_s=60)
    recordings = index_eeg_recordings(folder, "tuh")  # label and split from the folders
    first = recordings[0]
    raw = read_raw(first.path)
    print("EDF:", first.path.name, "|", len(raw.ch_names), "channels, e.g.", raw.ch_names[:3])
    print("label:", first.meta.label, "| split:", first.meta.split)
    result = process_recording(first.path, params=EEGParams(montage="tcp_22"), meta=first.meta)

channels = result.qc["channels"]
print("renamed:", {k: channels["renamed"][k] for k in ["EEG T3-REF", "EEG T5-REF"]})
print("montage:", channels["montage"], "|", len(channels["channels"]), "bipolar channels")
print("dropped:", channels["dropped"], "| interpolated:", channels["interpolated"])
qc = result.qc
print("windows by reason:", qc["windows"])
print("patches (rows = windows x channels, time + spectral patches, patch length):")
print("   ", result.part.patches.shape, result.part.patches.dtype)
print("channel set of the windows:", result.part.channel_sets[0][:4], "...")
