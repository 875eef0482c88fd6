"""The simulated demo cohort, the Dask cohort API and the EEG report section."""

import numpy as np
import pandas as pd
import pytest

from neuroai.datasets import build_eeg_demo, demo_plan, simulate_recording
from neuroai.eeg import (
    EEGParams,
    index_eeg_recordings,
    open_patch_store,
    process_cohort,
    read_raw,
    read_tuh_csv,
    standardize_channels,
)
from neuroai.io import load_json, read_provenance

pytest.importorskip("tvb_data", reason="the EEG demo needs tvb-data: pip install -e '.[demo]'")
PARAMS = EEGParams(window_s=6.0, stride_s=6.0, patch_len=30, patch_stride=30)


def test_plan_is_balanced_and_tuab_like():
    plan = demo_plan(40)
    assert len({p.key for p in plan}) == 40
    assert sum(p.label == "abnormal" for p in plan) == 20
    assert sum(p.split == "eval" for p in plan) == 8
    assert sum(p.reference == "le" for p in plan) == 10
    first = plan[0]
    assert str(first.relpath) == f"edf/{first.split}/{first.label}/01_tcp_ar/{first.key}.edf"
    assert first.key == "aaaaaaab_s001_t000"


def _band_power(signal, sfreq, low, high):
    freqs = np.fft.rfftfreq(signal.size, 1 / sfreq)
    power = np.abs(np.fft.rfft(signal)) ** 2
    return power[(freqs >= low) & (freqs < high)].sum()


def test_normal_recording_has_posterior_alpha_and_one_over_f():
    plan = next(p for p in demo_plan(8, seed=3) if p.label == "normal")
    rec = simulate_recording(plan, duration_s=40.0, seed=3)
    names = [n.split()[1].split("-")[0] for n in rec.ch_names]
    o1, fp1 = rec.data_uv[names.index("O1")], rec.data_uv[names.index("FP1")]
    freqs = np.fft.rfftfreq(o1.size, 1 / 250.0)
    power = np.abs(np.fft.rfft(o1)) ** 2
    band = (freqs >= 4) & (freqs < 20)
    smooth = np.convolve(power, np.ones(40) / 40, mode="same")
    assert 9.0 <= freqs[band][np.argmax(smooth[band])] <= 11.5
    assert _band_power(o1, 250, 8, 12) > 2 * _band_power(fp1, 250, 8, 12)
    assert _band_power(o1, 250, 1, 4) > _band_power(o1, 250, 20, 24)  # 1/f background
    assert rec.pathology == [] and {s.label for s in rec.artifacts} >= {"eyem"}
    ecg = rec.data_uv[-1]
    assert rec.ch_names[-1] == "EEG EKG1-REF" and ecg.max() > 500


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_eeg")
    paths = build_eeg_demo(root, n_recordings=4, duration_s=30.0, seed=2)
    return root, paths


def test_demo_files_go_through_the_tuh_readers(demo):
    root, paths = demo
    manifest = pd.read_csv(root / "recordings.tsv", sep="\t", keep_default_na=False)
    assert read_provenance(root / "recordings.tsv")["stage"] == "eeg_demo"
    assert len(manifest) == 4 and set(manifest["label"]) == {"normal", "abnormal"}
    recordings = index_eeg_recordings(root, "tuh")
    assert [r.path for r in recordings] == sorted(paths, key=lambda p: p.stem)
    for recording, row in zip(recordings, manifest.itertuples(), strict=True):
        assert recording.meta.label == row.label and recording.meta.split == row.split
    abnormal = next(r for r in recordings if r.meta.label == "abnormal")
    pathology = read_tuh_csv(abnormal.path.with_suffix(".csv_bi"), duration=30.0)
    assert {s.label for s in pathology} - {"bckg"} <= {"slow", "spsw", "seiz"}
    assert {s.channel for s in pathology} == {"TERM"}
    raw = read_raw(abnormal.path)
    assert raw.ch_names[0].startswith("EEG FP1-") and raw.info["sfreq"] == 250.0
    assert {"eyem"} <= set(raw.annotations.description)
    tcp, report = standardize_channels(raw, "tcp_22", return_report=True)
    assert report.interpolated == ["A1", "A2"] and len(tcp.ch_names) == 22


def test_cohort_on_dask_with_a_skipped_bad_file(demo, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    root, _ = demo
    recordings = index_eeg_recordings(root, "tuh")
    broken = tmp_path / "edf" / "train" / "normal" / "zzzzzzzz_s001_t000.edf"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(recordings[0].path.read_bytes()[:-4000])
    recordings += index_eeg_recordings(tmp_path / "edf", "tuh")
    with (
        distributed.LocalCluster(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = process_cohort(
            recordings, tmp_path / "cohort", params=PARAMS, scheduler=client, on_error="skip"
        )
    assert list(result.failed) == ["zzzzzzzz_s001_t000"]
    assert "truncated" in result.failed["zzzzzzzz_s001_t000"]
    store = open_patch_store(result.store)
    assert set(store.index["recording"]) == {r.key for r in recordings[:4]}
    summary = load_json(result.summary)
    assert summary["n_recordings"] == 4 and summary["failed"] == result.failed
    assert set(summary["classes"]) == {"normal", "abnormal"}
    assert summary["coverage"]["A1"] == {"present": 0, "interpolated": 4}
    assert summary["coverage"]["O1"] == {"present": 4, "interpolated": 0}
    assert len(summary["psd"]["classes"]["normal"]) == len(summary["psd"]["freqs"])
    assert summary["windows"]["total"] == 4 * 5
    examples = np.load(result.examples)
    assert examples.shape == (2, 22, 1500)
    same = process_cohort(recordings[:1], tmp_path / "sync", params=PARAMS, scheduler="synchronous")
    np.testing.assert_array_equal(
        open_patch_store(same.store).window(0),
        store.window(int(np.flatnonzero(store.index["recording"] == recordings[0].key)[0])),
    )

    from neuroai.reports.html import Page
    from neuroai.reports.sections import render

    page = Page("t", sections=render("eeg", [result.summary])).render()
    for text in ("EEG windows and patch stores", "Welch power spectral density", "interpolated",
                 "Rejected windows", "Example window", "zzzzzzzz_s001_t000"):  # fmt: skip
        assert text in page, text


def test_every_span_lies_inside_short_recordings():
    for plan in [p for p in demo_plan(6, seed=5) if p.label == "abnormal"]:
        rec = simulate_recording(plan, duration_s=30.0, seed=5)
        assert rec.kinds
        assert all(0 <= s.start < s.stop <= 30.0 for s in rec.artifacts + rec.pathology)


@pytest.mark.slow
def test_cohort_on_the_default_local_cluster(demo, tmp_path):
    pytest.importorskip("dask.distributed")
    root, _ = demo
    recordings = index_eeg_recordings(root, "tuh")[:2]
    result = process_cohort(recordings, tmp_path, params=PARAMS)  # a local process cluster
    assert set(open_patch_store(result.store).index["recording"]) == {r.key for r in recordings}
