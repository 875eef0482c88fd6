"""The workflow's main positional flag: the preset's unless the user sets one.

Before, the schema default (``rope``) overrode the preset, so ``preset: paper`` ran RoPE
instead of the released network's no positions.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from neuroai.models import model_config

REPO = Path(__file__).resolve().parents[1]


def test_the_workflow_table_of_preset_flags_matches_the_presets():
    source = (REPO / "workflows" / "rules" / "inputs" / "tablet.smk").read_text()
    table = re.search(r"TABLET_PRESET_POSITIONAL = (\{[^}]*\})", source).group(1)
    written = yaml.safe_load(table)
    built = {p: model_config("tablet", p).positional for p in ("demo", "paper", "recommended")}
    assert written == built and built["paper"] == "none"


def _dry_run(tmp_path: Path, model: dict) -> str:
    pytest.importorskip("neurolib", reason="needs the demo extras: pip install -e '.[demo]'")
    config = yaml.safe_load((REPO / "workflows" / "config" / "config.yaml").read_text())
    config["tablet"]["model"] = model
    config["tablet"]["ablation"] = {"pretraining": False}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    command += ["--directory", str(tmp_path), "--configfile", str(path), "-n", "-p"]
    command += ["results/tablet/demo_volumes/metrics.json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-2000:]
    return output


@pytest.mark.parametrize(
    ("model", "flag"),
    [
        ({"preset": "paper"}, "none"),  # the released network: no positions
        ({"preset": "paper", "positional": "rope"}, "rope"),  # the user's choice wins
        ({"preset": "paper", "options": {"positional": "spacetime"}}, "spacetime"),
        ({"preset": "demo"}, "rope"),
    ],
)
def test_the_preset_sets_the_flag_unless_the_user_does(tmp_path, model, flag):
    output = _dry_run(tmp_path, model)
    assert f"split-0/pretrain/{flag}/encoder" in output
    assert f"split-0/site/pretrained-{flag}/model" in output
    others = {"none", "rope", "spacetime"} - {flag}
    assert not any(f"pretrain/{other}/" in output for other in others), output[-2000:]


def test_the_stage_config_keeps_the_preset_flag_unless_told():
    from neuroai.pipelines.tablet_pretrain import tablet_config

    assert tablet_config({"preset": "paper"}).positional == "none"
    assert tablet_config({"preset": "paper", "positional": "rope"}).positional == "rope"
    both = {"preset": "demo", "positional": "none", "options": {"positional": "spacetime"}}
    assert tablet_config(both).positional == "none"  # as the workflow names the run
    # A pretrained encoder's flag (fixed) wins: fine-tuning rebuilds the encoder.
    assert tablet_config(both, positional="rope").positional == "rope"
