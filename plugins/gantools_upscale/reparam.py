"""Re-parameterisable training form of the SRVGG-compact network (edge-oriented convolution blocks).

Zhang, Zeng and Zhang, "Edge-oriented Convolution Block for Real-time Super Resolution on Mobile
Devices" (ACM MM 2021): during training every 3x3 convolution is a sum of linear branches (a 3x3
convolution, a 1x1 expansion followed by a 3x3 convolution, 1x1 convolutions followed by scaled
Sobel-x, Sobel-y and Laplacian filters, and the identity where the channel counts allow). All
branches are linear, so after training they collapse into one 3x3 convolution: :meth:`ECBSRNet.to_srvgg`
returns a plain :class:`~gantools.nn.srvgg.SRVGGNetCompact` computing the same function, which is
what gets exported and shipped. The richer training-time form optimises better at the same
inference cost.

Exactness at the borders: a 1x1 convolution of the zero-padded input equals its bias there, so
the intermediate maps are padded with their bias (not zeros) before the 3x3 / edge filters; the
collapsed convolution then matches the branch sum on every pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantools.nn.srvgg import SRVGGNetCompact

_SOBEL_X = [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]
_SOBEL_Y = [[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]
_LAPLACIAN = [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]


def _pad_with_bias(t: Tensor, bias: Tensor) -> Tensor:
    """Pad ``t`` by one pixel filled with ``bias`` (what a 1x1 conv gives on zero padding)."""
    b = bias.view(1, -1, 1, 1)
    return F.pad(t - b, (1, 1, 1, 1)) + b


class ECB(nn.Module):
    """Sum of linear branches equal to one 3x3 convolution ``cin -> cout`` (see :meth:`fused`)."""

    def __init__(self, cin: int, cout: int, mult: float = 2.0) -> None:
        super().__init__()
        mid = max(1, int(round(cout * mult)))
        self.conv3 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.expand = nn.Conv2d(cin, mid, 1)
        self.squeeze = nn.Conv2d(mid, cout, 3)
        self.edge_in = nn.Conv2d(cin, 3 * cout, 1)  # one 1x1 per edge filter, stacked
        self.edge_scale = nn.Parameter(torch.randn(3, cout) * 1e-3)
        self.edge_bias = nn.Parameter(torch.zeros(3, cout))
        self.register_buffer("masks", torch.tensor([_SOBEL_X, _SOBEL_Y, _LAPLACIAN]), persistent=False)
        self.identity = cin == cout

    def _edge_kernel(self) -> Tensor:
        """Depthwise kernels (3*cout, 1, 3, 3): scale[k, o] * mask[k]."""
        return (self.edge_scale[:, :, None, None] * self.masks[:, None]).reshape(-1, 1, 3, 3)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv3(x)
        y = y + self.squeeze(_pad_with_bias(self.expand(x), self.expand.bias))
        edges = F.conv2d(_pad_with_bias(self.edge_in(x), self.edge_in.bias), self._edge_kernel(),
                         self.edge_bias.reshape(-1), groups=self.edge_in.out_channels)
        y = y + edges.unflatten(1, (3, -1)).sum(1)
        return y + x if self.identity else y

    @torch.no_grad()
    def fused(self) -> tuple[Tensor, Tensor]:
        """``(weight (cout, cin, 3, 3), bias (cout,))`` of the single equivalent 3x3 convolution."""
        w, b = self.conv3.weight.clone(), self.conv3.bias.clone()
        w1, w2 = self.expand.weight[:, :, 0, 0], self.squeeze.weight
        w += torch.einsum("omhw,mi->oihw", w2, w1)
        b += self.squeeze.bias + torch.einsum("omhw,m->o", w2, self.expand.bias)
        cout = w.shape[0]
        dw = self._edge_kernel().view(3, cout, 3, 3)
        e1, e_b = self.edge_in.weight[:, :, 0, 0].view(3, cout, -1), self.edge_in.bias.view(3, cout)
        w += torch.einsum("kohw,koi->oihw", dw, e1)
        b += (self.edge_bias + e_b * dw.sum((2, 3))).sum(0)
        if self.identity:
            w[torch.arange(cout), torch.arange(cout), 1, 1] += 1.0
        return w, b


class ECBSRNet(nn.Module):
    """SRVGG-compact topology with :class:`ECB` convolutions; same call contract as
    :class:`SRVGGNetCompact` (PReLU activations, residual added before the pixel shuffle)."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 16, num_conv: int = 8,
                 upscale: int = 4, mult: float = 2.0) -> None:
        super().__init__()
        self.config = dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat,
                           num_conv=num_conv, upscale=upscale, act_type="prelu")
        chans = [num_in_ch] + [num_feat] * (num_conv + 1) + [num_out_ch * upscale * upscale]
        self.convs = nn.ModuleList(ECB(a, b, mult) for a, b in zip(chans[:-1], chans[1:]))
        self.acts = nn.ModuleList(nn.PReLU(num_feat) for _ in range(num_conv + 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for conv, act in zip(self.convs, self.acts):
            out = act(conv(out))
        out = self.convs[-1](out)
        if self.config["num_in_ch"] == self.config["num_out_ch"]:
            out = out + x.repeat_interleave(self.config["upscale"] ** 2, dim=1)
        return self.upsampler(out)

    @torch.no_grad()
    def to_srvgg(self) -> SRVGGNetCompact:
        """The collapsed network: a plain SRVGGNetCompact with the same outputs."""
        net = SRVGGNetCompact(**self.config)
        convs = [m for m in net.body if isinstance(m, nn.Conv2d)]
        acts = [m for m in net.body if isinstance(m, nn.PReLU)]
        for ecb, conv in zip(self.convs, convs):
            w, b = ecb.fused()
            conv.weight.copy_(w)
            conv.bias.copy_(b)
        for src, dst in zip(self.acts, acts):
            dst.weight.copy_(src.weight)
        return net.to(next(self.parameters()).device).eval()
