"""Preprocessing (oracle: the same MNE calls), windows, labels and patches (oracle: formulas)."""

import mne
import numpy as np
import pytest

from neuroai.eeg import (
    EEGParams,
    PatchLayout,
    clip_amplitude,
    find_windows,
    normalize_channels,
    notch_frequencies,
    preprocess_raw,
    reconstruct_time,
    window_events,
    window_patches,
)
from neuroai.eeg.patches import fft_amplitude, instance_norm, n_patches
from neuroai.eeg.windows import constant_spans, extract_windows, window_starts
from neuroai.errors import ConfigError, DataError
from neuroai.testing import eeg_signals


def _raw(sfreq=512.0, seconds=12.0, n_channels=7, seed=1):
    data = eeg_signals(n_channels, int(sfreq * seconds), sfreq, seed=seed) * 1e-6
    names = ["Fp1", "Fp2", "C3", "C4", "O1", "O2", "Cz"][:n_channels]
    return mne.io.RawArray(data, mne.create_info(names, sfreq, "eeg"), verbose="error")


def test_preprocessing_equals_the_same_mne_calls():
    raw = _raw()
    ours = preprocess_raw(raw.copy(), line_freq=60.0, l_freq=0.1, h_freq=75.0, sfreq=250.0)
    ref = raw.copy()
    ref.notch_filter([60.0], verbose="error")
    ref.filter(0.1, 75.0, verbose="error")
    ref.resample(250.0, verbose="error")
    assert ours.info["sfreq"] == 250.0
    np.testing.assert_allclose(ours.get_data(), ref.get_data(), rtol=0, atol=1e-12)


def test_notch_removes_line_noise_and_keeps_alpha():
    from scipy.signal import welch

    raw = _raw(sfreq=256.0, seconds=16.0)
    t = raw.times
    raw._data += 20e-6 * np.sin(2 * np.pi * 50.0 * t)
    out = preprocess_raw(raw.copy(), line_freq=50.0, l_freq=0.5, h_freq=70.0, sfreq=256.0)
    freqs, before = welch(raw.get_data(), fs=256.0, nperseg=512)
    _, after = welch(out.get_data(), fs=256.0, nperseg=512)
    at50, at10 = np.argmin(np.abs(freqs - 50)), np.argmin(np.abs(freqs - 10))
    assert (after[:, at50] < before[:, at50] / 100).all()
    np.testing.assert_allclose(after[:, at10], before[:, at10], rtol=0.1)


def test_notch_frequencies_stay_inside_the_pass_band():
    assert notch_frequencies(60, 75, 250) == [60.0]
    assert notch_frequencies(50, 75, 500) == [50.0]
    assert notch_frequencies(50, 100, 1000) == [50.0, 100.0]
    assert notch_frequencies(60, 40, 128) == []


def test_sampling_rate_too_low_for_the_band():
    raw = _raw(sfreq=128.0, seconds=3.0)
    with pytest.raises(DataError, match=r"sampled at 128 Hz \(Nyquist 64 Hz\), too low"):
        preprocess_raw(raw, line_freq=50, l_freq=0.1, h_freq=75.0, sfreq=250.0)
    with pytest.raises(ConfigError, match="below the Nyquist"):
        EEGParams(h_freq=130.0, sfreq=250.0)


def test_normalize_and_clip_formulas():
    data = np.random.default_rng(2).standard_normal((3, 401)) * [[1.0], [5.0], [20.0]] + 7
    robust, center, scale = normalize_channels(data, "robust")
    q25, q50, q75 = np.percentile(data, [25, 50, 75], axis=1)
    np.testing.assert_allclose(center, q50)
    np.testing.assert_allclose(robust, (data - q50[:, None]) / ((q75 - q25) / 1.349)[:, None])
    z, _, _ = normalize_channels(data, "zscore")
    np.testing.assert_allclose(z.std(axis=1), 1.0)
    flat = np.zeros((1, 10))
    assert normalize_channels(flat, "zscore")[2][0] == 1.0
    np.testing.assert_array_equal(clip_amplitude(data, 2.0), np.clip(data, -2, 2))


def test_windows_and_rejection_counts():
    sfreq, length = 100.0, 300
    data = np.random.default_rng(0).standard_normal((4, 1234)) * 20
    data[2, 300:600] = 0.0  # flat channel in window 1 (samples 300-599)
    data[1, 950] = 5000.0  # saturated in window 3 (900-1199)
    windows = find_windows(
        data,
        sfreq=sfreq,
        length=length,
        stride=length,
        flat_uv=0.5,
        saturation_uv=1000,
        spans={"bad_annotation": np.array([[6.5, 6.6]])},
    )
    np.testing.assert_array_equal(windows.starts, [0, 300, 600, 900])
    assert windows.counts() == {
        "total": 4,
        "kept": 1,
        "rejected": 3,
        "flat": 1,
        "saturated": 1,
        "bad_annotation": 1,
    }
    np.testing.assert_array_equal(windows.kept, [True, False, False, False])
    np.testing.assert_array_equal(window_starts(1000, 300, 150), [0, 150, 300, 450, 600])
    cut = extract_windows(data, np.array([300]), 300)
    np.testing.assert_array_equal(cut[0], data[:, 300:600])


def test_constant_spans_tell_dead_from_railed_channels():
    sfreq = 50.0
    rng = np.random.default_rng(4)
    data = rng.standard_normal((3, 1000)) * 10 + np.array([[0.0], [-20000.0], [300.0]])  # offsets
    data[0, 200:330] = 17.0  # dead for 2.6 s: blocks 4 and 5 are wholly inside
    data[2, 600:720] = data[2].max() + 50  # pinned at its maximum: blocks 12 and 13
    spans = constant_spans(data, sfreq, tolerance_uv=0.5)
    np.testing.assert_allclose(spans["flat"], [[4, 5], [5, 6]])
    np.testing.assert_allclose(spans["saturated"], [[12, 13], [13, 14]])
    windows = find_windows(
        data - data.mean(axis=1, keepdims=True),
        sfreq=sfreq,
        length=250,
        stride=250,
        flat_uv=0.5,
        saturation_uv=1e6,
        spans=spans,
    )
    assert windows.counts()["flat"] == 2 and windows.counts()["saturated"] == 1


def test_window_event_labels_follow_overlap_rules():
    starts = np.array([0.0, 12.0, 24.0])
    labels = window_events(
        onset=np.array([11.5, 13.0, 30.0, 5.0, 2.0, 0.0]),
        duration=np.array([3.0, 0.3, 0.0, 2.0, 1.0, 36.0]),
        description=["musc", "eyem", "spsw", "bckg", "BAD_ACQ_SKIP", "slow"],
        starts_s=starts,
        window_s=12.0,
        min_overlap_s=1.0,
    )
    # musc overlaps window 0 by 0.5 s (< 1 s: no) and window 1 by 2.5 s; eyem (0.3 s) is
    # inside window 1; the point event spsw is in window 2; bckg and BAD give no label.
    assert labels == [("slow",), ("eyem", "musc", "slow"), ("slow", "spsw")]


def test_patches_match_formulas_and_reconstruct():
    rng = np.random.default_rng(5)
    windows = rng.standard_normal((3, 2, 600)) * 30 + 4
    layout = PatchLayout(window_samples=600, patch_len=40, patch_stride=40)
    assert (layout.n_time, layout.n_spectrum) == (15, 7)
    patches, stats = window_patches(windows, layout, dtype="float32")
    assert patches.shape == (6, 22, 40) and stats.shape == (6, 4)
    row = windows[1, 0]  # window 1, channel 0 -> row 2
    z = (row - row.mean()) / (row.std() + 1e-6)
    np.testing.assert_allclose(patches[2, 3], z[120:160], rtol=1e-5)
    amplitude = np.abs(np.fft.rfft(row))[:300]
    az = (amplitude - amplitude.mean()) / (amplitude.std() + 1e-6)
    np.testing.assert_allclose(patches[2, 15 + 2], az[80:120], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        stats[2], [row.mean(), row.std(), amplitude.mean(), amplitude.std()], rtol=1e-5
    )
    back = reconstruct_time(patches, stats, layout)
    np.testing.assert_allclose(back, windows.reshape(6, 600), rtol=1e-4, atol=1e-3)
    overlapping = PatchLayout(window_samples=600, patch_len=40, patch_stride=20)
    assert overlapping.n_time == n_patches(600, 40, 20) == 29
    p2, s2 = window_patches(windows, overlapping)
    np.testing.assert_allclose(reconstruct_time(p2, s2, overlapping), back, rtol=1e-4, atol=1e-3)


def test_instance_norm_and_fft_amplitude():
    x = np.arange(24.0).reshape(2, 12)
    normed, mean, std = instance_norm(x)
    np.testing.assert_allclose(normed.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(mean, x.mean(axis=1))
    assert fft_amplitude(x).shape == (2, 6)
    np.testing.assert_allclose(fft_amplitude(x)[:, 0], x.sum(axis=1))
