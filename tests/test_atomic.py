import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from neuroai.errors import ArtifactError
from neuroai.io import (
    atomic_open,
    atomic_path,
    is_temporary,
    load_array,
    remove_stale_temporaries,
    save_array,
)
from neuroai.io.atomic import temporary_sibling


def test_temporary_sibling_keeps_suffixes(tmp_path):
    tmp = temporary_sibling(tmp_path / "sub-01_bold.nii.gz")
    assert tmp.parent == tmp_path
    assert tmp.name.startswith(".sub-01_bold")
    assert tmp.name.endswith(".nii.gz")
    assert is_temporary(tmp)
    assert not is_temporary(tmp_path / "sub-01_bold.nii.gz")
    # A dotted number in the name is not taken for a suffix.
    name = temporary_sibling(tmp_path / "run-1.5_fc.npy").name
    assert name.startswith(".run-1.5_fc.tmp-") and name.endswith(".npy")


def test_atomic_open_success_and_failure(tmp_path):
    target = tmp_path / "out" / "a.txt"
    with atomic_open(target) as handle:
        handle.write("hello")
    assert target.read_text() == "hello"
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "hello"  # the old file is untouched
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]  # no temporary left


def test_atomic_directory_replaces_old_folder(tmp_path):
    target = tmp_path / "store.zarr"
    for value in ("first", "second"):
        with atomic_path(target, directory=True) as tmp:
            (tmp / "data.txt").write_text(value)
    assert (target / "data.txt").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["store.zarr"]


def test_writer_that_creates_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "x.npy"):
        pass
    assert not (tmp_path / "x.npy").exists()


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import numpy.lib.format as fmt
    from neuroai.io import save_array

    original = fmt.write_array

    def slow_write_array(fp, array, *args, **kwargs):
        fp.write(b"partial bytes of a large array")
        fp.flush()
        print("WRITING", flush=True)
        time.sleep(60)  # killed here, mid-write
        original(fp, array, *args, **kwargs)

    if sys.argv[2] == "slow":
        fmt.write_array = slow_write_array
        np.lib.format.write_array = slow_write_array
    save_array(sys.argv[1], np.arange(1000.0), stage="kill_test", params={"n": 1000})
    print("DONE", flush=True)
    """
)


def test_stage_killed_mid_write_leaves_nothing_complete(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(KILL_SCRIPT)
    target = tmp_path / "results" / "array.npy"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(target), "slow"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout.readline().strip() == "WRITING"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # Only a hidden temporary is left; the artifact does not exist and is not taken as complete.
    leftovers = list(target.parent.iterdir())
    assert leftovers and all(is_temporary(p) for p in leftovers)
    assert not target.exists()
    with pytest.raises(ArtifactError, match="does not exist"):
        load_array(target)
    # The rerun produces the artifact, and the stale temporary can be cleaned away.
    done = subprocess.run(
        [sys.executable, str(script), str(target), "fast"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(load_array(target, params={"n": 1000}), np.arange(1000.0))
    removed = remove_stale_temporaries(target.parent)
    assert removed == leftovers
    assert sorted(p.name for p in target.parent.iterdir()) == ["array.npy", "array.npy.prov.json"]


def test_remove_stale_keeps_live_writers(tmp_path):
    live = tmp_path / f".x.tmp-{os.getpid()}-abcd.npy"
    live.write_text("")
    assert remove_stale_temporaries(tmp_path) == []
    assert live.exists()


def test_save_then_kill_before_record_is_refused(tmp_path):
    target = tmp_path / "a.npy"
    save_array(target, np.ones(3), stage="s")
    (tmp_path / "a.npy.prov.json").unlink()  # as if killed between the two renames
    with pytest.raises(ArtifactError, match="no provenance record"):
        load_array(target)
