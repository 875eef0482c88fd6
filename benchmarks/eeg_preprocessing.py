"""EEG preprocessing throughput: neuroai vs the same operations called directly in MNE.

Both sides start from the same TUH-style EDF files and do the same work: read the
file, keep the 19 10-20 electrodes under standard names, notch at 60 Hz, band-pass
0.1-75 Hz, resample 256 -> 250 Hz and return microvolts. neuroai's side is
``read_raw`` + ``standardize_channels(montage="10-20_19")`` + ``preprocess_raw`` +
``to_microvolts`` (which also parse the EDF header, check it and record what they
did); MNE's side is ``read_raw_edf`` + ``pick`` + ``rename_channels`` +
``notch_filter`` + ``filter`` + ``resample`` + ``get_data``. The two outputs are
compared (they must agree). The whole per-recording pipeline
(``process_recording``: also TCP montage with A1/A2 interpolation, windows,
rejection, labels, patches) is timed too, for reference.

Run: ``python benchmarks/eeg_preprocessing.py [--recordings 6] [--minutes 2]``.
Prints a table and writes ``benchmarks/out/eeg_preprocessing.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import mne
import numpy as np

from neuroai.eeg import (
    EEGParams,
    montage_electrodes,
    preprocess_raw,
    process_recording,
    read_raw,
    standard_channel_name,
    standardize_channels,
    to_microvolts,
)
from neuroai.testing import tuh_edf

SFREQ_IN, SFREQ_OUT, LINE, L_FREQ, H_FREQ = 256.0, 250.0, 60.0, 0.1, 75.0


def neuroai_side(path: Path) -> np.ndarray:
    raw = standardize_channels(read_raw(path), "10-20_19")
    preprocess_raw(raw, line_freq=LINE, l_freq=L_FREQ, h_freq=H_FREQ, sfreq=SFREQ_OUT)
    return to_microvolts(raw)


def mne_side(path: Path) -> np.ndarray:
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    picks = [name for name in raw.ch_names if "EKG" not in name]
    raw.pick(picks)
    raw.rename_channels({name: standard_channel_name(name) for name in raw.ch_names})
    raw.reorder_channels(list(montage_electrodes("10-20_19")))
    raw.notch_filter([LINE], verbose="error")
    raw.filter(L_FREQ, H_FREQ, verbose="error")
    raw.resample(SFREQ_OUT, verbose="error")
    return raw.get_data(units="uV")


def timed(function, paths, repeats: int) -> tuple[float, list]:
    best, outputs = np.inf, []
    for _ in range(repeats):
        start = time.perf_counter()
        outputs = [function(path) for path in paths]
        best = min(best, time.perf_counter() - start)
    return best, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=6)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    mne.set_log_level("ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        paths = [
            tuh_edf(
                Path(tmp) / f"aaaaaaa{chr(97 + i)}_s001_t000.edf",
                sfreq=SFREQ_IN,
                duration_s=60 * args.minutes,
                seed=i,
            )  # fmt: skip
            for i in range(args.recordings)
        ]
        for function in (neuroai_side, mne_side):  # warm up imports and filter design
            function(paths[0])
        ours, out_ours = timed(neuroai_side, paths, args.repeats)
        theirs, out_mne = timed(mne_side, paths, args.repeats)
        difference = max(float(np.abs(a - b).max()) for a, b in zip(out_ours, out_mne, strict=True))
        params = EEGParams(line_freq=LINE, l_freq=L_FREQ, h_freq=H_FREQ, sfreq=SFREQ_OUT)
        full, _ = timed(lambda p: process_recording(p, params=params), paths, args.repeats)
    hours = args.recordings * args.minutes / 60
    result = {
        "recordings": args.recordings,
        "minutes_each": args.minutes,
        "channels": 20,
        "sfreq_in_hz": SFREQ_IN,
        "neuroai_s": ours,
        "mne_s": theirs,
        "ratio_neuroai_over_mne": ours / theirs,
        "max_abs_difference_uv": difference,
        "neuroai_hours_of_eeg_per_s": hours / ours,
        "mne_hours_of_eeg_per_s": hours / theirs,
        "full_pipeline_s": full,
        "full_pipeline_hours_of_eeg_per_s": hours / full,
    }
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "eeg_preprocessing.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.recordings} recordings x {args.minutes:g} min, 19 EEG + 1 ECG channels at 256 Hz")
    print(f"{'':34}{'seconds':>10}{'h of EEG / s':>14}")
    print(f"{'neuroai (read..preprocess)':34}{ours:10.3f}{hours / ours:14.2f}")
    print(f"{'MNE, same operations':34}{theirs:10.3f}{hours / theirs:14.2f}")
    print(f"{'neuroai full per-recording pipeline':34}{full:10.3f}{hours / full:14.2f}")
    print(f"ratio neuroai / MNE: {ours / theirs:.2f}; max |difference|: {difference:.2e} uV")


if __name__ == "__main__":
    main()
