"""Construction of the project-x-py clients from riskd's BrokerSettings, with a URL guard.

This module and :mod:`risk_actors.broker.session` are the only places that import the SDK.

Why a guard: the SDK silently falls back to TopstepX production URLs in several places
(``ProjectX.from_env()`` ignores ``PROJECTX_*`` URL variables unless given ``config=``,
``ProjectXRealtimeClient`` without ``config`` defaults to ``rtc.topstepx.com``, ``TradingSuite`` is
hard-wired). riskd therefore builds the config itself and asserts, after construction and again
after the hubs are set up, that every URL the SDK will dial is exactly the configured one. A test
pointed at the simulator can never reach production, and a production run never reaches a typo.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from risk_actors.broker.settings import BrokerSettings

# The stale-feed watchdog of project-x-py 4.4.1 force-reconnects both hubs after 30 s without
# market data and then loops every 5 s, losing user events in the gaps. riskd watches its own
# links (session.py), so the watchdog is pushed out of reach: ~31 years.
STALE_FEED_SECONDS = 1e9

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class UrlGuardError(RuntimeError):
    """The SDK would dial a URL other than the configured one (or an unsafe one)."""


def check_url(name: str, url: str) -> None:
    """Refuse URLs that would leak the token: plain http/ws only on loopback."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise UrlGuardError(f"{name} must be an absolute http(s)/ws(s) URL, got {url!r}")
    if parts.query or parts.fragment:
        raise UrlGuardError(f"{name} must carry no query or fragment: {url!r}")
    if parts.scheme in ("http", "ws") and parts.hostname.lower() not in _LOOPBACK:
        # The JWT travels in the hub URL's query string and in REST headers: cleartext only
        # where nothing leaves the machine.
        raise UrlGuardError(f"{name} uses cleartext {parts.scheme}:// on a non-loopback host "
                            f"({parts.hostname}); use https/wss")


def build_config(settings: BrokerSettings) -> Any:
    """A ``ProjectXConfig`` whose every URL comes from ``settings`` (none from SDK defaults).

    ``api_url`` is the REST base *including* ``/api`` (the SDK appends ``/Auth/loginKey`` ...).
    The legacy ``realtime_url`` field is unused by 4.4.1 but is set to the user hub as well, so
    no production URL exists anywhere in the object.
    """
    from project_x_py.models import ProjectXConfig

    for name in ("api_url", "user_hub_url", "market_hub_url"):
        check_url(name, getattr(settings, name))
    return ProjectXConfig(
        api_url=settings.api_url,
        realtime_url=settings.user_hub_url,
        user_hub_url=settings.user_hub_url,
        market_hub_url=settings.market_hub_url,
        timeout_seconds=max(1, math.ceil(settings.timeout_seconds)),
        # The SDK's own retries only apply to reads; riskd reports failures to the enforcer,
        # which owns retry policy, so keep the SDK's to one attempt where it honours the field.
        retry_attempts=1,
        # Client-side limiter (SDK default 60/min, far below the gateway's 200/60 s). riskd's
        # enforcer budgets requests itself; this is the backstop.
        requests_per_minute=settings.requests_per_minute,
        burst_limit=max(10, settings.requests_per_minute // 6),
    )


def build_rest_client(settings: BrokerSettings, account_name: str) -> Any:
    """The SDK's REST client (``ProjectX``) for one account, not yet logged in.

    ``account_name`` makes ``authenticate()`` select that account: the SDK's order calls only
    work for the logged-in account.
    """
    from project_x_py import ProjectX

    client = ProjectX(username=settings.username, api_key=settings.api_key,
                      config=build_config(settings), account_name=account_name)
    guard_rest(client, settings)
    return client


def build_realtime_client(settings: BrokerSettings, jwt_token: str, account_id: int,
                          cls: Any = None) -> Any:
    """The SDK's realtime client for one account (``cls`` lets the session subclass it)."""
    if cls is None:
        from project_x_py.realtime import ProjectXRealtimeClient as cls  # noqa: N813
    rt = cls(jwt_token=jwt_token, account_id=str(account_id),
             user_hub_url=settings.user_hub_url, market_hub_url=settings.market_hub_url,
             config=build_config(settings))
    rt.stale_feed_seconds = STALE_FEED_SECONDS
    # The SDK's health monitor (a "Heartbeat" invocation every 10 s, then a forced reconnect of
    # both hubs) would race the session's own supervisor, which notices a dead transport within
    # ~1.5 s and owns every reconnect. websockets' ping still detects half-open sockets.
    rt._health_monitoring_enabled = False
    guard_realtime(rt, settings)
    return rt


def guard_rest(client: Any, settings: BrokerSettings) -> None:
    """Assert the REST client will dial exactly ``settings.api_url``."""
    _expect("ProjectX.base_url", getattr(client, "base_url", None), settings.api_url)
    _expect("ProjectX.config.api_url", client.config.api_url, settings.api_url)
    limiter = getattr(client, "rate_limiter", None)
    if limiter is None or limiter.max_requests != settings.requests_per_minute:
        raise UrlGuardError("SDK rate limiter not configured from settings.requests_per_minute")


def guard_realtime(rt: Any, settings: BrokerSettings) -> None:
    """Assert both hubs (and the URLs used to rebuild them on token refresh) are configured ones.

    After ``setup_connections()`` the built hub connections are checked too: their URL must be
    the configured hub plus ``?access_token=...`` and nothing else.
    """
    for attr, want in (("user_hub_url", settings.user_hub_url),
                       ("base_user_url", settings.user_hub_url),
                       ("market_hub_url", settings.market_hub_url),
                       ("base_market_url", settings.market_hub_url)):
        _expect(f"ProjectXRealtimeClient.{attr}", getattr(rt, attr, None), want)
    for attr, want in (("user_connection", settings.user_hub_url),
                       ("market_connection", settings.market_hub_url)):
        conn = getattr(rt, attr, None)
        url = getattr(conn, "url", None) if conn is not None else None
        if url is not None and url.split("?access_token=", 1)[0] != want:
            # Never echo the URL itself: it carries the token.
            raise UrlGuardError(f"ProjectXRealtimeClient.{attr} dials "
                                f"{url.split('?', 1)[0]!r}, expected {want!r}")
    if getattr(rt, "stale_feed_seconds", 0) < STALE_FEED_SECONDS:
        raise UrlGuardError("stale-feed watchdog not disabled")


def _expect(what: str, got: Any, want: str) -> None:
    if got != want:
        raise UrlGuardError(f"{what} is {got!r}, expected the configured {want!r}")
