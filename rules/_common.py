"""Small pure helpers shared by built-in rules (not a rule: discovery skips ``_`` modules)."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Mapping

from risk_actors.messages import Alert, FlattenAccount, Lock, LOCK_HARD, LOCK_INDEFINITE


def take_excess(order: Iterable[str], signed: Mapping[str, int],
                excess: int) -> list[tuple[str, int]]:
    """Remove ``excess`` contracts, taking from positions in ``order``: [(contract, qty), ...]."""
    out: list[tuple[str, int]] = []
    for contract in order:
        if excess <= 0:
            break
        take = min(abs(signed[contract]), excess)
        out.append((contract, take))
        excess -= take
    return out


def flatten_and_lock_until_reset(until: datetime | None, reason: str, alert: str,
                                 severity: str) -> tuple:
    """Close everything, cancel everything, lock until the daily reset (003, 013).

    Without a known reset time the lock has no expiry: failing closed beats a lock that ends
    at once.
    """
    return (FlattenAccount(),
            Lock(LOCK_HARD if until else LOCK_INDEFINITE, reason, until, until_reset=True),
            Alert(alert, severity))
