"""The ``stylegan`` generator plugin: StyleGAN2 in both published key layouts, loaded without code.

Tiny random generators (16 px, a few channels) are written in the rosinality ``stylegan2-pytorch``
layout; the NVlabs ``stylegan2-ada-pytorch`` layout is made from them by renaming (and pickled
the way NVlabs pickles networks: ``torch_utils.persistence`` records). :func:`reference` restates
the published computation on the rosinality keys (grouped modulated convs with the weight scale
and demodulation, transposed conv + [1,3,3,1] blur, toRGB skips) and the plugin must match it.
"""

from __future__ import annotations

import argparse
import collections
import math
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gantools
from gantools.cli import main
from gantools.plugin import OptionError

SQ2 = math.sqrt(2.0)
CHANNELS = {4: 12, 8: 10, 16: 6}
STYLE = 16


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


# -- a random generator in the rosinality layout ------------------------------------------------
def _styled(sd: dict, p: str, cin: int, cout: int, k: int, g: torch.Generator, *, act: bool = True) -> None:
    sd[f"{p}.conv.weight"] = torch.randn(1, cout, cin, k, k, generator=g) * (1.0 if act else 0.3)  # toRGB: few 0/255
    sd[f"{p}.conv.modulation.weight"] = torch.randn(cin, STYLE, generator=g)
    sd[f"{p}.conv.modulation.bias"] = 1 + 0.1 * torch.randn(cin, generator=g)
    if act:
        sd[f"{p}.noise.weight"] = 0.3 * torch.randn(1, generator=g)
        sd[f"{p}.activate.bias"] = 0.2 * torch.randn(cout, generator=g)


def rosinality(n_mlp: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random 16 px rosinality ``g_ema`` state dict (plus blur kernels, as the real ones have)."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for i in range(1, n_mlp + 1):
        sd[f"style.{i}.weight"] = torch.randn(STYLE, STYLE, generator=g) * 100  # lr_mul 0.01
        sd[f"style.{i}.bias"] = torch.randn(STYLE, generator=g) * 10
    sd["input.input"] = torch.randn(1, CHANNELS[4], 4, 4, generator=g)
    _styled(sd, "conv1", CHANNELS[4], CHANNELS[4], 3, g)
    _styled(sd, "to_rgb1", CHANNELS[4], 3, 1, g, act=False)
    sd["to_rgb1.bias"] = 0.1 * torch.randn(1, 3, 1, 1, generator=g)
    cin = CHANNELS[4]
    for i, res in enumerate((8, 16)):
        cout = CHANNELS[res]
        _styled(sd, f"convs.{2 * i}", cin, cout, 3, g)
        sd[f"convs.{2 * i}.conv.blur.kernel"] = torch.ones(4, 4)
        _styled(sd, f"convs.{2 * i + 1}", cout, cout, 3, g)
        _styled(sd, f"to_rgbs.{i}", cout, 3, 1, g, act=False)
        sd[f"to_rgbs.{i}.bias"] = 0.1 * torch.randn(1, 3, 1, 1, generator=g)
        sd[f"to_rgbs.{i}.upsample.kernel"] = torch.ones(4, 4)
        cin = cout
    for i in range(5):
        r = 4 * 2 ** ((i + 1) // 2)
        sd[f"noises.noise_{i}"] = torch.randn(1, 1, r, r, generator=g)
    return sd


def to_nvlabs(ros: dict[str, torch.Tensor], latent_avg: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same generator in the NVlabs G_ema layout (with its resample_filter buffers)."""
    f = torch.tensor([1.0, 3, 3, 1])
    filt = (f[:, None] * f[None]) / 64
    nv = {f"mapping.fc{i - 1}.{t}": ros[f"style.{i}.{t}"] for i in range(1, 4) for t in ("weight", "bias")}
    nv["mapping.w_avg"] = latent_avg.clone()
    nv["synthesis.b4.const"] = ros["input.input"][0]

    def layer(src: str, dst: str, noise: str) -> None:
        nv.update({f"{dst}.weight": ros[f"{src}.conv.weight"][0], f"{dst}.bias": ros[f"{src}.activate.bias"],
                   f"{dst}.affine.weight": ros[f"{src}.conv.modulation.weight"],
                   f"{dst}.affine.bias": ros[f"{src}.conv.modulation.bias"],
                   f"{dst}.noise_strength": ros[f"{src}.noise.weight"][0],
                   f"{dst}.noise_const": ros[noise][0, 0], f"{dst}.resample_filter": filt})

    def rgb(src: str, dst: str) -> None:
        nv.update({f"{dst}.weight": ros[f"{src}.conv.weight"][0], f"{dst}.bias": ros[f"{src}.bias"].flatten(),
                   f"{dst}.affine.weight": ros[f"{src}.conv.modulation.weight"],
                   f"{dst}.affine.bias": ros[f"{src}.conv.modulation.bias"]})

    layer("conv1", "synthesis.b4.conv1", "noises.noise_0")
    rgb("to_rgb1", "synthesis.b4.torgb")
    for i, res in enumerate((8, 16)):
        nv[f"synthesis.b{res}.resample_filter"] = filt
        layer(f"convs.{2 * i}", f"synthesis.b{res}.conv0", f"noises.noise_{2 * i + 1}")
        layer(f"convs.{2 * i + 1}", f"synthesis.b{res}.conv1", f"noises.noise_{2 * i + 2}")
        rgb(f"to_rgbs.{i}", f"synthesis.b{res}.torgb")
    return nv


# -- the reference computation (published formulas, on rosinality keys) -------------------------
K = torch.tensor([1.0, 3, 3, 1])
K = K[:, None] * K[None] / 64


def ref_upfirdn(x: torch.Tensor, up: int, pad0: int, pad1: int) -> torch.Tensor:
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    return F.conv2d(x, (K * 4)[None, None].repeat(c, 1, 1, 1), groups=c)


def ref_modconv(x: torch.Tensor, sd: dict, p: str, style: torch.Tensor, *, demod: bool = True,
                up: bool = False) -> torch.Tensor:
    w = sd[f"{p}.conv.weight"]
    _, o, i, k, _ = w.shape
    s = F.linear(style, sd[f"{p}.conv.modulation.weight"] / math.sqrt(STYLE), sd[f"{p}.conv.modulation.bias"])
    weight = w / math.sqrt(i * k * k) * s[:, None, :, None, None]
    if demod:
        weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)[:, :, None, None, None]
    n, _, h, wd = x.shape
    if up:
        wt = weight.transpose(1, 2).reshape(n * i, o, k, k)
        out = F.conv_transpose2d(x.reshape(1, n * i, h, wd), wt, stride=2, groups=n)
        return ref_upfirdn(out.reshape(n, o, out.shape[2], out.shape[3]), 1, 1, 1)
    out = F.conv2d(x.reshape(1, n * i, h, wd), weight.reshape(n * o, i, k, k), padding=k // 2, groups=n)
    return out.reshape(n, o, h, wd)


def reference(sd: dict, z: torch.Tensor, *, psi: float = 1.0, avg: torch.Tensor | None = None,
              c: torch.Tensor | None = None, embed: tuple | None = None, clamp: float | None = None) -> torch.Tensor:
    """StyleGAN2 forward pass (const noise) -> (N, 3, 16, 16) in about [-1, 1]."""
    def norm(v):
        return v * torch.rsqrt(v.pow(2).mean(1, keepdim=True) + 1e-8)

    x = norm(z.float())
    if c is not None:
        ew, eb = embed
        x = torch.cat([x, norm(F.linear(c, ew / math.sqrt(ew.shape[1]), eb))], 1)
    i = 1
    while f"style.{i}.weight" in sd:
        wt = sd[f"style.{i}.weight"]
        x = F.leaky_relu(F.linear(x, wt * 0.01 / math.sqrt(wt.shape[1]), sd[f"style.{i}.bias"] * 0.01), 0.2) * SQ2
        i += 1
    if psi != 1:
        x = avg + psi * (x - avg)

    def styled(h, p, noise, up=False):
        h = ref_modconv(h, sd, p, x, up=up) + sd[f"{p}.noise.weight"] * sd[noise]
        h = F.leaky_relu(h + sd[f"{p}.activate.bias"][None, :, None, None], 0.2) * SQ2
        return h if clamp is None else h.clamp(-clamp * SQ2, clamp * SQ2)

    def rgb(h, p):
        out = ref_modconv(h, sd, p, x, demod=False) + sd[f"{p}.bias"]
        return out if clamp is None else out.clamp(-clamp, clamp)

    h = styled(sd["input.input"].repeat(z.shape[0], 1, 1, 1), "conv1", "noises.noise_0")
    img = rgb(h, "to_rgb1")
    for j in range(2):
        h = styled(h, f"convs.{2 * j}", f"noises.noise_{2 * j + 1}", up=True)
        h = styled(h, f"convs.{2 * j + 1}", f"noises.noise_{2 * j + 2}")
        img = rgb(h, f"to_rgbs.{j}") + ref_upfirdn(img, 2, 2, 1)
    return img


def ref_images(sd: dict, seeds, **kw) -> list[np.ndarray]:
    """Reference images (HxWx3 BGR uint8) with the NVlabs seed convention and PNG conversion."""
    out = []
    for s in seeds:
        z = torch.from_numpy(np.random.RandomState(s).randn(1, STYLE))
        img = reference(sd, z, **kw)
        out.append((img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()[:, :, ::-1])
    return out


def close(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape and x.dtype == np.uint8
        assert np.abs(x.astype(int) - y.astype(int)).max() <= 1


# -- NVlabs network pickles ------------------------------------------------------------------------
def _fake_module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        value.__module__, value.__qualname__ = name, key
        setattr(mod, key, value)
    return mod


def _reconstruct_persistent_obj(meta):  # never called by the loader (it maps this name)
    raise AssertionError("the loader must not call the pickle's own reconstruct function")


class EasyDict(dict):
    pass


class Persistent:
    """Pickles like a ``torch_utils.persistence`` object of NVlabs code."""

    def __init__(self, class_name: str, state: dict) -> None:
        self.class_name, self.state = class_name, state

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src="import os\nos.system('echo never run')\n",
                    class_name=self.class_name, state=self.state)
        return (_reconstruct_persistent_obj, (meta,))


def _records(flat: dict[str, torch.Tensor], class_name: str = "Generator", clamp: float | None = None) -> Persistent:
    tree: dict = {}
    for key, value in flat.items():
        *path, leaf = key.split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value

    def build(name: str, node: dict) -> Persistent:
        params = collections.OrderedDict((k, torch.nn.Parameter(v.clone())) for k, v in node.items()
                                         if isinstance(v, torch.Tensor) and k not in ("w_avg", "noise_const", "resample_filter"))
        buffers = collections.OrderedDict((k, v.clone()) for k, v in node.items()
                                          if isinstance(v, torch.Tensor) and k not in params)
        mods = collections.OrderedDict((k, build(k, v)) for k, v in node.items() if isinstance(v, dict))
        state = {"training": False, "_parameters": params, "_buffers": buffers, "_modules": mods,
                 "_non_persistent_buffers_set": set(), "conv_clamp": clamp, "weight_gain": np.float64(0.25),
                 "block_resolutions": [4, 8, 16], "_init_kwargs": EasyDict(synthesis_kwargs=EasyDict(conv_clamp=clamp))}
        return Persistent(name, state)

    return build(class_name, tree)


def write_pkl(path: Path, nv: dict[str, torch.Tensor], clamp: float | None = None, protocol: int = 3) -> Path:
    """Pickle ``nv`` the way NVlabs training writes network-snapshot-*.pkl."""
    fakes = {"torch_utils.persistence": _fake_module("torch_utils.persistence",
                                                     _reconstruct_persistent_obj=_reconstruct_persistent_obj),
             "dnnlib.util": _fake_module("dnnlib.util", EasyDict=EasyDict),
             "torch_utils": types.ModuleType("torch_utils"), "dnnlib": types.ModuleType("dnnlib")}
    saved = {k: sys.modules.get(k) for k in fakes}
    sys.modules.update(fakes)
    try:
        data = dict(training_set_kwargs=EasyDict(resolution=16, use_labels=False))
        data["G"] = _records(nv, clamp=clamp)
        data["D"] = Persistent("Discriminator", {"_parameters": collections.OrderedDict(x=torch.nn.Parameter(torch.ones(2)))})
        data["G_ema"] = _records(nv, clamp=clamp)
        data["augment_pipe"] = None
        path.write_bytes(pickle.dumps(data, protocol=protocol))
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return path


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ros() -> dict[str, torch.Tensor]:
    return rosinality()


@pytest.fixture(scope="module")
def avg() -> torch.Tensor:
    return torch.randn(STYLE, generator=torch.Generator().manual_seed(5))


def generate(path: Path, n: int = 3, seed: int = 3, **options) -> list[np.ndarray]:
    return gantools.load("stylegan", weights=str(path), **options).generate(n, seed)


# -- images equal the reference ------------------------------------------------------------------
@pytest.mark.parametrize("psi", [1.0, 0.5, 0.0])
def test_rosinality_pt_matches_reference(tmp_path, ros, avg, psi) -> None:
    path = tmp_path / "550000.pt"
    torch.save({"g_ema": ros, "latent_avg": avg}, path)
    close(generate(path, truncation=psi), ref_images(ros, range(3, 6), psi=psi, avg=avg))


def test_rosinality_training_checkpoint_with_args(tmp_path, ros) -> None:
    """``g``/``d``/``g_ema``/``args`` (an argparse.Namespace): no latent_avg, so the centre is estimated."""
    from gantools_stylegan.generate import CENTER_SAMPLES, CENTER_SEED

    path = tmp_path / "010000.pt"
    args = argparse.Namespace(size=16, n_mlp=3, latent=STYLE, channel_multiplier=2, lr=0.002, path="lmdb")
    torch.save({"g": rosinality(seed=1), "d": {"convs.0.0.weight": torch.ones(2)}, "g_ema": ros, "args": args,
                "g_optim": {"state": {}, "param_groups": []}}, path)
    z = torch.from_numpy(np.random.RandomState(CENTER_SEED).randn(CENTER_SAMPLES, STYLE))
    centre = reference_mapping(ros, z).mean(0)
    close(generate(path, truncation=0.7), ref_images(ros, range(3, 6), psi=0.7, avg=centre))


def reference_mapping(sd: dict, z: torch.Tensor) -> torch.Tensor:
    x = z.float() * torch.rsqrt(z.float().pow(2).mean(1, keepdim=True) + 1e-8)
    for i in range(1, 4):
        wt = sd[f"style.{i}.weight"]
        x = F.leaky_relu(F.linear(x, wt * 0.01 / math.sqrt(STYLE), sd[f"style.{i}.bias"] * 0.01), 0.2) * SQ2
    return x


@pytest.mark.parametrize("protocol", [3, 5])
def test_nvlabs_pkl_matches_reference(tmp_path, ros, avg, protocol) -> None:
    path = write_pkl(tmp_path / "network-snapshot-000100.pkl", to_nvlabs(ros, avg), protocol=protocol)
    close(generate(path, truncation=0.6), ref_images(ros, range(3, 6), psi=0.6, avg=avg))


def test_nvlabs_conv_clamp_is_read_from_the_pickle(tmp_path, ros, avg) -> None:
    path = write_pkl(tmp_path / "clamped.pkl", to_nvlabs(ros, avg), clamp=0.5)
    got = generate(path)
    close(got, ref_images(ros, range(3, 6), clamp=0.5))
    assert not all(np.array_equal(a, b) for a, b in zip(got, ref_images(ros, range(3, 6))))


def test_nvlabs_class_conditional(tmp_path, ros, avg) -> None:
    g = torch.Generator().manual_seed(9)
    nv = to_nvlabs(ros, avg)
    ew, eb = torch.randn(8, 5, generator=g), 0.1 * torch.randn(8, generator=g)
    nv["mapping.embed.weight"], nv["mapping.embed.bias"] = ew, eb
    nv["mapping.fc0.weight"] = torch.randn(STYLE, STYLE + 8, generator=g) * 100
    ros_c = {**ros, "style.1.weight": nv["mapping.fc0.weight"]}
    path = write_pkl(tmp_path / "cond.pkl", nv)
    for cls in (0, 4):
        c = torch.zeros(1, 5)
        c[0, cls] = 1
        close(generate(path, class_=cls), ref_images(ros_c, range(3, 6), c=c, embed=(ew, eb)))
    with pytest.raises(OptionError, match=r"^option --class: missing; .* class-conditional: give --class 0\.\.4$"):
        generate(path)
    with pytest.raises(OptionError, match="--class: 5 is out of range"):
        generate(path, class_=5)


def test_flat_state_dicts_of_both_layouts(tmp_path, ros, avg) -> None:
    """Converted files: a flat G_ema state dict (.pt) and a flat g_ema one with latent_avg."""
    torch.save(to_nvlabs(ros, avg), tmp_path / "g_ema.pt")
    torch.save({**ros, "latent_avg": avg}, tmp_path / "ros.pt")
    expected = ref_images(ros, range(3, 6), psi=0.5, avg=avg)
    close(generate(tmp_path / "g_ema.pt", truncation=0.5), expected)
    close(generate(tmp_path / "ros.pt", truncation=0.5), expected)


def test_seed_convention_and_seed_exactness(tmp_path, ros, avg) -> None:
    from gantools_stylegan.generate import seed_z

    assert np.array_equal(seed_z(7, 512), np.random.RandomState(7).randn(1, 512))
    path = tmp_path / "g.pt"
    torch.save({"g_ema": ros, "latent_avg": avg}, path)
    plugin = gantools.load("stylegan", weights=str(path))
    four = plugin.generate(4, 5)
    assert all(np.array_equal(a, b) for a, b in zip(four, plugin.generate(2, 5) + plugin.generate(2, 7)))
    walk = plugin.interpolate(5, 8, 4)
    assert np.array_equal(walk[0], four[0]) and np.array_equal(walk[-1], four[3])


def test_architecture_detects_both_layouts(ros, avg) -> None:
    from gantools.nn import detect_arch

    a, b = detect_arch(to_nvlabs(ros, avg)), detect_arch(ros)
    assert a.arch == b.arch == "stylegan2" and a.config == b.config
    assert a.config["channels"] == (12, 10, 6) and a.config["mapping_layers"] == 3 and a.config["z_dim"] == STYLE


# -- refusals: one line each ------------------------------------------------------------------------
class Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Evil(target)}))
    with pytest.raises(OptionError) as exc:
        generate(path)
    assert "refused" in one_line(exc) and "io.open" in str(exc.value)
    assert not target.exists()
    pt = tmp_path / "evil.pt"
    torch.save({"g_ema": Evil(target)}, pt)
    with pytest.raises(OptionError) as exc:
        generate(pt)
    assert "refused" in one_line(exc) and not target.exists()


def test_truncated_pickle(tmp_path, ros, avg) -> None:
    full = write_pkl(tmp_path / "full.pkl", to_nvlabs(ros, avg)).read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(OptionError) as exc:
        generate(path)
    assert one_line(exc).startswith(f"{path}: not a readable network pickle")


def test_unknown_layout(tmp_path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.ones(3, 3)}, path)
    with pytest.raises(OptionError) as exc:
        generate(path)
    assert "unknown layout" in one_line(exc)


def test_option_errors(tmp_path, ros, avg) -> None:
    path = tmp_path / "g.pt"
    torch.save({"g_ema": ros, "latent_avg": avg}, path)
    with pytest.raises(OptionError, match="^stylegan needs --weights FILE"):
        gantools.load("stylegan")
    with pytest.raises(OptionError) as exc:
        generate(path, class_=1)
    assert one_line(exc) == f"option --class: {path} is an unconditional model; leave --class out"
    for psi in (-0.1, 1.5):
        with pytest.raises(OptionError) as exc:
            gantools.load("stylegan", weights=str(path), truncation=psi)
        assert one_line(exc).startswith("option --truncation")
    with pytest.raises(OptionError, match="^stylegan generates; use gantools generate stylegan$"):
        gantools.load("stylegan", weights=str(path)).process(np.zeros((4, 4, 3), np.uint8))


# -- the command line -----------------------------------------------------------------------------------
def test_cli_generate_writes_seed_files(tmp_path, capsys, ros, avg) -> None:
    import cv2

    path = tmp_path / "g.pt"
    torch.save({"g_ema": ros, "latent_avg": avg}, path)
    out = tmp_path / "out"
    code = main(["generate", "stylegan", "--weights", str(path), "-n", "2", "--seed", "3", "-o", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["seed0003.png", "seed0004.png"]
    close([cv2.imread(str(out / "seed0003.png")), cv2.imread(str(out / "seed0004.png"))], ref_images(ros, (3, 4)))


def test_cli_errors_are_one_line(tmp_path, capsys, ros, avg) -> None:
    path = tmp_path / "g.pt"
    torch.save({"g_ema": ros, "latent_avg": avg}, path)
    code = main(["generate", "stylegan", "-n", "1", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "stylegan needs --weights FILE" in err
    code = main(["generate", "stylegan", "--weights", str(path), "--class", "2", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "unconditional model" in err
    code = main(["generate", "stylegan", "--weights", str(path), "--backend", "openvino", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == ["error: option --backend: stylegan runs on torch only, not openvino"]
    assert not (tmp_path / "o").exists()
