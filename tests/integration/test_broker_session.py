"""BrokerSession against a real gateway simulator subprocess (plus its offline guard rails).

The simulator (``python -m gateway_sim serve --port 0``) is started once per module; each test
works on its own simulated account so the tests do not see each other's events.
"""

from __future__ import annotations

import itertools
import logging
import os
import select
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from risk_actors import messages as m
from risk_actors.broker import logs, sdk
from risk_actors.broker.session import BrokerSession, Received
from risk_actors.broker.settings import BrokerSettings

ROOT = Path(__file__).resolve().parents[2]
MNQ = "CON.F.US.MNQ.Z26"
_names = itertools.count(1)


# ---------------------------------------------------------------------------------------------
# simulator + session helpers
class Sim:
    """A simulator subprocess on a free loopback port."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway_sim", "serve", "--port", "0", "--log-level", "warning"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[-1]
        from gateway_sim.control_client import ControlClient
        self.ctl = ControlClient(self.url)

    def settings(self, **kw: Any) -> BrokerSettings:
        return BrokerSettings(api_url=f"{self.url}/api", user_hub_url=f"{self.url}/hubs/user",
                              market_hub_url=f"{self.url}/hubs/market", username="trader",
                              api_key="sim-api-key-123", **kw)

    def account(self) -> dict[str, Any]:
        return self.ctl.create_account(f"T{os.getpid()}-{next(_names)}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def sim():
    s = Sim()
    try:
        yield s
    finally:
        s.close()


class Probe:
    """Drives a session from the test thread the way the actor does: select on fileno, drain."""

    def __init__(self, session: BrokerSession) -> None:
        self.s = session
        self.items: list[Any] = []

    def pump(self, timeout: float = 0.05) -> None:
        r, _, _ = select.select([self.s.fileno()], [], [], timeout)
        if r:
            self.items.extend(self.s.drain())

    def events(self, cls: type | tuple = object) -> list[Any]:
        return [i.event for i in self.items if isinstance(i, Received) and isinstance(i.event, cls)]

    def logs(self) -> list[logs.LogRecord]:
        return [i for i in self.items if isinstance(i, logs.LogRecord)]

    def wait(self, pred: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            result = pred()
            if result:
                return result
            self.pump()
        tail = [type(i.event).__name__ if isinstance(i, Received) else i for i in self.items[-15:]]
        raise AssertionError(f"timed out waiting for {what or pred}; last items: {tail}")

    def call(self, op: str, timeout: float = 10.0, **args: Any) -> m.BrokerReply:
        call_id = f"{op}-{time.monotonic_ns()}"
        self.s.submit(m.BrokerCall(self.s.account_id, call_id, op, args))
        return self.wait(lambda: next((i for i in self.items if isinstance(i, m.BrokerReply)
                                       and i.call_id == call_id), None), timeout, f"reply {op}")


@pytest.fixture
def probe(sim):
    acc = sim.account()
    session = BrokerSession(acc["id"], acc["name"], sim.settings(),
                            datetime.now(timezone.utc) - timedelta(hours=1))
    session.start()
    p = Probe(session)
    try:
        p.wait(lambda: p.events(m.Reconciled), 15, "first Reconciled")
        yield p
    finally:
        session.stop()
        sim.ctl.clear_faults()
        # No token, API key or bearer ever reaches a log line.
        for rec in p.logs():
            assert "sim-api-key-123" not in rec.message
            assert "access_token=ey" not in rec.message and "Bearer ey" not in rec.message


def fill_order(p: Probe, order_id: int) -> None:
    p.wait(lambda: any(isinstance(e, m.PositionEvent) for e in p.events()
                       [next((i for i, e in enumerate(p.events())
                              if isinstance(e, m.OrderEvent) and e.order_id == order_id
                              and e.status == m.STATUS_FILLED), 10**9):]),
           10, f"position after fill of {order_id}")


# ---------------------------------------------------------------------------------------------
# tests with the simulator
def test_connect_emits_connection_and_reconciled(probe):
    cc = probe.events(m.ConnectionChanged)
    assert cc and cc[0].connected and all(c.connected for c in cc)
    rec = probe.events(m.Reconciled)[0]
    assert rec.account_id == probe.s.account_id and rec.positions == () and rec.orders == ()
    assert rec.account is not None and rec.account.can_trade is True


def test_trader_fill_arrives_as_ordered_events(sim, probe):
    aid = probe.s.account_id
    oid = sim.ctl.place_order(aid, "MNQ", "market", "buy", 2)
    fill_order(probe, oid)
    mine = [e for e in probe.events((m.OrderEvent, m.TradeEvent, m.PositionEvent))
            if getattr(e, "order_id", oid) == oid or isinstance(e, m.PositionEvent)]
    kinds = [(type(e).__name__, getattr(e, "status", None)) for e in mine]
    assert kinds[:4] == [("OrderEvent", m.STATUS_OPEN), ("TradeEvent", None),
                         ("OrderEvent", m.STATUS_FILLED), ("PositionEvent", None)], kinds
    trade, pos = mine[1], mine[3]
    assert trade.pnl is None and trade.size == 2 and trade.side == m.SIDE_BUY
    assert (pos.contract_id, pos.size, pos.type) == (MNQ, 2, m.POSITION_LONG)
    # contract metadata is learnt and quotes start flowing for the held contract
    known = probe.wait(lambda: probe.events(m.ContractsKnown), 5, "ContractsKnown")
    info = known[0].contracts[0]
    assert (info.contract_id, info.tick_size, info.tick_value) == (MNQ, 0.25, 0.5)
    quote = probe.wait(lambda: probe.events(m.QuoteEvent), 5, "quote")[0]
    assert quote.contract_id == MNQ and quote.last_price is not None and quote.received_at


def test_close_makes_flat_and_search_confirms(sim, probe):
    aid = probe.s.account_id
    oid = sim.ctl.place_order(aid, "MNQ", "market", "sell", 3)
    fill_order(probe, oid)
    assert probe.call("search_positions").result[0].signed_size == -3
    reply = probe.call("close", contract_id=MNQ)
    assert reply.ok and reply.error is None, reply
    probe.wait(lambda: [e for e in probe.events(m.PositionEvent) if e.size == 0], 5, "flat")
    positions = probe.call("search_positions")
    assert positions.ok and positions.result == ()
    assert sim.ctl.state(aid)["positions"] == []


def test_stop_order_ops(sim, probe):
    aid = probe.s.account_id
    fill_order(probe, sim.ctl.place_order(aid, "MNQ", "market", "buy", 1))
    placed = probe.call("place_stop", contract_id=MNQ, side=m.SIDE_SELL, size=1,
                        stop_price=20900.0, custom_tag="riskd-test-stop")
    assert placed.ok and isinstance(placed.result, int), placed
    assert probe.call("modify", order_id=placed.result, stop_price=20950.0).ok
    orders = probe.call("search_orders").result
    assert [(o.order_id, o.stop_price, o.type) for o in orders] == \
        [(placed.result, 20950.0, m.ORDER_STOP)]
    assert probe.call("cancel", order_id=placed.result).ok
    assert probe.call("search_orders").result == ()
    bad = probe.call("place_stop", contract_id=MNQ, side=5, size=1, stop_price=1.0)
    assert not bad.ok and "side" in bad.error
    trades = probe.call("search_trades", start=datetime.now(timezone.utc) - timedelta(hours=1))
    assert trades.ok and len(trades.result) == 1
    acct = probe.call("account")
    assert acct.ok and acct.result.account_id == aid


def test_reconnect_after_drop(sim, probe):
    aid = probe.s.account_id
    fill_order(probe, sim.ctl.place_order(aid, "MNQ", "market", "buy", 1))
    before = len(probe.items)
    sim.ctl.drop("all")
    probe.wait(lambda: [c for c in probe.events(m.ConnectionChanged) if not c.connected], 5,
               "ConnectionChanged down")
    probe.wait(lambda: len(probe.events(m.Reconciled)) >= 2, 10, "second Reconciled")
    probe.wait(lambda: probe.events(m.ConnectionChanged)[-1].connected, 10, "link up again")
    after = [i.event for i in probe.items[before:] if isinstance(i, Received)]
    assert [type(e).__name__ for e in after if isinstance(e, (m.ConnectionChanged,
                                                              m.Reconciled))][0] \
        == "ConnectionChanged"
    rec = probe.events(m.Reconciled)[-1]
    assert [(p.contract_id, p.size) for p in rec.positions] == [(MNQ, 1)]
    assert [c.contract_id for c in rec.contracts] == [MNQ]
    # quotes of the held contract are subscribed again on the new market-hub connection
    n_quotes = len(probe.events(m.QuoteEvent))
    probe.wait(lambda: len(probe.events(m.QuoteEvent)) > n_quotes, 5, "quote after reconnect")
    # the next event arrives exactly once although the SDK re-subscribed twice
    time.sleep(0.3)
    oid = sim.ctl.place_order(aid, "MNQ", "limit", "buy", 1, limit_price=1000.0)
    probe.wait(lambda: [e for e in probe.events(m.OrderEvent) if e.order_id == oid], 5, "order")
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        probe.pump()
    assert len([e for e in probe.events(m.OrderEvent) if e.order_id == oid]) == 1


def test_reconcile_keeps_hub_events_that_overtook_its_rest_answer(sim, probe):
    """A snapshot read before a reduce and answered after the hub showed it must not put the
    old size back: the account would see the excess again and reduce a second time."""
    aid = probe.s.account_id
    fill_order(probe, sim.ctl.place_order(aid, "MNQ", "market", "buy", 3))
    resting = sim.ctl.place_order(aid, "MNQ", "limit", "buy", 1, limit_price=1000.0)
    probe.wait(lambda: [e for e in probe.events(m.OrderEvent) if e.order_id == resting], 5,
               "resting order")
    n_rec = len(probe.events(m.Reconciled))
    # Executed at once, answered 0.8 s later: the answer says 3 contracts and 1 order.
    sim.ctl.add_fault("/api/Position/searchOpen", "late", delay_ms=800)
    sim.ctl.add_fault("/api/Order/searchOpen", "late", delay_ms=800)
    call_id = f"reconcile-{time.monotonic_ns()}"
    probe.s.submit(m.BrokerCall(aid, call_id, "reconcile", {}))
    time.sleep(0.2)
    sim.ctl.place_order(aid, "MNQ", "market", "sell", 1)
    sim.ctl.cancel_order(aid, resting)
    probe.wait(lambda: [e for e in probe.events(m.PositionEvent) if e.size == 2], 5, "hub: 2")
    reply = probe.wait(lambda: next((i for i in probe.items if isinstance(i, m.BrokerReply)
                                     and i.call_id == call_id), None), 10, "reconcile reply")
    assert reply.ok, reply
    rec = probe.events(m.Reconciled)[n_rec]
    assert [(p.contract_id, p.size) for p in rec.positions] == [(MNQ, 2)]
    assert rec.orders == ()
    # The trade the hub delivered meanwhile is in the snapshot too (merged by id).
    assert len(rec.trades) == len({t.trade_id for t in probe.events(m.TradeEvent)}) == 2
    assert [p["size"] for p in sim.ctl.state(aid)["positions"]] == [2]


@pytest.mark.parametrize("how", ["close-with-error", "logout+expired-token"])
def test_dead_transport_is_rebuilt(sim, probe, how):
    """pysignalr gives up for good on a close-with-error or a 401 on reconnect; the session's
    supervisor logs in afresh and rebuilds both hubs (the SDK would not)."""
    if how == "close-with-error":
        sim.ctl.drop("all", mode="error")
    else:
        sim.ctl.logout(expire_tokens=True)
    t0 = time.monotonic()
    probe.wait(lambda: len(probe.events(m.Reconciled)) >= 2, 15, "Reconciled after rebuild")
    assert time.monotonic() - t0 < 8.0
    assert probe.events(m.ConnectionChanged)[-1].connected
    oid = sim.ctl.place_order(probe.s.account_id, "MNQ", "limit", "buy", 1, limit_price=1000.0)
    probe.wait(lambda: [e for e in probe.events(m.OrderEvent) if e.order_id == oid], 5, "order")
    assert probe.s.stats["reconnects"] >= 1


def test_wrapped_events_parse_the_same(sim, probe):
    sim.ctl.config(wrap_events=True)
    try:
        oid = sim.ctl.place_order(probe.s.account_id, "MES", "market", "buy", 1)
        fill_order(probe, oid)
    finally:
        sim.ctl.config(wrap_events=False)
    assert [e.size for e in probe.events(m.PositionEvent)] == [1]
    assert not [r for r in probe.logs() if "malformed" in r.message]


def test_faults_give_exact_errors(sim, probe):
    aid = probe.s.account_id
    fill_order(probe, sim.ctl.place_order(aid, "MNQ", "market", "buy", 1))
    sim.ctl.add_fault("/api/Position/closeContract", "429", retry_after=7)
    t0 = time.monotonic()
    r = probe.call("close", contract_id=MNQ)
    assert not r.ok and "429" in r.error and r.retry_after == 7.0
    assert time.monotonic() - t0 < 2.0  # the SDK's own path would sleep 60 s here
    sim.ctl.add_fault("/api/Position/closeContract", "5xx", status=503, applied=True)
    r = probe.call("close", contract_id=MNQ)
    assert not r.ok and "503" in r.error and "uncertain" in r.error
    sim.ctl.add_fault("/api/Position/searchOpen", "5xx", status=500)
    r = probe.call("search_positions")
    assert not r.ok and "500" in r.error and "uncertain" not in r.error
    sim.ctl.add_fault("/api/Position/searchOpen", "429", retry_after=3)
    r = probe.call("search_positions")
    assert not r.ok and r.retry_after == 3.0
    # the 503 was "applied": the position is gone although the call reported failure
    assert probe.call("search_positions").result == ()


def test_expired_token_relogs_and_reaches_the_hubs(sim, probe):
    sim.ctl.tokens(expire_all=True)
    r = probe.call("search_positions")
    assert r.ok, r  # 401 -> fresh login -> repeated once
    # the new token is pushed to the hubs (reconnect), which reconcile again
    probe.wait(lambda: len(probe.events(m.Reconciled)) >= 2, 15, "Reconciled after token push")
    assert probe.s.stats["token_refreshes"] >= 1


# ---------------------------------------------------------------------------------------------
# offline: guard rails that need no simulator
def test_url_guard_refuses_cleartext_remote_and_mismatch():
    with pytest.raises(sdk.UrlGuardError, match="cleartext"):
        sdk.build_config(BrokerSettings("http://api.example.com/api", "https://x/hubs/user",
                                        "https://x/hubs/market", "u", "k"))
    s = BrokerSettings("http://127.0.0.1:1/api", "http://127.0.0.1:1/hubs/user",
                       "http://127.0.0.1:1/hubs/market", "u", "k")
    client = sdk.build_rest_client(s, "ACC")
    assert client.base_url == s.api_url and client.rate_limiter.max_requests == 190
    rt = sdk.build_realtime_client(s, "token", 1)
    assert rt.stale_feed_seconds >= sdk.STALE_FEED_SECONDS
    rt.base_market_url = "https://rtc.topstepx.com/hubs/market"
    with pytest.raises(sdk.UrlGuardError, match="base_market_url"):
        sdk.guard_realtime(rt, s)


def test_hub_start_with_a_foreign_url_is_refused():
    """Every hub start passes the guard, also the ones the SDK makes by itself (token refresh)."""
    import asyncio

    from risk_actors.broker.session import _realtime_class

    s = BrokerSettings("http://127.0.0.1:1/api", "http://127.0.0.1:1/hubs/user",
                       "http://127.0.0.1:1/hubs/market", "u", "k")
    session = BrokerSession(7, "ACC", s, datetime.now(timezone.utc))
    try:
        rt = sdk.build_realtime_client(s, "token", 7, cls=_realtime_class())
        rt.riskd_session = session

        class Conn:
            url = "https://rtc.topstepx.com/hubs/user?access_token=token"

            def start(self) -> None:
                raise AssertionError("dialled a foreign URL")

        with pytest.raises(sdk.UrlGuardError, match="rtc.topstepx.com"):
            asyncio.run(rt._start_connection_async(Conn(), "user"))
        assert session._fatal and "URL guard" in session._fatal
        assert "access_token" not in session._fatal
    finally:
        session.stop()


def test_no_lost_wakeups_between_threads():
    """Every emitted item makes the fd readable until it is drained: a watcher that only drains
    on readability (thespian's ThespianWatch) never leaves an item behind."""
    import threading

    s = BrokerSettings("http://127.0.0.1:1/api", "http://127.0.0.1:1/hubs/user",
                       "http://127.0.0.1:1/hubs/market", "u", "k")
    session = BrokerSession(7, "ACC", s, datetime.now(timezone.utc))
    n = 50_000
    got: list[Any] = []

    def producer() -> None:
        for i in range(n):
            session._emit(i)
            if i % 1000 == 0:
                time.sleep(0.0005)

    t = threading.Thread(target=producer)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: widen every race window
    t.start()
    try:
        while len(got) < n:
            r, _, _ = select.select([session.fileno()], [], [], 0.5)
            assert r or len(got) == n, f"fd not readable with {n - len(got)} items queued"
            got.extend(session.drain())
    finally:
        t.join()
        sys.setswitchinterval(old_interval)
        session.stop()
    assert got == list(range(n))


def test_emit_during_drain_still_wakes_the_next_one():
    """Regression: an emit racing the drain's read of the wake bytes must not leave the next
    emit without a wake-up (it waited for the 1 s heartbeat). The race is forced, not hoped for."""
    s = BrokerSettings("http://127.0.0.1:1/api", "http://127.0.0.1:1/hubs/user",
                       "http://127.0.0.1:1/hubs/market", "u", "k")
    session = BrokerSession(7, "ACC", s, datetime.now(timezone.utc))
    real = session._rsock

    class RacingSocket:
        fired = False

        def recv(self, n: int) -> bytes:
            if not RacingSocket.fired:
                RacingSocket.fired = True
                session._emit(2)  # the SDK thread emits while the actor drains
            return real.recv(n)

    try:
        session._emit(1)
        session._rsock = RacingSocket()  # type: ignore[assignment]
        assert session.drain() == [1, 2]
        session._rsock = real
        session._emit(3)
        r, _, _ = select.select([session.fileno()], [], [], 0.2)
        assert r, "item 3 queued without a wake-up"
        assert session.drain() == [3]
    finally:
        session._rsock = real
        session.stop()


def test_malformed_payload_is_logged_and_dropped_not_raised():
    s = BrokerSettings("http://127.0.0.1:1/api", "http://127.0.0.1:1/hubs/user",
                       "http://127.0.0.1:1/hubs/market", "u", "k")
    session = BrokerSession(7, "ACC", s, datetime.now(timezone.utc))
    try:
        payload = {"id": 1, "accountId": 7, "contractId": "C", "status": 99, "type": 1,
                   "side": 0, "size": 1}
        session._on_user("order_update", payload)
        session._on_user("position_update", "garbage")
        session._on_quote({"contract_id": MNQ, "data": {"lastPrice": float("nan")}})
        session._on_user("order_update", {**payload, "status": 1, "accountId": 8})
        items = session.drain()
        assert not [i for i in items if isinstance(i, Received)]
        errors = [i.message for i in items if isinstance(i, logs.LogRecord)]
        assert any("GatewayUserOrder.status=99" in e and '"status": 99' in e for e in errors)
        assert any("GatewayUserPosition" in e for e in errors)
        assert any("GatewayQuote.lastPrice" in e for e in errors)
        assert any("account 8" in e for e in errors)
    finally:
        session.stop()


def test_scrub_and_sdk_logger_routing():
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    text = (f"Performing negotiation, URL: `http://h/hubs/user/negotiate?access_token={token}` "
            f"Authorization: Bearer {token} {{\"apiKey\": \"secret123\"}}")
    clean = logs.scrub(text)
    assert token not in clean and "secret123" not in clean and "access_token=***" in clean
    logs.install()
    lg = logging.getLogger("project_x_py.client.auth")
    assert not lg.handlers and lg.propagate
    top = logging.getLogger("project_x_py")
    assert not top.propagate and len(top.handlers) == 1
    got: list[logs.LogRecord] = []
    logs.bind_thread(got.append)
    try:
        logging.getLogger("pysignalr.transport").warning("URL %s", f"x?access_token={token}")
    finally:
        logs.unbind_thread()
    assert got and token not in got[0].message and got[0].level == "WARNING"
