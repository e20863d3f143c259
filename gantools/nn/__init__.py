"""Network architectures and their registry (importing this package imports torch).

Each family lives in its own module of this package and registers itself on import; every
module here is imported below, so a new family needs no edit to this file. Families include
``srvgg`` (Real-ESRGAN compact, our default SR net), ``rrdbnet`` (ESRGAN), ``cyclegan``
(ResnetGenerator), ``animegan2``, ``stylenet`` (our style-transfer net) and the
``patch_discriminator`` / ``unet_discriminator`` used in training. See
:mod:`gantools.nn.registry` for the protocol.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from gantools.nn.registry import (
    ArchInfo,
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
    if _info.name != "registry" and not _info.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_info.name}")

from gantools.nn.stylenet import TileableInstanceNorm, compute_norm_stats, frozen_norm_stats  # noqa: E402

__all__ = [
    "ArchInfo", "TileableInstanceNorm", "UnknownArchitecture", "UnsupportedVariant", "compute_norm_stats",
    "create_arch", "describe_arch", "detect_arch", "frozen_norm_stats", "full_config", "list_archs",
    "load_arch", "mismatch_summary", "register_arch",
]
