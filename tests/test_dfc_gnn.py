"""dFC-GNN: the encoder, the masked dFC objective, streaming crops, the downstream protocol."""

import numpy as np
import pytest
import torch

from neuroai.errors import ConfigError, DataError
from neuroai.fmri import GraphArrays, sparsify, window_graphs
from neuroai.models import create_model
from neuroai.models.objectives import create_objective
from neuroai.models.objectives.masked_dfc import span_mask
from neuroai.testing import connectivity_matrices, graph_dataset
from neuroai.training.graph_data import (
    Crop,
    GraphCropDataset,
    GraphDataConfig,
    collate_graphs,
    keep_top_edges,
    read_windows,
    tiling_crops,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    return graph_dataset(tmp_path_factory.mktemp("dfc") / "graphs")


def tiny_model(dataset, **options):
    torch.manual_seed(0)
    values = {"hidden": 16, "gin_layers": 2, "heads": 2, "dropout": 0.0, **options}
    return create_model("dfc_gnn", preset="demo", **values, **dataset.model_overrides())


def crops_batch(path, length=5, runs=(0, 1, 2)):
    dataset = GraphCropDataset(path, [Crop(r, 1, length) for r in runs])
    return dataset, collate_graphs([dataset[i] for i in range(len(dataset))])


# -- streaming crops ------------------------------------------------------------------------


def test_crops_read_only_their_windows_and_match_the_stored_runs(graphs):
    arrays = GraphArrays(graphs)
    whole = arrays.run(3)
    crop = read_windows(arrays, 3, 4, 9)
    assert crop.x.shape == (5, 7, 4) and crop.n_windows == 5
    np.testing.assert_array_equal(crop.x, whole.x[4:9])
    first, last = whole.window_ptr[4], whole.window_ptr[9]
    np.testing.assert_array_equal(crop.edge_index, whole.edge_index[:, first:last])
    np.testing.assert_array_equal(crop.edge_weight, whole.edge_weight[first:last])
    with pytest.raises(DataError, match="outside run 3"):
        read_windows(arrays, 3, 10, 30)


def test_random_crops_are_seeded_and_batch_into_window_sequences(graphs):
    dataset = GraphCropDataset.random_crops(graphs, [0, 4], length=6, samples_per_run=3)
    assert len(dataset) == 6
    assert dataset.window_range(0, seed=11) == dataset.window_range(0, seed=11)
    starts = {dataset.window_range(0, seed=s)[0] for s in range(40)}
    assert len(starts) > 3 and min(starts) >= 0 and max(starts) <= 14 - 6
    batch = collate_graphs([dataset.get_item(i, i) for i in range(4)])
    graph = batch["inputs"]
    assert graph.x.shape == (4 * 6 * 7, 4 + 7) and graph.n_windows.tolist() == [6, 6, 6, 6]
    # Nodes are window by window, and `window` stays a global window index.
    assert torch.equal(graph.window, torch.arange(graph.x.shape[0]) // 7)
    assert dataset.model_overrides() == {"in_features": 11, "n_identity": 7, "n_regions": 7}


def test_tiling_crops_cover_a_range_without_overlap_except_the_last():
    crops = tiling_crops(2, 3, 20, 5)
    assert [c.start for c in crops] == [3, 8, 13, 15] and all(c.length == 5 for c in crops)
    assert tiling_crops(0, 0, 4, 5) == [Crop(0, 0, 4)]


def test_keep_top_edges_equals_sparsifying_the_full_matrices():
    dfc = connectivity_matrices(4, 9, seed=3)
    stored = window_graphs(dfc, density=0.5, features=("identity",))
    lowered = keep_top_edges(stored, 0.25)
    direct = window_graphs(dfc, density=0.25, features=("identity",))
    for w in range(4):
        a, b = lowered.window_ptr[w], lowered.window_ptr[w + 1]
        got = {tuple(e) for e in lowered.edge_index[:, a:b].T}
        a, b = direct.window_ptr[w], direct.window_ptr[w + 1]
        assert got == {tuple(e) for e in direct.edge_index[:, a:b].T}
    with pytest.raises(ConfigError, match="graph_dataset.density"):
        keep_top_edges(stored, 0.8)


def test_data_config_names_the_nearest_key():
    with pytest.raises(ConfigError, match="Did you mean 'crop_windows'"):
        GraphDataConfig.from_dict({"crop_window": 4})


# -- the encoder ----------------------------------------------------------------------------


def test_adjacency_is_the_sparsified_fc_and_gin_follows_its_formula():
    dfc = connectivity_matrices(3, 8, seed=1)
    model = create_model(
        "dfc_gnn", n_regions=8, in_features=8, n_identity=8, hidden=6, heads=2
    ).eval()
    graph = window_graphs(dfc, density=0.3, features=("identity",)).to_data()
    adjacency = model.adjacency(graph, 3).numpy()
    expected = np.where(sparsify(dfc, density=0.3), dfc, 0.0)
    np.testing.assert_allclose(adjacency, expected, atol=1e-6)
    block = model.gin[0]
    with torch.no_grad():
        block.conv.eps.fill_(0.25)  # a non-zero epsilon, so that a dropped (1 + eps) fails
    h = torch.randn(3, 8, 6)
    normed = torch.nn.functional.layer_norm(h, (6,), block.norm.weight, block.norm.bias)
    # The weighted case, written out from the parameters: h + W2 gelu(W1 m + b1) + b2 with
    # m = (1 + eps) x_i + sum_j A_ij x_j (Xu et al. 2019, eq. 4.1, with edge weights).
    first, second = block.conv.nn[0], block.conv.nn[3]
    weights = torch.from_numpy(expected).float()
    message = 1.25 * normed + torch.einsum("wij,wjf->wif", weights, normed)
    hidden = torch.nn.functional.gelu(message @ first.weight.T + first.bias)
    manual = h + hidden @ second.weight.T + second.bias
    torch.testing.assert_close(block(h, weights), manual)
    # The binary case against PyTorch Geometric's sparse GINConv, an independent code path
    # (message passing over an edge list) with the same MLP and epsilon.
    from torch_geometric.nn import GINConv

    reference = GINConv(block.conv.nn, eps=0.25)
    binary = torch.from_numpy(sparsify(dfc, density=0.3)).float()
    for w in range(3):
        target, source = binary[w].nonzero(as_tuple=True)
        edges = torch.stack([source, target])
        expected_w = h[w] + reference(normed[w], edges)
        torch.testing.assert_close(block(h, binary)[w], expected_w)


def test_encoder_shapes_and_checks(graphs):
    dataset, batch = crops_batch(graphs)
    model = tiny_model(dataset).eval()
    encoding = model.encode(batch["inputs"])
    assert encoding.nodes.shape == (3 * 5 * 7, 16) and encoding.windows.shape == (15, 16)
    assert encoding.context.shape == (15, 16) and encoding.subject.shape == (3, 16)
    torch.testing.assert_close(model.embed(batch["inputs"]), encoding.subject)
    wrong = create_model("dfc_gnn", in_features=5, n_identity=0, n_regions=7)
    with pytest.raises(DataError, match="in_features"):
        wrong(batch["inputs"])
    with pytest.raises(ConfigError, match="divisible"):
        create_model("dfc_gnn", hidden=30, heads=4)
    with pytest.raises(ConfigError, match="Did you mean 'attention'"):
        create_model("dfc_gnn", readout="atention")
    with pytest.raises(ConfigError, match="masked_dfc"):
        model.training_loss(batch)


def test_masked_windows_leave_no_trace_in_the_temporal_context(graphs):
    dataset, batch = crops_batch(graphs, length=6)
    model = tiny_model(dataset).eval()
    graph = batch["inputs"]
    mask = torch.zeros(18, dtype=torch.bool)
    mask[[2, 3, 9]] = True
    token = torch.randn(16)
    before = model.encode(graph, window_mask=mask, mask_token=token)
    changed = graph.clone()
    hidden_nodes = mask[changed.window]
    changed.x[hidden_nodes, :4] = torch.randn(int(hidden_nodes.sum()), 4) * 5
    changed.edge_weight = torch.where(
        hidden_nodes[changed.edge_index[0]], -changed.edge_weight, changed.edge_weight
    )
    after = model.encode(changed, window_mask=mask, mask_token=token)
    torch.testing.assert_close(after.context, before.context)
    torch.testing.assert_close(after.subject, before.subject)
    assert not torch.allclose(after.windows[mask], before.windows[mask])


def test_window_feature_normalisation_ignores_hidden_nodes(graphs):
    dataset, batch = crops_batch(graphs)
    model = tiny_model(dataset)
    x = batch["inputs"].x
    visible = torch.rand(x.shape[0]) > 0.3
    prepared = model.prepare_features(x, 15, visible=visible)
    changed = x.clone()
    changed[~visible, :4] += 100.0
    torch.testing.assert_close(
        model.prepare_features(changed, 15, visible=visible)[visible], prepared[visible]
    )
    full = model.prepare_features(x, 15).reshape(15, 7, -1)[..., :4]
    # z-scored across the regions of each window (float32 rounding on stored values ~1e2).
    torch.testing.assert_close(full.mean(1), torch.zeros(15, 4), atol=1e-4, rtol=0)
    torch.testing.assert_close(full.var(1, unbiased=False), torch.ones(15, 4), atol=1e-3, rtol=0)


# -- the objective --------------------------------------------------------------------------


def test_span_mask_masks_spans_never_a_whole_run():
    torch.manual_seed(0)
    mask = span_mask(torch.tensor([12, 1, 5, 40]), 0.25, 4)
    assert mask.shape == (58,)
    parts = torch.split(mask, [12, 1, 5, 40])
    assert int(parts[0].sum()) >= 3 and not bool(parts[1].any()) and not bool(parts[2].all())
    assert 10 <= int(parts[3].sum()) <= 13


def test_masked_dfc_objective_trains_every_parameter(graphs):
    dataset, batch = crops_batch(graphs, length=6)
    model = tiny_model(dataset)
    torch.manual_seed(1)
    objective = create_objective("masked_dfc", model, window_span=2, max_edges=50)
    terms = objective(batch)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"]) and float(terms["existence_bce"]) > 0
    assert 0.3 < float(terms["masked_nodes"]) < 1 and float(terms["masked_windows"]) > 0
    missing = [n for n, p in objective.named_parameters() if p.grad is None]
    assert missing == []
    assert objective.describe()["settings"]["window_span"] == 2
    with pytest.raises(ConfigError, match="Did you mean 'node_mask_ratio'"):
        create_objective("masked_dfc", model, node_mask_rate=0.3)
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        create_objective("masked_dfc", model, edge_mask_ratio=1.0)
    with pytest.raises(ConfigError, match="dfc_gnn"):
        create_objective("masked_dfc", create_model("dsd", mode="plain"))


def test_pretraining_lowers_the_reconstruction_loss(graphs):
    dataset = GraphCropDataset.random_crops(graphs, range(6), length=6, samples_per_run=2)
    model = tiny_model(dataset)
    objective = create_objective("masked_dfc", model, window_span=2)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        torch.manual_seed(step % 4)  # the same masks every 4 steps: a fair before / after
        batch = collate_graphs([dataset.get_item(i, step % 4) for i in range(6)])
        optimizer.zero_grad()
        loss = objective(batch)["loss"]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-4:]) < 0.85 * np.mean(losses[:4])


@pytest.mark.gpu
def test_encoder_matches_on_cuda_and_the_objective_trains_in_bf16(graphs):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    dataset, batch = crops_batch(graphs)
    model = tiny_model(dataset).eval()
    on_cpu = model.encode(batch["inputs"]).subject
    on_gpu = model.cuda().encode(batch["inputs"].cuda()).subject.cpu()
    torch.testing.assert_close(on_gpu, on_cpu, atol=2e-3, rtol=2e-3)  # TF32 matmuls
    objective = create_objective("masked_dfc", model.train(), window_span=2).cuda()
    batch["inputs"] = batch["inputs"].cuda()
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        terms = objective(batch)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"])
    assert all(p.grad is not None for p in objective.parameters() if p.requires_grad)
