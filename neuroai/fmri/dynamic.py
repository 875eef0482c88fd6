"""Dynamic functional connectivity: connectivity in sliding windows.

Window ``k`` covers time points ``[k * step, k * step + window)``; the STAGIN
defaults (Kim et al. 2021) are a window of 50 TRs and a step of 3 TRs.

Correlation and covariance (empirical, as ``np.corrcoef`` / ``np.cov`` per
window) use the overlap between windows: moving by ``step`` adds ``step``
volumes and drops ``step``, so each window's cross-products are the previous
window's plus a rank-``2 * step`` update instead of a new
``window x n_regions^2`` product. A compiled kernel (numba; segments of
windows in parallel threads) applies the update, the centring and the scaling
in one pass that writes each output matrix once; the cross-products are
recomputed exactly every ``resync`` windows so rounding cannot drift. Small
outputs (under :data:`KERNEL_MIN_ENTRIES` values) and installations without
numba use a vectorised batched-matmul path that gives the same numbers. No
Python loop runs over windows.

Partial correlation and precision need an invertible covariance, which a
window shorter than the number of regions does not give: they (and, on
request, correlation and covariance) use the Ledoit-Wolf shrunk covariance of
each window, as :func:`neuroai.fmri.connectivity` does for a whole run, computed
for blocks of windows at once.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from neuroai._logging import get_logger
from neuroai._windows import window_starts
from neuroai.errors import ConfigError, DataError, check_option
from neuroai.fmri.connectivity import KINDS

logger = get_logger(__name__)

ESTIMATORS = ("empirical", "ledoit_wolf")
#: STAGIN's window and step, in TRs.
STAGIN_WINDOW = 50
STAGIN_STEP = 3

#: Whether the compiled kernel is available (numba is optional: the vectorised
#: numpy path gives the same results). numba is imported on first use.
HAS_NUMBA = importlib.util.find_spec("numba") is not None
#: Outputs with fewer entries than this use the numpy path: for them, importing numba
#: and loading the compiled kernel costs more than it saves.
KERNEL_MIN_ENTRIES = 2**24


def _prepare(ts: np.ndarray) -> np.ndarray:
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 2:
        raise DataError(
            "Dynamic connectivity needs time series of shape (n_timepoints, n_regions); "
            f"got shape {ts.shape}."
        )
    if not np.isfinite(ts).all():
        raise DataError("Dynamic connectivity input contains NaN or Inf values.")
    return ts


def dynamic_connectivity(
    ts: np.ndarray,
    window: int = STAGIN_WINDOW,
    step: int = STAGIN_STEP,
    kind: str = "correlation",
    *,
    fisher_z: bool = False,
    estimator: str | None = None,
    dtype=np.float64,
    resync: int = 64,
) -> np.ndarray:
    """Connectivity in sliding windows.

    Parameters
    ----------
    ts : ndarray, shape (n_timepoints, n_regions)
        Region time series.
    window : int
        Window length in TRs (50 in STAGIN).
    step : int
        Step between window starts in TRs (3 in STAGIN).
    kind : {"correlation", "partial correlation", "covariance", "precision"}
        The measure in each window.
    fisher_z : bool
        Fisher z-transform (``arctanh``) correlations; the diagonal becomes 0.
    estimator : {"empirical", "ledoit_wolf"} | None
        Covariance estimator. ``None``: empirical for correlation and
        covariance (``np.corrcoef`` / ``np.cov`` of each window, ddof=1), Ledoit-Wolf for
        partial correlation and precision (needed when the window is shorter
        than the number of regions; equal to :func:`neuroai.fmri.connectivity`
        of the window).
    dtype : numpy dtype
        Output type (``float32`` halves the memory; computed in float64).
    resync : int
        Recompute cross-products exactly every ``resync`` windows (empirical path).

    Returns
    -------
    ndarray, shape (n_windows, n_regions, n_regions)
        With ``n_windows = (n_timepoints - window) // step + 1``. A region that
        is constant within a window has 0 connectivity there (np.corrcoef would
        give NaN), and a logged warning says how many such windows there are.

    Raises
    ------
    DataError
        Run shorter than the window, NaN/Inf, wrong shape.
    ConfigError
        Unknown kind or estimator, Fisher z on a non-correlation kind, a
        singular empirical covariance requested for partial correlation.
    """
    check_option("kind", kind, KINDS)
    if estimator is None:
        estimator = "empirical" if kind in ("correlation", "covariance") else "ledoit_wolf"
    check_option("estimator", estimator, ESTIMATORS)
    if fisher_z and kind not in ("correlation", "partial correlation"):
        raise ConfigError(f"fisher_z applies to correlations, not to kind={kind!r}.")
    if estimator == "empirical" and kind in ("partial correlation", "precision"):
        raise ConfigError(
            f"kind={kind!r} inverts each window's covariance, which is singular whenever the "
            "window is shorter than the number of regions; use estimator='ledoit_wolf'."
        )
    ts = _prepare(ts)
    starts = window_starts(ts.shape[0], int(window), int(step))
    from threadpoolctl import threadpool_limits

    # Many small products: one BLAS thread each is faster than threads fighting over them
    # (the compiled kernel runs its own threads over segments of windows).
    with threadpool_limits(limits=1, user_api="blas"):
        if estimator == "ledoit_wolf":
            return _ledoit_wolf_windows(ts, starts, int(window), kind, fisher_z, dtype)
        return _empirical_windows(ts, starts, int(window), kind, fisher_z, dtype, int(resync))


def _scaled(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Globally centred, unit-variance copy (for conditioning) and the scales."""
    centred = ts - ts.mean(axis=0)
    scale = centred.std(axis=0)
    scale[scale == 0] = 1.0
    return np.ascontiguousarray(centred / scale), scale


def _empirical_windows(ts, starts, window, kind, fisher_z, dtype, resync) -> np.ndarray:
    x, scale = _scaled(ts)
    n_regions = x.shape[1]
    sums = np.concatenate([np.zeros((1, n_regions)), np.cumsum(x, axis=0)])
    means = (sums[starts + window] - sums[starts]) / window
    out = np.empty((starts.size, n_regions, n_regions), dtype=dtype)
    correlation = kind == "correlation"
    flat_windows = np.zeros(starts.size, dtype=np.int64)
    if HAS_NUMBA and out.size >= KERNEL_MIN_ENTRIES:
        _run_kernel(
            x, starts, window, means, out, correlation, fisher_z, max(1, resync), flat_windows
        )
    else:
        _numpy_windows(x, starts, window, means, out, correlation, fisher_z, flat_windows)
    if not correlation:
        out *= (scale[:, None] * scale[None, :]).astype(dtype)
    n_flat = int((flat_windows > 0).sum())
    if n_flat:
        logger.warning(
            "%d of %d windows have regions with zero variance; their connectivity there is 0.",
            n_flat,
            starts.size,
        )
    return out


def _numpy_windows(x, starts, window, means, out, correlation, fisher_z, flat_windows) -> None:
    """Vectorised fallback: batched products of centred windows, in blocks."""
    windows = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)[starts]  # W, R, L
    block = max(1, int(2**27 // (8 * x.shape[1] ** 2)))
    for b0 in range(0, starts.size, block):
        w = windows[b0 : b0 + block] - means[b0 : b0 + block, :, None]
        cov = np.matmul(w, np.ascontiguousarray(np.swapaxes(w, 1, 2)))
        var = np.einsum("wii->wi", cov).copy()
        flat = var <= 1e-12 * window
        flat_windows[b0 : b0 + block] = flat.sum(axis=1)
        if correlation:
            inv = np.where(flat, 0.0, 1.0 / np.sqrt(np.where(flat, 1.0, var)))
            cov *= inv[:, :, None]
            cov *= inv[:, None, :]
            idx = np.arange(x.shape[1])
            cov[:, idx, idx] = np.where(flat, 0.0, 1.0)
            np.clip(cov, -1.0, 1.0, out=cov)
            if fisher_z:
                cov = np.arctanh(np.clip(cov, -1 + 1e-12, 1 - 1e-12))
                cov[:, idx, idx] = 0.0
        else:
            cov /= window - 1
        out[b0 : b0 + block] = cov


_KERNEL = None


def _kernel():
    """Compile (once per process, cached on disk) the sliding-window kernel.

    The kernel fills windows ``[k0, k1)``: it computes the first window's
    cross-products exactly, then updates them window by window, and writes each
    output matrix once. It releases the GIL, so segments of windows run in
    parallel threads.
    """
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL
    import numba

    @numba.njit(nogil=True, cache=True)
    def kernel(
        x, starts, window, means, out, correlation, fisher_z, resync, flat_windows, k0, k1, offset
    ):
        n_regions = x.shape[1]
        cross = np.zeros((n_regions, n_regions))
        diag = np.empty(n_regions)
        inv = np.empty(n_regions)
        for k in range(k0, k1):
            s = starts[k]
            exact = (k - k0) % resync == 0
            # Volumes [left, s) leave the window, volumes [first, s + window) enter it.
            left = s if exact else starts[k - 1]
            first = s if exact else starts[k - 1] + window
            # Diagonal first: the scaling of every row needs all variances.
            for i in range(n_regions):
                acc = 0.0 if exact else cross[i, i]
                for t in range(left, s):
                    acc -= x[t, i] * x[t, i]
                for t in range(first, s + window):
                    acc += x[t, i] * x[t, i]
                diag[i] = acc
            m = means[k]
            n_flat = 0
            for i in range(n_regions):
                var = diag[i] - window * m[i] * m[i]
                if var <= 1e-12 * window:
                    inv[i] = 0.0
                    n_flat += 1
                elif correlation:
                    inv[i] = 1.0 / np.sqrt(var)
                else:
                    inv[i] = 1.0 / np.sqrt(window - 1.0)
            flat_windows[k] = n_flat
            # Then each row: update its cross-products and write its output at once.
            for i in range(n_regions):
                row = cross[i]
                if exact:
                    row[:] = 0.0
                for t in range(left, s):
                    a = x[t, i]
                    for j in range(n_regions):
                        row[j] -= a * x[t, j]
                for t in range(first, s + window):
                    a = x[t, i]
                    for j in range(n_regions):
                        row[j] += a * x[t, j]
                target = out[k - offset, i]
                a = inv[i]
                b = window * m[i]
                if correlation:
                    for j in range(n_regions):
                        target[j] = min(max((row[j] - b * m[j]) * a * inv[j], -1.0), 1.0)
                    target[i] = 1.0 if a > 0 else 0.0
                    if fisher_z:
                        for j in range(n_regions):
                            target[j] = np.arctanh(min(max(target[j], -1 + 1e-12), 1 - 1e-12))
                        target[i] = 0.0
                else:
                    for j in range(n_regions):
                        target[j] = (row[j] - b * m[j]) * a * inv[j]

    _KERNEL = kernel
    return kernel


def _run_kernel(x, starts, window, means, out, correlation, fisher_z, resync, flat_windows):
    """Run the kernel on contiguous segments of windows, one thread each.

    The kernel writes float64; a float32 output is filled through a float64
    buffer of ``_BLOCK`` windows per thread (one compiled kernel for both types).
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    kernel = _kernel()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n_threads = max(1, min(cores or 1, starts.size // 8))
    bounds = np.linspace(0, starts.size, n_threads + 1).round().astype(int)
    args = (x, starts, window, means)
    flags = (correlation, fisher_z, resync, flat_windows)

    def segment(k0: int, k1: int) -> None:
        if out.dtype == np.float64:
            kernel(*args, out, *flags, k0, k1, 0)
            return
        buffer = np.empty((min(_BLOCK, k1 - k0), *out.shape[1:]))
        for b0 in range(k0, k1, _BLOCK):
            b1 = min(k1, b0 + _BLOCK)
            kernel(*args, buffer, *flags, b0, b1, b0)
            out[b0:b1] = buffer[: b1 - b0]

    if n_threads == 1:
        segment(0, starts.size)
        return
    with ThreadPoolExecutor(n_threads) as pool:
        jobs = [
            pool.submit(segment, int(a), int(b))
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        for job in jobs:
            job.result()


#: Windows per float64 buffer when the output is float32.
_BLOCK = 32


def _ledoit_wolf_windows(ts, starts, window, kind, fisher_z, dtype) -> np.ndarray:
    """Ledoit-Wolf shrunk covariance per window, batched (equals sklearn per window)."""
    n_regions = ts.shape[1]
    windows = np.lib.stride_tricks.sliding_window_view(ts, window, axis=0)[starts]  # W, R, L
    out = np.empty((starts.size, n_regions, n_regions), dtype=dtype)
    block = max(1, int(2**27 // (8 * n_regions**2)))
    idx = np.arange(n_regions)
    for b0 in range(0, starts.size, block):
        w = windows[b0 : b0 + block] - windows[b0 : b0 + block].mean(axis=2, keepdims=True)
        if kind == "correlation":
            sd = w.std(axis=2, ddof=1, keepdims=True)
            sd[sd < np.finfo(np.float64).eps] = 1.0
            w = w / sd
        emp = np.matmul(w, np.ascontiguousarray(np.swapaxes(w, 1, 2))) / window
        trace = np.einsum("wii->w", emp)
        mu = trace / n_regions
        beta_sum = ((w**2).sum(axis=1) ** 2).sum(axis=1)  # sum over time of ||x_t||^4
        delta_sum = (emp**2).sum(axis=(1, 2))  # = ||X^T X||_F^2 / n^2
        beta = (beta_sum / window - delta_sum) / (n_regions * window)
        delta = (delta_sum - 2.0 * mu * trace + n_regions * mu**2) / n_regions
        beta = np.minimum(beta, delta)
        shrinkage = np.where(beta == 0, 0.0, beta / np.where(delta == 0, 1.0, delta))
        cov = (1.0 - shrinkage)[:, None, None] * emp
        cov[:, idx, idx] += (shrinkage * mu)[:, None]
        if kind == "correlation":
            d = 1.0 / np.sqrt(np.einsum("wii->wi", cov))
            cov = cov * d[:, :, None] * d[:, None, :]
            cov[:, idx, idx] = 1.0
        elif kind in ("precision", "partial correlation"):
            try:
                cov = np.linalg.inv(cov)
            except np.linalg.LinAlgError as exc:
                raise DataError(
                    "A window's shrunk covariance is singular (a region is constant in it)."
                ) from exc
            if kind == "partial correlation":
                d = 1.0 / np.sqrt(np.einsum("wii->wi", cov))
                cov = -cov * d[:, :, None] * d[:, None, :]
                cov[:, idx, idx] = 1.0
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        if fisher_z:
            cov = np.arctanh(np.clip(cov, -1 + 1e-12, 1 - 1e-12))
            cov[:, idx, idx] = 0.0
        out[b0 : b0 + block] = cov
    return out


def connectivity_variability(dfc: np.ndarray) -> np.ndarray:
    """Standard deviation of each edge over windows, shape (n_regions, n_regions).

    Parameters
    ----------
    dfc : ndarray, shape (n_windows, n_regions, n_regions)
        Output of :func:`dynamic_connectivity`.
    """
    dfc = np.asarray(dfc)
    if dfc.ndim != 3 or dfc.shape[0] < 1:
        raise DataError(f"Expected (n_windows, n_regions, n_regions), got shape {dfc.shape}.")
    return dfc.std(axis=0, dtype=np.float64)
