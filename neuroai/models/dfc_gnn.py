"""dFC-GNN: a spatio-temporal graph network over sequences of dynamic-FC window graphs.

The encoder of the generative self-supervised dynamic-FC framework (issue 9), built on
the STAGIN backbone: Kim B-H, Ye JC, Kim J-J (2021). "Learning dynamic graph
representation of brain connectome with spatio-temporal attention", NeurIPS.
Reference code: https://github.com/egyptdj/stagin.

A run is a sequence of window graphs on the same nodes (regions): the edges of window
``w`` are the strongest ``density`` of its sliding-window FC (STAGIN keeps the top 30%;
the graph dataset stage sets it, :class:`~neuroai.training.graph_data.GraphCropDataset`
can lower it), each edge carries its FC value and each node its features
(window statistics of its signal and one-hot region identity, see
:mod:`neuroai.fmri.graphs`; the statistics are z-scored across the regions of each
window, :math:`\\tilde x`). Per window:

.. math::

    h^{(0)}_i = W_{in} \\tilde x_i, \\qquad
    h^{(l)}_i = h^{(l-1)}_i + \\mathrm{MLP}^{(l)}\\Big((1 + \\epsilon^{(l)}) \\bar h_i
        + \\sum_{j \\in N(i)} a_{ij} \\bar h_j\\Big), \\quad \\bar h = \\mathrm{LN}(h^{(l-1)})

with :math:`a_{ij}` the edge's FC value (0 for pairs that are not edges; PyTorch
Geometric's ``DenseGINConv`` on each window's weighted adjacency: the GIN update of
Xu et al. 2019 weighted as in STAGIN, in residual pre-norm form), then an attention readout per window
(``AttentionalAggregation``: :math:`g_w = \\sum_i \\mathrm{softmax}_i(a(h_i)) h_i`).
The window embeddings :math:`g_1 \\dots g_W`, with sinusoidal positions and a learned
``[CLS]`` token in front, go through a temporal Transformer (pre-LN); the subject
embedding is the normalised ``[CLS]`` output. STAGIN runs a Transformer after each GIN
layer and sums the layers' logits; here one temporal Transformer reads the last layer,
which keeps a single subject embedding for probes and fingerprinting.

Shapes:
    input: a PyG ``Batch`` of :class:`~neuroai.fmri.graphs.WindowSequence` graphs (or
    one): ``x`` ``(N, in_features)`` with ``N`` the windows of all runs times
    ``n_regions``, ``edge_index`` ``(2, E)`` (both directions of every edge),
    ``edge_weight`` ``(E,)``, ``window`` ``(N,)`` the global window of each node,
    ``batch`` ``(N,)`` the run, ``n_windows`` ``(B,)``. Output: ``(B, hidden)``
    subject embeddings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from neuroai.errors import ConfigError, DataError, check_option
from neuroai.models.base import NeuroModel
from neuroai.models.config import ModelConfig
from neuroai.models.registry import register_model

READOUTS = ("attention", "mean")
FEATURE_NORMS = ("window", "none")
EDGE_WEIGHTS = ("signed", "absolute", "binary")


@dataclass
class DFCGNNConfig(ModelConfig):
    """Hyperparameters of the dFC-GNN encoder.

    Attributes
    ----------
    in_features : int
        Width of a node's feature vector as loaded (stored features, then one-hot
        identity when the graph dataset has it).
    n_identity : int
        Trailing columns of the node features that are one-hot region identity
        (``n_regions`` when the dataset has ``identity``, else 0). Masked-feature
        pretraining never hides or reconstructs them (they play the role of positions).
    n_regions : int
        Nodes per window graph.
    feature_norm : {"window", "none"}
        ``"window"``: z-score each data feature column across the regions of each
        window before the input layer (BOLD has arbitrary units: a subject's signal
        level or scale says nothing about the pattern across regions); ``"none"``: feed
        the stored values.
    edge_weight : {"signed", "absolute", "binary"}
        Weight of an edge in the GIN neighbour sum: its FC value, its absolute
        value, or 1.
    hidden : int
        Width of node, window and subject embeddings (STAGIN: 128).
    gin_layers : int
        GIN layers (STAGIN: 4).
    readout : {"attention", "mean"}
        Window readout: attention pooling over nodes, or their mean.
    temporal_layers, heads : int
        Temporal Transformer depth and attention heads.
    ff_mult : int
        Feed-forward width of the Transformer as a multiple of ``hidden``.
    dropout : float
        Dropout in the GIN MLPs and the Transformer.
    """

    in_features: int = 98
    n_identity: int = 94
    n_regions: int = 94
    feature_norm: str = "window"
    edge_weight: str = "signed"
    hidden: int = 128
    gin_layers: int = 4
    readout: str = "attention"
    temporal_layers: int = 1
    heads: int = 1
    ff_mult: int = 2
    dropout: float = 0.5

    def validate(self) -> None:
        check_option("readout", self.readout, READOUTS)
        check_option("edge_weight", self.edge_weight, EDGE_WEIGHTS)
        check_option("feature_norm", self.feature_norm, FEATURE_NORMS)
        for name in ("in_features", "n_regions", "hidden", "gin_layers", "heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"dfc_gnn: {name} must be >= 1, got {getattr(self, name)}.")
        if self.temporal_layers < 0 or self.ff_mult < 1 or not 0 <= self.dropout < 1:
            raise ConfigError(
                f"dfc_gnn: temporal_layers must be >= 0, ff_mult >= 1 and dropout in [0, 1); got "
                f"{self.temporal_layers}, {self.ff_mult}, {self.dropout}."
            )
        if self.hidden % self.heads:
            raise ConfigError(
                f"dfc_gnn: hidden ({self.hidden}) must be divisible by heads ({self.heads})."
            )
        if self.n_identity not in (0, self.n_regions) or self.n_identity > self.in_features:
            raise ConfigError(
                f"dfc_gnn: n_identity must be 0 or n_regions ({self.n_regions}) and at most "
                f"in_features ({self.in_features}); got {self.n_identity}."
            )

    @property
    def n_content(self) -> int:
        """Node feature columns that are data (not identity): what pretraining reconstructs."""
        return self.in_features - self.n_identity


# -- helpers ------------------------------------------------------------------------------


def sinusoidal_positions(positions: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal encodings of integer positions, shape ``(*positions.shape, width)``."""
    half = width // 2
    frequency = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half
    )
    angle = positions.float()[..., None] * frequency
    encoding = torch.cat([angle.sin(), angle.cos()], dim=-1)
    if width % 2:
        encoding = torch.nn.functional.pad(encoding, (0, 1))
    return encoding


@dataclass
class GraphLayout:
    """Where the windows of a batch of runs are.

    Attributes
    ----------
    n_windows : Tensor, shape (B,)
        Windows of each run.
    window_run : Tensor, shape (total_windows,)
        Run of each window.
    position : Tensor, shape (total_windows,)
        Index of each window within its run.
    """

    n_windows: torch.Tensor
    window_run: torch.Tensor
    position: torch.Tensor

    @property
    def n_runs(self) -> int:
        return int(self.n_windows.shape[0])

    @property
    def total_windows(self) -> int:
        return int(self.window_run.shape[0])


def graph_layout(graph, n_regions: int) -> GraphLayout:
    """The run and position of every window of a (batched) WindowSequence."""
    n_windows = graph.n_windows
    if not isinstance(n_windows, torch.Tensor):
        n_windows = torch.tensor([int(n_windows)])
    n_windows = n_windows.reshape(-1).to(graph.x.device, torch.long)
    expected = int(n_windows.sum()) * n_regions
    if graph.x.shape[0] != expected:
        raise DataError(
            f"dfc_gnn: the graph has {graph.x.shape[0]} nodes, but its {int(n_windows.sum())} "
            f"windows of {n_regions} regions need {expected}."
        )
    runs = torch.arange(n_windows.shape[0], device=n_windows.device)
    window_run = runs.repeat_interleave(n_windows)
    starts = torch.cumsum(n_windows, 0) - n_windows
    position = torch.arange(window_run.shape[0], device=n_windows.device) - starts[window_run]
    return GraphLayout(n_windows, window_run, position)


def _regions_per_window(graph) -> int:
    value = graph.n_regions
    if isinstance(value, torch.Tensor):
        value = value.reshape(-1)
        if value.numel() and bool((value != value[0]).any()):
            raise DataError("dfc_gnn: every run of a batch must have the same number of regions.")
        value = value[0]
    return int(value)


@dataclass
class DFCEncoding:
    """Everything the encoder computes for a batch (pretraining decoders read it).

    Attributes
    ----------
    nodes : Tensor, shape (N, hidden)
        Node states after the GIN layers (window by window).
    windows : Tensor, shape (total_windows, hidden)
        Readout of each window graph (before the temporal Transformer).
    context : Tensor, shape (total_windows, hidden)
        Temporal Transformer output at each window.
    subject : Tensor, shape (B, hidden)
        Subject embedding (normalised ``[CLS]`` output).
    layout : GraphLayout
        Run and position of each window.
    """

    nodes: torch.Tensor
    windows: torch.Tensor
    context: torch.Tensor
    subject: torch.Tensor
    layout: GraphLayout


# -- blocks -------------------------------------------------------------------------------


class GINBlock(nn.Module):
    """Pre-norm residual GIN layer on the windows' weighted adjacency (PyG ``DenseGINConv``).

    Each window is a small dense graph (``n_regions`` nodes, 30% of the edges), so the
    neighbour sum is one batched matrix product per layer, as in STAGIN; on CPU it is
    ten times faster than sparse products or per-edge messages at this density, and
    it runs in bf16 on GPUs.
    """

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        from torch_geometric.nn.dense import DenseGINConv

        mlp = nn.Sequential(
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
        )
        self.norm = nn.LayerNorm(hidden)
        self.conv = DenseGINConv(mlp, train_eps=True)

    def forward(self, h: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """``h``: (n_windows, n_regions, hidden); ``adjacency``: (n_windows, n_regions, n_regions)."""
        return h + self.conv(self.norm(h), adjacency.to(h.dtype))


class WindowReadout(nn.Module):
    """Pool the nodes of each window: attention (``AttentionalAggregation``) or mean."""

    def __init__(self, hidden: int, kind: str) -> None:
        super().__init__()
        from torch_geometric.nn.aggr import AttentionalAggregation, MeanAggregation

        if kind == "attention":
            gate = nn.Sequential(
                nn.Linear(hidden, max(hidden // 2, 1)),
                nn.Tanh(),
                nn.Linear(max(hidden // 2, 1), 1),
            )
            self.pool = AttentionalAggregation(gate_nn=gate)
        else:
            self.pool = MeanAggregation()

    def forward(self, h: torch.Tensor, window: torch.Tensor, n_windows: int) -> torch.Tensor:
        return self.pool(h, index=window, dim_size=n_windows)


# -- the model ----------------------------------------------------------------------------


@register_model(
    "dfc_gnn",
    config=DFCGNNConfig,
    presets={
        # Trains in CPU seconds on the 12-subject demo (see README "dFC-GNN").
        "demo": {
            "hidden": 32,
            "gin_layers": 2,
            "temporal_layers": 1,
            "heads": 2,
            "dropout": 0.1,
        },
        # STAGIN's published sizes: 4 GIN layers of 128, one attention head, dropout 0.5.
        "paper": {"hidden": 128, "gin_layers": 4, "temporal_layers": 1, "heads": 1, "dropout": 0.5},
    },
    description="dFC-GNN: GIN per dynamic-FC window, attention readout, temporal Transformer",
)
class DFCGNN(NeuroModel):
    """The dFC-GNN encoder (see the module docstring).

    Parameters
    ----------
    config : DFCGNNConfig
        Its hyperparameters.
    """

    modality = "graph"
    item_ndim = 0

    def __init__(self, config: DFCGNNConfig) -> None:
        super().__init__(config)
        h = config.hidden
        self.input = nn.Linear(config.in_features, h)
        self.gin = nn.ModuleList(GINBlock(h, config.dropout) for _ in range(config.gin_layers))
        self.node_norm = nn.LayerNorm(h)
        self.readout = WindowReadout(h, config.readout)
        self.cls = nn.Parameter(torch.zeros(1, 1, h))
        nn.init.normal_(self.cls, std=0.02)
        layer = nn.TransformerEncoderLayer(
            h,
            config.heads,
            dim_feedforward=config.ff_mult * h,
            dropout=config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.temporal = (
            nn.TransformerEncoder(layer, config.temporal_layers, enable_nested_tensor=False)
            if config.temporal_layers
            else nn.Identity()
        )
        self.norm = nn.LayerNorm(h)

    @property
    def embed_dim(self) -> int:
        return self.config.hidden

    def _check(self, graph) -> GraphLayout:
        x = graph.x
        if x.ndim != 2 or x.shape[1] != self.config.in_features:
            raise DataError(
                f"dfc_gnn: node features have shape {tuple(x.shape)}; the model was built for "
                f"{self.config.in_features} features per node (in_features). Build it with the "
                "graph dataset's feature count (GraphCropDataset.model_overrides())."
            )
        regions = _regions_per_window(graph)
        if regions != self.config.n_regions:
            raise DataError(
                f"dfc_gnn: the graphs have {regions} regions, the model {self.config.n_regions}."
            )
        return graph_layout(graph, regions)

    def adjacency(self, graph, n_windows: int) -> torch.Tensor:
        """Weighted adjacency of every window, shape ``(n_windows, n_regions, n_regions)``."""
        r = self.config.n_regions
        weight = graph.edge_weight.float()
        if self.config.edge_weight == "absolute":
            weight = weight.abs()
        elif self.config.edge_weight == "binary":
            weight = torch.ones_like(weight)
        src, dst = graph.edge_index
        adjacency = torch.zeros((n_windows, r, r), device=weight.device)
        adjacency[torch.div(src, r, rounding_mode="floor"), src % r, dst % r] = weight
        return adjacency

    def prepare_features(
        self, x: torch.Tensor, n_windows: int, visible: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Node features as the input layer takes them (see ``feature_norm``).

        Parameters
        ----------
        x : Tensor, shape (N, in_features)
            Stored features then identity, nodes window by window.
        n_windows : int
            Windows in ``x``.
        visible : Tensor of bool, shape (N,) | None
            Nodes whose values may enter the per-window statistics (masked-feature
            pretraining leaves the hidden nodes out, so nothing of them leaks).

        Returns
        -------
        Tensor, shape (N, in_features), float32
        """
        x = x.float()
        c = self.config.n_content
        if not c or self.config.feature_norm == "none":
            return x
        r = self.config.n_regions
        content = x[:, :c].reshape(n_windows, r, c)
        weight = (
            torch.ones(n_windows, r, 1, device=x.device)
            if visible is None
            else visible.reshape(n_windows, r, 1).float()
        )
        count = weight.sum(1, keepdim=True).clamp_min(1.0)
        mean = (content * weight).sum(1, keepdim=True) / count
        var = ((content - mean) ** 2 * weight).sum(1, keepdim=True) / count
        content = (content - mean) / torch.sqrt(var + 1e-6)
        return torch.cat([content.reshape(-1, c), x[:, c:]], dim=1)

    def node_states(self, graph, n_windows: int, *, prepared: bool = False) -> torch.Tensor:
        """GIN node states (layer-normalised), shape ``(N, hidden)``; nodes window by window."""
        adjacency = self.adjacency(graph, n_windows)
        x = graph.x.float() if prepared else self.prepare_features(graph.x, n_windows)
        h = self.input(x).reshape(n_windows, self.config.n_regions, -1)
        for block in self.gin:
            h = block(h, adjacency)
        return self.node_norm(h).reshape(graph.x.shape[0], -1)

    def temporal_context(
        self,
        windows: torch.Tensor,
        layout: GraphLayout,
        *,
        window_mask: torch.Tensor | None = None,
        mask_token: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Temporal Transformer over each run's window embeddings.

        Parameters
        ----------
        windows : Tensor, shape (total_windows, hidden)
        layout : GraphLayout
        window_mask : Tensor of bool, shape (total_windows,) | None
            Windows whose embedding is replaced by ``mask_token`` (masked in time).
        mask_token : Tensor, shape (hidden,) | None

        Returns
        -------
        context : Tensor, shape (total_windows, hidden)
        subject : Tensor, shape (B, hidden)
        """
        from torch_geometric.utils import to_dense_batch

        if window_mask is not None:
            if mask_token is None:
                raise ConfigError("dfc_gnn: a window_mask needs a mask_token.")
            windows = torch.where(window_mask[:, None], mask_token.to(windows), windows)
        tokens = windows + sinusoidal_positions(layout.position, windows.shape[1]).to(windows)
        dense, present = to_dense_batch(tokens, layout.window_run, batch_size=layout.n_runs)
        cls = self.cls.expand(dense.shape[0], -1, -1).to(dense)
        sequence = torch.cat([cls, dense], dim=1)
        keep = torch.cat([present.new_ones(dense.shape[0], 1), present], dim=1)
        if isinstance(self.temporal, nn.TransformerEncoder):
            out = self.temporal(sequence, src_key_padding_mask=~keep)
        else:
            out = sequence
        out = self.norm(out)
        return out[:, 1:][present], out[:, 0]

    def encode(
        self,
        graph,
        *,
        window_mask: torch.Tensor | None = None,
        mask_token: torch.Tensor | None = None,
        prepared: bool = False,
    ) -> DFCEncoding:
        """Node states, window embeddings, temporal context and subject embeddings.

        ``window_mask`` and ``mask_token`` hide windows in time (see
        :meth:`temporal_context`); ``prepared`` says ``graph.x`` already went through
        :meth:`prepare_features`.
        """
        layout = self._check(graph)
        nodes = self.node_states(graph, layout.total_windows, prepared=prepared)
        windows = self.readout(nodes, graph.window, layout.total_windows)
        context, subject = self.temporal_context(
            windows, layout, window_mask=window_mask, mask_token=mask_token
        )
        return DFCEncoding(nodes, windows, context, subject, layout)

    def embed(self, graph) -> torch.Tensor:
        """Subject embeddings, shape ``(B, hidden)``."""
        return self.encode(graph).subject

    def forward(self, graph) -> torch.Tensor:
        return self.embed(graph)

    def training_loss(self, batch: dict) -> dict[str, torch.Tensor]:
        raise ConfigError(
            "dfc_gnn is an encoder: pretrain it with create_objective('masked_dfc', model), or "
            "put a head on it with ProbeModel.from_encoder(model, n_outputs=..., task=...)."
        )

    def example_input(self, batch_size: int = 1, n_windows: int = 5):
        """A batch of ``batch_size`` random runs of ``n_windows`` window graphs."""
        from torch_geometric.data import Batch

        from neuroai.fmri.graphs import window_graphs

        c = self.config
        runs = []
        for _ in range(batch_size):
            a = torch.randn(n_windows, c.n_regions, c.n_regions)
            dfc = torch.tanh(0.5 * (a + a.transpose(1, 2))).numpy()
            features = ("identity",) if c.n_identity else ()
            graphs = window_graphs(dfc, density=0.3, features=features)
            graphs.x = torch.randn(n_windows, c.n_regions, c.n_content).numpy()
            graphs.feature_names = [f"f{i}" for i in range(c.n_content)]
            runs.append(graphs.to_data())
        return Batch.from_data_list(runs)
