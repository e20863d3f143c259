"""Network architectures and their registry (importing this package imports torch).

Each family lives in its own module of this package: the ``nn.Module`` and an
:class:`~gantools.nn.registry.Architecture` that recognises its checkpoints and returns a
:class:`~gantools.nn.descriptor.ModelDescriptor`. Every module here is imported below, so a new
family needs no edit to this file. Families: ``srvgg`` (Real-ESRGAN compact, our default SR
net), ``rrdbnet`` (ESRGAN), ``span`` (SPAN), ``cyclegan`` (ResnetGenerator), ``animegan2``, ``stylenet`` (our
style-transfer net), ``stylize_pair``, ``facegan``, ``stylegan2`` (StyleGAN2 generators), and the discriminators used in training
(``patch_discriminator``, ``unet_discriminator``, ``face_discriminator``,
``stylize_discriminator_pair``). Layers shared by families are in :mod:`gantools.nn.layers`.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from gantools.nn.descriptor import ModelDescriptor, SizeRequirements, Tiling
from gantools.nn.layers.norm import TileableInstanceNorm, compute_norm_stats, frozen_norm_stats
from gantools.nn.registry import (
    ARCHS,
    Architecture,
    UnknownArchitecture,
    UnsupportedVariant,
    create_arch,
    describe_arch,
    detect_arch,
    full_config,
    list_archs,
    load_arch,
    mismatch_summary,
    register_arch,
)

for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.ispkg and _info.name not in ("registry", "descriptor") and not _info.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "ARCHS", "Architecture", "ModelDescriptor", "SizeRequirements", "TileableInstanceNorm", "Tiling",
    "UnknownArchitecture", "UnsupportedVariant", "compute_norm_stats", "create_arch", "describe_arch",
    "detect_arch", "frozen_norm_stats", "full_config", "list_archs", "load_arch", "mismatch_summary",
    "register_arch",
]
