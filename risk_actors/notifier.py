"""Notifier: where alerts go. For now one channel, the log (and the audit trail).

Identical alerts within a short window are merged so a flapping condition cannot flood the
trader; the count of merged copies is reported when the window closes.
"""

from __future__ import annotations

import time

from loguru import logger
from thespian.actors import ActorTypeDispatcher

DEDUP_SECONDS = 60.0


class NotifierActor(ActorTypeDispatcher):
    """Receives ``Notify`` messages from accounts and delivers them to the channels."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[tuple, list] = {}   # (account, rule, severity, text) -> [first, count]

    def receiveMsg_Notify(self, msg, sender) -> None:
        key = (msg.account_id, msg.rule, msg.severity, msg.message)
        now = time.monotonic()
        entry = self.seen.get(key)
        if entry is not None and now - entry[0] < DEDUP_SECONDS:
            entry[1] += 1
            return
        if entry is not None and entry[1] > 1:
            logger.warning("ALERT (repeated {}x in {:.0f} s) account {} [{}]: {}", entry[1],
                           DEDUP_SECONDS, msg.account_id, msg.rule, msg.message)
        self.seen[key] = [now, 1]
        level = {"critical": "CRITICAL", "error": "ERROR", "warning": "WARNING"}.get(
            msg.severity, "INFO")
        logger.log(level, "ALERT account {} [{}]: {}", msg.account_id, msg.rule, msg.message)
        if len(self.seen) > 10_000:  # forget old keys so a long run cannot grow without bound
            self.seen = {k: v for k, v in self.seen.items() if now - v[0] < DEDUP_SECONDS}
