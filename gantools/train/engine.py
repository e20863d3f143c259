"""The one adversarial training loop every gantools pipeline trains through.

Per step: the task builds a batch (in worker threads, ahead of time), the generator runs once,
the discriminator takes ``d_steps`` steps on real vs detached fake (plus lazy R1 when due), then
the generator steps on the task's weighted losses and the EMA copy is updated. During the first
``d_warmup`` steps of a run the generator is frozen and only D steps: a fresh discriminator
beside a trained generator (``--init``) first learns what that generator makes, instead of
pushing it with random gradients. bf16 autocast
and channels_last are used on CPUs with AMX or AVX512-BF16; losses are computed in fp32. Every random draw of step
``k`` comes from generators seeded by ``(seed, k)``, so a resumed run continues bit-for-bit.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch

from gantools.device import autocast, resolve_precision, set_threads, torch_device
from gantools.train import ddp, losses
from gantools.train.augment import DiffAugment
from gantools.train.data import Prefetcher, pixel_limit, step_rng
from gantools.train.ema import EMA
from gantools.train.export import export_generator
from gantools.train.rundir import CheckpointError, RunDir
from gantools.train.samples import make_grid
from gantools.train.shipped import start_from
from gantools.train.task import AUTO_D_WARMUP, TrainConfig, TrainTask

RESUMABLE_CHANGES = ("steps", "time", "threads", "workers", "command")


@dataclass
class TrainResult:
    """How a ``Trainer.run`` ended."""

    step: int
    images_seen: int
    stopped_by: str  # "steps", "time", "interrupt"
    export_path: str
    seconds: float


class TrainerContext:
    """The engine's :class:`~gantools.train.task.StepContext`: a task's view of one step of a :class:`Trainer`."""

    def __init__(self, trainer: "Trainer") -> None:
        self._t = trainer
        self.step = 0

    @property
    def G(self) -> torch.nn.Module:  # noqa: N802 - conventional GAN names
        return self._t.G

    @property
    def D(self) -> torch.nn.Module | None:  # noqa: N802
        return self._t.D

    @property
    def precision(self) -> str:
        return self._t.precision

    def autocast(self) -> Any:
        """Autocast context for forward passes of G and D."""
        return autocast(self.precision, self._t.device)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """DiffAugment with the run's policy (identity when none); same policy for real and fake."""
        return self._t.augment(x) if self._t.augment is not None else x

    def adv_d(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return losses.d_loss(self._t.config.adv_loss, real_logits, fake_logits)

    def adv_g(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return losses.g_loss(self._t.config.adv_loss, fake_logits)

    @property
    def r1_due(self) -> bool:
        cfg = self._t.config
        return cfg.r1_gamma > 0 and self.step % max(1, cfg.r1_every) == 0

    def r1(self, d_fn: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor | None:
        """Lazy R1 term ``gamma/2 * interval * R1`` when due this step, else None."""
        if not self.r1_due:
            return None
        cfg = self._t.config
        with self.autocast():
            pen = losses.r1_penalty(d_fn, real)
        return pen * (cfg.r1_gamma / 2.0 * max(1, cfg.r1_every))

    def cl(self, x: torch.Tensor) -> torch.Tensor:
        """Move a batch tensor to the device (channels_last on bf16 CPU)."""
        x = x.to(self._t.device, non_blocking=True)
        if self._t.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def _detach(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, dict):
        return {k: _detach(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detach(v) for v in obj)
    return obj


def _lr_factor(cfg: TrainConfig, step: int) -> float:
    f = 1.0
    if cfg.warmup and step < cfg.warmup:
        f = (step + 1) / cfg.warmup
    if cfg.lr_schedule == "cosine" and cfg.steps:
        t = min(1.0, step / cfg.steps)
        f *= 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * t))
    return f


class Trainer:
    """Runs a :class:`TrainTask` under a :class:`TrainConfig` into a run directory."""

    def __init__(
        self,
        task_cls: type[TrainTask],
        config: TrainConfig,
        *,
        resume: bool = False,
        checkpoint: str | None = None,
        log: Callable[[str], None] = print,
        progress: Callable[[dict], None] | None = None,
    ) -> None:
        self.ddp = ddp.from_env(str(torch_device(config.device)))  # DDP: torchrun's ranks (gantools.train.ddp)
        if not self.ddp.is_main:  # DDP: only rank 0 logs
            log, progress = (lambda text: None), None
        self.run_dir = RunDir(config.out)
        self.log = log
        self.progress = progress
        self.resume = resume or checkpoint is not None
        if self.resume:
            saved = self.run_dir.read_config()
            if saved.get("task") != config.task:
                raise CheckpointError(
                    f"{config.out}: this is a {saved.get('task')!r} run, not {config.task!r}; use another --out"
                )
            saved.pop("arch", None)
            merged = {**saved, **{k: getattr(config, k) for k in RESUMABLE_CHANGES if getattr(config, k) is not None}}
            merged["betas"] = tuple(merged["betas"])
            if saved.get("command") and config.command:  # the run's history: every invocation, in order
                merged["command"] = f"{saved['command']} && {config.command}"
            config = TrainConfig(**merged)
        elif self.run_dir.checkpoints():
            raise CheckpointError(f"{config.out}: already holds a run; continue it with --resume or pick another --out")
        self.config = config
        self.checkpoint_path = checkpoint
        self.task = task_cls(config, log)

    # -- setup ---------------------------------------------------------------------------
    def _setup(self) -> int:
        cfg = self.config
        if self.ddp.is_main:  # DDP: only rank 0 writes the run directory
            self.run_dir.create()
        set_threads(cfg.threads)
        self.device = torch_device(cfg.device)
        self.precision = resolve_precision(cfg.precision, str(self.device))
        self.channels_last = self.precision == "bf16" and self.device.type == "cpu"
        with pixel_limit(cfg.max_pixels):  # every ImageSet of the task follows --max-pixels
            self.task.setup_data()
        torch.manual_seed(cfg.seed)
        self.G = self.task.build_generator().to(self.device)
        self.D = self.task.build_discriminator()
        fresh_d = self.D is not None
        if cfg.init and not self.resume:  # G, and D from a shipped model's training state
            fresh_d = fresh_d and not start_from(self.task, cfg.init, self.G, self.D, log=self.log).d_loaded
        if cfg.d_warmup is None:  # resolved once; config.json keeps the number for --resume
            cfg.d_warmup = AUTO_D_WARMUP if cfg.init and fresh_d and not self.resume else 0
            if cfg.d_warmup:
                self.log(f"the discriminator trains alone for the first {cfg.d_warmup} steps, the generator frozen "
                         "(--d-warmup 0: from the first step)")
        if self.D is not None:
            self.D = self.D.to(self.device)
        if self.channels_last:
            self.G = self.G.to(memory_format=torch.channels_last)
            if self.D is not None:
                self.D = self.D.to(memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=tuple(cfg.betas))
        self.opt_d = (
            torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas)) if self.D is not None else None
        )
        self.ema = EMA(self.G, cfg.ema_decay)
        self.augment = DiffAugment(cfg.augment) if cfg.augment else None
        self.images_seen = 0
        self.train_seconds = 0.0  # in the steps themselves
        self.wall_before = 0.0  # wall-clock seconds of earlier invocations (--resume)
        self.started = time.monotonic()
        step = 0
        if self.resume:
            step = self._load(self.checkpoint_path)
            self.log(f"resumed {cfg.out} at step {step}")
        self.ddp.broadcast(self.G)  # DDP: every rank starts from rank 0's weights
        self.ddp.broadcast(self.D)
        if self.ddp.is_main:  # DDP: only rank 0 writes
            self.run_dir.write_config({**asdict(self.config), "arch": list(self.task.arch())})
        return step

    def _state(self, step: int) -> dict[str, Any]:
        name, arch_cfg = self.task.arch()
        return {
            "task": self.config.task,
            "arch": {"name": name, "config": arch_cfg},
            "step": step,
            "images_seen": self.images_seen,
            "train_seconds": self.train_seconds,
            "wall_seconds": self.wall_seconds,
            "G": self.G.state_dict(),
            "G_ema": self.ema.state_dict(),
            "D": self.D.state_dict() if self.D is not None else {},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else {},
        }

    def _load(self, path: str | None) -> int:
        from pathlib import Path

        state = self.run_dir.load_checkpoint(Path(path) if path else None)
        name, arch_cfg = self.task.arch()
        if state.get("task") != self.config.task or state.get("arch", {}).get("name") != name:
            raise CheckpointError(
                f"checkpoint is for task {state.get('task')!r} / architecture "
                f"{state.get('arch', {}).get('name')!r}, not {self.config.task!r} / {name!r}"
            )
        try:
            self.G.load_state_dict(state["G"])
            self.ema.load_state_dict(state["G_ema"])
            if self.D is not None:
                self.D.load_state_dict(state["D"])
                self.opt_d.load_state_dict(state["opt_d"])
            self.opt_g.load_state_dict(state["opt_g"])
        except (RuntimeError, KeyError) as exc:
            first = str(exc).splitlines()[0]
            raise CheckpointError(f"checkpoint does not match this run's architecture: {first}") from None
        self.images_seen = int(state["images_seen"])
        self.train_seconds = float(state["train_seconds"])
        self.wall_before = float(state.get("wall_seconds", self.train_seconds))
        return int(state["step"])

    @property
    def wall_seconds(self) -> float:
        """Wall-clock seconds of this run so far, every invocation (set-up, data, samples included)."""
        return self.wall_before + time.monotonic() - self.started

    # -- persistence -----------------------------------------------------------------------
    def save(self, step: int) -> None:
        self.run_dir.save_checkpoint(self._state(step), step, self.config.keep)
        name, arch_cfg = self.task.arch()
        meta = {
            "task": self.config.task,
            "command": self.config.command,
            "dataset": self.task.dataset_name(),
            "steps": str(step),
            "images_seen": str(self.images_seen),
            "options": json.dumps(self.task.export_options(), sort_keys=True),  # --init rebuilds the task from them
            "init": self.config.init or "",  # what the run continued (ship extends that model's history)
            "wall_seconds": f"{self.wall_seconds:.0f}", "train_seconds": f"{self.train_seconds:.0f}",
            "threads": str(torch.get_num_threads()),
            **self.task.export_metadata(),
        }
        export_generator(self.run_dir.export_path, self.task.export_module(self.ema.shadow), name, arch_cfg, meta)

    def sample(self, step: int) -> None:
        with torch.no_grad(), autocast(self.precision, self.device):
            imgs = self.task.sample(self.ema.shadow, self._fixed)
        self.run_dir.save_samples(make_grid(imgs.float()), step)

    # -- loop ------------------------------------------------------------------------------
    def _step(self, ctx: TrainerContext, batch: dict) -> dict[str, float]:
        cfg = self.config
        logs: dict[str, float] = {}
        frozen = ctx.step < (cfg.d_warmup or 0)  # D warm-up: G neither trains nor needs a graph
        with torch.no_grad() if frozen else contextlib.nullcontext():
            fake = self.task.generate(ctx, batch)
        if self.D is not None:
            self.D.requires_grad_(True)
            for k in range(cfg.d_steps):
                if k == 0:
                    d_batch, d_fake = batch, _detach(fake)
                else:
                    d_batch = self.ddp.shard(self.task.make_batch(ctx.step, step_rng(cfg.seed, ctx.step, k)))
                    with torch.no_grad():
                        d_fake = self.task.generate(ctx, d_batch)
                terms = {n: v for n, v in self.task.d_losses(ctx, d_batch, d_fake).items() if v is not None}
                loss_d = sum(terms.values())
                self.opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                self.ddp.average_grads(self.D)  # DDP
                self.opt_d.step()
            logs.update({f"d_{n}": float(v.detach()) for n, v in terms.items()})
            self.D.requires_grad_(False)
        if frozen:
            return logs
        terms = self.task.g_losses(ctx, batch, fake)
        loss_g = sum(terms.values())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.ddp.average_grads(self.G)  # DDP
        self.opt_g.step()
        self.ema.update(self.G, ctx.step)
        logs.update({f"g_{n}": float(v.detach()) for n, v in terms.items()})
        return logs

    def run(self) -> TrainResult:
        """Train until ``steps``, the ``time`` budget or Ctrl+C; checkpoint and export at the end."""
        cfg = self.config
        step = self._setup()
        self._fixed = self.task.fixed_batch()
        start = time.monotonic()
        last_ckpt = start
        stopped_by = "steps"
        ctx = TrainerContext(self)
        prefetch = Prefetcher(lambda s: self.task.make_batch(s, step_rng(cfg.seed, s)), step, workers=cfg.workers)
        stop = StopRequest()
        window_t, window_n = time.monotonic(), 0
        try:
            self.G.train()
            if self.D is not None:
                self.D.train()
            while cfg.steps is None or step < cfg.steps:
                if self.ddp.agree(stop.requested):  # DDP: a stop on any rank stops all
                    stopped_by = "interrupt"
                    break
                if self.ddp.agree(cfg.time is not None and time.monotonic() - start >= cfg.time):
                    stopped_by = "time"
                    break
                torch.manual_seed(hash((cfg.seed, step)) & 0x7FFF_FFFF_FFFF)
                ctx.step = step
                f = _lr_factor(cfg, step)
                for g in self.opt_g.param_groups:
                    g["lr"] = cfg.lr_g * f
                if self.opt_d is not None:
                    for g in self.opt_d.param_groups:
                        g["lr"] = cfg.lr_d * f
                batch = self.ddp.shard(next(prefetch))  # DDP: this rank's rows of the step's batch
                t0 = time.monotonic()
                logs = self.ddp.average_logs(self._step(ctx, batch))  # DDP: the global batch's losses
                self.train_seconds += time.monotonic() - t0
                n = next(iter(batch.values())).shape[0] * self.ddp.world
                self.images_seen += n
                window_n += n
                step += 1
                if not self.ddp.is_main:  # DDP: only rank 0 logs, samples and checkpoints
                    continue
                if step % cfg.log_every == 0 or step == cfg.steps:
                    now = time.monotonic()
                    row = {"step": step, "images_seen": self.images_seen, "lr": cfg.lr_g * f,
                           "images_per_s": window_n / max(1e-9, now - window_t), **logs}
                    window_t, window_n = now, 0
                    self.run_dir.log_metrics(row)
                    if self.progress is not None:
                        self.progress({**row, "elapsed": now - start})
                if step % cfg.sample_every == 0:
                    self.sample(step)
                if step % cfg.checkpoint_every == 0 or time.monotonic() - last_ckpt > cfg.checkpoint_minutes * 60:
                    self.save(step)
                    last_ckpt = time.monotonic()
        except KeyboardInterrupt:  # a second Ctrl+C, or one outside the main thread's handler
            stopped_by = "interrupt"
        finally:
            prefetch.close()
            stop.restore()
        if self.ddp.is_main:  # DDP
            self.save(step)
            self.sample(step)
        self.ddp.close()
        return TrainResult(step, self.images_seen, stopped_by, str(self.run_dir.export_path), time.monotonic() - start)


class StopRequest:
    """Ctrl+C / SIGTERM during training: the first one asks the loop to stop after the current
    step (a flag, so no exception lands inside a checkpoint write, a log line or the progress
    display's locks); a second one raises ``KeyboardInterrupt`` at once. Handlers are installed
    only in the main thread and put back by :meth:`restore`."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        import threading

        self.requested = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
