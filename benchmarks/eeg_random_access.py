"""Random access to EEG windows: the patch store vs MNE Epochs built on the same data.

Two cohorts (``--windows`` small and large) of 12 s windows, 22 channels at 250 Hz,
are written three ways:

- a neuroai patch store (float16 time + FFT-amplitude patches of 50, memory-mapped);
- a FIF file read by ``mne.Epochs(..., preload=False)`` (lazy, as braindecode's lazy
  datasets read windows from disk; braindecode reports ~0.5 ms per window from HDF5);
- the same Epochs with ``preload=True`` (everything in memory: the fastest MNE can be,
  and memory that grows with the cohort).

For each, ``--reads`` random windows are read (warm page cache) and the time per
window is reported, with the growth of anonymous memory (RssAnon: what the process
itself holds, not the file pages the kernel caches) while reading. Goal from issue 4:
at most 0.1 ms per window from the store, with memory flat in cohort size.

Run: ``python benchmarks/eeg_random_access.py [--windows 200 2000] [--reads 2000]``.
Prints a table and writes ``benchmarks/out/eeg_random_access.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import mne
import numpy as np

from neuroai.eeg import PatchLayout, PatchPart, open_patch_store, window_patches, write_patch_store

SFREQ, WINDOW_S, N_CHANNELS, PATCH = 250.0, 12.0, 22, 50
LENGTH = int(SFREQ * WINDOW_S)


def rss_anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return -1


def build(folder: Path, n_windows: int, seed: int):
    """The same signals as a patch store and as a FIF file with one event per window."""
    rng = np.random.default_rng(seed)
    layout = PatchLayout(LENGTH, PATCH, PATCH)
    parts = []
    chunk = 100
    signal_path = folder / f"cohort{n_windows}_raw.fif"
    data = np.empty((N_CHANNELS, n_windows * LENGTH), dtype=np.float32)
    for first in range(0, n_windows, chunk):
        count = min(chunk, n_windows - first)
        windows = rng.standard_normal((count, N_CHANNELS, LENGTH)).astype(np.float32) * 20
        data[:, first * LENGTH : (first + count) * LENGTH] = np.concatenate(list(windows), axis=1)
        patches, stats = window_patches(windows, layout, dtype="float16")
        n = np.arange(count)
        index = {
            "window": n,
            "recording": np.array([f"r{(first + i) // 10}" for i in n], dtype=object),
            "subject": np.array(["s"] * count, dtype=object),
            "session": np.array(["n/a"] * count, dtype=object),
            "split": np.array(["train"] * count, dtype=object),
            "label": np.array(["normal"] * count, dtype=object),
            "events": np.array([""] * count, dtype=object),
            "channel_set": np.zeros(count, dtype=int),
            "row": n * N_CHANNELS,
            "n_channels": np.full(count, N_CHANNELS),
            "start_s": (first + n) * WINDOW_S,
        }
        parts.append(PatchPart(index, [[f"ch{c}" for c in range(N_CHANNELS)]], patches, stats))
    store = folder / f"cohort{n_windows}_patches"
    write_patch_store(
        store, parts, layout=layout, sfreq=SFREQ, dtype="float16", params={}, stage="benchmark"
    )
    info = mne.create_info([f"ch{c}" for c in range(N_CHANNELS)], SFREQ, "eeg")
    mne.io.RawArray(data * 1e-6, info, verbose="error").save(signal_path, verbose="error")
    del data
    return store, signal_path


def epochs_of(signal_path: Path, n_windows: int, preload: bool):
    raw = mne.io.read_raw_fif(signal_path, preload=False, verbose="error")
    events = np.column_stack(
        [np.arange(n_windows) * LENGTH, np.zeros(n_windows, int), np.ones(n_windows, int)]
    )
    epochs = mne.Epochs(
        raw, events, tmin=0, tmax=(LENGTH - 1) / SFREQ, baseline=None, preload=preload,
        verbose="error",
    )  # fmt: skip
    return epochs.drop_bad(verbose="error")  # as braindecode does, so get_data(item=i) works


def measure(read, order: np.ndarray) -> tuple[float, int]:
    for i in order[:20]:  # warm up
        read(int(i))
    before = rss_anon_kib()
    start = time.perf_counter()
    for i in order:
        read(int(i))
    per_window = (time.perf_counter() - start) / len(order)
    return per_window * 1e3, rss_anon_kib() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    import torch  # noqa: F401  (imported before measuring, so its memory is not counted)

    from neuroai.eeg import EEGPatchDataset

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_windows in args.windows:
            store_path, signal_path = build(Path(tmp), n_windows, seed=n_windows)
            order = np.random.default_rng(0).integers(0, n_windows, size=args.reads)
            store = open_patch_store(store_path)
            dataset = EEGPatchDataset(store_path)
            lazy = epochs_of(signal_path, n_windows, preload=False)
            lazy_reads = order[: max(200, args.reads // 10)]  # lazy Epochs are slow
            results = {
                "store.window(i)": measure(store.window, order),
                "EEGPatchDataset[i]": measure(dataset.__getitem__, order),
                "mne.Epochs lazy get_data(item=i)": measure(
                    lambda i, e=lazy: e.get_data(item=i), lazy_reads
                ),
            }
            before = rss_anon_kib()
            loaded = epochs_of(signal_path, n_windows, preload=True)
            preload_kib = rss_anon_kib() - before
            results["mne.Epochs preloaded get_data(item=i)"] = measure(
                lambda i, e=loaded: e.get_data(item=i), order
            )
            del loaded
            for name, (ms, kib) in results.items():
                rows.append({"windows": n_windows, "reader": name, "ms_per_window": ms,
                             "rss_anon_growth_kib": kib})  # fmt: skip
            rows.append({"windows": n_windows, "reader": "mne.Epochs preload itself",
                         "ms_per_window": None, "rss_anon_growth_kib": preload_kib})  # fmt: skip
    by = {(r["windows"], r["reader"]): r for r in rows}
    small, large = args.windows[0], args.windows[-1]
    ratios = {
        "lazy_epochs_over_store": by[(large, "mne.Epochs lazy get_data(item=i)")]["ms_per_window"]
        / by[(large, "store.window(i)")]["ms_per_window"],
        "preloaded_epochs_over_store": by[(large, "mne.Epochs preloaded get_data(item=i)")][
            "ms_per_window"
        ]
        / by[(large, "store.window(i)")]["ms_per_window"],
        "store_large_over_small": by[(large, "store.window(i)")]["ms_per_window"]
        / by[(small, "store.window(i)")]["ms_per_window"],
    }
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "eeg_random_access.json").write_text(
        json.dumps({"rows": rows, "ratios": ratios}, indent=2) + "\n"
    )
    print(f"12 s windows, {N_CHANNELS} channels at {SFREQ:g} Hz; {args.reads} random reads")
    print(f"{'windows':>8}  {'reader':40}{'ms/window':>10}{'RssAnon +KiB':>14}")
    for row in rows:
        ms = "" if row["ms_per_window"] is None else f"{row['ms_per_window']:.4f}"
        print(f"{row['windows']:>8}  {row['reader']:40}{ms:>10}{row['rss_anon_growth_kib']:>14}")
    print("ratios: " + ", ".join(f"{k} {v:.1f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
