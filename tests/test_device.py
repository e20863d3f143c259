"""Precision policy: ``auto`` is bf16 on CPUs with native bf16 matrix instructions, fp32 elsewhere."""

from __future__ import annotations

import pytest

from gantools import device


@pytest.fixture
def cpu_flags(monkeypatch, tmp_path):
    """Point has_bf16_cpu at a fake /proc/cpuinfo holding the given flags."""

    def use(flags: str) -> None:
        fake = tmp_path / "cpuinfo"
        fake.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
        real_open = open
        monkeypatch.setattr("builtins.open", lambda p, *a, **k: real_open(fake if p == "/proc/cpuinfo" else p, *a, **k))
        monkeypatch.delenv("GANTOOLS_BF16", raising=False)
        device.has_bf16_cpu.cache_clear()

    yield use
    device.has_bf16_cpu.cache_clear()


@pytest.mark.parametrize("flags, expected", [("avx512f amx_bf16 amx_tile", "bf16"), ("avx512f avx512_bf16", "bf16"),
                                             ("avx512f", "fp32"), ("", "fp32")])
def test_auto_follows_cpu_flags(cpu_flags, flags, expected) -> None:
    cpu_flags(flags)
    assert device.resolve_precision("auto", "cpu") == expected


def test_environment_overrides_and_16_bit_stays_fp32(cpu_flags, monkeypatch) -> None:
    cpu_flags("avx512_bf16")
    monkeypatch.setenv("GANTOOLS_BF16", "0")
    device.has_bf16_cpu.cache_clear()
    assert device.resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setenv("GANTOOLS_BF16", "1")
    device.has_bf16_cpu.cache_clear()
    assert device.resolve_precision("auto", "cpu") == "bf16"
    assert device.resolve_precision("bf16", "cpu", sixteen_bit=True) == "fp32"
    with pytest.raises(ValueError, match="precision must be"):
        device.resolve_precision("fp8")
