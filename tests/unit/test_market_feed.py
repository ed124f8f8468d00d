"""The shared market data feed, piece by piece: an account's session that only reports the
contracts it needs, the gateway that joins feed quotes into the account's sequence, and the
feed's fan-out to the accounts that asked."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from risk_actors import messages as m
from risk_actors.broker.session import BrokerSession, Received
from risk_actors.broker.settings import BrokerSettings
from risk_actors.gateway import EmbeddedGateway, GatewayStart
from risk_actors.market_feed import MarketFeedActor

SETTINGS = BrokerSettings("http://127.0.0.1:1/api", "http://127.0.0.1:1/hubs/user",
                          "http://127.0.0.1:1/hubs/market", "u", "k")
T = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
MNQ, ES = "CON.F.US.MNQ.Z26", "CON.F.US.EP.Z26"


def test_session_with_external_quotes_reports_each_new_contract_once_and_subscribes_nothing():
    s = BrokerSession(7, "ACC", SETTINGS, T, quotes="external")
    try:
        s._want_quotes([MNQ])
        s._want_quotes([MNQ, ES])  # only ES is news
        s._want_quotes([ES])
        items = s.drain()
    finally:
        s._rsock.close()
        s._wsock.close()
    assert items == [m.QuotesWanted(7, (MNQ,)), m.QuotesWanted(7, (ES,))]
    assert s._quote_live == set()  # no SubscribeContractQuotes of its own


def test_session_rejects_an_unknown_quotes_mode_by_name():
    with pytest.raises(ValueError, match="quotes must be one of own, external, only, not 'both'"):
        BrokerSession(7, "ACC", SETTINGS, T, quotes="both")


class _Host:
    """Stands in for the AccountActor around an EmbeddedGateway: records what reaches it."""

    myAddress = "account-7"

    def __init__(self) -> None:
        self.got: list[Any] = []

    def receiveMsg_InboundBatch(self, msg: m.InboundBatch, sender: Any) -> None:
        self.got.extend(msg.items)

    def receiveMsg_Inbound(self, msg: m.Inbound, sender: Any) -> None:
        self.got.append(msg)

    def receiveMsg_QuotesWanted(self, msg: m.QuotesWanted, sender: Any) -> None:
        self.got.append(msg)

    def wakeupAfter(self, *_a: Any, **_k: Any) -> None:
        pass


def _gateway(host: _Host, start_seq: int = 40) -> EmbeddedGateway:
    gw = EmbeddedGateway(host)
    gw._start = GatewayStart(7, "ACC", SETTINGS, T, start_seq=start_seq, quotes="external")
    gw._parent = host.myAddress
    gw._seq = start_seq
    return gw


def test_feed_quotes_follow_the_user_events_already_received_and_none_is_dropped():
    # The price went back up (quote received by the feed first), then the trader bought: the
    # quote must still reach the rules, or the new position is priced at the old, lower level.
    host = _Host()
    gw = _gateway(host)
    fill_at = T + timedelta(milliseconds=100)
    gw._forward([Received(m.PositionEvent(7, MNQ, 2, m.POSITION_LONG, 21000.0), fill_at)])
    before_fill = m.QuoteEvent(MNQ, 21000.0, received_at=fill_at - timedelta(milliseconds=5))
    other = m.QuoteEvent(ES, 6000.0, received_at=fill_at + timedelta(milliseconds=5))

    gw.receiveMsg_FeedQuotes(m.FeedQuotes((before_fill, other)), "feed")

    assert [(i.seq, type(i.event).__name__, getattr(i.event, "last_price", None))
            for i in host.got] == [(41, "PositionEvent", None), (42, "QuoteEvent", 21000.0),
                                   (43, "QuoteEvent", 6000.0)]
    assert host.got[1].received_at == before_fill.received_at  # the feed's time, for staleness


def test_wanted_contracts_from_the_session_go_to_the_account():
    host = _Host()
    gw = _gateway(host)
    gw._forward([m.QuotesWanted(7, (MNQ,))])
    assert host.got == [m.QuotesWanted(7, (MNQ,))]


class _Feed(MarketFeedActor):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[Any, Any]] = []
        self.wanted: list[str] = []

        class _S:
            def want_quotes(s, cids):  # noqa: N805 - a stand-in session
                self.wanted.extend(cids)

            def drain(s):  # noqa: N805
                return []
        self._session = _S()

    def send(self, target: Any, msg: Any) -> None:
        self.sent.append((target, msg))


def test_feed_sends_each_account_only_the_contracts_it_asked_for():
    feed = _Feed()
    feed.receiveMsg_QuoteInterest(m.QuoteInterest(1, (MNQ,), "acc-1"), "sup")
    feed.receiveMsg_QuoteInterest(m.QuoteInterest(2, (MNQ, ES), "acc-2"), "sup")
    q_mnq = m.QuoteEvent(MNQ, 21000.0, received_at=T)
    q_es = m.QuoteEvent(ES, 6000.0, received_at=T)

    feed._forward([Received(q_mnq, T), Received(q_es, T)])

    assert feed.wanted == [MNQ, MNQ, ES]
    assert feed.sent == [("acc-1", m.FeedQuotes((q_mnq,))), ("acc-2", m.FeedQuotes((q_mnq, q_es)))]


def test_restarted_account_replaces_its_old_address_and_interest():
    feed = _Feed()
    feed.receiveMsg_QuoteInterest(m.QuoteInterest(1, (MNQ, ES), "acc-1-old"), "sup")
    feed.receiveMsg_QuoteInterest(m.QuoteInterest(1, (ES,), "acc-1-new"), "sup")
    feed._forward([Received(m.QuoteEvent(MNQ, 21000.0, received_at=T), T),
                   Received(m.QuoteEvent(ES, 6000.0, received_at=T), T)])
    assert [(t, [q.contract_id for q in msg.quotes]) for t, msg in feed.sent] == \
        [("acc-1-new", [ES])]


def test_feed_link_down_is_reported_to_the_supervisor_once():
    feed = _Feed()
    feed._parent = "sup"
    down = m.ConnectionChanged(1, False, "market hub down")
    feed._forward([Received(down, T), Received(down, T)])
    reports = [msg for _, msg in feed.sent if isinstance(msg, m.MarketFeedLink)]
    assert [(r.up, r.detail) for r in reports] == [(False, "market hub down")]


def _trade(price: float, trade_id: int = 1) -> m.TradeEvent:
    return m.TradeEvent(7, trade_id, MNQ, T, price, None, 0.0, 0, 2)


def _seen(host: _Host) -> list[tuple]:
    return [(type(i.event).__name__, getattr(i.event, "last_price", None)
             or getattr(i.event, "price", None)) for i in host.got]


def test_fill_reaching_the_rules_before_the_new_quote_becomes_the_price_and_the_late_quote_is_dropped():
    # The 004 scenario's race: MNQ was 20840; the price goes back to 21000 (the feed has it);
    # the trader buys 2 at 21000 and the fill arrives first. The position must be priced at
    # 21000, not 20840 (-$320 on a position that has lost nothing).
    host = _Host()
    gw = _gateway(host)
    t0, t1, t2 = T, T + timedelta(milliseconds=50), T + timedelta(milliseconds=52)
    gw.receiveMsg_FeedQuotes(m.FeedQuotes((m.QuoteEvent(MNQ, 20840.0, received_at=t0),)), "f")
    gw._forward([Received(_trade(21000.0), t2),
                 Received(m.PositionEvent(7, MNQ, 2, m.POSITION_LONG, 21000.0), t2)])
    gw.receiveMsg_FeedQuotes(m.FeedQuotes((m.QuoteEvent(MNQ, 21000.25, received_at=t1),)), "f")

    assert _seen(host) == [("QuoteEvent", 20840.0), ("TradeEvent", 21000.0),
                           ("QuoteEvent", 21000.0), ("PositionEvent", None)]
    assert [i.seq for i in host.got] == [41, 42, 43, 44]


def test_quote_newer_than_the_fill_is_forwarded_and_the_first_price_never_comes_from_a_fill():
    host = _Host()
    gw = _gateway(host)
    gw._forward([Received(_trade(21000.0), T)])  # no price yet: the fill does not invent one
    gw.receiveMsg_FeedQuotes(m.FeedQuotes((
        m.QuoteEvent(MNQ, 20990.0, received_at=T + timedelta(milliseconds=1)),)), "f")
    gw._forward([Received(_trade(20980.0, 2), T)])  # a fill older than that quote: no mark
    assert _seen(host) == [("TradeEvent", 21000.0), ("QuoteEvent", 20990.0),
                           ("TradeEvent", 20980.0)]


@pytest.mark.parametrize("args, payload", [
    ((MNQ, {"lastPrice": 1.0}), {"contract_id": MNQ, "data": {"lastPrice": 1.0}}),
    (([MNQ, {"lastPrice": 1.0}],), {"contract_id": MNQ, "data": {"lastPrice": 1.0}}),
    (({"symbol": MNQ, "lastPrice": 1.0},), {"contract_id": MNQ,
                                             "data": {"symbol": MNQ, "lastPrice": 1.0}}),
    (("junk",), "junk"),
    ((), []),
])
def test_gateway_quote_arguments_reach_the_session_in_the_sdks_callback_shape(args, payload):
    from risk_actors.broker.session import _quote_payload
    assert _quote_payload(args) == payload
