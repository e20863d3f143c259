"""Plugin discovery: built-ins (entry points of gantools itself), third-party entry points (working and broken), via the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from clitools import cli, read, write
from imagegen import gradient
from gantools import registry
from gantools.registry import PluginNotFound, get_plugin_class, list_plugins


def test_builtins_are_discovered_through_entry_points():
    entries = {e.name: e for e in list_plugins()}
    assert entries["resize"].ok and entries["resize"].source == "gantools (gantools_resize)"
    assert get_plugin_class("resize").descriptor.scale == 2
    assert [e.name for e in list_plugins("res*")] == ["resize"]


def test_unknown_plugin_lists_known_ones():
    with pytest.raises(PluginNotFound) as info:
        get_plugin_class("no-such-plugin")
    assert str(info.value).startswith("unknown plugin 'no-such-plugin' (known: ") and "resize" in str(info.value)


def test_discovery_imports_neither_torch_nor_opencv():
    code = ("import sys; from gantools.registry import list_plugins; names = [e.name for e in list_plugins()]; "
            "print('resize' in names, sorted(m for m in ('torch', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True []"


# -- third-party plugins through entry points -------------------------------------------------
def fake_distribution(site: Path, name: str, entry_points: str, modules: dict[str, str]) -> None:
    """Write modules plus a ``<name>-1.0.dist-info`` with ``entry_points.txt`` into ``site``."""
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"  # normalised, as installers write it
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[gantools.plugins]\n{textwrap.dedent(entry_points)}")


@pytest.fixture(scope="module")
def third_party(tmp_path_factory) -> dict[str, str]:
    """A site folder with two working plugins (module and class entry points) and a broken one."""
    site = tmp_path_factory.mktemp("site")
    fake_distribution(site, "gantools-invert", "invert = gt_invert\n", {"gt_invert": """
        import numpy as np
        from gantools import Descriptor, Option, Plugin, register_plugin

        @register_plugin
        class Invert(Plugin):
            descriptor = Descriptor("invert", "tone", "Negative image", scale=1,
                                    options=(Option("amount", float, 1.0, "blend with the original", min=0, max=1),))

            def process(self, image):
                self.check_image(image)
                top = np.iinfo(image.dtype).max
                out = image.astype(np.float64) * (1 - self.options["amount"]) + (top - image.astype(np.float64)) * self.options["amount"]
                return np.rint(out).astype(image.dtype)
        """})
    fake_distribution(site, "gantools-flip", "flip = gt_flip:Flip\n", {"gt_flip": """
        from gantools.plugin import Descriptor, Plugin

        class Flip(Plugin):
            descriptor = Descriptor("flip", "geometry", "Mirror left-right")

            def process(self, image):
                return image[:, ::-1].copy()
        """})
    fake_distribution(site, "gantools-broken", "broken = gt_broken\n", {"gt_broken": """
        raise ImportError("needs libfrobnicate 3")
        """})
    return {**os.environ, "PYTHONPATH": str(site) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_broken_third_party_plugin_is_listed_and_others_keep_working(third_party):
    proc = cli("list", env=third_party)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("\t")[0]: line for line in proc.stdout.decode().splitlines()}  # not a TTY: tab-separated
    assert "ok" in rows["resize"] and "ok" in rows["invert"] and "ok" in rows["flip"]
    assert "broken" in rows["broken"] and "ImportError: needs libfrobnicate 3" in rows["broken"]


def test_broken_plugin_run_is_a_one_line_error(third_party, tmp_path):
    proc = cli("run", "broken", "x.png", "-o", str(tmp_path), env=third_party)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1
    assert err.startswith("error: plugin 'broken'") and "needs libfrobnicate 3" in err


def test_third_party_plugins_run_through_the_cli(third_party, tmp_path):
    src = write(tmp_path / "a.png", gradient(6, 8))
    proc = cli("run", "invert", str(src), "-o", str(tmp_path / "inv.png"), "--amount", "1", env=third_party)
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(read(tmp_path / "inv.png"), 255 - gradient(6, 8))
    proc = cli("run", "flip", str(src), "-o", str(tmp_path / "flip.png"), env=third_party)
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(read(tmp_path / "flip.png"), gradient(6, 8)[:, ::-1])
    help_text = cli("run", "invert", "--help", env=third_party).stdout.decode()
    assert "--amount" in help_text and "--device" in help_text
    info = cli("info", "flip", env=third_party).stdout.decode()
    assert "gantools-flip (gt_flip:Flip)" in info


def test_third_party_option_errors_name_the_option(third_party, tmp_path):
    src = write(tmp_path / "a.png")
    proc = cli("run", "invert", str(src), "-o", str(tmp_path / "o.png"), "--amount", "3", env=third_party)
    assert proc.returncode == 2 and "--amount" in proc.stderr.decode()


def test_registry_state_is_not_polluted():
    assert "invert" not in registry.PLUGINS  # subprocesses only


def test_registry_duplicate_policy():
    reg: registry.Registry[object] = registry.Registry("widget")
    first, second = object(), object()
    reg.register("a", first, source="pkg-one")
    assert reg.register("a", first) is first  # the same object again is fine
    with pytest.raises(registry.RegistrationError, match="widget name 'a' is already registered by pkg-one"):
        reg.register("a", second)
    with pytest.raises(registry.NotRegistered, match=r"unknown widget 'b' \(known: a\)"):
        reg.get("b")
    with reg.scoped():
        reg.register("b", second)
        assert reg.names() == ["a", "b"]
    assert reg.names() == ["a"] and "b" not in reg
