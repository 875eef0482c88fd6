# ruff: noqa: T201 (an example prints what it shows; the docs hook hides this line)
"""Every registered model family: build its demo preset, run an example batch, save and reload."""

import tempfile

import torch

from neuroai.models import create_model, describe_models, load_pretrained

torch.manual_seed(0)
for entry in describe_models():
    name = entry["name"]
    if name == "probe":  # a head on another family's encoder, not a family of its own
        continue
    model = create_model(name, preset="demo").eval()
    x = model.example_input(2)  # a batch of two, in the family's input contract
    with torch.no_grad():
        embedding = model.embed(x)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name:10s} {entry['modality']:7s} presets {', '.join(entry['presets'])}")
    print(f"{'':10s} demo: {n_params:,} parameters, embedding {tuple(embedding.shape)}")
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)  # model.safetensors + config.json + README.md
        again = load_pretrained(folder).eval()
        with torch.no_grad():
            same = torch.equal(again.embed(x), embedding)
    print(f"{'':10s} reloaded from safetensors, same embedding: {same}")
