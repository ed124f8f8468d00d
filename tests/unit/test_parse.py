"""Examples of gateway payloads -> riskd events (risk_actors.broker.parse)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from risk_actors import messages as m
from risk_actors.broker import parse as p

UTC = timezone.utc

POSITION = {"id": 7, "accountId": 42, "contractId": "CON.F.US.MNQ.Z26",
            "creationTimestamp": "2026-03-02T14:30:00.123456+00:00", "type": 1, "size": 2,
            "averagePrice": 21000.25}
ORDER = {"id": 36598, "accountId": 42, "contractId": "CON.F.US.EP.U25", "symbolId": "F.US.EP",
         "creationTimestamp": "2025-07-18T21:00:01.268009+00:00",
         "updateTimestamp": "2025-07-18T21:00:01.2680091Z", "status": 2, "type": 2, "side": 0,
         "size": 1, "limitPrice": None, "stopPrice": None, "fillVolume": 1,
         "filledPrice": 6335.25, "customTag": None}
TRADE = {"id": 8604, "accountId": 42, "contractId": "CON.F.US.EP.H25",
         "creationTimestamp": "2025-01-21T16:13:52.523293+00:00", "price": 6065.25,
         "profitAndLoss": None, "fees": 1.4, "side": 1, "size": 1, "voided": False,
         "orderId": 14328}
ACCOUNT = {"id": 42, "name": "50KTC-V2-1", "balance": 50123.5, "canTrade": True,
           "isVisible": True, "simulated": True}
CONTRACT = {"id": "CON.F.US.MNQ.Z26", "name": "MNQZ6", "description": "Micro E-mini Nasdaq",
            "tickSize": 0.25, "tickValue": 0.5, "activeContract": True, "symbolId": "F.US.MNQ"}


def test_position_bare():
    ev = p.parse_position(POSITION)
    assert ev == m.PositionEvent(42, "CON.F.US.MNQ.Z26", 2, m.POSITION_LONG, 21000.25, 7,
                                 datetime(2026, 3, 2, 14, 30, 0, 123456, tzinfo=UTC))
    assert ev.signed_size == 2


def test_position_closed_needs_no_type_or_price():
    ev = p.parse_position({"accountId": 42, "contractId": "C", "size": 0, "type": 0,
                           "averagePrice": None})
    assert ev.size == 0 and ev.average_price == 0.0 and ev.type == 0


def test_open_position_with_undefined_type_is_refused():
    with pytest.raises(p.PayloadError, match=r"GatewayUserPosition\.type=0"):
        p.parse_position({**POSITION, "type": 0})


def test_order_fields_and_enums():
    ev = p.parse_order(ORDER)
    assert (ev.order_id, ev.status, ev.type, ev.side, ev.fill_volume) == (36598, 2, 2, 0, 1)
    assert ev.filled_price == 6335.25 and ev.limit_price is None and ev.custom_tag is None
    assert ev.updated == datetime(2025, 7, 18, 21, 0, 1, 268009, tzinfo=UTC)
    assert not ev.working
    assert p.parse_order({**ORDER, "status": 6}).working


def test_trade_half_turn_and_closing():
    ev = p.parse_trade(TRADE)
    assert ev.pnl is None and ev.fees == 1.4 and ev.order_id == 14328 and not ev.voided
    assert p.parse_trade({**TRADE, "profitAndLoss": -12.5}).pnl == -12.5


def test_account():
    assert p.parse_account(ACCOUNT) == m.AccountEvent(42, "50KTC-V2-1", 50123.5, True)
    assert p.parse_account({"id": 42}) == m.AccountEvent(42, "", None, None)


def test_contract():
    c = p.parse_contract(CONTRACT)
    assert c == m.ContractInfo("CON.F.US.MNQ.Z26", "MNQZ6", 0.25, 0.5, "F.US.MNQ",
                               "Micro E-mini Nasdaq")


@pytest.mark.parametrize("wrapped", [
    {"action": 1, "data": POSITION},
    [POSITION],
    [{"action": 1, "data": POSITION}],
    {"action": 1, "data": [POSITION]},
])
def test_wrappers(wrapped):
    events = list(p.parse_user_event("position_update", wrapped))
    assert events == [p.parse_position(POSITION)]


def test_list_yields_good_items_before_the_bad_one():
    it = p.parse_user_event("order_update", [ORDER, {**ORDER, "side": 7}])
    assert next(it).order_id == 36598
    with pytest.raises(p.PayloadError, match=r"side=7"):
        next(it)


@pytest.mark.parametrize("field,value,match", [
    ("size", -1, "out of range"),
    ("size", 10**30, "out of range"),
    ("size", True, "boolean"),
    ("size", "2", "expected an integer"),
    ("size", 1.5, "expected an integer"),
    ("averagePrice", math.nan, "finite"),
    ("averagePrice", math.inf, "finite"),
    ("averagePrice", 10**400, "too large"),
    ("averagePrice", 1e300, "magnitude"),
    ("accountId", None, "required"),
    ("contractId", "", "empty"),
    ("contractId", 5, "string"),
    ("creationTimestamp", "yesterday", "ISO-8601"),
    ("creationTimestamp", 1700000000, "ISO-8601"),
    ("type", 9, "unknown enum"),
])
def test_malformed_position_names_field_and_value(field, value, match):
    with pytest.raises(p.PayloadError, match=match) as info:
        p.parse_position({**POSITION, field: value})
    assert info.value.field == field
    assert f"GatewayUserPosition.{field}=" in str(info.value)


def test_missing_field_is_named():
    payload = dict(ORDER)
    del payload["status"]
    with pytest.raises(p.PayloadError) as info:
        p.parse_order(payload)
    assert info.value.field == "status" and "MISSING" in str(info.value)


@pytest.mark.parametrize("payload", [None, 3, "x", [[ORDER]], {"action": 1, "data": 5}])
def test_not_an_object(payload):
    with pytest.raises(p.PayloadError):
        list(p.parse_user_event("order_update", payload))


def test_integral_float_is_accepted_as_int():
    assert p.parse_order({**ORDER, "size": 3.0}).size == 3


def test_naive_timestamp_is_utc_and_offsets_convert():
    assert p.parse_trade({**TRADE, "creationTimestamp": "2025-01-21T10:00:00"}).created == \
        datetime(2025, 1, 21, 10, tzinfo=UTC)
    assert p.parse_trade({**TRADE, "creationTimestamp": "2025-01-21T10:00:00-06:00"}).created \
        == datetime(2025, 1, 21, 16, tzinfo=UTC)


def test_quote_and_merger():
    t = datetime(2026, 1, 1, tzinfo=UTC)
    merger = p.QuoteMerger()
    q1 = merger.merge(p.parse_quote("CON.F.US.MNQ.Z26", {
        "symbol": "F.US.MNQ", "lastPrice": 21000.0, "bestBid": 20999.75, "bestAsk": 21000.25,
        "timestamp": "2026-01-01T00:00:00Z"}, t))
    q2 = merger.merge(p.parse_quote("CON.F.US.MNQ.Z26", {"bestBid": 21000.0}, t))
    assert (q2.last_price, q2.best_bid, q2.best_ask) == (21000.0, 21000.0, 21000.25)
    assert q2.timestamp == q1.timestamp and q2.received_at == t
    with pytest.raises(p.PayloadError, match="contractId"):
        p.parse_quote(None, {"lastPrice": 1.0})
    with pytest.raises(p.PayloadError, match="lastPrice"):
        p.parse_quote("C", {"lastPrice": math.nan})


def test_contract_requires_positive_ticks():
    with pytest.raises(p.PayloadError, match="tickSize"):
        p.parse_contract({**CONTRACT, "tickSize": 0})


def test_error_message_truncates_huge_values():
    with pytest.raises(p.PayloadError) as info:
        p.parse_order({**ORDER, "contractId": "x" * 10_000})
    assert len(str(info.value)) < 300
