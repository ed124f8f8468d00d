"""The notification service without the actor: channels, router and workers, fed with a clock.

:class:`risk_actors.notifier.NotifierActor` owns one :class:`NotifierCore` and only translates
messages and wake-ups into calls to it; tests drive it directly with real channels.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

from loguru import logger

from risk_actors.messages import Notify
from risk_actors.notify.channels import log_alert
from risk_actors.notify.delivery import ChannelWorker
from risk_actors.notify.router import Batch, Route, Router


class NotifierCore:
    """Routes alerts to channel workers; ``configure`` (re)builds the channels from a
    :class:`~risk_actors.config.schema.NotificationsConfig`."""

    def __init__(self, *, plugins: Mapping[str, type] | None = None,
                 clock: Callable[[], float] = time.monotonic, queue_size: int = 100,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0) -> None:
        self.plugins = plugins
        self.clock = clock
        self.queue_size = queue_size
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.config: Any = None
        self.workers: dict[str, ChannelWorker] = {}
        self.router = Router([], 60.0)

    def _plugins(self) -> Mapping[str, type]:
        if self.plugins is None:
            from risk_actors.notify.plugins import discover_channels
            self.plugins, _ = discover_channels()
        return self.plugins

    def configure(self, config: Any) -> None:
        """Use the channels of ``config``; an unchanged config keeps channels and counters."""
        if config == self.config:
            return
        old = self.workers
        workers: dict[str, ChannelWorker] = {}
        routes = []
        for cc in config.channels:
            cls = self._plugins().get(cc.type)
            if cls is None:
                logger.error("notification channel {}: type {!r} is not installed; skipped",
                             cc.name, cc.type)
                continue
            try:
                channel = cls(cc.name, cc.params)
            except Exception as exc:  # noqa: BLE001  (one bad channel must not stop the others)
                logger.error("notification channel {} ({}) cannot start: {}", cc.name, cc.type,
                             type(exc).__name__)
                continue
            workers[cc.name] = ChannelWorker(channel, retries=cc.retries,
                                             queue_size=self.queue_size,
                                             backoff_base=self.backoff_base,
                                             backoff_cap=self.backoff_cap)
            routes.append(Route(cc.name, cc.min_severity,
                                frozenset(cc.kinds) if cc.kinds is not None else None,
                                cc.max_per_minute, wants=channel.wants))
        # Keep the de-duplication memory across a reload: a reload must not re-announce locks.
        dedup = self.router.dedup
        self.router = Router(routes, config.dedup_seconds)
        dedup.window = config.dedup_seconds
        self.router.dedup = dedup
        self.workers = workers
        self.config = config
        for worker in old.values():
            worker.retire()
        logger.info("notifications: {} channel(s): {}", len(workers),
                    ", ".join(f"{n} ({w.channel.name})" for n, w in workers.items()) or "log only")

    def _apply(self, batch: Batch) -> None:
        for alert in batch.logged:
            log_alert(alert)
        for name, alert in batch.deliveries:
            worker = self.workers.get(name)
            if worker is not None:
                worker.submit(alert)

    def handle(self, alert: Notify) -> None:
        """One incoming alert."""
        self._apply(self.router.offer(alert, self.clock()))

    def tick(self) -> None:
        """Release summaries and held alerts that fell due."""
        self._apply(self.router.tick(self.clock()))

    def seconds_to_next(self) -> float | None:
        """Seconds until :meth:`tick` has work, or None."""
        deadline = self.router.next_deadline()
        return None if deadline is None else max(0.0, deadline - self.clock())

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Send everything pending and wait up to ``timeout`` s in total for delivery."""
        self._apply(self.router.drain(self.clock()))
        deadline = time.monotonic() + timeout
        done = True
        for worker in self.workers.values():
            done = worker.stop(max(0.01, deadline - time.monotonic())) and done
        if not done:
            logger.error("notifications: shutting down with undelivered alerts")
        return done
