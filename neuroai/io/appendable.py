"""An ``.npy`` file written block by block along its first axis, its length unknown ahead.

Cohort stores (the graph dataset, shards) concatenate thousands of runs' arrays. Holding
them all to call ``np.concatenate`` costs memory in proportion to the cohort; a memory map
(``open_memmap``) needs the final length before the first run is read. :class:`NpyAppender`
writes a header with room for any length, appends each block's bytes as it comes, and
rewrites the header with the real shape when closed: memory is one block, and one file is
open, whatever the number of runs. The result is a plain ``.npy`` file (format 1.0) that
``np.load`` reads, memory-mapped or not.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: Room in the header for the shape's first number: any length up to 10**20 - 1.
_WIDEST = 10**20 - 1


def _header(dtype: np.dtype, shape: tuple[int, ...], size: int | None = None) -> bytes:
    """An ``.npy`` 1.0 header for ``shape``, space-padded to ``size`` bytes (or to 64)."""
    text = repr(
        {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    )
    body = text.encode("latin1")
    preamble = np.lib.format.magic(1, 0)
    if size is None:
        unpadded = len(preamble) + 2 + len(body) + 1
        size = -(-unpadded // 64) * 64
    padding = size - len(preamble) - 2 - len(body) - 1
    if padding < 0:
        raise ValueError(f"The .npy header of shape {shape} does not fit in {size} bytes.")
    length = size - len(preamble) - 2
    return preamble + length.to_bytes(2, "little") + body + b" " * padding + b"\n"


class NpyAppender:
    """Write an ``.npy`` file by appending blocks along the first axis.

    Parameters
    ----------
    path : path-like
        The file to write (created or truncated).
    dtype : dtype
        Element type of the array; blocks are cast to it.
    tail : tuple of int
        The shape after the first axis (every block must have it).

    Examples
    --------
    >>> with NpyAppender(path, np.float32, (3,)) as out:  # doctest: +SKIP
    ...     for run in runs:
    ...         out.append(run.features)        # (n_i, 3) each
    >>> np.load(path).shape                     # doctest: +SKIP
    (sum of n_i, 3)
    """

    def __init__(self, path: str | os.PathLike, dtype, tail: tuple[int, ...] = ()) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.tail = tuple(int(n) for n in tail)
        self.length = 0
        self._size = len(_header(self.dtype, (_WIDEST, *self.tail)))
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._file.write(_header(self.dtype, (0, *self.tail), self._size))

    def append(self, block) -> None:
        """Append ``block``, shape ``(n, *tail)``, cast to the file's dtype."""
        array = np.ascontiguousarray(block, dtype=self.dtype)
        if array.shape[1:] != self.tail:
            raise ValueError(
                f"{self.path}: a block of shape {array.shape} cannot extend an array of "
                f"shape (n, {', '.join(map(str, self.tail))})."
            )
        self._file.write(array.tobytes())
        self.length += array.shape[0]

    def close(self) -> None:
        """Write the final shape into the header and close the file."""
        if self._file.closed:
            return
        self._file.seek(0)
        self._file.write(_header(self.dtype, (self.length, *self.tail), self._size))
        self._file.close()

    def __enter__(self) -> NpyAppender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
