# neuroai: from raw neuroimaging files to trained models and evaluation reports.
# Run the embedded demo with `snakemake --cores 2`; see README.md.
from pathlib import Path

from snakemake.utils import min_version

from neuroai.config import validate_config

min_version("9.0")


# The demo run is the default config. A config given with --configfile replaces it
# (rather than being merged into it), so a user's run never drags the demo datasets along;
# --config key=value overrides apply on top of whichever config is in use.
if not workflow.config_settings.configfiles:

    configfile: Path(workflow.basedir) / "workflows" / "config" / "config.yaml"


validate_config(
    config,
    Path(workflow.basedir) / "workflows" / "schemas" / "config.schema.yaml",
    source="The workflow configuration",
)


# With `--sdm apptainer`, every rule runs in this image (containers/, docs/install.md).
if config.get("container"):

    container: config["container"]


report: "workflows/report/workflow.rst"


include: "workflows/rules/common.smk"
include: "workflows/rules/lists.smk"
include: "workflows/rules/demo.smk"
include: "workflows/rules/fmri.smk"
include: "workflows/rules/labels.smk"
include: "workflows/rules/eeg.smk"
include: "workflows/rules/eegformer.smk"
include: "workflows/rules/segmentation.smk"
include: "workflows/rules/inference.smk"
include: "workflows/rules/tokens.smk"
include: "workflows/rules/dfc_gnn.smk"
include: "workflows/rules/tablet.smk"
include: "workflows/rules/report.smk"
include: "workflows/rules/hooks.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/report",
