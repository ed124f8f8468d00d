"""Notifier: where alerts go (log always; apprise, webhooks and other channel plugins).

Thin actor over :class:`risk_actors.notify.service.NotifierCore`: it receives ``Notify`` (from
the Supervisor, which forwards what the accounts send) and ``NotifierInit`` (its config, at boot,
on reload and after a restart), and wakes itself when a de-duplication window or a rate-limit
window closes. Delivery happens in the channels' own threads, so no handler here ever waits for
the network; only the final ``ActorExitRequest`` waits, briefly, so ``daemon_stop`` gets out.
"""

from __future__ import annotations

from datetime import timedelta

import attrs
from loguru import logger
from thespian.actors import ActorExitRequest, ActorTypeDispatcher, WakeupMessage

from risk_actors import messages as m

FLUSH_SECONDS = 5.0  # at shutdown, at most this long for the queued alerts to be delivered


@attrs.frozen
class NotifierInit:
    """Supervisor -> Notifier: the ``notifications`` config section to use (sent at boot, on
    every reload, and to a restarted notifier)."""

    notifications: object


class NotifierActor(ActorTypeDispatcher):
    """Receives ``Notify`` messages and delivers them to the configured channels."""

    def __init__(self) -> None:
        super().__init__()
        from risk_actors.notify.service import NotifierCore
        self.core = NotifierCore()
        self.wake_at: float | None = None

    def receiveMsg_NotifierInit(self, msg: NotifierInit, sender) -> None:
        try:
            self.core.configure(msg.notifications)
        except Exception:  # noqa: BLE001  (keep the previous channels rather than none)
            logger.exception("notification config could not be applied; keeping the old one")

    def receiveMsg_Notify(self, msg: m.Notify, sender) -> None:
        try:
            self.core.handle(msg)
        except Exception:  # noqa: BLE001  (an alert must never crash the notifier)
            logger.exception("alert {} could not be routed", getattr(msg, "kind", "?"))
        self._schedule()

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender) -> None:
        if msg.payload != ("notify-tick",):
            return
        if self.wake_at is not None and self.core.clock() + 0.02 >= self.wake_at:
            self.wake_at = None
        try:
            self.core.tick()
        except Exception:  # noqa: BLE001
            logger.exception("notifier tick failed")
        self._schedule()

    def _schedule(self) -> None:
        # A new wake-up only when it is due before the one in flight: a storm of alerts must
        # not become a storm of timers (an extra tick is harmless, it releases nothing).
        delay = self.core.seconds_to_next()
        if delay is None:
            return
        at = self.core.clock() + delay
        if self.wake_at is not None and self.wake_at <= at + 0.05:
            return
        self.wake_at = at
        self.wakeupAfter(timedelta(seconds=delay + 0.01), payload=("notify-tick",))

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender) -> None:
        self.core.shutdown(FLUSH_SECONDS)
