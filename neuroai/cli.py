"""The ``neuroai`` command: the workflow, the stages, the models and the checks.

::

    neuroai run [snakemake options]      # the shipped workflow, from any folder
    neuroai stage NAME --help            # a stage's parameters (from the config schema)
    neuroai stage NAME [options]         # run one stage by hand
    neuroai models [--parameters]        # the model registry
    neuroai init FOLDER --layout L       # a starter config and data card for your data
    neuroai check-report INDEX [...]     # check a report in headless Chromium

``python -m neuroai`` is the same command. Heavy modules (Snakemake, torch, the stage
modules) are imported only by the subcommand that needs them, so ``--help`` is quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from neuroai import workflow_root
from neuroai.errors import ConfigError, NeuroaiError, did_you_mean

_HELP = ("-h", "--help")


def _write(text: str, stream=None) -> None:
    stream = sys.stdout if stream is None else stream
    stream.write(text if text.endswith("\n") else text + "\n")
    stream.flush()


def build_parser() -> argparse.ArgumentParser:
    """The ``neuroai`` argument parser (``run``, ``stage`` and ``check-report`` pass
    their arguments on: their parsers only document them)."""
    from neuroai import __version__

    parser = argparse.ArgumentParser(
        prog="neuroai",
        description="neuroai: neuroimaging recordings to model-ready artifacts, foundation "
        "models and evaluation reports. The workflow ships with the package; `neuroai run "
        "--cores 2` in an empty folder runs the embedded demo.",
        epilog="`neuroai COMMAND --help` describes each command. Documentation: docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"neuroai {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the shipped Snakemake workflow in the current folder",
        description="Run the workflow that ships with neuroai in the current folder: "
        "`python -m snakemake --snakefile <workflow>/Snakefile --directory .` followed by "
        "your options. Without --configfile it runs the embedded demo into ./results (and "
        "says so). `--profile NAME` finds a profile as Snakemake does (a folder of that "
        "name here, or in Snakemake's user and site config folders), else the shipped "
        "profile of that name (local, slurm, workstation). `python -m snakemake --help` "
        "lists every option.",
        epilog="examples: neuroai run --cores 2 | neuroai run -n | "
        "neuroai run --configfile neuroai.yaml --cores 8 | neuroai run --profile slurm "
        "--configfile neuroai.yaml",
    )
    run.add_argument(
        "snakemake_options", nargs="*", default=[], help="options passed on to Snakemake"
    )

    stage = commands.add_parser(
        "stage",
        help="list a stage's parameters (--help) or run one stage",
        description="`neuroai stage NAME --help` lists the stage's parameters with types, "
        "defaults and meanings from the config schema the workflow validates, then its "
        "command-line options. `neuroai stage NAME [options]` runs the stage "
        "(`python -m neuroai.pipelines.NAME`); `--set key=value` (repeatable) sets a "
        "parameter, checked against the schema, and is merged into --params. "
        "`neuroai stage --list` names every stage.",
    )
    stage.add_argument("name", metavar="NAME", help="the stage (neuroai.pipelines.NAME)")
    stage.add_argument("stage_options", nargs="*", default=[], help="the stage's options")

    models = commands.add_parser(
        "models",
        help="print the model registry",
        description="Every registered model family: name, modality, presets, description.",
    )
    models.add_argument(
        "--parameters",
        action="store_true",
        help="also count each preset's parameters (built on PyTorch's meta device: no "
        "memory, some seconds)",
    )

    init = commands.add_parser(
        "init",
        help="write a starter config and data card for a dataset folder",
        description="Check that FOLDER looks like the named layout, then write a starter "
        "config (one dataset, the sections that process it) and a data card to fill in. "
        "Existing files are never overwritten.",
    )
    init.add_argument("folder", metavar="FOLDER", help="the dataset's folder")
    init.add_argument(
        "--layout",
        required=True,
        help="region_timeseries, bids, fmriprep, bold_volumes, tuh, bids_eeg, eeg_files or "
        "decathlon (the layouts of workflows/schemas/config/datasets.schema.yaml)",
    )
    init.add_argument(
        "--output",
        default="neuroai.yaml",
        help="the config to write (default: neuroai.yaml here); the card goes beside it",
    )
    init.add_argument("--name", help="the dataset's name (default: from the folder name)")
    init.add_argument(
        "--atlas",
        help="bids and fmriprep: label image (3D), probabilistic maps (4D) or TSV of sphere "
        "centres",
    )
    init.add_argument("--atlas-labels", help="bids and fmriprep: region names of the atlas")

    check = commands.add_parser(
        "check-report",
        help="check a report's pages in headless Chromium",
        description="neuroai.testing.check_report: open every page of a report, list "
        "console errors, broken images and links, network fetches; --complete also checks "
        "it against its results folder. `neuroai check-report --help` shows its options.",
    )
    check.add_argument(
        "check_options", nargs="*", default=[], help="INDEX [--screenshots DIR] [--complete]"
    )
    return parser


# ---- run ----


def _option_values(args: Sequence[str], names: Sequence[str]) -> list[tuple[int, str | None]]:
    """(index, inline value or None) of every occurrence of an option in ``args``."""
    found = []
    for i, arg in enumerate(args):
        for name in names:
            if arg == name:
                found.append((i, None))
            elif name.startswith("--") and arg.startswith(name + "="):
                found.append((i, arg[len(name) + 1 :]))
    return found


def resolve_profiles(args: list[str], root: Path) -> list[str]:
    """``--profile NAME`` -> the shipped ``workflows/profiles/NAME`` when Snakemake itself
    would not find a profile of that name (a path, or a folder in the current folder or
    in Snakemake's user and site config folders)."""
    args = list(args)
    shipped_dir = root / "workflows" / "profiles"
    shipped = sorted(p.name for p in shipped_dir.iterdir() if p.is_dir())
    for i, inline in _option_values(args, ("--profile",)):
        value = inline if inline is not None else (args[i + 1] if i + 1 < len(args) else None)
        if value is None or value == "none" or Path(value).exists():
            continue
        from snakemake.cli import get_profile_dir

        if get_profile_dir(value) is not None:
            continue
        if os.sep in value or value not in shipped:
            raise ConfigError(
                f"--profile {value!r}: no such folder here, in Snakemake's profile folders, or "
                f"among the shipped profiles ({', '.join(shipped)}).{did_you_mean(value, shipped)}"
            )
        path = str(shipped_dir / value)
        _write(f"neuroai: --profile {value}: the shipped profile {path}", sys.stderr)
        if inline is not None:
            args[i] = f"--profile={path}"
        else:
            args[i + 1] = path
    return args


def snakemake_command(args: Sequence[str], root: Path | None = None) -> list[str]:
    """The Snakemake command line ``neuroai run ARGS`` executes (profiles resolved)."""
    root = workflow_root() if root is None else root
    args = resolve_profiles(list(args), root)
    command = [sys.executable, "-m", "snakemake"]
    if not _option_values(args, ("--snakefile", "-s")):
        command += ["--snakefile", str(root / "Snakefile")]
    if not _option_values(args, ("--directory", "-d")):
        command += ["--directory", os.getcwd()]
    return command + args


def run_workflow(args: Sequence[str]) -> int:
    """``neuroai run``: the shipped workflow in the current folder; Snakemake's status."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("snakemake") is None:
        raise ConfigError(
            "neuroai run needs Snakemake, which this environment lacks: "
            "pip install 'neuroai[workflow]' (or 'neuroai[demo]' for the embedded demo)."
        )
    root = workflow_root()
    command = snakemake_command(args, root)
    if not _option_values(args, ("--configfile", "--configfiles")):
        results = "results"
        for i, inline in _option_values(args, ("--config", "-C")):
            values = [inline] if inline is not None else args[i + 1 :]
            for value in values:
                if value.startswith("-"):
                    break
                if value.startswith("results="):
                    results = value.split("=", 1)[1]
        where = Path(os.getcwd()) / results
        _write(
            f"neuroai: no --configfile given: running the embedded demo "
            f"({root / 'workflows' / 'config' / 'config.yaml'}) into {where}",
            sys.stderr,
        )
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130


# ---- stage ----


def run_stage(name: str, options: Sequence[str]) -> int:
    """``neuroai stage NAME ...``: the stage's help, or the stage run with ``options``."""
    import json

    from neuroai import _cli_stages as stages

    root = workflow_root()
    if name in ("--list", "-l"):
        _write("\n".join(stages.stage_names()))
        return 0
    stages.check_stage(name)
    if any(o in _HELP for o in options):
        _write(stages.stage_help(name, root))
        return 0
    settings, rest, i = [], [], 0
    while i < len(options):
        option = options[i]
        if option == "--set":
            if i + 1 >= len(options):
                raise ConfigError("--set needs key=value.")
            settings.append(options[i + 1])
            i += 2
            continue
        if option.startswith("--set="):
            settings.append(option[len("--set=") :])
        else:
            rest.append(option)
        i += 1
    known = stages.stage_options(name)
    for option in rest:
        flag = option.split("=", 1)[0]
        if flag.startswith("--") and flag not in known:
            raise ConfigError(
                f"Unknown option {flag!r} for stage {name!r}.{did_you_mean(flag, known)} "
                f"Options: {', '.join(known)} (and --set key=value). "
                f"`neuroai stage {name} --help` lists them."
            )
    if settings:
        values = stages.settings_to_params(name, settings, root)
        given = [(i, v) for i, v in _option_values(rest, ("--params",))]
        params: dict = {}
        if given:
            i, inline = given[-1]
            text = inline if inline is not None else rest[i + 1]
            from neuroai.pipelines._stage import parse_params

            params = parse_params(text)
            del rest[i : i + (1 if inline is not None else 2)]
        params.update(values)
        rest += ["--params", json.dumps(params, sort_keys=True)]
    stages.stage_main(name)(list(rest))
    return 0


# ---- models ----


def list_models(parameters: bool = False) -> str:
    """The registry as a table: name, modality, presets (with parameter counts), description."""
    from neuroai.models import describe_models

    rows = []
    for entry in describe_models():
        presets = list(entry["presets"])
        if parameters:
            presets = [f"{p} ({_count(entry['name'], p)})" for p in presets]
        modality = entry["modality"] if isinstance(entry["modality"], str) else "any encoder"
        rows.append((entry["name"], modality, ", ".join(presets), entry["description"]))
    header = (
        "name",
        "modality",
        "presets" + (" (parameters)" if parameters else ""),
        "description",
    )
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in [header, *rows]
    ]
    if parameters:
        lines.append(
            "Counts are for each preset with its default options (built on the meta device)."
        )
    return "\n".join(lines)


def _count(name: str, preset: str) -> str:
    import torch

    from neuroai.models import create_model

    try:
        with torch.device("meta"):
            model = create_model(name, preset)
    except (NeuroaiError, TypeError, ValueError):
        return "needs options"
    n = sum(p.numel() for p in model.parameters())
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


# ---- main ----


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``neuroai`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    command, rest = (argv[0], argv[1:]) if argv else (None, [])
    try:
        if command == "run":
            if any(a in _HELP for a in rest):
                parser.parse_args(["run", "--help"])
            return run_workflow(rest)
        if command == "stage" and rest and rest[0] not in _HELP:
            return run_stage(rest[0], rest[1:])
        if command == "check-report":
            from neuroai.testing.check_report import main as check_report

            return check_report(rest, prog="neuroai check-report")
        args = parser.parse_args(argv)
        if args.command == "models":
            _write(list_models(args.parameters))
            return 0
        if args.command == "init":
            from neuroai._cli_init import init_dataset

            config, card = init_dataset(
                args.folder,
                args.layout,
                workflow=workflow_root(),
                output=args.output,
                name=args.name,
                atlas=args.atlas,
                atlas_labels=args.atlas_labels,
            )
            _write(
                f"Wrote {config} and the data card {card} (fill it in). Next: "
                f"neuroai run --configfile {config} -n"
            )
            return 0
    except (NeuroaiError, FileNotFoundError) as exc:
        _write(f"neuroai {command}: error: {exc}", sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
