"""The plugin contract: a descriptor plus ``process(image) -> image`` on OpenCV-style arrays.

Images are numpy arrays as OpenCV gives them: ``HxW`` gray, ``HxWx3`` BGR or ``HxWx4`` BGRA,
``uint8`` or ``uint16``. Every plugin returns an array of the same kind (same dtype, same channel
layout), ``descriptor.scale`` times larger for scaling plugins.

This module imports neither torch nor OpenCV: the registry and ``gantools list`` read descriptors
without loading any model. Plugins that run a network hold a :class:`gantools.runner.ImageRunner`
(composition, not a base class): it does the array <-> tensor work, tiling and precision once for
all of them, from the network's :class:`gantools.nn.descriptor.ModelDescriptor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol, Sequence, runtime_checkable

from gantools.backends import check_backend
from gantools.device import check_device

if TYPE_CHECKING:  # numpy is imported where it is used: `gantools list` describes plugins without it
    import numpy as np

#: Options every ``gantools run`` command has; a plugin option may not reuse these names.
PLATFORM_OPTIONS = frozenset(
    {
        "device", "precision", "threads", "tile", "weights", "format", "quality", "name",
        "overwrite", "recursive", "from_list", "null", "json", "output", "inputs", "background",
        "help", "workers", "quiet", "max_pixels", "progress", "compare", "backend", "jobs",
    }
)
PRECISIONS = ("auto", "fp32", "bf16")


class OptionError(ValueError):
    """An option value that the plugin does not accept (message names the option)."""


@dataclass(frozen=True)
class Option:
    """A typed plugin option, shown by ``gantools info`` and turned into a CLI flag.

    ``type`` is one of ``int``, ``float``, ``str``, ``bool``. ``choices`` restricts str/int
    values; ``min``/``max`` bound numbers (inclusive). ``default=None`` means "not set".
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None

    @property
    def flag(self) -> str:
        """``--name-with-dashes``; a trailing ``_`` (a Python keyword such as ``class_``) is dropped."""
        return "--" + self.name.rstrip("_").replace("_", "-")

    def validate(self, value: Any) -> Any:
        """Return ``value`` converted to the option's type, or raise :class:`OptionError`."""
        if value is None:
            return None
        try:
            if self.type is bool and isinstance(value, str):
                low = value.lower()
                if low not in {"1", "0", "true", "false", "yes", "no"}:
                    raise ValueError(value)
                value = low in {"1", "true", "yes"}
            else:
                value = self.type(value)
        except (TypeError, ValueError):
            raise OptionError(f"option {self.flag}: {value!r} is not a valid {self.type.__name__}") from None
        if isinstance(value, float) and value != value:
            raise OptionError(f"option {self.flag}: nan is not a number")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise OptionError(f"option {self.flag}: {value!r} is not one of {allowed}")
        if self.min is not None and value < self.min:
            raise OptionError(f"option {self.flag}: {value} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            raise OptionError(f"option {self.flag}: {value} is above the maximum {self.max}")
        return value


@dataclass(frozen=True)
class Descriptor:
    """What a plugin is and accepts; read without instantiating or importing torch.

    ``kind`` is ``"image"`` for image-to-image plugins and ``"generator"`` for plugins that
    also make new images (``gantools generate``). ``scale`` is the default output/input size
    ratio (a plugin whose scale depends on options reports it through ``Plugin.scale``).
    ``trainable`` says that the plugin's package has a ``train`` module registering a training
    task under the plugin's name (``gantools train NAME``; see :mod:`gantools.train.task`).
    """

    name: str
    task: str
    description: str
    scale: int = 1
    channels: tuple[int, ...] = (1, 3, 4)
    tiling: bool = False
    bf16: bool = True
    options: tuple[Option, ...] = ()
    kind: str = "image"
    weights: str = "none"
    trainable: bool = False

    def option(self, name: str) -> Option:
        for opt in self.options:
            if opt.name == name:
                return opt
        raise OptionError(f"plugin {self.name!r} has no option --{name.replace('_', '-')}")


@dataclass
class RuntimeConfig:
    """Platform settings shared by every plugin instance (not plugin options)."""

    device: str = "cpu"
    precision: str = "auto"
    threads: int | None = None
    tile: int | None = None
    weights: str | None = None
    backend: str = "auto"


class Plugin:
    """Base class of every plugin.

    Subclasses set ``descriptor`` and implement :meth:`process` (networks: build an
    :class:`~gantools.runner.ImageRunner` in :meth:`setup` and call it). Construction validates
    cheap things (option values, that named weights exist) and stores the options in
    ``self.options``; heavy work (imports, weight loading) belongs in :meth:`setup`, which runs
    once, on first use.
    """

    descriptor: ClassVar[Descriptor]
    #: ``process`` may run on several images at once, in different threads (it keeps no per-image
    #: state on ``self``): a batch then computes several images in parallel (``--jobs``)
    parallel_safe: ClassVar[bool] = False

    def __init__(
        self,
        *,
        device: str = "cpu",
        precision: str = "auto",
        threads: int | None = None,
        tile: int | None = None,
        weights: str | None = None,
        backend: str = "auto",
        **options: Any,
    ) -> None:
        if precision not in PRECISIONS:
            raise OptionError(f"option --precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
        if threads is not None and threads < 1:
            raise OptionError(f"option --threads: {threads} must be at least 1")
        if tile is not None and tile < 0:
            raise OptionError(f"option --tile: {tile} must be 0 (off) or positive")
        try:
            check_device(device)
            check_backend(backend)
        except ValueError as exc:
            raise OptionError(str(exc)) from None
        self.runtime = RuntimeConfig(device, precision, threads, tile, weights, backend=backend)
        known = {opt.name: opt for opt in self.descriptor.options}
        for key in options:
            if key not in known:
                raise OptionError(f"plugin {self.descriptor.name!r} has no option --{key.replace('_', '-')}")
        self.options = {
            name: opt.validate(options.get(name, opt.default)) for name, opt in known.items()
        }
        self.check_options()
        self._ready = False
        #: set by a batch: ``progress(done, total)`` for long work inside one ``process`` call
        self.progress: Callable[[int, int], None] | None = None

    # -- hooks ---------------------------------------------------------------------------
    def check_options(self) -> None:
        """Cross-option validation; raise :class:`OptionError`. Runs in ``__init__``."""

    def setup(self) -> None:
        """Load models and other heavy state. Called once before the first image."""

    def process(self, image: np.ndarray) -> np.ndarray:
        """Transform one image (see module docstring for the array contract)."""
        raise NotImplementedError

    # -- provided ------------------------------------------------------------------------
    @property
    def scale(self) -> int:
        """Output size / input size of this instance (options may change the default)."""
        return self.descriptor.scale

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` of the result for an input of that size: :attr:`scale` times,
        rounded, at least one pixel (plugins whose options change it override this)."""
        s = self.scale
        return max(1, round(height * s)), max(1, round(width * s))

    def report_progress(self, done: int, total: int) -> None:
        """Tell the batch's progress display how far ``process`` is (tiles, rows or steps)."""
        if self.progress is not None:
            self.progress(done, total)

    def ensure_setup(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.process(image)

    def check_image(self, image: np.ndarray) -> None:
        """Raise ``ValueError`` unless ``image`` follows the array contract for this plugin."""
        check_image(image, self.descriptor.channels)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"<{type(self).__name__} {self.descriptor.name!r} {opts}>"


@runtime_checkable
class GeneratorPlugin(Protocol):
    """A plugin that also makes new images from seeds: what ``gantools generate NAME`` drives.

    Generation settings (truncation, class labels, ...) are the plugin's own options, given at
    construction like any option. Image ``i`` of ``generate(n, seed)`` depends only on
    ``seed + i`` (never on ``n`` or on a batch size); images are ``HxWx3`` BGR ``uint8``.
    """

    descriptor: ClassVar[Descriptor]

    def generate(self, n: int, seed: int) -> list[np.ndarray]:
        """``n`` new images for seeds ``seed .. seed + n - 1``."""
        ...

    def interpolate(self, seed_a: int, seed_b: int, frames: int) -> list[np.ndarray]:
        """``frames`` images walking the latent space from ``seed_a`` to ``seed_b`` (both included)."""
        ...


def channels_of(image: np.ndarray) -> int:
    """Number of channels of an OpenCV-style array (1 for ``HxW``)."""
    return 1 if image.ndim == 2 else image.shape[2]


def check_image(image: np.ndarray, channels: Sequence[int] = (1, 3, 4)) -> None:
    """Raise ``ValueError`` describing why ``image`` is not a valid OpenCV-style array."""
    import numpy as np

    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"unsupported dtype {image.dtype} (expected uint8 or uint16)")
    if image.ndim == 3 and image.shape[2] == 1:
        pass
    elif image.ndim not in (2, 3):
        raise ValueError(f"expected HxW or HxWxC array, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image of shape {image.shape}")
    c = channels_of(image)
    if c not in channels:
        raise ValueError(f"{c}-channel images are not supported (accepted: {channels})")
