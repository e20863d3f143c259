"""Training tasks: what a pipeline supplies to the shared adversarial training engine.

A task owns its models, data and losses; the engine owns the loop (optimisers, precision,
D/G alternation, EMA, R1, augmentation, checkpoints, export). Tasks register with
:func:`register_task`; the plugin that uses the task names it in ``Descriptor.train_task``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from gantools.plugin import Option

if TYPE_CHECKING:
    import numpy as np
    import torch

    from gantools.train.engine import StepContext


@dataclass
class TrainConfig:
    """Engine settings; every field is saved in the run's ``config.json``.

    Tasks override defaults through ``TrainTask.defaults``; the CLI overrides both.
    """

    task: str
    out: str
    data: list[str] = field(default_factory=list)
    steps: int | None = None
    time: float | None = None  # seconds for this invocation
    seed: int = 0
    precision: str = "auto"
    device: str = "auto"
    threads: int | None = None
    workers: int = 2
    batch_size: int = 16
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.99)
    lr_schedule: str = "constant"  # or "cosine" (over `steps`)
    warmup: int = 0
    d_steps: int = 1
    adv_loss: str = "ns"
    r1_gamma: float = 0.0
    r1_every: int = 16
    ema_decay: float = 0.999
    augment: str = ""
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    checkpoint_minutes: float = 5.0
    keep: int = 3
    init: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    command: str = ""


class TrainTask:
    """Base class of training tasks.

    Subclasses set ``name`` and ``options`` and implement the hooks. ``make_batch`` runs in
    worker threads and must be a pure function of ``(step, rng)`` so that resumed runs are
    bit-for-bit identical. Batches are dicts of CPU tensors (images (N, C, H, W) in [0, 1]).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    #: extra data flags besides --data, e.g. {"style_images": "style image(s)"}
    data_flags: ClassVar[dict[str, str]] = {}

    def __init__(self, config: TrainConfig, log: Callable[[str], None] = print) -> None:
        self.config = config
        self.opts = {o.name: o.validate(config.options.get(o.name, o.default)) for o in self.options}
        self.log = log

    # -- hooks -------------------------------------------------------------------------
    def setup_data(self) -> None:
        """Scan and decode training data; raise ``DataError`` for unusable data."""

    def build_generator(self) -> "torch.nn.Module":
        raise NotImplementedError

    def build_discriminator(self) -> "torch.nn.Module | None":
        """The discriminator, or None for a pure reconstruction task (no adversarial loss)."""
        return None

    def arch(self) -> tuple[str, dict[str, Any]]:
        """Architecture name (``gantools.nn`` registry) and config of the generator."""
        raise NotImplementedError

    def make_batch(self, step: int, rng: "np.random.Generator") -> dict[str, "torch.Tensor"]:
        raise NotImplementedError

    def generate(self, ctx: "StepContext", batch: dict) -> Any:
        """Generator output for ``batch`` (a tensor, or a dict of tensors)."""
        raise NotImplementedError

    def g_losses(self, ctx: "StepContext", batch: dict, fake: Any) -> dict[str, "torch.Tensor"]:
        """Weighted generator loss terms; the engine sums them."""
        raise NotImplementedError

    def d_losses(self, ctx: "StepContext", batch: dict, fake: Any) -> dict[str, "torch.Tensor"]:
        """Weighted discriminator loss terms (``fake`` is detached)."""
        raise NotImplementedError

    def fixed_batch(self) -> dict:
        """Inputs for sample grids, identical at every sampling step."""
        import numpy as np

        return self.make_batch(-1, np.random.default_rng(12345))

    def sample(self, generator: "torch.nn.Module", fixed: dict) -> "torch.Tensor":
        """Images (N, 3, H, W) in [0, 1] for the sample grid."""
        raise NotImplementedError

    def export_metadata(self) -> dict[str, str]:
        """Extra metadata stored in the export (e.g. scale, style)."""
        return {}

    def dataset_name(self) -> str:
        return ", ".join(self.config.data)


_tasks: dict[str, type[TrainTask]] = {}


def register_task(cls: type[TrainTask]) -> type[TrainTask]:
    """Class decorator adding a task to the registry under ``cls.name``."""
    _tasks[cls.name] = cls
    return cls


def task_paths() -> dict[str, str]:
    """Task name -> ``module:Class`` from plugin descriptors (no torch import)."""
    from gantools.registry import list_plugins

    out: dict[str, str] = {}
    for entry in list_plugins(include_broken=False):
        path = entry.descriptor.train_task if entry.descriptor else None
        if path:
            out.setdefault(entry.descriptor.task, path)
    return out


def get_task(name: str) -> type[TrainTask]:
    """The task class called ``name`` (imports the module that defines it)."""
    if name not in _tasks:
        paths = task_paths()
        if name not in paths:
            known = ", ".join(sorted(set(paths) | set(_tasks))) or "none"
            raise KeyError(f"unknown training task {name!r} (known: {known})")
        module, _, attr = paths[name].partition(":")
        _tasks.setdefault(name, getattr(importlib.import_module(module), attr))
    return _tasks[name]
