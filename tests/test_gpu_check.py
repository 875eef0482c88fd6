"""benchmarks/gpu_check.py on a CPU: every part on tiny sizes, the JSON it writes, exact resume.

The GPU run itself needs a lent GPU; this runs the same code (``--device cpu --quick``,
fp32) so that a broken family builder, a resume that drifts or a malformed result is
caught here first.
"""

import importlib.util
import json
import sys

import pytest

from neuroai.models import list_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gpu_check(repo):
    spec = importlib.util.spec_from_file_location("gpu_check", repo / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _broken(data, config, preset):
    raise ValueError("a family that cannot be built")


def test_quick_cpu_run_writes_every_part_and_resumes_exactly(gpu_check, tmp_path, monkeypatch):
    # A family whose builder raises must be recorded without stopping the others.
    broken = gpu_check.Family(_broken, "graphs", (2, 2))
    monkeypatch.setitem(gpu_check.FAMILIES, "broken", broken)
    families = [*list_models(), "broken"]
    argv = ["--device", "cpu", "--quick", "--skip", "gpu-tests", "--budget", "300"]
    argv += ["--out", str(tmp_path / "out"), "--workdir", str(tmp_path), "--families", *families]
    result = gpu_check.main(argv)

    written = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert written == json.loads(json.dumps(result, default=str))
    assert written["complete"] and not written["stopped_by_budget"]
    assert written["device"]["device"] == "cpu" and written["device"]["precision"] == "32-true"
    assert written["gpu_tests"]["status"] == "skipped"
    assert set(written["times_s"]) == {"gpu_tests", "data", "resume", "throughput", "total"}
    assert list(written["families"]) == families
    for name in list_models():
        record = written["families"][name]
        resume, speed = record["resume"], record["throughput"]
        assert resume["status"] == "ok", (name, resume)
        # 12 steps, checkpoints every 3, killed at 8: resumed from 6, to the same weights.
        assert (resume["steps"], resume["killed_at"], resume["resumed_from"]) == (12, 8, 6)
        assert resume["resumed_steps"] == 12 and resume["precision"] == "32-true"
        assert resume["max_abs_diff"] == 0.0 and resume["exact"], (name, resume["worst_tensor"])
        assert speed["status"] == "ok", (name, speed)
        alone, e2e = speed["model_alone"], speed["end_to_end"]
        assert alone["steps"] == e2e["steps"] == 5 and speed["batch_samples"] > 0
        assert alone["samples_per_s"] > 0 and e2e["samples_per_s"] > 0
        assert speed["ratio"] == pytest.approx(e2e["samples_per_s"] / alone["samples_per_s"], 1e-2)
        assert speed["goal_met"] == (speed["ratio"] >= 0.9)
    assert written["families"]["dsd"]["throughput"]["batch_samples"] == 2  # 1 volume, 2 patches
    for part in ("resume", "throughput"):
        failed = written["families"]["broken"][part]
        assert failed["status"] == "error" and "cannot be built" in failed["error"]
    table = (tmp_path / "out" / "gpu_check.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + len(families)  # header, rule, one row per family
    assert "| dsd | 12, 8, 6 | 0 (exact) |" in table and "| broken | error: ValueError" in table


def test_a_spent_budget_skips_the_parts_and_still_writes(gpu_check, tmp_path):
    argv = ["--device", "cpu", "--quick", "--skip", "gpu-tests", "--budget", "9"]
    result = gpu_check.main([*argv, "--out", str(tmp_path), "--families", "dsd"])
    assert result["stopped_by_budget"]
    assert result["families"]["dsd"]["data"]["status"] == "skipped: time budget"
    assert "skipped: time budget" in (tmp_path / "gpu_check.md").read_text()


def test_resume_without_deterministic_kernels_where_one_has_none(gpu_check, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")

    def strict_dsd(data, config, preset):
        # As a CUDA kernel without a deterministic version does under deterministic=True.
        module, datamodule = gpu_check.FAMILIES["dsd"].build(data, config, preset)
        compute_train = module.compute_train

        def refusing(batch):
            if torch.are_deterministic_algorithms_enabled():
                raise RuntimeError("index_add_cuda_ does not have a deterministic implementation")
            return compute_train(batch)

        module.compute_train = refusing
        return module, datamodule

    strict = gpu_check.Family(strict_dsd, "decathlon", (1, 2), "val/dice", "max")
    monkeypatch.setitem(gpu_check.FAMILIES, "strict", strict)
    argv = ["--device", "cpu", "--quick", "--skip", "gpu-tests", "throughput", "--budget", "300"]
    result = gpu_check.main([*argv, "--out", str(tmp_path), "--families", "strict"])
    resume = result["families"]["strict"]["resume"]
    assert resume["status"] == "ok" and not resume["deterministic"] and resume["exact"]
    assert resume["not_deterministic"].startswith("index_add_cuda_ does not have")
    assert "(nondeterministic kernels)" in (tmp_path / "gpu_check.md").read_text()
    assert not torch.are_deterministic_algorithms_enabled()  # restored for what follows


def test_max_abs_difference_finds_the_one_changed_tensor(gpu_check):
    torch = pytest.importorskip("torch")
    a = {"w": torch.zeros(3, 4), "b": torch.ones(5), "count": torch.tensor(7)}
    b = {k: v.clone() for k, v in a.items()}
    assert gpu_check.max_abs_difference(a, b)[0] == 0.0
    b["b"][2] += 2.0**-20
    assert gpu_check.max_abs_difference(a, b) == (2.0**-20, "b")
    b["count"] += 1  # an integer buffer (a step counter) that differs is never "close"
    assert gpu_check.max_abs_difference(a, b) == (float("inf"), "count")


def test_pytest_summary_counts(gpu_check):
    output = "....F\n=== 1 failed, 8 passed, 486 deselected, 1 error, 2 warnings in 41.20s ===\n"
    summary, counts = gpu_check.pytest_counts(output)
    assert summary == "1 failed, 8 passed, 486 deselected, 1 error, 2 warnings in 41.20s"
    assert counts == {"failed": 1, "passed": 8, "deselected": 486, "errors": 1}
    assert gpu_check.pytest_counts("9 skipped, 3 errors in 2.0s")[1] == {"skipped": 9, "errors": 3}
    assert gpu_check.pytest_counts("Killed\n") == ("", {})


def test_modules_that_could_not_be_imported_are_told_from_test_errors(gpu_check):
    # pytest -ra --continue-on-collection-errors: a module missing a package, a test error
    output = (
        "=== short test summary info ===\n"
        "ERROR tests/test_workflow.py - ModuleNotFoundError: No module named 'snakemake'\n"
        "ERROR tests/test_report.py\n"
        "ERROR tests/test_gpu.py::test_a_killed_cuda_run_resumes_to_the_same_weights\n"
        "5 passed, 3 errors in 20.1s\n"
    )
    modules = gpu_check.uncollected(output)
    assert modules == ["tests/test_workflow.py", "tests/test_report.py"]
    _, counts = gpu_check.pytest_counts(output)
    assert gpu_check.tests_status(counts, len(modules)) == "failed"  # the third error is a test's
    assert gpu_check.tests_status({"passed": 5, "errors": 2}, 2) == "passed"
    assert gpu_check.tests_status({"skipped": 9, "deselected": 500}, 0) == "all skipped"
    assert gpu_check.tests_status({"deselected": 500, "errors": 1}, 1) == "no test ran"
