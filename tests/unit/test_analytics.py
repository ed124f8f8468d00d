"""Analytics figures against a hand-computed trade list, plus properties of the arithmetic."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from risk_actors import messages as m
from risk_actors.analytics.component import AnalyticsComponent
from risk_actors.analytics.stats import Fill, compute, symbol_root
from risk_actors.analytics.store import AnalyticsStore
from risk_actors.components import ComponentContext, DailyReport
from risk_actors.db import Database

ACC = 7
MNQ = "CON.F.US.MNQ.Z26"
ES = "CON.F.US.EP.Z26"  # exchange root EP is the ES contract


def utc(day: int, hh: int, mm: int) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=timezone.utc)


def fill(tid, contract, at, pnl, fees, voided=False, side=0, size=1) -> Fill:
    return Fill(ACC, tid, contract, at, None if pnl is None else Decimal(pnl), Decimal(fees),
                size, side, voided)


# November: Chicago is UTC-6 (CST). Reset 17:00 CT, so 23:30 UTC on the 24th (17:30 CT)
# already belongs to the trading day of the 25th.
HAND = [
    fill(1, MNQ, utc(24, 14, 35), None, "1.48"),       # 08:35 CT open
    fill(2, MNQ, utc(24, 14, 50), "60.00", "1.48"),    # 08:50 CT close, win
    fill(3, ES, utc(24, 15, 10), None, "2.80"),        # 09:10 CT open
    fill(4, ES, utc(24, 15, 40), "-125.00", "2.80"),   # 09:40 CT close, loss
    fill(5, MNQ, utc(24, 16, 5), None, "0.74"),        # 10:05 CT open
    fill(6, MNQ, utc(24, 16, 20), "30.50", "0.74"),    # 10:20 CT close, win
    fill(7, MNQ, utc(24, 16, 30), None, "0.74"),       # 10:30 CT open
    fill(8, MNQ, utc(24, 16, 45), "0", "0.74"),        # 10:45 CT close, scratch
    fill(9, ES, utc(24, 23, 30), None, "2.80"),        # 17:30 CT open (next trading day)
    fill(10, ES, utc(24, 23, 55), "87.50", "2.80"),    # 17:55 CT close, win
    fill(11, MNQ, utc(24, 17, 0), "-500.00", "0.74", voided=True),   # voided: ignored
    fill(2, MNQ, utc(24, 14, 50), "60.00", "1.48"),    # trade 2 seen again: counted once
]


def test_hand_computed_trade_list_when_computed_then_every_figure_matches():
    s = compute(HAND, ["max_contracts", "daily_realized_loss", "max_contracts"])
    d = s.to_dict()
    # trades = closing fills 2, 4, 6, 8, 10 (11 voided, 2 duplicated): 5; fills = 10
    assert (d["fills"], d["trades"]) == (10, 5)
    # wins 60, 30.50, 87.50; loss -125; scratch 0
    assert (d["wins"], d["losses"], d["scratches"]) == (3, 1, 1)
    assert d["win_rate"] == 60.0                       # 3 / 5
    assert d["gross_profit"] == 178.00                 # 60 + 30.50 + 87.50
    assert d["gross_loss"] == -125.00
    assert d["gross_pnl"] == 53.00                     # 178 - 125
    # fees of every fill: 1.48*2 + 2.80*4 + 0.74*4 = 2.96 + 11.20 + 2.96
    assert d["fees"] == 17.12
    assert d["net_pnl"] == 35.88                       # 53.00 - 17.12
    assert d["average_win"] == 59.33                   # 178 / 3 = 59.333...
    assert d["average_loss"] == -125.00
    assert d["profit_factor"] == 1.42                  # 178 / 125 = 1.424
    assert (d["largest_win"], d["largest_loss"]) == (87.50, -125.00)
    assert d["rule_triggers"] == {"daily_realized_loss": 1, "max_contracts": 2}
    # by hour (CT): 08 = 60 - 2.96; 09 = -125 - 5.60; 10 = 30.50 - 2.96; 17 = 87.50 - 5.60
    assert {h: b["net_pnl"] for h, b in d["by_hour"].items()} == {
        "08": 57.04, "09": -130.60, "10": 27.54, "17": 81.90}
    assert d["by_hour"]["10"]["trades"] == 2
    # by instrument: MNQ = 60 + 30.50 + 0 - (1.48*2 + 0.74*4) = 90.50 - 5.92
    #                ES  = -125 + 87.50 - 2.80*4 = -37.50 - 11.20
    assert d["by_instrument"] == {
        "ES": {"trades": 2, "wins": 1, "losses": 1, "gross_pnl": -37.50, "fees": 11.20,
               "net_pnl": -48.70},
        "MNQ": {"trades": 3, "wins": 2, "losses": 0, "gross_pnl": 90.50, "fees": 5.92,
                "net_pnl": 84.58}}
    # by trading day: the 24th = fills 1-8: -34.50 gross - 11.52 fees; the 25th = 87.50 - 5.60
    assert {k: v["net_pnl"] for k, v in d["by_day"].items()} == {
        "2026-11-24": -46.02, "2026-11-25": 81.90}


def test_no_trades_when_computed_then_ratios_are_undefined_not_zero():
    d = compute([]).to_dict()
    assert d["trades"] == 0 and d["net_pnl"] == 0.0
    assert d["win_rate"] is None and d["profit_factor"] is None and d["average_win"] is None


def test_only_wins_when_computed_then_profit_factor_is_undefined():
    d = compute([fill(1, MNQ, utc(24, 15, 0), "10", "0")]).to_dict()
    assert d["profit_factor"] is None and d["win_rate"] == 100.0


@pytest.mark.parametrize("contract, root", [(MNQ, "MNQ"), (ES, "ES"),
                                            ("CON.F.US.ENQ.H27", "NQ"), ("odd-id", "odd-id")])
def test_symbol_root_of_contract_ids(contract, root):
    assert symbol_root(contract) == root


def test_money_from_floats_when_summed_then_exact_to_the_cent():
    # 0.1 + 0.2 in floats is 0.30000000000000004; the broker's floats go through str().
    fills = [Fill(ACC, i, MNQ, utc(24, 15, i), Decimal(str(0.1 if i % 2 else 0.2)),
                  Decimal(str(0.37))) for i in range(1, 31)]
    s = compute(fills)
    assert s.gross_pnl == Decimal("4.5") and s.fees == Decimal("11.10")


# ---- the component and its tables -------------------------------------------------------------
def trade_event(tid, contract, at, pnl, fees, voided=False) -> m.TradeEvent:
    return m.TradeEvent(ACC, tid, contract, at, 100.0, pnl, fees, 0, 1, voided)


@pytest.fixture
def component(tmp_path):
    db = tmp_path / "riskd.sqlite"
    Database(db).close()
    comp = AnalyticsComponent()
    comp.start(ComponentContext(str(db), str(tmp_path)))
    yield comp
    comp.close()


def test_trade_events_when_recorded_twice_then_counted_once_and_survive_reopening(component,
                                                                                  tmp_path):
    at = utc(24, 15, 0)
    for _ in range(2):
        component.on_event(ACC, trade_event(1, MNQ, at, None, 0.74), at)
        component.on_event(ACC, trade_event(2, MNQ, at + timedelta(minutes=5), -20.0, 0.74), at)
    component.on_event(ACC, m.Reconciled(ACC, None, (), (), (
        trade_event(2, MNQ, at + timedelta(minutes=5), -20.0, 0.74),
        trade_event(3, ES, at + timedelta(minutes=9), 50.0, 2.8))), at)
    component.on_event(ACC, m.RuleTriggered("max_contracts", "enforce", "6 > 5"), at)
    component.close()
    store = AnalyticsStore(tmp_path / "riskd.sqlite", readonly=True)
    try:
        fills = store.fills(ACC, date(2026, 11, 24), date(2026, 11, 24))
        s = compute(fills, [r for r, _, _ in store.triggers(ACC)])
    finally:
        store.close()
    assert (s.fills, s.trades, s.wins, s.losses) == (3, 2, 1, 1)
    assert s.net_pnl == Decimal("30.00") - Decimal("4.28")   # -20 + 50 - (0.74*2 + 2.80)
    assert s.rule_triggers == {"max_contracts": 1}


def test_day_closed_when_reported_then_covers_only_that_trading_day(component):
    component.on_event(ACC, trade_event(1, MNQ, utc(24, 15, 0), 40.0, 1.0), utc(24, 15, 0))
    component.on_event(ACC, trade_event(2, MNQ, utc(24, 23, 30), -10.0, 1.0), utc(24, 23, 30))
    # the reset of the 24th: 17:00 CT = 23:00 UTC
    report = component.on_day_closed(ACC, utc(23, 23, 0), utc(24, 23, 0))
    assert isinstance(report, DailyReport)
    assert report.data["trading_day"] == "2026-11-24"
    assert report.data["trades"] == 1 and report.data["net_pnl"] == 39.0
    assert "1 trade(s)" in report.text and "+39.00" in report.text


# ---- properties --------------------------------------------------------------------------------
cents_st = hs.integers(-100_000, 100_000).map(lambda c: Decimal(c) / 100)
fees_st = hs.integers(0, 500).map(lambda c: Decimal(c) / 100)
fill_st = hs.builds(
    lambda tid, contract, minutes, pnl, closes, fees, voided: Fill(
        ACC, tid, contract, datetime(2026, 11, 2, tzinfo=timezone.utc) + timedelta(minutes=minutes),
        pnl if closes else None, fees, 1, 0, voided),
    hs.integers(1, 60), hs.sampled_from([MNQ, ES, "CON.F.US.MGC.Z26"]),
    hs.integers(0, 60 * 24 * 20), cents_st, hs.booleans(), fees_st,
    hs.integers(0, 4).map(lambda i: i == 0))


@settings(max_examples=150, deadline=None)
@given(hs.lists(fill_st, max_size=60), hs.randoms())
def test_properties_of_any_fill_list(fills, rnd):
    s = compute(fills)
    assert s.wins + s.losses + s.scratches == s.trades
    for breakdown in (s.by_hour, s.by_instrument, s.by_day):
        assert sum((b.net_pnl for b in breakdown.values()), Decimal(0)) == s.net_pnl
        assert sum(b.trades for b in breakdown.values()) == s.trades
    assert s.net_pnl == s.gross_profit + s.gross_loss - s.fees
    if s.gross_loss == 0:
        assert s.profit_factor is None
    elif s.gross_pnl > 0:
        assert s.profit_factor >= 1.0
    elif s.gross_pnl < 0:
        assert s.profit_factor <= 1.0
    if s.trades:
        assert 0.0 <= s.win_rate <= 100.0
    if s.largest_loss is not None:
        assert s.largest_loss <= s.average_loss < 0
    if s.largest_win is not None:
        assert s.largest_win >= s.average_win > 0
    shuffled = list(fills)
    rnd.shuffle(shuffled)
    # Order does not matter, except which copy of a repeated trade id is the latest.
    if len({(f.account_id, f.trade_id) for f in fills}) == len(fills):
        assert compute(shuffled).to_dict() == s.to_dict()
