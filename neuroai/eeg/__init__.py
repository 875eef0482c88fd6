"""EEG: from recordings in any common format to windows and spectral patch sequences.

The chain, one function per step (see each module)::

    read_raw(path)                        any format -> mne.io.Raw     readers, edf, tuh
    standardize_channels(raw, montage)    10-05 names, montage         channels, montages, standardize
    preprocess_raw(raw, ...)              notch, band-pass, resample   preprocessing
    find_windows / window_events          windows, rejection, labels   windows
    window_patches(windows, layout)       time + FFT-amplitude patches patches
    write_patch_store / PatchStore        random-access store          store
    write_sharded_store                   stores read in place, no copy shards
    EEGPatchDataset(stores)               lazy torch Dataset           dataset
    process_recording / save_recording    all of it for one file       recording
    add_qc_to_report(report, qc)          QC into an mne.Report        mne_report
    process_cohort(recordings, ...)       many files on Dask           cohort

``EEGPatchDataset``, ``collate_windows`` and the braindecode bridge
(``store_windows``, ``to_braindecode``: :mod:`neuroai.eeg.braindecode_bridge`)
import torch, so they are loaded on first use; everything else needs only MNE
and NumPy.
"""

from neuroai.eeg.channels import (
    classify_channels,
    electrode_positions,
    non_eeg_kind,
    standard_bipolar_name,
    standard_channel_name,
)
from neuroai.eeg.cohort import (
    CohortResult,
    build_cohort_store,
    process_cohort,
    recording_outputs,
    summarize_cohort,
)
from neuroai.eeg.edf import check_edf, read_edf_header, write_edf
from neuroai.eeg.layouts import LAYOUTS, EEGRecording, index_eeg_recordings
from neuroai.eeg.mne_report import add_qc_to_report
from neuroai.eeg.montages import MONTAGES, bipolar_pairs, montage_channels, montage_electrodes
from neuroai.eeg.params import EEGParams
from neuroai.eeg.patches import PatchLayout, reconstruct_time, window_patches
from neuroai.eeg.patients import default_patient_namespace
from neuroai.eeg.preprocessing import (
    clip_amplitude,
    normalize_channels,
    notch_frequencies,
    preprocess_raw,
    to_microvolts,
)
from neuroai.eeg.readers import FORMATS, bids_root, check_units, eeg_format, read_raw
from neuroai.eeg.recording import (
    ProcessedRecording,
    RecordingMeta,
    process_recording,
    save_recording,
    write_recording,
)
from neuroai.eeg.shards import ShardedPatchStore, write_sharded_store
from neuroai.eeg.standardize import ChannelReport, standardize_channels
from neuroai.eeg.store import (
    PatchPart,
    PatchStore,
    concatenate_stores,
    open_patch_store,
    write_patch_store,
)
from neuroai.eeg.tuh import TuhSpan, parse_tuh_path, read_tuh_csv, write_tuh_csv
from neuroai.eeg.windows import Windows, extract_windows, find_windows, window_events

_TORCH = {"EEGPatchDataset", "collate_windows"}
_BRAINDECODE = {"RecordingWindows", "recording_windows", "store_windows", "to_braindecode"}


def __getattr__(name: str):
    if name in _TORCH:
        from neuroai.eeg import dataset

        return getattr(dataset, name)
    if name in _BRAINDECODE:
        from neuroai.eeg import braindecode_bridge

        return getattr(braindecode_bridge, name)
    raise AttributeError(f"module 'neuroai.eeg' has no attribute {name!r}")


__all__ = [
    "FORMATS",
    "LAYOUTS",
    "MONTAGES",
    "ChannelReport",
    "CohortResult",
    "EEGParams",
    "EEGPatchDataset",
    "EEGRecording",
    "PatchLayout",
    "PatchPart",
    "PatchStore",
    "ProcessedRecording",
    "RecordingMeta",
    "RecordingWindows",
    "ShardedPatchStore",
    "TuhSpan",
    "Windows",
    "add_qc_to_report",
    "bids_root",
    "bipolar_pairs",
    "build_cohort_store",
    "check_edf",
    "check_units",
    "classify_channels",
    "clip_amplitude",
    "collate_windows",
    "concatenate_stores",
    "default_patient_namespace",
    "eeg_format",
    "electrode_positions",
    "extract_windows",
    "find_windows",
    "index_eeg_recordings",
    "montage_channels",
    "montage_electrodes",
    "non_eeg_kind",
    "normalize_channels",
    "notch_frequencies",
    "open_patch_store",
    "parse_tuh_path",
    "preprocess_raw",
    "process_cohort",
    "process_recording",
    "read_edf_header",
    "read_raw",
    "read_tuh_csv",
    "reconstruct_time",
    "recording_outputs",
    "recording_windows",
    "save_recording",
    "standard_bipolar_name",
    "standard_channel_name",
    "standardize_channels",
    "store_windows",
    "summarize_cohort",
    "to_braindecode",
    "to_microvolts",
    "window_events",
    "window_patches",
    "write_edf",
    "write_patch_store",
    "write_recording",
    "write_sharded_store",
    "write_tuh_csv",
]
