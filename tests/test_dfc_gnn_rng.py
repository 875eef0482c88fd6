"""dFC-GNN's masked objective validates on a random stream of its own.

Before, validation drew its masks from the global stream: a validation pass shifted every
later training draw (a run resumed from a checkpoint written just before a validation
diverged), and the validation masks changed whenever unrelated code drew a number.
"""

import pytest
import torch

from neuroai.models import create_model
from neuroai.models.objectives import create_objective
from neuroai.testing import graph_dataset
from neuroai.training.graph_data import Crop, GraphCropDataset, collate_graphs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    return graph_dataset(tmp_path_factory.mktemp("dfc") / "graphs")


def objective_and_batches(graphs, **settings):
    dataset = GraphCropDataset(graphs, [Crop(r, 1, 6) for r in range(4)])
    batches = [
        collate_graphs([dataset[0], dataset[1]]),
        collate_graphs([dataset[2], dataset[3]]),
    ]
    torch.manual_seed(0)
    model = create_model(
        "dfc_gnn",
        preset="demo",
        hidden=16,
        gin_layers=2,
        heads=2,
        dropout=0.0,
        **dataset.model_overrides(),
    )
    objective = create_objective("masked_dfc", model, window_span=2, max_edges=50, **settings)
    return objective, batches


def terms(objective, batch):
    with torch.no_grad():
        out = objective(batch)
    return {k: float(v) for k, v in out.items()}


def test_validation_masks_ignore_and_spare_the_global_stream(graphs):
    objective, (first, second) = objective_and_batches(graphs)
    objective.eval()
    torch.manual_seed(5)
    reference = terms(objective, first)
    # An unrelated global draw before: the same masks, the same validation loss.
    torch.manual_seed(5)
    torch.rand(17)
    assert terms(objective, first) == reference
    torch.manual_seed(123)
    assert terms(objective, first) == reference
    # Validation neither reads nor advances the global stream.
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    terms(objective, second)
    assert torch.equal(torch.random.get_rng_state(), state)
    # The masks are still random: another batch, or another validation_seed, differs.
    assert terms(objective, second)["masked_nodes"] != reference["masked_nodes"] or (
        terms(objective, second)["loss"] != reference["loss"]
    )
    other, _ = objective_and_batches(graphs, validation_seed=1)
    other.load_state_dict(objective.state_dict())
    other.eval()
    assert terms(other, first) != reference


def test_training_draws_are_the_same_with_a_validation_in_between(graphs):
    objective, (first, second) = objective_and_batches(graphs)
    objective.train()
    torch.manual_seed(11)
    terms(objective, first)
    plain = terms(objective, second)
    torch.manual_seed(11)
    terms(objective, first)
    objective.eval()
    terms(objective, first)  # a validation pass between two training steps
    objective.train()
    assert terms(objective, second) == plain
    # Training does draw from the global stream (the seed of a run sets its masks).
    torch.manual_seed(12)
    assert terms(objective, second) != plain
