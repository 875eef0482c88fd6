"""STAGIN's choices as dfc_gnn options, each checked against its written-out definition
(Kim et al. 2021, egyptdj/stagin): signed top-density binary edges with self-loops, the
GRU time-stamp encoding, SERO/GARO readouts, a Transformer after every GIN layer with
the logits summed over layers, and the orthogonality regulariser."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuroai.errors import ConfigError
from neuroai.fmri import sparsify, window_graphs
from neuroai.models import create_model
from neuroai.models.dfc_gnn import (
    GARO,
    SERO,
    STAGIN,
    GINBlock,
    STAGINTransformer,
    orthogonality_penalty,
)
from neuroai.models.objectives import create_objective
from neuroai.models.probe import ProbeModel
from neuroai.testing import connectivity_matrices, graph_dataset
from neuroai.training.graph_data import Crop, GraphCropDataset, collate_graphs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: STAGIN's choices at a test size (7 regions, 4 window statistics + identity per node).
SMALL_STAGIN = {**STAGIN, "hidden": 12, "gin_layers": 3, "heads": 1, "dropout": 0.0}


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    return graph_dataset(tmp_path_factory.mktemp("stagin") / "graphs")


def stagin_model(dataset, **options):
    torch.manual_seed(0)
    values = {**SMALL_STAGIN, **options}
    return create_model("dfc_gnn", preset="demo", **values, **dataset.model_overrides())


def unequal_batch(path):
    """Three crops of 6, 4 and 5 windows: runs of unequal length in one batch."""
    dataset = GraphCropDataset(path, [Crop(0, 1, 6), Crop(2, 0, 4), Crop(4, 3, 5)])
    return dataset, collate_graphs([dataset[i] for i in range(3)])


def _bn(x, bn):
    """BatchNorm in eval mode, written out."""
    return (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


def _randomise_batchnorm(module, seed=0):
    generator = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm1d):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=generator))
            bn.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            bn.weight.data.copy_(torch.randn(n, generator=generator))
            bn.bias.data.copy_(torch.randn(n, generator=generator))


# -- edges ----------------------------------------------------------------------------------


def test_signed_ranking_keeps_stagins_edges_as_a_binary_adjacency():
    """STAGIN: ``a > percentile(a, 70)`` over the whole FC matrix (diagonal 1 included), as a
    binary adjacency. Ranking by signed FC at the same number of edges gives the same set."""
    n = 9
    dfc = connectivity_matrices(4, n, seed=5)
    dfc = (dfc + dfc.transpose(0, 2, 1)) / 2  # exactly symmetric, as an FC matrix
    model = create_model(
        "dfc_gnn", n_regions=n, in_features=n, n_identity=n, edge_weight="binary",
        node_features="all", hidden=6, heads=2,
    )  # fmt: skip
    for w in range(4):
        full = dfc[w].copy()
        np.fill_diagonal(full, 1.0)
        stagin = full > np.percentile(full, 70)  # numpy's linear interpolation, as torchpercentile
        assert stagin.diagonal().all()  # the self-loops
        pairs = int(np.triu(stagin, 1).sum())
        density = pairs / (n * (n - 1) / 2)
        ours = sparsify(dfc[w], density=density, absolute=False)
        np.testing.assert_array_equal(ours, stagin & ~np.eye(n, dtype=bool))
        graph = window_graphs(
            dfc[w : w + 1], density=density, absolute=False, features=("identity",)
        )
        adjacency = model.adjacency(graph.to_data(), 1)[0].numpy()
        np.testing.assert_array_equal(adjacency, ours.astype(np.float32))
        # Ranking by |FC| (the default) keeps strong anticorrelations STAGIN drops.
        if (dfc[w][~np.eye(n, dtype=bool)] < -0.3).any():
            assert not np.array_equal(sparsify(dfc[w], density=density), ours)


def test_stagin_gin_layer_is_its_written_out_form_and_pygs_ginconv():
    """STAGIN's LayerGIN: ``MLP((A + I) v + eps v)`` with A binary: ours is DenseGINConv's
    ``(1 + eps) v + A v`` on A without self-loops, the same update."""
    from torch_geometric.nn import GINConv

    torch.manual_seed(3)
    block = GINBlock(5, dropout=0.5, form="stagin").eval()
    # PyG's GINConv on the same MLP (it re-initialises the MLP when built: build it first).
    reference = GINConv(block.conv.nn, eps=0.3)
    _randomise_batchnorm(block)
    with torch.no_grad():
        block.conv.eps.fill_(0.3)
    dfc = connectivity_matrices(3, 8, seed=2)
    binary = torch.from_numpy(sparsify(dfc, density=0.3, absolute=False)).float()
    h = torch.randn(3, 8, 5)
    got = block(h, binary)
    mlp = block.conv.nn
    with_loops = binary + torch.eye(8)
    aggregate = with_loops @ h + 0.3 * h
    hidden = F.relu(_bn(aggregate @ mlp[0].weight.T + mlp[0].bias, mlp[1]))
    written = F.relu(_bn(hidden @ mlp[3].weight.T + mlp[3].bias, mlp[4]))
    torch.testing.assert_close(got, written)  # no residual, no normalisation around it
    for w in range(3):
        target, source = binary[w].nonzero(as_tuple=True)
        torch.testing.assert_close(got[w], reference(h[w], torch.stack([source, target])))
    assert float(GINBlock(5, 0.0, form="stagin").conv.eps) == 0.0  # STAGIN starts at 0


# -- readouts -------------------------------------------------------------------------------


def test_sero_and_garo_are_their_formulas():
    torch.manual_seed(4)
    h = torch.randn(6, 7, 5)  # 6 windows, 7 regions
    sero = SERO(5, 7, dropout=0.5).eval()
    _randomise_batchnorm(sero, seed=1)
    first, second = sero.embed[0], sero.attend
    squeezed = F.gelu(_bn(h.mean(1) @ first.weight.T + first.bias, sero.embed[1]))
    alpha = torch.sigmoid(squeezed @ second.weight.T + second.bias)  # (6, 7): one per region
    torch.testing.assert_close(sero(h), (h * alpha[..., None]).mean(1))
    garo = GARO(5, dropout=0.5).eval()
    q = h.mean(1) @ garo.query.weight.T + garo.query.bias
    k = h @ garo.key.weight.T + garo.key.bias
    alpha = torch.sigmoid(torch.einsum("wf,wrf->wr", q, k) / math.sqrt(5))
    torch.testing.assert_close(garo(h), (h * alpha[..., None]).mean(1))
    # The node weights are sigmoids, not a softmax: they need not sum to 1.
    assert not torch.allclose(alpha.sum(1), torch.ones(6))


def test_stagin_transformer_block_is_its_written_out_form():
    torch.manual_seed(5)
    block = STAGINTransformer(6, heads=1, ff=12, dropout=0.5).eval()
    x = torch.randn(2, 5, 6)
    padding = torch.tensor([[False] * 5, [False, False, False, True, True]])
    got = block(x, padding)
    wq, wk, wv = block.attention.in_proj_weight.chunk(3)
    bq, bk, bv = block.attention.in_proj_bias.chunk(3)
    out = block.attention.out_proj
    for b, n in ((0, 5), (1, 3)):
        xb = x[b, :n]
        q, k, v = xb @ wq.T + bq, xb @ wk.T + bk, xb @ wv.T + bv
        attended = torch.softmax(q @ k.T / math.sqrt(6), dim=-1) @ v @ out.weight.T + out.bias
        a = F.layer_norm(attended, (6,), block.norm1.weight, block.norm1.bias)  # no skip
        ff = F.relu(a @ block.mlp[0].weight.T + block.mlp[0].bias)
        ff = ff @ block.mlp[3].weight.T + block.mlp[3].bias
        expected = F.layer_norm(a + ff, (6,), block.norm2.weight, block.norm2.bias)
        torch.testing.assert_close(got[b, :n], expected)


# -- the whole STAGIN-form encoder ----------------------------------------------------------


def test_every_layer_embedding_concatenates_per_layer_sums_and_a_linear_head_sums_logits(graphs):
    dataset, batch = unequal_batch(graphs)
    model = stagin_model(dataset).eval()
    graph = batch["inputs"]
    encoding = model.encode(graph)
    assert encoding.subject.shape == (3, 3 * 12) and model.embed_dim == 36
    layout = encoding.layout
    states = model.gin_states(graph, layout)
    # Each run alone, without padding: sum over its windows of layer l's Transformer.
    for run, (first, n) in enumerate(((0, 6), (6, 4), (10, 5))):
        for layer in range(3):
            windows = model.readouts[layer](states[layer][first : first + n])
            alone = model.transformers[layer](windows[None])[0].sum(0)
            torch.testing.assert_close(encoding.subject[run, layer * 12 : (layer + 1) * 12], alone)
    # A linear head on the concatenation: the logits of each layer's head, summed (STAGIN).
    probe = ProbeModel.from_encoder(model, n_outputs=2, task="classification").eval()
    weight, bias = probe.head[-1].weight, probe.head[-1].bias
    per_layer = [
        encoding.subject[:, k * 12 : (k + 1) * 12] @ weight[:, k * 12 : (k + 1) * 12].T
        for k in range(3)
    ]
    torch.testing.assert_close(probe(graph), sum(per_layer) + bias)


def test_timestamp_gru_is_causal_per_run_and_equals_a_gru_on_each_run(graphs):
    dataset, batch = unequal_batch(graphs)
    model = stagin_model(dataset).eval()
    graph = batch["inputs"]
    layout = model.encode(graph).layout
    x = model.prepare_features(graph.x, layout.total_windows)
    per_window = x[:, :4].reshape(15, 7 * 4)
    stamps = model.timestamp(per_window, layout)
    gru = model.timestamp.gru
    for first, n in ((0, 6), (6, 4), (10, 5)):
        torch.testing.assert_close(stamps[first : first + n], gru(per_window[first : first + n])[0])
    changed = per_window.clone()
    changed[8] += 3.0  # window 2 of run 1
    after = model.timestamp(changed, layout)
    torch.testing.assert_close(after[:8], stamps[:8])  # earlier windows and run 0
    torch.testing.assert_close(after[10:], stamps[10:])  # run 2
    assert not torch.allclose(after[8:10], stamps[8:10])
    # Node inputs: identity only (STAGIN), plus the stamp of the node's window.
    assert model.input.in_features == 7 + 12


def test_orthogonality_penalty_is_stagins_formula():
    torch.manual_seed(6)
    h = torch.rand(4, 5, 3)
    expected = []
    for w in range(4):
        gram = (h[w] @ h[w].T).numpy()
        scaled = gram / gram.max(axis=1, keepdims=True) - np.eye(5)
        expected.append(np.linalg.norm(np.triu(scaled)))
    assert float(orthogonality_penalty(h)) == pytest.approx(np.mean(expected), rel=1e-5)
    orthogonal = torch.eye(5)[None].repeat(2, 1, 1) * torch.tensor([1.0, 2, 3, 4, 5])[:, None]
    assert float(orthogonality_penalty(orthogonal)) == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(orthogonality_penalty(torch.zeros(2, 5, 3)))


def test_stagin_options_pretrain_and_finetune_with_the_regulariser(graphs):
    from neuroai.training.graph_finetune import RegularisedProbe

    dataset, batch = unequal_batch(graphs)
    model = stagin_model(dataset, orthogonality=0.5)
    torch.manual_seed(1)
    objective = create_objective("masked_dfc", model, window_span=2, max_edges=50)
    terms = objective(batch)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"]) and float(terms["orthogonality"]) > 0
    missing = [n for n, p in objective.named_parameters() if p.grad is None]
    assert missing == []
    # Fine-tuning: cross-entropy + 0.5 * R_ortho, on the same forward pass.
    probe = RegularisedProbe.from_encoder(model, n_outputs=2, task="classification").eval()
    batch["target"] = torch.tensor([0, 1, 1])
    loss = probe.training_loss(batch)
    encoding = model.encode(batch["inputs"])
    expected = F.cross_entropy(probe.head(encoding.subject), batch["target"])
    torch.testing.assert_close(loss["loss"], expected + 0.5 * encoding.orthogonality)
    # Off by default: not even computed.
    assert (
        float(stagin_model(dataset, orthogonality=0.0).encode(batch["inputs"]).orthogonality) == 0
    )


def test_masked_windows_leave_no_trace_in_every_layers_context(graphs):
    dataset, batch = unequal_batch(graphs)
    model = stagin_model(dataset, timestamp="none", node_features="all").eval()
    graph = batch["inputs"]
    mask = torch.zeros(15, dtype=torch.bool)
    mask[[2, 3, 12]] = True
    token = torch.randn(12)
    before = model.encode(graph, window_mask=mask, mask_token=token)
    changed = graph.clone()
    hidden_nodes = mask[changed.window]
    changed.x[hidden_nodes, :4] = torch.randn(int(hidden_nodes.sum()), 4) * 5
    after = model.encode(changed, window_mask=mask, mask_token=token)
    torch.testing.assert_close(after.context, before.context)
    torch.testing.assert_close(after.subject, before.subject)


def test_stagin_options_are_checked():
    with pytest.raises(ConfigError, match="Did you mean 'sero'"):
        create_model("dfc_gnn", readout="serro")
    with pytest.raises(ConfigError, match="needs one-hot identity"):
        create_model("dfc_gnn", n_identity=0, in_features=4, node_features="identity",
                     timestamp="gru")  # fmt: skip
    with pytest.raises(ConfigError, match="reads no data"):
        create_model("dfc_gnn", node_features="identity")
    with pytest.raises(ConfigError, match="timestamp='gru'"):
        create_model("dfc_gnn", in_features=94, timestamp="gru")
    config = create_model("dfc_gnn", preset="stagin").config
    assert (config.hidden, config.gin_layers, config.readout, config.edge_weight) == (
        128, 4, "sero", "binary",
    )  # fmt: skip


def test_the_stages_run_stagins_options_end_to_end(tmp_path, graphs):
    from neuroai.models import load_pretrained
    from neuroai.pipelines import dfc_gnn_finetune, dfc_gnn_pretrain

    options = {k: v for k, v in SMALL_STAGIN.items() if k not in ("hidden", "gin_layers")}
    model = {"preset": "demo", "options": {**options, "hidden": 8, "gin_layers": 2}}
    data = {"crop_windows": 4, "samples_per_run": 1, "eval_crops": 2}
    dfc_gnn_pretrain.run(
        graphs, tmp_path / "pre", tmp_path / "history.tsv", model=model, data=data,
        training={"max_steps": 2, "batch_size": 3, "log_every_steps": 1, "val_every_steps": 0},
        holdout={"stratify": ["site"]},
    )  # fmt: skip
    encoder = load_pretrained(tmp_path / "pre")
    assert (encoder.config.temporal, encoder.config.readout, encoder.embed_dim) == (
        "every_layer", "sero", 16,
    )  # fmt: skip
    dfc_gnn_finetune.run(
        graphs, tmp_path / "pre", tmp_path / "p.tsv", tmp_path / "task", methods=["finetune", "probe"],
        fractions=[1.0], training={"max_steps": 1, "batch_size": 3}, data=data,
        holdout={"stratify": ["site"]},
    )  # fmt: skip
    probe = load_pretrained(tmp_path / "task")
    assert probe.encoder.config.orthogonality == SMALL_STAGIN["orthogonality"]
    assert probe.head[-1].in_features == 16


@pytest.mark.gpu
def test_stagin_options_match_on_cuda_and_train_in_bf16(graphs):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    dataset, batch = unequal_batch(graphs)
    model = stagin_model(dataset, orthogonality=1e-3).eval()
    on_cpu = model.encode(batch["inputs"]).subject
    on_gpu = model.cuda().encode(batch["inputs"].cuda()).subject.cpu()
    torch.testing.assert_close(on_gpu, on_cpu, atol=2e-3, rtol=2e-3)  # TF32 matmuls
    objective = create_objective("masked_dfc", model.train(), window_span=2).cuda()
    batch["inputs"] = batch["inputs"].cuda()
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        terms = objective(batch)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"]) and torch.isfinite(terms["orthogonality"])
    assert all(p.grad is not None for p in objective.parameters() if p.requires_grad)
