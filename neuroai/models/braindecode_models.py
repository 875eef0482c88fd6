"""braindecode's published EEG networks as encoders our engine trains (family ``braindecode``).

braindecode (Schirrmeister et al. 2017 and successors) ships the reference PyTorch
versions of the published compact EEG networks: ``ShallowFBCSPNet`` and ``Deep4Net``
(Schirrmeister et al. 2017), ``EEGNetv4`` (Lawhern et al. 2018), ``EEGConformer``,
``ATCNet`` and more. This family wraps one of them, named in the config, so that it
trains through the same engine, split, step budget and seed as EEGFormer's probe,
fine-tune and scratch modes (``neuroai.pipelines.eegformer_finetune``, modes
``braindecode.<ClassName>``) and is saved, loaded and evaluated like every other model.

How a braindecode network becomes an encoder:

- it is built with ``n_chans``, ``n_times`` (the samples the store's time patches
  cover) and ``sfreq`` of the patch store, ``n_outputs=2`` (a placeholder, see next),
  ``final_conv_length="auto"`` where the class takes it (the classifier spans the
  whole remaining time axis, as braindecode recommends for fixed-length windows) and
  ``add_log_softmax=False`` where it takes that (our losses take logits);
- its ``final_layer`` (the classification layer every braindecode network ends with) is
  replaced by a flatten, so ``embed(x)`` is the input the classifier would have seen,
  ``(B, embed_dim)``; the probe's linear head plays the classifier. For the networks
  whose classifier is a convolution over the whole remaining time axis (ShallowFBCSPNet,
  Deep4Net, EEGNetv4), a linear layer on the flattened map is the same function:
  ``tests/test_braindecode_models.py`` copies braindecode's own classifier weights into
  a linear head and checks the outputs equal braindecode's network's.
- the input is the store's time patches ``(B, n_chans, n_time_patches, patch_len)``,
  put back together into the window's signal ``(B, n_chans, n_samples)``, as for our
  :class:`~neuroai.models.eegnet.EEGNet`.

braindecode is an optional dependency (``pip install "neuroai[braindecode]"``, pinned to
the 0.8 series: braindecode 1.x imports torchaudio, whose compiled library does not
load with the torch this project pins). The module imports without it; building a
model without it raises :class:`~neuroai.errors.ConfigError` saying what to install.
The braindecode version a model was built with is kept in its config
(``library_version``); loading it under another version logs a warning, and a network
whose layers changed between versions fails on its weights, naming the folder.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from neuroai import get_logger
from neuroai.errors import ConfigError
from neuroai.models.base import NeuroModel
from neuroai.models.config import ModelConfig
from neuroai.models.eegnet import TimePatchGeometry, patches_to_signal
from neuroai.models.registry import register_model

logger = get_logger("models.braindecode")

#: Fine-tuning modes ``braindecode.<ClassName>`` train this family with that network.
MODE_PREFIX = "braindecode."
#: What ``pip`` needs for this family (the extra pins it).
REQUIREMENT = 'pip install "neuroai[braindecode]"  (braindecode>=0.8,<0.9)'
#: Constructor arguments the wrapper sets itself (from the store), not the config's ``kwargs``.
_SET_BY_US = ("n_chans", "n_outputs", "n_times", "sfreq", "chs_info", "input_window_seconds")
_DEPRECATED = ("in_chans", "n_classes", "input_window_samples", "n_channels")


def is_braindecode_mode(mode: str) -> bool:
    """Whether a fine-tuning mode names a braindecode network (``braindecode.<ClassName>``)."""
    return mode.startswith(MODE_PREFIX)


def network_name(mode: str) -> str:
    """The braindecode class a ``braindecode.<ClassName>`` mode names."""
    return mode[len(MODE_PREFIX) :]


def _braindecode():
    try:
        import braindecode
        import braindecode.models
    except ImportError as exc:
        raise ConfigError(
            f"A braindecode network was asked for, but braindecode does not import here "
            f"({exc}). Install it: {REQUIREMENT}."
        ) from exc
    return braindecode


def available_networks() -> list[str]:
    """Names of the networks this braindecode offers (classes in ``braindecode.models``)."""
    models = _braindecode().models
    names = []
    for name in dir(models):
        obj = getattr(models, name)
        if (
            inspect.isclass(obj)
            and issubclass(obj, nn.Module)
            and "n_chans" in inspect.signature(obj).parameters
        ):
            names.append(name)
    return sorted(names)


def network_class(name: str) -> type[nn.Module]:
    """The braindecode class called ``name``; a clear error for an unknown one."""
    names = available_networks()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"braindecode {_braindecode().__version__} has no network {name!r}.{hint} "
            f"Networks: {', '.join(names)}."
        )
    return getattr(_braindecode().models, name)


@dataclass
class BraindecodeConfig(TimePatchGeometry, ModelConfig):
    """Which braindecode network, and the store's window geometry.

    Attributes
    ----------
    network : str
        Class name in ``braindecode.models`` (``ShallowFBCSPNet``, ``EEGNetv4`` ...).
    n_chans : int
        Electrodes per window.
    n_times : int
        Samples per window (the store's ``window_samples``).
    patch_len, patch_stride : int
        The store's time patches, in samples (``patch_stride <= patch_len``).
    sfreq : float
        Sampling rate of the windows, Hz.
    kwargs : dict
        Further constructor arguments of the network (``drop_prob``, ``n_filters_time``
        ...), JSON values only.
    library_version : str
        braindecode's version when the model was built (filled in then; informative).
    """

    network: str = "ShallowFBCSPNet"
    n_chans: int = 22
    n_times: int = 3000
    patch_len: int = 50
    patch_stride: int = 50
    sfreq: float = 250.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    library_version: str = ""

    def validate(self) -> None:
        bad = [
            n for n in ("n_chans", "n_times", "patch_len", "patch_stride") if getattr(self, n) < 1
        ]
        if bad or self.sfreq <= 0:
            raise ConfigError(f"braindecode model: {', '.join(bad) or 'sfreq'} must be positive.")
        if self.patch_stride > self.patch_len or self.n_time_patches < 1:
            raise ConfigError(
                f"braindecode model: time patches of {self.patch_len} samples every "
                f"{self.patch_stride} in windows of {self.n_times} cannot give the whole "
                "signal; build the store with patch_stride <= patch_len <= window_samples."
            )
        clash = sorted(set(self.kwargs) & set(_SET_BY_US + _DEPRECATED))
        if clash:
            raise ConfigError(
                f"braindecode model kwargs {clash} are set from the patch store (n_chans, "
                "n_times, sfreq) or by the head (n_outputs); remove them from kwargs."
            )


def _build_network(config: BraindecodeConfig) -> nn.Module:
    cls = network_class(config.network)
    accepted = inspect.signature(cls).parameters
    arguments: dict[str, Any] = {
        "n_chans": config.n_chans,
        "n_outputs": 2,
        "n_times": config.n_samples,
    }
    if "sfreq" in accepted:
        arguments["sfreq"] = config.sfreq
    if "input_window_seconds" in accepted:
        arguments["input_window_seconds"] = config.n_samples / config.sfreq
    for length in ("final_conv_length", "final_fc_length"):
        if length in accepted:
            arguments[length] = "auto"
    if "add_log_softmax" in accepted:
        arguments["add_log_softmax"] = False
    unknown = sorted(set(config.kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            f"braindecode {config.network} has no argument {', '.join(map(repr, unknown))}. "
            f"Its arguments: {', '.join(p for p in accepted if p not in _DEPRECATED)}."
        )
    arguments.update(config.kwargs)
    try:
        return cls(**arguments)
    except (ValueError, TypeError, RuntimeError, AssertionError) as exc:
        raise ConfigError(
            f"braindecode {config.network} cannot be built for windows of {config.n_chans} "
            f"channels x {config.n_samples} samples at {config.sfreq:g} Hz: {exc}"
        ) from exc


#: Same sizes in both presets: the network's own defaults are the published ones.
PRESETS = {"demo": {}, "paper": {}}


@register_model(
    "braindecode",
    config=BraindecodeConfig,
    presets=PRESETS,
    description="A braindecode network (ShallowFBCSPNet, EEGNetv4 ...) as an EEG baseline",
)
class BraindecodeEncoder(NeuroModel):
    """A braindecode network without its classifier (see the module docstring).

    Parameters
    ----------
    config : BraindecodeConfig
        The network's name, arguments and the store's window geometry.
    """

    modality = "eeg"
    item_ndim = 3  # one window: (n_chans, n_time_patches, patch_len)

    def __init__(self, config: BraindecodeConfig) -> None:
        version = _braindecode().__version__
        if config.library_version and config.library_version != version:
            logger.warning(
                "This %s was built with braindecode %s; braindecode %s is installed.",
                config.network,
                config.library_version,
                version,
            )
        config.library_version = config.library_version or version
        super().__init__(config)
        self.network = _build_network(config)
        if not isinstance(getattr(self.network, "final_layer", None), nn.Module):
            raise ConfigError(
                f"braindecode {config.network} has no final_layer to stand in for, so it "
                "cannot serve as an encoder under our heads. Use ShallowFBCSPNet, Deep4Net, "
                "EEGNetv4 or another network that ends in final_layer."
            )
        self.network.final_layer = nn.Flatten()
        was_training = self.network.training
        self.network.eval()
        try:
            with torch.no_grad():
                probe = torch.zeros(2, config.n_chans, config.n_samples)
                self._embed_dim = int(self.network(probe).reshape(2, -1).shape[1])
        except Exception as exc:  # a third-party network: any failure means "cannot use it"
            raise ConfigError(
                f"braindecode {config.network} does not run as an encoder on windows of "
                f"{config.n_chans} channels x {config.n_samples} samples at {config.sfreq:g} Hz "
                f"once its final_layer is taken off ({type(exc).__name__}: {exc}). "
                "ShallowFBCSPNet, Deep4Net and EEGNetv4 are the tested ones."
            ) from exc
        self.network.train(was_training)

    @property
    def embed_dim(self) -> int:
        return self._embed_dim

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        c = self.config
        return torch.randn(batch_size, c.n_chans, c.n_time_patches, c.patch_len)

    def signal(self, x: torch.Tensor) -> torch.Tensor:
        """The windows' signal ``(B, n_chans, n_samples)`` from their time patches."""
        c = self.config
        return patches_to_signal(
            x, c.n_chans, c.n_time_patches, c.patch_len, c.patch_stride, who=c.network
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(self.signal(x)).reshape(x.shape[0], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)


def baseline_config(network: str, layout: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A braindecode model's config for windows of the stores' ``layout`` (``store_layout``)."""
    return {
        "network": network,
        "n_chans": int(layout["n_chans"]),
        "n_times": int(layout["n_times"]),
        "patch_len": int(layout["patch_len"]),
        "patch_stride": int(layout["patch_stride"]),
        "sfreq": float(layout["sfreq"]),
        "kwargs": dict(kwargs),
    }
