"""CycleGAN / pix2pix ``ResnetGenerator`` (junyanz/pytorch-CycleGAN-and-pix2pix), instance norm.

The layers sit in one ``nn.Sequential`` named ``model`` so that the original checkpoints load
with ``strict=True``. Indices for ``n_blocks = n`` (n=9 is ``resnet_9blocks``, n=6 ``resnet_6blocks``)::

    model.1        7x7 conv in_nc -> ngf (after ReflectionPad2d(3), index 0)
    model.4, .7    3x3 stride-2 convs ngf -> 2ngf -> 4ngf
    model.10 .. 10+n-1         ResnetBlock: conv_block.1 and conv_block.5 (conv_block.6 with dropout)
    model.10+n, model.13+n     ConvTranspose2d 4ngf -> 2ngf -> ngf (weight shape [in, out, 3, 3])
    model.17+n     7x7 conv ngf -> out_nc (after ReflectionPad2d(3)), then Tanh

e.g. resnet_9blocks: model.1.weight [64,3,7,7], model.10.conv_block.1.weight [256,256,3,3],
model.19.weight [256,128,3,3], model.22.weight [128,64,3,3], model.26.weight [3,64,7,7].

Only the default ``--norm instance`` (InstanceNorm2d without affine or running stats, so convs
have biases and norms have no keys) is supported. Pre-0.4 checkpoints that carry unused
InstanceNorm ``running_mean``/``running_var`` buffers are cleaned on load, as the original code
does. The module maps [0, 1] input to the network's [-1, 1] and its output back to [0, 1].
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from torch import Tensor, nn

from gantools.nn.descriptor import SizeRequirements, Tiling
from gantools.nn.registry import Architecture, UnsupportedVariant, register_arch
from gantools.nn.layers.norm import NormStatsMixin, TileableInstanceNorm


def _norm(channels: int) -> nn.Module:
    return TileableInstanceNorm(channels, affine=False)  # same maths as nn.InstanceNorm2d, no keys


class ResnetBlock(nn.Module):
    """x + (pad, conv, norm, ReLU, [dropout], pad, conv, norm)."""

    def __init__(self, dim: int, use_dropout: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(NormStatsMixin, nn.Module):
    """(N, in_nc, H, W) in [0, 1] -> (N, out_nc, H, W) in [0, 1]; H, W multiples of 4."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 use_dropout: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), _norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), _norm(ngf * mult * 2),
                       nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, use_dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                       _norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x * 2 - 1) * 0.5 + 0.5


@register_arch
class CycleGANArch(Architecture):
    """CycleGAN/pix2pix ``ResnetGenerator`` checkpoints (instance norm)."""

    id = "cyclegan"
    module = ResnetGenerator

    def convert(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Drop the unused InstanceNorm buffers of pre-0.4 checkpoints."""
        stale = re.compile(r"\.(running_mean|running_var|num_batches_tracked)$")
        return {k: v for k, v in state_dict.items() if not stale.search(k)}

    def detect(self, state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        first = state_dict.get("model.1.weight")
        if (first is None or first.dim() != 4 or tuple(first.shape[-2:]) != (7, 7)
                or "model.4.weight" not in state_dict or not all(k.startswith("model.") for k in state_dict)):
            return None
        if "model.2.weight" in state_dict or "model.1.bias" not in state_dict:
            raise UnsupportedVariant(
                "CycleGAN/pix2pix ResnetGenerator trained with --norm batch (or none) is not supported: "
                "only the default instance-norm generators are"
            )
        blocks = {int(m.group(1)) for k in state_dict if (m := re.match(r"model\.(\d+)\.conv_block\.1\.weight$", k))}
        n_blocks = len(blocks)
        if blocks != set(range(10, 10 + n_blocks)):
            return None
        last = state_dict.get(f"model.{17 + n_blocks}.weight")
        if last is None:
            return None
        return dict(input_nc=int(first.shape[1]), output_nc=int(last.shape[0]), ngf=int(first.shape[0]),
                    n_blocks=n_blocks, use_dropout="model.10.conv_block.6.weight" in state_dict)

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(scale=1, in_channels=config["input_nc"], out_channels=config["output_nc"],
                    size=SizeRequirements(4, 16, pad=False), tiling=Tiling.INTERNAL, bf16=False,
                    receptive_radius=14 + 8 * config["n_blocks"])
