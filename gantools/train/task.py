"""Training tasks: what a pipeline supplies to the shared adversarial training engine.

A task owns its models, data and losses; the engine owns the loop (optimisers, precision,
D/G alternation, EMA, R1, augmentation, checkpoints, export). A task talks to the engine only
through :class:`StepContext`, a protocol, so this module does not import the engine.

Tasks live in :data:`TASKS` under the name of the plugin they train (``@TASKS.decorator("upscale")``).
A plugin whose descriptor says ``trainable=True`` has its task in the ``train`` module of the
plugin's package (``gantools_upscale.train``), imported on first use by :func:`get_task`.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

from gantools.image.formats import DEFAULT_MAX_PIXELS
from gantools.plugin import Option
from gantools.registry import NotRegistered, Registry, list_plugins

if TYPE_CHECKING:
    import numpy as np
    import torch


class StepContext(Protocol):
    """What a task's step hooks (``generate``, ``g_losses``, ``d_losses``) may use; the engine provides it."""

    step: int

    @property
    def G(self) -> "torch.nn.Module":  # noqa: N802 - conventional GAN names
        """The generator being trained."""

    @property
    def D(self) -> "torch.nn.Module | None":  # noqa: N802
        """The discriminator, or None for a reconstruction-only task."""

    @property
    def precision(self) -> str:
        """``"fp32"`` or ``"bf16"``: the run's resolved precision."""

    def autocast(self) -> Any:
        """Autocast context for forward passes of G and D."""

    def augment(self, x: "torch.Tensor") -> "torch.Tensor":
        """DiffAugment with the run's policy (identity when none); same policy for real and fake."""

    def adv_d(self, real_logits: "torch.Tensor", fake_logits: "torch.Tensor") -> "torch.Tensor":
        """The run's adversarial discriminator loss (``--adv-loss``)."""

    def adv_g(self, fake_logits: "torch.Tensor") -> "torch.Tensor":
        """The run's adversarial generator loss (``--adv-loss``)."""

    @property
    def r1_due(self) -> bool:
        """True on the steps where the lazy R1 penalty is applied."""

    def r1(self, d_fn: Callable[["torch.Tensor"], "torch.Tensor"], real: "torch.Tensor") -> "torch.Tensor | None":
        """Lazy R1 term ``gamma/2 * interval * R1`` when due this step, else None."""

    def cl(self, x: "torch.Tensor") -> "torch.Tensor":
        """Move a batch tensor to the device (channels_last on bf16 CPU)."""


#: ``--d-warmup`` when not given and ``--init`` starts a fresh discriminator beside a trained generator
AUTO_D_WARMUP = 200


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
    d_warmup: int | None = None  # steps that train D alone; None: AUTO_D_WARMUP after --init with a fresh D, else 0
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
    max_pixels: int = DEFAULT_MAX_PIXELS  # data images with more pixels are skipped (0 = no limit)
    options: dict[str, Any] = field(default_factory=dict)
    command: str = ""


class TrainTask:
    """Base class of training tasks.

    Subclasses set ``options`` and implement the hooks, and are registered in :data:`TASKS`. ``make_batch`` runs in
    worker threads and must be a pure function of ``(step, rng)`` so that resumed runs are
    bit-for-bit identical. Batches are dicts of CPU tensors (images (N, C, H, W) in [0, 1]).
    """

    #: one line for ``gantools train --list`` and the task's help (else the docstring's first line)
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    #: extra data flags besides --data, e.g. {"style_images": "style image(s)"}
    data_flags: ClassVar[dict[str, str]] = {}

    @classmethod
    def summary(cls) -> str:
        """One line describing the task: ``description``, else the first line of the class docstring."""
        text = (cls.description or cls.__dict__.get("__doc__") or "").strip()
        return text.splitlines()[0].strip() if text else ""

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

    def export_options(self) -> dict[str, Any]:
        """The task options stored with the export (``--init`` rebuilds the task from them): the
        run's options, unless the exported form differs from the trained one (:meth:`export_module`)."""
        return self.opts

    def export_module(self, generator: "torch.nn.Module") -> "torch.nn.Module":
        """The module whose weights are exported as :meth:`arch` (the EMA generator itself unless
        the task trains a different form of it, e.g. re-parameterisable blocks to collapse)."""
        return generator

    def dataset_name(self) -> str:
        return ", ".join(self.config.data)


#: training tasks by the name of the plugin they train (one duplicate policy with plugins)
TASKS: Registry[type[TrainTask]] = Registry("training task")


def task_paths() -> dict[str, str]:
    """Trainable plugin name -> module that registers its task (``<plugin package>.train``).

    Reads plugin descriptors only: imports neither the task modules nor torch.
    """
    out: dict[str, str] = {}
    for entry in list_plugins(include_broken=False):
        if entry.cls is not None and entry.cls.descriptor.trainable:
            module = sys.modules[entry.cls.__module__]
            out[entry.name] = f"{module.__package__ or module.__name__}.train"
    return out


def get_task(name: str) -> type[TrainTask]:
    """The training task of plugin ``name`` (or one registered directly in :data:`TASKS`).

    Imports the plugin's ``train`` module on first use; raises :class:`~gantools.registry.NotRegistered`
    (a ``KeyError``) listing the trainable names for an unknown one.
    """
    if name not in TASKS:
        paths = task_paths()
        if name not in paths:
            known = ", ".join(sorted(set(paths) | set(TASKS.names()))) or "none"
            raise NotRegistered(f"unknown training task {name!r} (known: {known})")
        importlib.import_module(paths[name])
    return TASKS.get(name)
