"""Helpers of the tokenizers package (not public API)."""

from __future__ import annotations

from neuroai.errors import ConfigError, check_option

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto"):
    """A :class:`torch.device`: CUDA when ``"auto"`` finds one, else the CPU.

    Raises
    ------
    ConfigError
        ``"cuda"`` asked on a machine without a CUDA device, or an unknown name.
    """
    import torch

    name = str(device).split(":", 1)[0]
    check_option("device", name, DEVICES)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' was asked but torch sees no CUDA device on this machine; "
            "use device 'auto' (CUDA when present, else CPU) or 'cpu'."
        )
    return torch.device(device)


def seeded_generator(seed: int):
    """A CPU :class:`torch.Generator` seeded with ``seed``."""
    import torch

    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return generator


def check_positive(name: str, value: int) -> int:
    """``value`` as an int, or :class:`ConfigError` when it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    return value
