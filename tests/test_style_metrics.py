"""Known answers for the pooled style metric and the content-photo split (no data, no network)."""

from __future__ import annotations

import numpy as np
import torch

from gantools_stylize import metrics as M
from gantools_stylize.split import BENCH_NAMES, MIN_SET, held_out_names, split

torch.set_num_threads(1)


def _images(n: int, mean: tuple[float, float, float], seed: int, size: int = 48) -> list[torch.Tensor]:
    """``n`` blurred-noise images around an RGB ``mean`` (a synthetic 'domain')."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.rand(1, 3, size // 4, size // 4, generator=g) * 0.5 - 0.25
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        out.append((x + torch.tensor(mean).view(1, 3, 1, 1)).clamp(0, 1))
    return out


PAINTINGS = _images(40, (0.75, 0.55, 0.35), seed=1)
PHOTOS = _images(20, (0.25, 0.45, 0.65), seed=2)


def _pooled(outputs: list[torch.Tensor], kind: str = "color") -> float:
    return M.pooled_ratio(PHOTOS, outputs, PAINTINGS, kind, seeds=(0,), per_scale=2048)


def test_outputs_equal_to_inputs_score_exactly_one() -> None:
    assert _pooled(PHOTOS) == 1.0
    assert _pooled(PHOTOS, "texture") == 1.0


def test_outputs_that_are_paintings_of_the_folder_score_near_zero() -> None:
    assert _pooled(PAINTINGS[:20]) < 0.1


def test_colour_shift_towards_the_folder_is_monotonic() -> None:
    target = torch.tensor((0.75, 0.55, 0.35)).view(1, 3, 1, 1)
    shifted = [[(p + t * (target - torch.tensor((0.25, 0.45, 0.65)).view(1, 3, 1, 1))).clamp(0, 1) for p in PHOTOS]
               for t in (0.25, 0.5, 0.75)]
    ratios = [_pooled(s) for s in shifted]
    assert 1.0 > ratios[0] > ratios[1] > ratios[2] > _pooled(PAINTINGS[:20])
    assert 0.3 < ratios[1] < 0.7  # halfway is about half


def test_pooled_ratio_needs_matching_sets() -> None:
    import pytest

    with pytest.raises(ValueError):
        M.pooled_ratio(PHOTOS, PHOTOS[:3], PAINTINGS, "color")


def test_split_is_by_name_and_keeps_small_sets_whole() -> None:
    names = [f"{i:06d}.jpg" for i in range(300)]
    train, held = split(names)
    assert sorted(train + held) == names and not set(train) & set(held)
    assert 40 <= len(held) <= 80  # about 1 in 5
    assert held_out_names(names[:100]) == set(held) & set(names[:100])  # a name's fate needs only the name
    assert held_out_names(names[: MIN_SET - 1]) == set()  # a few photos of one's own are all trained on
    assert held_out_names(["baboon.png", "x.jpg"]) == {"baboon.png"} and len(BENCH_NAMES) == 19
    assert held_out_names(names, every=0) == set()


def test_training_skips_held_out_photos(tmp_path) -> None:
    import cv2

    from gantools.train.api import make_config
    from gantools.train.task import get_task

    folder = tmp_path / "photos"
    folder.mkdir()
    names = [f"p{i:03d}.png" for i in range(MIN_SET + 5)] + ["lenna.png"]
    for n in names:
        cv2.imwrite(str(folder / n), np.full((40, 40, 3), 128, np.uint8))
    painting = tmp_path / "art.png"
    cv2.imwrite(str(painting), np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8))
    for every in (5, 0):
        cfg = make_config("stylize", out=str(tmp_path / f"run{every}"), steps=1, threads=1, workers=1,
                          task_options={"style_images": [str(painting)], "content": [str(folder)], "crop": 32,
                                        "holdout": every})
        task = get_task("stylize")(cfg, log=lambda m: None)
        task.setup_data()
        expect = held_out_names(names, every)
        assert len(task.content) == len(names) - len(expect)
        assert set(task.content.names).isdisjoint(expect) and ("lenna.png" in expect) == (every == 5)
