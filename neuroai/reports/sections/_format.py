"""Numbers of metrics files as report text: estimates with their confidence intervals."""

from __future__ import annotations

import math


def number(value) -> float:
    """A number from a metrics file (non-finite values are stored as text, e.g. "nan")."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def interval(summary: dict | None, digits: int = 3, *, spec: str = "f") -> str:
    """``"0.812 [0.700, 0.901]"`` from ``{"estimate", "ci_low", "ci_high"}``.

    Parameters
    ----------
    summary : dict | None
        A bootstrap summary; missing or non-finite estimates give ``"n/a"``, a
        missing interval gives the estimate alone.
    digits : int
        Digits after the point (``spec="f"``) or significant digits (``"g"``).
    spec : str
        Python format type, ``"f"`` or ``"g"``.
    """
    summary = summary or {}
    estimate = number(summary.get("estimate"))
    if not math.isfinite(estimate):
        return "n/a"
    low, high = number(summary.get("ci_low")), number(summary.get("ci_high"))
    fmt = f".{digits}{spec}"
    if not math.isfinite(low):
        return format(estimate, fmt)
    return f"{format(estimate, fmt)} [{format(low, fmt)}, {format(high, fmt)}]"
