"""Shared command-line plumbing of the stage entry points."""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from neuroai import get_logger, set_log_level
from neuroai.errors import ConfigError, NeuroaiError, did_you_mean


def stage_parser(
    module_doc: str | None, prog: str, *, threads: bool = False
) -> argparse.ArgumentParser:
    """An argument parser with the options every stage shares.

    ``--params`` takes the stage's parameters as a JSON object (or ``@file.json``);
    ``--log`` sends the log to a file (the rule's ``log:``); ``--no-progress``
    turns progress bars off. With ``threads``, ``--threads N`` sets PyTorch's
    CPU threads before the stage runs (the rule passes its ``threads``).
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(module_doc or "").strip().splitlines()[0] if module_doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((module_doc or "").strip().splitlines()[1:]).strip() or None,
    )
    parser.add_argument(
        "--params",
        default="{}",
        help="stage parameters as a JSON object, or @path/to/params.json",
    )
    parser.add_argument("--log", default=None, help="append the log to this file")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    if threads:
        parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return parser


class PathList(argparse.Action):
    """A list option (``nargs="+"``) whose ``@file`` arguments stand for the paths in ``file``.

    Cohort rules pass their per-subject inputs as a list file, one path per line
    (blank lines ignored), because a shell command is limited to 128 KiB on Linux:
    about a thousand result paths.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        paths: list[str] = []
        for value in values:
            if not value.startswith("@"):
                paths.append(value)
                continue
            list_file = Path(value[1:])
            try:
                lines = list_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                parser.error(f"{option_string}: cannot read the list file {list_file}: {exc}")
            listed = [line.strip() for line in lines if line.strip()]
            if not listed:
                parser.error(f"{option_string}: the list file {list_file} lists no paths.")
            paths.extend(listed)
        setattr(namespace, self.dest, paths)


def stage_device(device: str) -> str:
    """The torch device a stage runs on: ``"auto"`` is CUDA when present, else the CPU."""
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def parse_params(text: str) -> dict[str, Any]:
    """Parse ``--params``: a JSON object or ``@file``."""
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params is not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise ConfigError(f"--params must be a JSON object, got {type(params).__name__}.")
    return params


def check_params(func: Callable, params: Mapping[str, Any], *, fixed: Sequence[str] = ()) -> None:
    """Raise :class:`ConfigError` for a parameter ``func`` does not take."""
    signature = inspect.signature(func)
    accepted = [
        name
        for name, p in signature.parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in fixed
    ]
    for key in params:
        if key not in accepted:
            raise ConfigError(
                f"Unknown parameter {key!r} for stage {func.__module__}.{func.__name__}."
                f"{did_you_mean(key, accepted)} Valid parameters: {', '.join(accepted)}."
            )


def execute(
    args: argparse.Namespace,
    func: Callable[..., Any],
    /,
    *positional: Any,
    **kwargs: Any,
) -> Any:
    """Set up logging from ``args``, call ``func`` with ``--params`` merged in.

    Errors that neuroai raises on purpose are logged and end the process with
    status 1 and a one-line message (no traceback); anything else propagates.
    """
    set_log_level(args.log_level, log_file=args.log)
    if args.log:
        # Mirror warnings and errors on stderr, so they also reach the terminal.
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        get_logger().addHandler(console)
    logging.captureWarnings(True)
    if args.no_progress:
        os.environ["NEUROAI_PROGRESS"] = "0"
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    module = func.__module__
    if module == "__main__":  # python -m neuroai.pipelines.<stage>
        module = Path(sys.argv[0]).stem
    logger = get_logger(f"stage.{module.rsplit('.', 1)[-1]}")
    try:
        params = parse_params(args.params)
        check_params(func, params, fixed=list(kwargs))
        start = time.perf_counter()
        logger.info("Starting with parameters %s", json.dumps(params, sort_keys=True))
        result = func(*positional, **kwargs, **params)
        logger.info("Done in %.1f s", time.perf_counter() - start)
        return result
    except NeuroaiError as exc:
        logger.error("%s", exc)
        sys.exit(f"error: {exc}")
