"""The simulator's network face: one aiohttp application on one loopback port.

- ``/api/...``: the gateway's REST endpoints (gateway-api.md section 1 + Status/ping,
  Order/searchById, History/retrieveBars), answered from the pure `Engine`.
- ``/hubs/user``, ``/hubs/market`` (+ ``/negotiate``): the SignalR hubs (see hubs.py).
- ``/sim/...``: the control API of docs/internal/sim-contract.md (no auth: loopback only).

Everything runs on one asyncio loop, so engine calls are serialized without further locking and
the events of one engine call reach every socket in the order the engine returned them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web

from gateway_sim import assumptions, contracts, protocol
from gateway_sim.auth import TokenIssuer, bearer
from gateway_sim.clock import SimClock, iso
from gateway_sim.engine import Emitted, Engine, EngineError
from gateway_sim.faults import HUB_EVENT_KINDS, FaultError, FaultSet
from gateway_sim.hubs import CLOSE_MODES, EVENT_ROUTES, HubConnection, HubManager
from gateway_sim.quote_stream import QuoteStream
from gateway_sim.recorder import KINDS, Recorder, redact

log = logging.getLogger("gateway_sim.server")

STATE_VERSION = 1
HISTORY_PER_CONTRACT = 50_000
# The state file is rewritten on every change: keep only the recent part of the price history.
HISTORY_PERSISTED = 2_000
SAVE_DEBOUNCE_S = 0.5
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

ORDER_TYPE_NAMES = {"limit": 1, "market": 2, "stoplimit": 3, "stop-limit": 3, "stop_limit": 3,
                    "stop": 4, "trailing": 5, "trailingstop": 5, "trailing-stop": 5,
                    "trailing_stop": 5, "trail": 5}
SIDE_NAMES = {"buy": 0, "bid": 0, "long": 0, "sell": 1, "ask": 1, "short": 1}


class GatewayError(Exception):
    """A request the simulator rejects itself: HTTP 200, ``success: false``, nothing changed."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class ControlFailure(Exception):
    """A bad control call: HTTP 400 (or 404 for something unknown) with ``{"error": ...}``."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


# -- request body helpers ------------------------------------------------------------------------

_MISSING = object()


def _field(body: dict[str, Any], name: str, kind: str, code: int, required: bool = True) -> Any:
    """Read one field with JSON-type checking, raising GatewayError(code) naming the field."""
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise GatewayError(code, f"{name} is required")
        return None
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool)
        and math.isfinite(value),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "object": isinstance(value, dict),
    }[kind]
    if not ok:
        what = {"int": "an integer", "number": "a number", "str": "a string", "bool": "true or false",
                "object": "an object"}[kind]
        raise GatewayError(code, f"{name} must be {what}, got {value!r}")
    return value


def _ctl(body: dict[str, Any], name: str, kind: str, required: bool = True, default: Any = None) -> Any:
    try:
        value = _field(body, name, kind, 0, required)
    except GatewayError as exc:
        raise ControlFailure(exc.message) from None
    return default if value is None else value


def _parse_time(value: str, name: str, code: int) -> datetime:
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise GatewayError(code, f"{name} {value!r} is not an ISO-8601 timestamp") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


class RateLimiter:
    """Sliding-window request budgets per (user, bucket)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._seen: dict[tuple[str, str], deque[float]] = {}

    def admit(self, user: str, bucket: str) -> int | None:
        """None if the request fits the budget (and counts it), else Retry-After seconds."""
        limit, window = assumptions.RATE_LIMITS[bucket]
        now = self._clock()
        seen = self._seen.setdefault((user, bucket), deque())
        while seen and seen[0] <= now - window:
            seen.popleft()
        if len(seen) >= limit:
            return max(1, math.ceil(seen[0] + window - now))
        seen.append(now)
        return None


class PriceHistory:
    """Every price the simulator was given, per contract, for History/retrieveBars."""

    def __init__(self) -> None:
        self.ticks: dict[str, deque[tuple[float, float]]] = {}

    def add(self, contract_id: str, when: datetime, price: float) -> None:
        self.ticks.setdefault(contract_id, deque(maxlen=HISTORY_PER_CONTRACT)).append(
            (when.timestamp(), price))

    def bars(self, contract_id: str, start: datetime, end: datetime, width_s: int, limit: int,
             include_partial: bool, now: datetime) -> list[dict[str, Any]]:
        lo, hi = start.timestamp(), end.timestamp()
        buckets: dict[int, list[float]] = {}
        for ts, price in self.ticks.get(contract_id, ()):
            if ts < lo or ts > hi:
                continue
            b = int(ts // width_s) * width_s
            bar = buckets.get(b)
            if bar is None:
                buckets[b] = [price, price, price, price, 1]
            else:
                bar[1] = max(bar[1], price)
                bar[2] = min(bar[2], price)
                bar[3] = price
                bar[4] += 1
        current = int(now.timestamp() // width_s) * width_s
        out = []
        for b in sorted(buckets, reverse=True):
            if b == current and not include_partial:
                continue
            o, h, l_, c, v = buckets[b]
            out.append({"t": iso(EPOCH + timedelta(seconds=b)), "o": o, "h": h, "l": l_, "c": c, "v": int(v)})
            if len(out) >= limit:
                break
        return out

    def to_dict(self, keep: int = HISTORY_PERSISTED) -> dict[str, list[list[float]]]:
        return {cid: [list(t) for t in list(ticks)[-keep:]] for cid, ticks in self.ticks.items()}

    @classmethod
    def from_dict(cls, data: dict[str, list[list[float]]]) -> "PriceHistory":
        h = cls()
        for cid, ticks in data.items():
            h.ticks[cid] = deque(((float(t), float(p)) for t, p in ticks), maxlen=HISTORY_PER_CONTRACT)
        return h


# -- the simulator -------------------------------------------------------------------------------

class Simulator:
    """Engine + hubs + recorder + faults + tokens behind one aiohttp application."""

    def __init__(self, engine: Engine | None = None, *, clock: SimClock | None = None,
                 wrap_events: bool = assumptions.WRAP_EVENTS_DEFAULT,
                 quote_interval_ms: int = assumptions.QUOTE_INTERVAL_MS_DEFAULT,
                 pnl_includes_fees: bool = assumptions.PNL_INCLUDES_FEES_DEFAULT,
                 rate_limit: bool = assumptions.RATE_LIMIT_DEFAULT,
                 state_file: str | os.PathLike[str] | None = None,
                 recorder: Recorder | None = None, tokens: TokenIssuer | None = None):
        self.clock = clock or (engine.clock if engine is not None else SimClock())
        self.engine = engine or Engine(clock=self.clock, pnl_includes_fees=pnl_includes_fees)
        self.wrap_events = wrap_events
        self.quote_interval_ms = quote_interval_ms
        self.state_file = Path(state_file) if state_file else None
        self.recorder = recorder or Recorder()
        self.faults = FaultSet()
        self.tokens = tokens or TokenIssuer()
        self.history = PriceHistory()
        self.rate_limit = rate_limit
        self.limiter = RateLimiter()
        self.hubs = HubManager(self.tokens, self.faults, self.recorder, on_subscribe=self._on_subscribe)
        self._paths: dict[str, asyncio.Task] = {}
        self._quote_task: asyncio.Task | None = None
        self.quote_stream: QuoteStream | None = None
        self._save_task: asyncio.Task | None = None
        self._dirty = False
        if self.state_file is not None and self.state_file.exists():
            self._load_state(self.state_file, pnl_includes_fees)
        self._seed_history()

    # -- persistence ----------------------------------------------------------------------------

    def _seed_history(self) -> None:
        now = self.clock.now()
        for c in contracts.CATALOGUE:
            if c.id not in self.history.ticks:
                self.history.add(c.id, now, self.engine.price(c.id))

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "engine": self.engine.to_dict(),
            "tokens": self.tokens.to_dict(),
            "config": self.config_dict(),
            # Simulated time keeps running while the simulator is down: store the offset only.
            "clockOffsetS": (self.clock.now() - datetime.now(timezone.utc)).total_seconds(),
            "history": self.history.to_dict(),
        }

    def _load_state(self, path: Path, pnl_includes_fees: bool) -> None:
        """Restore accounts, orders, positions, trades, prices, clock offset and tokens."""
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError(f"unknown state version {data.get('version') if isinstance(data, dict) else data!r}")
            self.clock.set(datetime.now(timezone.utc) + timedelta(seconds=float(data.get("clockOffsetS", 0.0))))
            self.engine = Engine.from_dict(data["engine"], clock=self.clock)
            # The run-time switches come from the command line, not from the file.
            self.engine.pnl_includes_fees = pnl_includes_fees
            self.tokens = TokenIssuer.from_dict(data["tokens"])
            self.hubs.tokens = self.tokens
            self.history = PriceHistory.from_dict(data.get("history", {}))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SystemExit(f"gateway-sim: cannot load state file {path}: {exc}") from None
        log.info("state loaded from %s", path)

    def save_state(self) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(self.state_dict()))
        os.replace(tmp, self.state_file)
        self._dirty = False

    def _changed(self) -> None:
        """Note a state change; the file is rewritten shortly after (changes are coalesced)."""
        if self.state_file is None:
            return
        self._dirty = True
        if self._save_task is None or self._save_task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.save_state()
                return
            self._save_task = loop.create_task(self._save_soon())

    async def _save_soon(self) -> None:
        await asyncio.sleep(SAVE_DEBOUNCE_S)
        if self._dirty:
            try:
                self.save_state()
            except OSError as exc:
                log.error("cannot write state file %s: %s", self.state_file, exc)

    # -- configuration --------------------------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        return {"wrapEvents": self.wrap_events, "pnlIncludesFees": self.engine.pnl_includes_fees,
                "quoteIntervalMs": self.quote_interval_ms, "rateLimit": self.rate_limit,
                "tokenLifetimeS": self.tokens.lifetime_s}

    # -- publishing events ----------------------------------------------------------------------

    def publish(self, events: list[Emitted], **extra: Any) -> None:
        """Record every event and deliver it to the sockets subscribed to it, in order."""
        for ev in events:
            self._publish_one(ev, **extra)

    def _publish_one(self, ev: Emitted, **extra: Any) -> None:
        route = EVENT_ROUTES.get(ev.target)
        if route is None:
            self.recorder.record("event", hub=None, target=ev.target, accountId=ev.account_id,
                                 contractId=ev.contract_id, payload=ev.payload, delivered=0, **extra)
            return
        hub, kind = route
        if hub == "market":
            value: Any = ev.contract_id
            args: list[Any] = [ev.contract_id, ev.payload]
        else:
            value = None if kind == "accounts" else ev.account_id
            payload = {"action": assumptions.WRAP_ACTION, "data": ev.payload} if self.wrap_events else ev.payload
            args = [payload]
        targets = self.hubs.subscribers(hub, kind, value)
        fault = self.faults.take(f"hub:{hub}", HUB_EVENT_KINDS) if targets else None
        delivered = 0
        if fault is None or fault.kind == "slow":
            text = protocol_text(ev.target, args)
            for conn in targets:
                if fault is not None:
                    conn.delay(fault.delay_ms / 1000.0)
                conn.send(text)
            delivered = len(targets)
        else:
            mode = "logout" if fault.kind == "logout" else "close"
            self.hubs.close_all("all" if fault.path == "hub:all" else hub, mode)
        fields: dict[str, Any] = dict(hub=hub, target=ev.target, accountId=ev.account_id,
                                      contractId=ev.contract_id, payload=ev.payload, delivered=delivered)
        if hub == "user" and self.wrap_events:
            fields["wrapped"] = True
        if fault is not None:
            fields["fault"] = fault.kind
        fields.update(extra)
        self.recorder.record("event", **fields)

    def _on_subscribe(self, conn: HubConnection, kind: str, value: Any) -> None:
        # A new quote subscriber gets the current quote at once, as a market-data feed's snapshot.
        if conn.hub != "market" or kind != "quotes":
            return
        try:
            quote = self.engine.quote(value)
        except EngineError:
            return
        conn.send(protocol_text("GatewayQuote", [value, quote]))
        self.recorder.record("event", hub="market", target="GatewayQuote", accountId=None, contractId=value,
                             payload=quote, delivered=1, snapshot=True)

    async def _quote_loop(self) -> None:
        while True:
            interval = self.quote_interval_ms
            await asyncio.sleep(interval / 1000.0 if interval > 0 else 1.0)
            if interval <= 0:
                continue
            for cid in sorted(self.hubs.subscribed_values("market", "quotes")):
                try:
                    quote = self.engine.quote(cid)
                except EngineError:
                    continue
                self._publish_one(Emitted("GatewayQuote", None, quote, contract_id=cid), periodic=True)

    # -- engine wrappers shared by REST and control -----------------------------------------------

    def set_price(self, contract: str, price: Any) -> tuple[str, float]:
        events = self.engine.set_price(contract, price)
        c = contracts.resolve(contract)
        last = self.engine.price(c.id)
        self.history.add(c.id, self.clock.now(), last)
        self.publish(events)
        self._changed()
        return c.id, last

    # -- application ----------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=4 << 20)
        app.router.add_route("*", "/api/{tail:.*}", self._api)
        for hub in ("user", "market"):
            app.router.add_post(f"/hubs/{hub}/negotiate", _bind(self.hubs.negotiate, hub))
            app.router.add_get(f"/hubs/{hub}", _bind(self.hubs.socket, hub))
        self._add_control_routes(app)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        self.hubs.start()
        self._quote_task = asyncio.get_running_loop().create_task(self._quote_loop(), name="quotes")

    async def _on_shutdown(self, _app: web.Application) -> None:
        if self.quote_stream is not None:
            self.quote_stream.stop()
        tasks = [t for t in (self._quote_task, *self._paths.values()) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._paths.clear()
        await self.hubs.stop()
        if self._save_task is not None:
            self._save_task.cancel()
        if self.state_file is not None:
            self.save_state()

    # -- REST -----------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        spec = REST_ENDPOINTS.get(request.path.lower())
        path = spec.path if spec else request.path
        raw = await request.read()
        body: Any = None
        malformed = False
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                malformed = True
        rec = self.recorder.record("request", method=request.method, path=path, **_ids(body),
                                   body=redact(body) if body is not None else None, status=None)
        if malformed:
            rec["malformed"] = True
        log.debug("%s %s", request.method, path)
        try:
            response = await self._api_inner(request, spec, body, malformed, rec)
        except Exception:
            log.exception("error handling %s %s", request.method, path)
            response = web.Response(status=500, text="Internal Server Error")
        rec["status"] = response.status if response is not None else None
        rec["ms"] = round((time.monotonic() - rec["t"]) * 1000, 3)
        if response is None:
            # A "drop" fault: the connection is gone, nothing to answer.
            raise asyncio.CancelledError()
        return response

    async def _api_inner(self, request: web.Request, spec: "Endpoint | None", body: Any, malformed: bool,
                         rec: dict[str, Any]) -> web.StreamResponse | None:
        if spec is None:
            return web.Response(status=404, text="")
        if request.method not in spec.methods:
            return web.Response(status=405, headers={"Allow": ", ".join(spec.methods)})
        fault = self.faults.take(spec.path)
        if fault is not None:
            rec["fault"] = fault.kind
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay_ms / 1000.0)
            elif fault.kind == "late":
                response = await self._api_call(request, spec, body, malformed, rec)
                await asyncio.sleep(fault.delay_ms / 1000.0)
                return response
            else:
                if fault.applied and fault.kind in ("5xx", "drop"):
                    rec["applied"] = True
                    await self._api_call(request, spec, body, malformed, rec)
                if fault.kind == "5xx":
                    return web.Response(status=fault.status, text="Internal Server Error")
                if fault.kind == "429":
                    return web.Response(status=429, headers={"Retry-After": str(fault.retry_after)},
                                        text="Too Many Requests")
                if fault.kind == "401":
                    return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
                if fault.kind == "drop":
                    if request.transport is not None:
                        request.transport.abort()
                    return None
        return await self._api_call(request, spec, body, malformed, rec)

    async def _api_call(self, request: web.Request, spec: "Endpoint", body: Any, malformed: bool,
                        rec: dict[str, Any]) -> web.StreamResponse:
        token = bearer(request.headers.get("Authorization"))
        claims = None
        if not spec.public:
            claims = self.tokens.claims(token)
            if claims is None:
                return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
            if self.rate_limit:
                bucket = "bars" if spec.path == "/api/History/retrieveBars" else "api"
                retry_after = self.limiter.admit(str(claims.get("sub", "")), bucket)
                if retry_after is not None:
                    rec["rateLimited"] = True
                    return web.Response(status=429, headers={"Retry-After": str(retry_after)},
                                        text="Too Many Requests")
        if malformed or (body is not None and not isinstance(body, dict)):
            what = "is not valid JSON" if malformed else "must be a JSON object"
            rec["success"], rec["errorCode"] = False, assumptions.ERROR_CODE_INVALID_REQUEST
            return web.json_response({
                "success": False, "errorCode": assumptions.ERROR_CODE_INVALID_REQUEST,
                "errorMessage": f"request body {what}", "title": "One or more validation errors occurred.",
                "status": assumptions.MALFORMED_JSON_STATUS}, status=assumptions.MALFORMED_JSON_STATUS)
        try:
            result = spec.handler(self, body or {}, claims, token)
            if not isinstance(result, dict):
                return web.json_response(result)
            answer = {**result, "success": True, "errorCode": 0, "errorMessage": None}
        except GatewayError as exc:
            answer = {"success": False, "errorCode": exc.code, "errorMessage": exc.message}
        except EngineError as exc:
            answer = {"success": False, "errorCode": exc.code, "errorMessage": exc.message}
        rec["success"], rec["errorCode"] = answer["success"], answer["errorCode"]
        return web.json_response(answer)

    # -- control API ----------------------------------------------------------------------------

    def _add_control_routes(self, app: web.Application) -> None:
        routes: list[tuple[str, str, Callable[..., Awaitable[dict[str, Any]] | dict[str, Any]]]] = [
            ("GET", "/sim/status", self._c_status),
            ("GET", "/sim/accounts", self._c_accounts),
            ("POST", "/sim/accounts", self._c_create_account),
            ("POST", "/sim/accounts/{id}/canTrade", self._c_can_trade),
            ("POST", "/sim/prices", self._c_price),
            ("POST", "/sim/prices/path", self._c_price_path),
            ("POST", "/sim/quotes/stream", self._c_quote_stream),
            ("GET", "/sim/quotes/stream", self._c_quote_stream_stats),
            ("DELETE", "/sim/quotes/stream", self._c_quote_stream_stop),
            ("POST", "/sim/orders", self._c_order),
            ("POST", "/sim/orders/cancel", self._c_cancel),
            ("POST", "/sim/positions/close", self._c_close),
            ("GET", "/sim/state", self._c_state),
            ("GET", "/sim/clock", self._c_clock),
            ("POST", "/sim/clock", self._c_set_clock),
            ("POST", "/sim/faults", self._c_add_fault),
            ("GET", "/sim/faults", self._c_faults),
            ("DELETE", "/sim/faults", self._c_clear_faults),
            ("POST", "/sim/drop", self._c_drop),
            ("POST", "/sim/logout", self._c_logout),
            ("POST", "/sim/tokens", self._c_tokens),
            ("POST", "/sim/config", self._c_config),
            ("GET", "/sim/config", self._c_get_config),
            ("POST", "/sim/mark", self._c_mark),
            ("GET", "/sim/log", self._c_log),
            ("POST", "/sim/reset", self._c_reset),
        ]
        for method, path, fn in routes:
            app.router.add_route(method, path, self._control(fn, record=method != "GET"))

    def _control(self, fn: Callable[..., Any], record: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            body: dict[str, Any] = {}
            if request.method in ("POST", "DELETE"):
                raw = await request.read()
                if raw.strip():
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        return self._control_answer(request, record, None, 400, {"error": "request body is not valid JSON"})
                    if not isinstance(body, dict):
                        return self._control_answer(request, record, None, 400, {"error": "request body must be a JSON object"})
            rec = None
            if record:
                rec = self.recorder.record("control", method=request.method, path=request.path,
                                           body=redact(body), status=None)
            try:
                result = fn(request, body)
                if asyncio.iscoroutine(result):
                    result = await result
                status, answer = 200, result
            except ControlFailure as exc:
                status, answer = exc.status, {"error": exc.message}
            except EngineError as exc:
                status, answer = (404 if exc.not_found else 400), {"error": exc.message}
            except FaultError as exc:
                status, answer = 400, {"error": str(exc)}
            return self._control_answer(request, record, rec, status, answer)
        return handler

    def _control_answer(self, request: web.Request, record: bool, rec: dict[str, Any] | None, status: int,
                        answer: dict[str, Any]) -> web.Response:
        if record:
            if rec is None:
                rec = self.recorder.record("control", method=request.method, path=request.path, body=None)
            rec["status"] = status
            if status >= 400:
                rec["error"] = answer.get("error")
        return web.json_response(answer, status=status)

    def _account_or_404(self, account_id: Any) -> dict[str, Any]:
        if isinstance(account_id, bool) or not isinstance(account_id, int):
            raise ControlFailure(f"accountId must be an integer, got {account_id!r}")
        for a in self.engine.accounts():
            if a["id"] == account_id:
                return a
        raise ControlFailure(f"accountId {account_id} not found", 404)

    def _contract_or_404(self, key: Any, name: str = "contract") -> contracts.Contract:
        if not isinstance(key, str) or not key.strip():
            raise ControlFailure(f"{name} must be a contract id or symbol such as MNQ, got {key!r}")
        c = contracts.find(key)
        if c is None:
            raise ControlFailure(f"{name} {key!r} not found (give an id such as CON.F.US.MNQ.Z26 or a "
                                 f"symbol such as MNQ)", 404)
        return c

    def _c_status(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        return {"accounts": len(self.engine.accounts()), "connections": {h: self.hubs.count(h) for h in ("user", "market")},
                "config": self.config_dict(), "faults": len(self.faults.list()), "clock": iso(self.clock.now()),
                "stateFile": str(self.state_file) if self.state_file else None, "nextLog": self.recorder.next_n}

    def _c_accounts(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        return {"accounts": self.engine.accounts()}

    def _c_create_account(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        name = _ctl(body, "name", "str")
        balance = _ctl(body, "balance", "number", required=False, default=50000.0)
        can_trade = _ctl(body, "canTrade", "bool", required=False, default=True)
        account_id = _ctl(body, "id", "int", required=False)
        account = self.engine.create_account(name, balance=balance, can_trade=can_trade, account_id=account_id)
        self.publish([Emitted("GatewayUserAccount", account["id"], dict(account))])
        self._changed()
        return {"account": account}

    def _c_can_trade(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        try:
            account_id = int(request.match_info["id"])
        except ValueError:
            raise ControlFailure(f"account id must be an integer, got {request.match_info['id']!r}") from None
        self._account_or_404(account_id)
        flag = _ctl(body, "canTrade", "bool")
        self.publish(self.engine.set_can_trade(account_id, flag))
        self._changed()
        return {"account": self._account_or_404(account_id)}

    def _c_price(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        c = self._contract_or_404(body.get("contract"))
        price = _ctl(body, "price", "number")
        contract_id, last = self.set_price(c.id, price)
        return {"contractId": contract_id, "price": last}

    def _c_price_path(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        c = self._contract_or_404(body.get("contract"))
        prices = body.get("prices")
        if not isinstance(prices, list) or not prices:
            raise ControlFailure(f"prices must be a non-empty list of numbers, got {prices!r}")
        for i, p in enumerate(prices):
            if isinstance(p, bool) or not isinstance(p, (int, float)):
                raise ControlFailure(f"prices[{i}] must be a number, got {p!r}")
            try:
                if c.to_ticks(p, f"prices[{i}]") <= 0:
                    raise ValueError(f"prices[{i}] must be > 0, got {p!r}")
            except ValueError as exc:
                raise ControlFailure(str(exc)) from None
        interval = _ctl(body, "intervalMs", "int", required=False, default=1000)
        if interval < 0:
            raise ControlFailure(f"intervalMs must be >= 0, got {interval}")
        # A new path for a contract replaces the one still playing.
        old = self._paths.pop(c.id, None)
        if old is not None:
            old.cancel()
        self.set_price(c.id, prices[0])
        if len(prices) > 1:
            self._paths[c.id] = asyncio.get_running_loop().create_task(
                self._play_path(c.id, prices[1:], interval / 1000.0), name=f"path:{c.id}")
        return {"contractId": c.id, "steps": len(prices), "intervalMs": interval}

    def _c_quote_stream(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        """Start a fast quote stream (gateway_sim/quote_stream.py); replaces a running one."""
        unknown = set(body) - {"contracts", "rate", "tickMs", "durationS", "amplitude", "syncEngine",
                               "maxBacklogS", "framesPerMessage"}
        if unknown:
            raise ControlFailure(f"unknown field {sorted(unknown)[0]!r}; known: contracts, rate, tickMs, "
                                 f"durationS, amplitude, syncEngine, maxBacklogS, framesPerMessage")
        names = body.get("contracts")
        if not isinstance(names, list) or not names:
            raise ControlFailure(f"contracts must be a non-empty list of contract ids or symbols, got {names!r}")
        ids = []
        for i, name in enumerate(names):
            c = self._contract_or_404(name, f"contracts[{i}]")
            if c.id not in ids:
                ids.append(c.id)
        rate = _ctl(body, "rate", "number")
        if not 0 < rate <= 1_000_000:
            raise ControlFailure(f"rate must be > 0 and <= 1000000 quotes/s, got {rate}")
        amplitude = _ctl(body, "amplitude", "int", required=False, default=2)
        if not 1 <= amplitude <= 1000:
            raise ControlFailure(f"amplitude must be between 1 and 1000 ticks, got {amplitude}")
        try:
            stream = QuoteStream(
                self, ids, rate,
                tick_ms=_ctl(body, "tickMs", "number", required=False, default=5),
                duration_s=_ctl(body, "durationS", "number", required=False),
                amplitude=amplitude,
                sync_engine=_ctl(body, "syncEngine", "bool", required=False, default=False),
                max_backlog_s=_ctl(body, "maxBacklogS", "number", required=False, default=1.0),
                frames_per_message=_ctl(body, "framesPerMessage", "int", required=False, default=500))
        except ValueError as exc:
            raise ControlFailure(str(exc)) from None
        if self.quote_stream is not None:
            self.quote_stream.stop()
        self.quote_stream = stream.start()
        return {"started": True, **stream.stats()}

    def _c_quote_stream_stats(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        if self.quote_stream is None:
            return {"running": False, "t": time.monotonic()}
        return self.quote_stream.stats()

    def _c_quote_stream_stop(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        if self.quote_stream is None:
            return {"running": False, "t": time.monotonic()}
        self.quote_stream.stop()
        return self.quote_stream.stats()

    async def _play_path(self, contract_id: str, prices: list[float], interval_s: float) -> None:
        try:
            for p in prices:
                await asyncio.sleep(interval_s)
                self.set_price(contract_id, p)
        finally:
            if self._paths.get(contract_id) is asyncio.current_task():
                del self._paths[contract_id]

    def _c_order(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        account_id = body.get("accountId")
        self._account_or_404(account_id)
        c = self._contract_or_404(body.get("contract", body.get("contractId")))
        kind = body.get("type", "market")
        if isinstance(kind, str):
            key = kind.strip().lower()
            if key not in ORDER_TYPE_NAMES:
                raise ControlFailure(f"type {kind!r} is not an order type: use market, limit, stop, stoplimit or trailing")
            kind = ORDER_TYPE_NAMES[key]
        side = body.get("side")
        if isinstance(side, str):
            key = side.strip().lower()
            if key not in SIDE_NAMES:
                raise ControlFailure(f"side {side!r} must be buy or sell")
            side = SIDE_NAMES[key]
        size = body.get("size")
        kwargs = {}
        for json_name, arg in (("limitPrice", "limit_price"), ("stopPrice", "stop_price"),
                               ("trailPrice", "trail_price")):
            kwargs[arg] = _ctl(body, json_name, "number", required=False)
        kwargs["stop_loss_bracket"] = _ctl(body, "stopLossBracket", "object", required=False)
        kwargs["take_profit_bracket"] = _ctl(body, "takeProfitBracket", "object", required=False)
        kwargs["custom_tag"] = _ctl(body, "customTag", "str", required=False)
        order_id, events = self.engine.place_order(account_id, c.id, kind, side, size, **kwargs)
        self.publish(events)
        self._changed()
        return {"orderId": order_id}

    def _c_cancel(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        account_id = body.get("accountId")
        self._account_or_404(account_id)
        order_id = _ctl(body, "orderId", "int")
        self.publish(self.engine.cancel_order(account_id, order_id))
        self._changed()
        return {"orderId": order_id}

    def _c_close(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        account_id = body.get("accountId")
        self._account_or_404(account_id)
        c = self._contract_or_404(body.get("contract", body.get("contractId")))
        size = _ctl(body, "size", "int", required=False)
        events = (self.engine.close_position(account_id, c.id) if size is None
                  else self.engine.partial_close(account_id, c.id, size))
        self.publish(events)
        self._changed()
        return {"contractId": c.id, "positions": self.engine.open_positions(account_id)}

    def _c_state(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        raw = request.query.get("accountId")
        if raw is None:
            raise ControlFailure("accountId is required, e.g. /sim/state?accountId=1001")
        try:
            account_id = int(raw)
        except ValueError:
            raise ControlFailure(f"accountId must be an integer, got {raw!r}") from None
        account = self._account_or_404(account_id)
        return {"account": account, "positions": self.engine.open_positions(account_id),
                "orders": self.engine.open_orders(account_id),
                "trades": self.engine.search_trades(account_id, EPOCH)}

    def _c_clock(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        return {"now": iso(self.clock.now()), "monotonic": time.monotonic()}

    def _c_set_clock(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        if ("set" in body) == ("advance" in body):
            raise ControlFailure("give exactly one of set (ISO time) or advance (seconds)")
        if "set" in body:
            value = _ctl(body, "set", "str")
            try:
                when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
                self.clock.set(when)
            except ValueError as exc:
                raise ControlFailure(f"set {value!r}: {exc}" if "naive" in str(exc)
                                     else f"set {value!r} is not an ISO-8601 time with a zone") from None
        else:
            seconds = _ctl(body, "advance", "number")
            try:
                self.clock.advance(seconds)
            except ValueError as exc:
                raise ControlFailure(str(exc)) from None
        self._changed()
        return self._c_clock(request, body)

    def _c_add_fault(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        return {"fault": self.faults.add(body).to_json()}

    def _c_faults(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        return {"faults": self.faults.list()}

    def _c_clear_faults(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        return {"cleared": self.faults.clear()}

    def _hub_arg(self, body: dict[str, Any]) -> str:
        hub = _ctl(body, "hub", "str", required=False, default="all")
        if hub.startswith("hub:"):
            hub = hub[4:]
        if hub not in ("user", "market", "all"):
            raise ControlFailure(f"hub must be user, market or all, got {hub!r}")
        return hub

    def _c_drop(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        hub = self._hub_arg(body)
        mode = _ctl(body, "mode", "str", required=False, default="close")
        if mode not in CLOSE_MODES or mode == "logout":
            raise ControlFailure(f"mode must be close, abort or error, got {mode!r}")
        return {"dropped": self.hubs.close_all(hub, mode)}

    def _c_logout(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        hub = self._hub_arg(body)
        expire = _ctl(body, "expireTokens", "bool", required=False,
                      default=assumptions.LOGOUT_EXPIRES_TOKENS_DEFAULT)
        n = self.hubs.close_all(hub, "logout")
        if expire:
            self.tokens.expire_all()
            self._changed()
        return {"loggedOut": n, "tokensExpired": expire}

    def _c_tokens(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        if "expiresIn" not in body and "expireAll" not in body:
            raise ControlFailure("give expiresIn (seconds) and/or expireAll (true)")
        expires_in = _ctl(body, "expiresIn", "number", required=False)
        if expires_in is not None:
            if expires_in <= 0:
                raise ControlFailure(f"expiresIn must be > 0 seconds, got {expires_in!r}")
            self.tokens.lifetime_s = float(expires_in)
        if _ctl(body, "expireAll", "bool", required=False, default=False):
            self.tokens.expire_all()
        self._changed()
        return {"expiresIn": self.tokens.lifetime_s, "generation": self.tokens.generation}

    def _c_config(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"wrapEvents", "pnlIncludesFees", "quoteIntervalMs", "rateLimit"}
        if unknown:
            raise ControlFailure(f"unknown config key(s) {sorted(unknown)}: use wrapEvents, pnlIncludesFees, "
                                 f"quoteIntervalMs, rateLimit")
        rate_limit = _ctl(body, "rateLimit", "bool", required=False)
        wrap = _ctl(body, "wrapEvents", "bool", required=False)
        pnl = _ctl(body, "pnlIncludesFees", "bool", required=False)
        interval = _ctl(body, "quoteIntervalMs", "int", required=False)
        if interval is not None and interval < 0:
            raise ControlFailure(f"quoteIntervalMs must be >= 0 (0 disables), got {interval}")
        if wrap is not None:
            self.wrap_events = wrap
        if pnl is not None:
            self.engine.pnl_includes_fees = pnl
        if interval is not None:
            self.quote_interval_ms = interval
        if rate_limit is not None:
            self.rate_limit = rate_limit
        self._changed()
        return self.config_dict()

    def _c_get_config(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.config_dict()

    def _c_mark(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        label = body.get("label")
        if not isinstance(label, (str, int, float)) or isinstance(label, bool) or label == "":
            raise ControlFailure(f"label must be a non-empty string, got {label!r}")
        return {"record": self.recorder.record("mark", label=label)}

    def _c_log(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        q = request.query
        try:
            since = int(q.get("since", "0"))
            limit = int(q["limit"]) if "limit" in q else None
        except ValueError:
            raise ControlFailure(f"since and limit must be integers, got since={q.get('since')!r} limit={q.get('limit')!r}") from None
        kinds = None
        if q.get("kind"):
            kinds = [k.strip() for k in q["kind"].split(",") if k.strip()]
            bad = [k for k in kinds if k not in KINDS]
            if bad:
                raise ControlFailure(f"kind {bad[0]!r} is not one of {', '.join(sorted(KINDS))}")
        records, nxt = self.recorder.since(since, kinds, limit)
        return {"records": records, "next": nxt}

    async def _c_reset(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        if self.quote_stream is not None:
            self.quote_stream.stop()
            self.quote_stream = None
        for task in self._paths.values():
            task.cancel()
        self._paths.clear()
        self.clock.set(datetime.now(timezone.utc))
        self.engine = Engine(clock=self.clock, pnl_includes_fees=self.engine.pnl_includes_fees)
        self.faults.clear()
        self.recorder.clear()
        self.history = PriceHistory()
        self._seed_history()
        self._changed()
        return {"reset": True, "nextLog": self.recorder.next_n}


def protocol_text(target: str, args: list[Any]) -> str:
    return protocol.encode(protocol.invocation(target, args))


def _bind(fn: Callable[[web.Request, str], Awaitable[web.StreamResponse]], hub: str
          ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await fn(request, hub)
    return handler


def _ids(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        return {}
    return {k: body[k] for k in ("accountId", "contractId", "orderId") if k in body}


# -- REST endpoint handlers ----------------------------------------------------------------------
# Each takes (sim, body, claims, token) and returns the answer's extra fields; the front door adds
# success/errorCode/errorMessage. GatewayError/EngineError become ``success: false``.

INVALID = assumptions.ERROR_CODE_INVALID_REQUEST


def _login_key(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    code = assumptions.ERROR_CODE_LOGIN_FAILED
    user = _field(body, "userName", "str", code)
    key = _field(body, "apiKey", "str", code)
    if not user.strip() or not key.strip():
        raise GatewayError(code, "userName and apiKey must not be empty")
    return {"token": sim.tokens.issue(user)}


def _validate(sim: Simulator, body: dict[str, Any], claims: dict[str, Any], token: Any) -> dict[str, Any]:
    return {"newToken": sim.tokens.issue(str(claims.get("sub", "")))}


def _logout(sim: Simulator, body: dict[str, Any], claims: Any, token: str) -> dict[str, Any]:
    sim.tokens.revoke(token)
    return {}


def _ping(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> str:
    return assumptions.PING_RESPONSE


def _account_search(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    _field(body, "onlyActiveAccounts", "bool", INVALID, required=False)
    # Every simulated account is active and visible.
    return {"accounts": sim.engine.accounts()}


def _account_id(body: dict[str, Any], code: int = INVALID) -> int:
    return _field(body, "accountId", "int", code)


def _positions(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    return {"positions": sim.engine.open_positions(_account_id(body))}


def _close_contract(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    account_id = _account_id(body)
    contract_id = _field(body, "contractId", "str", INVALID)
    sim.publish(sim.engine.close_position(account_id, contract_id))
    sim._changed()
    return {}


def _partial_close(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    account_id = _account_id(body)
    contract_id = _field(body, "contractId", "str", INVALID)
    size = _field(body, "size", "int", 5)
    sim.publish(sim.engine.partial_close(account_id, contract_id, size))
    sim._changed()
    return {}


def _orders_open(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    return {"orders": sim.engine.open_orders(_account_id(body))}


def _window(body: dict[str, Any], code: int = INVALID) -> tuple[datetime, datetime | None]:
    start = _parse_time(_field(body, "startTimestamp", "str", code), "startTimestamp", code)
    end_text = _field(body, "endTimestamp", "str", code, required=False)
    return start, (None if end_text is None else _parse_time(end_text, "endTimestamp", code))


def _orders_search(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    account_id = _account_id(body)
    start, end = _window(body)
    return {"orders": sim.engine.search_orders(account_id, start, end)}


def _order_by_id(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    account_id = _account_id(body)
    order_id = _field(body, "orderId", "int", INVALID)
    order = sim.engine.order_by_id(account_id, order_id)
    if order is None:
        raise GatewayError(2, f"orderId {order_id} not found on account {account_id}")
    return {"order": order}


def _place(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    code = 2  # PlaceOrderErrorCode.OrderRejected
    account_id = _field(body, "accountId", "int", code)
    contract_id = _field(body, "contractId", "str", code)
    kind = _field(body, "type", "int", code)
    side = _field(body, "side", "int", code)
    size = _field(body, "size", "int", code)
    limit = _field(body, "limitPrice", "number", code, required=False)
    stop = _field(body, "stopPrice", "number", code, required=False)
    trail = _field(body, "trailPrice", "number", code, required=False)
    tag = _field(body, "customTag", "str", code, required=False)
    # linkedOrderId is accepted and ignored: the docs list it without saying what it does.
    _field(body, "linkedOrderId", "int", code, required=False)
    sl = _field(body, "stopLossBracket", "object", code, required=False)
    tp = _field(body, "takeProfitBracket", "object", code, required=False)
    order_id, events = sim.engine.place_order(account_id, contract_id, kind, side, size, limit_price=limit,
                                              stop_price=stop, trail_price=trail, custom_tag=tag,
                                              stop_loss_bracket=sl, take_profit_bracket=tp)
    sim.publish(events)
    sim._changed()
    return {"orderId": order_id}


def _cancel(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    code = 3  # CancelOrderErrorCode.Rejected
    account_id = _field(body, "accountId", "int", code)
    order_id = _field(body, "orderId", "int", code)
    sim.publish(sim.engine.cancel_order(account_id, order_id))
    sim._changed()
    return {}


def _modify(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    code = 3  # ModifyOrderErrorCode.Rejected
    account_id = _field(body, "accountId", "int", code)
    order_id = _field(body, "orderId", "int", code)
    size = _field(body, "size", "int", code, required=False)
    limit = _field(body, "limitPrice", "number", code, required=False)
    stop = _field(body, "stopPrice", "number", code, required=False)
    trail = _field(body, "trailPrice", "number", code, required=False)
    sim.publish(sim.engine.modify_order(account_id, order_id, size=size, limit_price=limit,
                                        stop_price=stop, trail_price=trail))
    sim._changed()
    return {}


def _trades(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    account_id = _account_id(body)
    start, end = _window(body)
    return {"trades": sim.engine.search_trades(account_id, start, end)}


def _contract_search(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    text = _field(body, "searchText", "str", INVALID, required=False)
    live = _field(body, "live", "bool", INVALID, required=False) or False
    return {"contracts": sim.engine.search_contracts(text or "", live)}


def _contract_by_id(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    return {"contract": sim.engine.contract(_field(body, "contractId", "str", INVALID))}


def _contract_available(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    _field(body, "live", "bool", INVALID, required=False)
    return {"contracts": [c.payload() for c in contracts.CATALOGUE]}


def _bars(sim: Simulator, body: dict[str, Any], claims: Any, token: Any) -> dict[str, Any]:
    contract_id = _field(body, "contractId", "str", INVALID)
    c = contracts.find(contract_id)
    if c is None:
        raise GatewayError(INVALID, f"contractId {contract_id!r} not found")
    _field(body, "live", "bool", INVALID, required=False)
    start = _parse_time(_field(body, "startTime", "str", INVALID), "startTime", INVALID)
    end = _parse_time(_field(body, "endTime", "str", INVALID), "endTime", INVALID)
    unit = _field(body, "unit", "int", INVALID)
    if unit not in assumptions.BAR_UNITS_S:
        raise GatewayError(INVALID, f"unit {unit} must be 1 (second) .. 6 (month)")
    unit_number = _field(body, "unitNumber", "int", INVALID)
    if unit_number <= 0:
        raise GatewayError(INVALID, f"unitNumber must be > 0, got {unit_number}")
    limit = _field(body, "limit", "int", INVALID, required=False) or assumptions.MAX_BARS
    if limit <= 0:
        raise GatewayError(INVALID, f"limit must be > 0, got {limit}")
    partial = _field(body, "includePartialBar", "bool", INVALID, required=False) or False
    bars = sim.history.bars(c.id, start, end, assumptions.BAR_UNITS_S[unit] * unit_number,
                            min(limit, assumptions.MAX_BARS), partial, sim.clock.now())
    return {"bars": bars}


class Endpoint:
    """One REST endpoint: canonical path, allowed methods, auth need and handler."""

    def __init__(self, path: str, handler: Callable[..., Any], methods: tuple[str, ...] = ("POST",)):
        self.path = path
        self.handler = handler
        self.methods = methods
        self.public = path in assumptions.PUBLIC_PATHS


_ENDPOINT_LIST = [
    Endpoint("/api/Auth/loginKey", _login_key),
    Endpoint("/api/Auth/validate", _validate),
    Endpoint("/api/Auth/logout", _logout),
    Endpoint("/api/Status/ping", _ping, ("GET", "POST")),
    Endpoint("/api/Account/search", _account_search),
    Endpoint("/api/Position/searchOpen", _positions),
    Endpoint("/api/Position/closeContract", _close_contract),
    Endpoint("/api/Position/partialCloseContract", _partial_close),
    Endpoint("/api/Order/searchOpen", _orders_open),
    Endpoint("/api/Order/search", _orders_search),
    Endpoint("/api/Order/searchById", _order_by_id),
    Endpoint("/api/Order/place", _place),
    Endpoint("/api/Order/cancel", _cancel),
    Endpoint("/api/Order/modify", _modify),
    Endpoint("/api/Trade/search", _trades),
    Endpoint("/api/Contract/search", _contract_search),
    Endpoint("/api/Contract/searchById", _contract_by_id),
    Endpoint("/api/Contract/available", _contract_available),
    Endpoint("/api/History/retrieveBars", _bars),
]
# ASP.NET Core routes case-insensitively; so does the simulator.
REST_ENDPOINTS: dict[str, Endpoint] = {e.path.lower(): e for e in _ENDPOINT_LIST}


# -- running ------------------------------------------------------------------------------------

async def serve(sim: Simulator, host: str = "127.0.0.1", port: int = 0,
                ready: Callable[[str], None] | None = None, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or the task is cancelled); ``ready(url)`` once listening."""
    app = sim.build_app()
    # access_log=None: aiohttp's access log prints the query string, and hub URLs carry the token.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=3.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{bound[1]}"
    if ready is not None:
        ready(url)
    try:
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        await runner.cleanup()
