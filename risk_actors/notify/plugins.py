"""Finding channel plugins: entry points of ``riskd.notifiers``, then the built-ins.

Built-ins register as entry points exactly like a third-party package; the direct import of
the built-in modules is only the fallback for a source checkout whose entry points are not
installed (the rules' habit, :mod:`risk_actors.plugins`).
"""

from __future__ import annotations

import inspect
from typing import Mapping

from loguru import logger

from risk_actors.plugins import load_entry_points

from risk_actors.notify.base import Channel

GROUP = "riskd.notifiers"
BUILTIN_MODULES = ("risk_actors.notify.channels", "risk_actors.notify.webhook")


class ChannelPluginError(Exception):
    """A channel plugin that cannot be loaded or is malformed."""


def check_channel(cls: object, origin: str) -> type[Channel]:
    """``cls`` if it is a usable channel class, else :class:`ChannelPluginError`."""
    if not (inspect.isclass(cls) and issubclass(cls, Channel)) or cls is Channel:
        raise ChannelPluginError(f"{origin}: {cls!r} is not a riskd Channel subclass")
    if not getattr(cls, "name", None):
        raise ChannelPluginError(f"{origin}: channel class {cls.__name__} has no `name`")
    if not callable(getattr(cls, "send", None)):
        raise ChannelPluginError(f"{origin}: channel {cls.name} has no send()")
    return cls


def discover_channels(include_builtins: bool = True
                      ) -> tuple[Mapping[str, type[Channel]], list[str]]:
    """All installed channel classes by plugin name, and the problems met (logged)."""
    import importlib
    found: dict[str, type[Channel]] = {}
    errors: list[str] = []
    load_entry_points(GROUP, check_channel, "channel", found, errors)
    if include_builtins:
        for module_name in BUILTIN_MODULES:
            module = importlib.import_module(module_name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, Channel) and obj is not Channel \
                        and obj.__module__ == module.__name__ and getattr(obj, "name", ""):
                    found.setdefault(obj.name, obj)
    for err in errors:
        logger.warning("notification channel plugin problem: {}", err)
    return dict(sorted(found.items())), errors
