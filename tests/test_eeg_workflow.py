"""The EEG part of the workflow end to end: demo cohort, per-recording jobs, store, report."""

import re
import subprocess
import sys

import pytest
import yaml

from neuroai.eeg import open_patch_store
from neuroai.io import read_provenance
from neuroai.testing import report_text
from neuroai.testing.workflow import REPO
from neuroai.testing.workflow import run_snakemake as snakemake

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    pytest.importorskip("tvb_data", reason="the EEG demo needs tvb-data: pip install -e '.[demo]'")
    work = tmp_path_factory.mktemp("eeg_workflow")
    config = {
        "datasets": {
            "tiny_eeg": {
                "card": "data_cards/demo_eeg_simulated.yaml",
                "layout": "tuh",
                "build": {"builder": "eeg_simulation", "n_recordings": 2, "duration_s": 30},
            }
        },
        "static_fc": {"datasets": []},
        "eeg": {"datasets": ["tiny_eeg"], "window_s": 6, "stride_s": 6, "patch_len": 30},
        "report": {"title": "tiny eeg report"},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(work, "--configfile", str(work / "config.yaml"), "--cores", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work


def test_eeg_workflow_writes_store_and_report(run):
    results = run / "results"
    store = open_patch_store(results / "eeg" / "tiny_eeg" / "store")
    assert len(set(store.index["recording"])) == 2
    assert store.header["channel_sets"][0][0] == "Fp1-F7" and store.header["patch_len"] == 30
    assert read_provenance(results / "eeg" / "tiny_eeg" / "store")["stage"] == "eeg_store"
    qcs = sorted((results / "eeg" / "tiny_eeg" / "recordings").glob("*_qc.json"))
    assert len(qcs) == 2
    assert not list((results / "eeg" / "tiny_eeg" / "recordings").glob("*_patches"))  # temp
    report = report_text(results / "report")
    for text in ("EEG windows and patch stores", "demo_eeg_simulated", "simulated", "eeg_demo",
                 "eeg_recording", "eeg_store", "Rejected windows"):  # fmt: skip
        assert text in report, text
    assert not re.search(r'(src|href)="https?://', report)
    assert (results / "benchmarks" / "eeg_recording" / "tiny_eeg").is_dir()


def test_second_eeg_run_does_nothing(run):
    done = snakemake(run, "--configfile", str(run / "config.yaml"), "--cores", "2")
    assert done.returncode == 0
    assert "Nothing to be done" in done.stdout + done.stderr


def test_eeg_config_is_validated_with_suggestions():
    from neuroai.config import validate_config
    from neuroai.errors import ConfigError

    schema = REPO / "workflows" / "schemas" / "config.schema.yaml"
    config = {"datasets": {"x": {"card": "c.yaml", "layout": "tuh", "root": "/data"}}}
    config["eeg"] = {"datasets": ["x"], "montage": "tcp22"}
    with pytest.raises(ConfigError, match="'tcp22' is not one of.*Did you mean 'tcp_22'"):
        validate_config(config, schema)
    config["eeg"] = {"datasets": ["x"], "windows_s": 12}
    with pytest.raises(ConfigError, match="Unknown config key 'eeg.windows_s'. Did you mean"):
        validate_config(config, schema)
    config["eeg"] = {"datasets": ["x"]}
    validate_config(config, schema)
    assert config["eeg"]["sfreq"] == 250 and config["eeg"]["montage"] == "tcp_22"


def test_recording_stage_refuses_bad_input_and_writes_nothing(tmp_path):
    from neuroai.testing import tuh_edf

    edf = tuh_edf(tmp_path / "aaaaaaab_s001_t000.edf", duration_s=6.0)
    edf.write_bytes(edf.read_bytes()[:-3000])
    command = [sys.executable, "-m", "neuroai.pipelines.eeg_recording", "--recording", str(edf)]
    command += ["--store", str(tmp_path / "out_patches"), "--qc", str(tmp_path / "out_qc.json")]
    command += ["--params", '{"montage": "10-20_19"}', "--log", str(tmp_path / "log.txt")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "aaaaaaab_s001_t000.edf is truncated" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aaaaaaab_s001_t000.edf", "log.txt"]
