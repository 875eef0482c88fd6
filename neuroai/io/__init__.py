"""Input and output: the artifact store, provenance, and dataset readers."""

from neuroai.io.atomic import atomic_open, atomic_path, is_temporary, remove_stale_temporaries
from neuroai.io.bids import BoldRun, index_bold_runs, participants_table, repetition_time
from neuroai.io.decathlon import (
    DecathlonCase,
    DecathlonDataset,
    check_case,
    read_decathlon,
    write_dataset_json,
)
from neuroai.io.external import (
    InputArrays,
    check_input_volume,
    check_inputs,
    external_inputs,
    has_record,
    load_input_array,
    read_input_array,
)
from neuroai.io.provenance import file_digest, library_versions, provenance_path, read_provenance
from neuroai.io.regions import (
    RegionTimeseries,
    index_region_runs,
    read_region_timeseries,
    run_key,
    write_region_timeseries,
)
from neuroai.io.store import (
    ArrayArtifacts,
    check_artifact,
    load_array,
    load_json,
    load_table,
    save_array,
    save_json,
    save_table,
    write_artifact,
)

__all__ = [
    "BoldRun",
    "index_bold_runs",
    "participants_table",
    "repetition_time",
    "DecathlonCase",
    "DecathlonDataset",
    "check_case",
    "read_decathlon",
    "write_dataset_json",
    "RegionTimeseries",
    "index_region_runs",
    "run_key",
    "ArrayArtifacts",
    "InputArrays",
    "atomic_open",
    "atomic_path",
    "check_artifact",
    "check_input_volume",
    "check_inputs",
    "external_inputs",
    "file_digest",
    "has_record",
    "is_temporary",
    "library_versions",
    "load_array",
    "load_input_array",
    "load_json",
    "load_table",
    "provenance_path",
    "read_input_array",
    "read_provenance",
    "read_region_timeseries",
    "remove_stale_temporaries",
    "save_array",
    "save_json",
    "save_table",
    "write_artifact",
    "write_region_timeseries",
]
