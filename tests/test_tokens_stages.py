"""The volume-token stages end to end on the real neuropycon-data run and a tiny autoencoder."""

import numpy as np
import pandas as pd
import pytest
import torch

from neuroai.errors import DataError
from neuroai.io import load_json, read_provenance
from neuroai.testing.volumes import tiny_autoencoder_config, torch_threads
from neuroai.tokenizers import qc

pytest.importorskip("neuropycon_data", reason="needs the demo extras: pip install -e '.[demo]'")
pytestmark = pytest.mark.filterwarnings("ignore:After resampling the label image")


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    from neuroai.datasets.bold_demos import build_bold_demo, expected_files
    from neuroai.pipelines import frames, tokens
    from neuroai.tokenizers.autoencoder import build_autoencoder, save_autoencoder

    root = tmp_path_factory.mktemp("tokens")
    build_bold_demo("neuropycon_bold", root / "ds")
    files = {
        role: [root / "ds" / p for p in paths]
        for role, paths in expected_files("neuropycon_bold").items()
    }
    torch.manual_seed(0)
    save_autoencoder(build_autoencoder(tiny_autoencoder_config(stages=6)), root / "ae")
    frames.run(files["bold"], root / "sub-test_frames.npy", max_frames=5, chunk_frames=2)
    out = root / "out"
    tokens.run(
        root / "sub-test_frames.npy",
        root / "ae",
        out / "sub-test_tokens.npy",
        out / "qc" / "sub-test_qc.json",
        out / "qc" / "sub-test_examples.npy",
        labels=files["atlas"][0],
        brain_mask=files["mask"][0],
        batch_size=64,
        chunk_frames=2,
        qc_max_frames=4,
    )
    summarise(out, participants=root / "ds" / "participants.tsv")
    return root


def summarise(out, **kwargs):
    """tokens_summary over the one subject written into ``out``."""
    from neuroai.pipelines import tokens_summary

    tokens_summary.run(
        [out / "qc" / "sub-test_qc.json"],
        [out / "sub-test_tokens.npy"],
        [out / "qc" / "sub-test_examples.npy"],
        out / "summary.json",
        out / "index.tsv",
        out / "examples.npy",
        dataset="npc",
        **kwargs,
    )


def test_token_store_and_its_record(tokenized):
    from neuroai.tokenizers.tokenizer import read_token_store

    store = read_token_store(tokenized / "out" / "sub-test_tokens.npy")
    assert store.tokens.shape == (5, 27, 384)  # 96^3 frames, f = 32: 27 tokens of 3 * 32 * 4
    assert store.tr == 2.5
    record = store.record
    assert record["params"] == {"batch_size": 64, "chunk_frames": 2, "device": "auto"}
    assert [i["path"] for i in record["inputs"]][1].endswith("ae")
    assert (
        read_provenance(tokenized / "sub-test_frames.npy")["extra"]["runs"][0]["placement"][
            "method"
        ]
        == "resample"
    )


def test_qc_reports_every_metric(tokenized):
    metrics = load_json(tokenized / "out" / "qc" / "sub-test_qc.json", stage="tokens_qc")
    assert metrics["n_frames"] == 4 and metrics["n_frames_stored"] == 5
    for key in ("spatial_correlation", "psnr_db", "temporal_correlation", "region_correlation"):
        assert metrics[key]["mean"] is not None, key
    assert metrics["compression"]["voxels_per_frame"] == 96**3
    assert metrics["compression"]["values_per_frame"] == 27 * 384
    examples = np.load(tokenized / "out" / "qc" / "sub-test_examples.npy")
    assert examples.shape == (3, 3, 96, 96) and examples.dtype == np.float16


def test_index_lists_the_store_with_its_labels(tokenized):
    index = pd.read_csv(tokenized / "out" / "index.tsv", sep="\t")
    row = index.iloc[0]
    assert row["participant_id"] == "sub-test" and row["site"] == "neuropycon"
    assert row["tokens"] == "sub-test_tokens.npy" and row["n_frames"] == 5 and row["tr"] == 2.5
    summary = load_json(tokenized / "out" / "summary.json", stage="tokens_summary")
    assert summary["layout"]["n_tokens"] == 27 and summary["examples"][0]["group"] == "neuropycon"


def test_report_section_renders_from_the_summary(tokenized, repo):
    from neuroai.reports.html import Page
    from neuroai.reports.sections import render

    sections = render(
        "tokens",
        [tokenized / "out" / "summary.json", repo / "data_cards" / "skimage_photographs.yaml"],
    )
    html = Page("t", sections=sections).render()
    for text in ("fMRI volume tokens", "sub-test", "spatial correlation", "does not meet", "CC0"):
        assert text in html, text
    assert html.count("data:image/png;base64,") == 1


def test_metrics_match_direct_formulas():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 6, 7))
    y = x + rng.normal(scale=0.1, size=x.shape)
    mask = np.zeros((5, 6, 7), bool)
    mask[1:4, 2:5, 1:6] = True
    r = qc.spatial_correlation(x, y, mask)
    assert r[1] == pytest.approx(np.corrcoef(x[1][mask], y[1][mask])[0, 1])
    mse = ((x[2][mask] - y[2][mask]) ** 2).mean()
    assert qc.psnr(x, y, mask)[2] == pytest.approx(10 * np.log10(4 / mse))
    t = qc.temporal_correlation(x, y, mask)
    assert t[0] == pytest.approx(np.corrcoef(x[:, 1, 2, 1], y[:, 1, 2, 1])[0, 1])


def test_a_bad_weights_folder_fails_before_anything_is_written(tokenized, tmp_path):
    from neuroai.pipelines import tokens

    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "config.json").write_text("{}")
    with pytest.raises(DataError, match="diffusion_pytorch_model.safetensors missing"):
        tokens.run(
            tokenized / "sub-test_frames.npy",
            tmp_path / "weights",
            tmp_path / "t.npy",
            tmp_path / "q.json",
            tmp_path / "e.npy",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]


def test_labels_on_the_grid_and_region_means_match_nilearn(tokenized):
    import nibabel as nib
    from nilearn.image import resample_img
    from nilearn.maskers import NiftiLabelsMasker

    from neuroai.tokenizers.frames import mni_grid

    labels_path = tokenized / "ds" / "atlas" / "atlas-neuropycon184_dseg.nii.gz"
    grid = mni_grid()
    labels = qc.image_on_grid(labels_path, grid, 96)
    oracle = resample_img(
        labels_path,
        target_affine=grid,
        target_shape=(96,) * 3,
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    np.testing.assert_array_equal(labels, np.asarray(oracle.dataobj))
    frames = np.random.default_rng(1).normal(size=(3, 96, 96, 96)).astype(np.float32)
    series, values = qc.region_timeseries(frames, labels)
    masker = NiftiLabelsMasker(labels_path, resampling_target="data", standardize=None)
    expected = masker.fit_transform(nib.Nifti1Image(np.moveaxis(frames, 0, -1), grid))
    np.testing.assert_allclose(series, expected, atol=1e-6)
    assert values == [int(masker.region_ids_[i]) for i in range(len(values))]


def test_bundled_autoencoder_on_real_bold_beats_the_same_size_dct(tokenized, tmp_path):
    """The shipped tokenizer, never trained on fMRI, through the stages on the neuropycon run."""
    from neuroai.datasets.bold_demos import expected_files
    from neuroai.pipelines import tokens
    from neuroai.reports.sections.tokens import _tokenizer_text
    from neuroai.tokenizers.autoencoder import bundled_autoencoder_dir
    from neuroai.tokenizers.frames import load_frames, mni_grid

    mask_path = tokenized / "ds" / expected_files("neuropycon_bold")["mask"][0]
    out = tmp_path
    tokens.run(
        tokenized / "sub-test_frames.npy",
        bundled_autoencoder_dir(),
        out / "sub-test_tokens.npy",
        out / "qc" / "sub-test_qc.json",
        out / "qc" / "sub-test_examples.npy",
        brain_mask=mask_path,
        batch_size=96,
        qc_max_frames=4,
    )
    learned = load_json(out / "qc" / "sub-test_qc.json", stage="tokens_qc")
    frames = np.asarray(load_frames(tokenized / "sub-test_frames.npy")[0][:4], np.float32)
    mask = qc.qc_mask(frames, qc.image_on_grid(mask_path, mni_grid(), 96) > 0)
    assert learned["axis_merge"] == "spectral"
    linear = qc.spatial_correlation(frames, qc.dct_round_trip(frames, merge="spectral"), mask)
    assert learned["spatial_correlation"]["mean"] > float(np.mean(linear)) + 0.02
    summarise(out)
    summary = load_json(out / "summary.json", stage="tokens_summary")
    info = summary["tokenizer"]
    assert summary["axis_merge"] == "spectral"
    assert info["bundled"] and info["earlier_steps"] == 24000 and info["steps"] == 12000
    text = _tokenizer_text(info)
    assert "(the checkpoint shipped with neuroai): 24,000 steps, then 12,000 more" in text
