"""Training speed of the ``faces`` task (FaceGAN, default 64x64 config) through the engine's step.

    python bench/train_speed_faces.py                      # 1 thread, fp32 vs bf16, batch 64
    python bench/train_speed_faces.py --threads 2 --steps 20 --profile

For each precision it builds the engine's :class:`~gantools.train.engine.Trainer` for
``FacesTask`` on a small synthetic zip (speed does not depend on image content), runs
``Trainer._step`` (G forward, D step on DiffAugment(real + fake) with lazy R1 every 16 steps, G
step, EMA update) and reports steps/s and images/s, plus the time of each part (measured by
replaying the same step piece by piece) and, with ``--profile``, the slowest ops.

Times are CPU time of the main thread (``time.thread_time``) when ``--threads 1`` (robust to
other processes on a shared machine) and wall time otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def synthetic_zip(folder: Path, count: int = 256, size: int = 128) -> Path:
    """A zip of random smooth JPEGs named like UTKFace (content does not matter for speed)."""
    import cv2

    rng = np.random.default_rng(0)
    path = folder / "utkface-128-00.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            img = cv2.resize(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
            zf.writestr(f"{int(rng.integers(1, 90))}_{i % 2}_0_{i:08d}.jpg", cv2.imencode(".jpg", img)[1].tobytes())
    return path


class Clock:
    """Per-thread CPU time for one thread (robust to a busy machine), wall time otherwise."""

    def __init__(self, threads: int) -> None:
        self.now: Callable[[], float] = time.thread_time if threads == 1 else time.perf_counter

    def time(self, fn: Callable[[], Any]) -> float:
        t = self.now()
        fn()
        return self.now() - t


def make_trainer(precision: str, args: argparse.Namespace, data: Path, out: Path) -> Any:
    import gantools_faces.train  # noqa: F401  (registers the task)
    from gantools.train.api import make_config
    from gantools.train.engine import Trainer, TrainerContext
    from gantools.train.task import get_task

    opts = dict(resolution=args.resolution)
    for k in ("channel_base", "channel_max", "d_channel_base", "d_channel_max"):
        if getattr(args, k) is not None:
            opts[k] = getattr(args, k)
    if args.no_noise:
        opts["noise"] = False
    cfg = make_config("faces", out=str(out), data=[str(data)], precision=precision, threads=args.threads,
                      workers=1, batch_size=args.batch, task_options=opts, device="cpu")
    trainer = Trainer(get_task("faces"), cfg, log=lambda m: None)
    trainer._setup()
    trainer.G.train()
    trainer.D.train()
    return trainer, TrainerContext(trainer)


def bench_precision(precision: str, args: argparse.Namespace, data: Path, tmp: Path) -> dict[str, float]:
    from gantools.train.data import step_rng

    trainer, ctx = make_trainer(precision, args, data, tmp / f"run-{precision}")
    task, clock = trainer.task, Clock(args.threads)
    batches = [task.make_batch(s, step_rng(0, s)) for s in range(4)]
    t_batch = min(clock.time(lambda: task.make_batch(9, step_rng(0, 9))) for _ in range(3))
    for s in range(args.warmup):
        ctx.step = s + 1  # not a multiple of r1_every: warm-up without R1
        trainer._step(ctx, batches[s % 4])
    step_times = []
    for s in range(args.steps):
        ctx.step = s  # R1 at s % 16 == 0, as in training
        step_times.append(clock.time(lambda: trainer._step(ctx, batches[s % 4])))
    # the same step, piece by piece (no R1), median of several
    parts: dict[str, list[float]] = {k: [] for k in ("g_forward", "d_step", "g_step", "ema", "augment_d", "augment_g", "r1")}
    for s in range(max(3, args.steps // 4)):
        ctx.step = 1
        b = batches[s % 4]
        holder: dict[str, Any] = {}
        parts["g_forward"].append(clock.time(lambda: holder.__setitem__("fake", task.generate(ctx, b))))
        fake = holder["fake"]

        def d_step() -> None:
            trainer.D.requires_grad_(True)
            loss = sum(task.d_losses(ctx, b, fake.detach()).values())
            trainer.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            trainer.opt_d.step()
            trainer.D.requires_grad_(False)

        def g_step() -> None:
            loss = sum(task.g_losses(ctx, b, fake).values())
            trainer.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            trainer.opt_g.step()

        parts["d_step"].append(clock.time(d_step))
        parts["g_step"].append(clock.time(g_step))
        parts["ema"].append(clock.time(lambda: trainer.ema.update(trainer.G, 1000)))
        real = ctx.cl(b["real"])
        both = torch.cat([real, fake.detach()]).contiguous()  # as FacesTask.d_losses
        parts["augment_d"].append(clock.time(lambda: ctx.augment(both)))
        f2 = fake.detach().contiguous().requires_grad_(True)
        parts["augment_g"].append(clock.time(lambda: ctx.augment(f2).sum().backward()))
        ctx.step = 0
        ra, rg = ctx.cl(b["real_age"]), ctx.cl(b["real_gender"])
        parts["r1"].append(clock.time(lambda: ctx.r1(lambda t: trainer.D(t, ra, rg), real).backward()))
    med = {k: float(np.median(v)) for k, v in parts.items()}
    step = float(np.median(step_times))
    out = {"step_s": step, "steps_per_s": 1 / step, "img_per_s": args.batch / step, "make_batch_s": t_batch, **med}
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for s in range(3):
                ctx.step = s + 1
                trainer._step(ctx, batches[s % 4])
        print(f"\n[{precision}] slowest ops over 3 steps (self CPU time):")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64, help="batch size (the task default is 64)")
    ap.add_argument("--steps", type=int, default=16, help="measured engine steps per precision")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--channel-base", type=int)
    ap.add_argument("--channel-max", type=int)
    ap.add_argument("--d-channel-base", type=int)
    ap.add_argument("--d-channel-max", type=int)
    ap.add_argument("--no-noise", action="store_true")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    from gantools.device import has_bf16_cpu

    clock = "CPU time of the main thread" if args.threads == 1 else "wall time"
    print(f"faces training speed: {args.resolution}x{args.resolution}, batch {args.batch}, {args.threads} thread(s), "
          f"bf16 CPU={has_bf16_cpu()}, torch {torch.__version__}; times are {clock}")
    results = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        data = synthetic_zip(tmp)
        for precision in args.precisions.split(","):
            r = bench_precision(precision, args, data, tmp)
            results[precision] = r
            print(f"{precision:5s} {r['steps_per_s']:6.2f} steps/s {r['img_per_s']:7.1f} img/s | step {r['step_s'] * 1e3:6.1f} ms = "
                  f"G fwd {r['g_forward'] * 1e3:5.1f} + D step {r['d_step'] * 1e3:5.1f} + G step {r['g_step'] * 1e3:5.1f} "
                  f"+ EMA {r['ema'] * 1e3:4.1f} (+ R1 {r['r1'] * 1e3:5.1f} every 16) | of which augment "
                  f"{r['augment_d'] * 1e3:5.1f} (D, fwd) + {r['augment_g'] * 1e3:5.1f} (G, fwd+bwd) | make_batch "
                  f"{r['make_batch_s'] * 1e3:4.1f} (worker thread)", flush=True)
    if "fp32" in results and "bf16" in results:
        ratio = results["bf16"]["img_per_s"] / results["fp32"]["img_per_s"]
        parts = " ".join(f"{k} x{results['fp32'][k] / max(1e-9, results['bf16'][k]):.1f}"
                         for k in ("g_forward", "d_step", "g_step", "augment_d", "augment_g"))
        print(f"bf16 / fp32: x{ratio:.2f} overall; {parts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
