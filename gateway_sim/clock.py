"""Injected clock of the simulator: every timestamp the engine writes comes from here."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

__all__ = ["SimClock", "iso"]


def iso(dt: datetime) -> str:
    """Gateway timestamp text: UTC, always with microseconds (`2026-11-24T14:30:00.123456+00:00`)."""
    return dt.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _aware_utc(dt: datetime) -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"expected a datetime, got {dt!r}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        # A naive time is ambiguous (local? UTC?): refuse rather than guess.
        raise ValueError(f"naive datetime {dt.isoformat()}: give a timezone, e.g. +00:00")
    return dt.astimezone(timezone.utc)


class SimClock:
    """Simulated wall clock: real time plus an offset, moved by set() and advance().

    `SimClock()` reads real UTC time; `SimClock(start)` starts at `start` and runs on from there.
    With `frozen=True` time only moves when set() or advance() is called, which makes every
    timestamp in a test exact.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._frozen = frozen
        # The offset is applied to the monotonic clock, not the system clock, so an NTP step on
        # the host can never make simulated time jump or run backwards.
        self._mono0 = time.monotonic()
        self._base = _aware_utc(start) if start is not None else datetime.now(timezone.utc)

    @property
    def frozen(self) -> bool:
        return self._frozen

    def now(self) -> datetime:
        if self._frozen:
            return self._base
        return self._base + timedelta(seconds=time.monotonic() - self._mono0)

    def set(self, dt: datetime) -> None:
        self._base = _aware_utc(dt)
        self._mono0 = time.monotonic()

    def advance(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds != seconds:
            raise ValueError(f"advance: seconds must be a number, got {seconds!r}")
        if seconds < 0:
            raise ValueError(f"advance: seconds must be >= 0, got {seconds!r} (use set() to go back)")
        self._base += timedelta(seconds=seconds)
