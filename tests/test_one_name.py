"""One name per concept, and one error rule (issue 21, item 6)."""

import importlib

import numpy as np
import pytest

from neuroai.errors import ConfigError, DataError


@pytest.mark.parametrize(
    ("module", "old", "new"),
    [
        ("neuroai.training.token_data", "window_starts", "tile_starts"),
        ("neuroai.training", "window_starts", "tile_starts"),
        ("neuroai.tokenizers.runs", "BoldRun", "OpenedBold"),
        ("neuroai.tokenizers.runs", "index_bold_runs", "bold_files_by_subject"),
        ("neuroai.tokenizers", "BoldRun", "OpenedBold"),
        ("neuroai.tokenizers", "index_bold_runs", "bold_files_by_subject"),
        ("neuroai.tokenizers.autoencoder", "model_config", "autoencoder_config"),
        ("neuroai.testing.volumes", "bold_image", "lattice_bold_image"),
    ],
)
def test_renamed_names_warn_and_give_the_new_object(module, old, new):
    mod = importlib.import_module(module)
    with pytest.warns(FutureWarning, match=new):
        got = getattr(mod, old)
    assert got is getattr(mod, new)
    assert old not in getattr(mod, "__all__", [])


def test_one_sliding_window_rule_for_fmri_and_eeg():
    from neuroai._windows import window_starts
    from neuroai.eeg import windows as eeg_windows
    from neuroai.fmri import dynamic
    from neuroai.fmri import window_starts as public

    assert public is dynamic.window_starts is eeg_windows.window_starts is window_starts
    np.testing.assert_array_equal(window_starts(11, 4, 3), [0, 3, 6])  # tail of 2 left out


def test_public_names_are_still_the_public_ones():
    from neuroai import io, models, testing
    from neuroai.io import bids
    from neuroai.models import registry
    from neuroai.testing import bold

    assert io.BoldRun is bids.BoldRun and io.index_bold_runs is bids.index_bold_runs
    assert models.model_config is registry.model_config
    assert testing.bold_image is bold.bold_image


def test_eeg_recording_shorter_than_a_window_has_no_window():
    from neuroai.eeg.windows import find_windows

    data = np.random.default_rng(0).standard_normal((3, 50)) * 10
    found = find_windows(data, sfreq=10.0, length=60, stride=30, flat_uv=0.1, saturation_uv=1e4)
    assert found.starts.shape == (0,)


def test_error_rule_parameter_is_config_and_contents_are_data():
    from neuroai._windows import window_starts
    from neuroai.training.token_data import tile_starts

    with pytest.raises(ConfigError, match="window must be at least 1 frame"):
        tile_starts(5, 0)
    with pytest.raises(DataError, match="no frame"):
        tile_starts(0, 4)
    with pytest.raises(ConfigError, match="step must be a positive integer"):
        window_starts(20, 4, 0)
    with pytest.raises(DataError, match="fewer than one window of 30"):
        window_starts(20, 30, 1)


def test_error_rule_for_options_of_evaluation_and_tokenizers(tmp_path):
    from neuroai.evaluation.subject_level import subject_metrics
    from neuroai.testing.volumes import write_bold_run
    from neuroai.tokenizers.frames import write_frames

    with pytest.raises(ConfigError, match="Did you mean 'regression'"):
        subject_metrics(np.zeros(3), np.zeros(3), task="regresion")
    run = write_bold_run(tmp_path / "sub-01_bold.nii.gz", sidecar={"RepetitionTime": 2.0})
    with pytest.raises(ConfigError, match="chunk_frames must be at least 1"):
        write_frames([run], tmp_path / "f.npy", chunk_frames=0)
    with pytest.raises(ConfigError, match="max_frames must be at least 1"):
        write_frames([run], tmp_path / "f.npy", max_frames=0)
    # Both stay ValueErrors, so existing `except ValueError` clauses still catch them.
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ValueError)
