# The run's report: depends on the summaries of everything configured.


rule report_params:
    """The report's parameters as a file: they list every run of every dataset, so they grow
    with the cohort, and a shell command line must not (see inputs/lists.smk)."""
    output:
        f"{RESULTS}/lists/report/params.json",
    params:
        cfg=report_params(),
    log:
        f"{RESULTS}/logs/report_params.log",
    localrule: True
    run:
        write_params_file(params.cfg, output[0], log[0])


rule report:
    """The run report: a folder of self-contained HTML pages, entered through index.html.

    Its inputs are every configured stage's summaries and metrics and the data cards,
    so it re-runs when any of them changes (or when the configuration does).
    """
    input:
        report_inputs,
        params_file=rules.report_params.output[0],
    output:
        report(
            directory(f"{RESULTS}/report"),
            patterns=["{page}.html"],
            caption="../report/run_report.rst",
            category="Run report",
            labels={"page": "{page}"},
        ),
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
        "python -m neuroai.pipelines.report --output {output:q} --params @{input.params_file:q} "
        "--log {log:q} --no-progress"
