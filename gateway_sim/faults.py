"""Injected failures: "the next N calls to X fail like this".

A fault targets a REST path (``/api/Order/place``; ``*`` means every ``/api`` path) or a hub
(``hub:user``, ``hub:market``, ``hub:all``). Kinds:

================  ==========================================================================
kind              effect
================  ==========================================================================
``5xx``           REST: HTTP 500 (or ``status``), the request is not executed unless
                  ``applied`` is true (then it is executed and the answer is still a 500: the
                  "did my order go through?" case). Hub: the next connection attempt
                  (negotiate or socket upgrade) gets it.
``429``           REST: HTTP 429 with ``Retry-After: retryAfter``; not executed. Hub: as 5xx.
``401``           REST: HTTP 401 as for a bad token; not executed. Hub: as 5xx.
``slow``          REST: wait ``delayMs`` then execute and answer (a client that timed out
                  leaves an order that *was* placed). Hub: delay the next events by delayMs.
``late``          REST only: execute at once, answer ``delayMs`` later (an answer held up on
                  its way back: a search answer describes the broker as it was when it left,
                  and hub events may overtake it).
``drop``          REST: close the connection without an answer (executed only if
                  ``applied``). Hub: instead of delivering the next event, close the hub's
                  sockets (the event is lost, as on a network cut; clients reconnect).
``logout``        Hub only: instead of delivering the next event, send ``GatewayLogout`` and
                  close the sockets.
================  ==========================================================================

``count`` is how many requests / events / connection attempts the fault consumes.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

REST_KINDS = frozenset({"5xx", "429", "401", "slow", "late", "drop"})
HUB_KINDS = frozenset({"5xx", "429", "401", "slow", "drop", "logout"})
HUB_CONNECT_KINDS = frozenset({"5xx", "429", "401"})
HUB_EVENT_KINDS = frozenset({"slow", "drop", "logout"})
HUB_TARGETS = frozenset({"hub:user", "hub:market", "hub:all"})
KIND_ALIASES = {"500": "5xx", "503": "5xx", "502": "5xx", "error": "5xx", "timeout": "slow",
                "ratelimit": "429", "rate-limit": "429", "unauthorized": "401"}

_ids = itertools.count(1)


class FaultError(ValueError):
    """A fault specification that cannot be honoured; the message names the bad value."""


@dataclass
class Fault:
    """One armed fault; ``remaining`` counts down to zero, then the fault disappears."""

    path: str
    kind: str
    count: int
    remaining: int
    retry_after: int = 1
    delay_ms: int = 1000
    status: int = 500
    applied: bool = False
    id: int = field(default_factory=lambda: next(_ids))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {"id": d["id"], "path": self.path, "kind": self.kind, "count": self.count,
                "remaining": self.remaining, "retryAfter": self.retry_after, "delayMs": self.delay_ms,
                "status": self.status, "applied": self.applied}


def normalize_path(path: str) -> str:
    path = path.strip()
    if path in ("*", "") or path.startswith("hub:"):
        return path or "*"
    if not path.startswith("/"):
        path = "/" + path
    if not path.startswith("/api/"):
        path = "/api" + path
    return path


def _int(spec: dict[str, Any], key: str, default: int, minimum: int) -> int:
    value = spec.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise FaultError(f"{key} must be an integer, got {value!r}")
    if value < minimum:
        raise FaultError(f"{key} must be >= {minimum}, got {value!r}")
    return int(value)


class FaultSet:
    """The armed faults, consulted by the REST front door and the hubs."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, spec: dict[str, Any]) -> Fault:
        path = spec.get("path")
        if not isinstance(path, str) or not path.strip():
            raise FaultError(f"path must be a REST path like /api/Order/place or hub:user, got {path!r}")
        path = normalize_path(path)
        kind = spec.get("kind")
        if not isinstance(kind, str):
            raise FaultError(f"kind must be one of {', '.join(sorted(HUB_KINDS | REST_KINDS))}, "
                             f"got {kind!r}")
        kind = KIND_ALIASES.get(kind.lower(), kind.lower())
        if path.startswith("hub:"):
            if path not in HUB_TARGETS:
                raise FaultError(f"hub must be hub:user, hub:market or hub:all, got {path!r}")
            if kind not in HUB_KINDS:
                raise FaultError(f"kind {kind!r} does not apply to a hub; use one of {', '.join(sorted(HUB_KINDS))}")
        else:
            if path != "*" and not path.startswith("/api/"):
                raise FaultError(f"path must start with /api/ or be hub:..., got {path!r}")
            if kind not in REST_KINDS:
                raise FaultError(f"kind {kind!r} does not apply to a REST path; use one of {', '.join(sorted(REST_KINDS))}")
        count = _int(spec, "count", 1, 1)
        status = _int(spec, "status", 500, 500)
        if status > 599:
            raise FaultError(f"status must be a 5xx code, got {status}")
        fault = Fault(path=path, kind=kind, count=count, remaining=count,
                      retry_after=_int(spec, "retryAfter", 1, 0),
                      delay_ms=_int(spec, "delayMs", 1000, 0),
                      status=status, applied=bool(spec.get("applied", False)))
        self._faults.append(fault)
        return fault

    def take(self, path: str, kinds: frozenset[str] | None = None) -> Fault | None:
        """Consume one use of the first armed fault matching ``path`` (and one of ``kinds``)."""
        for fault in self._faults:
            if kinds is not None and fault.kind not in kinds:
                continue
            if not self._matches(fault.path, path):
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return fault
        return None

    @staticmethod
    def _matches(pattern: str, path: str) -> bool:
        if pattern == path:
            return True
        if pattern == "*":
            return path.startswith("/api/")
        if pattern == "hub:all":
            return path.startswith("hub:")
        # REST paths are matched case-insensitively, as ASP.NET Core routes them.
        return not pattern.startswith("hub:") and pattern.lower() == path.lower()

    def list(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self._faults]

    def clear(self) -> int:
        n = len(self._faults)
        self._faults.clear()
        return n
