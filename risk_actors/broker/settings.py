"""Connection settings of one gateway login (shared by config and the broker adapter)."""

from __future__ import annotations

import attrs


def _redact(_value: str) -> str:
    return "***"


@attrs.frozen
class BrokerSettings:
    """Where and how to log in. ``api_key`` never appears in a repr, a log line or an error."""

    api_url: str
    user_hub_url: str
    market_hub_url: str
    username: str
    api_key: str = attrs.field(repr=_redact)
    requests_per_minute: int = 190  # the gateway allows 200 / 60 s; keep a margin for retries
    timeout_seconds: float = 10.0
