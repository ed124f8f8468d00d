"""The two SignalR hubs (``/hubs/user``, ``/hubs/market``): negotiate, sockets, subscriptions.

Each accepted socket is a `HubConnection` with its own outgoing queue and writer task, so one
slow client never delays another and every client sees events in the order they were published.
Subscriptions belong to the socket (SignalR groups): a reconnected socket starts empty.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import WSMsgType, web

from gateway_sim import assumptions, contracts, protocol
from gateway_sim.auth import TokenIssuer, bearer
from gateway_sim.faults import HUB_CONNECT_KINDS, FaultSet
from gateway_sim.recorder import Recorder

log = logging.getLogger("gateway_sim.hubs")

HUBS = ("user", "market")

# hub method (lower case) -> (subscription kind, subscribe?, takes an argument of this kind)
USER_METHODS: dict[str, tuple[str, bool, str | None]] = {
    "subscribeaccounts": ("accounts", True, None),
    "unsubscribeaccounts": ("accounts", False, None),
    "subscribeorders": ("orders", True, "account"),
    "unsubscribeorders": ("orders", False, "account"),
    "subscribepositions": ("positions", True, "account"),
    "unsubscribepositions": ("positions", False, "account"),
    "subscribetrades": ("trades", True, "account"),
    "unsubscribetrades": ("trades", False, "account"),
}
MARKET_METHODS: dict[str, tuple[str, bool, str | None]] = {
    "subscribecontractquotes": ("quotes", True, "contract"),
    "unsubscribecontractquotes": ("quotes", False, "contract"),
    "subscribecontracttrades": ("trades", True, "contract"),
    "unsubscribecontracttrades": ("trades", False, "contract"),
    "subscribecontractmarketdepth": ("depth", True, "contract"),
    "unsubscribecontractmarketdepth": ("depth", False, "contract"),
}
METHODS = {"user": USER_METHODS, "market": MARKET_METHODS}

# Which subscription an outgoing event needs: target -> (hub, subscription kind).
EVENT_ROUTES: dict[str, tuple[str, str]] = {
    "GatewayUserAccount": ("user", "accounts"),
    "GatewayUserOrder": ("user", "orders"),
    "GatewayUserPosition": ("user", "positions"),
    "GatewayUserTrade": ("user", "trades"),
    "GatewayQuote": ("market", "quotes"),
    "GatewayTrade": ("market", "trades"),
    "GatewayDepth": ("market", "depth"),
}

CLOSE_MODES = ("close", "abort", "error", "logout")


@dataclass(frozen=True)
class _Delay:
    seconds: float


@dataclass(frozen=True)
class _Close:
    mode: str


@dataclass(frozen=True)
class _Batch:
    """Several pre-encoded frames in one websocket message (gateway_sim/quote_stream.py);
    ``counters.written`` grows by ``n`` once the writer has handed them to the socket."""
    text: str
    n: int
    counters: Any


class HubConnection:
    """One accepted SignalR websocket and its subscriptions."""

    def __init__(self, hub: str, connection_id: str, ws: web.WebSocketResponse, transport: Any, user: str):
        self.hub = hub
        self.connection_id = connection_id
        self.ws = ws
        self.user = user
        self._transport = transport
        self.subs: set[tuple[str, Any]] = set()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closing = False
        self.writer: asyncio.Task | None = None
        self.stream_backlog = 0  # quote-stream frames queued and not yet written

    def send(self, text: str) -> None:
        if not self.closing:
            self.queue.put_nowait(text)

    def send_batch(self, text: str, n: int, counters: Any) -> None:
        if not self.closing:
            self.stream_backlog += n
            self.queue.put_nowait(_Batch(text, n, counters))

    def delay(self, seconds: float) -> None:
        if not self.closing:
            self.queue.put_nowait(_Delay(seconds))

    def close(self, mode: str = "close") -> None:
        """Close after what is already queued has gone out (earlier events were 'on the wire')."""
        if not self.closing:
            self.closing = True
            self.queue.put_nowait(_Close(mode))

    async def run_writer(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, str):
                    await self.ws.send_str(item)
                elif isinstance(item, _Batch):
                    try:
                        await self.ws.send_str(item.text)
                    finally:
                        self.stream_backlog -= item.n
                    item.counters.written += item.n
                elif isinstance(item, _Delay):
                    await asyncio.sleep(item.seconds)
                elif isinstance(item, _Close):
                    await self._do_close(item.mode)
                    return
        except (ConnectionError, RuntimeError):
            # The peer went away under us; the reader side notices and unregisters.
            self._abort()

    async def _do_close(self, mode: str) -> None:
        if mode == "abort":
            self._abort()
            return
        if mode == "logout":
            await self.ws.send_str(protocol.encode(
                protocol.invocation(assumptions.LOGOUT_TARGET, [dict(assumptions.LOGOUT_PAYLOAD)])))
        if mode == "error":
            await self.ws.send_str(protocol.encode(protocol.close(error=assumptions.DROP_ERROR_MESSAGE)))
        else:
            await self.ws.send_str(protocol.encode(protocol.close(allow_reconnect=True)))
        try:
            await asyncio.wait_for(self.ws.close(code=assumptions.DROP_CLOSE_CODE), timeout=2.0)
        except asyncio.TimeoutError:
            self._abort()

    def _abort(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()


class HubManager:
    """Owns every hub socket; the server publishes events through it."""

    def __init__(self, tokens: TokenIssuer, faults: FaultSet, recorder: Recorder,
                 on_subscribe: Callable[[HubConnection, str, Any], None] | None = None):
        self.tokens = tokens
        self.faults = faults
        self.recorder = recorder
        self.on_subscribe = on_subscribe
        self.connections: dict[str, set[HubConnection]] = {h: set() for h in HUBS}
        # Ids handed out by negotiate, bounded: only used when unknown ids are refused.
        self._known_ids: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._ping_task: asyncio.Task | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._ping_task is None:
            self._ping_task = asyncio.get_running_loop().create_task(self._ping_loop(), name="hub-pings")

    async def stop(self) -> None:
        if self._ping_task is not None:
            self._ping_task.cancel()
            try:
                await self._ping_task
            except asyncio.CancelledError:
                pass
            self._ping_task = None
        for conns in self.connections.values():
            for conn in list(conns):
                conn.close("close")
        writers = [c.writer for conns in self.connections.values() for c in conns if c.writer]
        if writers:
            await asyncio.wait(writers, timeout=3.0)

    async def _ping_loop(self) -> None:
        text = protocol.encode(protocol.ping())
        while True:
            await asyncio.sleep(assumptions.SERVER_PING_INTERVAL_S)
            for conns in self.connections.values():
                for conn in list(conns):
                    conn.send(text)

    # -- HTTP side: negotiate and the socket ----------------------------------------------------

    def _token_of(self, request: web.Request) -> str | None:
        return request.query.get("access_token") or bearer(request.headers.get("Authorization"))

    def _refuse(self, hub: str, action: str, status: int, reason: str, retry_after: int | None = None
                ) -> web.Response:
        self.recorder.record("hub", hub=hub, action=action, status=status, error=reason)
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if status == 429:
            headers["Retry-After"] = str(retry_after if retry_after is not None else assumptions.RETRY_AFTER_S_DEFAULT)
        return web.Response(status=status, headers=headers, text="" if status == 401 else reason)

    def _gate(self, hub: str, action: str, request: web.Request) -> tuple[web.Response | None, str]:
        """Authentication and connection faults shared by negotiate and the upgrade."""
        claims = self.tokens.claims(self._token_of(request))
        if claims is None:
            return self._refuse(hub, action, 401, "bad or expired access token"), ""
        fault = self.faults.take(f"hub:{hub}", HUB_CONNECT_KINDS)
        if fault is not None:
            status = {"5xx": fault.status, "429": 429, "401": 401}[fault.kind]
            return self._refuse(hub, action, status, f"injected fault {fault.kind}", fault.retry_after), ""
        return None, str(claims.get("sub", ""))

    async def negotiate(self, request: web.Request, hub: str) -> web.Response:
        refused, _user = self._gate(hub, "negotiate", request)
        if refused is not None:
            return refused
        connection_id = uuid.uuid4().hex
        self._known_ids[connection_id] = hub
        while len(self._known_ids) > 10_000:
            self._known_ids.popitem(last=False)
        self.recorder.record("hub", hub=hub, action="negotiate", status=200, connectionId=connection_id)
        body: dict[str, Any] = {
            "connectionId": connection_id,
            "negotiateVersion": assumptions.NEGOTIATE_VERSION,
            "availableTransports": assumptions.NEGOTIATE_TRANSPORTS,
        }
        return web.json_response(body)

    async def socket(self, request: web.Request, hub: str) -> web.StreamResponse:
        refused, user = self._gate(hub, "connect", request)
        if refused is not None:
            return refused
        connection_id = request.query.get("id") or uuid.uuid4().hex
        if (request.query.get("id") and connection_id not in self._known_ids
                and not assumptions.ACCEPT_UNKNOWN_CONNECTION_ID):
            return self._refuse(hub, "connect", 404, "No Connection with that ID")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        if not ws.can_prepare(request).ok:
            return self._refuse(hub, "connect", 400, "WebSocket upgrade required")
        await ws.prepare(request)
        conn = HubConnection(hub, connection_id, ws, request.transport, user)
        try:
            if not await self._handshake(conn):
                return ws
            self.connections[hub].add(conn)
            conn.writer = asyncio.get_running_loop().create_task(conn.run_writer(), name=f"hub-writer:{hub}")
            self.recorder.record("hub", hub=hub, action="connect", connectionId=connection_id)
            log.info("%s hub: connection %s open", hub, connection_id[:8])
            await self._read_loop(conn)
        finally:
            self.connections[hub].discard(conn)
            conn.closing = True
            if conn.writer is not None and not conn.writer.done():
                conn.writer.cancel()
            if conn.writer is not None:
                self.recorder.record("hub", hub=hub, action="disconnect", connectionId=connection_id)
                log.info("%s hub: connection %s closed", hub, connection_id[:8])
        return ws

    async def _handshake(self, conn: HubConnection) -> bool:
        try:
            msg = await conn.ws.receive(timeout=assumptions.HANDSHAKE_TIMEOUT_S)
        except asyncio.TimeoutError:
            await conn.ws.close()
            return False
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            await conn.ws.close()
            return False
        try:
            _request, rest = protocol.parse_handshake(msg.data)
        except protocol.ProtocolError as exc:
            await conn.ws.send_str(protocol.handshake_response(str(exc)))
            await conn.ws.close()
            return False
        await conn.ws.send_str(protocol.handshake_response())
        for message in rest:
            self._on_message(conn, message)
        return True

    async def _read_loop(self, conn: HubConnection) -> None:
        async for msg in conn.ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                try:
                    messages = protocol.decode(msg.data)
                except protocol.ProtocolError as exc:
                    log.debug("%s hub: bad frame from %s: %s", conn.hub, conn.connection_id[:8], exc)
                    conn.close("error")
                    continue
                for message in messages:
                    if self._on_message(conn, message) == "close":
                        conn.close("close")
            elif msg.type == WSMsgType.ERROR:
                break

    # -- hub methods ----------------------------------------------------------------------------

    def _on_message(self, conn: HubConnection, message: dict[str, Any]) -> str | None:
        kind = protocol.message_type(message)
        if kind == protocol.MessageType.INVOCATION:
            self._on_invocation(conn, message)
        elif kind == protocol.MessageType.CLOSE:
            return "close"
        # Pings, completions and stream messages need no answer.
        return None

    def _on_invocation(self, conn: HubConnection, message: dict[str, Any]) -> None:
        target = message.get("target")
        invocation_id = message.get("invocationId")
        args = message.get("arguments") or []
        if not isinstance(target, str) or not isinstance(args, list):
            self._complete(conn, invocation_id, error="Invalid invocation message.")
            return
        key = target.lower() if assumptions.HUB_METHODS_CASE_INSENSITIVE else target
        spec = METHODS[conn.hub].get(key)
        if spec is None:
            # The SDK's undocumented Heartbeat lands here every 10 s: not worth a record.
            log.debug("%s hub: ignoring unknown method %s", conn.hub, target)
            self._complete(conn, invocation_id, error=assumptions.UNKNOWN_METHOD_ERROR.format(target=target))
            return
        sub_kind, subscribe, arg_kind = spec
        value: Any = None
        error: str | None = None
        if arg_kind is None:
            if args:
                error = f"{target} takes no arguments"
        elif len(args) != 1:
            error = f"{target} takes exactly one argument"
        elif arg_kind == "account":
            value = args[0]
            if isinstance(value, bool) or not isinstance(value, int):
                error = f"{target}: accountId must be an integer, got {value!r}"
        else:
            value = args[0]
            if not isinstance(value, str) or not value:
                error = f"{target}: contractId must be a string, got {value!r}"
            else:
                found = contracts.find(value) if assumptions.SUBSCRIBE_ACCEPTS_SYMBOL else None
                value = found.id if found is not None else value
        if error is not None:
            log.debug("%s hub: %s", conn.hub, error)
            self.recorder.record("hub", hub=conn.hub, action="invoke", connectionId=conn.connection_id,
                                 target=target, args=args, error=error)
            self._complete(conn, invocation_id, error=error)
            return
        entry = (sub_kind, value)
        added = subscribe and entry not in conn.subs
        if subscribe:
            conn.subs.add(entry)
        else:
            conn.subs.discard(entry)
        self.recorder.record("hub", hub=conn.hub, action="invoke", connectionId=conn.connection_id,
                             target=target, args=args)
        self._complete(conn, invocation_id)
        if added and self.on_subscribe is not None:
            self.on_subscribe(conn, sub_kind, value)

    def _complete(self, conn: HubConnection, invocation_id: Any, error: str | None = None) -> None:
        if isinstance(invocation_id, str):
            conn.send(protocol.encode(protocol.completion(invocation_id, error=error)))

    # -- publishing -----------------------------------------------------------------------------

    def subscribers(self, hub: str, kind: str, value: Any) -> list[HubConnection]:
        return [c for c in self.connections[hub] if not c.closing and (kind, value) in c.subs]

    def subscribed_values(self, hub: str, kind: str) -> set[Any]:
        return {v for c in self.connections[hub] if not c.closing for (k, v) in c.subs if k == kind}

    def close_all(self, hub: str, mode: str) -> int:
        """Close every socket of ``hub`` (``all`` for both); returns how many."""
        hubs = HUBS if hub == "all" else (hub,)
        n = 0
        for h in hubs:
            for conn in list(self.connections[h]):
                if not conn.closing:
                    conn.close(mode)
                    n += 1
                self.connections[h].discard(conn)
        return n

    def count(self, hub: str) -> int:
        return sum(1 for c in self.connections[hub] if not c.closing)
