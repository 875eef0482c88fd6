"""Stage entry points: one module per workflow stage.

Each module exposes ``run(...)``, the per-stage Python API that the Snakemake
rule calls (usable without Snakemake), and ``main()``, so that
``python -m neuroai.pipelines.<stage> --help`` works. Stages are thin: they read their
inputs, call the library, write outputs with provenance, and log.
"""
