"""Properties of the matching engine over random order flow (hypothesis)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_sim import contracts
from gateway_sim.clock import SimClock
from gateway_sim.engine import Emitted, Engine, EngineError

T0 = datetime(2026, 11, 24, 14, 30, tzinfo=timezone.utc)
ROOTS = ["MNQ", "ES", "CL", "GC", "RTY"]
BUY, SELL = 0, 1
LIMIT, MARKET, STOP, TRAILING = 1, 2, 4, 5
CANCELLED, FILLED = 3, 2

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sides = st.sampled_from([BUY, SELL])
sizes = st.integers(1, 5)
actions = st.lists(st.one_of(
    st.tuples(st.just("price"), st.integers(-30, 30)),
    st.tuples(st.just("market"), sides, sizes),
    st.tuples(st.just("limit"), sides, sizes, st.integers(-15, 15)),
    st.tuples(st.just("stop"), sides, sizes, st.integers(1, 15)),
    st.tuples(st.just("trail"), sides, sizes, st.integers(1, 15)),
    st.tuples(st.just("bracket"), sides, sizes, st.integers(1, 20), st.integers(1, 20)),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("partial"), sizes),
    st.tuples(st.just("close"),),
), min_size=10, max_size=60)


def D(x: float) -> Decimal:
    return Decimal(repr(x))


class Run:
    """Plays random actions against one account and contract, keeping every event."""

    def __init__(self, root: str) -> None:
        self.c = contracts.resolve(root)
        self.engine = Engine(clock=SimClock(T0, frozen=True))
        self.acct = self.engine.create_account("PROP")["id"]
        self.events: list[Emitted] = []

    @property
    def last(self) -> int:
        return self.c.to_ticks(D(self.engine.price(self.c.id)))

    def px(self, ticks: int) -> Decimal:
        return self.c.price_of(max(1, ticks))

    def apply(self, action: tuple) -> None:
        e, a, cid, kind = self.engine, self.acct, self.c.id, action[0]
        try:
            if kind == "price":
                self.events += e.set_price(cid, self.px(self.last + action[1]))
            elif kind == "market":
                self.events += e.place_order(a, cid, MARKET, action[1], action[2])[1]
            elif kind == "limit":
                self.events += e.place_order(a, cid, LIMIT, action[1], action[2],
                                             limit_price=self.px(self.last + action[3]))[1]
            elif kind == "stop":
                away = action[3] if action[1] == BUY else -action[3]
                self.events += e.place_order(a, cid, STOP, action[1], action[2],
                                             stop_price=self.px(self.last + away))[1]
            elif kind == "trail":
                self.events += e.place_order(a, cid, TRAILING, action[1], action[2],
                                             trail_price=self.c.price_of(action[3]))[1]
            elif kind == "bracket":
                self.events += e.place_order(a, cid, MARKET, action[1], action[2],
                                             stop_loss_bracket={"ticks": action[3], "type": STOP},
                                             take_profit_bracket={"ticks": action[4], "type": LIMIT})[1]
            elif kind == "cancel":
                open_ = e.open_orders(a)
                if open_:
                    self.events += e.cancel_order(a, open_[action[1] % len(open_)]["id"])
            elif kind == "partial":
                pos = e.open_positions(a)
                if pos:
                    self.events += e.partial_close(a, cid, min(action[1], pos[0]["size"]))
            elif kind == "close":
                if e.open_positions(a):
                    self.events += e.close_position(a, cid)
        except EngineError as err:
            # Only prices pushed to the floor are expected to be refused.
            assert "must be" in err.message, err

    def trades(self) -> list[dict]:
        return [ev.payload for ev in self.events if ev.target == "GatewayUserTrade"]

    def signed_position(self) -> int:
        pos = self.engine.open_positions(self.acct)
        return 0 if not pos else pos[0]["size"] * (1 if pos[0]["type"] == 1 else -1)


def run(root: str, steps: list[tuple]) -> Run:
    r = Run(root)
    for step in steps:
        r.apply(step)
    return r


@SETTINGS
@given(st.sampled_from(ROOTS), actions)
def test_position_size_always_equals_the_signed_sum_of_fills(root, steps):
    r = Run(root)
    for step in steps:
        r.apply(step)
        fills = r.engine.search_trades(r.acct, T0)
        assert r.signed_position() == sum(t["size"] if t["side"] == BUY else -t["size"] for t in fills)
    assert r.trades() == r.engine.search_trades(r.acct, T0)


@SETTINGS
@given(st.sampled_from(ROOTS), actions)
def test_fees_add_up_to_per_side_fee_times_contracts_and_balance_to_pnl_minus_fees(root, steps):
    r = run(root, steps)
    fills = r.trades()
    fee = contracts.DEFAULT_FEES[r.c.root]
    assert sum(D(t["fees"]) for t in fills) == fee * sum(t["size"] for t in fills)
    pnl = sum(D(t["profitAndLoss"]) for t in fills if t["profitAndLoss"] is not None)
    fees = sum(D(t["fees"]) for t in fills)
    assert D(r.engine.accounts()[0]["balance"]) == Decimal(50000) + pnl - fees


@SETTINGS
@given(st.sampled_from(ROOTS), actions)
def test_cancelled_orders_never_fill(root, steps):
    r = run(root, steps)
    cancelled_at: dict[int, int] = {}
    for i, ev in enumerate(r.events):
        if ev.target == "GatewayUserOrder" and ev.payload["status"] == CANCELLED:
            cancelled_at.setdefault(ev.payload["id"], i)
    for i, ev in enumerate(r.events):
        if ev.target == "GatewayUserTrade":
            assert ev.payload["orderId"] not in cancelled_at or i < cancelled_at[ev.payload["orderId"]]
    for oid in cancelled_at:
        order = r.engine.order_by_id(r.acct, oid)
        assert order["status"] == CANCELLED and order["fillVolume"] == 0


@SETTINGS
@given(st.sampled_from(ROOTS), actions)
def test_every_fill_is_order_open_trade_order_filled_position(root, steps):
    evs = run(root, steps).events
    for i, ev in enumerate(evs):
        if ev.target != "GatewayUserTrade":
            continue
        oid = ev.payload["orderId"]
        before, after, pos = evs[i - 1], evs[i + 1], evs[i + 2]
        assert (before.target, before.payload["id"], before.payload["status"]) == ("GatewayUserOrder", oid, 1)
        assert (after.target, after.payload["id"], after.payload["status"]) == ("GatewayUserOrder", oid, FILLED)
        assert after.payload["fillVolume"] == ev.payload["size"]
        assert after.payload["filledPrice"] == ev.payload["price"]
        assert pos.target == "GatewayUserPosition"


@SETTINGS
@given(st.sampled_from(ROOTS), actions)
def test_realized_pnl_of_a_sequence_ending_flat_equals_its_cash_flow(root, steps):
    r = run(root, steps + [("close",)])
    c, fills = r.c, r.trades()
    cash = sum((-1 if t["side"] == BUY else 1) * c.to_ticks(D(t["price"])) * t["size"] for t in fills)
    booked = [D(t["profitAndLoss"]) for t in fills if t["profitAndLoss"] is not None]
    # Each closing trade is rounded to the cent once; average prices can be fractional ticks.
    assert abs(sum(booked) - cash * c.tick_value) <= Decimal("0.005") * len(booked)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([c.id for c in contracts.CATALOGUE]), sides, st.integers(1, 20),
       st.integers(-400, 400), st.integers(-400, 400), st.booleans())
def test_round_trip_pnl_is_exact_ticks_times_tick_value_with_the_right_sign(cid, side, size, entry,
                                                                            exit_, via_close):
    c = contracts.resolve(cid)
    engine = Engine(clock=SimClock(T0, frozen=True))
    acct = engine.create_account("RT")["id"]
    base = c.to_ticks(c.default_price)
    entry_px, exit_px = c.price_of(base + entry), c.price_of(base + exit_)
    engine.set_price(cid, entry_px)
    engine.place_order(acct, cid, MARKET, side, size)
    engine.set_price(cid, exit_px)
    if via_close:
        events = engine.close_position(acct, cid)
    else:
        events = engine.place_order(acct, cid, MARKET, 1 - side, size)[1]
    pnl = [ev.payload["profitAndLoss"] for ev in events if ev.target == "GatewayUserTrade"][0]
    direction = 1 if side == BUY else -1
    expected = (exit_px - entry_px) / c.tick_size * c.tick_value * size * direction
    assert D(pnl) == expected
    assert engine.open_positions(acct) == []


@SETTINGS
@given(st.sampled_from(ROOTS), actions, st.integers(-30, 30))
def test_state_round_trips_through_to_dict_and_from_dict(root, steps, move):
    r = run(root, steps)
    saved = json.loads(json.dumps(r.engine.to_dict()))
    restored = Engine.from_dict(saved, r.engine.clock)
    assert restored.to_dict() == r.engine.to_dict()
    price = r.px(r.last + move)
    assert restored.set_price(r.c.id, price) == r.engine.set_price(r.c.id, price)
    assert restored.to_dict() == r.engine.to_dict()
