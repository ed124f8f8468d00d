"""Signed webhooks: ``on_enforcement``, ``on_lockout``, ``on_warning`` POST JSON to a URL.

Each request carries::

    Content-Type: application/json
    X-Riskd-Event: on_enforcement            (the webhook event)
    X-Riskd-Delivery: 6f1c...                (one id per alert, the same on every retry)
    X-Riskd-Timestamp: 1767225600            (unix seconds of this attempt)
    X-Riskd-Signature: sha256=<hex>          (HMAC-SHA256, key = the secret,
                                              message = timestamp + "." + raw body)

A receiver recomputes the HMAC over the raw body it got, compares in constant time and rejects
timestamps too far from its own clock (replays). :func:`verify` is that check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any, Mapping
from urllib.parse import urlsplit

import attrs

from risk_actors.netshim import is_loopback_host
from risk_actors.messages import WEBHOOK_EVENTS, Notify
from risk_actors.notify.base import Channel, ChannelError

SIGNATURE_HEADER = "X-Riskd-Signature"
TIMESTAMP_HEADER = "X-Riskd-Timestamp"
EVENT_HEADER = "X-Riskd-Event"
DELIVERY_HEADER = "X-Riskd-Delivery"
PAYLOAD_VERSION = 1
# Which webhook event carries an alert kind (the inverse of WEBHOOK_EVENTS).
EVENT_OF_KIND = {kind: event for event, kinds in WEBHOOK_EVENTS.items() for kind in kinds}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Riskd-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *,
           now: float | None = None, tolerance: float = 300.0) -> bool:
    """Whether a received webhook is genuine and fresh (what a receiver should run)."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except (TypeError, ValueError):
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


def payload(alert: Notify, event: str, delivery: str) -> dict[str, Any]:
    """The JSON document a webhook receives for ``alert``."""
    return {"version": PAYLOAD_VERSION, "event": event, "delivery": delivery,
            "kind": alert.kind, "severity": alert.severity, "account_id": alert.account_id,
            "rule": alert.rule, "message": alert.message, "at": alert.at.isoformat(),
            "key": alert.dedup_key(), "data": dict(alert.data)}


def _check_url(_inst: Any, _attr: Any, url: str) -> None:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url must be an http(s):// URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("url must use https (plain http only to a loopback address): the "
                         "payload names accounts and positions")


def _check_secret(_inst: Any, _attr: Any, secret: str) -> None:
    if len(secret) < 16:
        raise ValueError("secret must be at least 16 characters (receivers verify with it)")


def _check_events(_inst: Any, _attr: Any, events: tuple[str, ...]) -> None:
    bad = [e for e in events if e not in WEBHOOK_EVENTS]
    if bad or not events:
        raise ValueError(f"events must be one or more of {', '.join(WEBHOOK_EVENTS)}"
                         + (f" (unknown: {', '.join(map(str, bad))})" if bad else ""))


@attrs.frozen
class WebhookParams:
    """``url`` (https, or http to loopback), ``secret`` (HMAC key, at least 16 characters),
    ``events`` (default all), ``timeout_seconds`` per attempt."""

    url: str = attrs.field(repr=False, validator=_check_url)
    secret: str = attrs.field(repr=False, validator=_check_secret)
    events: tuple[str, ...] = attrs.field(default=tuple(WEBHOOK_EVENTS),
                                          validator=_check_events)
    timeout_seconds: float = attrs.field(default=5.0)

    @timeout_seconds.validator
    def _timeout(self, _attr: Any, value: float) -> None:
        if not 0 < value <= 120:
            raise ValueError("timeout_seconds must be between 0 and 120")


def _permanent(status: int) -> bool:
    # 408/429 and 5xx are the receiver's passing trouble; other 4xx will not change on retry.
    return 400 <= status < 500 and status not in (408, 425, 429)


class WebhookChannel(Channel):
    """POSTs signed JSON for the alert kinds of its ``events``; one attempt per :meth:`send`."""

    name = "webhook"
    description = "signed JSON POST (HMAC-SHA256) for on_enforcement, on_lockout, on_warning"
    Params = WebhookParams

    def __init__(self, instance: str, params: WebhookParams, *, clock=time.time) -> None:
        import httpx
        super().__init__(instance, params)
        self._kinds = {k for e in params.events for k in WEBHOOK_EVENTS[e]}
        self._client = httpx.Client(timeout=params.timeout_seconds, follow_redirects=False,
                                    headers={"User-Agent": "riskd-webhook/1"})
        self._clock = clock
        self._ids: tuple[Notify | None, str] = (None, "")
        from risk_actors.notify.channels import host_of
        self.shown_url = host_of(params.url)

    def wants(self, alert: Notify) -> bool:
        return alert.kind in self._kinds

    def delivery_id(self, alert: Notify) -> str:
        # The same id on every retry of one alert, so a receiver can drop duplicates.
        last, ident = self._ids
        if last is not alert:
            ident = uuid.uuid4().hex
            self._ids = (alert, ident)
        return ident

    def request(self, alert: Notify) -> tuple[bytes, Mapping[str, str]]:
        """(body, headers) of the POST for ``alert``, signed now."""
        event = EVENT_OF_KIND.get(alert.kind, "on_" + alert.kind)
        delivery = self.delivery_id(alert)
        body = json.dumps(payload(alert, event, delivery), default=str,
                          separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(self._clock()))
        headers = {"Content-Type": "application/json", EVENT_HEADER: event,
                   DELIVERY_HEADER: delivery, TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(self.params.secret, timestamp, body)}
        return body, headers

    def send(self, alert: Notify) -> None:
        import httpx
        body, headers = self.request(alert)
        try:
            response = self._client.post(self.params.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            # str(exc) may quote the URL (query tokens): name the class and the safe URL only.
            raise ChannelError(f"POST {self.shown_url} failed: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise ChannelError(f"POST {self.shown_url} answered HTTP {response.status_code}",
                               permanent=_permanent(response.status_code))

    def close(self) -> None:
        self._client.close()
