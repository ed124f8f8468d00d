"""REST snapshot -> ``Reconciled`` (pure: the session does the I/O).

SignalR never replays what happened while a hub was down, so after every (re)connect the
session reads the account's truth over REST (open positions, open orders, trades since the
daily-reset boundary, the account row) and hands it to the AccountActor as one ``Reconciled``
event, which *replaces* positions and orders in state and merges trades by id.

Fail closed: a malformed row fails the whole snapshot (PayloadError) rather than being skipped,
because a position silently missing from a snapshot reads as "flat" to every rule. The session
logs it and retries.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import attrs

from risk_actors import messages as m
from risk_actors.broker import parse

__all__ = ["rows", "build_reconciled", "overlay", "contract_ids", "quote_contracts",
           "find_account"]


def rows(body: Any, key: str, what: str) -> list[Any]:
    """The list under ``key`` of a gateway response body (``{"success": true, key: [...]}``).

    ``body`` None (not requested) gives no rows. A body without ``key`` is an error, not an
    empty list: "no positions key" must never read as "flat".
    """
    if body is None:
        return []  # that part of the snapshot was not asked for
    if not isinstance(body, Mapping):
        raise parse.PayloadError(what, "<body>", body, "expected a JSON object")
    if key not in body:
        raise parse.PayloadError(what, key, parse.MISSING, "missing from the answer")
    value = body[key]
    if value is None:
        return []
    if not isinstance(value, list):
        raise parse.PayloadError(what, key, value, "expected a list")
    return value


def _mine(events: Iterable[Any], account_id: int, what: str) -> list[Any]:
    out = []
    for ev in events:
        if ev.account_id != account_id:
            # A REST answer about another account means the request or the gateway is confused;
            # trusting it would apply someone else's positions to this account.
            raise parse.PayloadError(what, "accountId", ev.account_id,
                                     f"row of another account (expected {account_id})")
        out.append(ev)
    return out


def find_account(body: Any, account_id: int) -> m.AccountEvent | None:
    """This account's row of an ``Account/search`` answer (None when absent)."""
    for row in rows(body, "accounts", "Account/search"):
        ev = parse.parse_account(row)
        if ev.account_id == account_id:
            return ev
    return None


def build_reconciled(account_id: int, positions_body: Any, orders_body: Any, trades_body: Any,
                     accounts_body: Any, contracts: Iterable[m.ContractInfo] = ()
                     ) -> m.Reconciled:
    """Parse the four REST answers into a ``Reconciled`` (rows in a stable order).

    Positions are sorted by contract, orders by id, trades by (time, id): live events of one fill
    can interleave, REST rows have no defined order, and a deterministic snapshot makes the
    journal and the tests reproducible.
    """
    positions = _mine((parse.parse_position(r)
                       for r in rows(positions_body, "positions", "Position/searchOpen")),
                      account_id, "Position/searchOpen")
    orders = _mine((parse.parse_order(r) for r in rows(orders_body, "orders", "Order/searchOpen")),
                   account_id, "Order/searchOpen")
    trades = _mine((parse.parse_trade(r) for r in rows(trades_body, "trades", "Trade/search")),
                   account_id, "Trade/search")
    account = find_account(accounts_body, account_id) if accounts_body is not None else None
    return m.Reconciled(
        account_id=account_id,
        account=account,
        positions=tuple(sorted((p for p in positions if p.size > 0),
                               key=lambda p: p.contract_id)),
        orders=tuple(sorted(orders, key=lambda o: o.order_id)),
        trades=tuple(sorted(trades, key=lambda t: (t.created, t.trade_id))),
        contracts=tuple(sorted(contracts, key=lambda c: c.contract_id)),
    )


def overlay(rec: m.Reconciled, newer: Iterable[Any]) -> m.Reconciled:
    """The snapshot brought up to the hub events that arrived while it was being read.

    Those events reached the account before the snapshot does; a snapshot that replaced them
    would roll positions back in time (a reduce the hub already showed would be undone in
    state, and a rule would reduce the broker a second time). Each row a hub event touched
    takes that event's value, latest last; every other row is the REST truth. Any change the
    REST answers saw and the hub has not yet delivered arrives as a hub event after this.
    """
    positions = {p.contract_id: p for p in rec.positions}
    orders = {o.order_id: o for o in rec.orders}
    trades = {t.trade_id: t for t in rec.trades}
    account = rec.account
    touched = False
    for ev in newer:
        if getattr(ev, "account_id", rec.account_id) != rec.account_id:
            continue
        if isinstance(ev, m.PositionEvent):
            if ev.size > 0:
                positions[ev.contract_id] = ev
            else:
                positions.pop(ev.contract_id, None)
        elif isinstance(ev, m.OrderEvent):
            if ev.working:
                orders[ev.order_id] = ev
            else:
                orders.pop(ev.order_id, None)
        elif isinstance(ev, m.TradeEvent):
            trades[ev.trade_id] = ev
        elif isinstance(ev, m.AccountEvent):
            if account is None:
                continue  # the snapshot carries no account row: nothing to roll back
            # Merged as the state reducer merges an account event onto the account row.
            account = m.AccountEvent(
                account.account_id, ev.name or account.name,
                ev.balance if ev.balance is not None else account.balance, ev.can_trade)
        else:
            continue
        touched = True
    if not touched:
        return rec
    return attrs.evolve(
        rec, account=account,
        positions=tuple(sorted(positions.values(), key=lambda p: p.contract_id)),
        orders=tuple(sorted(orders.values(), key=lambda o: o.order_id)),
        trades=tuple(sorted(trades.values(), key=lambda t: (t.created, t.trade_id))))


def contract_ids(rec: m.Reconciled) -> set[str]:
    """Every contract a snapshot mentions (their ContractInfo must be known)."""
    return ({p.contract_id for p in rec.positions} | {o.contract_id for o in rec.orders}
            | {t.contract_id for t in rec.trades})


def quote_contracts(rec: m.Reconciled) -> set[str]:
    """Contracts whose quotes riskd needs: held, or with a working order."""
    return ({p.contract_id for p in rec.positions if p.size > 0}
            | {o.contract_id for o in rec.orders if o.working})
