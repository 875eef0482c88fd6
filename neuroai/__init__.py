"""neuroai: a neuroimaging foundation-model pipeline.

The library turns fMRI and EEG recordings into model-ready artifacts, trains
foundation models on them and writes evaluation reports. It never imports
``snakemake`` or ``pipelines`` and reads no global configuration: every function
gets what it needs as arguments.

Sub-packages are imported on demand (``import neuroai.fmri``) so that importing
``neuroai`` itself stays cheap: the Snakefile imports it at parse time.
"""

from importlib.metadata import PackageNotFoundError, version

from neuroai._logging import get_logger, progress, set_log_level

try:
    __version__ = version("neuroai")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "get_logger", "progress", "set_log_level"]
