# The run's HTML report: depends on the summaries of everything configured.


rule report:
    """One self-contained HTML report of the run."""
    input:
        report_inputs,
    output:
        f"{RESULTS}/report/index.html",
    params:
        cfg=report_params(),
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m pipelines.report --output {output:q} --params {params.cfg:q} "
        "--log {log:q} --no-progress"
