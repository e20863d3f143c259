"""Training engine: losses, regularisers, EMA, augmentation, resume, toy-problem convergence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import toy_task
from gantools.train import losses
from gantools.train.api import make_config, run_training
from gantools.train.augment import DiffAugment
from gantools.train.ema import EMA, ema_decay
from gantools.train.export import read_export
from gantools.train.rundir import CheckpointError, RunDir
from gantools.train.task import get_task


def test_hinge_and_ns_values() -> None:
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # hinge D: relu(1-real) + relu(1+fake) -> mean(0, .5) + mean(0, 1)
    assert losses.d_loss("hinge", real, fake).item() == pytest.approx(0.25 + 0.5)
    assert losses.g_loss("hinge", fake).item() == pytest.approx(1.0)
    assert losses.d_loss("ns", torch.tensor([0.0]), torch.tensor([0.0])).item() == pytest.approx(2 * np.log(2))
    assert losses.g_loss("lsgan", torch.tensor([1.0])).item() == 0.0
    with pytest.raises(ValueError, match="unknown adversarial loss"):
        losses.d_loss("wgan", real, fake)


def test_r1_of_known_function() -> None:
    # D(x) = sum(w * x) has gradient w everywhere: R1 = ||w||^2
    w = torch.tensor([1.0, 2.0, -3.0])
    pen = losses.r1_penalty(lambda x: (x * w).sum(1), torch.randn(5, 3, generator=torch.Generator().manual_seed(0)))
    assert pen.item() == pytest.approx(14.0)
    # D(x) = ||x||^2 -> grad 2x -> R1 = 4 ||x||^2 averaged over the batch
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert losses.r1_penalty(lambda t: t.pow(2).sum(1), x).item() == pytest.approx((4 * 1 + 4 * 4) / 2)


def test_r1_backpropagates_into_weights() -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 1)
    losses.r1_penalty(lin, torch.randn(4, 3)).backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_ema_update_rule_and_ramp() -> None:
    assert ema_decay(0, 0.999) == pytest.approx(0.1)
    assert ema_decay(100, 0.999) == pytest.approx(101 / 110)
    assert ema_decay(10**7, 0.999) == 0.999
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, 0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    d = ema.update(model, step=1000)
    assert d == 0.9
    assert ema.shadow.weight.item() == pytest.approx(0.1)


def test_diffaugment_is_differentiable_and_seeded() -> None:
    aug = DiffAugment("color,translation,cutout")
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0), requires_grad=True)
    torch.manual_seed(0)
    a = aug(x)
    torch.manual_seed(0)
    b = aug(x)
    assert torch.equal(a, b)
    assert a.shape == x.shape and not torch.equal(a, x)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # cutout zeroes an 8x8 square (half the side), clipped at the border, in every sample
    only_cut = DiffAugment("cutout")(torch.ones(64, 3, 16, 16))
    zero_share = (only_cut == 0).float().mean(dim=(1, 2, 3))
    assert torch.all((zero_share >= 1 / 16) & (zero_share <= 1 / 4)) and (zero_share == 1 / 4).any()
    with pytest.raises(ValueError, match="unknown augmentation"):
        DiffAugment("rotate")


def test_translation_shifts_whole_pixels_with_zero_fill() -> None:
    x = torch.arange(1, 8 * 16 * 16 + 1, dtype=torch.float32).reshape(8, 1, 16, 16)
    torch.manual_seed(1)
    y = DiffAugment("translation")(x)
    for a, b in zip(x[:, 0], y[:, 0]):
        # every kept value is the input's value at a shifted place: find the shift and check all of it
        nz = torch.nonzero(b)
        r, c = nz[0].tolist()
        dy, dx = [int(v) for v in torch.nonzero(a == b[r, c])[0] - torch.tensor([r, c])]
        assert abs(dy) <= 2 and abs(dx) <= 2
        expected = torch.zeros_like(a)
        src = a[max(0, dy):16 + min(0, dy), max(0, dx):16 + min(0, dx)]
        expected[max(0, -dy):16 + min(0, -dy), max(0, -dx):16 + min(0, -dx)] = src
        assert torch.equal(b, expected)


def test_color_keeps_gray_gray_and_augment_keeps_dtype_and_layout() -> None:
    torch.manual_seed(2)
    gray = torch.rand(4, 1, 8, 8).expand(4, 3, 8, 8).contiguous()
    out = DiffAugment("color")(gray)
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])
    assert not torch.allclose(out, gray)
    x = torch.rand(2, 3, 16, 16, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    y = DiffAugment("color,translation,cutout")(x)
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last)


# -- task registry ------------------------------------------------------------------------------
def test_tasks_share_the_registry_duplicate_policy() -> None:
    from gantools.registry import RegistrationError
    from gantools.train.task import TASKS, TrainTask

    assert get_task("toy") is toy_task.ToyTask
    with TASKS.scoped():
        TASKS.register("toy", toy_task.ToyTask)  # the same class again: allowed
        with pytest.raises(RegistrationError, match="training task name 'toy' is already registered by toy_task.ToyTask"):
            TASKS.register("toy", type("ToyTask2", (TrainTask,), {}))


def test_trainable_plugins_name_their_task_module_and_unknown_names_list_them() -> None:
    from gantools.registry import NotRegistered
    from gantools.train.task import task_paths

    assert task_paths() == {"faces": "gantools_faces.train", "stylize": "gantools_stylize.train",
                            "upscale": "gantools_upscale.train"}
    with pytest.raises(NotRegistered, match=r"unknown training task 'resize' \(known: .*stylize.*upscale"):
        get_task("resize")  # a plugin without a training task


def test_listing_trainable_plugins_imports_no_task_and_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; from gantools.train.task import task_paths; names = sorted(task_paths()); "
            "print(names, sorted(m for m in sys.modules if m == 'torch' or m.endswith('.train') and 'gantools_' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['faces', 'stylize', 'upscale'] []"


def test_task_module_does_not_import_the_engine() -> None:
    import ast
    from pathlib import Path

    import gantools.train.task as task

    tree = ast.parse(Path(task.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "gantools.train.engine" not in imported  # tasks see the engine only through StepContext


# -- engine runs ---------------------------------------------------------------------------------
def _cfg(tmp_path, steps, **kw):
    return make_config("toy", out=str(tmp_path), steps=steps, seed=3, threads=1, workers=1, **kw)


def test_resume_is_bit_exact(tmp_path) -> None:
    full = _cfg(tmp_path / "full", 6, batch_size=32, r1_gamma=1.0, r1_every=2)
    run_training(full, log=lambda m: None)
    part = _cfg(tmp_path / "part", 3, batch_size=32, r1_gamma=1.0, r1_every=2)
    run_training(part, log=lambda m: None)
    again = _cfg(tmp_path / "part", 6, batch_size=32)
    run_training(again, resume=True, log=lambda m: None)
    a = torch.load(RunDir(tmp_path / "full").checkpoints()[-1], weights_only=True)
    b = torch.load(RunDir(tmp_path / "part").checkpoints()[-1], weights_only=True)
    assert a["step"] == b["step"] == 6
    for key in ("G", "G_ema", "D"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs after resume"


def test_export_has_metadata(tmp_path) -> None:
    run_training(_cfg(tmp_path, 2, command="gantools train toy"), log=lambda m: None)
    state, meta = read_export(tmp_path / "export.safetensors")
    assert meta["task"] == "toy" and meta["arch"] == "toy-mlp" and meta["steps"] == "2"
    assert meta["command"] == "gantools train toy" and "date" in meta
    assert set(state) == set(toy_task.mlp(8, 2, 128).state_dict())
    assert meta["threads"] == "1" and 0 <= int(meta["train_seconds"]) <= int(meta["wall_seconds"])

    ckpt = RunDir(tmp_path).checkpoints()[-1]  # an earlier invocation that ran 1000 s: the clock continues
    torch.save({**torch.load(ckpt, weights_only=True), "wall_seconds": 1000.0}, ckpt)
    run_training(_cfg(tmp_path, 3, command="gantools train toy --resume"), resume=True, log=lambda m: None)
    meta = read_export(tmp_path / "export.safetensors")[1]
    assert meta["command"] == "gantools train toy && gantools train toy --resume"
    assert int(meta["wall_seconds"]) >= 1000


def test_resume_errors(tmp_path) -> None:
    run_training(_cfg(tmp_path, 2), log=lambda m: None)
    with pytest.raises(CheckpointError, match="already holds a run"):
        run_training(_cfg(tmp_path, 4), log=lambda m: None)
    cfg = make_config("toy", out=str(tmp_path), steps=4)
    cfg.task = "other"
    with pytest.raises(CheckpointError, match="not 'other'"):
        from gantools.train.engine import Trainer

        Trainer(toy_task.ToyTask, cfg, resume=True)
    # corrupt newest checkpoint: clear error naming an older one
    run_training(_cfg(tmp_path, 3), resume=True, log=lambda m: None)
    ckpts = RunDir(tmp_path).checkpoints()
    ckpts[-1].write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt.*--checkpoint"):
        run_training(_cfg(tmp_path, 5), resume=True, log=lambda m: None)
    run_training(_cfg(tmp_path, 5), checkpoint=str(ckpts[-2]), log=lambda m: None)


def test_toy_gan_covers_modes(tmp_path) -> None:
    cfg = _cfg(tmp_path, 600, r1_gamma=0.1, r1_every=4, ema_decay=0.99)
    run_training(cfg, log=lambda m: None)
    state, _ = read_export(tmp_path / "export.safetensors")
    g = toy_task.mlp(8, 2, 128)
    g.load_state_dict(state)
    with torch.no_grad():
        pts = g(torch.randn(4000, 8, generator=torch.Generator().manual_seed(1))).numpy()
    assert np.isfinite(pts).all()
    assert toy_task.modes_covered(pts) >= 6
