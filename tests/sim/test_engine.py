"""Behaviour of the simulator's matching engine, asserted on what a broker client would see."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from gateway_sim import contracts
from gateway_sim.clock import SimClock, iso
from gateway_sim.engine import Emitted, Engine, EngineError

T0 = datetime(2026, 11, 24, 14, 30, 0, 123456, tzinfo=timezone.utc)
MNQ = "CON.F.US.MNQ.Z26"
ES = "CON.F.US.EP.Z26"
CL = "CON.F.US.CLE.F27"
BUY, SELL = 0, 1
LIMIT, MARKET, STOP_LIMIT, STOP, TRAILING = 1, 2, 3, 4, 5
OPEN, FILLED, CANCELLED = 1, 2, 3
LONG, SHORT = 1, 2


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0, frozen=True)


@pytest.fixture
def engine(clock: SimClock) -> Engine:
    return Engine(clock=clock)


@pytest.fixture
def acct(engine: Engine) -> int:
    return engine.create_account("50KTC-V2-111111-22222222")["id"]


def targets(events: list[Emitted]) -> list[str]:
    return [e.target for e in events]


def of(events: list[Emitted], target: str) -> list[dict]:
    return [e.payload for e in events if e.target == target]


def trades(events: list[Emitted]) -> list[dict]:
    return of(events, "GatewayUserTrade")


def positions(events: list[Emitted]) -> list[dict]:
    return of(events, "GatewayUserPosition")


def orders(events: list[Emitted]) -> list[dict]:
    return of(events, "GatewayUserOrder")


def buy(engine: Engine, acct: int, size: int, contract: str = MNQ, **kw) -> list[Emitted]:
    return engine.place_order(acct, contract, MARKET, BUY, size, **kw)[1]


def sell(engine: Engine, acct: int, size: int, contract: str = MNQ, **kw) -> list[Emitted]:
    return engine.place_order(acct, contract, MARKET, SELL, size, **kw)[1]


FILL_SEQUENCE = ["GatewayUserOrder", "GatewayUserTrade", "GatewayUserOrder",
                 "GatewayUserPosition", "GatewayUserAccount"]


# --- contracts ---------------------------------------------------------------------------------

class TestContracts:
    @pytest.mark.parametrize("root, cid, name, symbol, tick, value", [
        ("MNQ", "CON.F.US.MNQ.Z26", "MNQZ6", "F.US.MNQ", 0.25, 0.50),
        ("MES", "CON.F.US.MES.Z26", "MESZ6", "F.US.MES", 0.25, 1.25),
        ("ES", "CON.F.US.EP.Z26", "ESZ6", "F.US.EP", 0.25, 12.50),
        ("NQ", "CON.F.US.ENQ.Z26", "NQZ6", "F.US.ENQ", 0.25, 5.00),
        ("RTY", "CON.F.US.RTY.Z26", "RTYZ6", "F.US.RTY", 0.10, 5.00),
        ("M2K", "CON.F.US.M2K.Z26", "M2KZ6", "F.US.M2K", 0.10, 0.50),
        ("CL", "CON.F.US.CLE.F27", "CLF7", "F.US.CLE", 0.01, 10.00),
        ("GC", "CON.F.US.GCE.G27", "GCG7", "F.US.GCE", 0.10, 10.00),
    ])
    def test_root_finds_front_month_with_real_tick_size_and_value(self, engine, root, cid, name,
                                                                   symbol, tick, value):
        assert engine.contract(root) == {
            "id": cid, "name": name, "description": contracts.find(cid).description,
            "tickSize": tick, "tickValue": value, "activeContract": True, "symbolId": symbol,
        }

    @pytest.mark.parametrize("key", ["ES", "es", "EP", "ep", " CON.F.US.EP.Z26 ", "con.f.us.ep.z26"])
    def test_lookup_by_root_or_exchange_code_any_case_finds_es_front_month(self, engine, key):
        assert engine.contract(key)["id"] == ES

    def test_next_quarter_of_index_contracts_is_listed_but_not_active(self, engine):
        nxt = engine.contract("CON.F.US.MNQ.H27")
        assert (nxt["name"], nxt["activeContract"]) == ("MNQH7", False)
        assert "March 2027" in nxt["description"]

    def test_search_nq_lists_exact_root_first_then_others_at_most_20(self, engine):
        found = engine.search_contracts("NQ", live=False)
        assert found[0]["id"] == "CON.F.US.ENQ.Z26"
        assert {c["id"] for c in found} >= {"CON.F.US.MNQ.Z26", "CON.F.US.ENQ.H27"}
        assert len(engine.search_contracts("", live=False)) <= 20

    def test_unknown_contract_is_not_found(self, engine):
        with pytest.raises(EngineError) as err:
            engine.contract("CON.F.US.XYZ.Z26")
        assert err.value.not_found and "CON.F.US.XYZ.Z26" in err.value.message

    def test_default_prices_match_the_contract_doc(self, engine):
        expected = {"MNQ": 21000, "MES": 6000, "ES": 6000, "NQ": 21000, "RTY": 2200,
                    "M2K": 2200, "CL": 70.00, "GC": 2650.0}
        assert {root: engine.price(root) for root in expected} == expected

    def test_fee_override_by_either_root_alias_replaces_default(self):
        assert contracts.fee_table({"EP": 2})["ES"] == 2
        with pytest.raises(ValueError, match="XYZ"):
            contracts.fee_table({"XYZ": 1})


# --- clock -------------------------------------------------------------------------------------

class TestClock:
    def test_frozen_clock_moves_only_when_advanced_or_set(self):
        clk = SimClock(T0, frozen=True)
        assert clk.now() == T0
        clk.advance(1.5)
        assert clk.now() == T0 + timedelta(seconds=1.5)
        clk.set(datetime(2026, 11, 25, tzinfo=timezone.utc))
        assert iso(clk.now()) == "2026-11-25T00:00:00.000000+00:00"

    def test_running_clock_starts_at_start_and_keeps_real_pace(self):
        clk = SimClock(T0)
        assert timedelta(0) <= clk.now() - T0 < timedelta(seconds=5)
        clk.advance(3600)
        assert clk.now() - T0 >= timedelta(hours=1)

    def test_default_clock_reads_real_utc_time(self):
        assert abs(SimClock().now() - datetime.now(timezone.utc)) < timedelta(seconds=5)

    def test_naive_datetime_and_negative_advance_are_refused(self):
        clk = SimClock(T0, frozen=True)
        with pytest.raises(ValueError, match="naive"):
            clk.set(datetime(2026, 11, 24))
        with pytest.raises(ValueError, match=">= 0"):
            clk.advance(-1)

    def test_other_timezones_are_converted_to_utc(self):
        est = timezone(timedelta(hours=-5))
        clk = SimClock(datetime(2026, 11, 24, 9, 30, tzinfo=est), frozen=True)
        assert iso(clk.now()) == "2026-11-24T14:30:00.000000+00:00"


# --- accounts ----------------------------------------------------------------------------------

class TestAccounts:
    def test_create_account_returns_gateway_account_payload(self, engine):
        assert engine.create_account("PRAC-1", balance=150000.0, can_trade=False, account_id=42) == {
            "id": 42, "name": "PRAC-1", "balance": 150000.0, "canTrade": False,
            "isVisible": True, "simulated": True}

    def test_accounts_get_increasing_ids_and_list_sorted(self, engine):
        a = engine.create_account("A")["id"]
        b = engine.create_account("B")["id"]
        assert b > a and [x["id"] for x in engine.accounts()] == [a, b]

    def test_duplicate_name_or_id_is_rejected(self, engine, acct):
        with pytest.raises(EngineError, match="name"):
            engine.create_account("50KTC-V2-111111-22222222")
        with pytest.raises(EngineError, match=f"id {acct}"):
            engine.create_account("other", account_id=acct)

    def test_set_can_trade_emits_account_event(self, engine, acct):
        events = engine.set_can_trade(acct, False)
        assert events == [Emitted("GatewayUserAccount", acct, engine.accounts()[0])]
        assert events[0].payload["canTrade"] is False


# --- market orders, positions and P&L ---------------------------------------------------------

class TestMarketOrders:
    def test_buy_2_at_21000_then_long_2_at_average_21000(self, engine, acct):
        events = buy(engine, acct, 2)
        assert engine.open_positions(acct) == positions(events) == [{
            "id": positions(events)[0]["id"], "accountId": acct, "contractId": MNQ,
            "creationTimestamp": iso(T0), "type": LONG, "size": 2, "averagePrice": 21000.0}]

    def test_fill_emits_order_open_trade_order_filled_position_account_in_that_order(self, engine, acct):
        events = buy(engine, acct, 2)
        assert targets(events) == FILL_SEQUENCE
        first, filled = orders(events)
        assert (first["status"], first["fillVolume"], first["filledPrice"]) == (OPEN, 0, None)
        assert (filled["status"], filled["fillVolume"], filled["filledPrice"]) == (FILLED, 2, 21000.0)
        assert all(e.account_id == acct for e in events)

    def test_buy_2_at_21000_sell_2_at_21010_then_pnl_40_and_fees_reported_separately(self, engine, acct):
        open_trade = trades(buy(engine, acct, 2))[0]
        engine.set_price(MNQ, 21010)
        events = sell(engine, acct, 2)
        close_trade = trades(events)[0]
        # 10 points = 40 ticks x $0.50 x 2 contracts
        assert open_trade["profitAndLoss"] is None and open_trade["fees"] == 0.74
        assert close_trade["profitAndLoss"] == 40.00 and close_trade["fees"] == 0.74
        assert close_trade["price"] == 21010.0 and close_trade["side"] == SELL
        assert of(events, "GatewayUserAccount")[-1]["balance"] == 50000 + 40 - 1.48
        assert positions(events)[-1]["size"] == 0

    @pytest.mark.parametrize("exit_price, pnl", [(5990, 500.0), (6010, -500.0)])
    def test_short_es_round_trip_books_pnl_with_the_short_sign(self, engine, acct, exit_price, pnl):
        # 10 points = 40 ticks x $12.50
        sell(engine, acct, 1, contract="ES")
        engine.set_price("ES", exit_price)
        assert trades(buy(engine, acct, 1, contract="ES"))[0]["profitAndLoss"] == pnl

    def test_sell_3_when_long_2_then_books_pnl_on_2_and_leaves_short_1(self, engine, acct):
        buy(engine, acct, 2)
        engine.set_price(MNQ, 20990)
        events = sell(engine, acct, 3)
        trade = trades(events)[0]
        # 10 points against 2 contracts = 40 ticks x $0.50 x 2; fees on all 3 contracts
        assert (trade["size"], trade["profitAndLoss"], trade["fees"]) == (3, -40.0, 1.11)
        assert positions(events) == [engine.open_positions(acct)[0]]
        assert engine.open_positions(acct)[0] | {"id": 0} == {
            "id": 0, "accountId": acct, "contractId": MNQ, "creationTimestamp": iso(T0),
            "type": SHORT, "size": 1, "averagePrice": 20990.0}

    def test_adding_to_a_long_averages_the_entry_price(self, engine, acct):
        buy(engine, acct, 1)
        engine.set_price(MNQ, 21000.25)
        events = buy(engine, acct, 1)
        assert positions(events)[0]["averagePrice"] == 21000.125
        assert trades(events)[0]["profitAndLoss"] is None

    def test_crude_pnl_is_exact_to_the_cent(self, engine, acct):
        engine.set_price(CL, 70.01)
        buy(engine, acct, 3, contract=CL)
        engine.set_price(CL, 70.37)
        # 36 ticks x $10 x 3, no float drift from 70.37 - 70.01
        assert trades(sell(engine, acct, 3, contract=CL))[0]["profitAndLoss"] == 1080.00

    def test_opening_fill_with_zero_fees_emits_no_account_event(self, clock):
        engine = Engine(clock=clock, fees={"MNQ": 0})
        acct = engine.create_account("A")["id"]
        assert targets(buy(engine, acct, 1)) == FILL_SEQUENCE[:4]

    def test_pnl_includes_fees_of_the_closed_quantity_when_configured(self, clock):
        engine = Engine(clock=clock, pnl_includes_fees=True)
        acct = engine.create_account("A")["id"]
        buy(engine, acct, 2)
        engine.set_price(MNQ, 21010)
        trade = trades(sell(engine, acct, 2))[0]
        assert (trade["profitAndLoss"], trade["fees"]) == (40.0 - 0.74, 0.74)
        assert engine.accounts()[0]["balance"] == 50000 + 40 - 1.48

    def test_order_and_trade_ids_increase_monotonically_across_accounts(self, engine, acct):
        other = engine.create_account("B")["id"]
        ids = [engine.place_order(a, MNQ, MARKET, BUY, 1)[0] for a in (acct, other, acct)]
        all_trades = engine.search_trades(acct, T0) + engine.search_trades(other, T0)
        assert ids == sorted(ids) and len(set(ids)) == 3
        assert sorted(t["id"] for t in all_trades) == [t["id"] for t in sorted(all_trades, key=lambda t: t["orderId"])]

    def test_timestamps_come_from_the_injected_clock(self, engine, acct, clock):
        clock.advance(60)
        trade = trades(buy(engine, acct, 1))[0]
        assert trade["creationTimestamp"] == "2026-11-24T14:31:00.123456+00:00"


# --- close and partial close -------------------------------------------------------------------

class TestClose:
    def test_partial_close_books_pnl_on_closed_quantity_and_keeps_average(self, engine, acct):
        buy(engine, acct, 3)
        engine.set_price(MNQ, 21004)
        events = engine.partial_close(acct, MNQ, 1)
        trade, position = trades(events)[0], positions(events)[0]
        assert (trade["side"], trade["size"], trade["profitAndLoss"]) == (SELL, 1, 8.0)
        assert (position["type"], position["size"], position["averagePrice"]) == (LONG, 2, 21000.0)
        assert targets(events) == FILL_SEQUENCE

    def test_close_position_flattens_with_an_opposite_market_fill(self, engine, acct):
        sell(engine, acct, 2)
        engine.set_price(MNQ, 20995)
        events = engine.close_position(acct, MNQ)
        order = orders(events)[-1]
        assert (order["type"], order["side"], order["size"], order["status"]) == (MARKET, BUY, 2, FILLED)
        assert trades(events)[0]["profitAndLoss"] == 20.0
        assert positions(events)[0]["size"] == 0 and positions(events)[0]["type"] == SHORT
        assert engine.open_positions(acct) == []

    def test_close_when_flat_is_position_not_found(self, engine, acct):
        with pytest.raises(EngineError) as err:
            engine.close_position(acct, MNQ)
        assert err.value.code == 2 and err.value.not_found

    @pytest.mark.parametrize("size", [0, 3, -1, 1.0])
    def test_partial_close_outside_1_to_position_size_is_rejected(self, engine, acct, size):
        buy(engine, acct, 2)
        before = engine.to_dict()
        with pytest.raises(EngineError, match="size") as err:
            engine.partial_close(acct, MNQ, size)
        assert err.value.code == 5 and engine.to_dict() == before

    def test_new_position_after_flat_gets_a_new_id_reversal_keeps_it(self, engine, acct):
        first = positions(buy(engine, acct, 1))[0]["id"]
        reversed_ = positions(sell(engine, acct, 2))[0]
        assert reversed_["id"] == first and reversed_["type"] == SHORT
        buy(engine, acct, 1)
        assert positions(buy(engine, acct, 1))[0]["id"] > first


# --- limit orders ------------------------------------------------------------------------------

class TestLimitOrders:
    def test_resting_limit_emits_only_the_open_order(self, engine, acct):
        oid, events = engine.place_order(acct, MNQ, LIMIT, BUY, 1, limit_price=20990, custom_tag="t1")
        assert targets(events) == ["GatewayUserOrder"]
        assert events[0].payload | {"creationTimestamp": None, "updateTimestamp": None} == {
            "id": oid, "accountId": acct, "contractId": MNQ, "symbolId": "F.US.MNQ",
            "creationTimestamp": None, "updateTimestamp": None, "status": OPEN, "type": LIMIT,
            "side": BUY, "size": 1, "limitPrice": 20990.0, "stopPrice": None, "fillVolume": 0,
            "filledPrice": None, "customTag": "t1"}
        assert engine.open_orders(acct) == [events[0].payload]

    def test_buy_limit_fills_at_the_limit_price_when_price_gaps_below_it(self, engine, acct):
        engine.place_order(acct, MNQ, LIMIT, BUY, 1, limit_price=20990)
        assert trades(engine.set_price(MNQ, 20990.25)) == []
        events = engine.set_price(MNQ, 20980)
        assert trades(events)[0]["price"] == 20990.0
        assert targets(events) == FILL_SEQUENCE + ["GatewayQuote"]

    def test_sell_limit_fills_when_price_reaches_it(self, engine, acct):
        engine.place_order(acct, MNQ, LIMIT, SELL, 1, limit_price=21010)
        assert trades(engine.set_price(MNQ, 21010))[0]["price"] == 21010.0

    def test_marketable_limit_fills_at_once_at_the_last_price(self, engine, acct):
        events = engine.place_order(acct, MNQ, LIMIT, BUY, 1, limit_price=21005)[1]
        assert trades(events)[0]["price"] == 21000.0


# --- stop orders -------------------------------------------------------------------------------

class TestStopOrders:
    def test_sell_stop_triggers_when_crossed_and_fills_at_the_new_price(self, engine, acct):
        buy(engine, acct, 1)
        engine.place_order(acct, MNQ, STOP, SELL, 1, stop_price=20990)
        assert trades(engine.set_price(MNQ, 20990.25)) == []
        events = engine.set_price(MNQ, 20985)
        assert trades(events)[0]["price"] == 20985.0
        assert trades(events)[0]["profitAndLoss"] == -30.0

    def test_buy_stop_triggers_at_its_price(self, engine, acct):
        engine.place_order(acct, MNQ, STOP, BUY, 1, stop_price=21010)
        assert trades(engine.set_price(MNQ, 21010))[0]["price"] == 21010.0

    @pytest.mark.parametrize("side, stop", [(BUY, 21000), (BUY, 20990), (SELL, 21000), (SELL, 21010)])
    def test_stop_already_crossed_when_placed_is_rejected(self, engine, acct, side, stop):
        with pytest.raises(EngineError, match="stopPrice .* last price 21000"):
            engine.place_order(acct, MNQ, STOP, side, 1, stop_price=stop)

    def test_stop_limit_beyond_its_limit_rests_then_fills_at_the_limit(self, engine, acct):
        engine.place_order(acct, MNQ, STOP_LIMIT, BUY, 1, stop_price=21010, limit_price=21012)
        assert trades(engine.set_price(MNQ, 21015)) == []      # triggered, above the limit
        assert trades(engine.set_price(MNQ, 21011))[0]["price"] == 21012.0

    def test_stop_limit_within_its_limit_at_trigger_fills_at_the_last_price(self, engine, acct):
        engine.place_order(acct, MNQ, STOP_LIMIT, SELL, 1, stop_price=20990, limit_price=20980)
        assert trades(engine.set_price(MNQ, 20985))[0]["price"] == 20985.0


# --- trailing stops ----------------------------------------------------------------------------

class TestTrailingStops:
    def test_sell_trailing_stop_ratchets_up_only_and_triggers_on_the_pullback(self, engine, acct):
        buy(engine, acct, 1)
        oid, events = engine.place_order(acct, MNQ, TRAILING, SELL, 1, trail_price=5)
        assert orders(events)[0]["stopPrice"] == 20995.0
        ratchet = engine.set_price(MNQ, 21010)
        assert [o["stopPrice"] for o in orders(ratchet)] == [21005.0]
        assert orders(engine.set_price(MNQ, 21006)) == []          # pullback: no ratchet down
        assert engine.order_by_id(acct, oid)["stopPrice"] == 21005.0
        events = engine.set_price(MNQ, 21004)
        assert trades(events)[0]["price"] == 21004.0 and trades(events)[0]["profitAndLoss"] == 8.0

    def test_buy_trailing_stop_ratchets_down_only(self, engine, acct):
        sell(engine, acct, 1)
        oid = engine.place_order(acct, MNQ, TRAILING, BUY, 1, trail_price=2.5)[0]
        engine.set_price(MNQ, 20990)
        engine.set_price(MNQ, 20992)
        assert engine.order_by_id(acct, oid)["stopPrice"] == 20992.5
        assert trades(engine.set_price(MNQ, 20992.5))[0]["price"] == 20992.5

    def test_modify_trail_restarts_the_distance_from_the_best_price(self, engine, acct):
        oid = engine.place_order(acct, MNQ, TRAILING, SELL, 1, trail_price=5)[0]
        engine.set_price(MNQ, 21010)
        engine.modify_order(acct, oid, trail_price=2)
        assert engine.order_by_id(acct, oid)["stopPrice"] == 21008.0


# --- brackets ----------------------------------------------------------------------------------

SL = {"ticks": 40, "type": STOP}
TP = {"ticks": 80, "type": LIMIT}


class TestBrackets:
    def test_entry_fill_creates_stop_loss_then_take_profit_children(self, engine, acct):
        events = buy(engine, acct, 2, stop_loss_bracket=SL, take_profit_bracket=TP)
        assert targets(events) == FILL_SEQUENCE + ["GatewayUserOrder", "GatewayUserOrder"]
        sl, tp = orders(events)[2:]
        assert (sl["type"], sl["side"], sl["size"], sl["stopPrice"], sl["status"]) == (STOP, SELL, 2, 20990.0, OPEN)
        assert (tp["type"], tp["side"], tp["size"], tp["limitPrice"]) == (LIMIT, SELL, 2, 21020.0)

    def test_short_entry_brackets_are_mirrored(self, engine, acct):
        sl, tp = orders(sell(engine, acct, 1, stop_loss_bracket=SL, take_profit_bracket=TP))[2:]
        assert (sl["side"], sl["stopPrice"], tp["side"], tp["limitPrice"]) == (BUY, 21010.0, BUY, 20980.0)

    def test_take_profit_fill_cancels_the_stop_loss(self, engine, acct):
        children = orders(buy(engine, acct, 2, stop_loss_bracket=SL, take_profit_bracket=TP))[2:]
        events = engine.set_price(MNQ, 21020)
        assert targets(events) == FILL_SEQUENCE + ["GatewayUserOrder", "GatewayQuote"]
        assert trades(events)[0]["profitAndLoss"] == 80.0
        cancelled = orders(events)[-1]
        assert (cancelled["id"], cancelled["status"]) == (children[0]["id"], CANCELLED)
        assert engine.open_orders(acct) == []
        assert trades(engine.set_price(MNQ, 20980)) == []

    def test_brackets_wait_for_a_resting_entry_to_fill(self, engine, acct):
        oid, events = engine.place_order(acct, MNQ, LIMIT, BUY, 1, limit_price=20990,
                                         stop_loss_bracket=SL, take_profit_bracket=TP)
        assert len(events) == 1 and [o["id"] for o in engine.open_orders(acct)] == [oid]
        events = engine.set_price(MNQ, 20990)
        sl, tp = orders(events)[2:]
        assert (sl["stopPrice"], tp["limitPrice"]) == (20980.0, 21010.0)

    def test_gap_through_a_limit_entry_triggers_its_stop_loss_in_the_same_move(self, engine, acct):
        engine.place_order(acct, MNQ, LIMIT, BUY, 1, limit_price=20990, stop_loss_bracket=SL)
        events = engine.set_price(MNQ, 20970)
        fills = trades(events)
        assert [(t["side"], t["price"]) for t in fills] == [(BUY, 20990.0), (SELL, 20970.0)]
        assert engine.open_positions(acct) == []

    def test_trailing_stop_loss_bracket_trails_by_ticks(self, engine, acct):
        events = buy(engine, acct, 1, stop_loss_bracket={"ticks": 8, "type": TRAILING})
        sl_id = orders(events)[2]["id"]
        engine.set_price(MNQ, 21010)
        assert engine.order_by_id(acct, sl_id)["stopPrice"] == 21008.0

    def test_closing_the_position_cancels_remaining_bracket_children(self, engine, acct):
        buy(engine, acct, 1, stop_loss_bracket=SL, take_profit_bracket=TP)
        events = engine.close_position(acct, MNQ)
        assert [o["status"] for o in orders(events)[2:]] == [CANCELLED, CANCELLED]
        assert engine.open_orders(acct) == []

    @pytest.mark.parametrize("name, spec, message", [
        ("stop_loss_bracket", {"ticks": 10, "type": LIMIT}, "stopLossBracket.type 1"),
        ("take_profit_bracket", {"ticks": 10, "type": STOP}, "takeProfitBracket.type 4"),
        ("stop_loss_bracket", {"ticks": 0, "type": STOP}, "stopLossBracket.ticks"),
        ("take_profit_bracket", {"ticks": 1.5, "type": LIMIT}, "takeProfitBracket.ticks"),
        ("stop_loss_bracket", {"tick": 10, "type": STOP}, "unknown field"),
    ])
    def test_invalid_bracket_is_rejected_naming_the_field(self, engine, acct, name, spec, message):
        with pytest.raises(EngineError, match=message):
            engine.place_order(acct, MNQ, MARKET, BUY, 1, **{name: spec})


# --- cancel and modify -------------------------------------------------------------------------

class TestCancelAndModify:
    def test_cancelled_order_reports_status_3_and_never_fills(self, engine, acct):
        oid = engine.place_order(acct, MNQ, LIMIT, BUY, 1, limit_price=20990)[0]
        events = engine.cancel_order(acct, oid)
        assert [(o["id"], o["status"]) for o in orders(events)] == [(oid, CANCELLED)]
        assert trades(engine.set_price(MNQ, 20980)) == [] and engine.open_positions(acct) == []

    def test_cancel_of_a_filled_order_is_rejected(self, engine, acct):
        oid = engine.place_order(acct, MNQ, MARKET, BUY, 1)[0]
        with pytest.raises(EngineError, match="not open") as err:
            engine.cancel_order(acct, oid)
        assert err.value.code == 3

    def test_cancel_of_another_accounts_order_is_not_found(self, engine, acct):
        other = engine.create_account("B")["id"]
        oid = engine.place_order(other, MNQ, LIMIT, BUY, 1, limit_price=20990)[0]
        with pytest.raises(EngineError) as err:
            engine.cancel_order(acct, oid)
        assert (err.value.code, err.value.not_found) == (2, True)
        assert engine.order_by_id(acct, oid) is None

    def test_modify_limit_price_moves_where_it_fills(self, engine, acct):
        oid = engine.place_order(acct, MNQ, LIMIT, BUY, 1, limit_price=20990)[0]
        events = engine.modify_order(acct, oid, limit_price=20995, size=2)
        assert [(o["limitPrice"], o["size"]) for o in orders(events)] == [(20995.0, 2)]
        fill = trades(engine.set_price(MNQ, 20995))[0]
        assert (fill["price"], fill["size"]) == (20995.0, 2)

    def test_modify_that_makes_a_limit_marketable_fills_at_the_last_price(self, engine, acct):
        oid = engine.place_order(acct, MNQ, LIMIT, BUY, 1, limit_price=20990)[0]
        events = engine.modify_order(acct, oid, limit_price=21002)
        assert targets(events) == FILL_SEQUENCE
        assert orders(events)[0]["limitPrice"] == 21002.0 and trades(events)[0]["price"] == 21000.0

    def test_modify_stop_price_on_a_limit_is_rejected(self, engine, acct):
        oid = engine.place_order(acct, MNQ, LIMIT, BUY, 1, limit_price=20990)[0]
        with pytest.raises(EngineError, match="stopPrice .* Limit"):
            engine.modify_order(acct, oid, stop_price=20980)


# --- canTrade ----------------------------------------------------------------------------------

class TestCanTrade:
    def test_new_orders_are_rejected_when_can_trade_is_false(self, engine, acct):
        engine.set_can_trade(acct, False)
        before = engine.to_dict()
        with pytest.raises(EngineError, match="canTrade false") as err:
            buy(engine, acct, 1)
        assert err.value.code == 10 and engine.to_dict() == before

    def test_close_partial_close_and_cancel_still_work_when_can_trade_is_false(self, engine, acct):
        buy(engine, acct, 3)
        oid = engine.place_order(acct, MNQ, LIMIT, SELL, 1, limit_price=21050)[0]
        engine.set_can_trade(acct, False)
        assert positions(engine.partial_close(acct, MNQ, 1))[0]["size"] == 2
        assert orders(engine.cancel_order(acct, oid))[0]["status"] == CANCELLED
        assert positions(engine.close_position(acct, MNQ))[0]["size"] == 0

    def test_modify_is_rejected_when_can_trade_is_false(self, engine, acct):
        oid = engine.place_order(acct, MNQ, LIMIT, BUY, 1, limit_price=20990)[0]
        engine.set_can_trade(acct, False)
        with pytest.raises(EngineError, match="canTrade false") as err:
            engine.modify_order(acct, oid, limit_price=20980)
        assert err.value.code == 6


# --- validation --------------------------------------------------------------------------------

class TestValidation:
    @pytest.mark.parametrize("overrides, code, fragment", [
        ({"account_id": 999}, 1, "accountId 999"),
        ({"contract_id": "CON.F.US.XYZ.Z26"}, 8, "contractId 'CON.F.US.XYZ.Z26'"),
        ({"size": 0}, 2, "size"),
        ({"size": -2}, 2, "size"),
        ({"size": 1.5}, 2, "size"),
        ({"size": True}, 2, "size"),
        ({"side": 2}, 2, "side 2"),
        ({"type": 9}, 2, "type 9"),
        ({"type": 6}, 2, "JoinBid"),
        ({"type": LIMIT}, 2, "limitPrice is required"),
        ({"type": LIMIT, "limit_price": 20990.3}, 2, "limitPrice 20990.3 is not on the 0.25 tick grid"),
        ({"type": STOP}, 2, "stopPrice is required"),
        ({"type": STOP_LIMIT, "stop_price": 21010}, 2, "limitPrice is required"),
        ({"type": TRAILING}, 2, "trailPrice is required"),
        ({"type": TRAILING, "trail_price": 0}, 2, "trailPrice must be > 0"),
        ({"limit_price": 21000}, 2, "limitPrice 21000 does not apply to a Market order"),
        ({"type": LIMIT, "limit_price": "abc"}, 2, "limitPrice must be a number"),
        ({"custom_tag": "dup"}, 2, "customTag 'dup' is already used"),
    ])
    def test_bad_order_is_rejected_naming_the_field_and_state_is_unchanged(self, engine, acct,
                                                                           overrides, code, fragment):
        engine.place_order(acct, MNQ, LIMIT, BUY, 1, limit_price=20000, custom_tag="dup")
        before = engine.to_dict()
        args = {"account_id": acct, "contract_id": MNQ, "type": MARKET, "side": BUY, "size": 1}
        args.update(overrides)
        with pytest.raises(EngineError) as err:
            engine.place_order(**args)
        assert err.value.code == code and fragment in err.value.message
        assert engine.to_dict() == before

    def test_set_price_off_the_tick_grid_is_rejected_and_names_the_nearest_ticks(self, engine):
        with pytest.raises(EngineError, match=r"price 70\.005 .* 0\.01 tick grid .* 70 or 70\.01"):
            engine.set_price("CL", 70.005)
        assert engine.price("CL") == 70.0

    def test_unknown_account_is_not_found_for_queries(self, engine):
        with pytest.raises(EngineError) as err:
            engine.open_positions(12345)
        assert err.value.not_found and err.value.code == 1


# --- market data, queries, persistence ---------------------------------------------------------

class TestQuotesQueriesPersistence:
    def test_set_price_emits_the_quote_last_with_symbol_id_and_no_spread(self, engine):
        events = engine.set_price("ES", 6012.5)
        assert events[-1].target == "GatewayQuote" and events[-1].contract_id == ES
        quote = events[-1].payload
        assert (quote["symbol"], quote["lastPrice"], quote["bestBid"], quote["bestAsk"]) == (
            "F.US.EP", 6012.5, 6012.5, 6012.5)
        assert (quote["open"], quote["high"], quote["change"]) == (6000.0, 6012.5, 12.5)
        assert engine.quote(ES) == quote

    def test_quote_resent_later_has_a_fresh_timestamp_but_keeps_last_updated(self, engine, clock):
        engine.set_price("ES", 6001)
        clock.advance(5)
        quote = engine.quote("ES")
        assert quote["lastUpdated"] == iso(T0) and quote["timestamp"] == iso(T0 + timedelta(seconds=5))

    def test_emitted_unpacks_as_target_account_payload(self, engine, acct):
        target, account_id, payload = buy(engine, acct, 1)[0]
        assert (target, account_id, payload["status"]) == ("GatewayUserOrder", acct, OPEN)

    def test_search_orders_and_trades_filter_by_creation_time(self, engine, acct, clock):
        buy(engine, acct, 1)
        clock.advance(3600)
        later = engine.place_order(acct, MNQ, MARKET, SELL, 1)[0]
        cut = T0 + timedelta(minutes=30)
        assert [o["id"] for o in engine.search_orders(acct, cut)] == [later]
        assert [t["orderId"] for t in engine.search_trades(acct, iso(cut))] == [later]
        assert len(engine.search_trades(acct, "2026-11-24T00:00:00Z", cut)) == 1
        assert {"symbolId", "fillVolume", "customTag"} <= set(engine.search_orders(acct, T0)[0])

    def test_state_round_trips_through_json_and_continues_where_it_left_off(self, engine, acct, clock):
        buy(engine, acct, 2, stop_loss_bracket={"ticks": 8, "type": TRAILING}, take_profit_bracket=TP)
        engine.place_order(acct, MNQ, STOP_LIMIT, SELL, 1, stop_price=20990, limit_price=20980)
        engine.set_price(MNQ, 21003.25)
        saved = json.loads(json.dumps(engine.to_dict()))
        restored = Engine.from_dict(saved, clock)
        assert restored.to_dict() == engine.to_dict()
        assert restored.set_price(MNQ, 21020) == engine.set_price(MNQ, 21020)
        assert restored.place_order(acct, MNQ, MARKET, BUY, 1) == engine.place_order(acct, MNQ, MARKET, BUY, 1)
