"""Third-party style generators reproduce their reference forward passes on any valid size.

The reference CycleGAN ``ResnetGenerator`` is written here from the published layout (torch's own
``InstanceNorm2d``, reflection padding, transposed convolutions), independently of
``gantools.nn.cyclegan``. Sizes cover every residue modulo 8 and odd sizes: the reference then
returns a slightly larger image, of which the input-sized top-left part is the result. Padding
the input to a multiple instead would put the padded border into the instance-norm statistics.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gantools_stylize import Stylize


class _Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def reference_resnet_generator(ngf: int, n_blocks: int) -> nn.Module:
    """pytorch-CycleGAN-and-pix2pix ``ResnetGenerator(3, 3, ngf, norm=instance, n_blocks)``."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for mult in (1, 2):
        layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ngf * mult * 2),
                   nn.ReLU(True)]
    layers += [_Block(ngf * 4) for _ in range(n_blocks)]
    for mult in (4, 2):
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                   nn.InstanceNorm2d(ngf * mult // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    model = nn.Module()
    model.model = nn.Sequential(*layers)
    return model.eval()


def _bgr(h: int, w: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _reference_bgr(ref: nn.Module, img: np.ndarray) -> np.ndarray:
    """The reference on a BGR image (as CycleGAN's test.py feeds it: RGB in [-1, 1]), cropped."""
    h, w = img.shape[:2]
    x = torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255 * 2 - 1
    with torch.no_grad():
        y = (ref.model(x) * 0.5 + 0.5).clamp(0, 1)[0, :, :h, :w]
    return np.rint(y.permute(1, 2, 0).numpy()[:, :, ::-1] * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def cyclegan(tmp_path_factory) -> tuple[nn.Module, str]:
    torch.manual_seed(0)
    ref = reference_resnet_generator(ngf=4, n_blocks=2)
    path = tmp_path_factory.mktemp("cyc") / "latest_net_G_A.pth"
    torch.save(ref.model.state_dict(prefix="model."), path)
    return ref, str(path)


@pytest.mark.parametrize("h,w", [(64 + r, 80 + (3 * r) % 8) for r in range(8)] + [(33, 47), (17, 21)])
def test_cyclegan_matches_reference_on_any_size(cyclegan, h: int, w: int) -> None:
    ref, path = cyclegan
    img = _bgr(h, w, seed=h * 1000 + w)
    out = Stylize(weights=path, precision="fp32", threads=1).process(img)
    diff = np.abs(out.astype(int) - _reference_bgr(ref, img))
    assert out.shape == img.shape
    assert (diff <= 1).mean() == 1.0, (diff.max(), (diff <= 1).mean())


@pytest.mark.parametrize("h,w", [(33, 47), (70, 90), (176, 252)])
def test_animegan_runs_unpadded(tmp_path, h: int, w: int) -> None:
    """AnimeGANv2 takes any size >= 16: the plugin's output is the network's own on the image."""
    from gantools.nn.animegan import AnimeGANv2Generator

    torch.manual_seed(0)
    net = AnimeGANv2Generator().eval()
    torch.save(net.state_dict(), tmp_path / "paprika.pt")
    img = _bgr(h, w)
    out = Stylize(weights=str(tmp_path / "paprika.pt"), precision="fp32", threads=1).process(img)
    x = torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = net(x).clamp(0, 1)[0]
    want = np.rint(y.permute(1, 2, 0).numpy()[:, :, ::-1] * 255).astype(np.uint8)
    assert np.abs(out.astype(int) - want).max() <= 1
