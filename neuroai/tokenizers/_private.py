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


class NpyStream:
    """Write a ``.npy`` file chunk by chunk along its first axis, without memory-mapping it.

    A memory map of the output would count every page written towards the
    process's resident memory; appending bytes keeps memory flat in the
    length of the array.

    Parameters
    ----------
    handle : binary file
        Open for writing, positioned at the start.
    shape : tuple of int
        Shape of the whole array.
    dtype : numpy dtype
    """

    def __init__(self, handle, shape: tuple[int, ...], dtype) -> None:
        import numpy as np

        self.handle, self.shape, self.dtype = handle, tuple(shape), np.dtype(dtype)
        self.rows = 0
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": self.shape,
        }
        np.lib.format.write_array_header_1_0(handle, header)

    def write(self, chunk) -> None:
        """Append rows (an array of shape (k, *shape[1:]))."""
        import numpy as np

        chunk = np.ascontiguousarray(chunk, dtype=self.dtype)
        if chunk.shape[1:] != self.shape[1:] or self.rows + len(chunk) > self.shape[0]:
            raise ValueError(
                f"Chunk of shape {chunk.shape} does not fit rows {self.rows}.. of {self.shape}."
            )
        self.handle.write(chunk.tobytes())
        self.rows += len(chunk)

    def close(self) -> None:
        """Check that every row was written."""
        if self.rows != self.shape[0]:
            raise ValueError(f"Only {self.rows} of {self.shape[0]} rows were written.")
