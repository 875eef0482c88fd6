"""Codebook statistics of a vector-quantised EEG model: what the codes say about the data.

A vector-quantised model (EEGFormer) assigns every patch of every channel of a window
one code of its codebook. Counting codes explains the model (EEGFormer's
interpretability analysis):

- :func:`run_codebook` applies the model to windows and returns each patch's code and
  the per-channel reconstruction and quantisation errors (also the anomaly scores);
- :func:`usage_by_group` counts codes per class (histograms of code usage);
- :func:`enrichment` ranks codes by how much more often they fire in one group of
  windows than in the others (log2 ratio of smoothed frequencies);
- :func:`channel_activity` gives, per channel and window, the share of patches that
  fall in a set of codes: where on the scalp and when those codes fire (a topomap per
  class, a channel x time map around labelled events).

Shapes: ``codes`` ``(n_windows, n_chans, n_patches)`` int; errors ``(n_windows, n_chans)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neuroai._logging import progress
from neuroai.errors import DataError


@dataclass
class CodebookRun:
    """A model applied to windows.

    Attributes
    ----------
    rows : ndarray, shape (n_windows,)
        Window-table rows, in order.
    codes : ndarray, shape (n_windows, n_chans, n_patches), int32
    reconstruction_error : ndarray, shape (n_windows, n_chans), float32
        Mean squared error of the reconstructed patches per channel.
    quantization_error : ndarray, shape (n_windows, n_chans), float32
        Mean squared distance of the encoded patches to their codes per channel
        (per code dimension).
    codebook_size : int
    """

    rows: np.ndarray
    codes: np.ndarray
    reconstruction_error: np.ndarray
    quantization_error: np.ndarray
    codebook_size: int


def run_codebook(
    model, base, rows: Sequence[int], *, batch_size: int = 32, device: str = "cpu"
) -> CodebookRun:
    """Codes and errors of ``rows`` of an :class:`~neuroai.eeg.dataset.EEGPatchDataset`.

    Parameters
    ----------
    model : NeuroModel
        A model with ``window_scores`` (EEGFormer), in eval mode.
    base : EEGPatchDataset
        The stores (row ``r`` of the window table is ``base[r]``).
    rows : sequence of int
        Windows to run.
    batch_size : int
        Windows per forward pass.
    device : str
        Where to run.
    """
    import torch

    from neuroai.training.eeg_data import iterate_windows

    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        raise DataError("run_codebook: no windows to run the model on.")
    codes, recon, quant = [], [], []
    model.eval()
    batches = iterate_windows(base, rows, batch_size)
    with torch.no_grad():
        for _, patches in progress(batches, desc="codes", total=-(-rows.size // batch_size)):
            scores = model.window_scores(patches.to(device))
            codes.append(scores["codes"].cpu().numpy().astype(np.int32))
            recon.append(scores["reconstruction_error"].float().cpu().numpy())
            quant.append(scores["quantization_error"].float().cpu().numpy())
    return CodebookRun(
        rows,
        np.concatenate(codes),
        np.concatenate(recon).astype(np.float32),
        np.concatenate(quant).astype(np.float32),
        int(model.config.codebook_size),
    )


def code_counts(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    """How often each code occurs in ``codes`` (any shape): ``(codebook_size,)`` int64."""
    return np.bincount(np.asarray(codes).ravel(), minlength=codebook_size).astype(np.int64)


def usage_by_group(
    codes: np.ndarray, groups: Sequence[str], codebook_size: int
) -> dict[str, np.ndarray]:
    """Code counts of the windows of each group (class): name -> ``(codebook_size,)``."""
    groups = np.asarray([str(g) for g in groups])
    if len(groups) != len(codes):
        raise DataError(f"usage_by_group: {len(groups)} groups for {len(codes)} windows.")
    return {
        name: code_counts(codes[groups == name], codebook_size)
        for name in dict.fromkeys(groups.tolist())
    }


def log_frequencies(counts: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """``log`` of smoothed code frequencies ``(counts + a) / (N + K a)``."""
    counts = np.asarray(counts, dtype=float)
    return np.log((counts + smoothing) / (counts.sum() + smoothing * counts.size))


def enrichment(inside: np.ndarray, outside: np.ndarray, *, smoothing: float = 1.0) -> np.ndarray:
    """log2 of a code's smoothed frequency inside a group over its frequency outside.

    Parameters
    ----------
    inside, outside : ndarray, shape (codebook_size,)
        Code counts in the group's windows and in the other windows.

    Returns
    -------
    ndarray, shape (codebook_size,)
        Positive where a code fires more often in the group.
    """
    return (log_frequencies(inside, smoothing) - log_frequencies(outside, smoothing)) / np.log(2)


def top_codes(
    inside: np.ndarray, outside: np.ndarray, k: int = 5, *, min_count: int = 5
) -> list[dict[str, float]]:
    """The ``k`` codes most enriched in a group (seen at least ``min_count`` times in it).

    Returns
    -------
    list of dict
        ``code``, ``log2_enrichment``, ``count_inside``, ``count_outside``, best first;
        only codes with positive enrichment.
    """
    scores = enrichment(inside, outside)
    order = [c for c in np.argsort(-scores) if inside[c] >= min_count and scores[c] > 0][:k]
    return [
        {
            "code": int(c),
            "log2_enrichment": float(scores[c]),
            "count_inside": int(inside[c]),
            "count_outside": int(outside[c]),
        }
        for c in order
    ]


def channel_activity(codes: np.ndarray, chosen: Sequence[int]) -> np.ndarray:
    """Share of each window's and channel's patches whose code is in ``chosen``.

    Parameters
    ----------
    codes : ndarray, shape (n_windows, n_chans, n_patches)
    chosen : sequence of int

    Returns
    -------
    ndarray, shape (n_windows, n_chans), float32, in [0, 1]
    """
    return (
        np.isin(codes, np.asarray(list(chosen), dtype=codes.dtype)).mean(axis=2).astype(np.float32)
    )
