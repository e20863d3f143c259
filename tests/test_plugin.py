"""The plugin contract: option validation, constructor checks, registration errors."""

from __future__ import annotations

import numpy as np
import pytest

from gantools import registry
from gantools.plugin import PLATFORM_OPTIONS, Descriptor, Option, OptionError, Plugin, check_image
from gantools.registry import RegistrationError, register_plugin


@pytest.fixture(autouse=True)
def scratch_registry(monkeypatch):
    """Registrations made by a test vanish after it."""
    registry.discover()
    with registry.PLUGINS.scoped():
        yield


def make_class(name: str = "scratch", options: tuple = (), base: type = Plugin) -> type:
    return type("Scratch", (base,), {"descriptor": Descriptor(name, "test", "a test plugin", options=options),
                                     "process": lambda self, img: img})


# -- Option.validate ----------------------------------------------------------------------
def test_option_converts_to_its_type():
    assert Option("n", int, 1, "h").validate("3") == 3
    assert Option("x", float, 1.0, "h").validate("2.5") == 2.5
    assert Option("flag", bool, False, "h").validate("yes") is True
    assert Option("flag", bool, False, "h").validate("0") is False
    assert Option("n", int, None, "h").validate(None) is None


@pytest.mark.parametrize(
    "option, value, words",
    [
        (Option("count", int, 1, "h"), "many", ["--count", "int"]),
        (Option("flag", bool, False, "h"), "maybe", ["--flag", "bool"]),
        (Option("mode", str, "a", "h", choices=("a", "b")), "c", ["--mode", "a, b"]),
        (Option("size", float, 1.0, "h", min=0.5, max=4), 0.1, ["--size", "minimum"]),
        (Option("size", float, 1.0, "h", min=0.5, max=4), 5, ["--size", "maximum"]),
        (Option("face_size", int, 1, "h", max=2), 3, ["--face-size"]),
    ],
)
def test_option_rejects_bad_values_naming_the_flag(option, value, words):
    with pytest.raises(OptionError) as info:
        option.validate(value)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


# -- Plugin constructor ------------------------------------------------------------------------
def test_constructor_fills_defaults_and_validates():
    cls = make_class(options=(Option("strength", float, 0.5, "h", min=0, max=1),))
    assert cls().options == {"strength": 0.5}
    assert cls(strength="1").options == {"strength": 1.0}
    with pytest.raises(OptionError, match="--strength"):
        cls(strength=2)
    with pytest.raises(OptionError, match="no option --colour"):
        cls(colour="red")
    with pytest.raises(OptionError, match="--precision"):
        cls(precision="fp8")
    with pytest.raises(OptionError, match="--threads"):
        cls(threads=0)


def test_check_image_contract():
    check_image(np.zeros((4, 4), np.uint8))
    check_image(np.zeros((4, 4, 4), np.uint16))
    with pytest.raises(ValueError, match="dtype"):
        check_image(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="channel"):
        check_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="channel"):
        check_image(np.zeros((4, 4, 3), np.uint8), channels=(1,))


# -- registration ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PLATFORM_OPTIONS))
def test_option_clashing_with_a_platform_option_is_refused(name):
    cls = make_class(options=(Option(name, str, "x", "h"),))
    with pytest.raises(RegistrationError, match="clashes with a platform option"):
        register_plugin(cls)


def test_cli_platform_flags_are_all_reserved():
    """Every flag `gantools run NAME` adds is reserved, so a plugin option can't shadow it."""
    from gantools.cli.options import PLATFORM

    assert {p.name for p in PLATFORM} <= PLATFORM_OPTIONS


def test_duplicate_option_is_refused():
    cls = make_class(options=(Option("level", int, 1, "h"), Option("level", int, 2, "h")))
    with pytest.raises(RegistrationError, match="declared twice"):
        register_plugin(cls)


def test_other_registration_errors():
    with pytest.raises(RegistrationError, match="unsupported type"):
        register_plugin(make_class(options=(Option("items", list, [], "h"),)))
    with pytest.raises(RegistrationError, match="identifier"):
        register_plugin(make_class(options=(Option("face-size", int, 1, "h"),)))
    with pytest.raises(RegistrationError, match="alphanumeric"):
        register_plugin(make_class(name="bad name!"))
    with pytest.raises(RegistrationError, match="Descriptor"):
        register_plugin(type("NoDescriptor", (Plugin,), {}))
    with pytest.raises(RegistrationError, match="already registered"):
        register_plugin(make_class(name="resize"))


def test_a_valid_plugin_registers_and_loads():
    register_plugin(make_class(name="scratch-ok", options=(Option("level", int, 1, "h"),)))
    plugin = registry.load("scratch-ok", level="2")
    assert plugin.options == {"level": 2}
    img = np.zeros((3, 3), np.uint8)
    assert plugin(img) is img
