"""``BrokerSession``: project-x-py in a background asyncio thread, bridged by a socketpair.

The SDK is asyncio; thespian actors are not. One session = one account = one ``ProjectX`` REST
client (logged in with ``account_name=``) + one ``ProjectXRealtimeClient``, running on their own
event loop in a daemon thread. The actor side never blocks on I/O:

* **In** (SDK thread -> actor): SDK callbacks copy the payload at once (the SDK keeps and mutates
  those dicts), parse it (:mod:`.parse`), append the result to a deque and write one wake byte to
  a ``socket.socketpair()``. The actor watches :meth:`BrokerSession.fileno` with
  ``ThespianWatch`` and calls :meth:`BrokerSession.drain`, which never blocks.
* **Out** (actor -> SDK thread): :meth:`BrokerSession.submit` schedules a ``BrokerCall`` with
  ``run_coroutine_threadsafe``; its ``BrokerReply`` comes back through the same deque.

Items returned by ``drain()``: :class:`Received` (a broker event with its receive time:
Position/Order/Trade/Account/Quote events, ``ContractsKnown``, ``Reconciled``,
``ConnectionChanged``), ``BrokerReply``, and :class:`~risk_actors.broker.logs.LogRecord`
(log lines from the SDK thread, to be emitted on the actor thread).

Link handling: on every user-hub (re)open the session resubscribes and reconciles over REST
(emitting ``Reconciled``); ``ConnectionChanged`` is emitted whenever "both hubs up" flips. A
supervisor task refreshes the JWT before it expires and pushes it to the realtime client (the SDK
never does), and rebuilds the hubs when pysignalr has given up (401 on reconnect, close-with-error)
or a hub stays down too long.

REST calls: the SDK's public calls are unfit for a risk engine in specific ways (below), so every
broker operation goes through :meth:`BrokerSession._post`, one attempt on the SDK's own pooled
httpx client, with the SDK's token and rate limiter, reporting the exact outcome:

* mutating calls: the SDK turns 429/5xx/401/transport errors into ``OrderSubmissionUncertainError``
  and loses ``Retry-After``; ``close_position_direct`` swallows every error;
* reads: ``_make_request`` sleeps 60 s and retries on 429 and retries 5xx three times (an enforcer
  verifying a close would stall); ``list_accounts`` returns ``[]`` on failure; models rename fields.

SDK internals touched (pin 4.4.1; re-check on upgrade): ``ProjectX._ensure_client``,
``_should_refresh_token``, ``_refresh_authentication``, ``_authenticated``, ``session_token``,
``rate_limiter`` (``_calculate_delay``/``acquire``); realtime ``_on_{user,market}_hub_{open,close}``,
``_on_gateway_logout``, ``_start_connection_async`` (overridden in a subclass),
``user_connection``/``market_connection`` (``.send``, ``._run_task``), ``user_connected``,
``market_connected``.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import math
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any

import attrs

from risk_actors import messages as m
from risk_actors.broker import logs, parse, reconcile, sdk
from risk_actors.broker.settings import BrokerSettings
from risk_actors.clock import Clock, SystemClock

__all__ = ["BrokerSession", "Received", "RestError", "OPS"]

_LOG_NAME = "riskd.broker"
MAX_LOGS_PER_DRAIN = 1000          # beyond this, SDK log lines are counted and dropped
SUPERVISE_INTERVAL = 0.5           # s between link checks
HUB_DOWN_GRACE = 15.0              # s a hub may stay down while pysignalr retries by itself
DEAD_TRANSPORT_GRACE = 1.0         # s before rebuilding a hub whose pysignalr task has ended
RECONNECT_BACKOFF_MAX = 30.0
# REST poll fallback (issue 6): SignalR never replays, and a user hub that stays down leaves
# riskd blind to fills. After REST_POLL_AFTER s without it, the session reads the broker's truth
# (the reconcile: positions, orders, the day's trades, account) every REST_POLL_INTERVAL s until
# the hub is back; the account applies each ``Reconciled`` like any event, so rules see a breach
# and the enforcer acts over REST. Cost: 4 requests per poll, ~48 of the gateway's 200 / 60 s.
REST_POLL_AFTER = 2.0
REST_POLL_INTERVAL = 5.0
CONTRACT_LOOKUP_ATTEMPTS = 3
QUOTE_MODES = ("own", "external", "only")  # see BrokerSession.__init__

OPS = ("close", "partial_close", "cancel", "place_stop", "modify", "search_positions",
       "search_orders", "search_trades", "account", "contract", "reconcile",
       "set_reset_boundary")


@attrs.frozen
class Received:
    """A broker event as it left the SDK thread; ``received_at`` = SDK callback time."""

    event: Any
    received_at: datetime


class RestError(Exception):
    """A REST call that did not succeed. ``uncertain``: the gateway may have executed it."""

    def __init__(self, message: str, status: int | None = None,
                 retry_after: float | None = None, uncertain: bool = False) -> None:
        if uncertain:
            message += " (outcome uncertain: the gateway may have executed it; re-read before retrying)"
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.uncertain = uncertain


class _Fatal(Exception):
    """A configuration error no retry can fix (URL guard, wrong account)."""


def _copy_json(value: Any) -> Any:
    # The SDK hands the same dict to its own managers, which mutate it later: copy first.
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy_json(v) for v in value]
    return value


def _raw_text(value: Any, limit: int = 2000) -> str:
    try:
        text = json.dumps(value, default=repr, allow_nan=True)
    except Exception:
        text = repr(value)
    return logs.scrub(text[:limit])


def _retry_after(headers: Any, default: float | None) -> float | None:
    raw = headers.get("Retry-After") if headers is not None else None
    if raw is None:
        return default
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else default
    except ValueError:
        # An HTTP-date Retry-After is legal but never seen from the gateway.
        return default


# ---------------------------------------------------------------------------------------------
# argument validation for broker operations: garbage never reaches the broker
def _arg_str(name: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"{name} must be a non-empty string, got {v!r}")
    return v


def _arg_int(name: str, v: Any, lo: int = 1, allowed: tuple[int, ...] | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if allowed is not None and v not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {v!r}")
    return v


def _arg_price(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    return float(v)


def _arg_dt(name: str, v: Any) -> datetime:
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if not isinstance(v, datetime):
        raise ValueError(f"{name} must be a datetime, got {v!r}")
    return v if v.tzinfo else v.replace(tzinfo=timezone.utc)


def _quote_payload(args: tuple) -> Any:
    """``GatewayQuote`` invocation arguments as the SDK's ``quote_update`` callbacks get them,
    ``{"contract_id", "data"}``: live SignalR calls with ``(contract_id, data)``; a packed
    ``([contract_id, data],)`` or a bare dict (its ``symbol`` as the id) is accepted too.
    Anything else is passed on as it is, for the parser to reject with its raw text."""
    if len(args) == 2:
        return {"contract_id": args[0], "data": args[1]}
    if len(args) == 1:
        raw = args[0]
        if isinstance(raw, list) and len(raw) >= 2:
            return {"contract_id": raw[0], "data": raw[1]}
        if isinstance(raw, dict):
            return {"contract_id": raw.get("symbol", "unknown"), "data": raw}
        return raw
    return list(args)


@functools.cache
def _realtime_class() -> type:
    """``ProjectXRealtimeClient`` with riskd's hooks (built lazily: importing the SDK is slow)."""
    from project_x_py.realtime import ProjectXRealtimeClient

    class RiskdRealtimeClient(ProjectXRealtimeClient):  # type: ignore[misc, valid-type]
        """Reports hub open/close/logout to the session and guards every hub it starts."""

        riskd_session: "BrokerSession | None" = None

        def _on_user_hub_open(self) -> None:
            super()._on_user_hub_open()
            if self.riskd_session:
                self.riskd_session._hub_changed("user", True)

        def _on_user_hub_close(self) -> None:
            super()._on_user_hub_close()
            if self.riskd_session:
                self.riskd_session._hub_changed("user", False)

        def _on_market_hub_open(self) -> None:
            super()._on_market_hub_open()
            if self.riskd_session:
                self.riskd_session._hub_changed("market", True)

        def _on_market_hub_close(self) -> None:
            super()._on_market_hub_close()
            if self.riskd_session:
                self.riskd_session._hub_changed("market", False)

        def _forward_quote_update(self, *args: Any) -> None:
            # The SDK's own path schedules a coroutine per quote through
            # run_coroutine_threadsafe (a self-pipe write each) and coalesces again behind it;
            # at 20,000 quotes/s that was about a third of the feed's CPU. riskd holds the
            # latest quote per contract itself (quote_interval), so hand it over directly.
            session = self.riskd_session
            if session is None:
                super()._forward_quote_update(*args)
                return
            self._mark_hub_message("market")  # the SDK's stale-feed watchdog still sees it
            session._on_quote(_quote_payload(args))

        # User events likewise: the SDK schedules a task per event (same self-pipe write); the
        # session parses them straight from the hub's receive loop, in the order they came.
        def _riskd_user(self, name: str, args: tuple, sdk_forward: Any) -> None:
            session = self.riskd_session
            if session is None:
                sdk_forward(*args)
                return
            self._mark_hub_message("user")
            session._on_user(name, args[0] if args else {})

        def _forward_account_update(self, *args: Any) -> None:
            self._riskd_user("account_update", args, super()._forward_account_update)

        def _forward_position_update(self, *args: Any) -> None:
            self._riskd_user("position_update", args, super()._forward_position_update)

        def _forward_order_update(self, *args: Any) -> None:
            self._riskd_user("order_update", args, super()._forward_order_update)

        def _forward_trade_execution(self, *args: Any) -> None:
            self._riskd_user("trade_execution", args, super()._forward_trade_execution)

        def _on_gateway_logout(self, *args: Any) -> None:
            super()._on_gateway_logout(*args)
            if self.riskd_session:
                self.riskd_session._log("WARNING", f"GatewayLogout received: {_raw_text(args)}")

        async def disconnect(self) -> None:
            # 4.4.1 bug: disconnect() cancels the hub tasks (no close callback runs) but leaves
            # user_hub_ready/market_hub_ready set, so the connect() inside update_jwt_token sees
            # "ready" at once, finds the flags False and fails; the SDK's recovery then reuses
            # the half-built connections. Clearing the events makes the token push work.
            await super().disconnect()
            self.user_hub_ready.clear()
            self.market_hub_ready.clear()
            if self.riskd_session:
                self.riskd_session._update_link("hubs disconnected for a restart")

        async def _start_connection_async(self, connection: Any, name: str) -> None:
            # Every start (first connect, pysignalr give-up rebuild, token refresh) passes here:
            # the last point where a wrong URL can be stopped before it is dialled.
            if self.riskd_session:
                self.riskd_session._guard_connection(connection, name)
            await super()._start_connection_async(connection, name)

    return RiskdRealtimeClient


class BrokerSession:
    """One account's link to the gateway, run on a private asyncio thread.

    Construct, :meth:`start`, watch :meth:`fileno`, :meth:`drain` when readable, :meth:`submit`
    ``BrokerCall``s, :meth:`stop` at the end. Only ``drain``/``submit``/``stop``/``fileno`` are
    meant for the owner's thread; everything else runs on the session thread.
    """

    def __init__(self, account_id: int, account_name: str, settings: BrokerSettings,
                 reset_boundary: datetime, *, clock: Clock | None = None,
                 coalesce_quotes: bool = True, quote_interval: float = 0.0,
                 quotes: str = "own") -> None:
        if quotes not in QUOTE_MODES:
            raise ValueError(f"quotes must be one of {', '.join(QUOTE_MODES)}, not {quotes!r}")
        self.account_id = account_id
        # "own": this session subscribes the quotes its account needs (one market hub per
        # account). "external": a shared feed delivers them; the session only reports which
        # contracts it needs (QuotesWanted). "only": the shared feed itself: quotes and nothing
        # else (no user events, no reconcile), for contracts given through want_quotes().
        self.quotes_mode = quotes
        self.account_name = account_name
        self.settings = settings
        self._reset_boundary = _arg_dt("reset_boundary", reset_boundary)
        self._clock = clock or SystemClock()
        self._coalesce_quotes = coalesce_quotes
        # Quotes leave the session thread at most once per quote_interval (the latest of each
        # contract): at thousands of quotes a second, waking the owner for each one costs more
        # than the SDK's parsing. Other events are never held.
        self._quote_interval = quote_interval
        self._held_quotes: dict[str, tuple[Any, datetime]] = {}
        self._quote_flush_due = False
        self._last_quote_flush = 0.0
        logs.register_secret(settings.api_key)
        # actor <-> session plumbing
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        self._items: collections.deque[Any] = collections.deque()
        self._signalled = False
        self._logs_since_drain = 0
        self._dropped_logs = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        # session-thread state
        self._client: Any = None
        self._rt: Any = None
        self._hub_token = ""
        self._fatal: str | None = None
        self._link_up: bool | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._contracts: dict[str, m.ContractInfo] = {}
        self._contract_inflight: dict[str, asyncio.Future[m.ContractInfo]] = {}
        self._contract_learning: set[str] = set()
        self._announced: set[str] = set()
        self._quote_wanted: set[str] = set()
        self._quote_live: set[str] = set()
        self._merger = parse.QuoteMerger()
        # One list per reconcile in flight: the user events accepted while its REST answers were
        # on their way (see reconcile.overlay).
        self._reconcile_windows: list[list[Any]] = []
        self.stats = {"events": 0, "malformed": 0, "reconciles": 0, "reconnects": 0,
                      "token_refreshes": 0, "rest_polls": 0}

    # ------------------------------------------------------------------ owner-thread API
    def start(self) -> None:
        """Start the session thread (login and connect happen there; this returns at once)."""
        if self._thread is not None:
            raise RuntimeError("BrokerSession already started")
        logs.install()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, daemon=True,
                                        name=f"broker-{self.account_id}")
        self._thread.start()
        # Wait only for the loop to exist (microseconds), never for the network.
        self._started.wait(5.0)

    def fileno(self) -> int:
        """The readable end of the socketpair, for ``ThespianWatch``/``select``."""
        return self._rsock.fileno()

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive() and not self._closed)

    def drain(self) -> list[Any]:
        """Everything queued since the last call, in order. Never blocks.

        With ``coalesce_quotes``, of several quotes of one contract in the batch only the last
        survives (at its own position): a quote is a level, not a delta.
        """
        if not self._closed:
            try:
                while self._rsock.recv(65536):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass
        # Clear the flag *after* consuming the wake bytes and *before* popping: an item appended
        # while the flag still read True is popped below; one appended after this line sees
        # False and writes a new byte. (Clearing before the recv lost wake-ups: an emit between
        # the clear and the recv set the flag, its byte was eaten here, and the next emit then
        # skipped its byte, leaving an item queued until the 1 s heartbeat.)
        self._signalled = False
        items = []
        pop = self._items.popleft
        try:
            while True:
                items.append(pop())
        except IndexError:
            pass
        self._logs_since_drain = 0
        if self._dropped_logs:
            n, self._dropped_logs = self._dropped_logs, 0
            items.append(logs.LogRecord("WARNING", _LOG_NAME,
                                        f"dropped {n} SDK log records (log storm)"))
        if self._coalesce_quotes and len(items) > 1:
            items = self._coalesce(items)
        return items

    @staticmethod
    def _coalesce(items: list[Any]) -> list[Any]:
        # Between two other broker events only the newest quote of each contract is kept, and
        # it stays before the event that followed it: an event is never judged against a
        # price older than what had arrived before it.
        out: list[Any] = []
        held: dict[str, Any] = {}
        for it in items:
            if isinstance(it, Received) and isinstance(it.event, m.QuoteEvent):
                held.pop(it.event.contract_id, None)
                held[it.event.contract_id] = it
                continue
            if held and isinstance(it, Received):
                out.extend(held.values())
                held.clear()
            out.append(it)
        out.extend(held.values())
        return out

    def submit(self, call: m.BrokerCall) -> None:
        """Schedule ``call`` on the session loop; its ``BrokerReply`` arrives through drain()."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self.running:
            self._emit(m.BrokerReply(call.account_id, call.call_id, call.op, False,
                                     error="broker session not running"))
            return
        try:
            asyncio.run_coroutine_threadsafe(self._execute(call), loop)
        except RuntimeError as exc:  # loop closed between the check and the call
            self._emit(m.BrokerReply(call.account_id, call.call_id, call.op, False,
                                     error=f"broker session not running ({exc})"))

    def want_quotes(self, contract_ids: Any) -> None:
        """Owner thread: subscribe these contracts' quotes too (and again after a reconnect)."""
        cids = [str(c) for c in contract_ids]
        loop = self._loop
        if loop is None or loop.is_closed():
            self._quote_wanted.update(cids)  # the hub-open handler subscribes them
            return
        try:
            loop.call_soon_threadsafe(self._want_quotes, cids)
        except RuntimeError:  # the loop closed meanwhile: the session is stopping
            pass

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect the hubs, close HTTP, end the thread, close the socketpair. Idempotent."""
        if self._closed:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed() and self._thread and self._thread.is_alive():
            try:
                loop.call_soon_threadsafe(self._stop_requested.set)
            except RuntimeError:
                pass
            self._thread.join(timeout)
        self._closed = True
        for s in (self._rsock, self._wsock):
            try:
                s.close()
            except OSError:
                pass

    # ------------------------------------------------------------------ plumbing
    def _emit(self, item: Any) -> None:
        # deque.append is atomic under the GIL; the wake byte is only needed when the owner has
        # drained since the last one (select() is level-triggered).
        self._items.append(item)
        if not self._signalled:
            self._signalled = True
            try:
                self._wsock.send(b"\x01")
            except (BlockingIOError, InterruptedError):
                pass  # buffer full: a wake-up is already pending
            except OSError:
                pass  # closed during stop()

    def _emit_event(self, event: Any, received_at: datetime | None = None) -> None:
        if self._held_quotes and not isinstance(event, m.QuoteEvent):
            # Quotes that came before this event go before it: a position judged against a
            # price from before the latest quote could be closed for a loss it does not have.
            self._flush_quotes()
        self.stats["events"] += 1
        self._emit(Received(event, received_at or self._clock.now()))

    def _emit_log(self, rec: logs.LogRecord) -> None:
        if self._logs_since_drain >= MAX_LOGS_PER_DRAIN:
            self._dropped_logs += 1
            return
        self._logs_since_drain += 1
        self._emit(rec)

    def _log(self, level: str, message: str) -> None:
        self._emit_log(logs.LogRecord(level, _LOG_NAME,
                                      logs.scrub(f"account {self.account_id}: {message}")))

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self._log("ERROR", f"task {name} failed: {t.exception()!r}")
        task.add_done_callback(done)
        return task

    # ------------------------------------------------------------------ thread main
    def _thread_main(self) -> None:
        logs.bind_thread(self._emit_log)
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # the thread must end with a trace, never silently
            self._log("CRITICAL", f"session thread died: {exc!r}")
        finally:
            self._set_link(False, "session stopped")
            logs.unbind_thread()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._ready = asyncio.Event()
        self._hub_lock = asyncio.Lock()
        self._reconcile_wanted = asyncio.Event()
        self._started.set()
        try:
            work = self._spawn(self._run(), "session")
            stopper = asyncio.get_running_loop().create_task(self._stop_requested.wait())
            await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not stopper.done():
                if self._fatal:
                    # A configuration error no retry fixes: stay up so calls are answered
                    # "disabled" instead of hanging, until the owner stops us.
                    await stopper
                else:
                    # A bug ended the session's work: end the thread so the owner (the
                    # GatewayActor's heartbeat) builds a fresh session.
                    self._log("CRITICAL", "session work ended unexpectedly; stopping the thread")
                    stopper.cancel()
        finally:
            await self._shutdown()

    async def _run(self) -> None:
        await self._connect_with_retry()
        if not self._stop_requested.is_set() and self._fatal is None:
            self._spawn(self._reconciler(), "reconciler")
            await self._supervise()

    async def _sleep_or_stop(self, seconds: float) -> bool:
        """Sleep; True when stop was requested meanwhile."""
        try:
            await asyncio.wait_for(self._stop_requested.wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def _connect_with_retry(self) -> None:
        backoff = 1.0
        while not self._stop_requested.is_set():
            try:
                await self._login()
                await self._start_hubs()
                self._ready.set()
                return
            except _Fatal as exc:
                self._fatal = str(exc)
                self._log("CRITICAL", f"broker session disabled: {exc}")
                self._set_link(False, f"fatal: {exc}")
                return
            except Exception as exc:
                self._log("ERROR", f"login/connect failed, retrying in {backoff:.0f}s: {exc!r}")
                self._set_link(False, f"login failed: {exc}")
                await self._close_clients()
                if await self._sleep_or_stop(backoff):
                    return
                backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX)

    async def _login(self) -> None:
        try:
            client = sdk.build_rest_client(self.settings, self.account_name)
        except sdk.UrlGuardError as exc:
            raise _Fatal(str(exc)) from exc
        logs.install()  # the SDK may have imported (and decorated) more loggers by now
        await client.__aenter__()
        self._client = client
        await client.authenticate()
        info = client.account_info
        if info is None or info.id != self.account_id:
            raise _Fatal(f"account_name {self.account_name!r} logged in as account "
                         f"{getattr(info, 'id', None)}, expected {self.account_id}")
        logs.register_secret(client.session_token)

    async def _start_hubs(self) -> None:
        try:
            rt = sdk.build_realtime_client(self.settings, self._client.session_token,
                                           self.account_id, cls=_realtime_class())
        except sdk.UrlGuardError as exc:
            raise _Fatal(str(exc)) from exc
        # No add_callback: RiskdRealtimeClient hands user events and quotes to this session
        # straight from the hub (see _forward_quote_update there).
        rt.riskd_session = self
        self._rt = rt
        self._hub_token = self._client.session_token
        logs.install()
        ok = await rt.connect()
        if self._fatal:
            raise _Fatal(self._fatal)
        if not ok:
            # pysignalr keeps trying in the background; the supervisor takes over from here.
            self._log("WARNING", "hubs not both up within 10 s of connect(); supervising")

    async def _close_clients(self) -> None:
        rt, self._rt = self._rt, None
        if rt is not None:
            rt.riskd_session = None
            try:
                await asyncio.wait_for(rt.disconnect(), 5.0)
            except Exception as exc:
                self._log("WARNING", f"realtime disconnect: {exc!r}")
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except Exception as exc:
                self._log("WARNING", f"http client close: {exc!r}")

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_clients()
        self._set_link(False, "session stopped")

    # ------------------------------------------------------------------ guards & link state
    def _guard_connection(self, connection: Any, name: str) -> None:
        want = self.settings.user_hub_url if name == "user" else self.settings.market_hub_url
        url = getattr(connection, "url", "") or ""
        if url.split("?access_token=", 1)[0] != want:
            self._fatal = (f"URL guard: {name} hub would dial {url.split('?', 1)[0]!r}, "
                           f"expected {want!r}")
            self._log("CRITICAL", self._fatal)
            raise sdk.UrlGuardError(self._fatal)

    def _set_link(self, up: bool, detail: str) -> None:
        """Emit ConnectionChanged when the link state flips (unknown -> down counts: it is
        news that login failed)."""
        if up != self._link_up:
            self._link_up = up
            self._emit_event(m.ConnectionChanged(self.account_id, up, detail))

    def _update_link(self, detail: str) -> None:
        """Recompute "both hubs up" from the SDK's flags. While the first connect is still in
        progress (state unknown) a half-open link is not reported as a failure."""
        user, market = self._hub_up("user"), self._hub_up("market")
        up = user and market
        if up or self._link_up is not None:
            self._set_link(up, f"{detail} (user hub {'up' if user else 'down'}, "
                               f"market hub {'up' if market else 'down'})")

    def _hub_up(self, hub: str) -> bool:
        """The SDK's flag *and* a live pysignalr task: a transport that died by an exception
        (close-with-error, 401 on reconnect) leaves the SDK's flag set."""
        rt = self._rt
        if rt is None:
            return False
        flag = rt.user_connected if hub == "user" else rt.market_connected
        conn = rt.user_connection if hub == "user" else rt.market_connection
        return bool(flag) and not self._transport_dead(conn)

    def _hub_changed(self, hub: str, up: bool) -> None:
        """Called by the realtime client subclass on the session loop."""
        if hub == "market":
            self._quote_live.clear()  # SignalR groups die with the connection
            if up:
                self._spawn(self._resubscribe_quotes(), "resubscribe-quotes")
        elif up:
            self._spawn(self._after_user_open(), "user-hub-open")
        self._update_link(f"{hub} hub {'up' if up else 'down'}")

    async def _after_user_open(self) -> None:
        if self.quotes_mode == "only":
            return  # the feed's login is only for the market hub
        # Subscribe first, then snapshot: an event between the two is seen live *and* is in the
        # snapshot (harmless), while the other order could lose it.
        rt = self._rt
        if rt is not None:
            await rt.subscribe_user_updates()
        self._request_reconcile()

    # ------------------------------------------------------------------ SDK callbacks
    def _on_user(self, callback: str, data: Any) -> None:
        received_at = self._clock.now()
        raw = _copy_json(data)
        target = parse.USER_PARSERS[callback][0]
        try:
            for ev in parse.parse_user_event(callback, raw):
                self._accept(ev, received_at)
        except parse.PayloadError as exc:
            self.stats["malformed"] += 1
            self._log("ERROR", f"dropped malformed {target}: {exc}; raw={_raw_text(raw)}")
        except Exception as exc:  # a bug here must cost one event, not the SDK's callback chain
            self._log("ERROR", f"internal error on {target}: {exc!r}; raw={_raw_text(raw)}")

    def _accept(self, ev: Any, received_at: datetime) -> None:
        if ev.account_id != self.account_id:
            # SubscribeAccounts pushes every account visible to the token; orders/positions/trades
            # of another account would be a gateway routing error.
            if not isinstance(ev, m.AccountEvent):
                self._log("WARNING", f"ignored {type(ev).__name__} of account {ev.account_id}")
            return
        self._emit_event(ev, received_at)
        for window in self._reconcile_windows:
            window.append(ev)
        if isinstance(ev, (m.PositionEvent, m.OrderEvent, m.TradeEvent)):
            self._note_contract(ev)

    def _on_quote(self, data: Any) -> None:
        received_at = self._clock.now()
        raw = _copy_json(data)
        try:
            if not isinstance(raw, dict):
                raise parse.PayloadError("GatewayQuote", "<payload>", raw, "expected an object")
            quote = parse.parse_quote(raw.get("contract_id"), raw.get("data"), received_at)
            self._hold_quote(self._merger.merge(quote), received_at)
        except parse.PayloadError as exc:
            self.stats["malformed"] += 1
            self._log("ERROR", f"dropped malformed GatewayQuote: {exc}; raw={_raw_text(raw)}")
        except Exception as exc:
            self._log("ERROR", f"internal error on GatewayQuote: {exc!r}; raw={_raw_text(raw)}")

    def _hold_quote(self, quote: m.QuoteEvent, received_at: datetime) -> None:
        if not self._quote_interval or self._loop is None:
            self._emit_event(quote, received_at)
            return
        self._held_quotes[quote.contract_id] = (quote, received_at)
        if self._quote_flush_due:
            return
        self._quote_flush_due = True
        wait = self._last_quote_flush + self._quote_interval - time.monotonic()
        if wait <= 0:
            self._flush_quotes()  # the first quote after a quiet spell goes at once
        else:
            self._loop.call_later(wait, self._flush_quotes)

    def _flush_quotes(self) -> None:
        self._quote_flush_due = False
        self._last_quote_flush = time.monotonic()
        held, self._held_quotes = self._held_quotes, {}
        for quote, received_at in held.values():
            self._emit_event(quote, received_at)

    # ------------------------------------------------------------------ contracts & quotes
    def _note_contract(self, ev: Any) -> None:
        cid = ev.contract_id
        if (isinstance(ev, m.PositionEvent) and ev.size > 0) or \
                (isinstance(ev, m.OrderEvent) and ev.working) or isinstance(ev, m.TradeEvent):
            self._want_quotes([cid])
        if cid in self._announced:
            return
        info = self._contracts.get(cid)
        if info is not None:
            self._announced.add(cid)
            self._emit_event(m.ContractsKnown(self.account_id, (info,)))
        elif cid not in self._contract_learning:
            self._contract_learning.add(cid)
            self._spawn(self._learn_contract(cid), f"contract-{cid}")

    async def _learn_contract(self, cid: str) -> None:
        try:
            for attempt in range(CONTRACT_LOOKUP_ATTEMPTS):
                try:
                    info = await self._contract_info(cid)
                except (RestError, parse.PayloadError) as exc:
                    self._log("WARNING", f"contract {cid} lookup failed "
                                         f"({attempt + 1}/{CONTRACT_LOOKUP_ATTEMPTS}): {exc}")
                    if await self._sleep_or_stop(2.0 ** attempt):
                        return
                    continue
                if cid not in self._announced:
                    self._announced.add(cid)
                    self._emit_event(m.ContractsKnown(self.account_id, (info,)))
                return
            self._log("ERROR", f"contract {cid} unknown after {CONTRACT_LOOKUP_ATTEMPTS} "
                               "lookups; rules see it as an unknown symbol")
        finally:
            self._contract_learning.discard(cid)

    async def _contract_info(self, cid: str) -> m.ContractInfo:
        """ContractInfo of ``cid``: cache, else one ``Contract/searchById`` (deduplicated)."""
        info = self._contracts.get(cid)
        if info is not None:
            return info
        fut = self._contract_inflight.get(cid)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._contract_inflight[cid] = fut
        try:
            body = await self._post("/Contract/searchById", {"contractId": cid}, mutating=False)
            info = parse.parse_contract(body.get("contract"))
            if info.contract_id != cid:
                raise parse.PayloadError("Contract", "id", info.contract_id,
                                         f"answer for another contract (asked {cid})")
            self._contracts[cid] = info
            fut.set_result(info)
            return info
        except BaseException as exc:
            fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            fut.exception()  # mark retrieved: waiters re-raise it, nobody else must log it
            raise
        finally:
            self._contract_inflight.pop(cid, None)

    def _want_quotes(self, cids: Any) -> None:
        new = [c for c in cids if c not in self._quote_wanted]
        if new:
            self._quote_wanted.update(new)
            if self.quotes_mode == "external":
                self._emit(m.QuotesWanted(self.account_id, tuple(sorted(new))))
                return
            self._spawn(self._resubscribe_quotes(), "subscribe-quotes")

    async def _resubscribe_quotes(self) -> None:
        """Subscribe quotes (only quotes: the SDK's subscribe_market_data also takes trades and
        depth, a DOM flood riskd does not use) for every wanted contract not yet live."""
        rt = self._rt
        if self.quotes_mode == "external" or rt is None or not rt.market_connected \
                or rt.market_connection is None:
            return
        for cid in sorted(self._quote_wanted - self._quote_live):
            try:
                await rt.market_connection.send("SubscribeContractQuotes", [cid])
                self._quote_live.add(cid)
            except Exception as exc:
                self._log("WARNING", f"SubscribeContractQuotes({cid}) failed: {exc!r}")
                return

    # ------------------------------------------------------------------ reconcile
    def _request_reconcile(self) -> None:
        if self.quotes_mode != "only":  # the feed has no account state to rebuild
            self._reconcile_wanted.set()

    async def _reconciler(self) -> None:
        while True:
            await self._reconcile_wanted.wait()
            self._reconcile_wanted.clear()
            backoff = 0.5
            while True:
                try:
                    await self._reconcile_once()
                    break
                except (RestError, parse.PayloadError) as exc:
                    # Fail closed: no partial snapshot. Retry while the user hub is up (a reopen
                    # requests a fresh one anyway).
                    self._log("ERROR", f"reconcile failed, retry in {backoff:.1f}s: {exc}")
                    if await self._sleep_or_stop(backoff):
                        return
                    backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX)
                    if self._reconcile_wanted.is_set():
                        break  # a newer request supersedes this one

    async def _reconcile_once(self) -> m.Reconciled:
        # The window opens before the requests leave: a hub event that came earlier reflects a
        # broker state the REST answers include as well.
        window: list[Any] = []
        self._reconcile_windows.append(window)
        try:
            return await self._read_snapshot(window)
        finally:
            self._reconcile_windows.remove(window)

    async def _read_snapshot(self, window: list[Any]) -> m.Reconciled:
        aid = self.account_id
        positions, orders, trades, accounts = await asyncio.gather(
            self._post("/Position/searchOpen", {"accountId": aid}, mutating=False),
            self._post("/Order/searchOpen", {"accountId": aid}, mutating=False),
            self._post("/Trade/search", {"accountId": aid,
                                         "startTimestamp": self._reset_boundary.isoformat()},
                       mutating=False),
            self._post("/Account/search", {"onlyActiveAccounts": False}, mutating=False))
        rec = reconcile.build_reconciled(aid, positions, orders, trades, accounts)
        cids = sorted(reconcile.contract_ids(rec))
        infos = await asyncio.gather(*(self._contract_info(c) for c in cids),
                                     return_exceptions=True)
        known = []
        for cid, info in zip(cids, infos):
            if isinstance(info, m.ContractInfo):
                known.append(info)
            else:
                # Contract metadata must not block position truth: send the snapshot, keep
                # trying the contract in the background.
                self._log("WARNING", f"contract {cid} lookup failed during reconcile: {info}")
                if cid not in self._contract_learning:
                    self._contract_learning.add(cid)
                    self._spawn(self._learn_contract(cid), f"contract-{cid}")
        rec = attrs.evolve(rec, contracts=tuple(known))
        if window:
            rec = reconcile.overlay(rec, window)
            self._log("DEBUG", f"reconcile: {len(window)} hub event(s) arrived during the "
                               "REST read; the snapshot keeps them")
        self._announced.update(c.contract_id for c in known)
        self.stats["reconciles"] += 1
        self._emit_event(rec)
        self._want_quotes(reconcile.quote_contracts(rec))
        return rec

    # ------------------------------------------------------------------ supervision
    async def _supervise(self) -> None:
        down_since: float | None = None
        attempts = 0
        next_try = 0.0
        next_log_scan = 0.0
        next_poll: float | None = None
        rebuild: asyncio.Task[Any] | None = None
        while not await self._sleep_or_stop(SUPERVISE_INTERVAL):
            try:
                if time.monotonic() >= next_log_scan:
                    # A lazily imported SDK module attaches a fresh stdout handler: strip it.
                    logs.install()
                    next_log_scan = time.monotonic() + 30.0
                self._update_link("hub state changed")
                await self._refresh_token_if_due()
                rt = self._rt
                if self._hub_up("user") and self._hub_up("market"):
                    if next_poll is not None:
                        self._log("INFO", "hubs back: REST poll stopped")
                    down_since, attempts, next_poll = None, 0, None
                    continue
                now = time.monotonic()
                down_since = down_since or now
                if not self._hub_up("user") and now - down_since >= REST_POLL_AFTER \
                        and (next_poll is None or now >= next_poll):
                    if next_poll is None:
                        self._log("WARNING", f"user hub down {now - down_since:.0f}s: polling "
                                             f"the broker over REST every "
                                             f"{REST_POLL_INTERVAL:.0f}s until it is back")
                    next_poll = now + REST_POLL_INTERVAL
                    self.stats["rest_polls"] += 1
                    self._request_reconcile()
                dead = rt is None or self._transport_dead(rt.user_connection) \
                    or self._transport_dead(rt.market_connection)
                if (dead and now - down_since >= DEAD_TRANSPORT_GRACE) or \
                        now - down_since >= HUB_DOWN_GRACE:
                    # The rebuild runs as a task (update_jwt_token may take 20 s against a
                    # refusing hub): this loop must go on polling REST and reporting the link.
                    if now >= next_try and (rebuild is None or rebuild.done()):
                        attempts += 1
                        next_try = now + min(RECONNECT_BACKOFF_MAX, 2.0 ** attempts)
                        reason = ("transport ended" if dead else
                                  f"hub down {now - down_since:.0f}s")
                        self._set_link(False, reason)
                        rebuild = self._spawn(self._rebuild_hubs(reason), "rebuild-hubs")
            except Exception as exc:
                self._log("ERROR", f"supervisor: {exc!r}")
            if self._fatal:
                self._set_link(False, f"fatal: {self._fatal}")
                return

    @staticmethod
    def _transport_dead(conn: Any) -> bool:
        task = getattr(conn, "_run_task", None) if conn is not None else None
        return task is None or task.done()

    async def _rebuild_hubs(self, reason: str) -> None:
        """pysignalr gave up (or is stuck): log in afresh and restart both hubs with the token.

        A fresh login because the usual reason for a dead transport is a rejected token (expired,
        invalidated by a logout), which ``_should_refresh_token`` cannot see.
        """
        async with self._hub_lock:
            self.stats["reconnects"] += 1
            self._log("WARNING", f"rebuilding hubs: {reason}")
            await self._client.authenticate()
            token = self._client.session_token
            logs.register_secret(token)
            self._hub_token = token
            ok = await self._rt.update_jwt_token(token, timeout=20.0)
            if not ok:
                self._log("ERROR", "hub rebuild failed; will retry")
            self._update_link(f"hubs rebuilt ({reason})" if ok else "hub rebuild failed")

    async def _refresh_token_if_due(self) -> None:
        client = self._client
        if client is not None and client._should_refresh_token():
            await self._ensure_token()

    async def _ensure_token(self) -> None:
        client = self._client
        if not client._authenticated or client._should_refresh_token():
            await client._refresh_authentication()  # Auth/validate, else a fresh login
        self._sync_token()

    def _sync_token(self) -> None:
        """Hand a token the REST client obtained to the hubs (the SDK never does)."""
        token = self._client.session_token
        if token and token != self._hub_token and self._rt is not None:
            logs.register_secret(token)
            self._hub_token = token
            self.stats["token_refreshes"] += 1
            self._spawn(self._push_token(token), "update-jwt")

    async def _push_token(self, token: str) -> None:
        async with self._hub_lock:
            if self._rt is None or token != self._client.session_token:
                return
            self._log("INFO", "pushing refreshed token to the hubs (reconnect)")
            ok = await self._rt.update_jwt_token(token, timeout=20.0)
            if not ok:
                self._log("ERROR", "update_jwt_token failed; supervisor will rebuild the hubs")
            self._update_link("token refreshed")

    # ------------------------------------------------------------------ REST
    async def _post(self, path: str, payload: dict[str, Any], *, mutating: bool
                    ) -> dict[str, Any]:
        """One POST on the SDK's httpx client with the SDK's token and limiter; exact outcome.

        Raises RestError with ``retry_after`` on 429 (and on 5xx when the gateway sends one),
        ``uncertain`` when a mutating call may have reached the gateway (timeout, dropped
        connection, 5xx). A 401 is answered by one fresh login and one repeat: the gateway checks
        the bearer before doing anything, so the first attempt did not execute.
        """
        import httpx

        client = self._client
        if client is None:
            raise RestError(f"{path}: not logged in")
        limiter = client.rate_limiter
        delay = limiter._calculate_delay()
        if delay > 0:
            # Refuse rather than queue: the caller (enforcer) decides what goes first.
            raise RestError(f"{path}: client-side rate limit ({limiter.max_requests}/min) "
                            "reached, not sent", retry_after=round(delay, 3))
        for attempt in (0, 1):
            await self._ensure_token()
            http = await client._ensure_client()
            await limiter.acquire()
            headers = {"Authorization": f"Bearer {client.session_token}"}
            try:
                resp = await http.post(client.base_url + path, json=payload, headers=headers)
            except httpx.ConnectError as exc:
                raise RestError(f"{path}: cannot connect: {exc}") from None
            except httpx.TimeoutException as exc:
                raise RestError(f"{path}: timeout ({type(exc).__name__})",
                                uncertain=mutating) from None
            except httpx.HTTPError as exc:
                raise RestError(f"{path}: transport error {type(exc).__name__}: {exc}",
                                uncertain=mutating) from None
            status = resp.status_code
            if status == 401 and attempt == 0:
                self._log("WARNING", f"{path}: HTTP 401, logging in again")
                await client.authenticate()
                self._sync_token()
                continue
            if status == 429:
                raise RestError(f"{path}: HTTP 429 rate limited", 429,
                                retry_after=_retry_after(resp.headers, 60.0))
            if status >= 500:
                raise RestError(f"{path}: HTTP {status}", status,
                                retry_after=_retry_after(resp.headers, None), uncertain=mutating)
            if status != 200:
                raise RestError(f"{path}: HTTP {status} {logs.scrub(resp.text[:200])}", status)
            try:
                body = resp.json()
            except ValueError:
                raise RestError(f"{path}: answer is not JSON: {logs.scrub(resp.text[:200])!r}",
                                status) from None
            if not isinstance(body, dict):
                raise RestError(f"{path}: answer is not a JSON object: {_raw_text(body, 200)}")
            if body.get("success") is not True or body.get("errorCode") not in (0, None):
                raise RestError(f"{path}: gateway refused: errorCode={body.get('errorCode')!r} "
                                f"{body.get('errorMessage')!r}", status)
            return body
        raise RestError(f"{path}: HTTP 401 after a fresh login", 401)

    # ------------------------------------------------------------------ broker operations
    async def _execute(self, call: m.BrokerCall) -> None:
        try:
            if call.account_id != self.account_id:
                raise ValueError(f"call for account {call.account_id} sent to the session of "
                                 f"{self.account_id}")
            op = getattr(self, f"_op_{call.op}", None) if call.op in OPS else None
            if op is None:
                raise ValueError(f"unknown op {call.op!r} (known: {', '.join(OPS)})")
            if call.op != "set_reset_boundary":
                if self._fatal:
                    raise RestError(f"broker session disabled: {self._fatal}")
                try:
                    await asyncio.wait_for(self._ready.wait(), self.settings.timeout_seconds)
                except TimeoutError:
                    raise RestError("not logged in to the gateway yet") from None
            result = await op(**dict(call.args))
            reply = m.BrokerReply(call.account_id, call.call_id, call.op, True, result=result)
        except RestError as exc:
            reply = m.BrokerReply(call.account_id, call.call_id, call.op, False,
                                  error=str(exc), retry_after=exc.retry_after)
        except parse.PayloadError as exc:
            reply = m.BrokerReply(call.account_id, call.call_id, call.op, False,
                                  error=f"malformed gateway answer: {exc}")
        except (TypeError, ValueError) as exc:
            reply = m.BrokerReply(call.account_id, call.call_id, call.op, False,
                                  error=f"bad call: {exc}")
        except Exception as exc:
            reply = m.BrokerReply(call.account_id, call.call_id, call.op, False,
                                  error=f"{type(exc).__name__}: {exc}")
        if not reply.ok:
            # The enforcer judges the outcome by reading the broker back, and logs it.
            self._log("DEBUG", f"{call.op} ({call.call_id}) failed: {reply.error}")
        self._emit(reply)

    async def _op_close(self, contract_id: str) -> None:
        """``Position/closeContract``: close the whole position in one contract."""
        await self._post("/Position/closeContract",
                         {"accountId": self.account_id,
                          "contractId": _arg_str("contract_id", contract_id)}, mutating=True)

    async def _op_partial_close(self, contract_id: str, size: int) -> None:
        """``Position/partialCloseContract``: close ``size`` contracts."""
        await self._post("/Position/partialCloseContract",
                         {"accountId": self.account_id,
                          "contractId": _arg_str("contract_id", contract_id),
                          "size": _arg_int("size", size)}, mutating=True)

    async def _op_cancel(self, order_id: int) -> None:
        """``Order/cancel``."""
        await self._post("/Order/cancel", {"accountId": self.account_id,
                                           "orderId": _arg_int("order_id", order_id, lo=0)},
                         mutating=True)

    async def _op_place_stop(self, contract_id: str, side: int, size: int, stop_price: float,
                             custom_tag: str | None = None) -> int:
        """``Order/place`` type Stop; returns the order id.

        ``custom_tag`` (unique per account at the gateway) makes a repeated placement after an
        uncertain outcome fail instead of doubling the stop; pass the same tag on a retry.
        """
        payload: dict[str, Any] = {
            "accountId": self.account_id, "contractId": _arg_str("contract_id", contract_id),
            "type": m.ORDER_STOP, "side": _arg_int("side", side, lo=0, allowed=(0, 1)),
            "size": _arg_int("size", size), "stopPrice": _arg_price("stop_price", stop_price)}
        if custom_tag is not None:
            payload["customTag"] = _arg_str("custom_tag", custom_tag)
        body = await self._post("/Order/place", payload, mutating=True)
        oid = body.get("orderId")
        if isinstance(oid, bool) or not isinstance(oid, int):
            raise parse.PayloadError("Order/place", "orderId", oid, "expected an integer")
        return oid

    async def _op_modify(self, order_id: int, stop_price: float | None = None,
                         size: int | None = None, limit_price: float | None = None) -> None:
        """``Order/modify``: move a stop (and/or resize it)."""
        payload: dict[str, Any] = {"accountId": self.account_id,
                                   "orderId": _arg_int("order_id", order_id, lo=0)}
        if stop_price is not None:
            payload["stopPrice"] = _arg_price("stop_price", stop_price)
        if limit_price is not None:
            payload["limitPrice"] = _arg_price("limit_price", limit_price)
        if size is not None:
            payload["size"] = _arg_int("size", size)
        if len(payload) == 2:
            raise ValueError("modify needs stop_price, limit_price or size")
        await self._post("/Order/modify", payload, mutating=True)

    async def _op_search_positions(self) -> tuple[m.PositionEvent, ...]:
        """``Position/searchOpen`` -> open positions (size > 0)."""
        body = await self._post("/Position/searchOpen", {"accountId": self.account_id},
                                mutating=False)
        rec = reconcile.build_reconciled(self.account_id, body, None, None, None)
        return rec.positions

    async def _op_search_orders(self) -> tuple[m.OrderEvent, ...]:
        """``Order/searchOpen`` -> working orders."""
        body = await self._post("/Order/searchOpen", {"accountId": self.account_id},
                                mutating=False)
        return reconcile.build_reconciled(self.account_id, None, body, None, None).orders

    async def _op_search_trades(self, start: Any, end: Any = None) -> tuple[m.TradeEvent, ...]:
        """``Trade/search`` from ``start`` (datetime or ISO text) to ``end`` (default: now)."""
        payload: dict[str, Any] = {"accountId": self.account_id,
                                   "startTimestamp": _arg_dt("start", start).isoformat()}
        if end is not None:
            payload["endTimestamp"] = _arg_dt("end", end).isoformat()
        body = await self._post("/Trade/search", payload, mutating=False)
        return reconcile.build_reconciled(self.account_id, None, None, body, None).trades

    async def _op_account(self) -> m.AccountEvent:
        """``Account/search`` -> this account's row (balance, canTrade)."""
        body = await self._post("/Account/search", {"onlyActiveAccounts": False},
                                mutating=False)
        ev = reconcile.find_account(body, self.account_id)
        if ev is None:
            raise RestError(f"Account/search: account {self.account_id} not in the answer")
        return ev

    async def _op_contract(self, contract_id: str) -> m.ContractInfo:
        """``Contract/searchById`` (cached) -> ContractInfo."""
        return await self._contract_info(_arg_str("contract_id", contract_id))

    async def _op_reconcile(self) -> None:
        """Read the REST truth now; the ``Reconciled`` event arrives before this reply."""
        await self._reconcile_once()

    async def _op_set_reset_boundary(self, at: Any) -> None:
        """Move the trades window of later reconciles (after a daily reset). No REST call."""
        self._reset_boundary = _arg_dt("at", at)
