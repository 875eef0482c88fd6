# The run's report: depends on the summaries of everything configured.


rule report:
    """The run report: a folder of self-contained HTML pages, entered through index.html.

    Its inputs are every configured stage's summaries and metrics and the data cards,
    so it re-runs when any of them changes (or when the configuration does).
    """
    input:
        report_inputs,
    output:
        report(
            directory(f"{RESULTS}/report"),
            patterns=["{page}.html"],
            caption="../report/run_report.rst",
            category="Run report",
            labels={"page": "{page}"},
        ),
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
