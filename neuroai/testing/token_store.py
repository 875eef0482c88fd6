"""Tiny token stores (the volume-token stage's format) for TABLeT tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neuroai.io.store import write_artifact


def write_token_store(
    path: str | os.PathLike,
    *,
    n_frames: int = 7,
    n_tokens: int = 5,
    token_dim: int = 12,
    tr: float = 2.0,
    seed: int = 0,
    offset: float = 0.0,
) -> Path:
    """Write a random ``(n_frames, n_tokens, token_dim)`` float16 token store with provenance.

    The store's record looks like the ``tokens`` stage's (layout with ``n_tokens`` and
    ``token_dim``, ``tr`` in seconds), so :func:`neuroai.tokenizers.read_token_store`
    accepts it. ``offset`` shifts every value (a label the tests can learn).
    """
    rng = np.random.default_rng(seed)
    # Smooth in time and shared across tokens, so masked tokens are predictable.
    base = rng.standard_normal((n_frames, 1, token_dim)).cumsum(0) * 0.3
    tokens = (base + 0.5 * rng.standard_normal((n_frames, n_tokens, token_dim)) + offset).astype(
        np.float16
    )

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, tokens, allow_pickle=False)

    extra = {
        "layout": {"n_tokens": n_tokens, "token_dim": token_dim},
        "shape": list(tokens.shape),
        "dtype": "float16",
        "n_frames": n_frames,
        "tr": tr,
    }
    return write_artifact(path, _write, stage="tokens", params={}, extra=extra)
