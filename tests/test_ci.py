"""CI runs what the README promises: its two commands, verbatim, and nothing skipped by default."""

import re
import shlex
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The bash blocks of the README's 'The two commands' section, in order."""
    text = (REPO / "README.md").read_text()
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def ci_variable(name: str) -> str:
    script = (REPO / ".ci" / "run").read_text()
    match = re.search(rf"^{name}=(.*)$", script, re.M)
    assert match, f".ci/run sets no {name}"
    (value,) = shlex.split(match.group(1))
    return value


def test_ci_runs_the_readme_commands_verbatim():
    demo, tests = readme_commands()
    assert ci_variable("DEMO_COMMAND") == demo
    assert ci_variable("TEST_COMMAND") == tests
    assert "snakemake --cores" in demo and tests.endswith("python -m pytest")
    script = (REPO / ".ci" / "run").read_text()
    for part in ('part demo bash -c "$DEMO_COMMAND"', 'bash -c "$TEST_COMMAND"', "part tests"):
        assert part in script, part
    # The browser check needs the test extras: it comes after the test command's install.
    assert script.index("part tests") < script.index("part browser")
    assert "check_report results/report/index.html" in script and "--complete" in script
    assert "Nothing to be done" in script


def test_default_run_deselects_only_gpu_tests():
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "-m 'not gpu'" in options["addopts"] and "slow" not in options["addopts"]
    markers = {m.split(":")[0] for m in options["markers"]}
    assert markers == {"slow", "integration", "gpu"}
