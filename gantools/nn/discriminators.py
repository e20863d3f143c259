"""Discriminators for GAN training, both with spectral normalisation.

* :class:`PatchDiscriminator`: PatchGAN (70x70 receptive field at the default 3 layers); one
  logit per overlapping patch.
* :class:`UNetDiscriminatorSN`: Real-ESRGAN's U-Net discriminator (conv0..conv9 layout); one
  logit per pixel. Real-ESRGAN ``net_d`` checkpoints, saved with the legacy
  ``torch.nn.utils.spectral_norm`` (``weight_orig``/``weight_u``/``weight_v``), are converted.

Both return logits (no sigmoid). ``forward(x, return_features=True)`` returns
``(logits, features)``, the intermediate activations for a feature-matching loss.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from gantools.nn.descriptor import SizeRequirements
from gantools.nn.registry import Architecture, register_arch


def _sn(module: nn.Module, enabled: bool = True) -> nn.Module:
    return spectral_norm(module) if enabled else module


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 4x4 convs, one stride-1 conv, a 1-channel conv."""

    def __init__(self, in_channels: int = 3, base_channels: int = 64, n_layers: int = 3, spectral: bool = True) -> None:
        super().__init__()
        chans = [in_channels] + [base_channels * min(2**i, 8) for i in range(n_layers + 1)]
        self.blocks = nn.ModuleList(
            nn.Sequential(_sn(nn.Conv2d(chans[i], chans[i + 1], 4, 2 if i < n_layers else 1, 1), spectral),
                          nn.LeakyReLU(0.2, inplace=True))
            for i in range(n_layers + 1)
        )
        self.head = _sn(nn.Conv2d(chans[-1], 1, 4, 1, 1), spectral)

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        logits = self.head(x)
        return (logits, feats) if return_features else logits


@register_arch
class PatchDiscriminatorArch(Architecture):
    """PatchGAN discriminator (training only)."""

    id = "patch_discriminator"
    module = PatchDiscriminator

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(scale=1, in_channels=config["in_channels"], out_channels=1,
                    size=SizeRequirements(2 ** config["n_layers"]))


class UNetDiscriminatorSN(nn.Module):
    """U-Net discriminator with spectral norm: (N, C, H, W) -> (N, 1, H, W) logits; H, W % 8 == 0."""

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        f = num_feat
        self.skip_connection = skip_connection
        self.conv0 = nn.Conv2d(num_in_ch, f, 3, 1, 1)
        self.conv1 = _sn(nn.Conv2d(f, f * 2, 4, 2, 1, bias=False))
        self.conv2 = _sn(nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False))
        self.conv3 = _sn(nn.Conv2d(f * 4, f * 8, 4, 2, 1, bias=False))
        self.conv4 = _sn(nn.Conv2d(f * 8, f * 4, 3, 1, 1, bias=False))
        self.conv5 = _sn(nn.Conv2d(f * 4, f * 2, 3, 1, 1, bias=False))
        self.conv6 = _sn(nn.Conv2d(f * 2, f, 3, 1, 1, bias=False))
        self.conv7 = _sn(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = _sn(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        x4 = x4 + x2 if self.skip_connection else x4
        x5 = act(self.conv5(up(x4)))
        x5 = x5 + x1 if self.skip_connection else x5
        x6 = act(self.conv6(up(x5)))
        x6 = x6 + x0 if self.skip_connection else x6
        x7 = act(self.conv7(x6))
        x8 = act(self.conv8(x7))
        logits = self.conv9(x8)
        return (logits, [x1, x2, x3, x4, x5, x6, x7, x8]) if return_features else logits


@register_arch
class UNetDiscriminatorArch(Architecture):
    """Real-ESRGAN's U-Net discriminator with spectral norm."""

    id = "unet_discriminator"
    module = UNetDiscriminatorSN

    def convert(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Legacy spectral-norm keys -> parametrization keys (others unchanged)."""
        names = {"weight_orig": "parametrizations.weight.original",
                 "weight_u": "parametrizations.weight.0._u", "weight_v": "parametrizations.weight.0._v"}
        out = {}
        for key, value in state_dict.items():
            m = re.fullmatch(r"(conv\d)\.(weight_orig|weight_u|weight_v)", key)
            out[f"{m.group(1)}.{names[m.group(2)]}" if m else key] = value
        return out

    def detect(self, state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        sd = self.convert(state_dict)
        first, last = sd.get("conv0.weight"), sd.get("conv9.weight")
        if first is None or last is None or "conv1.parametrizations.weight.original" not in sd:
            return None
        return dict(num_in_ch=int(first.shape[1]), num_feat=int(first.shape[0]), skip_connection=True)

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(scale=1, in_channels=config["num_in_ch"], out_channels=1, size=SizeRequirements(8))
