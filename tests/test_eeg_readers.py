"""read_raw for every format, TUH annotation files, and the bad inputs of issue 4.

Real snippets that installed packages ship go through the same readers: the
pyedflib test EDF and spkit's 14-channel EEG recording.
"""

import importlib.util
import io
import json
import pickle
from pathlib import Path

import mne
import numpy as np
import pytest

from neuroai.eeg import (
    TuhSpan,
    parse_tuh_path,
    read_raw,
    read_tuh_csv,
    standardize_channels,
    write_edf,
    write_tuh_csv,
)
from neuroai.errors import DataError
from neuroai.testing import tuh_edf, tuh_raw

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _raw(n_channels=5, sfreq=256.0, seconds=7.0):
    names = ["Fp1", "Fz", "Cz", "Pz", "O1", "O2", "C3"][:n_channels]
    rng = np.random.default_rng(3)
    info = mne.create_info(names, sfreq, "eeg")
    return mne.io.RawArray(rng.standard_normal((n_channels, int(sfreq * seconds))) * 2e-5, info)


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [("edf", ".edf"), ("brainvision", ".vhdr"), ("eeglab", ".set"), ("fif", ".fif")],
)
def test_formats_round_trip(tmp_path, fmt, suffix):
    raw = _raw()
    raw.set_annotations(mne.Annotations([1.0], [0.5], ["blink"]))
    path = tmp_path / f"rec{suffix}"
    if fmt == "fif":
        raw.save(tmp_path / "rec_raw.fif")
        path = tmp_path / "rec_raw.fif"
    else:
        mne.export.export_raw(path, raw, fmt=fmt, verbose="error")
    back = read_raw(path, preload=True)
    assert back.ch_names == raw.ch_names
    assert back.info["sfreq"] == raw.info["sfreq"]
    np.testing.assert_allclose(back.get_data(), raw.get_data(), atol=2e-7)  # 16-bit EDF resolution
    assert [d.rsplit("/", 1)[-1] for d in back.annotations.description] == ["blink"]


def test_bdf_written_by_pyedflib(tmp_path):
    pyedflib = pytest.importorskip("pyedflib")
    data = np.random.default_rng(0).standard_normal((3, 512 * 3)) * 50
    headers = pyedflib.highlevel.make_signal_headers(
        ["Fp1", "Cz", "O2"],
        dimension="uV",
        sample_frequency=512,
        physical_min=-500,
        physical_max=500,
    )
    path = tmp_path / "rec.bdf"
    pyedflib.highlevel.write_edf(str(path), data, headers)
    raw = read_raw(path, preload=True)
    assert raw.ch_names == ["Fp1", "Cz", "O2"]
    np.testing.assert_allclose(raw.get_data(units="uV"), data, atol=0.05)


def test_pyedflib_test_file_matches_pyedflib_reader():
    pyedflib = pytest.importorskip("pyedflib")
    path = _package_folder("pyedflib") / "data" / "test_generator.edf"
    raw = read_raw(path)
    assert raw.info["sfreq"] == 200.0 and len(raw.ch_names) == 11
    with pyedflib.EdfReader(str(path)) as reader:
        labels = reader.getSignalLabels()
        sine = reader.readSignal(labels.index("sine 8 Hz"))[:400]
    np.testing.assert_allclose(
        raw.get_data(picks="sine 8 Hz", units="uV")[0, :400], sine, atol=1e-6
    )
    kept, report = standardize_channels(raw, return_report=True)  # no 10-05 names: kept as is
    assert kept.ch_names == [name for name in raw.ch_names if name != "pulse"]
    assert report.dropped == {"pulse": "bio"}
    with pytest.raises(DataError, match="cannot be mapped to montage"):
        standardize_channels(raw, "10-20_19")


def _numpy_only_load(data: bytes):
    """Unpickle spkit's sample data allowing only NumPy array reconstruction."""

    class NumpyOnly(pickle.Unpickler):
        def find_class(self, module, name):
            allowed = {("numpy", "ndarray"), ("numpy", "dtype")}
            if (module, name) in allowed or name == "_reconstruct" and "multiarray" in module:
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"refusing {module}.{name}")

    return NumpyOnly(io.BytesIO(data)).load()


def _package_folder(name: str) -> Path:
    """A package's folder without importing it (spkit takes seconds to import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def test_spkit_14_channel_snippet_through_the_edf_reader(tmp_path):
    sample = _package_folder("spkit") / "data" / "files" / "EEG16SecData.pkl"
    data, names = _numpy_only_load(sample.read_bytes())
    assert data.shape == (2048, 14)  # 16 s at 128 Hz, Emotiv EPOC channels
    path = write_edf(tmp_path / "spkit.edf", data.T, sfreq=128.0, ch_names=list(names))
    raw = standardize_channels(read_raw(path))
    assert raw.ch_names == list(names) and len(raw.ch_names) == 14
    np.testing.assert_allclose(raw.get_data(units="uV"), data.T, atol=0.1)


def test_bids_eeg_with_events_tsv(tmp_path):
    mne_bids = pytest.importorskip("mne_bids")
    raw = _raw(seconds=8.0)
    raw.info["line_freq"] = 50
    events = np.array([[256, 0, 1], [1280, 0, 2]])
    path = mne_bids.BIDSPath(subject="07", task="rest", datatype="eeg", root=tmp_path / "bids")
    mne_bids.write_raw_bids(
        raw,
        path,
        events=events,
        event_id={"eyes_open": 1, "eyes_closed": 2},
        format="EDF",
        allow_preload=True,
        verbose="error",
    )
    eeg_file = next((tmp_path / "bids" / "sub-07" / "eeg").glob("*_eeg.edf"))
    back = read_raw(eeg_file)
    assert list(back.annotations.description) == ["eyes_open", "eyes_closed"]
    np.testing.assert_allclose(back.annotations.onset, [1.0, 5.0])
    assert back.info["line_freq"] == 50
    # Events past the end of the recording are refused.
    tsv = next(eeg_file.parent.glob("*_events.tsv"))
    tsv.write_text(tsv.read_text().replace("5.0", "95.0"))
    with pytest.raises(DataError, match="past the end"):
        read_raw(eeg_file)


def test_tuh_csv_format(tmp_path):
    text = (
        "# version = csv_v1.0.0\n# bname = aaaaaaab_s001_t000\n# duration = 30.0000 secs\n"
        "# montage_file = $NEDC_NFC/lib/nedc_eas_default_montage.txt\n#\n"
        "channel,start_time,stop_time,label,confidence\n"
        "FP1-F7,0.0000,2.5000,eyem,1.0000\n"
        "T3-T5,10.0000,14.0000,musc,0.8000\n"
        "FP1-F7,2.5000,30.0000,bckg,1.0000\n"
    )
    (tmp_path / "a.csv").write_text(text)
    spans = read_tuh_csv(tmp_path / "a.csv", duration=30.0)
    assert spans[1] == TuhSpan("T3-T5", 10.0, 14.0, "musc", 0.8)
    write_tuh_csv(tmp_path / "b.csv_bi", [TuhSpan("TERM", 1.0, 4.0, "seiz")], duration=30.0)
    assert (tmp_path / "b.csv_bi").read_text().splitlines()[2] == "# duration = 30.0000 secs"
    assert read_tuh_csv(tmp_path / "b.csv_bi") == [TuhSpan("TERM", 1.0, 4.0, "seiz", 1.0)]
    with pytest.raises(DataError, match="a.csv, line 7: the span 'eyem' ends at 2.5000 s, past"):
        read_tuh_csv(tmp_path / "a.csv", duration=1.5)
    (tmp_path / "c.csv").write_text("start,stop,label\n0,1,seiz\n")
    with pytest.raises(DataError, match="c.csv, line 1: expected the header"):
        read_tuh_csv(tmp_path / "c.csv")


def test_tuh_layout_and_annotations_attached(tmp_path):
    folder = tmp_path / "edf" / "eval" / "abnormal" / "02_tcp_le"
    edf = tuh_edf(
        folder / "aaaaaaac_s002_t001.edf",
        suffix="LE",
        artifacts=[TuhSpan("FP1-F7", 1.0, 1.4, "eyem"), TuhSpan("FP1-F7", 1.4, 37.0, "bckg")],
        events=[TuhSpan("TERM", 0.0, 20.0, "bckg"), TuhSpan("TERM", 20.0, 30.0, "seiz")],
    )
    info = parse_tuh_path(edf)
    assert info == {
        "key": "aaaaaaac_s002_t001",
        "subject": "aaaaaaac",
        "session": "s002",
        "token": "t001",
        "split": "eval",
        "label": "abnormal",
        "montage": "02_tcp_le",
    }
    raw = read_raw(edf)
    assert sorted(raw.annotations.description) == ["eyem", "seiz"]
    seiz = raw.annotations[list(raw.annotations.description).index("seiz")]
    assert seiz["onset"] == pytest.approx(20.0) and seiz["duration"] == pytest.approx(10.0)


def test_truncated_edf_is_refused(tmp_path):
    path = tuh_edf(tmp_path / "full.edf", duration_s=10.0)
    cut = tmp_path / "cut.edf"
    cut.write_bytes(path.read_bytes()[:-5000])
    with pytest.raises(
        DataError, match=r"cut.edf is truncated: its header promises 10 data records"
    ):
        read_raw(cut)
    (tmp_path / "tiny.edf").write_bytes(b"0       garbage")
    with pytest.raises(DataError, match="shorter than the 256-byte header"):
        read_raw(tmp_path / "tiny.edf")


def test_duplicate_channel_names_are_refused(tmp_path):
    path = tuh_edf(tmp_path / "ok.edf", duration_s=2.0)
    header = bytearray(path.read_bytes())
    header[256 + 16 : 256 + 32] = header[256 : 256 + 16]  # label 2 := label 1
    (tmp_path / "dup.edf").write_bytes(bytes(header))
    with pytest.raises(DataError, match=r"dup.edf has duplicate channel names \['EEG FP1-REF'\]"):
        read_raw(tmp_path / "dup.edf")
    raw = _raw()
    raw.rename_channels({"Fz": "Fp1x"})
    path = tmp_path / "dup.vhdr"
    mne.export.export_raw(path, raw, fmt="brainvision", verbose="error")
    vhdr = path.read_text().replace("Fp1x", "Fp1")
    path.write_text(vhdr)
    with pytest.raises(DataError, match="dup.vhdr has duplicate channel names"):
        read_raw(path)


def test_annotations_past_the_end_are_refused(tmp_path):
    edf = tuh_edf(tmp_path / "aaaaaaad_s001_t000.edf", duration_s=10.0)
    write_tuh_csv(edf.with_suffix(".csv"), [TuhSpan("FP1-F7", 8.0, 14.0, "musc")], duration=14.0)
    with pytest.raises(DataError, match=r"aaaaaaad_s001_t000.csv, line 7: the span 'musc'"):
        read_raw(edf)


def test_unknown_and_missing_files(tmp_path):
    (tmp_path / "rec.xyz").write_text("x")
    with pytest.raises(DataError, match=r"unknown EEG file extension '.xyz'.*\.edf \(EDF\)"):
        read_raw(tmp_path / "rec.xyz")
    with pytest.raises(DataError, match="does not exist"):
        read_raw(tmp_path / "nope.edf")
    (tmp_path / "bad.vhdr").write_text("not a header")
    with pytest.raises(DataError, match="bad.vhdr could not be read as BrainVision"):
        read_raw(tmp_path / "bad.vhdr")


def test_file_without_eeg_channels(tmp_path):
    path = write_edf(
        tmp_path / "ecg.edf",
        np.zeros((2, 512)),
        sfreq=256.0,
        ch_names=["EEG EKG1-REF", "PHOTIC-REF"],
    )
    with pytest.raises(DataError, match=r"ecg.edf has no EEG channels"):
        standardize_channels(read_raw(path))


def test_tuh_raw_helper_is_plain_eeg():
    raw = tuh_raw(duration_s=1.0)
    assert json.dumps(raw.ch_names).count("EEG ") == 20
