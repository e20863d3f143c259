"""The metrics of ``bench/sr.py --realworld`` (bench/niqe.py, bench/sr_realworld.py) on synthetic images.

No network: NIQE's known properties are checked with a pristine model fitted here on synthetic
1/f ("natural-looking") images; the test with BasicSR's real parameters runs only where a
benchmark run already fetched them into ``bench/.cache``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.append(str(BENCH))
import niqe  # noqa: E402
import sr_realworld as rw  # noqa: E402


def pink(seed: int, size: int = 288) -> np.ndarray:
    """A 1/f-spectrum grey image in 0..255 (natural images' power law)."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    radius = np.hypot(*np.meshgrid(f, f))
    radius[0, 0] = 1
    img = np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) / radius).real
    return (img - img.min()) / (img.max() - img.min()) * 200 + 30


def window() -> np.ndarray:
    k = cv2.getGaussianKernel(7, 7 / 6)
    return k @ k.T


def synthetic_params() -> dict[str, np.ndarray]:
    feats = np.concatenate([niqe.features(np.round(pink(s)), window()) for s in range(3)])
    return {"mu_pris_param": feats.mean(axis=0)[None], "cov_pris_param": np.cov(feats, rowvar=False),
            "gaussian_window": window()}


def test_niqe_rises_with_blur_and_is_deterministic():
    params = synthetic_params()
    sharp = np.round(pink(10))
    blurred = np.round(cv2.GaussianBlur(sharp, (0, 0), 2.0))
    assert niqe.niqe_y(sharp, params) < niqe.niqe_y(blurred, params)
    assert niqe.niqe_y(sharp, params) == niqe.niqe_y(sharp.copy(), params)


def test_niqe_with_basicsr_parameters_where_fetched():
    npz = niqe.CACHE / "niqe" / "niqe_pris_params.npz"
    if not npz.is_file():
        pytest.skip("bench/.cache has no niqe_pris_params.npz (python bench/sr.py --realworld fetches it)")
    params = niqe.pristine_params()
    grey = np.clip(pink(4), 0, 255).astype(np.uint8)
    img = cv2.merge([grey] * 3)
    assert niqe.niqe(img, params) < niqe.niqe(cv2.GaussianBlur(img, (0, 0), 2.5), params)


def test_aggd_fit_of_gaussian_and_laplacian_samples():
    rng = np.random.default_rng(0)
    alpha, left, right = niqe.aggd_fit(rng.normal(0, 2.0, 200_000))
    assert alpha == pytest.approx(2.0, abs=0.05) and left == pytest.approx(2 * np.sqrt(2), rel=0.02)
    assert right == pytest.approx(left, rel=0.02)
    assert niqe.aggd_fit(rng.laplace(0, 1.0, 200_000))[0] == pytest.approx(1.0, abs=0.05)


def test_matlab_half_keeps_constants_and_ramps():
    assert np.allclose(niqe.matlab_half(np.full((10, 12), 7.0)), 7.0)
    ramp = np.tile(np.arange(16, dtype=np.float64), (16, 1))
    half = niqe.matlab_half(ramp)
    assert half.shape == (8, 8)
    # MATLAB's output pixel j (1-based) samples input position 2j - 0.5: the cubic kernel keeps linear ramps
    assert np.allclose(half[:, 2:6], (2 * np.arange(3, 7) - 0.5) - 1)


def test_sliced_wasserstein_and_texture_ratio():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(500, 64))
    assert rw.sliced_wasserstein(a, a[::-1]) == 0.0
    assert rw.sliced_wasserstein(a, a + 1.0) > rw.sliced_wasserstein(a, a + 0.1) > 0
    hr = cv2.merge([np.clip(pink(2, 128), 0, 255).astype(np.uint8)] * 3)
    soft = cv2.GaussianBlur(hr, (0, 0), 2.0)
    assert rw.texture_ratio(soft, hr, soft) == 1.0
    assert rw.texture_ratio(hr, hr, soft) == 0.0


def test_degrade_fixed_is_seeded():
    hr = cv2.merge([np.clip(pink(3, 64), 0, 255).astype(np.uint8)] * 3)
    lr = rw.degrade_fixed(hr, seed=5)
    assert lr.shape == (16, 16, 3) and lr.dtype == np.uint8
    assert np.array_equal(lr, rw.degrade_fixed(hr, seed=5))
    assert not np.array_equal(lr, rw.degrade_fixed(hr, seed=6))


def test_degrade_fixed_at_scale_2_gives_half_size():
    hr = cv2.merge([np.clip(pink(3, 64), 0, 255).astype(np.uint8)] * 3)
    lr2 = rw.degrade_fixed(hr, seed=5, scale=2)
    assert lr2.shape == (32, 32, 3) and lr2.dtype == np.uint8
    assert np.array_equal(lr2, rw.degrade_fixed(hr, seed=5, scale=2))
    items = [("Set5", "a.png", hr), ("Set14", "b.png", hr[:62, :58])]
    assert {k: v.shape for k, v in rw.degraded(items, 2).items()} == {("Set5", "a.png"): (32, 32, 3),
                                                                     ("Set14", "b.png"): (31, 29, 3)}
    assert np.array_equal(rw.degraded(items)["Set5", "a.png"], rw.degrade_fixed(hr, seed=1000))  # default x4
    # same blur before the downscale: the x2 LR area-halved is close to the x4 LR (noise and JPEG apart)
    half = cv2.resize(lr2, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float64)
    assert np.abs(half - rw.degrade_fixed(hr, seed=5)).mean() < 6


def test_write_section_keeps_the_other_scale(tmp_path):
    out = tmp_path / "sr.md"
    out.write_text("# Super-resolution benchmark\n\nold table\n")
    assert rw.heading(4) == "## Real-world x4: degraded held-out photos" and rw.heading(2) == "## Real-world x2: degraded held-out photos"
    rw.write_section(out, f"{rw.heading(4)}\n\nx4 first\n")
    rw.write_section(out, f"{rw.heading(2)}\n\nx2 first\n", 2)
    rw.write_section(out, f"{rw.heading(4)}\n\nx4 second\n")
    rw.write_section(out, f"{rw.heading(2)}\n\nx2 second\n", scale=2)
    assert out.read_text() == (f"# Super-resolution benchmark\n\nold table\n\n{rw.heading(4)}\n\nx4 second\n\n"
                               f"{rw.heading(2)}\n\nx2 second\n")


class _FakeX4:
    """A BGR -> BGR x4 'teacher': nearest-neighbour x4 with blue raised by 10 (catches a channel swap)."""

    def process(self, bgr: np.ndarray) -> np.ndarray:
        out = cv2.resize(bgr, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
        out[:, :, 0] += 10
        return out


def test_reduced_teacher_area_halves_the_x4_output():
    lr = np.random.default_rng(0).integers(0, 240, (6, 5, 3), dtype=np.uint8)
    out = rw.reduced_teacher(_FakeX4(), 2)(lr)
    # nearest x4 then 2x2 area means = nearest x2: an independent reference
    expected = cv2.resize(lr, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    expected[:, :, 0] += 10
    assert out.shape == (12, 10, 3) and out.flags.c_contiguous and np.array_equal(out, expected)
    assert np.array_equal(rw.reduced_teacher(_FakeX4(), 4)(lr), _FakeX4().process(lr))


def test_gantools_models_omit_the_unshipped_with_a_note():
    assert rw.gantools_models(4, {"fidelity", "photo", "fast"}) == (["fidelity", "photo"], [])
    names, notes = rw.gantools_models(2, {"fidelity"})
    assert names == ["fidelity"] and len(notes) == 1 and notes[0].startswith("gantools photo x2: not shipped")


def test_write_section_replaces_only_its_own(tmp_path):
    out = tmp_path / "sr.md"
    out.write_text("# Super-resolution benchmark\n\nold table\n")
    rw.write_section(out, f"{rw.heading(4)}\n\nfirst\n")
    rw.write_section(out, f"{rw.heading(4)}\n\nsecond\n")
    assert out.read_text() == f"# Super-resolution benchmark\n\nold table\n\n{rw.heading(4)}\n\nsecond\n"


def _psnr_rgb(a: np.ndarray, b: np.ndarray, shave: int) -> tuple[float, float]:
    """An independent PSNR (all channels) standing in for bench/sr.py's psnr_ssim_y."""
    a, b = (x[shave:-shave, shave:-shave].astype(np.float64) for x in (a, b))
    return float(10 * np.log10(255.0**2 / np.mean((a - b) ** 2))), 0.0


def test_run_scores_against_the_teacher_outputs(monkeypatch):
    monkeypatch.setattr(rw.niqe_mod, "niqe", lambda img, params, shave=0: 1.0)  # NIQE is tested above
    items = [(s, f"{i}.png", cv2.merge([np.clip(pink(20 + 3 * j + i, 32), 0, 250).astype(np.uint8)] * 3))
             for j, s in enumerate(("Set5", "Set14")) for i in range(2)]
    up = lambda lr, how=cv2.INTER_CUBIC: cv2.resize(lr, None, fx=4, fy=4, interpolation=how)  # noqa: E731
    lrs = rw.degraded(items)
    teacher_out = {k: np.clip(up(lr), 0, 247) for k, lr in lrs.items()}
    precomputed = rw.Precomputed({k: (up(lr, cv2.INTER_NEAREST), 0.5) for k, lr in lrs.items()})
    methods = {"brighter": lambda lr: (np.clip(up(lr), 0, 247) + 2).astype(np.uint8), "peer": precomputed,
               "teacher": lambda lr: np.clip(up(lr), 0, 247).astype(np.uint8)}  # listed last, still runs first
    rows = rw.run(methods, items, lrs, _psnr_rgb, up, {"teacher": 1}, {}, teacher="teacher")
    assert [r.method for r in rows] == ["brighter", "peer", "teacher", "clean original (reference)"]
    brighter, peer, teacher, original = rows
    firsts = [("Set5", "0.png"), ("Set14", "0.png")]  # the teacher ran on the first image of each set only
    assert sorted(teacher.scores) == sorted(firsts) and teacher.to_teacher == {}
    keys = [(s, n) for s, n, _ in items]
    assert list(brighter.scores) == keys and list(peer.scores) == keys
    assert brighter.to_teacher == {k: pytest.approx(10 * np.log10(255.0**2 / 4)) for k in firsts}
    assert peer.to_teacher == {k: pytest.approx(_psnr_rgb(precomputed.outputs[k][0], teacher_out[k], 4)[0])
                               for k in firsts}
    assert peer.mp_s(keys) == pytest.approx(32 * 32 / 0.5 / 1e6)  # the peer's own times, not the lookup's
    assert original.to_teacher == {} and original.mp_s(keys) is None

    lines = rw.table(rows, keys)
    assert lines[0].endswith("| PSNR-Y to x4plus | output MP/s |") and lines[1] == "|---" * 5 + "|"
    cells = {line.split(" | ")[0][2:]: line.split(" | ") for line in lines[2:]}
    assert cells["brighter"][3] == f"{10 * np.log10(255.0**2 / 4):.2f}" and cells["teacher"][3] == "-"
    assert cells["teacher"][1].endswith("(1 images)") and cells["peer"][4] == "0.00205 |"


def _row(method: str, scores: dict, mp_s: float) -> rw.Row:
    """A row with the given per-image scores, each image timed at ``mp_s`` (1 MP output)."""
    return rw.Row(method, scores=scores, times={k: (1_000_000, 1.0 / mp_s) for k in scores})


def test_targets_against_the_teacher_on_shared_images():
    a, b, c = ("Set5", "a"), ("Set5", "b"), ("Set14", "c")
    teacher = _row("T", {a: (24.0, 5.0, 0.50), b: (26.0, 3.0, 0.30)}, 0.01)
    rows = [
        teacher,
        # equal NIQE and texture, better PSNR-Y, 20x: met; image c (teacher never ran on it) does not count
        _row("good", {a: (25.0, 5.0, 0.50), b: (26.0, 3.0, 0.30), c: (0.0, 99.0, 9.0)}, 0.2),
        _row("equal", {a: (24.0, 5.0, 0.50), b: (26.0, 3.0, 0.30)}, 1.0),  # beats it on nothing
        _row("rough", {a: (30.0, 6.0, 0.20), b: (30.0, 3.0, 0.20)}, 1.0),  # NIQE 4.5 > 4.0
        _row("slow", {a: (30.0, 1.0, 0.10), b: (30.0, 1.0, 0.10)}, 0.099),  # 9.9x
    ]
    lines = rw.targets(rows, ["good", "equal", "rough", "slow", "absent"], "T")
    assert len(lines) == 4
    good, equal, rough, slow = lines
    assert good == ("- `good` vs x4plus on the 2 images both ran on: NIQE 4.00 vs 4.00 (<=: yes), texture 0.400 "
                    "vs 0.400 (<=: yes), PSNR-Y 25.50 vs 25.00 dB (>=: yes), output MP/s 0.2 vs 0.01 = 20x "
                    "(>= 10x: yes); beats it on PSNR-Y: met.")
    assert equal.endswith("beats it on none: NOT met.")
    assert "NIQE 4.50 vs 4.00 (<=: no)" in rough and rough.endswith("beats it on texture, PSNR-Y: NOT met.")
    assert "= 9.9x (>= 10x: no)" in slow and slow.endswith("beats it on NIQE, texture, PSNR-Y: NOT met.")
    assert rw.targets(rows, ["good"], "missing teacher") == []
