"""Routing alerts to channels without storms: pure logic, clock passed in as ``now`` (seconds).

Order of the stages, for each alert:

1. **De-duplication** (global): the first alert of a ``dedup_key()`` goes out; identical ones
   within ``dedup_seconds`` of it are counted, and when that window closes one summary
   ("repeated N more times") goes out. Alerts of a kind in :data:`ONCE_KINDS` that carry an
   explicit ``key`` (a lock) are announced once: repeats of that key are dropped for
   ``once_seconds`` without a summary.
2. **Filters** (per channel): ``min_severity``, optional ``kinds``, and the channel's own
   ``wants`` (a webhook only carries the kinds of its events).
3. **Rate limit** (per channel): at most ``max_per_minute`` deliveries in any 60 s; the excess
   is held and merged into one summary sent as soon as the window has room.

The actor calls :meth:`Router.offer` for each alert and :meth:`Router.tick` at
:meth:`Router.next_deadline`; :meth:`Router.drain` releases everything at shutdown.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from typing import Callable, Iterable, Sequence

import attrs

from risk_actors.messages import SEVERITIES, Notify

RANK = {name: i for i, name in enumerate(SEVERITIES)}
ONCE_KINDS = frozenset({"lock_start"})
RATE_WINDOW = 60.0
MAX_KEYS = 10_000  # bound on remembered keys: a long run with ever-new messages stays small


def severity_at_least(severity: str, minimum: str) -> bool:
    """Whether ``severity`` is ``minimum`` or worse (unknown severities count as critical:
    an alert nobody can rank must not be filtered away)."""
    return RANK.get(severity, len(SEVERITIES)) >= RANK.get(minimum, 0)


def _always(_alert: Notify) -> bool:
    return True


@attrs.frozen
class Route:
    """One channel's filters and rate limit (``max_per_minute`` 0 = unlimited)."""

    name: str
    min_severity: str = "info"
    kinds: frozenset[str] | None = None
    max_per_minute: int = 20
    wants: Callable[[Notify], bool] = attrs.field(default=_always, eq=False, repr=False)

    def accepts(self, alert: Notify) -> bool:
        """Whether the channel's filters let ``alert`` through."""
        return (severity_at_least(alert.severity, self.min_severity)
                and (self.kinds is None or alert.kind in self.kinds)
                and self.wants(alert))


@attrs.define
class _Window:
    opened: float
    first: Notify
    last: Notify
    repeats: int = 0


class Deduper:
    """Merges identical alerts (same ``dedup_key()``) within a window; see the module doc."""

    def __init__(self, window: float, once_seconds: float = 86_400.0) -> None:
        self.window = window
        self.once_seconds = once_seconds
        self.open: OrderedDict[str, _Window] = OrderedDict()
        self.once: OrderedDict[str, float] = OrderedDict()
        self.dropped_once = 0

    def offer(self, alert: Notify, now: float) -> Notify | None:
        """``alert`` if it must go out now, None if it was merged into an open window."""
        key = alert.dedup_key()
        if alert.kind in ONCE_KINDS and alert.key is not None:
            seen = self.once.get(key)
            if seen is not None and now - seen < self.once_seconds:
                self.dropped_once += 1
                return None
            self.once[key] = now
            self.once.move_to_end(key)
            while len(self.once) > MAX_KEYS:
                self.once.popitem(last=False)
        if self.window <= 0:
            return alert
        entry = self.open.get(key)
        if entry is not None and now - entry.opened < self.window:
            entry.repeats += 1
            entry.last = alert
            return None
        self.open[key] = _Window(now, alert, alert)
        self.open.move_to_end(key)
        return alert

    def due(self, now: float, *, all_: bool = False) -> list[Notify]:
        """Summaries of the windows that closed by ``now`` (every open one with ``all_``)."""
        out = []
        for key in list(self.open):
            entry = self.open[key]
            if all_ or now - entry.opened >= self.window:
                del self.open[key]
                if entry.repeats:
                    out.append(self.summary(entry))
        while len(self.open) > MAX_KEYS:  # only ever-new keys get here; oldest windows go first
            _, entry = self.open.popitem(last=False)
            if entry.repeats:
                out.append(self.summary(entry))
        return out

    def summary(self, entry: _Window) -> Notify:
        n = entry.repeats
        last = entry.last
        return attrs.evolve(
            last, message=f"{entry.first.message} (repeated {n} more time{'s' if n != 1 else ''}"
                          f" within {self.window:.0f} s)",
            data={**dict(last.data), "repeated": n, "first_at": entry.first.at.isoformat()})

    def next_deadline(self) -> float | None:
        times = [e.opened + self.window for e in self.open.values() if e.repeats]
        return min(times) if times else None


class RateLimiter:
    """At most ``limit`` alerts per :data:`RATE_WINDOW` seconds; the excess becomes one summary."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent: deque[float] = deque()
        self.held: list[Notify] = []

    def _prune(self, now: float) -> None:
        while self.sent and now - self.sent[0] >= RATE_WINDOW:
            self.sent.popleft()

    def offer(self, alert: Notify, now: float) -> Notify | None:
        if self.limit <= 0:
            return alert
        self._prune(now)
        if not self.held and len(self.sent) < self.limit:
            self.sent.append(now)
            return alert
        self.held.append(alert)
        return None

    def due(self, now: float, *, force: bool = False) -> Notify | None:
        if not self.held:
            return None
        self._prune(now)
        if not force and len(self.sent) >= self.limit:
            return None
        held, self.held = self.held, []
        self.sent.append(now)
        return held[0] if len(held) == 1 else merge(held, self.limit)

    def next_deadline(self) -> float | None:
        if not self.held:
            return None
        return self.sent[0] + RATE_WINDOW if len(self.sent) >= self.limit else 0.0


def _common(values: Iterable):
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def merge(alerts: Sequence[Notify], limit: int) -> Notify:
    """One summary alert for several held back by a rate limit: the worst severity, counts by
    kind, the latest message."""
    worst = max(alerts, key=lambda a: RANK.get(a.severity, len(SEVERITIES)))
    latest = alerts[-1]
    counts = Counter(a.kind for a in alerts)
    text = (f"{len(alerts)} alerts held back by the rate limit ({limit} per minute): "
            + ", ".join(f"{n} {kind}" for kind, n in counts.most_common())
            + f". Latest: {latest.message}")
    return Notify(kind=worst.kind, severity=worst.severity,
                  account_id=_common(a.account_id for a in alerts),
                  rule=_common(a.rule for a in alerts), message=text, at=latest.at,
                  data={"rate_limited": len(alerts),
                        "messages": [a.message for a in alerts[:20]]},
                  key=f"rate-limit|{latest.dedup_key()}")


@attrs.frozen
class Batch:
    """What to do now: alerts for the log (they passed de-duplication) and deliveries
    ``(channel name, alert)`` for the channel workers."""

    logged: tuple[Notify, ...] = ()
    deliveries: tuple[tuple[str, Notify], ...] = ()

    def __add__(self, other: "Batch") -> "Batch":
        return Batch(self.logged + other.logged, self.deliveries + other.deliveries)


class Router:
    """De-duplication, per-channel filters and rate limits (see the module doc)."""

    def __init__(self, routes: Sequence[Route], dedup_seconds: float = 60.0,
                 once_seconds: float = 86_400.0) -> None:
        self.routes = {r.name: r for r in routes}
        self.dedup = Deduper(dedup_seconds, once_seconds)
        self.limits = {r.name: RateLimiter(r.max_per_minute) for r in routes}

    def _route(self, alerts: Iterable[Notify], now: float) -> Batch:
        logged, out = [], []
        for alert in alerts:
            logged.append(alert)
            for name, route in self.routes.items():
                if route.accepts(alert):
                    passed = self.limits[name].offer(alert, now)
                    if passed is not None:
                        out.append((name, passed))
        return Batch(tuple(logged), tuple(out))

    def offer(self, alert: Notify, now: float) -> Batch:
        """Route one incoming alert (after releasing whatever fell due by ``now``)."""
        batch = self.tick(now)
        first = self.dedup.offer(alert, now)
        return batch + self._route([first] if first is not None else [], now)

    def tick(self, now: float) -> Batch:
        """Summaries whose windows closed and held alerts whose rate window has room."""
        batch = self._route(self.dedup.due(now), now)
        released = [(name, s) for name, lim in self.limits.items()
                    if (s := lim.due(now)) is not None]
        return batch + Batch((), tuple(released))

    def drain(self, now: float) -> Batch:
        """Everything pending, now, ignoring rate limits (shutdown)."""
        batch = self._route(self.dedup.due(now, all_=True), now)
        released = [(name, s) for name, lim in self.limits.items()
                    if (s := lim.due(now, force=True)) is not None]
        return batch + Batch((), tuple(released))

    def next_deadline(self) -> float | None:
        """The earliest ``now`` at which :meth:`tick` has something to release."""
        times = [t for t in [self.dedup.next_deadline(),
                             *(lim.next_deadline() for lim in self.limits.values())]
                 if t is not None]
        return min(times) if times else None
