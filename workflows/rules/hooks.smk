# Run once by the main Snakemake process, after the DAG is built and before any job starts.


onstart:
    check_cluster()
