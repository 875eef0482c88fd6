"""On a CUDA device: every registry family in bf16, the training engine's resume and its
precision choice. ``pytest -m gpu`` runs these; on a machine without CUDA they are skipped
(``conftest.py`` says why), and the default run deselects them."""

import pytest
import torch

from neuroai.io import read_decathlon
from neuroai.models import create_model, list_models, load_pretrained, save_pretrained
from neuroai.testing import hippocampus_like_dataset
from neuroai.testing.training import CrashAtStep
from neuroai.training import (
    SegmentationDataConfig,
    SegmentationDataModule,
    SupervisedModule,
    TrainConfig,
    fit,
    resolve_precision,
    seed_everything,
)

pytestmark = pytest.mark.gpu


def _scalar(output) -> torch.Tensor:
    """A loss from whatever a family's forward returns (logits, maps, per-window outputs)."""
    return output.float().square().mean()


@pytest.mark.parametrize("name", list_models())
def test_every_family_trains_a_step_in_bf16_and_round_trips(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, preset="demo").cuda().train()
    x = model.example_input(2).to("cuda")
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        output = model(x)
        embedding = model.embed(x)
    assert output.dtype == torch.bfloat16 or output.dtype == torch.float32
    assert torch.isfinite(output.float()).all() and embedding.shape == (2, model.embed_dim)
    loss = _scalar(output) + _scalar(embedding)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    optimizer.step()
    changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[k])]
    assert changed, f"{name}: one AdamW step changed no parameter"
    # Saved from the GPU, reloaded onto it: the same outputs.
    model.eval()
    folder = save_pretrained(model, tmp_path / name)
    again = load_pretrained(folder, map_location="cuda").eval()
    assert next(again.parameters()).is_cuda
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        torch.testing.assert_close(again(x).float(), model(x).float(), rtol=1e-2, atol=1e-2)


def test_precision_auto_chooses_bf16_on_a_bf16_gpu():
    assert torch.cuda.is_bf16_supported()
    assert resolve_precision(TrainConfig(precision="auto")) == "bf16-mixed"
    assert resolve_precision(TrainConfig(precision="32-true")) == "32-true"


def _segmentation_run(task, run_dir, callbacks=()):
    # Dropout on the GPU draws from the CUDA generator: resuming equal to an uninterrupted
    # run needs its state restored from the checkpoint, not only the CPU one.
    config = TrainConfig(
        max_steps=8,
        batch_size=1,
        val_every_steps=4,
        checkpoint_every_steps=3,
        log_every_steps=1,
        progress_bar=False,
        accelerator="gpu",
        devices=1,
        precision="bf16-mixed",
        deterministic=True,
        monitor="val/dice",
        monitor_mode="max",
    )
    seed_everything(0, deterministic=True)
    model = create_model(
        "dsd",
        out_channels=3,
        roi_size=(16, 16, 16),
        backbone_options={
            "channels": (4, 8, 16, 16),
            "strides": (2, 2, 1),
            "num_res_units": 1,
            "dropout": 0.2,
        },
    )
    data = SegmentationDataModule(
        task.training[:4],
        task.training[4:],
        roi_size=(16, 16, 16),
        config=SegmentationDataConfig(spacing=None, num_samples=2, intensity="minmax"),
        batch_size=1,
        seed=0,
    )
    result = fit(SupervisedModule(model, config), data, config, run_dir, callbacks=list(callbacks))
    return result, model


def test_a_killed_cuda_run_resumes_to_the_same_weights(tmp_path):
    root = tmp_path / "task"
    hippocampus_like_dataset(root, n_train=5, n_test=1)
    task = read_decathlon(root)
    reference, reference_model = _segmentation_run(task, tmp_path / "a")
    with pytest.raises(RuntimeError, match="simulated kill"):
        _segmentation_run(task, tmp_path / "b", callbacks=[CrashAtStep(5)])
    checkpoint = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3
    resumed, resumed_model = _segmentation_run(task, tmp_path / "b")
    assert resumed.resumed_from == 3 and resumed.steps == reference.steps == 8
    expected = reference_model.state_dict()
    for key, value in resumed_model.state_dict().items():
        torch.testing.assert_close(value.cpu(), expected[key].cpu(), rtol=0, atol=1e-5, msg=key)
