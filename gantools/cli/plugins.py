"""Command groups with one subcommand per registered plugin (``run``, ``generate``).

A :class:`PluginGroup` lists the registry's plugins that it :meth:`~PluginGroup.accepts` and
builds a plugin's command only when it is used (or its help is shown); an unknown, broken or
unsuitable name is a one-line :class:`~gantools.cli.errors.CliError`.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

from gantools.cli.errors import failure, usage


def plugin_class(name: str) -> Any:
    """The registered class, or :class:`CliError` (2: unknown, 1: broken)."""
    from gantools.registry import PluginNotFound, get_plugin_class

    try:
        return get_plugin_class(name)
    except PluginNotFound as exc:
        raise usage(exc) from None
    except ImportError as exc:
        raise failure(exc) from None


class PluginGroup(TyperGroup):
    """A group of plugin commands; subclasses set :meth:`accepts` and :meth:`build`."""

    #: What an accepted plugin is, for the error about one that is not (``"a generator"``).
    what = "a plugin"

    def accepts(self, descriptor: Any) -> bool:
        """Whether a plugin with this descriptor gets a subcommand here."""
        return True

    def build(self, cls: type) -> Any:
        """The click command of plugin class ``cls`` (cache it: it is asked for repeatedly)."""
        raise NotImplementedError

    def list_commands(self, ctx: Any) -> list[str]:
        from gantools.registry import list_plugins

        return [e.name for e in list_plugins(include_broken=False) if self.accepts(e.descriptor)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        from gantools.registry import get_plugin_class

        try:
            cls = get_plugin_class(cmd_name)
        except (KeyError, ImportError):
            return None
        return self.build(cls) if self.accepts(cls.descriptor) else None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            plugin_class(args[0])  # unknown (2) or broken (1)
            raise usage(f"plugin {args[0]!r} is not {self.what} (see gantools list)")
        return super().resolve_command(ctx, args)
