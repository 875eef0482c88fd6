"""Masked dynamic-FC modelling: hide nodes, edges and whole windows; reconstruct them.

A generative self-supervised objective for the dFC-GNN encoder (``dfc_gnn``) that masks
in space and in time and reconstructs what was hidden:

- **nodes**: a fraction ``node_mask_ratio`` of the nodes of each window get their
  feature columns (not the one-hot identity, which plays the role of a position)
  replaced by a learned mask vector (GraphMAE's ``[MASK]`` token), after the encoder's
  per-window feature normalisation computed from the visible nodes only;
- **edges**: a fraction ``edge_mask_ratio`` of the undirected edges (both directions)
  is removed from the graph the encoder sees;
- **windows**: spans of ``window_span`` consecutive windows, ``window_mask_ratio`` of
  each run in total, are hidden in time: their graphs are emptied, their readout is
  replaced by a learned token before the temporal Transformer, and their nodes are
  represented in the decoder by a learned region embedding only, so what is decoded
  there comes from the neighbouring windows alone.

The decoder is an MLP of ``decoder_layers`` layers of ``decoder_hidden`` units on
``[node state, temporal context of its window]`` per node; a linear head reconstructs
the node features, and an MLP on the symmetric pair features
``[z_i * z_j, z_i + z_j]`` gives each node pair an FC value and an edge-existence
logit. Losses: mean squared error on the masked nodes' features (as the encoder normalises
them, standardised per column over the batch) and on the masked edges' FC values (standardised over the
batch), binary cross-entropy on edge existence, with the masked edges (and the edges
of masked windows) as positives and as many random non-edges of the same windows
(``negative_ratio``) as negatives::

    loss = feature_weight * MSE_features + edge_weight * MSE_fc + existence_weight * BCE
           + orthogonality * R_ortho

(the last term only when the encoder's ``orthogonality`` weight is set: STAGIN's
regulariser on the GIN layers' node states, see :func:`~neuroai.models.dfc_gnn.orthogonality_penalty`).

Why these defaults:

- ``node_mask_ratio=0.5``: GraphMAE (Hou et al., KDD 2022) finds ratios of 0.5 and more
  best for feature reconstruction; region identity is never masked, so a masked node
  is still localised and its neighbours in the window carry the signal.
- ``edge_mask_ratio=0.3``: the window graphs keep the top 30% of edges; hiding 30% of
  them leaves a graph of 21% density, still connected enough for 2-4 GIN layers to
  propagate, while MaskGAE's (Li et al., KDD 2023) higher ratios (0.7) target link
  prediction alone, where the edge is the only signal.
- ``window_mask_ratio=0.25`` in spans of ``window_span=4``: neighbouring windows
  (50 TRs, step 3) share 47 of their 50 TRs, so a single hidden window is recovered by
  interpolation; a span of 4 windows hides 12 TRs of new signal, which forces the
  temporal model to predict the dynamics rather than copy a neighbour, and 25% keeps
  three quarters of the context visible (MAE-style ratios above 0.5 leave too little
  context in the demo's crops of 12 windows, 83 TRs; STAGIN trains on crops of 600
  TRs, 184 windows, where a higher ratio would still leave enough).
- ``decoder_layers=2``, ``decoder_hidden=None`` (the encoder's width): a light decoder,
  as in MAE and GraphMAE, so that the encoder carries the representation.
- ``max_edges=8192``: a batch of 8 crops of 12 windows hides about 60,000 edges; the
  edge losses are means, so a uniform subsample estimates them without bias at a
  fraction of the decoder's cost (the node decoder still sees every node).
- Loss weights all 1: both MSE targets are standardised, so each term starts near 1
  for a trivial predictor (the BCE near log 2), and the three pretext tasks start with
  an equal say.

Validation draws its masks from a stream of its own: in eval mode the masks (and the
sampled edges and non-edges) come from a generator seeded by ``validation_seed`` and the
batch's content, inside :func:`torch.random.fork_rng`, so a validation pass neither reads
nor advances the global random stream (training draws the same numbers with or without
validations in between, and a run resumed from a checkpoint continues as it would have)
and scores the same masks every time it sees the same batch.

Shapes:
    ``batch["inputs"]``: a PyG ``Batch`` of window sequences as the encoder takes
    them (see :mod:`neuroai.models.dfc_gnn`).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from neuroai.errors import ConfigError
from neuroai.models.base import INPUTS, NeuroModel
from neuroai.models.objectives.base import Objective, register_objective


def _mlp(width_in: int, hidden: int, layers: int, width_out: int | None = None) -> nn.Sequential:
    parts: list[nn.Module] = []
    width = width_in
    for _ in range(layers):
        parts += [nn.Linear(width, hidden), nn.GELU()]
        width = hidden
    if width_out is not None:
        parts.append(nn.Linear(width, width_out))
    return nn.Sequential(*parts)


def _standardise(values: torch.Tensor) -> torch.Tensor:
    """Centre and scale over the first axis (statistics detached; constant columns kept at 0)."""
    mean = values.mean(0, keepdim=True).detach()
    std = values.std(0, keepdim=True, unbiased=False).detach()
    return (values - mean) / std.clamp_min(1e-6)


def span_mask(n_windows: torch.Tensor, ratio: float, span: int) -> torch.Tensor:
    """Mask spans of ``span`` consecutive windows, about ``ratio`` of each run.

    Parameters
    ----------
    n_windows : Tensor, shape (B,)
        Windows of each run (runs one after the other).
    ratio : float
        Fraction of each run's windows to mask: spans are drawn (they may overlap)
        until at least ``round(ratio * n)`` windows (one at least) are masked; a run
        of one window is never masked and a run never entirely.
    span : int
        Length of each span (at most the run's length minus one).

    Returns
    -------
    Tensor of bool, shape (sum(n_windows),)
    """
    masks = []
    for n in n_windows.tolist():
        mask = torch.zeros(n, dtype=torch.bool)
        if ratio > 0 and n > 1:
            target = max(1, int(round(ratio * n)))
            width = min(span, n - 1)
            while int(mask.sum()) < target:
                start = int(torch.randint(0, n - width + 1, (1,)))
                mask[start : start + width] = True
            if bool(mask.all()):
                mask[int(torch.randint(0, n, (1,)))] = False
        masks.append(mask)
    return torch.cat(masks) if masks else torch.zeros(0, dtype=torch.bool)


@register_objective("masked_dfc")
class MaskedDFCModeling(Objective):
    """Masked node, edge and window reconstruction around a ``dfc_gnn`` encoder.

    Parameters
    ----------
    encoder : NeuroModel
        A ``dfc_gnn`` model (``create_model("dfc_gnn", ...)``).
    node_mask_ratio, edge_mask_ratio, window_mask_ratio : float
        Fractions of nodes (per window), undirected edges and windows (per run) hidden;
        each in [0, 1).
    window_span : int
        Consecutive windows per masked span.
    decoder_hidden : int | None
        Decoder width (None: the encoder's ``hidden``).
    decoder_layers : int
        Hidden layers of the node decoder and of the edge decoder.
    negative_ratio : float
        Random non-edges per positive edge in the existence loss.
    max_edges : int
        At most this many masked edges (drawn uniformly) are scored per batch (0: all).
    feature_weight, edge_weight, existence_weight : float
        Weights of the three loss terms.
    validation_seed : int
        Seed of the masks drawn in eval mode (with the batch's content; the global random
        stream is left alone, see the module docstring).

    See the module docstring for what each does and why the defaults.
    """

    def __init__(
        self,
        encoder: NeuroModel,
        node_mask_ratio: float = 0.5,
        edge_mask_ratio: float = 0.3,
        window_mask_ratio: float = 0.25,
        window_span: int = 4,
        decoder_hidden: int | None = None,
        decoder_layers: int = 2,
        negative_ratio: float = 1.0,
        max_edges: int = 8192,
        feature_weight: float = 1.0,
        edge_weight: float = 1.0,
        existence_weight: float = 1.0,
        validation_seed: int = 0,
    ) -> None:
        super().__init__(
            encoder,
            node_mask_ratio=node_mask_ratio,
            edge_mask_ratio=edge_mask_ratio,
            window_mask_ratio=window_mask_ratio,
            window_span=window_span,
            decoder_hidden=decoder_hidden,
            decoder_layers=decoder_layers,
            negative_ratio=negative_ratio,
            max_edges=max_edges,
            feature_weight=feature_weight,
            edge_weight=edge_weight,
            existence_weight=existence_weight,
            validation_seed=validation_seed,
        )
        if getattr(encoder, "family", "") != "dfc_gnn":
            raise ConfigError(
                f"masked_dfc wraps a 'dfc_gnn' encoder, got {getattr(encoder, 'family', type(encoder).__name__)!r}."
            )
        for name, value in (
            ("node_mask_ratio", node_mask_ratio),
            ("edge_mask_ratio", edge_mask_ratio),
            ("window_mask_ratio", window_mask_ratio),
        ):
            if not 0 <= value < 1:
                raise ConfigError(f"masked_dfc: {name} must be in [0, 1), got {value}.")
        if node_mask_ratio == edge_mask_ratio == window_mask_ratio == 0:
            raise ConfigError("masked_dfc: at least one masking ratio must be positive.")
        if window_span < 1 or min(decoder_layers, negative_ratio, max_edges) < 0:
            raise ConfigError(
                f"masked_dfc: window_span must be >= 1, decoder_layers, negative_ratio and "
                f"max_edges >= 0; got {window_span}, {decoder_layers}, {negative_ratio}, {max_edges}."
            )
        weights = (feature_weight, edge_weight, existence_weight)
        if min(weights) < 0 or sum(weights) == 0:
            raise ConfigError(
                f"masked_dfc: loss weights must be >= 0 and not all 0, got {weights}."
            )
        config = encoder.config
        hidden = config.hidden
        width = decoder_hidden or hidden
        self.n_content = config.n_content
        self.n_regions = config.n_regions
        self.feature_token = nn.Parameter(torch.zeros(max(self.n_content, 1)))
        self.window_token = nn.Parameter(torch.zeros(hidden))
        self.region = nn.Embedding(config.n_regions, hidden)
        nn.init.normal_(self.window_token, std=0.02)
        nn.init.normal_(self.region.weight, std=0.02)
        self.node_decoder = _mlp(2 * hidden, width, max(decoder_layers, 1))
        self.feature_head = nn.Linear(width, max(self.n_content, 1))
        self.edge_decoder = _mlp(2 * width, width, decoder_layers, 2)

    # -- masks ----------------------------------------------------------------------------
    def _masks(self, graph) -> dict[str, torch.Tensor]:
        s = self.settings
        device = graph.x.device
        n_windows = graph.n_windows
        if not isinstance(n_windows, torch.Tensor):
            n_windows = torch.tensor([int(n_windows)])
        n_windows = n_windows.reshape(-1).cpu()
        window_mask = span_mask(n_windows, s["window_mask_ratio"], s["window_span"]).to(device)
        n_nodes = graph.x.shape[0]
        node_window = torch.div(
            torch.arange(n_nodes, device=device), self.n_regions, rounding_mode="floor"
        )
        hidden_window_node = window_mask[node_window]
        node_mask = (
            torch.rand(n_nodes, device=device) < s["node_mask_ratio"]
        ) & ~hidden_window_node
        # Symmetric per-pair draws: frac(u_i + u_j) is uniform and the same for (i, j)
        # and (j, i), so both directions of an edge are masked together without a search.
        src, dst = graph.edge_index
        u = torch.rand(n_nodes, device=device, dtype=torch.float64)
        edge_mask = torch.frac(u[src] + u[dst]) < s["edge_mask_ratio"]
        edge_window_hidden = hidden_window_node[src]
        edge_mask = edge_mask & ~edge_window_hidden
        return {
            "window": window_mask,
            "node": node_mask,
            "node_in_hidden_window": hidden_window_node,
            "edge": edge_mask,
            "edge_in_hidden_window": edge_window_hidden,
            "node_window": node_window,
        }

    def _corrupt(self, graph, masks: dict[str, torch.Tensor], n_windows: int):
        corrupted = copy.copy(graph)
        hide = masks["node"] | masks["node_in_hidden_window"]
        x = self.encoder.prepare_features(graph.x, n_windows, visible=~hide)
        if self.n_content:
            x = x.clone()
            x[hide, : self.n_content] = self.feature_token.to(x)
        corrupted.x = x
        keep = ~(masks["edge"] | masks["edge_in_hidden_window"])
        corrupted.edge_index = graph.edge_index[:, keep]
        corrupted.edge_weight = graph.edge_weight[keep]
        if getattr(graph, "edge_attr", None) is not None:
            corrupted.edge_attr = graph.edge_attr[keep]
        return corrupted

    # -- the loss -------------------------------------------------------------------------
    def _negatives(self, graph, node_window: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        """Random node pairs of the given windows that are not edges, shape (2, Q)."""
        count = int(round(self.settings["negative_ratio"] * windows.shape[0]))
        if count == 0:
            return windows.new_zeros((2, 0))
        device = graph.x.device
        r = self.n_regions
        src, dst = graph.edge_index
        n_total = int(node_window[-1]) + 1 if node_window.numel() else 0
        dense = torch.zeros((n_total, r, r), dtype=torch.bool, device=device)
        dense[node_window[src], src % r, dst % r] = True
        windows = windows[torch.randint(0, windows.shape[0], (count,), device=device)]
        a = torch.randint(0, r, (count,), device=device)
        b = (a + torch.randint(1, r, (count,), device=device)) % r  # never a self-pair
        free = ~dense[windows, a, b]
        return torch.stack([windows[free] * r + a[free], windows[free] * r + b[free]])

    def _validation_seed(self, graph) -> int:
        """A seed from ``validation_seed`` and the batch's content (its graph structure)."""
        edges = graph.edge_index
        content = int(edges[0].sum()) * 1_000_003 + int(edges[1].sum()) + edges.shape[1]
        content = content * 7919 + int(graph.x.shape[0])
        return (int(self.settings["validation_seed"]) * 2_654_435_761 + content) % 2**63

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        if self.training:
            return self._forward(batch)
        # Validation: masks from a stream of its own; the global stream is restored after.
        graph = batch[INPUTS]
        device = graph.x.device
        devices = list(range(torch.cuda.device_count())) if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._validation_seed(graph))
            return self._forward(batch)

    def _forward(self, batch: dict) -> dict[str, torch.Tensor]:
        graph = batch[INPUTS]
        masks = self._masks(graph)
        n_windows = int(masks["window"].shape[0])
        encoding = self.encoder.encode(
            self._corrupt(graph, masks, n_windows),
            window_mask=masks["window"],
            mask_token=self.window_token,
            prepared=True,
        )
        region = torch.arange(graph.x.shape[0], device=graph.x.device) % self.n_regions
        state = torch.where(
            masks["node_in_hidden_window"][:, None],
            self.region(region).to(encoding.nodes),
            encoding.nodes,
        )
        z = self.node_decoder(torch.cat([state, encoding.context[masks["node_window"]]], dim=1))
        zero = z.sum() * 0.0
        # Node features of the masked nodes and of every node of the masked windows.
        scored = masks["node"] | masks["node_in_hidden_window"]
        if self.n_content and bool(scored.any()):
            prepared = self.encoder.prepare_features(graph.x, n_windows)
            target = _standardise(prepared[:, : self.n_content])
            feature_loss = F.mse_loss(self.feature_head(z)[scored], target[scored])
        else:
            feature_loss = zero
        # Edges: masked ones and those of masked windows (one direction each) vs non-edges.
        src, dst = graph.edge_index
        positive = (masks["edge"] | masks["edge_in_hidden_window"]) & (src < dst)
        n_positive = int(positive.sum())
        chosen = positive.nonzero()[:, 0]
        limit = self.settings["max_edges"]
        if limit and chosen.numel() > limit:
            chosen = chosen[torch.randperm(chosen.numel(), device=chosen.device)[:limit]]
        pos_i, pos_j = src[chosen], dst[chosen]
        if pos_i.numel():
            neg = self._negatives(graph, masks["node_window"], masks["node_window"][pos_i])
            i = torch.cat([pos_i, neg[0]])
            j = torch.cat([pos_j, neg[1]])
            out = self.edge_decoder(torch.cat([z[i] * z[j], z[i] + z[j]], dim=1))
            n_pos = pos_i.shape[0]
            fc = _standardise(graph.edge_weight[chosen].float()[:, None])[:, 0]
            weight_loss = F.mse_loss(out[:n_pos, 0], fc)
            labels = torch.cat([torch.ones(n_pos), torch.zeros(neg.shape[1])]).to(out)
            existence_loss = F.binary_cross_entropy_with_logits(out[:, 1], labels)
        else:
            weight_loss = existence_loss = zero
        s = self.settings
        loss = (
            s["feature_weight"] * feature_loss
            + s["edge_weight"] * weight_loss
            + s["existence_weight"] * existence_loss
            + self.encoder.config.orthogonality * encoding.orthogonality
        )
        # Every parameter takes part in every step (DDP needs no unused parameters).
        loss = loss + 0.0 * (
            self.feature_token.sum() + self.window_token.sum() + self.region.weight.sum()
        )
        return {
            "loss": loss,
            "feature_mse": feature_loss.detach(),
            "fc_mse": weight_loss.detach(),
            "existence_bce": existence_loss.detach(),
            "orthogonality": encoding.orthogonality.detach(),
            "masked_nodes": scored.float().mean().detach(),
            "masked_edges": torch.tensor(n_positive / max(int((src < dst).sum()), 1)),
            "masked_windows": masks["window"].float().mean().detach(),
        }
