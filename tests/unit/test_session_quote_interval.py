"""BrokerSession's quote interval: at thousands of quotes a second the owner is woken at most
once per interval, with the latest quote of each contract; other events are never held."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from risk_actors import messages as m
from risk_actors.broker.session import BrokerSession, Received
from risk_actors.broker.settings import BrokerSettings

SETTINGS = BrokerSettings("http://127.0.0.1:1/api", "http://127.0.0.1:1/hubs/user",
                          "http://127.0.0.1:1/hubs/market", "u", "k")
T = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


def _session(interval: float) -> BrokerSession:
    return BrokerSession(1, "ACC", SETTINGS, T, quote_interval=interval)


def _quotes(items) -> list[tuple[str, float]]:
    return [(i.event.contract_id, i.event.last_price) for i in items
            if isinstance(i, Received) and isinstance(i.event, m.QuoteEvent)]


def test_burst_of_1000_quotes_on_2_contracts_then_first_at_once_and_latest_after_interval():
    s = _session(0.05)
    loop = asyncio.new_event_loop()
    s._loop = loop
    try:
        async def burst():
            for i in range(1000):
                cid = "A" if i % 2 == 0 else "B"
                s._hold_quote(m.QuoteEvent(cid, 100.0 + i), T)
            first = _quotes(s.drain())
            await asyncio.sleep(0.12)
            return first, _quotes(s.drain())
        first, later = loop.run_until_complete(burst())
    finally:
        loop.close()
        s._rsock.close()
        s._wsock.close()
    assert first == [("A", 100.0)]                  # after a quiet spell: no added delay
    assert sorted(later) == [("A", 1098.0), ("B", 1099.0)]  # then the newest of each contract


def test_quote_held_when_a_position_event_comes_then_quote_delivered_first():
    s = _session(0.05)
    loop = asyncio.new_event_loop()
    s._loop = loop
    try:
        s._hold_quote(m.QuoteEvent("MNQ", 21000.0), T)    # goes at once (quiet before)
        s._hold_quote(m.QuoteEvent("MNQ", 20900.0), T)    # held: inside the interval
        s._emit_event(m.PositionEvent(1, "MNQ", 2, m.POSITION_LONG, 20900.0), T)
        items = [i.event for i in s.drain() if isinstance(i, Received)]
    finally:
        loop.close()
        s._rsock.close()
        s._wsock.close()
    # drain() keeps the newest quote per contract, at its own place: before the position
    assert [type(e).__name__ for e in items] == ["QuoteEvent", "PositionEvent"]
    assert items[0].last_price == 20900.0


def test_interval_zero_then_every_quote_passes():
    s = _session(0.0)
    s._loop = asyncio.new_event_loop()
    try:
        for i in range(5):
            s._hold_quote(m.QuoteEvent("A", float(i)), T)
        # drain() coalesces a batch to the newest per contract; the wake-ups were not held
        assert s.stats["events"] == 5
    finally:
        s._loop.close()
        s._rsock.close()
        s._wsock.close()


def test_drain_coalescing_when_quotes_around_a_position_then_each_side_keeps_its_newest():
    q = lambda p: Received(m.QuoteEvent("MNQ", p), T)  # noqa: E731
    pos = Received(m.PositionEvent(1, "MNQ", 2, m.POSITION_LONG, 20900.0), T)
    out = BrokerSession._coalesce([q(21000.0), q(20900.0), pos, q(20950.0), q(20940.0)])
    # the position is judged against 20900 (what had arrived before it), never 21000 nor a
    # price from after it; the burst after it ends at its newest
    assert [(type(i.event).__name__, getattr(i.event, "last_price", None)) for i in out] == [
        ("QuoteEvent", 20900.0), ("PositionEvent", None), ("QuoteEvent", 20940.0)]
