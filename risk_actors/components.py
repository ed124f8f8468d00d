"""The component interface (the seed's AnalyticsModule pattern) and how components are found.

A component listens to an account's event stream *after* the pipeline has handled each event:
broker events (trades, positions, orders, account updates, reconciliations; never quotes),
``RuleTriggered`` when a rule returned a violation, and ``DayClosed`` at each daily reset. It is
never on the enforcement path: it cannot change state or ask for an action, and one that raises
is logged and skipped while the others (and the daemon) go on. Analytics is the built-in one.

A component declares who it is (``name`` = its config key under ``components:``, ``version``,
``description``, ``author``), its parameters (``Params``, a frozen attrs class that config is
structured into with the same strict cattrs converter as rule params: unknown keys are an error),
the items it wants (``events``; empty = all of them) and implements:

* ``start(context)``: once, before any event; ``context`` says where riskd keeps its state and
  which timezone the trading day uses. Open files or connections here, not in ``__init__``.
* ``on_event(account_id, item, at)``: one item of the stream (``at`` is the account's clock).
* ``on_day_closed(account_id, start, end)``: the trading day ``[start, end)`` ended; return a
  :class:`DailyReport` (or plain text) to have it sent through the notification channels when
  the component's ``daily_report`` setting is on, or None.
* ``close()``: the host is stopping or reloading.

Components register as entry points of the ``riskd.components`` group (``setup.cfg``), built-in
and third-party alike; they run in one ComponentHost actor (:mod:`risk_actors.component_host`).
"""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any, ClassVar, Mapping

import attrs
from loguru import logger

from risk_actors.plugins import class_path, load_class, load_entry_points

GROUP = "riskd.components"
# Keys every component entry accepts besides its Params (components must not reuse them).
COMMON_KEYS = ("enabled", "daily_report")


class ComponentError(Exception):
    """A component plugin that cannot be loaded or is malformed."""


@attrs.frozen
class NoParams:
    """Params class of a component that takes none."""


@attrs.frozen
class ComponentContext:
    """What a component may know about the daemon it runs in (given to ``start``).

    ``db_path`` is riskd's SQLite file (a component may add its *own* tables there, through its
    own connection, in WAL mode); ``state_dir`` is the folder for anything else it keeps.
    ``reset_time``/``reset_timezone`` define the trading day; ``aliases`` maps exchange roots
    to symbols (``EP`` -> ``ES``).
    """

    db_path: str
    state_dir: str
    reset_time: str = "17:00"
    reset_timezone: str = "America/Chicago"
    aliases: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class DailyReport:
    """A component's report of one trading day: ``text`` for people, ``data`` for machines
    (webhooks and JSON channels send it)."""

    text: str
    data: Mapping[str, Any] = attrs.field(factory=dict)


class Component:
    """Base class of every component plugin (built-in or third-party).

    Every hook has a do-nothing default, so a component implements only what it needs.
    ``default_enabled`` says whether it runs when the config does not mention it (only the
    built-in analytics does; an installed third-party component runs once it is listed).
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1.0"
    description: ClassVar[str] = ""
    author: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    events: ClassVar[tuple[type, ...]] = ()
    default_enabled: ClassVar[bool] = False

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def wants(self, item: Any) -> bool:
        """True when this component wants ``item`` (the host sends only those)."""
        return not self.events or isinstance(item, self.events)

    def start(self, context: ComponentContext) -> None:
        """Called once before the first event."""

    def on_event(self, account_id: int, item: Any, at: datetime) -> None:
        """One item of an account's stream (broker event, RuleTriggered, DayClosed)."""

    def on_day_closed(self, account_id: int, start: datetime | None,
                      end: datetime) -> DailyReport | str | None:
        """The trading day ``[start, end)`` ended: the day's report, or None."""
        return None

    def close(self) -> None:
        """The host is stopping (or reloading the component): release what ``start`` took."""


def _check(cls: object, origin: str) -> type[Component]:
    if not (inspect.isclass(cls) and issubclass(cls, Component)) or inspect.isabstract(cls):
        raise ComponentError(f"{origin}: {cls!r} is not a concrete riskd Component subclass")
    if not getattr(cls, "name", None):
        raise ComponentError(f"{origin}: component class {cls.__name__} has no `name`")
    if not attrs.has(cls.Params):
        raise ComponentError(f"{origin}: {cls.__name__}.Params must be an attrs class")
    clash = [a.name for a in attrs.fields(cls.Params) if a.name in COMMON_KEYS]
    if clash:
        raise ComponentError(f"{origin}: {cls.__name__}.Params reuses reserved key(s) "
                             f"{', '.join(clash)}")
    return cls


def discover() -> tuple[Mapping[str, type[Component]], list[str]]:
    """All installed components by name, and the problems met (logged, never raised)."""
    found: dict[str, type[Component]] = {}
    errors: list[str] = []
    load_entry_points(GROUP, _check, "component", found, errors)
    if "analytics" not in found:
        # A source checkout whose entry points are not installed still has the built-in.
        try:
            from risk_actors.analytics.component import AnalyticsComponent
            found["analytics"] = AnalyticsComponent
        except Exception as exc:  # noqa: BLE001
            errors.append(f"built-in analytics: {exc}")
    for err in errors:
        logger.warning("component plugin problem: {}", err)
    return dict(sorted(found.items())), errors


def load_component(path: str) -> type[Component]:
    """A component class by ``module:Class`` path (how the ComponentHost gets it)."""
    return load_class(path, _check)


component_path = class_path
