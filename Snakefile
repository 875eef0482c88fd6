# neuroai: from raw neuroimaging files to trained models and evaluation reports.
# Run the embedded demo with `snakemake --cores 2`; see README.md.
from pathlib import Path

from snakemake.utils import min_version

from neuroai.config import validate_config

min_version("9.0")


configfile: Path(workflow.basedir) / "workflows" / "config" / "config.yaml"


validate_config(
    config,
    Path(workflow.basedir) / "workflows" / "schemas" / "config.schema.yaml",
    source="The workflow configuration",
)


include: "workflows/rules/common.smk"
include: "workflows/rules/demo.smk"
include: "workflows/rules/fmri.smk"
include: "workflows/rules/tokens.smk"
include: "workflows/rules/report.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/report/index.html",
