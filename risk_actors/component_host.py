"""ComponentHostActor: runs the enabled components (analytics ...) off the enforcement path.

The Supervisor creates it at boot and forwards every ``ComponentFeed`` of every account to it.
All components share this one process: they are cheap listeners, and one process keeps them
from costing the accounts anything. A component that raises is logged (and alerted once) and
skipped for that item; the others, and the daemon, go on. If the process itself dies the
Supervisor starts a new one with the same init; items in flight at that moment are lost, which
analytics tolerates because reconciliation re-sends fills and fills are recorded by trade id.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import attrs
from loguru import logger
from thespian.actors import ActorExitRequest, ActorTypeDispatcher, WakeupMessage

from risk_actors import messages as m
from risk_actors.components import Component, ComponentContext, DailyReport, load_component
from risk_actors.orphan import CHECK_SECONDS, ParentWatch

# A component failing on every event must not fill the log: full traceback for the first few,
# then one line per this many seconds.
TRACEBACKS_PER_COMPONENT = 3
QUIET_LOG_SECONDS = 60.0


@attrs.frozen
class ComponentSpec:
    """One component as the config enables it: class path, validated params, report on/off."""

    name: str
    path: str
    params: Any
    daily_report: bool = True


@attrs.frozen
class ComponentHostInit:
    """Supervisor -> ComponentHost: (re)start with these components. Sent at boot, after a
    restart of the host and on every config reload (the host closes and reopens them)."""

    specs: tuple[ComponentSpec, ...]
    context: ComponentContext


@attrs.frozen
class ComponentHostReady:
    """ComponentHost -> Supervisor: which components run and which could not load."""

    running: tuple[str, ...]
    failed: tuple[tuple[str, str], ...] = ()


class ComponentHostActor(ActorTypeDispatcher):
    """Hosts every enabled component and feeds it the accounts' event streams."""

    def __init__(self) -> None:
        super().__init__()
        self.components: list[tuple[ComponentSpec, Component]] = []
        self.failures: dict[str, int] = {}
        self.last_log: dict[str, float] = {}
        self.parent = None
        self.watch: ParentWatch | None = None

    # ---- lifecycle --------------------------------------------------------------------------
    def receiveMsg_ComponentHostInit(self, msg: ComponentHostInit, sender) -> None:
        self.parent = sender
        if self.watch is None:
            self.watch = ParentWatch("component host")
            self.wakeupAfter(CHECK_SECONDS, payload=("orphan-check",))
        self._close_all()
        failed = []
        for spec in msg.specs:
            try:
                component = load_component(spec.path)(spec.params)
                component.start(msg.context)
            except Exception as exc:  # noqa: BLE001  (one bad plugin must not stop the rest)
                logger.opt(exception=True).error("component {} could not start: {}",
                                                 spec.name, exc)
                failed.append((spec.name, f"{type(exc).__name__}: {exc}"))
                self._alert(spec.name, f"component {spec.name} could not start: "
                                       f"{type(exc).__name__}: {exc}")
                continue
            self.components.append((spec, component))
        running = tuple(spec.name for spec, _ in self.components)
        logger.info("components running: {}", ", ".join(running) or "none")
        self.send(sender, ComponentHostReady(running, tuple(failed)))

    def _close_all(self) -> None:
        for spec, component in self.components:
            try:
                component.close()
            except Exception as exc:  # noqa: BLE001
                logger.error("component {} failed to close: {}", spec.name, exc)
        self.components = []

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender) -> None:
        self._close_all()

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender) -> None:
        if msg.payload == ("orphan-check",) and self.watch is not None:
            self.watch.check()
            self.wakeupAfter(CHECK_SECONDS, payload=("orphan-check",))

    # ---- the feed ---------------------------------------------------------------------------
    def receiveMsg_ComponentFeed(self, msg: m.ComponentFeed, sender) -> None:
        for spec, component in self.components:
            if isinstance(msg.item, m.DayClosed):
                report = self._call(spec, component.on_day_closed, msg.account_id,
                                    msg.item.start, msg.item.end)
                if report and spec.daily_report:
                    self._report(spec, msg, report)
            elif self._call(spec, component.wants, msg.item):
                self._call(spec, component.on_event, msg.account_id, msg.item, msg.at)

    def receiveMsg_ComponentFeedBatch(self, msg: m.ComponentFeedBatch, sender) -> None:
        # One message for the items of one handled event: forwarding the batch whole costs the
        # Supervisor one send instead of one per item.
        for feed in msg.feeds:
            self.receiveMsg_ComponentFeed(feed, sender)

    def _call(self, spec: ComponentSpec, fn, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001  (isolation: the next component still runs)
            count = self.failures[spec.name] = self.failures.get(spec.name, 0) + 1
            now = time.monotonic()
            if count <= TRACEBACKS_PER_COMPONENT:
                logger.opt(exception=True).error("component {} raised in {}: {}", spec.name,
                                                 fn.__name__, exc)
            elif now - self.last_log.get(spec.name, 0.0) >= QUIET_LOG_SECONDS:
                logger.error("component {} raised in {} ({} failures so far): {}: {}",
                             spec.name, fn.__name__, count, type(exc).__name__, exc)
                self.last_log[spec.name] = now
            if count == 1:
                self._alert(spec.name, f"component {spec.name} raised in {fn.__name__}: "
                                       f"{type(exc).__name__}: {exc} (riskd goes on; further "
                                       "failures of this component are only logged)")
            return None

    def _report(self, spec: ComponentSpec, msg: m.ComponentFeed,
                report: DailyReport | str) -> None:
        if isinstance(report, str):
            report = DailyReport(report)
        if self.parent is None:
            return
        self.send(self.parent, m.Notify(
            "daily_report", "info", msg.account_id, None, report.text, msg.at,
            {"component": spec.name, **dict(report.data)},
            key=f"daily_report|{spec.name}|{msg.account_id}|{msg.item.end.isoformat()}"))

    def _alert(self, name: str, text: str) -> None:
        if self.parent is not None:
            self.send(self.parent, m.Notify("rule_failure", "error", None, f"component:{name}",
                                            text, datetime.now(timezone.utc),
                                            {"component": name}))
