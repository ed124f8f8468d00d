"""Property tests of risk_actors.broker.parse.

1. Arbitrary JSON (and arbitrary mutations of valid payloads) never raises anything but
   PayloadError: the session relies on this to log-and-drop instead of crashing.
2. Valid payloads round-trip: payload -> event -> payload gives the same field values.
"""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings, strategies as st

from risk_actors.broker import parse as p

UTC = timezone.utc

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats()
                | st.text(max_size=30))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30)

ids = st.integers(min_value=0, max_value=p.MAX_ID)
sizes = st.integers(min_value=0, max_value=p.MAX_SIZE)
prices = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
money = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
texts = st.text(min_size=1, max_size=40).filter(lambda s: s.strip())
stamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                      timezones=st.just(UTC))


def iso(dt: datetime) -> str:
    return dt.isoformat()


positions = st.builds(
    lambda pid, acc, cid, ts, typ, size, avg: {
        "id": pid, "accountId": acc, "contractId": cid, "creationTimestamp": iso(ts),
        "type": typ, "size": size, "averagePrice": avg},
    ids, ids, texts, stamps, st.sampled_from([1, 2]), sizes, prices)
orders = st.builds(
    lambda oid, acc, cid, sym, ts, ts2, status, typ, side, size, lim, stop, fv, fp, tag: {
        "id": oid, "accountId": acc, "contractId": cid, "symbolId": sym,
        "creationTimestamp": iso(ts), "updateTimestamp": iso(ts2), "status": status,
        "type": typ, "side": side, "size": size, "limitPrice": lim, "stopPrice": stop,
        "fillVolume": fv, "filledPrice": fp, "customTag": tag},
    ids, ids, texts, texts, stamps, stamps, st.integers(0, 6), st.integers(0, 7),
    st.integers(0, 1), sizes, st.none() | prices, st.none() | prices, sizes,
    st.none() | prices, st.none() | texts)
trades = st.builds(
    lambda tid, acc, cid, ts, price, pnl, fees, side, size, voided, oid: {
        "id": tid, "accountId": acc, "contractId": cid, "creationTimestamp": iso(ts),
        "price": price, "profitAndLoss": pnl, "fees": fees, "side": side, "size": size,
        "voided": voided, "orderId": oid},
    ids, ids, texts, stamps, prices, st.none() | money, money, st.integers(0, 1),
    st.integers(1, p.MAX_SIZE), st.booleans(), st.none() | ids)
accounts = st.builds(
    lambda aid, name, bal, ct: {"id": aid, "name": name, "balance": bal, "canTrade": ct},
    ids, texts, money, st.booleans())

PARSERS = {"position": p.parse_position, "order": p.parse_order, "trade": p.parse_trade,
           "account": p.parse_account, "contract": p.parse_contract}


def only_payload_errors(fn, *args):
    try:
        result = fn(*args)
        if hasattr(result, "__next__"):
            list(result)
    except p.PayloadError:
        pass


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_raises_only_payload_error(value):
    for fn in PARSERS.values():
        only_payload_errors(fn, value)
    for cb in p.USER_PARSERS:
        only_payload_errors(p.parse_user_event, cb, value)
    only_payload_errors(p.parse_quote, "CON.F.US.MNQ.Z26", value)
    only_payload_errors(p.parse_quote, value, value)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["position", "order", "trade", "account"]), st.data())
def test_mutated_valid_payload_raises_only_payload_error(kind, data):
    """Valid payloads with one field replaced by arbitrary JSON: the realistic attack surface."""
    base = data.draw({"position": positions, "order": orders, "trade": trades,
                      "account": accounts}[kind])
    key = data.draw(st.sampled_from(sorted(base)))
    base[key] = data.draw(json_values)
    only_payload_errors(PARSERS[kind], base)
    only_payload_errors(PARSERS[kind], {"action": 1, "data": base})


@settings(max_examples=200, deadline=None)
@given(positions)
def test_position_round_trip(payload):
    ev = p.parse_position(payload)
    assert (ev.position_id, ev.account_id, ev.contract_id, ev.type, ev.size, ev.average_price) \
        == (payload["id"], payload["accountId"], payload["contractId"], payload["type"],
            payload["size"], payload["averagePrice"])
    assert ev.created.isoformat() == payload["creationTimestamp"]
    assert list(p.parse_user_event("position_update", {"action": 1, "data": payload})) == [ev]


@settings(max_examples=200, deadline=None)
@given(orders)
def test_order_round_trip(payload):
    ev = p.parse_order(payload)
    back = {"id": ev.order_id, "accountId": ev.account_id, "contractId": ev.contract_id,
            "symbolId": ev.symbol_id, "creationTimestamp": iso(ev.created),
            "updateTimestamp": iso(ev.updated), "status": ev.status, "type": ev.type,
            "side": ev.side, "size": ev.size, "limitPrice": ev.limit_price,
            "stopPrice": ev.stop_price, "fillVolume": ev.fill_volume,
            "filledPrice": ev.filled_price, "customTag": ev.custom_tag}
    assert back == payload
    assert p.parse_order(back) == ev


@settings(max_examples=200, deadline=None)
@given(trades)
def test_trade_round_trip(payload):
    ev = p.parse_trade(payload)
    back = {"id": ev.trade_id, "accountId": ev.account_id, "contractId": ev.contract_id,
            "creationTimestamp": iso(ev.created), "price": ev.price,
            "profitAndLoss": ev.pnl, "fees": ev.fees, "side": ev.side, "size": ev.size,
            "voided": ev.voided, "orderId": ev.order_id}
    assert back == payload


@settings(max_examples=100, deadline=None)
@given(accounts)
def test_account_round_trip(payload):
    ev = p.parse_account(payload)
    assert {"id": ev.account_id, "name": ev.name, "balance": ev.balance,
            "canTrade": ev.can_trade} == payload
