"""Build the demo EEG cohort: TUAB-like EDF recordings simulated on tvb-data anatomy.

Writes edf/{train,eval}/{normal,abnormal}/{01_tcp_ar,02_tcp_le}/*.edf with TUAR-style
.csv artifact annotations and .csv_bi pathology annotations, then recordings.tsv.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai.datasets import eeg_demo
from neuroai.pipelines._stage import execute, stage_parser


def run(
    out_dir: str | Path,
    *,
    n_recordings: int = 40,
    duration_s: float = 120.0,
    sfreq: float = 250.0,
    abnormal_fraction: float = 0.5,
    eval_fraction: float = 0.2,
    line_freq: float = 60.0,
    seed: int = 0,
) -> Path:
    """Simulate the demo EEG cohort into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Dataset folder.
    n_recordings, duration_s, sfreq, abnormal_fraction, eval_fraction, line_freq, seed
        See :func:`neuroai.datasets.eeg_demo.build_eeg_demo`.

    Returns
    -------
    Path
        The manifest ``recordings.tsv`` (written last).
    """
    eeg_demo.build_eeg_demo(
        out_dir,
        n_recordings=n_recordings,
        duration_s=duration_s,
        sfreq=sfreq,
        abnormal_fraction=abnormal_fraction,
        eval_fraction=eval_fraction,
        line_freq=line_freq,
        seed=seed,
    )
    return eeg_demo.manifest_path(out_dir)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.eeg_demo")
    parser.add_argument("--out-dir", required=True, help="dataset folder to write")
    args = parser.parse_args(argv)
    execute(args, run, args.out_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
