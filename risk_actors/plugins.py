"""Finding rule plugins: entry points of the ``riskd.rules`` group, then modules of ``rules/``.

The core never imports a concrete rule by name: built-ins are found exactly like third-party
packages (pluggy's habit), and scanning the ``rules`` package is only the fallback for a source
checkout whose entry points are not installed.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from importlib.metadata import entry_points
from typing import Callable, Mapping

from loguru import logger

from rules.base import Rule

GROUP = "riskd.rules"


class PluginError(Exception):
    """A rule plugin that cannot be loaded or is malformed."""


def _check(cls: object, origin: str) -> type[Rule]:
    if not (inspect.isclass(cls) and issubclass(cls, Rule)) or inspect.isabstract(cls):
        raise PluginError(f"{origin}: {cls!r} is not a concrete riskd Rule subclass")
    if not getattr(cls, "name", None):
        raise PluginError(f"{origin}: rule class {cls.__name__} has no `name`")
    if not cls.events:
        raise PluginError(f"{origin}: rule {cls.name} subscribes to no event types")
    return cls


def load_entry_points(group: str, check: Callable[[object, str], type], kind: str,
                      found: dict, errors: list[str]) -> None:
    """Add to ``found`` (by the class's ``name``) every plugin class of entry-point ``group``
    that ``check(obj, origin)`` accepts; what fails to load or check goes to ``errors``.

    Shared by rules, notification channels and components: a broken third-party package
    must never stop the others, nor the daemon.
    """
    for ep in entry_points(group=group):
        try:
            cls = check(ep.load(), f"entry point {ep.name} ({ep.value})")
        except Exception as exc:  # noqa: BLE001 - plugin code may raise anything
            errors.append(f"entry point {ep.name!r}: {exc}")
            continue
        if cls.name != ep.name:
            errors.append(f"entry point {ep.name!r} loads {kind} named {cls.name!r}; "
                          f"using {cls.name!r}")
        found.setdefault(cls.name, cls)


def _from_entry_points(found: dict[str, type[Rule]], errors: list[str]) -> None:
    load_entry_points(GROUP, _check, "rule", found, errors)


def _from_package(found: dict[str, type[Rule]], errors: list[str], package: str = "rules") -> None:
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        try:
            module = importlib.import_module(f"{package}.{info.name}")
        except Exception as exc:
            errors.append(f"module {package}.{info.name}: {exc}")
            continue
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Rule) and obj is not Rule and obj.__module__ == module.__name__ \
                    and not inspect.isabstract(obj):
                try:
                    cls = _check(obj, module.__name__)
                except PluginError as exc:
                    errors.append(str(exc))
                    continue
                found.setdefault(cls.name, cls)


def discover(include_package: bool = True) -> tuple[Mapping[str, type[Rule]], list[str]]:
    """All installed rules by name, and the problems met (logged, never raised)."""
    found: dict[str, type[Rule]] = {}
    errors: list[str] = []
    _from_entry_points(found, errors)
    if include_package:
        _from_package(found, errors)
    for err in errors:
        logger.warning("rule plugin problem: {}", err)
    return dict(sorted(found.items())), errors


def load_class(path: str, check: Callable[[object, str], type]) -> type:
    """Import ``module:Class`` and pass it through ``check`` (how an actor in its own process
    gets a plugin class from a picklable reference)."""
    module, _, attr = path.partition(":")
    return check(getattr(importlib.import_module(module), attr), path)


def class_path(cls: type) -> str:
    """The ``module:Class`` path of a plugin class (picklable reference, see load_class)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def load_rule(path: str) -> type[Rule]:
    """A rule plugin class by ``module:Class`` path (how a RuleActor gets its plugin)."""
    return load_class(path, _check)


rule_path = class_path
