"""MNE objects in: a Raw goes where a path goes, MNE's verbose, every format MNE reads.

Oracles: the path route (a Raw read from a file gives the store the file gives),
a FIF round trip of an edited Raw, and MNE's own reader table for the formats.
"""

import json

import mne
import numpy as np
import pytest

from neuroai.eeg import (
    FORMATS,
    EEGParams,
    RecordingMeta,
    open_patch_store,
    process_recording,
    read_raw,
    save_recording,
)
from neuroai.eeg.readers import check_units
from neuroai.errors import ConfigError, DataError
from neuroai.testing import tuh_edf, tuh_raw

PARAMS = EEGParams(
    window_s=4.0, stride_s=4.0, patch_len=25, patch_stride=25, sfreq=200.0, h_freq=70.0
)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tuh") / "edf" / "train" / "abnormal" / "01_tcp_ar"
    return tuh_edf(folder / "aaaaaaab_s001_t000.edf", duration_s=21.0, seed=4)


def _same(a, b):
    np.testing.assert_array_equal(a.part.patches, b.part.patches)
    np.testing.assert_array_equal(a.part.stats, b.part.stats)
    assert a.part.channel_sets == b.part.channel_sets
    assert a.part.index.keys() == b.part.index.keys()
    for key in a.part.index:
        np.testing.assert_array_equal(a.part.index[key], b.part.index[key])
    assert a.qc == b.qc


def test_raw_read_from_a_file_gives_what_the_path_gives(recording, tmp_path):
    by_path = process_recording(recording, params=PARAMS)
    raw = read_raw(recording)
    before = raw.get_data().copy()
    by_raw = process_recording(raw, params=PARAMS)
    _same(by_path, by_raw)  # meta inferred from raw.filenames, qc "source" the file
    assert by_raw.qc["recording"]["split"] == "train" and by_raw.part.patches.shape[0] > 0
    np.testing.assert_array_equal(raw.get_data(), before)  # the user's Raw is not modified
    # The stores written by both routes hold the same arrays and index.
    save_recording(recording, tmp_path / "a", tmp_path / "a.json", params=PARAMS)
    save_recording(raw, tmp_path / "b", tmp_path / "b.json", params=PARAMS)
    a, b = open_patch_store(tmp_path / "a"), open_patch_store(tmp_path / "b")
    np.testing.assert_array_equal(a.patches, b.patches)
    np.testing.assert_array_equal(a.windows, b.windows)
    np.testing.assert_array_equal(a.events, b.events)
    assert a.index.equals(b.index)
    provenance = json.loads((tmp_path / "b.prov.json").read_text())
    assert provenance["inputs"][0]["path"].endswith("aaaaaaab_s001_t000.edf")
    assert "in_memory" in json.dumps(provenance)


def test_an_edited_raw_is_used_as_edited(recording, tmp_path):
    """A Raw after ICA-like cleaning: its own data go in (oracle: the same Raw saved as FIF)."""
    raw = read_raw(recording, preload=True)
    raw.apply_function(lambda x: x * 0.5, picks=[raw.ch_names[3]])  # "cleaned" channel
    meta = RecordingMeta(key="cleaned", subject="aaaaaaab")
    edited = process_recording(raw, params=PARAMS, meta=meta)
    fif = tmp_path / "cleaned_raw.fif"
    raw.save(fif, fmt="double")
    saved = process_recording(fif, params=PARAMS, meta=meta)
    np.testing.assert_array_equal(edited.part.patches, saved.part.patches)
    original = process_recording(recording, params=PARAMS, meta=meta)
    assert not np.array_equal(edited.part.stats, original.part.stats)


def test_raw_in_memory_needs_meta_and_gets_the_checks():
    raw = tuh_raw(sfreq=200.0, duration_s=9.0)
    with pytest.raises(ConfigError, match=r"built in memory.*meta=RecordingMeta"):
        process_recording(raw, params=PARAMS)
    result = process_recording(raw, params=PARAMS, meta=RecordingMeta(key="mem"))
    assert result.qc["source"] == "<memory>" and len(result.part.index["window"]) == 2
    # Microvolts stored as volts: refused with the scale that fixes it.
    wrong = raw.copy().apply_function(lambda x: x * 1e6)
    with pytest.raises(DataError, match=r"<memory>: .*microvolts stored under a volt.*1e-6"):
        process_recording(wrong, params=PARAMS, meta=RecordingMeta(key="mem"))


def test_epochs_are_refused_with_the_reason():
    raw = tuh_raw(sfreq=200.0, duration_s=9.0)
    epochs = mne.make_fixed_length_epochs(raw, duration=4.0, verbose="error")
    with pytest.raises(ConfigError, match="continuous data, not mne.Epochs.*filter edge"):
        process_recording(epochs, params=PARAMS, meta=RecordingMeta(key="e"))
    with pytest.raises(ConfigError, match="a path or an mne.io.Raw, not ndarray"):
        process_recording(raw.get_data(), params=PARAMS)


def test_verbose_is_passed_to_mne(recording, caplog):
    def mne_messages(**kwargs):
        caplog.clear()
        process_recording(recording, params=PARAMS, **kwargs)
        return [r.getMessage() for r in caplog.records if r.name == "mne"]

    mne.set_log_level("warning")
    try:
        loud = mne_messages(verbose=True)
        quiet = mne_messages(verbose="error")
        default = mne_messages()  # None: MNE's own level, "warning" here
    finally:
        mne.set_log_level("info")
    assert any("band-pass filter" in m for m in loud)  # filter design, at info
    assert any("Extracting EDF parameters" in m for m in loud)  # the reader, at info
    assert quiet == []
    assert default and not any("band-pass" in m for m in default)  # warnings only
    assert all("filter_length" in m or "longer" in m for m in default)


def test_reader_warnings_are_checked_even_when_quiet(tmp_path):
    raw = tuh_raw(sfreq=200.0, duration_s=3.0)
    raw.rename_channels({raw.ch_names[1]: "Fp1x"})
    path = tmp_path / "dup.vhdr"
    mne.export.export_raw(path, raw, fmt="brainvision", verbose="error")
    path.write_text(path.read_text().replace("Fp1x", raw.ch_names[0]))
    with pytest.raises(DataError, match="duplicate channel names"):
        read_raw(path, verbose="error")


# -- every format MNE reads ------------------------------------------------------

#: MNE's readers for our extensions (the first one MNE tries).
_READER = {
    "EDF": "read_raw_edf",
    "BDF": "read_raw_bdf",
    "GDF": "read_raw_gdf",
    "FIF": "read_raw_fif",
    "BrainVision": "read_raw_brainvision",
    "EEGLAB": "read_raw_eeglab",
    "CNT": "read_raw_cnt",
    "EGI MFF": "read_raw_egi",
    "Nihon Kohden": "read_raw_nihon",
    "Persyst": "read_raw_persyst",
    "Curry": "read_raw_curry",
    "eXimia": "read_raw_eximia",
    "Nicolet": "read_raw_nicolet",
    "NEDF": "read_raw_nedf",
    "NSx": "read_raw_nsx",
    "MEF3": "read_raw_mef",
}
#: Extensions MNE reads that neuroai leaves out, and why (the module docstring says so).
_LEFT_OUT = {
    ".hdr": "NIRx fNIRS",
    ".snirf": "fNIRS",
    ".txt": "BOXY fNIRS",
    ".asc": "EyeLink eye tracking",
    ".sqd": "KIT MEG",
    ".con": "KIT MEG",
    ".ds": "CTF MEG",
    ".bin": "ARTEMIS / FIL OPM MEG",
    ".mat": "FieldTrip, needs an info",
    ".vmrk": "BrainVision marker file",
    ".amrk": "BrainVision marker file",
}


def test_formats_are_mnes_eeg_formats():
    from mne.io._read_raw import _get_readers

    mnes = _get_readers()
    assert set(FORMATS) | set(_LEFT_OUT) == set(mnes)
    for ext, fmt in FORMATS.items():
        names = [reader.__name__ for reader in mnes[ext].values()]
        assert names[0] == _READER[fmt], ext


def _bdf(path):
    pyedflib = pytest.importorskip("pyedflib")
    headers = pyedflib.highlevel.make_signal_headers(
        ["Fp1", "Cz"], dimension="uV", sample_frequency=100, physical_min=-500, physical_max=500
    )
    pyedflib.highlevel.write_edf(str(path), np.zeros((2, 200)), headers)


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_each_extension_reaches_mnes_reader(ext, tmp_path, monkeypatch):
    """mne.io.read_raw dispatches our path to the format's reader (a stand-in that records it)."""
    calls = []
    made = tuh_raw(sfreq=100.0, duration_s=2.0)

    def reader(fname, **kwargs):
        calls.append((str(fname), kwargs["preload"]))
        return made

    monkeypatch.setattr(mne.io, _READER[FORMATS[ext]], reader)
    path = tmp_path / f"rec{ext.upper() if ext == '.gdf' else ext}"  # case-insensitive
    if ext in (".mff", ".mefd"):
        path.mkdir()  # these recordings are folders
    elif ext == ".edf":
        tuh_edf(path, duration_s=2.0, sfreq=100.0)  # passes check_edf first
    elif ext == ".bdf":
        _bdf(path)
    else:
        path.write_bytes(b"stand-in")
    assert read_raw(path, preload=True) is made
    assert calls == [(str(path), True)]


def test_unsupported_extensions_list_the_supported_ones(tmp_path):
    for name in ("rec.snirf", "rec.xyz", "rec.eeg.bak"):
        (tmp_path / name).write_text("x")
        with pytest.raises(DataError, match=r"unknown EEG file extension.*\.gdf \(GDF\).*\.mff"):
            read_raw(tmp_path / name)


def test_a_gdf_file_mne_cannot_parse_is_a_dataerror_from_mnes_reader(tmp_path):
    path = tmp_path / "broken.gdf"
    path.write_bytes(b"GDF 2.20" + bytes(300))
    with pytest.raises(DataError, match="broken.gdf could not be read as GDF") as caught:
        read_raw(path)
    frames = []
    tb = caught.value.__cause__.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    assert any("mne/io/edf" in f for f in frames)  # MNE's GDF reader lives in mne.io.edf


def test_brainvision_data_file_alone_points_to_its_header(tmp_path):
    raw = tuh_raw(sfreq=200.0, duration_s=2.0)
    mne.export.export_raw(tmp_path / "rec.vhdr", raw, fmt="brainvision", verbose="error")
    with pytest.raises(DataError, match=r"rec.eeg could not be read as Nihon Kohden.*\.vhdr"):
        read_raw(tmp_path / "rec.eeg")
    assert read_raw(tmp_path / "rec.vhdr").ch_names == raw.ch_names


def test_fif_gz_round_trip(tmp_path):
    raw = tuh_raw(sfreq=200.0, duration_s=3.0)
    raw.save(tmp_path / "rec_raw.fif.gz", verbose="error")
    back = read_raw(tmp_path / "rec_raw.fif.gz", preload=True)
    np.testing.assert_allclose(back.get_data(), raw.get_data(), rtol=1e-6)


def test_units_check(tmp_path):
    raw = tuh_raw(sfreq=200.0, duration_s=12.0)
    typical = check_units(raw)
    assert 5e-6 < typical < 100e-6  # the simulated EEG is tens of microvolts
    for name, scale, text in (
        ("uv", 1e6, "microvolts stored under a volt label.*1e-6"),
        ("mv", 1e3, "millivolts stored under a volt label.*1e-3"),
        ("v", 1e-6, "volts stored under a microvolt label.*1e6"),
    ):
        wrong = raw.copy().apply_function(lambda x, s=scale: x * s)
        path = tmp_path / f"{name}_raw.fif"
        wrong.save(path, overwrite=True, verbose="error")
        with pytest.raises(DataError, match=f"{name}_raw.fif: .*{text}"):
            read_raw(path)
    # The fix the message gives works: scale the Raw and pass it in.
    fixed = mne.io.read_raw(tmp_path / "uv_raw.fif", preload=True, verbose="error")
    fixed.apply_function(lambda x: x * 1e-6, picks="eeg")
    assert check_units(fixed) == pytest.approx(typical, rel=1e-5)
    result = process_recording(fixed, params=PARAMS, meta=RecordingMeta(key="fixed"))
    assert len(result.part.index["window"]) == 3
    # A DC offset (DC-coupled amplifier) is not a unit error; neither are flat channels.
    offset = raw.copy().apply_function(lambda x: x + 0.2)
    assert check_units(offset) == pytest.approx(typical, rel=1e-6)
    flat = raw.copy().apply_function(lambda x: x * 0.0)
    assert check_units(flat) is None


# -- one error rule in neuroai.eeg: a bad argument is a ConfigError, bad data a DataError --


def test_same_mistake_same_class(tmp_path):
    from neuroai.eeg import PatchLayout, PatchPart, index_eeg_recordings, window_patches

    mne_bids = pytest.importorskip("mne_bids")
    raw = tuh_raw(sfreq=200.0, duration_s=3.0)
    bids = mne_bids.BIDSPath(subject="01", task="rest", datatype="eeg", root=tmp_path / "bids")
    mne_bids.write_raw_bids(raw, bids, format="EDF", allow_preload=True, verbose="error")
    # label_column naming no column: a ConfigError for participants.tsv as for a labels table.
    with pytest.raises(ConfigError, match=r"label_column 'diagnose' is not a column of"):
        index_eeg_recordings(tmp_path / "bids", "bids_eeg", label_column="diagnose")
    (tmp_path / "bids" / "participants.tsv").unlink()
    with pytest.raises(ConfigError, match="has no participants.tsv, but label_column='dx'"):
        index_eeg_recordings(tmp_path / "bids", "bids_eeg", label_column="dx")
    # Arrays of the wrong shape are data; a part built with both sources is an argument.
    with pytest.raises(DataError, match=r"windows must be \(n_windows, n_channels, 200\)"):
        window_patches(np.zeros((2, 3, 150)), PatchLayout(200, 25, 25))
    with pytest.raises(ConfigError, match="either patches and stats or a store folder"):
        PatchPart(index=None, channel_sets=[], patches=np.zeros((1, 1, 1)), store=tmp_path)


def test_qc_goes_into_an_mne_report(recording, tmp_path):
    from neuroai.eeg import add_qc_to_report

    raw = read_raw(recording, preload=True)
    result = process_recording(raw, params=PARAMS)
    report = mne.Report(title="cohort QC", verbose="error")
    report.add_raw(raw, title="raw", psd=False, butterfly=False)  # the user's own content
    assert add_qc_to_report(report, result.qc) is report
    key = result.qc["recording"]["key"]
    path = report.save(tmp_path / "report.html", open_browser=False, verbose="error")
    text = open(path, encoding="utf-8").read()
    assert f"{key}: channels and windows" in text and f"{key}: power spectrum" in text
    assert f"<th>kept</th><td>{result.qc['windows']['kept']}</td>" in text
    assert "EEG EKG1-REF (ecg)" in text  # the dropped channel with its reason
    with pytest.raises(DataError, match=r"lacks \['channels', 'windows', 'psd'\]"):
        add_qc_to_report(report, {"recording": {"key": "x"}})
