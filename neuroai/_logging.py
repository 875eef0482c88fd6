"""The package logger and the progress bar.

The library logs through one logger, ``logging.getLogger("neuroai")``, and never
prints. Stage entry points (``pipelines/``) attach a file handler that writes to
the Snakemake rule's ``log:`` file. Long loops wrap their iterable in
:func:`progress`, which shows a tqdm bar on an interactive terminal and can be
switched off with ``enabled=False`` or the environment variable
``NEUROAI_PROGRESS=0``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

LOGGER_NAME = "neuroai"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the package logger or one of its children.

    Parameters
    ----------
    name : str | None
        Dotted suffix below ``neuroai`` (``"fmri"`` gives ``neuroai.fmri``), or
        a module ``__name__`` that already starts with ``neuroai``.
    """
    if not name or name == LOGGER_NAME:
        return logging.getLogger(LOGGER_NAME)
    if name.startswith(LOGGER_NAME + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def set_log_level(level: int | str = "INFO", log_file: str | os.PathLike | None = None) -> None:
    """Set the package log level and, optionally, send the log to a file.

    Parameters
    ----------
    level : int | str
        A :mod:`logging` level (``"DEBUG"``, ``"INFO"``, ``"WARNING"`` ...).
    log_file : path-like | None
        When given, log records are appended to this file (a Snakemake rule's
        ``log:``); otherwise they go to standard error.
    """
    logger = get_logger()
    if isinstance(level, str):
        numeric = logging.getLevelName(level.upper())
        if not isinstance(numeric, int):
            raise ValueError(
                f"Invalid log level {level!r}; expected one of DEBUG, INFO, WARNING, ERROR."
            )
        level = numeric
    logger.setLevel(level)
    for handler in list(logger.handlers):
        if getattr(handler, "_neuroai", False):
            logger.removeHandler(handler)
            handler.close()
    handler: logging.Handler
    if log_file is not None:
        handler = logging.FileHandler(os.fspath(log_file), mode="a", encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler._neuroai = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False


def _progress_default() -> bool:
    flag = os.environ.get("NEUROAI_PROGRESS")
    if flag is not None:
        return flag.strip().lower() not in {"0", "false", "no", "off", ""}
    return sys.stderr.isatty()


def progress(
    iterable: Iterable[T],
    *,
    desc: str | None = None,
    total: int | None = None,
    enabled: bool | None = None,
) -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar.

    Parameters
    ----------
    iterable : iterable
        What to loop over.
    desc : str | None
        Label shown before the bar.
    total : int | None
        Number of items, when ``len(iterable)`` does not give it.
    enabled : bool | None
        ``True`` or ``False`` forces the bar on or off; ``None`` shows it on an
        interactive terminal unless ``NEUROAI_PROGRESS=0``.
    """
    if enabled is None:
        enabled = _progress_default()
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, desc=desc, total=total, leave=False, file=sys.stderr)
