"""Benchmark: what the embed (and predict) jobs add to the demo, family by family.

The demo embeds every dataset a family trains on (docs/embeddings.md). This times
``neuroai.pipelines.embed.run`` on synthetic inputs of the demo's sizes, written with the
project's own writers (``neuroai.testing``), with each family's ``demo`` preset:

- **eegformer**: a patch store of 40 recordings x 10 windows of 22 channels, 12 s at
  250 Hz, patches of 50 samples (the demo's ``demo_eeg``).
- **tablet**: 12 token stores of 8 frames of 27 x 3072 tokens, windows of 4 frames
  (``demo_volumes`` with ``tokens.frames.max_frames: 8``).
- **dfc_gnn**: a graph dataset of 12 runs of 355 TRs over 94 regions (windows of 50 TRs,
  step 3, 30 % of edges), crops of 12 windows, 8 per run (``demo_regions``; the HCP runs
  are longer, but 8 crops per run cap the work).
- **dsd**: 25 Decathlon cases of 91 x 109 x 91 voxels at 2 mm (``demo_tissue``).

It also times a fine-tuned probe's ``predict`` on the EEG store, and the start of a stage
process (``python -m neuroai.pipelines.embed --help`` does not import torch, so the
import of torch and the model registry is timed instead), which every job pays once.

    PYTHONPATH=. .venv/bin/python benchmarks/embed_cost.py     # ~2 min on 2 cores

Results go to ``benchmarks/out/embed_cost.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _timed(func):
    start = time.perf_counter()
    result = func()
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="benchmarks/out/embed_cost.json")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a job's)")
    args = parser.parse_args(argv)

    import pandas as pd
    import torch

    from neuroai.io import save_table
    from neuroai.models import create_model
    from neuroai.models.probe import ProbeModel
    from neuroai.pipelines import embed, predict
    from neuroai.testing import (
        graph_dataset,
        hippocampus_like_dataset,
        tiny_patch_store,
        write_token_store,
    )
    from neuroai.training.graph_data import Crop, GraphCropDataset

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # EEGFormer
        store = tiny_patch_store(
            root / "eeg" / "store",
            n_recordings=40,
            windows_per_recording=10,
            sfreq=250.0,
            window_samples=3000,
            patch_len=50,
            channels=[f"E{k}" for k in range(22)],
            n_eval=8,
        )
        torch.manual_seed(0)
        model = create_model(
            "eegformer", preset="demo", n_chans=22, n_times=3000, sfreq=250.0, patch_len=50
        )
        folder = model.save_pretrained(root / "m" / "eegformer")
        _, seconds = _timed(lambda: embed.run(folder, root / "o" / "eeg.parquet", store=store))
        rows.append(("embed", "eegformer", "400 windows + 40 recordings", seconds))
        probe = ProbeModel.from_encoder(model, n_outputs=2, task="classification")
        tuned = probe.save_pretrained(
            root / "m" / "probe", metadata={"task": "abnormal", "classes": ["abnormal"]}
        )
        _, seconds = _timed(lambda: predict.run(tuned, root / "o" / "eeg.tsv", store=store))
        rows.append(("predict", "eegformer", "400 windows + 40 recordings", seconds))
        # TABLeT
        entries = []
        for i in range(12):
            path = write_token_store(
                root / "tokens" / f"sub-{i:02d}_tokens.npy",
                n_frames=8,
                n_tokens=27,
                token_dim=3072,
                seed=i,
            )
            entries.append({"participant_id": f"sub-{i:02d}", "tokens": path.name, "tr": 2.0})
        index = root / "tokens" / "index.tsv"
        save_table(index, pd.DataFrame(entries), stage="tokens_summary")
        model = create_model("tablet", preset="demo", n_tokens=27, token_dim=3072)
        folder = model.save_pretrained(
            root / "m" / "tablet", metadata={"tablet": {"data": {"window_frames": 4}}}
        )
        _, seconds = _timed(lambda: embed.run(folder, root / "o" / "tab.parquet", index=index))
        rows.append(("embed", "tablet", "12 subjects (+ 12 runs)", seconds))
        # dFC-GNN
        graphs = graph_dataset(
            root / "graphs", n_timepoints=[355] * 12, n_regions=94, window=50, step=3, density=0.3
        )
        overrides = GraphCropDataset(graphs, [Crop(0, 0, 2)]).model_overrides()
        model = create_model("dfc_gnn", preset="demo", **overrides)
        folder = model.save_pretrained(
            root / "m" / "dfc", metadata={"data": {"crop_windows": 12, "eval_crops": 8}}
        )
        _, seconds = _timed(lambda: embed.run(folder, root / "o" / "dfc.parquet", graphs=graphs))
        rows.append(("embed", "dfc_gnn", "12 runs x 8 crops", seconds))
        # DSD
        dataset = hippocampus_like_dataset(
            root / "task", n_train=20, n_test=5, shapes=[(91, 109, 91)], spacing=(2.0,) * 3
        )
        model = create_model("dsd", preset="demo", backbone="unet", out_channels=4)
        folder = model.save_pretrained(
            root / "m" / "dsd", metadata={"data": {"spacing": [2.0, 2.0, 2.0]}}
        )
        _, seconds = _timed(
            lambda: embed.run(folder, root / "o" / "dsd.parquet", dataset=dataset, split="all")
        )
        rows.append(("embed", "dsd", "25 cases", seconds))
    code = "import torch, neuroai.models, neuroai.evaluation, neuroai.pipelines.embed"
    starts = []
    for _ in range(3):
        _, seconds = _timed(lambda: subprocess.run([sys.executable, "-c", code], check=True))
        starts.append(seconds)
    rows.append(("start", "any", "import torch + neuroai (median of 3)", float(np.median(starts))))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            [{"stage": s, "family": f, "work": w, "seconds": round(t, 2)} for s, f, w, t in rows],
            indent=1,
        )
        + "\n"
    )
    print("| stage | family | work | seconds |\n|---|---|---|---|")
    for stage, family, work, seconds in rows:
        print(f"| {stage} | {family} | {work} | {seconds:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
