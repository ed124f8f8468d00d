"""Synchronous client of the simulator's ``/sim`` control API (docs/internal/sim-contract.md).

Standard library only: the scenario CLI and tests start in milliseconds and the client adds no
dependency to a process (riskd's black-box tests, benchmarks) that only wants to poke the simulator.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["ControlClient", "ControlError", "ControlUnavailable"]


class ControlError(Exception):
    """The simulator refused a control call, or its answer could not be read.

    ``endpoint`` is ``"METHOD /sim/path"``, ``status`` the HTTP status (``None`` when no response
    arrived) and ``message`` the server's ``error`` text, so a failing scenario step can say which
    call failed and why without anyone reading the simulator log.
    """

    def __init__(self, endpoint: str, status: int | None, message: str) -> None:
        self.endpoint = endpoint
        self.status = status
        self.message = message
        where = f"{endpoint}: HTTP {status}" if status is not None else endpoint
        super().__init__(f"{where}: {message}")


class ControlUnavailable(ControlError):
    """No simulator answered (connection refused, timeout): distinct so callers can say 'is it running?'."""


def _jsonable(body: dict[str, Any]) -> dict[str, Any]:
    # Optional arguments default to None; the server treats an absent key and a null one
    # differently for some fields, so never send the nulls.
    return {k: v for k, v in body.items() if v is not None}


class ControlClient:
    """Calls the control API of one simulator at ``url`` (``http://127.0.0.1:PORT``).

    Every method is one HTTP request and returns the decoded JSON answer; failures raise
    `ControlError` (HTTP 4xx/5xx, naming the endpoint and the server's error text) or
    `ControlUnavailable` (nothing listening). Names follow the contract; arguments are Python
    snake_case and are sent in the server's camelCase.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"simulator url must look like http://127.0.0.1:PORT, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        # A proxy from the environment (http_proxy) must never see loopback control traffic.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"ControlClient({self.url!r})"

    # -- transport ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request to ``/sim...`` and return the decoded JSON (``{}`` for an empty body)."""
        endpoint = f"{method} {path}"
        full = self.url + path
        if query:
            q = {k: v for k, v in query.items() if v is not None}
            if q:
                full += "?" + urllib.parse.urlencode(q)
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(_jsonable(body)).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(full, data=data, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            raise ControlError(endpoint, exc.code, _error_text(raw, exc.reason)) from None
        except urllib.error.URLError as exc:
            raise ControlUnavailable(endpoint, None, f"no simulator at {self.url} ({_reason(exc.reason)})") from None
        except (TimeoutError, socket.timeout):
            raise ControlUnavailable(endpoint, None, f"no answer from {self.url} within {self.timeout:g} s") from None
        except (ConnectionError, OSError) as exc:
            raise ControlUnavailable(endpoint, None, f"connection to {self.url} failed ({exc})") from None
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise ControlError(endpoint, status, f"answer is not JSON: {raw[:200]!r}") from None

    def _get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body=body if body is not None else {})

    # -- accounts ----------------------------------------------------------------------------

    def accounts(self) -> list[dict[str, Any]]:
        return list(self._get("/sim/accounts").get("accounts", []))

    def create_account(
        self,
        name: str,
        balance: float | None = None,
        can_trade: bool | None = None,
        account_id: int | None = None,
    ) -> dict[str, Any]:
        body = {"name": name, "balance": balance, "canTrade": can_trade, "id": account_id}
        return self._post("/sim/accounts", body).get("account", {})

    def set_can_trade(self, account_id: int, can_trade: bool) -> Any:
        return self._post(f"/sim/accounts/{int(account_id)}/canTrade", {"canTrade": bool(can_trade)})

    def state(self, account_id: int) -> dict[str, Any]:
        """``{"account", "positions", "orders", "trades"}`` of one account."""
        return self._get("/sim/state", accountId=int(account_id))

    # -- market ------------------------------------------------------------------------------

    def set_price(self, contract: str, price: float) -> dict[str, Any]:
        return self._post("/sim/prices", {"contract": contract, "price": price})

    def price_path(self, contract: str, prices: list[float], interval_ms: int) -> dict[str, Any]:
        return self._post("/sim/prices/path", {"contract": contract, "prices": list(prices), "intervalMs": interval_ms})

    def quote_stream(
        self,
        contracts: list[str],
        rate: float,
        tick_ms: float | None = None,
        duration_s: float | None = None,
        amplitude: int | None = None,
        sync_engine: bool | None = None,
        max_backlog_s: float | None = None,
        frames_per_message: int | None = None,
    ) -> dict[str, Any]:
        """Start the fast quote stream (replaces a running one); answers its first stats."""
        return self._post("/sim/quotes/stream", {
            "contracts": list(contracts), "rate": rate, "tickMs": tick_ms, "durationS": duration_s,
            "amplitude": amplitude, "syncEngine": sync_engine, "maxBacklogS": max_backlog_s,
            "framesPerMessage": frames_per_message})

    def quote_stream_stats(self) -> dict[str, Any]:
        """Counters of the current (or last) stream: emitted, queued, written, dropped, t, ..."""
        return self._get("/sim/quotes/stream")

    def stop_quote_stream(self) -> dict[str, Any]:
        """Stop the stream; answers its final stats."""
        return self.request("DELETE", "/sim/quotes/stream")

    # -- the trader's own trading ------------------------------------------------------------

    def place_order(
        self,
        account_id: int,
        contract: str,
        type: str | int,
        side: str | int,
        size: int,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
        stop_loss_bracket: dict[str, Any] | None = None,
        take_profit_bracket: dict[str, Any] | None = None,
    ) -> int:
        """Place an order as the trader would in the broker's platform; returns the order id."""
        answer = self._post(
            "/sim/orders",
            {
                "accountId": account_id,
                "contract": contract,
                "type": type,
                "side": side,
                "size": size,
                "limitPrice": limit_price,
                "stopPrice": stop_price,
                "trailPrice": trail_price,
                "stopLossBracket": stop_loss_bracket,
                "takeProfitBracket": take_profit_bracket,
            },
        )
        try:
            return int(answer["orderId"])
        except (KeyError, TypeError, ValueError):
            raise ControlError("POST /sim/orders", 200, f"answer has no orderId: {answer!r}") from None

    def cancel_order(self, account_id: int, order_id: int) -> Any:
        return self._post("/sim/orders/cancel", {"accountId": account_id, "orderId": order_id})

    def close_position(self, account_id: int, contract: str, size: int | None = None) -> Any:
        return self._post("/sim/positions/close", {"accountId": account_id, "contract": contract, "size": size})

    # -- clock -------------------------------------------------------------------------------

    def clock(self) -> dict[str, Any]:
        """``{"now": iso, "monotonic": float}``; ``monotonic`` is the time base of the log."""
        return self._get("/sim/clock")

    def set_clock(self, at: str) -> Any:
        return self._post("/sim/clock", {"set": at})

    def advance_clock(self, seconds: float) -> Any:
        return self._post("/sim/clock", {"advance": seconds})

    # -- faults and connections --------------------------------------------------------------

    def add_fault(
        self,
        path: str,
        kind: str,
        count: int = 1,
        retry_after: int | None = None,
        delay_ms: int | None = None,
        status: int | None = None,
        applied: bool | None = None,
    ) -> Any:
        """Arm a fault: the next ``count`` calls to ``path`` (or hub events) fail as ``kind`` says."""
        return self._post(
            "/sim/faults",
            {
                "path": path,
                "kind": kind,
                "count": count,
                "retryAfter": retry_after,
                "delayMs": delay_ms,
                "status": status,
                "applied": applied,
            },
        )

    def faults(self) -> Any:
        return self._get("/sim/faults")

    def clear_faults(self) -> Any:
        return self.request("DELETE", "/sim/faults")

    def drop(self, hub: str = "all", mode: str | None = None) -> Any:
        """Close hub sockets now; ``mode`` close|abort|error picks how (server default close)."""
        return self._post("/sim/drop", {"hub": hub, "mode": mode})

    def logout(self, hub: str | None = None, expire_tokens: bool | None = None) -> Any:
        """Send GatewayLogout on the hub(s) and close them; optionally invalidate issued tokens."""
        return self._post("/sim/logout", {"hub": hub, "expireTokens": expire_tokens})

    def tokens(self, expires_in: float | None = None, expire_all: bool | None = None) -> Any:
        return self._post("/sim/tokens", {"expiresIn": expires_in, "expireAll": expire_all})

    def config(
        self,
        wrap_events: bool | None = None,
        pnl_includes_fees: bool | None = None,
        quote_interval_ms: int | None = None,
    ) -> Any:
        return self._post(
            "/sim/config",
            {"wrapEvents": wrap_events, "pnlIncludesFees": pnl_includes_fees, "quoteIntervalMs": quote_interval_ms},
        )

    # -- log ---------------------------------------------------------------------------------

    def mark(self, label: str) -> Any:
        return self._post("/sim/mark", {"label": label})

    def log(self, since: int = 0, kind: str | None = None) -> dict[str, Any]:
        """``{"records": [{n, t, kind, ...}], "next": N}``; pass ``next`` as ``since`` to read on."""
        return self._get("/sim/log", since=since, kind=kind)

    def reset(self) -> Any:
        """Forget every account, order, position, fault and log record (tests only)."""
        return self._post("/sim/reset")


def _error_text(raw: bytes, reason: Any) -> str:
    try:
        doc = json.loads(raw)
    except ValueError:
        text = raw.decode(errors="replace").strip()
        return text[:500] or str(reason)
    if isinstance(doc, dict) and doc.get("error"):
        return str(doc["error"])
    return json.dumps(doc)[:500]


def _reason(reason: Any) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused: is `gateway-sim serve` running?"
    return str(reason)
