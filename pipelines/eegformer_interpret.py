"""Interpret EEGFormer through its codebook: which codes fire for which class, where and when.

The pretrained model assigns a code to every spectral patch of every channel of every
window. From the codes of the stores' windows this stage writes codes.json for the
report (neuroai.evaluation.codebook):

- code-usage histograms per recording label (class) and the codes most enriched in
  each class, with the share of each channel's patches that fall in them (a scalp map
  per class; channel positions from the standard 10-05 template, bipolar channels at
  the midpoint of their electrodes);
- per annotation label (eye movements, muscle, slowing, spike-and-wave ...), the codes
  most enriched in windows with the label and, for the recording with the most such
  windows, the share of each channel's patches in those codes window by window (a
  channel x time map beside the labelled spans);

and the codes themselves (codes.npy, windows x channels x patches, int16).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from neuroai import get_logger
from neuroai.pipelines._stage import execute, stage_device, stage_parser

logger = get_logger("stage.eegformer_interpret")
STAGE = "eegformer_interpret"


def channel_positions(channels: list[str]) -> list[list[float]] | None:
    """Head positions (m) of channels: electrodes, or midpoints of bipolar pairs ``A-B``.

    None when a channel has no template position (no scalp map is drawn then).
    """
    from neuroai.eeg.channels import electrode_positions

    names = sorted({part for ch in channels for part in ch.split("-")})
    found = electrode_positions(names).get_positions()["ch_pos"]
    positions = []
    for channel in channels:
        parts = channel.split("-")
        if not all(p in found for p in parts):
            return None
        positions.append(np.mean([found[p] for p in parts], axis=0).tolist())
    return positions


def run(
    stores: list[str | Path],
    pretrained: str | Path,
    output: str | Path,
    codes_output: str | Path,
    *,
    split: dict[str, Any] | None = None,
    windows: str = "all",
    top_codes: int = 5,
    min_count: int = 5,
    batch_size: int = 32,
    device: str = "auto",
) -> Path:
    """Write ``codes.json`` (what the report draws) and ``codes.npy``.

    Parameters
    ----------
    stores : list of path-like
        Patch stores.
    pretrained : path-like
        Pretrained EEGFormer folder.
    output : path-like
        ``codes.json``.
    codes_output : path-like
        ``codes.npy``: the code of every patch, ``(n_windows, n_chans, n_patches)`` int16.
    split : dict | None
        Recording split settings (only used with ``windows="test"``).
    windows : {"all", "test"}
        Interpret every window, or the held-out test recordings' only.
    top_codes : int
        Codes listed per class and per annotation label.
    min_count : int
        A code must fire at least this often in a group to be listed for it.
    batch_size : int
        Windows per forward pass.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """
    import torch

    from neuroai.eeg.dataset import EEGPatchDataset
    from neuroai.errors import check_option
    from neuroai.evaluation import codebook
    from neuroai.io import save_array, save_json
    from neuroai.models import load_pretrained
    from neuroai.models.blocks.quantizer import code_perplexity
    from neuroai.training.eeg_data import recording_split, rows_of, store_layout, window_table

    check_option("windows", windows, ("all", "test"))
    stores = [Path(s) for s in stores]
    device = stage_device(device)
    model = load_pretrained(pretrained, map_location=device)
    layout = store_layout(stores)
    table = window_table(stores)
    rows = np.arange(len(table), dtype=np.int64)
    if windows == "test":
        rows = rows_of(table, recording_split(table, **dict(split or {})).test)
    result = codebook.run_codebook(
        model, EEGPatchDataset(stores), rows, batch_size=batch_size, device=device
    )
    codes, size = result.codes, result.codebook_size
    chosen = table.loc[rows].reset_index(drop=True)
    total = codebook.code_counts(codes, size)

    labelled = ~chosen["label"].isin(["n/a", ""]).to_numpy()
    usage = codebook.usage_by_group(codes[labelled], chosen.loc[labelled, "label"], size)
    classes = {}
    for name, inside in sorted(usage.items()):
        top = codebook.top_codes(inside, total - inside, top_codes, min_count=min_count)
        members = (chosen["label"] == name).to_numpy()
        activity = codebook.channel_activity(codes[members], [t["code"] for t in top]).mean(axis=0)
        elsewhere = codebook.channel_activity(codes[~members], [t["code"] for t in top]).mean(
            axis=0
        )
        classes[name] = {
            "n_windows": int(members.sum()),
            "usage": inside.tolist(),
            "perplexity": float(code_perplexity(torch.as_tensor(inside, dtype=torch.float))),
            "top_codes": top,
            "channel_activity": activity.tolist(),
            "channel_activity_elsewhere": elsewhere.tolist() if (~members).any() else None,
        }

    sets = [set(filter(None, str(e).split(";"))) for e in chosen["events"]]
    events = {}
    for label in sorted(set().union(*sets)):
        has = np.array([label in s for s in sets])
        inside = codebook.code_counts(codes[has], size)
        top = codebook.top_codes(inside, total - inside, top_codes, min_count=min_count)
        picked = [t["code"] for t in top]
        per_recording = chosen.loc[has, "recording"].value_counts(sort=False)
        example = str(per_recording.idxmax())
        members = (chosen["recording"] == example).to_numpy()
        order = np.argsort(chosen.loc[members, "start_s"].to_numpy())
        activity = codebook.channel_activity(codes[members], picked)[order] if picked else None
        events[label] = {
            "n_windows": int(has.sum()),
            "top_codes": top,
            "channel_activity": (
                codebook.channel_activity(codes[has], picked).mean(axis=0).tolist()
                if picked
                else None
            ),
            "channel_activity_elsewhere": (
                codebook.channel_activity(codes[~has], picked).mean(axis=0).tolist()
                if picked and (~has).any()
                else None
            ),
            "example": {
                "recording": example,
                "start_s": chosen.loc[members, "start_s"].to_numpy()[order].tolist(),
                "labelled": has[members][order].astype(int).tolist(),
                "activity": activity.T.tolist() if activity is not None else None,
            },
        }
    info = model.pretrained_info
    document = {
        "pretrained": str(pretrained),
        "pretrained_on": info.get("labels") or "all labels",
        "stores": [str(s) for s in stores],
        "windows": windows,
        "n_windows": int(len(rows)),
        "codebook_size": size,
        "channels": layout["channels"],
        "positions": channel_positions(layout["channels"]),
        "usage": total.tolist(),
        "used_codes": int((total > 0).sum()),
        "perplexity": float(code_perplexity(torch.as_tensor(total, dtype=torch.float))),
        "classes": classes,
        "events": events,
        "settings": {"top_codes": top_codes, "min_count": min_count},
        "artifacts": {"codes": str(codes_output)},
    }
    params = {
        "split": dict(split or {}),
        "windows": windows,
        "top_codes": top_codes,
        "min_count": min_count,
    }
    inputs = [*(s / "store.json" for s in stores), Path(pretrained) / "config.json"]
    save_array(
        codes_output,
        codes.astype(np.int16),
        stage=STAGE,
        params=params,
        inputs=inputs,
        extra={"rows": "window-table rows in order", "n_windows": int(len(rows))},
    )
    save_json(output, document, stage=STAGE, params=params, inputs=[*inputs, codes_output])
    logger.info(
        "%d windows: %d of %d codes used (perplexity %.1f); %d classes, %d annotation labels",
        len(rows),
        document["used_codes"],
        size,
        document["perplexity"],
        len(classes),
        len(events),
    )
    return Path(output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.eegformer_interpret", threads=True)
    parser.add_argument("--stores", nargs="+", required=True, help="patch-store folders")
    parser.add_argument("--pretrained", required=True, help="pretrained EEGFormer folder")
    parser.add_argument("--output", required=True, help="codes.json to write")
    parser.add_argument("--codes-output", required=True, help="codes.npy to write")
    args = parser.parse_args(argv)
    execute(args, run, args.stores, args.pretrained, args.output, args.codes_output)


if __name__ == "__main__":
    main(sys.argv[1:])
