"""Channel names, montages and standardize_channels (oracle: MNE's interpolation)."""

import mne
import numpy as np
import pytest

from neuroai.eeg import (
    montage_channels,
    non_eeg_kind,
    standard_bipolar_name,
    standard_channel_name,
    standardize_channels,
)
from neuroai.eeg.channels import electrode_positions
from neuroai.errors import ConfigError, DataError
from neuroai.testing import eeg_signals, tuh_raw


@pytest.mark.parametrize(
    ("vendor", "standard"),
    [
        ("EEG FP1-REF", "Fp1"),
        ("FP1", "Fp1"),
        ("Fp1-LE", "Fp1"),
        ("EEG T3-REF", "T7"),
        ("EEG T4-LE", "T8"),
        ("T5", "P7"),
        ("EEG T6-REF", "P8"),
        ("EEG CZ-REF", "Cz"),
        ("Fc5.", "FC5"),
        ("Afz", "AFz"),
        ("C3-A1", "C3"),
        ("EEG A1-REF", "A1"),
        ("EEG:Oz", "Oz"),
        ("EEG 26-REF", None),
        ("EEG EKG1-REF", None),
        ("E17", None),
        ("FP1-F7", None),
    ],
)
def test_vendor_names_map_to_10_05(vendor, standard):
    assert standard_channel_name(vendor) == standard


def test_non_eeg_kinds_and_bipolar_names():
    assert non_eeg_kind("EEG EKG1-REF") == "ecg"
    assert non_eeg_kind("EEG LOC-REF") == "eog"
    assert non_eeg_kind("PHOTIC-REF") == "stim"
    assert non_eeg_kind("IBI") == "stim"
    assert non_eeg_kind("EEG FP1-REF") is None
    assert standard_bipolar_name("FP1-F7") == "Fp1-F7"
    assert standard_bipolar_name("T3-T5") == "T7-P7"
    assert standard_bipolar_name("TERM") is None


def test_montage_channels():
    assert len(montage_channels("10-20_19")) == 19
    assert montage_channels("10-20_21")[-2:] == ("A1", "A2")
    tcp = montage_channels("tcp_22")
    assert len(tcp) == 22 and tcp[0] == "Fp1-F7" and tcp[8] == "A1-T7" and tcp[-1] == "P4-O2"
    with pytest.raises(ConfigError, match="Did you mean 'tcp_22'"):
        montage_channels("tcp22")


def test_no_montage_keeps_eeg_channels_renamed():
    raw = tuh_raw(duration_s=4.3)
    out, report = standardize_channels(raw, None, return_report=True)
    assert len(out.ch_names) == 19 and "T7" in out.ch_names and "Fp1" in out.ch_names
    assert report.dropped == {"EEG EKG1-REF": "ecg"}
    assert report.renamed["EEG T3-REF"] == "T7"
    np.testing.assert_array_equal(out.get_data(picks="T7"), raw.get_data(picks="EEG T3-REF"))
    assert out.get_montage() is not None


def test_no_montage_passes_consumer_headsets_and_nets():
    names = ["AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4"]
    info = mne.create_info(names, 128.0, "eeg")
    raw = mne.io.RawArray(eeg_signals(14, 515, 128.0) * 1e-6, info, verbose="error")
    assert standardize_channels(raw).ch_names == names
    net = [f"E{i}" for i in range(1, 33)]
    raw = mne.io.RawArray(np.zeros((32, 100)), mne.create_info(net, 250.0, "eeg"), verbose="error")
    assert standardize_channels(raw).ch_names == net
    with pytest.raises(DataError, match="cannot be mapped to montage '10-20_19'"):
        standardize_channels(raw, "10-20_19")


def test_interpolation_matches_mne_and_is_reported():
    raw = tuh_raw(duration_s=3.1)
    raw.drop_channels(["EEG C3-REF"])
    out, report = standardize_channels(raw, "10-20_21", return_report=True)
    assert out.ch_names == list(montage_channels("10-20_21"))
    assert report.interpolated == ["C3", "A1", "A2"]
    # Oracle: MNE's spherical splines on the same renamed channels and template positions.
    ref = raw.copy().pick([c for c in raw.ch_names if "EKG" not in c]).load_data()
    ref.rename_channels({c: standard_channel_name(c) for c in ref.ch_names})
    filler = mne.io.RawArray(
        np.zeros((3, ref.n_times)), mne.create_info(["C3", "A1", "A2"], ref.info["sfreq"], "eeg")
    )
    ref.add_channels([filler], force_update_info=True)
    ref.set_montage(electrode_positions(ref.ch_names))
    ref.info["bads"] = ["C3", "A1", "A2"]
    ref.interpolate_bads(origin="auto")
    for name in ("C3", "A1", "A2", "Cz"):
        np.testing.assert_allclose(out.get_data(picks=name), ref.get_data(picks=name), atol=1e-12)


def test_tcp_montage_is_differences_of_electrodes():
    raw = tuh_raw(duration_s=2.9, suffix="LE")
    referential = standardize_channels(raw, "10-20_21")
    bipolar, report = standardize_channels(raw, "tcp_22", return_report=True)
    assert bipolar.ch_names == list(montage_channels("tcp_22"))
    assert report.reference == "bipolar" and report.interpolated == ["A1", "A2"]
    for name in ("Fp1-F7", "T7-P7", "A1-T7", "P4-O2"):
        anode, cathode = name.split("-")
        expected = referential.get_data(picks=anode) - referential.get_data(picks=cathode)
        np.testing.assert_allclose(bipolar.get_data(picks=name), expected, atol=1e-15)


def test_missing_channels_error_and_limit():
    raw = tuh_raw(duration_s=2.0)
    with pytest.raises(DataError, match=r"lacks electrodes \['A1', 'A2'\].*missing_channels"):
        standardize_channels(raw, "tcp_22", missing="error")
    raw.drop_channels(["EEG C3-REF", "EEG C4-REF", "EEG P3-REF", "EEG P4-REF"])
    with pytest.raises(DataError, match="at most 25% may be interpolated"):
        standardize_channels(raw, "10-20_21")


def test_same_electrode_twice_and_no_eeg_are_errors():
    info = mne.create_info(["EEG T3-REF", "EEG T7-REF", "EEG CZ-REF"], 200.0, "eeg")
    raw = mne.io.RawArray(np.zeros((3, 50)), info, verbose="error")
    with pytest.raises(DataError, match="both electrode T7"):
        standardize_channels(raw)
    info = mne.create_info(["EEG EKG1-REF", "PHOTIC-REF", "Resp"], 200.0, ["eeg", "eeg", "misc"])
    raw = mne.io.RawArray(np.zeros((3, 50)), info, verbose="error")
    with pytest.raises(DataError, match="has no EEG channels"):
        standardize_channels(raw)


def test_bad_channels_are_interpolated_and_average_reference():
    raw = tuh_raw(duration_s=2.2)
    raw.info["bads"] = ["EEG O1-REF"]
    out, report = standardize_channels(raw, "10-20_19", reference="average", return_report=True)
    assert report.interpolated == ["O1"] and report.reference == "average"
    np.testing.assert_allclose(out.get_data().mean(axis=0), 0, atol=1e-15)
