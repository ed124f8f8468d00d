"""``AccountState`` and the one pure reducer that changes it.

Everything riskd knows about an account lives in one frozen ``AccountState``. It changes only
through :func:`reduce` (``state, change, now -> new state``), so the AccountActor, the journal
replay after a crash and the tests all go through the same code. The reducer never performs I/O
and never raises on a well-typed change: a malformed broker payload is rejected earlier, at
parsing.

Changes are the broker events of :mod:`risk_actors.messages` plus the internal ones below
(locks added, rule memory, daily reset, lock lifted).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Mapping

import attrs
import cattrs

from risk_actors import messages as m
from risk_actors.symbols import root_of


# ---------------------------------------------------------------------------------------------
# state records
@attrs.frozen
class Position:
    """Net position in one contract (the gateway nets one per contract)."""

    contract_id: str
    size: int
    type: int
    average_price: float
    position_id: int | None = None
    created: datetime | None = None

    @property
    def signed_size(self) -> int:
        return -self.size if self.type == m.POSITION_SHORT else self.size


@attrs.frozen
class WorkingOrder:
    """An order with status Open or Pending."""

    order_id: int
    contract_id: str
    type: int
    side: int
    size: int
    status: int
    symbol_id: str | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    created: datetime | None = None


@attrs.frozen
class TradeRecord:
    """A fill since the last daily reset (kept by id: REST reconciliation dedupes on it)."""

    trade_id: int
    contract_id: str
    created: datetime
    price: float
    pnl: float | None
    fees: float
    side: int
    size: int
    voided: bool = False
    order_id: int | None = None


@attrs.frozen
class Quote:
    """Latest quote of a contract; ``received_at`` is our clock, for staleness checks."""

    contract_id: str
    last_price: float | None
    best_bid: float | None = None
    best_ask: float | None = None
    timestamp: datetime | None = None
    received_at: datetime | None = None


@attrs.frozen
class Lockout:
    """One lock. Several coexist; ``key`` identifies the one a rule may extend.

    ``expires_at`` None means no expiry (010 until canTrade returns, 011 until config change).
    """

    rule: str
    kind: str
    reason: str
    started_at: datetime
    expires_at: datetime | None
    scope: str = "account"
    symbol: str | None = None
    until_reset: bool = False

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.rule, self.scope, self.symbol)

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


# The day's sums per trades mapping. Rules judging quotes on net P&L, every closing fill and the
# status ask for them on every event; re-summing a busy day's fills each time cost ~0.35 ms per
# 500 fills (bench/rule_cost.py). The reducers replace the mapping whenever a trade changes and
# never mutate it, so its identity keys the sums; each entry holds the mapping itself, so its id
# cannot be reused while the entry exists. A few entries: one process judges one account's
# states, and each state evolves from the last. Decimal sums are exact, so carrying them from
# one mapping to the next (one fill: minus the record it replaces, plus the new one) gives the
# very figure a full re-sum would.
_DAY_SUMS: dict[int, tuple[Mapping[Any, Any], Decimal, Decimal]] = {}
_DAY_SUMS_MAX = 8


def _remember_sums(trades: Mapping[Any, Any], realized: Decimal, fees: Decimal) -> None:
    if len(_DAY_SUMS) >= _DAY_SUMS_MAX:
        _DAY_SUMS.pop(next(iter(_DAY_SUMS)), None)  # least recently used (insertion order)
    _DAY_SUMS[id(trades)] = (trades, realized, fees)


def _decimal_sums(trades: Mapping[Any, "TradeRecord"]) -> tuple[Decimal, Decimal]:
    key = id(trades)
    hit = _DAY_SUMS.get(key)
    if hit is not None and hit[0] is trades:
        if next(reversed(_DAY_SUMS), None) != key:
            _DAY_SUMS.pop(key, None)  # most recently used goes last: evicted last
            _DAY_SUMS[key] = hit
        return hit[1], hit[2]
    counted = [t for t in trades.values() if not t.voided]
    realized = sum((Decimal(str(t.pnl)) for t in counted if t.pnl is not None), Decimal(0))
    fees = sum((Decimal(str(t.fees)) for t in counted), Decimal(0))
    _remember_sums(trades, realized, fees)
    return realized, fees


def _day_sums(trades: Mapping[Any, "TradeRecord"]) -> tuple[float, float]:
    """(realized P&L, fees) of the non-voided trades of ``trades``."""
    realized, fees = _decimal_sums(trades)
    return float(realized), float(fees)


def _carry_sums(old: Mapping[Any, Any], new: Mapping[Any, Any], replaced: "TradeRecord | None",
                added: "TradeRecord") -> None:
    """Sums of ``new`` (``old`` with ``added`` in place of ``replaced``) from those of ``old``."""
    # Summed in full once if nothing asked yet; from then on each fill costs O(1).
    realized, fees = _decimal_sums(old)
    for record, sign in ((replaced, -1), (added, 1)):
        if record is not None and not record.voided:
            fees += sign * Decimal(str(record.fees))
            if record.pnl is not None:
                realized += sign * Decimal(str(record.pnl))
    _remember_sums(new, realized, fees)


@attrs.frozen
class AccountState:
    """Everything riskd knows about one account. Never mutated: :func:`reduce` returns a new one."""

    account_id: int
    name: str = ""
    balance: float | None = None
    can_trade: bool | None = None
    connected: bool = False
    positions: Mapping[str, Position] = attrs.field(factory=dict)
    orders: Mapping[int, WorkingOrder] = attrs.field(factory=dict)
    trades: Mapping[int, TradeRecord] = attrs.field(factory=dict)
    quotes: Mapping[str, Quote] = attrs.field(factory=dict)
    contracts: Mapping[str, m.ContractInfo] = attrs.field(factory=dict)
    lockouts: tuple[Lockout, ...] = ()
    rule_memory: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    last_reset_at: datetime | None = None
    next_reset_at: datetime | None = None
    last_seq: int = 0
    last_event_at: datetime | None = None

    # ---- derived figures (never stored twice) -----------------------------------------------
    @property
    def realized_pnl(self) -> float:
        """Sum of ``profitAndLoss`` of the non-voided trades since the reset (fees excluded)."""
        return _day_sums(self.trades)[0]

    @property
    def fees_total(self) -> float:
        """Fees of every non-voided trade since the reset, opening half-turns included."""
        return _day_sums(self.trades)[1]

    def net_realized(self, include_fees: bool = True) -> float:
        """Daily realized P&L as the loss/profit rules count it (rules-spec section 8, fees)."""
        return round(self.realized_pnl - (self.fees_total if include_fees else 0.0), 2)

    def root(self, contract_id: str, aliases: Mapping[str, str] | None = None) -> str | None:
        """Symbol root of a contract from cached metadata (None when unknown)."""
        info = self.contracts.get(contract_id)
        symbol_id = info.symbol_id if info else None
        if symbol_id is None:
            symbol_id = next((o.symbol_id for o in self.orders.values()
                              if o.contract_id == contract_id and o.symbol_id), None)
        return root_of(contract_id, info.name if info else None, symbol_id, aliases)

    def active_lockouts(self, now: datetime) -> tuple[Lockout, ...]:
        return tuple(lk for lk in self.lockouts if lk.active(now))

    def account_locked(self, now: datetime) -> bool:
        return any(lk.scope == "account" for lk in self.active_lockouts(now))

    def symbol_locked(self, root: str | None, now: datetime) -> bool:
        if root is None:
            return False
        return any(lk.scope == "symbol" and (lk.symbol or "").upper() == root.upper()
                   for lk in self.active_lockouts(now))

    def locked_for(self, contract_id: str, now: datetime) -> bool:
        """True when a new exposure in this contract must be undone at once."""
        return self.account_locked(now) or self.symbol_locked(self.root(contract_id), now)

    def lock_expiry(self, now: datetime) -> datetime | None:
        """When the account lock ends: the latest expiry wins; None = no expiry or not locked."""
        locks = [lk for lk in self.active_lockouts(now) if lk.scope == "account"]
        if not locks or any(lk.expires_at is None for lk in locks):
            return None
        return max(lk.expires_at for lk in locks)

    def next_deadline(self) -> datetime | None:
        """Earliest time something changes by itself (lock expiry, reset): the next timer."""
        times = [lk.expires_at for lk in self.lockouts if lk.expires_at is not None]
        if self.next_reset_at is not None:
            times.append(self.next_reset_at)
        return min(times) if times else None

    def unrealized(self, contract_id: str) -> float | None:
        """Unrealized P&L of one position at its latest quote; None when quote or metadata lack."""
        pos = self.positions.get(contract_id)
        quote = self.quotes.get(contract_id)
        info = self.contracts.get(contract_id)
        if pos is None or quote is None or quote.last_price is None or info is None:
            return None
        return unrealized_pnl(pos.average_price, quote.last_price, pos.signed_size,
                              info.tick_size, info.tick_value)


def unrealized_pnl(average_price: float, price: float, signed_size: int, tick_size: float,
                   tick_value: float) -> float:
    """(price - average) / tickSize x tickValue x size, signed by side, exact to the cent."""
    ticks = (Decimal(str(price)) - Decimal(str(average_price))) / Decimal(str(tick_size))
    return float(round(ticks * Decimal(str(tick_value)) * signed_size, 2))


# ---------------------------------------------------------------------------------------------
# internal changes (not from the broker)
@attrs.frozen
class LocksAdded:
    """Apply locks from verdicts; extending only (nothing shortens an active lock)."""

    rule: str
    locks: tuple[m.Lock, ...]


@attrs.frozen
class LockLifted:
    """Lift a lock where the spec allows it (010 canTrade back, 011 symbol removed from config)."""

    rule: str
    symbol: str | None = None


@attrs.frozen
class RuleMemorySet:
    """Replace one rule's memory (a trailing stop's high-water mark, a grace deadline)."""

    rule: str
    memory: Mapping[str, Any]


@attrs.frozen
class DailyReset:
    """The trading day rolled over at ``at``; the next one is at ``next_reset_at``."""

    at: datetime
    next_reset_at: datetime


@attrs.frozen
class ResetScheduled:
    """Set the next reset time without resetting (start-up, config reload)."""

    next_reset_at: datetime
    last_reset_at: datetime | None = None


Change = Any  # any broker event of messages.py or an internal change above


# ---------------------------------------------------------------------------------------------
# the reducer
def reduce(state: AccountState, change: Change, now: datetime) -> AccountState:
    """Return the state after ``change`` at ``now``. Pure; the only place state changes."""
    handler = _HANDLERS.get(type(change))
    if handler is None:
        return state
    new = handler(state, change, now)
    return _expire_locks(new, now)


def _position(state: AccountState, ev: m.PositionEvent, now: datetime) -> AccountState:
    positions = dict(state.positions)
    if ev.size <= 0:
        positions.pop(ev.contract_id, None)
    else:
        positions[ev.contract_id] = Position(ev.contract_id, ev.size, ev.type, ev.average_price,
                                             ev.position_id, ev.created)
    return attrs.evolve(state, positions=positions, last_event_at=now)


def _order(state: AccountState, ev: m.OrderEvent, now: datetime) -> AccountState:
    orders = dict(state.orders)
    if ev.working:
        orders[ev.order_id] = _working(ev)
    else:
        orders.pop(ev.order_id, None)
    return attrs.evolve(state, orders=orders, last_event_at=now)


def _working(ev: m.OrderEvent) -> WorkingOrder:
    return WorkingOrder(ev.order_id, ev.contract_id, ev.type, ev.side, ev.size, ev.status,
                        ev.symbol_id, ev.limit_price, ev.stop_price, ev.created)


def _trade_record(ev: m.TradeEvent) -> TradeRecord:
    return TradeRecord(ev.trade_id, ev.contract_id, ev.created, ev.price, ev.pnl, ev.fees,
                       ev.side, ev.size, ev.voided, ev.order_id)


def _counts_today(state: AccountState, created: datetime) -> bool:
    # Trades from before the last reset belong to a finished trading day.
    return state.last_reset_at is None or created >= state.last_reset_at


def _trade(state: AccountState, ev: m.TradeEvent, now: datetime) -> AccountState:
    if not _counts_today(state, ev.created):
        return attrs.evolve(state, last_event_at=now)
    trades = dict(state.trades)
    # A voided trade replaces the counted one, so its P&L drops out of the daily figure.
    record = _trade_record(ev)
    replaced = trades.get(ev.trade_id)
    trades[ev.trade_id] = record
    _carry_sums(state.trades, trades, replaced, record)
    return attrs.evolve(state, trades=trades, last_event_at=now)


def _account(state: AccountState, ev: m.AccountEvent, now: datetime) -> AccountState:
    return attrs.evolve(state, name=ev.name or state.name,
                        balance=ev.balance if ev.balance is not None else state.balance,
                        can_trade=ev.can_trade, last_event_at=now)


def _quote(state: AccountState, ev: m.QuoteEvent, now: datetime) -> AccountState:
    old = state.quotes.get(ev.contract_id)
    # Quotes may be partial: keep the fields this one lacks from the last one.
    quote = Quote(
        ev.contract_id,
        ev.last_price if ev.last_price is not None else (old.last_price if old else None),
        ev.best_bid if ev.best_bid is not None else (old.best_bid if old else None),
        ev.best_ask if ev.best_ask is not None else (old.best_ask if old else None),
        ev.timestamp or (old.timestamp if old else None),
        ev.received_at or now)
    quotes = dict(state.quotes)
    quotes[ev.contract_id] = quote
    return attrs.evolve(state, quotes=quotes)


def _contracts(state: AccountState, ev: m.ContractsKnown, now: datetime) -> AccountState:
    return attrs.evolve(state, contracts={**state.contracts,
                                          **{c.contract_id: c for c in ev.contracts}})


def _reconciled(state: AccountState, ev: m.Reconciled, now: datetime) -> AccountState:
    positions = {p.contract_id: Position(p.contract_id, p.size, p.type, p.average_price,
                                         p.position_id, p.created)
                 for p in ev.positions if p.size > 0}
    orders = {o.order_id: _working(o) for o in ev.orders if o.working}
    trades = dict(state.trades)
    for t in ev.trades:
        if _counts_today(state, t.created):
            trades[t.trade_id] = _trade_record(t)  # REST is truth: same id replaces
    new = attrs.evolve(state, positions=positions, orders=orders, trades=trades,
                       contracts={**state.contracts, **{c.contract_id: c for c in ev.contracts}},
                       last_event_at=now)
    if ev.account is not None:
        new = _account(new, ev.account, now)
    return new


def _connection(state: AccountState, ev: m.ConnectionChanged, now: datetime) -> AccountState:
    return attrs.evolve(state, connected=ev.connected)


def _locks_added(state: AccountState, ev: LocksAdded, now: datetime) -> AccountState:
    lockouts = list(state.lockouts)
    for lock in ev.locks:
        new = Lockout(ev.rule, lock.kind, lock.reason, now, lock.expires_at, lock.scope,
                      lock.symbol.upper() if lock.symbol else None, lock.until_reset)
        for i, old in enumerate(lockouts):
            if old.key == new.key and old.active(now):
                # Nothing shortens an active lock: keep the later expiry (None = none).
                if old.expires_at is None or (new.expires_at is not None
                                              and new.expires_at <= old.expires_at):
                    expires = old.expires_at
                else:
                    expires = new.expires_at
                lockouts[i] = attrs.evolve(old, expires_at=expires, reason=new.reason,
                                           until_reset=old.until_reset and new.until_reset)
                break
        else:
            lockouts.append(new)
    return attrs.evolve(state, lockouts=tuple(lockouts))


def _lock_lifted(state: AccountState, ev: LockLifted, now: datetime) -> AccountState:
    keep = tuple(lk for lk in state.lockouts
                 if not (lk.rule == ev.rule and (ev.symbol is None
                                                 or (lk.symbol or "") == ev.symbol.upper())))
    return attrs.evolve(state, lockouts=keep)


def _memory(state: AccountState, ev: RuleMemorySet, now: datetime) -> AccountState:
    memory = dict(state.rule_memory)
    if ev.memory:
        memory[ev.rule] = dict(ev.memory)
    else:
        memory.pop(ev.rule, None)
    return attrs.evolve(state, rule_memory=memory)


def _daily_reset(state: AccountState, ev: DailyReset, now: datetime) -> AccountState:
    # Cooldowns, symbol locks and 009/010 locks are independent of the trading day.
    lockouts = tuple(lk for lk in state.lockouts if not lk.until_reset)
    return attrs.evolve(state, trades={}, lockouts=lockouts, last_reset_at=ev.at,
                        next_reset_at=ev.next_reset_at)


def _reset_scheduled(state: AccountState, ev: ResetScheduled, now: datetime) -> AccountState:
    return attrs.evolve(state, next_reset_at=ev.next_reset_at,
                        last_reset_at=ev.last_reset_at or state.last_reset_at)


def _tick(state: AccountState, ev: m.Tick, now: datetime) -> AccountState:
    return state  # expiry of locks happens for every change, below


def _expire_locks(state: AccountState, now: datetime) -> AccountState:
    if all(lk.active(now) for lk in state.lockouts):
        return state
    return attrs.evolve(state, lockouts=state.active_lockouts(now))


_HANDLERS = {
    m.PositionEvent: _position, m.OrderEvent: _order, m.TradeEvent: _trade,
    m.AccountEvent: _account, m.QuoteEvent: _quote, m.ContractsKnown: _contracts,
    m.Reconciled: _reconciled, m.ConnectionChanged: _connection, m.Tick: _tick,
    LocksAdded: _locks_added, LockLifted: _lock_lifted, RuleMemorySet: _memory,
    DailyReset: _daily_reset, ResetScheduled: _reset_scheduled,
}


def reduce_all(state: AccountState, changes: Iterable[tuple[Change, datetime]]) -> AccountState:
    """Fold a journal of ``(change, at)`` pairs onto a snapshot (crash recovery)."""
    for change, at in changes:
        state = reduce(state, change, at)
    return state


# ---------------------------------------------------------------------------------------------
# persistence: state and changes to JSON-able dicts through cattrs
converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_unstructure_hook(datetime, lambda d: d.isoformat())
converter.register_structure_hook(datetime, lambda v, _: _parse_dt(v))


def _parse_dt(v: Any) -> datetime:
    dt = datetime.fromisoformat(v) if isinstance(v, str) else v
    if not isinstance(dt, datetime):
        raise ValueError(f"not a datetime: {v!r}")
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def state_to_dict(state: AccountState) -> dict:
    """JSON-able form of a state snapshot (quotes dropped: they are rebuilt, not persisted)."""
    return converter.unstructure(attrs.evolve(state, quotes={}))


def state_from_dict(data: Mapping[str, Any]) -> AccountState:
    return converter.structure(dict(data), AccountState)


_CHANGE_TYPES = {cls.__name__: cls for cls in _HANDLERS}


def change_to_dict(change: Change) -> dict:
    """JSON-able journal entry ``{"type": ..., "data": ...}`` for a change."""
    return {"type": type(change).__name__, "data": converter.unstructure(change)}


def change_from_dict(entry: Mapping[str, Any]) -> Change:
    cls = _CHANGE_TYPES.get(entry.get("type"))
    if cls is None:
        raise ValueError(f"unknown journal change type {entry.get('type')!r}")
    return converter.structure(entry["data"], cls)
