"""neuroai: a neuroimaging foundation-model pipeline.

The library turns fMRI and EEG recordings into model-ready artifacts, trains
foundation models on them and writes evaluation reports. It never imports
``snakemake`` or ``pipelines`` and reads no global configuration: every function
gets what it needs as arguments.

Sub-packages are imported on demand (``import neuroai.fmri``) so that importing
``neuroai`` itself stays cheap: the Snakefile imports it at parse time.
"""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from neuroai._logging import get_logger, progress, set_log_level

try:
    __version__ = version("neuroai")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "get_logger", "progress", "set_log_level", "workflow_root"]


def workflow_root() -> Path:
    """The folder of the Snakemake workflow this installation runs.

    An installed wheel carries the workflow as ``neuroai/_workflow/`` (``Snakefile``,
    ``workflows/``, ``data_cards/``, laid out as in the repository); an editable install
    runs the repository itself, the folder above the ``neuroai`` package.

    Returns
    -------
    Path
        The folder that holds ``Snakefile``.

    Raises
    ------
    FileNotFoundError
        When neither place holds a ``Snakefile`` (a wheel built without the workflow).
    """
    package = Path(__file__).resolve().parent
    candidates = (package / "_workflow", package.parent)
    for folder in candidates:
        if (folder / "Snakefile").is_file() and (folder / "workflows").is_dir():
            return folder
    raise FileNotFoundError(
        "The neuroai workflow (Snakefile and workflows/) is not installed: looked in "
        f"{candidates[0]} and {candidates[1]}. Install neuroai from a wheel built from a full "
        "checkout, or install the repository with `pip install -e .`."
    )
