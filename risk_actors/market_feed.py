"""``MarketFeedActor``: the daemon's one market data connection (``daemon.market_data: shared``).

A quote is the same for every account, but with one market hub per account every quote is
parsed once per account: at 10 accounts and 2,000 quotes/s that is 20,000 parses a second on a
2-core machine, the load that made enforcements late (docs/performance.md). The feed parses each
quote once and hands every account the latest quote of the contracts it asked for, at most once
per ``quote_interval_ms`` per contract (the coalescing the broker session already does).

Started by the Supervisor with a ``GatewayStart(quotes="only")``: it logs in as the first
watched account (a login is per user; the market hub is not per account) and subscribes the
union of the accounts' wanted contracts. Accounts tell the Supervisor what they want
(``QuoteInterest``); the Supervisor forwards it with the account's address and replays all of it
to a restarted feed. The accounts' own sessions then subscribe no quotes (``quotes="external"``).

Everything else is the GatewayActor's machinery: the SDK thread, the socketpair watch and its
heartbeat, the restart of a dead session thread, exiting when the parent's process is gone.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import attrs
from loguru import logger

from risk_actors import messages as m
from risk_actors.gateway import GatewayActor

__all__ = ["MarketFeedActor", "add_interest"]


def add_interest(table: dict[int, tuple[Any, set[str]]], account_id: int, address: Any,
                 contract_ids: Any) -> None:
    """Record that the account at ``address`` wants these contracts' quotes (the feed's table
    and the Supervisor's copy for a restarted feed). A new address is a restarted account: it
    asks afresh, so its old contracts are dropped."""
    old, wanted = table.get(account_id, (None, set()))
    if old != address:
        wanted = set()
    wanted.update(contract_ids)
    table[account_id] = (address, wanted)


class MarketFeedActor(GatewayActor):
    """One shared market hub connection fanning quotes out to the accounts that want them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # account id -> (its AccountActor's address, contracts it wants). Addresses are not
        # hashable in thespian, hence the account id as key.
        self.subscribers: dict[int, tuple[Any, set[str]]] = {}
        self.link_up: bool | None = None

    def receiveMsg_QuoteInterest(self, msg: m.QuoteInterest, sender: Any) -> None:
        if msg.subscriber is None:
            logger.warning("market feed: QuoteInterest of account {} without an address",
                           msg.account_id)
            return
        add_interest(self.subscribers, msg.account_id, msg.subscriber, msg.contract_ids)
        if self._session is not None:
            self._session.want_quotes(msg.contract_ids)

    def _open_session(self) -> None:
        super()._open_session()
        if self._session is not None:  # a rebuilt session subscribes everything again
            wanted = set().union(*(w for _, w in self.subscribers.values()))
            if wanted:
                self._session.want_quotes(sorted(wanted))

    def _forward(self, items: list[Any]) -> None:
        from risk_actors.broker import logs
        from risk_actors.broker.session import Received

        quotes: list[m.QuoteEvent] = []
        for item in items:
            if isinstance(item, Received):
                ev = item.event
                if isinstance(ev, m.QuoteEvent):
                    quotes.append(ev if ev.received_at is not None else
                                  _stamped(ev, item.received_at))
                elif isinstance(ev, m.ConnectionChanged):
                    self._link(ev)
            elif isinstance(item, logs.LogRecord):
                logs.emit_to_loguru(item)
        if quotes:
            self._fan_out(quotes)

    def _fan_out(self, quotes: list[m.QuoteEvent]) -> None:
        for _aid, (address, wanted) in self.subscribers.items():
            mine = tuple(q for q in quotes if q.contract_id in wanted)
            if mine:
                self.send(address, m.FeedQuotes(mine))

    def _link(self, ev: m.ConnectionChanged) -> None:
        if ev.connected == self.link_up:
            return
        self.link_up = ev.connected
        (logger.info if ev.connected else logger.warning)(
            "market feed {}: {}", "up" if ev.connected else "down", ev.detail)
        if self._parent is not None:
            self.send(self._parent, m.MarketFeedLink(ev.connected, ev.detail,
                                                     datetime.now(timezone.utc)))


def _stamped(quote: m.QuoteEvent, at: datetime) -> m.QuoteEvent:
    return attrs.evolve(quote, received_at=at)
