"""dFC-GNN: a spatio-temporal graph network over sequences of dynamic-FC window graphs.

The encoder of the generative self-supervised dynamic-FC framework (issue 9), built on
the STAGIN backbone: Kim B-H, Ye JC, Kim J-J (2021). "Learning dynamic graph
representation of brain connectome with spatio-temporal attention", NeurIPS.
Reference code: https://github.com/egyptdj/stagin.

A run is a sequence of window graphs on the same nodes (regions): the edges of window
``w`` are the strongest ``density`` of its sliding-window FC (the graph dataset stage
ranks by |FC| by default, or by signed FC with ``graph_dataset.absolute: false``; STAGIN
keeps the top 30% by signed FC; :class:`~neuroai.training.graph_data.GraphCropDataset`
can lower the density), each edge carries its FC value and each node its features
(window statistics of its signal and one-hot region identity, see
:mod:`neuroai.fmri.graphs`; the statistics are z-scored across the regions of each
window, :math:`\\tilde x`). Per window, by default:

.. math::

    h^{(0)}_i = W_{in} \\tilde x_i, \\qquad
    h^{(l)}_i = h^{(l-1)}_i + \\mathrm{MLP}^{(l)}\\Big((1 + \\epsilon^{(l)}) \\bar h_i
        + \\sum_{j \\in N(i)} a_{ij} \\bar h_j\\Big), \\quad \\bar h = \\mathrm{LN}(h^{(l-1)})

with :math:`a_{ij}` the edge's FC value (0 for pairs that are not edges;
``edge_weight="binary"`` gives 1, STAGIN's binary adjacency): PyTorch Geometric's
``DenseGINConv`` on each window's adjacency, the GIN update of Xu et al. 2019 in
residual pre-norm form. STAGIN's adjacency holds self-loops and its layer adds
:math:`\\epsilon h_i`; that is this :math:`(1 + \\epsilon) h_i` term on an adjacency
without them, so the graphs store none. Then an attention readout per window
(``AttentionalAggregation``: :math:`g_w = \\sum_i \\mathrm{softmax}_i(a(h_i)) h_i`). The
window embeddings :math:`g_1 \\dots g_W`, with sinusoidal positions and a learned
``[CLS]`` token in front, go through a temporal Transformer (pre-LN); the subject
embedding is the normalised ``[CLS]`` output.

STAGIN's choices are options (the ``stagin`` preset sets them all; differences that
remain are listed in docs/dfc_gnn.md):

- ``node_features="identity"``: the input layer reads one-hot identity only (the
  window statistics still feed the time-stamp encoder);
- ``timestamp="gru"``: a GRU over each crop's windows (input: the data features of
  every region of the window) whose state at window ``w`` is concatenated to the
  input of every node of ``w`` (STAGIN's GRU reads the BOLD signal TR by TR from the
  start of the scan to the window's end);
- ``gin_form="stagin"``: :math:`h^{(l)} = \\mathrm{MLP}((1+\\epsilon) h_i + \\sum_j a_{ij} h_j)`
  with MLP Linear-BatchNorm-ReLU-Linear-BatchNorm-ReLU, :math:`\\epsilon` from 0, no
  residual or normalisation around it;
- ``readout="sero"`` / ``"garo"``: squeeze-excitation and graph-attention readouts
  (a sigmoid weight per node, :math:`g_w = \\mathrm{mean}_i(\\alpha_i h_i)`);
- ``temporal="every_layer"``: after every GIN layer its own readout and a Transformer
  over the windows (STAGIN's block: attention without skip connection, then LayerNorm,
  feed-forward with skip, LayerNorm; no positions), the outputs summed over windows;
  the subject embedding concatenates the layers' sums, so a linear head on it gives
  the logits of each layer summed, as STAGIN;
- ``orthogonality``: the weight of STAGIN's orthogonality regulariser on each GIN
  layer's node states (:func:`orthogonality_penalty`), added to the pretraining and
  fine-tuning losses (STAGIN: 1e-5).

Shapes:
    input: a PyG ``Batch`` of :class:`~neuroai.fmri.graphs.WindowSequence` graphs (or
    one): ``x`` ``(N, in_features)`` with ``N`` the windows of all runs times
    ``n_regions``, ``edge_index`` ``(2, E)`` (both directions of every edge),
    ``edge_weight`` ``(E,)``, ``window`` ``(N,)`` the global window of each node,
    ``batch`` ``(N,)`` the run, ``n_windows`` ``(B,)``. Output: ``(B, embed_dim)``
    subject embeddings (``hidden``, or ``gin_layers * hidden`` with
    ``temporal="every_layer"``).
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

READOUTS = ("attention", "mean", "sero", "garo")
FEATURE_NORMS = ("window", "none")
EDGE_WEIGHTS = ("signed", "absolute", "binary")
NODE_FEATURES = ("all", "identity")
TIMESTAMPS = ("none", "gru")
GIN_FORMS = ("residual", "stagin")
TEMPORAL = ("last", "every_layer")


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
        value, or 1 (STAGIN).
    node_features : {"all", "identity"}
        What the input layer reads of each node: every feature column, or the one-hot
        identity only (STAGIN; needs ``n_identity``).
    timestamp : {"none", "gru"}
        ``"gru"``: concatenate a GRU encoding of the crop's windows up to each window to
        its nodes' input (STAGIN's time-stamp encoding; needs data feature columns).
    gin_form : {"residual", "stagin"}
        Pre-LN residual GIN layers with a GELU MLP (with dropout), or STAGIN's
        ``MLP((1+eps) h_i + sum_j a_ij h_j)`` with Linear-BatchNorm-ReLU twice.
    hidden : int
        Width of node, window and subject embeddings (STAGIN: 128).
    gin_layers : int
        GIN layers (STAGIN: 4).
    readout : {"attention", "mean", "sero", "garo"}
        Window readout: attention pooling over nodes, their mean, or STAGIN's
        squeeze-excitation (SERO) or graph-attention (GARO) readout.
    temporal : {"last", "every_layer"}
        One temporal Transformer (with ``[CLS]``) on the last GIN layer, or STAGIN's
        readout and Transformer after every GIN layer, summed over windows and
        concatenated over layers.
    temporal_layers, heads : int
        Temporal Transformer depth (``"last"``; one per GIN layer with
        ``"every_layer"``) and attention heads.
    ff_mult : int
        Feed-forward width of the Transformer as a multiple of ``hidden``.
    dropout : float
        Dropout in the residual GIN MLPs, the Transformers and the SERO/GARO node
        weights (STAGIN: 0.1 in its Transformers and readouts; its 0.5 acts on the
        logits, here the probe head's ``dropout``).
    orthogonality : float
        Weight of STAGIN's orthogonality regulariser (1e-5 there; 0: off).
    """

    in_features: int = 98
    n_identity: int = 94
    n_regions: int = 94
    feature_norm: str = "window"
    edge_weight: str = "signed"
    node_features: str = "all"
    timestamp: str = "none"
    gin_form: str = "residual"
    hidden: int = 128
    gin_layers: int = 4
    readout: str = "attention"
    temporal: str = "last"
    temporal_layers: int = 1
    heads: int = 1
    ff_mult: int = 2
    dropout: float = 0.5
    orthogonality: float = 0.0

    def validate(self) -> None:
        check_option("readout", self.readout, READOUTS)
        check_option("edge_weight", self.edge_weight, EDGE_WEIGHTS)
        check_option("feature_norm", self.feature_norm, FEATURE_NORMS)
        check_option("node_features", self.node_features, NODE_FEATURES)
        check_option("timestamp", self.timestamp, TIMESTAMPS)
        check_option("gin_form", self.gin_form, GIN_FORMS)
        check_option("temporal", self.temporal, TEMPORAL)
        if self.orthogonality < 0:
            raise ConfigError(f"dfc_gnn: orthogonality must be >= 0, got {self.orthogonality}.")
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

        if self.node_features == "identity" and not self.n_identity:
            raise ConfigError(
                "dfc_gnn: node_features='identity' needs one-hot identity columns, but the "
                "graph dataset has none (n_identity=0); build it with the 'identity' feature."
            )
        if self.node_features == "identity" and self.timestamp == "none":
            raise ConfigError(
                "dfc_gnn: node_features='identity' with timestamp='none' reads no data at all "
                "from the nodes; add timestamp='gru' (STAGIN) or use node_features='all'."
            )
        if self.timestamp == "gru" and not self.n_content:
            raise ConfigError(
                "dfc_gnn: timestamp='gru' encodes the windows' data features, but the graph "
                "dataset has none besides identity; build it with 'timeseries' features."
            )

    @property
    def n_content(self) -> int:
        """Node feature columns that are data (not identity): what pretraining reconstructs."""
        return self.in_features - self.n_identity

    @property
    def embed_dim(self) -> int:
        """Width of the subject embedding."""
        return self.hidden * (self.gin_layers if self.temporal == "every_layer" else 1)


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


def orthogonality_penalty(h: torch.Tensor) -> torch.Tensor:
    """STAGIN's orthogonality regulariser of one layer's node states.

    For each window, the Gram matrix :math:`M = H H^T` of its node states, each row
    divided by its largest entry, minus the identity: the Frobenius norm of its upper
    triangle (diagonal included), averaged over windows. It is 0 when the nodes' states
    are orthogonal. A row whose largest entry is 0 (a node whose state is all zeros)
    is divided by 1e-6 instead (STAGIN's would be NaN).

    Parameters
    ----------
    h : Tensor, shape (n_windows, n_regions, hidden)

    Returns
    -------
    Tensor, shape ()
    """
    h = h.float()
    gram = h @ h.transpose(1, 2)
    scaled = gram / gram.amax(-1, keepdim=True).clamp_min(1e-6)
    eye = torch.eye(h.shape[1], device=h.device)
    return torch.triu(scaled - eye).flatten(1).norm(dim=1).mean()


@dataclass
class DFCEncoding:
    """Everything the encoder computes for a batch (pretraining decoders read it).

    Attributes
    ----------
    nodes : Tensor, shape (N, hidden)
        Node states after the GIN layers (window by window).
    windows : Tensor, shape (total_windows, hidden)
        Readout of each window graph (of the last layer; before the temporal Transformer).
    context : Tensor, shape (total_windows, hidden)
        Temporal Transformer output at each window (with ``temporal="every_layer"``, the
        mean over the layers' Transformers, as their logits are summed).
    subject : Tensor, shape (B, embed_dim)
        Subject embedding.
    layout : GraphLayout
        Run and position of each window.
    orthogonality : Tensor, shape ()
        STAGIN's orthogonality regulariser summed over the GIN layers (0 when the
        config's ``orthogonality`` is 0: not computed).
    """

    nodes: torch.Tensor
    windows: torch.Tensor
    context: torch.Tensor
    subject: torch.Tensor
    layout: GraphLayout
    orthogonality: torch.Tensor


# -- blocks -------------------------------------------------------------------------------


class _NodeBatchNorm(nn.BatchNorm1d):
    """BatchNorm over every node of every window (``(..., features)`` in and out)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class GINBlock(nn.Module):
    """One GIN layer on the windows' adjacency (PyG ``DenseGINConv``).

    ``form="residual"``: pre-norm residual, ``h + GIN(LN(h))`` with a GELU MLP and
    dropout. ``form="stagin"``: ``GIN(h)`` with STAGIN's MLP (Linear, BatchNorm, ReLU,
    Linear, BatchNorm, ReLU) and epsilon starting at 0. Each window is a small dense
    graph (``n_regions`` nodes, 30% of the edges), so the neighbour sum is one batched
    matrix product per layer, as in STAGIN; on CPU it is ten times faster than sparse
    products or per-edge messages at this density, and it runs in bf16 on GPUs.
    """

    def __init__(self, hidden: int, dropout: float, form: str = "residual") -> None:
        super().__init__()
        from torch_geometric.nn.dense import DenseGINConv

        self.form = form
        if form == "stagin":
            mlp = nn.Sequential(
                nn.Linear(hidden, hidden),
                _NodeBatchNorm(hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                _NodeBatchNorm(hidden),
                nn.ReLU(),
            )
            self.norm = nn.Identity()
        else:
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
        out = self.conv(self.norm(h), adjacency.to(h.dtype))
        return out if self.form == "stagin" else h + out


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

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h``: (n_windows, n_regions, hidden) -> (n_windows, hidden)."""
        w, r, f = h.shape
        index = torch.arange(w, device=h.device).repeat_interleave(r)
        return self.pool(h.reshape(w * r, f), index=index, dim_size=w)


class SERO(nn.Module):
    """STAGIN's squeeze-excitation readout: one sigmoid weight per region from the mean.

    .. math:: \\alpha = \\sigma(W_2\\, \\mathrm{GELU}(\\mathrm{BN}(W_1 \\bar h))), \\qquad
        g = \\mathrm{mean}_i\\, \\mathrm{drop}(\\alpha_i)\\, h_i, \\quad \\bar h = \\mathrm{mean}_i h_i
    """

    def __init__(self, hidden: int, n_regions: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.GELU())
        self.attend = nn.Linear(hidden, n_regions)
        self.dropout = nn.Dropout(dropout)

    def weights(self, h: torch.Tensor) -> torch.Tensor:
        """Node weights in (0, 1), shape (n_windows, n_regions)."""
        return torch.sigmoid(self.attend(self.embed(h.mean(1))))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h * self.dropout(self.weights(h)).unsqueeze(-1)).mean(1)


class GARO(nn.Module):
    """STAGIN's graph-attention readout: the mean node state queries every node.

    .. math:: \\alpha_i = \\sigma\\big((W_q \\bar h)^\\top (W_k h_i) / \\sqrt{d}\\big), \\qquad
        g = \\mathrm{mean}_i\\, \\mathrm{drop}(\\alpha_i)\\, h_i
    """

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def weights(self, h: torch.Tensor) -> torch.Tensor:
        q = self.query(h.mean(1, keepdim=True))
        k = self.key(h)
        return torch.sigmoid((q @ k.transpose(1, 2)).squeeze(1) / math.sqrt(q.shape[-1]))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h * self.dropout(self.weights(h)).unsqueeze(-1)).mean(1)


def build_readout(kind: str, hidden: int, n_regions: int, dropout: float) -> nn.Module:
    """The window readout ``kind`` (``(n_windows, n_regions, hidden) -> (n_windows, hidden)``)."""
    if kind == "sero":
        return SERO(hidden, n_regions, dropout)
    if kind == "garo":
        return GARO(hidden, dropout)
    return WindowReadout(hidden, kind)


class STAGINTransformer(nn.Module):
    """STAGIN's Transformer block over a run's windows (no positions, no ``[CLS]``).

    ``a = LN(drop(MHA(x, x, x)))`` (no skip connection around attention), then
    ``LN(a + drop(FF(a)))`` with a ReLU feed-forward of ``ff`` units.
    """

    def __init__(self, hidden: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff, hidden)
        )

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: (B, W, hidden); ``padding``: (B, W) True where there is no window."""
        a = self.attention(x, x, x, key_padding_mask=padding, need_weights=False)[0]
        a = self.norm1(self.dropout1(a))
        return self.norm2(a + self.dropout2(self.mlp(a)))


class TimestampGRU(nn.Module):
    """A GRU over each run's windows; its state at every window (STAGIN's time stamp)."""

    def __init__(self, n_inputs: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(n_inputs, hidden, batch_first=True)

    def forward(self, windows: torch.Tensor, layout: GraphLayout) -> torch.Tensor:
        """``windows``: (total_windows, n_inputs) in run order -> (total_windows, hidden)."""
        from torch_geometric.utils import to_dense_batch

        dense, present = to_dense_batch(windows, layout.window_run, batch_size=layout.n_runs)
        out = self.gru(dense)[0]  # causal: padding after a run's end changes nothing before it
        return out[present]


# -- the model ----------------------------------------------------------------------------

#: STAGIN's choices (egyptdj/stagin defaults: 4 x 128, one head, SERO, orthogonality 1e-5).
STAGIN = {
    "hidden": 128,
    "gin_layers": 4,
    "heads": 1,
    "ff_mult": 2,
    "dropout": 0.1,
    "edge_weight": "binary",
    "node_features": "identity",
    "timestamp": "gru",
    "gin_form": "stagin",
    "readout": "sero",
    "temporal": "every_layer",
    "orthogonality": 1e-5,
}


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
        # STAGIN's architecture (docs/dfc_gnn.md lists what still differs).
        "stagin": STAGIN,
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
        width = config.n_identity if config.node_features == "identity" else config.in_features
        self.timestamp = (
            TimestampGRU(config.n_regions * config.n_content, h)
            if config.timestamp == "gru"
            else None
        )
        self.input = nn.Linear(width + (h if self.timestamp is not None else 0), h)
        self.gin = nn.ModuleList(
            GINBlock(h, config.dropout, config.gin_form) for _ in range(config.gin_layers)
        )
        if config.temporal == "every_layer":
            self.readouts = nn.ModuleList(
                build_readout(config.readout, h, config.n_regions, config.dropout)
                for _ in range(config.gin_layers)
            )
            self.transformers = nn.ModuleList(
                STAGINTransformer(h, config.heads, config.ff_mult * h, config.dropout)
                for _ in range(config.gin_layers)
            )
            return
        self.node_norm = nn.LayerNorm(h)
        self.readout = build_readout(config.readout, h, config.n_regions, config.dropout)
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
        return self.config.embed_dim

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

    def node_inputs(self, x: torch.Tensor, layout: GraphLayout) -> torch.Tensor:
        """Input-layer states ``h^(0)``, shape ``(total_windows, n_regions, hidden)``.

        ``x`` (N, in_features) is prepared (:meth:`prepare_features`; masked values
        already replaced): the input layer reads all of it or its identity columns,
        with the time-stamp encoding of each node's window appended.
        """
        c, r = self.config.n_content, self.config.n_regions
        inputs = x[:, c:] if self.config.node_features == "identity" else x
        if self.timestamp is not None:
            per_window = x[:, :c].reshape(layout.total_windows, r * c)
            stamps = self.timestamp(per_window, layout)
            inputs = torch.cat([inputs, stamps.repeat_interleave(r, dim=0)], dim=1)
        return self.input(inputs).reshape(layout.total_windows, r, -1)

    def gin_states(
        self, graph, layout: GraphLayout, *, prepared: bool = False
    ) -> list[torch.Tensor]:
        """Node states after each GIN layer, each ``(total_windows, n_regions, hidden)``."""
        adjacency = self.adjacency(graph, layout.total_windows)
        x = graph.x.float() if prepared else self.prepare_features(graph.x, layout.total_windows)
        h = self.node_inputs(x, layout)
        states = []
        for block in self.gin:
            h = block(h, adjacency)
            states.append(h)
        return states

    def node_states(self, graph, n_windows: int, *, prepared: bool = False) -> torch.Tensor:
        """Node states of the last GIN layer, shape ``(N, hidden)``; nodes window by window
        (layer-normalised with ``temporal="last"``)."""
        layout = self._check(graph)
        if layout.total_windows != n_windows:
            raise DataError(
                f"dfc_gnn: the graph has {layout.total_windows} windows, not {n_windows}."
            )
        h = self.gin_states(graph, layout, prepared=prepared)[-1]
        if self.config.temporal == "last":
            h = self.node_norm(h)
        return h.reshape(graph.x.shape[0], -1)

    @staticmethod
    def _hide(windows, window_mask, mask_token):
        if window_mask is None:
            return windows
        if mask_token is None:
            raise ConfigError("dfc_gnn: a window_mask needs a mask_token.")
        return torch.where(window_mask[:, None], mask_token.to(windows), windows)

    def temporal_context(
        self,
        windows: torch.Tensor,
        layout: GraphLayout,
        *,
        window_mask: torch.Tensor | None = None,
        mask_token: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Temporal Transformer over each run's window embeddings (``temporal="last"``).

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

        windows = self._hide(windows, window_mask, mask_token)
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

    def layer_context(
        self,
        layer: int,
        windows: torch.Tensor,
        layout: GraphLayout,
        *,
        window_mask: torch.Tensor | None = None,
        mask_token: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """STAGIN's Transformer of GIN layer ``layer`` (``temporal="every_layer"``).

        Returns the output at each window ``(total_windows, hidden)`` and its sum over
        each run's windows ``(B, hidden)`` (STAGIN's ``cls_token="sum"``).
        """
        from torch_geometric.utils import to_dense_batch

        windows = self._hide(windows, window_mask, mask_token)
        dense, present = to_dense_batch(windows, layout.window_run, batch_size=layout.n_runs)
        out = self.transformers[layer](dense, ~present)
        return out[present], (out * present.unsqueeze(-1)).sum(1)

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
        :meth:`temporal_context`; with ``temporal="every_layer"`` from every layer's
        Transformer); ``prepared`` says ``graph.x`` already went through
        :meth:`prepare_features`.
        """
        layout = self._check(graph)
        states = self.gin_states(graph, layout, prepared=prepared)
        if self.config.orthogonality:
            orthogonality = sum(orthogonality_penalty(h) for h in states)
        else:
            orthogonality = states[-1].new_zeros(())
        hide = {"window_mask": window_mask, "mask_token": mask_token}
        if self.config.temporal == "every_layer":
            latents, contexts = [], []
            for layer, h in enumerate(states):
                windows = self.readouts[layer](h)
                context, latent = self.layer_context(layer, windows, layout, **hide)
                latents.append(latent)
                contexts.append(context)
            nodes = states[-1]
            context = torch.stack(contexts).mean(0)
            subject = torch.cat(latents, dim=1)
        else:
            nodes = self.node_norm(states[-1])
            windows = self.readout(nodes)
            context, subject = self.temporal_context(windows, layout, **hide)
        nodes = nodes.reshape(graph.x.shape[0], -1)
        return DFCEncoding(nodes, windows, context, subject, layout, orthogonality)

    def embed(self, graph) -> torch.Tensor:
        """Subject embeddings, shape ``(B, embed_dim)``."""
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
