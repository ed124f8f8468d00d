"""Matching engine of the loopback ProjectX Gateway simulator: pure, synchronous, no I/O.

The engine holds accounts, orders, positions, trades and one last price per contract, and
returns every change as a list of `Emitted` events shaped like the gateway's SignalR user-hub
payloads (camelCase keys, ISO-8601 UTC timestamps from the injected `SimClock`). The HTTP/SignalR
server decides how to deliver them; the engine never does I/O.

Enums are the gateway's: side 0 buy / 1 sell; order type 1 Limit, 2 Market, 3 StopLimit, 4 Stop,
5 TrailingStop; status 1 Open, 2 Filled, 3 Cancelled; position type 1 Long, 2 Short.

Event order (the real gateway's is undocumented; this one is fixed so tests can rely on it)
------------------------------------------------------------------------------------------
Each fill emits, in this order:

1. `GatewayUserOrder`     status 1 (Open), the order as it stood just before the fill
2. `GatewayUserTrade`     the execution; `profitAndLoss` null when it only opens/adds
3. `GatewayUserOrder`     status 2 (Filled), with `fillVolume` and `filledPrice`
4. `GatewayUserPosition`  new size and average price; size 0 when the fill made it flat
5. `GatewayUserAccount`   only when the balance changed (fees or realized P&L)

then the consequences of that fill, in this order:

6. `GatewayUserOrder` status 3 for the OCO sibling when a bracket child filled
7. `GatewayUserOrder` status 3 for every bracket child still open on that account and contract
   when the fill left the position flat (a stale stop must not open a new position)
8. `GatewayUserOrder` status 1 for the stop-loss child, then the take-profit child, of an entry
   with brackets (none when the entry left the position flat)

Placing a resting order emits only `GatewayUserOrder` status 1; cancelling emits status 3;
modifying emits status 1 with the new values (if that made the order marketable, the event is the
first of its fill sequence). A trailing stop whose trigger ratchets emits `GatewayUserOrder` status 1 with the new
`stopPrice`. `set_price` processes triggered orders in order-id order (each fill's events
complete before the next) and emits `GatewayQuote` last. Several events from one call share one
timestamp: the clock is read once per call.

Fill rules
----------
- Market orders, and limit orders that are marketable when placed or modified, fill at the last
  price (no spread, no slippage, no partial fills).
- A resting buy limit fills at its limit price once the last price is <= limit (sell: >=).
- A stop triggers once the last price crosses it (buy: >= stop, sell: <= stop) and fills at that
  last price, so a gap fills beyond the stop. A stop already crossed when placed is rejected.
- A stop-limit, once triggered, becomes a limit: it fills at the last price if that is within the
  limit at the trigger, otherwise it rests and later fills at its limit price.
- A trailing stop's `trailPrice` is a distance in price units. Its trigger starts at
  last - trail (sell) or last + trail (buy) and only ever ratchets toward the market as the
  best price since placement improves; `stopPrice` in payloads is the current trigger.
- Brackets (`stopLossBracket`/`takeProfitBracket` = {ticks, type}) create child orders for the
  entry's size once the entry fills: stop loss `ticks` away on the losing side (type 4 Stop or 5
  TrailingStop), take profit `ticks` away on the winning side (type 1 Limit). The sign of `ticks`
  is ignored. Children are OCO: one filling cancels the other.
- Positions are netted per account and contract at an average price. A fill against the position
  realizes P&L on the closed quantity at (exit - average) / tickSize * tickValue * qty (sign
  flipped for shorts); a fill larger than the position reverses it (L2, sell 3: P&L on 2, S1 at
  the fill price). A position keeps its id and creationTimestamp through a reversal; the next
  position after going flat gets a new id.
- Fees are per side per contract (`fees` = fee x size on every trade) and are always taken from
  the balance. `profitAndLoss` excludes them unless `pnl_includes_fees` is set, in which case the
  fees of the closed quantity are subtracted from it.
- Arithmetic is exact: prices are integer ticks, money is Decimal, averages are Fractions;
  payloads carry floats (money rounded to cents).

canTrade
--------
With `canTrade` false, `place_order` and `modify_order` are rejected, but `cancel_order`,
`close_position` and `partial_close` still work, so a risk manager can always flatten a locked
account. Orders already resting keep working (the engine models the exchange, not the platform).

Errors
------
Bad input raises `EngineError(code, message)` before anything changes. Codes follow the
gateway's per-endpoint error enums (PlaceOrderErrorCode, CancelOrderErrorCode,
ModifyOrderErrorCode, ClosePositionErrorCode, PartialClosePositionErrorCode); operations that are
not gateway endpoints use `SimErrorCode`. `EngineError.not_found` tells a missing
account/contract/order/position (HTTP 404) from an invalid value (HTTP 400).

Contracts may be named by id or by root (`MNQ`, `ES`/`EP`) everywhere; payloads always carry the
full id. The engine serializes its calls with a lock, so a threaded server may share it.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from enum import IntEnum
from fractions import Fraction
from typing import Any, Callable, Iterator, Mapping, TypeVar

from gateway_sim import contracts as _contracts
from gateway_sim.clock import SimClock, iso
from gateway_sim.contracts import Contract

__all__ = [
    "CancelOrderErrorCode",
    "ClosePositionErrorCode",
    "Emitted",
    "Engine",
    "EngineError",
    "ModifyOrderErrorCode",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "PartialClosePositionErrorCode",
    "PlaceOrderErrorCode",
    "PositionType",
    "SimErrorCode",
]

STATE_VERSION = 1
CENT = Decimal("0.01")


class OrderSide(IntEnum):
    BUY = 0
    SELL = 1


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2
    STOP_LIMIT = 3
    STOP = 4
    TRAILING_STOP = 5


class OrderStatus(IntEnum):
    OPEN = 1
    FILLED = 2
    CANCELLED = 3
    EXPIRED = 4
    REJECTED = 5
    PENDING = 6


class PositionType(IntEnum):
    LONG = 1
    SHORT = 2


class PlaceOrderErrorCode(IntEnum):
    ACCOUNT_NOT_FOUND = 1
    ORDER_REJECTED = 2
    CONTRACT_NOT_FOUND = 8
    ACCOUNT_REJECTED = 10


class CancelOrderErrorCode(IntEnum):
    ACCOUNT_NOT_FOUND = 1
    ORDER_NOT_FOUND = 2
    REJECTED = 3


class ModifyOrderErrorCode(IntEnum):
    ACCOUNT_NOT_FOUND = 1
    ORDER_NOT_FOUND = 2
    REJECTED = 3
    ACCOUNT_REJECTED = 6


class ClosePositionErrorCode(IntEnum):
    ACCOUNT_NOT_FOUND = 1
    POSITION_NOT_FOUND = 2
    CONTRACT_NOT_FOUND = 3


class PartialClosePositionErrorCode(IntEnum):
    ACCOUNT_NOT_FOUND = 1
    POSITION_NOT_FOUND = 2
    CONTRACT_NOT_FOUND = 3
    INVALID_CLOSE_SIZE = 5


class SimErrorCode(IntEnum):
    """Codes for engine operations that are not gateway endpoints (control API, searches)."""

    ACCOUNT_NOT_FOUND = 1
    INVALID_VALUE = 2
    CONTRACT_NOT_FOUND = 3
    DUPLICATE = 4


_NOT_FOUND_NAMES = {"ACCOUNT_NOT_FOUND", "ORDER_NOT_FOUND", "CONTRACT_NOT_FOUND", "POSITION_NOT_FOUND"}

_TYPE_NAMES = {1: "Limit", 2: "Market", 3: "StopLimit", 4: "Stop", 5: "TrailingStop",
               0: "Unknown", 6: "JoinBid", 7: "JoinAsk"}


class EngineError(Exception):
    """Rejected input. `code` is the gateway error code, `message` names the field and value.

    Raised before any state changes, so the engine is exactly as it was before the call.
    """

    def __init__(self, code: int, message: str, *, not_found: bool | None = None) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message
        if not_found is None:
            not_found = isinstance(code, IntEnum) and code.name in _NOT_FOUND_NAMES
        self.not_found = not_found

    def __repr__(self) -> str:
        return f"EngineError({self.code}, {self.message!r})"


@dataclass(frozen=True)
class Emitted:
    """One event for a hub: `target` (GatewayUserOrder, GatewayQuote, ...), the account it
    belongs to (None for market data) and a gateway-shaped payload (a fresh dict, safe to keep).

    `contract_id` is set on events about a contract (the market hub needs it beside the quote);
    iterating yields `(target, account_id, payload)` so the event also unpacks like a tuple.
    """

    target: str
    account_id: int | None
    payload: dict
    contract_id: str | None = field(default=None, kw_only=True)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.target, self.account_id, self.payload))


# ---------------------------------------------------------------------------------------------
# Internal records. Prices are integer ticks of their contract; money is Decimal.

@dataclass
class _Account:
    id: int
    name: str
    balance: Decimal
    can_trade: bool
    is_visible: bool = True
    simulated: bool = True


@dataclass
class _Order:
    id: int
    account_id: int
    contract_id: str
    type: int
    side: int
    size: int
    created: datetime
    updated: datetime
    status: int = int(OrderStatus.OPEN)
    limit: int | None = None
    stop: int | None = None
    trail: int | None = None
    custom_tag: str | None = None
    fill_volume: int = 0
    filled_at: int | None = None
    stop_loss: dict | None = None          # {"ticks": int, "type": int}, entry orders only
    take_profit: dict | None = None
    parent_id: int | None = None           # set on bracket children
    oco_id: int | None = None              # the other bracket child
    triggered: bool = False                # stop-limit: stop crossed, now a limit
    best: int | None = None                # trailing stop: best price since placement

    @property
    def is_open(self) -> bool:
        return self.status == OrderStatus.OPEN


@dataclass
class _Position:
    id: int
    account_id: int
    contract_id: str
    created: datetime
    size: int = 0                          # signed: long > 0, short < 0
    avg: Fraction = Fraction(0)            # average entry in ticks


@dataclass
class _Trade:
    id: int
    account_id: int
    contract_id: str
    created: datetime
    price: int
    pnl: Decimal | None
    fees: Decimal
    side: int
    size: int
    order_id: int
    voided: bool = False


@dataclass
class _Market:
    last: int
    open: int
    high: int
    low: int
    volume: int = 0
    updated: datetime | None = None


def _money(value: Decimal) -> float:
    return float(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def _cents(value: Fraction | Decimal) -> Decimal:
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_F = TypeVar("_F", bound=Callable[..., Any])


def _locked(fn: _F) -> _F:
    @functools.wraps(fn)
    def wrapper(self: "Engine", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return fn(self, *args, **kwargs)
    return wrapper  # type: ignore[return-value]


class Engine:
    """The simulated broker: accounts, orders, positions, trades and prices (see module doc).

    `fees` overrides the per-side, per-contract fee by symbol root (`{"MNQ": 0.50}`);
    `pnl_includes_fees` may be flipped at run time.
    """

    def __init__(self, clock: SimClock | None = None, pnl_includes_fees: bool = False,
                 fees: Mapping[str, object] | None = None) -> None:
        self.clock = clock if clock is not None else SimClock()
        self.pnl_includes_fees = bool(pnl_includes_fees)
        self._fees = _contracts.fee_table(fees)
        self._lock = threading.RLock()
        self._accounts: dict[int, _Account] = {}
        self._orders: dict[int, _Order] = {}
        self._positions: dict[tuple[int, str], _Position] = {}
        self._trades: list[_Trade] = []
        self._markets: dict[str, _Market] = {}
        self._next_account = 1001
        self._next_order = 5001
        self._next_trade = 80001
        self._next_position = 3001
        for c in _contracts.CATALOGUE:
            t = c.to_ticks(c.default_price)
            self._markets[c.id] = _Market(last=t, open=t, high=t, low=t)

    # -- lookups that raise with the caller's error code -------------------------------------

    def _account(self, account_id: object, code: IntEnum) -> _Account:
        acct = self._accounts.get(account_id) if _is_int(account_id) else None
        if acct is None:
            raise EngineError(code, f"accountId {account_id!r} not found")
        return acct

    @staticmethod
    def _contract(key: object, code: IntEnum, field_name: str = "contractId") -> Contract:
        c = _contracts.find(key)
        if c is None:
            raise EngineError(code, f"{field_name} {key!r} not found (give an id such as "
                                    f"CON.F.US.MNQ.Z26 or a root such as MNQ)")
        return c

    @staticmethod
    def _ticks(c: Contract, value: object, field_name: str, code: IntEnum) -> int:
        try:
            ticks = c.to_ticks(value, field_name)
        except ValueError as exc:
            raise EngineError(code, str(exc)) from None
        if ticks <= 0:
            raise EngineError(code, f"{field_name} must be > 0, got {value!r}")
        return ticks

    def _fee(self, c: Contract) -> Decimal:
        return self._fees[c.root]

    # -- payloads ----------------------------------------------------------------------------

    def _account_payload(self, a: _Account) -> dict:
        return {"id": a.id, "name": a.name, "balance": _money(a.balance), "canTrade": a.can_trade,
                "isVisible": a.is_visible, "simulated": a.simulated}

    def _order_payload(self, o: _Order) -> dict:
        c = _contracts.resolve(o.contract_id)

        def px(t: int | None) -> float | None:
            return None if t is None else c.price_float(t)

        return {
            "id": o.id, "accountId": o.account_id, "contractId": o.contract_id,
            "symbolId": c.symbol_id, "creationTimestamp": iso(o.created),
            "updateTimestamp": iso(o.updated), "status": int(o.status), "type": int(o.type),
            "side": int(o.side), "size": o.size, "limitPrice": px(o.limit),
            "stopPrice": px(o.stop), "fillVolume": o.fill_volume, "filledPrice": px(o.filled_at),
            "customTag": o.custom_tag,
        }

    def _position_payload(self, p: _Position) -> dict:
        c = _contracts.resolve(p.contract_id)
        return {
            "id": p.id, "accountId": p.account_id, "contractId": p.contract_id,
            "creationTimestamp": iso(p.created),
            "type": int(PositionType.LONG if p.size > 0 else PositionType.SHORT),
            "size": abs(p.size),
            "averagePrice": float(p.avg * Fraction(c.tick_size)),
        }

    def _trade_payload(self, t: _Trade) -> dict:
        c = _contracts.resolve(t.contract_id)
        return {
            "id": t.id, "accountId": t.account_id, "contractId": t.contract_id,
            "creationTimestamp": iso(t.created), "price": c.price_float(t.price),
            "profitAndLoss": None if t.pnl is None else _money(t.pnl), "fees": _money(t.fees),
            "side": int(t.side), "size": t.size, "voided": t.voided, "orderId": t.order_id,
        }

    def _quote_payload(self, c: Contract) -> dict:
        m = self._markets[c.id]
        last = c.price_of(m.last)
        change = last - c.price_of(m.open)
        now = self.clock.now()
        return {
            "symbol": c.symbol_id, "symbolName": f"/{c.root}",
            # No spread: market orders fill at the last price, so the quote must agree with it.
            "lastPrice": float(last), "bestBid": float(last), "bestAsk": float(last),
            "change": float(change),
            "changePercent": round(float(change / c.price_of(m.open) * 100), 2),
            "open": c.price_float(m.open), "high": c.price_float(m.high),
            "low": c.price_float(m.low), "volume": m.volume,
            # Periodic re-sends of an unchanged quote must still look fresh to the SDK.
            "lastUpdated": iso(m.updated or now), "timestamp": iso(now),
        }

    def _ev_order(self, o: _Order) -> Emitted:
        return Emitted("GatewayUserOrder", o.account_id, self._order_payload(o),
                       contract_id=o.contract_id)

    def _ev_account(self, a: _Account) -> Emitted:
        return Emitted("GatewayUserAccount", a.id, self._account_payload(a))

    # -- accounts ----------------------------------------------------------------------------

    @_locked
    def create_account(self, name: str, balance: float = 50000.0, can_trade: bool = True,
                       account_id: int | None = None) -> dict:
        """Add an account; returns its payload. Names and ids must be unique."""
        code = SimErrorCode.INVALID_VALUE
        if not isinstance(name, str) or not name.strip():
            raise EngineError(code, f"name must be a non-empty string, got {name!r}")
        if any(a.name == name for a in self._accounts.values()):
            raise EngineError(SimErrorCode.DUPLICATE, f"name {name!r} already used by another account")
        try:
            bal = _contracts.to_decimal(balance, "balance")
        except ValueError as exc:
            raise EngineError(code, str(exc)) from None
        if not isinstance(can_trade, bool):
            raise EngineError(code, f"canTrade must be true or false, got {can_trade!r}")
        if account_id is not None:
            if not _is_int(account_id) or account_id <= 0:
                raise EngineError(code, f"id must be a positive integer, got {account_id!r}")
            if account_id in self._accounts:
                raise EngineError(SimErrorCode.DUPLICATE, f"id {account_id} already exists")
        else:
            account_id = self._next_account
            while account_id in self._accounts:
                account_id += 1
        self._next_account = max(self._next_account, account_id + 1)
        acct = _Account(id=account_id, name=name, balance=bal, can_trade=can_trade)
        self._accounts[account_id] = acct
        return self._account_payload(acct)

    @_locked
    def accounts(self) -> list[dict]:
        return [self._account_payload(a) for _, a in sorted(self._accounts.items())]

    @_locked
    def set_can_trade(self, account_id: int, flag: bool) -> list[Emitted]:
        acct = self._account(account_id, SimErrorCode.ACCOUNT_NOT_FOUND)
        if not isinstance(flag, bool):
            raise EngineError(SimErrorCode.INVALID_VALUE, f"canTrade must be true or false, got {flag!r}")
        acct.can_trade = flag
        return [self._ev_account(acct)]

    # -- market data -------------------------------------------------------------------------

    @_locked
    def set_price(self, contract_id: str, price: float) -> list[Emitted]:
        """Move the last price, fill whatever it triggers, then emit the quote."""
        c = self._contract(contract_id, SimErrorCode.CONTRACT_NOT_FOUND, "contract")
        ticks = self._ticks(c, price, "price", SimErrorCode.INVALID_VALUE)
        now = self.clock.now()
        m = self._markets[c.id]
        m.last, m.high, m.low, m.updated = ticks, max(m.high, ticks), min(m.low, ticks), now
        events = self._match(c, now)
        events.append(Emitted("GatewayQuote", None, self._quote_payload(c), contract_id=c.id))
        return events

    @_locked
    def price(self, contract_id: str) -> float:
        c = self._contract(contract_id, SimErrorCode.CONTRACT_NOT_FOUND, "contract")
        return c.price_float(self._markets[c.id].last)

    @_locked
    def quote(self, contract_id: str) -> dict:
        c = self._contract(contract_id, SimErrorCode.CONTRACT_NOT_FOUND, "contract")
        return self._quote_payload(c)

    @_locked
    def contract(self, contract_id: str) -> dict:
        return self._contract(contract_id, SimErrorCode.CONTRACT_NOT_FOUND).payload()

    @_locked
    def search_contracts(self, text: str | None, live: bool = False) -> list[dict]:
        # `live` selects the live vs. sim data feed on the real gateway; one catalogue serves both.
        return [c.payload() for c in _contracts.search(text, limit=20)]

    # -- orders ------------------------------------------------------------------------------

    @_locked
    def place_order(self, account_id: int, contract_id: str, type: int, side: int, size: int,
                    limit_price: float | None = None, stop_price: float | None = None,
                    trail_price: float | None = None, custom_tag: str | None = None,
                    stop_loss_bracket: Mapping[str, Any] | None = None,
                    take_profit_bracket: Mapping[str, Any] | None = None,
                    ) -> tuple[int, list[Emitted]]:
        """Validate and accept an order; returns its id and the events (a fill if marketable)."""
        E = PlaceOrderErrorCode
        acct = self._account(account_id, E.ACCOUNT_NOT_FOUND)
        c = self._contract(contract_id, E.CONTRACT_NOT_FOUND)
        bad = E.ORDER_REJECTED
        if not acct.can_trade:
            raise EngineError(E.ACCOUNT_REJECTED, f"account {acct.id} ({acct.name}) has canTrade "
                                                  f"false: new orders are rejected")
        if not _is_int(type) or type not in _TYPE_NAMES:
            raise EngineError(bad, f"type {type!r} is not an order type (1 Limit, 2 Market, "
                                   f"3 StopLimit, 4 Stop, 5 TrailingStop)")
        if type not in tuple(OrderType):
            raise EngineError(bad, f"type {type} ({_TYPE_NAMES[type]}) is not supported by the simulator")
        if not _is_int(side) or side not in (0, 1):
            raise EngineError(bad, f"side {side!r} must be 0 (buy) or 1 (sell)")
        if not _is_int(size) or size <= 0:
            raise EngineError(bad, f"size must be a positive integer, got {size!r}")
        last = self._markets[c.id].last
        limit = stop = trail = None
        needs = {OrderType.LIMIT: ("limitPrice",), OrderType.MARKET: (),
                 OrderType.STOP: ("stopPrice",), OrderType.STOP_LIMIT: ("stopPrice", "limitPrice"),
                 OrderType.TRAILING_STOP: ("trailPrice",)}[OrderType(type)]
        given = {"limitPrice": limit_price, "stopPrice": stop_price, "trailPrice": trail_price}
        for name, value in given.items():
            if name in needs and value is None:
                raise EngineError(bad, f"{name} is required for a {_TYPE_NAMES[type]} order")
            if name not in needs and value is not None:
                raise EngineError(bad, f"{name} {value!r} does not apply to a {_TYPE_NAMES[type]} order")
        if limit_price is not None:
            limit = self._ticks(c, limit_price, "limitPrice", bad)
        if stop_price is not None:
            stop = self._ticks(c, stop_price, "stopPrice", bad)
            self._check_stop_side(c, side, stop, last, bad)
        if trail_price is not None:
            trail = self._ticks(c, trail_price, "trailPrice", bad)
        if custom_tag is not None:
            if not isinstance(custom_tag, str):
                raise EngineError(bad, f"customTag must be a string, got {custom_tag!r}")
            if any(o.custom_tag == custom_tag for o in self._orders.values() if o.account_id == acct.id):
                raise EngineError(bad, f"customTag {custom_tag!r} is already used on account {acct.id}")
        sl = self._bracket(stop_loss_bracket, "stopLossBracket", (OrderType.STOP, OrderType.TRAILING_STOP), bad)
        tp = self._bracket(take_profit_bracket, "takeProfitBracket", (OrderType.LIMIT,), bad)

        now = self.clock.now()
        order = _Order(id=self._take_order_id(), account_id=acct.id, contract_id=c.id, type=int(type),
                       side=int(side), size=size, created=now, updated=now, limit=limit, stop=stop,
                       trail=trail, custom_tag=custom_tag, stop_loss=sl, take_profit=tp)
        if type == OrderType.TRAILING_STOP:
            order.best = last
            order.stop = last - trail if side == OrderSide.SELL else last + trail
        self._orders[order.id] = order
        events = self._activate(order, c, now)
        return order.id, events

    def _check_stop_side(self, c: Contract, side: int, stop: int, last: int, code: IntEnum) -> None:
        if side == OrderSide.BUY and stop <= last:
            raise EngineError(code, f"stopPrice {c.price_float(stop)} must be above the last price "
                                    f"{c.price_float(last)} for a buy stop")
        if side == OrderSide.SELL and stop >= last:
            raise EngineError(code, f"stopPrice {c.price_float(stop)} must be below the last price "
                                    f"{c.price_float(last)} for a sell stop")

    @staticmethod
    def _bracket(spec: Mapping[str, Any] | None, name: str, types: tuple[OrderType, ...],
                 code: IntEnum) -> dict | None:
        if spec is None:
            return None
        if not isinstance(spec, Mapping):
            raise EngineError(code, f"{name} must be an object {{ticks, type}}, got {spec!r}")
        unknown = set(spec) - {"ticks", "type"}
        if unknown:
            raise EngineError(code, f"{name} has unknown field(s) {sorted(unknown)}: expected ticks, type")
        ticks, kind = spec.get("ticks"), spec.get("type")
        if not _is_int(ticks) or ticks == 0:
            raise EngineError(code, f"{name}.ticks must be a non-zero integer, got {ticks!r}")
        allowed = ", ".join(f"{int(t)} ({_TYPE_NAMES[t]})" for t in types)
        if not _is_int(kind) or kind not in types:
            raise EngineError(code, f"{name}.type {kind!r} is not supported here: use {allowed}")
        return {"ticks": abs(ticks), "type": int(kind)}

    def _take_order_id(self) -> int:
        oid = self._next_order
        self._next_order += 1
        return oid

    def _activate(self, order: _Order, c: Contract, now: datetime) -> list[Emitted]:
        """Fill a marketable order at once, else announce it as resting; then re-match."""
        last = self._markets[c.id].last
        acts_as_limit = order.type == OrderType.LIMIT or (
            order.type == OrderType.STOP_LIMIT and order.triggered)
        marketable = order.type == OrderType.MARKET or (
            acts_as_limit
            and (last <= order.limit if order.side == OrderSide.BUY else last >= order.limit))
        if marketable:
            events = self._fill(order, c, last, now)
        else:
            events = [self._ev_order(order)]
        # A fill can create bracket children that are already crossed (a limit entry filled at
        # its price after a gap), so let the book settle before returning.
        events.extend(self._match(c, now))
        return events

    @_locked
    def cancel_order(self, account_id: int, order_id: int) -> list[Emitted]:
        E = CancelOrderErrorCode
        acct = self._account(account_id, E.ACCOUNT_NOT_FOUND)
        order = self._owned_order(acct, order_id, E.ORDER_NOT_FOUND)
        if not order.is_open:
            raise EngineError(E.REJECTED, f"orderId {order_id} is not open (status {order.status})")
        return [self._cancel(order, self.clock.now())]

    def _owned_order(self, acct: _Account, order_id: object, code: IntEnum) -> _Order:
        order = self._orders.get(order_id) if _is_int(order_id) else None
        if order is None or order.account_id != acct.id:
            raise EngineError(code, f"orderId {order_id!r} not found on account {acct.id}")
        return order

    def _cancel(self, order: _Order, now: datetime) -> Emitted:
        order.status = int(OrderStatus.CANCELLED)
        order.updated = now
        return self._ev_order(order)

    @_locked
    def modify_order(self, account_id: int, order_id: int, size: int | None = None,
                     limit_price: float | None = None, stop_price: float | None = None,
                     trail_price: float | None = None) -> list[Emitted]:
        E = ModifyOrderErrorCode
        acct = self._account(account_id, E.ACCOUNT_NOT_FOUND)
        order = self._owned_order(acct, order_id, E.ORDER_NOT_FOUND)
        bad = E.REJECTED
        if not acct.can_trade:
            raise EngineError(E.ACCOUNT_REJECTED, f"account {acct.id} ({acct.name}) has canTrade "
                                                  f"false: modifications are rejected")
        if not order.is_open:
            raise EngineError(bad, f"orderId {order_id} is not open (status {order.status})")
        c = _contracts.resolve(order.contract_id)
        kind = _TYPE_NAMES[order.type]
        applies = {"limitPrice": order.type in (OrderType.LIMIT, OrderType.STOP_LIMIT),
                   "stopPrice": order.type in (OrderType.STOP, OrderType.STOP_LIMIT) and not order.triggered,
                   "trailPrice": order.type == OrderType.TRAILING_STOP}
        given = {"limitPrice": limit_price, "stopPrice": stop_price, "trailPrice": trail_price}
        for name, value in given.items():
            if value is not None and not applies[name]:
                raise EngineError(bad, f"{name} {value!r} cannot be changed on a {kind} order"
                                       + (" that has triggered" if order.triggered else ""))
        if size is not None and (not _is_int(size) or size <= 0):
            raise EngineError(bad, f"size must be a positive integer, got {size!r}")
        last = self._markets[c.id].last
        limit = self._ticks(c, limit_price, "limitPrice", bad) if limit_price is not None else None
        stop = self._ticks(c, stop_price, "stopPrice", bad) if stop_price is not None else None
        trail = self._ticks(c, trail_price, "trailPrice", bad) if trail_price is not None else None
        if stop is not None:
            self._check_stop_side(c, order.side, stop, last, bad)

        now = self.clock.now()
        if size is not None:
            order.size = size
        if limit is not None:
            order.limit = limit
        if stop is not None:
            order.stop = stop
        if trail is not None:
            # A new distance restarts the trail from the current best price.
            order.trail = trail
            order.stop = order.best - trail if order.side == OrderSide.SELL else order.best + trail
        order.updated = now
        return self._activate(order, c, now)

    # -- positions ---------------------------------------------------------------------------

    @_locked
    def close_position(self, account_id: int, contract_id: str) -> list[Emitted]:
        """Flatten with an opposite-side market order (allowed even when canTrade is false)."""
        E = ClosePositionErrorCode
        acct = self._account(account_id, E.ACCOUNT_NOT_FOUND)
        c = self._contract(contract_id, E.CONTRACT_NOT_FOUND)
        pos = self._positions.get((acct.id, c.id))
        if pos is None:
            raise EngineError(E.POSITION_NOT_FOUND, f"no open position in {c.id} on account {acct.id}")
        return self._close(acct, c, pos, abs(pos.size))

    @_locked
    def partial_close(self, account_id: int, contract_id: str, size: int) -> list[Emitted]:
        """Reduce by `size` contracts with an opposite-side market order (canTrade not required)."""
        E = PartialClosePositionErrorCode
        acct = self._account(account_id, E.ACCOUNT_NOT_FOUND)
        c = self._contract(contract_id, E.CONTRACT_NOT_FOUND)
        pos = self._positions.get((acct.id, c.id))
        if pos is None:
            raise EngineError(E.POSITION_NOT_FOUND, f"no open position in {c.id} on account {acct.id}")
        if not _is_int(size) or size <= 0 or size > abs(pos.size):
            raise EngineError(E.INVALID_CLOSE_SIZE, f"size must be an integer from 1 to the position "
                                                    f"size {abs(pos.size)}, got {size!r}")
        return self._close(acct, c, pos, size)

    def _close(self, acct: _Account, c: Contract, pos: _Position, size: int) -> list[Emitted]:
        now = self.clock.now()
        side = OrderSide.SELL if pos.size > 0 else OrderSide.BUY
        order = _Order(id=self._take_order_id(), account_id=acct.id, contract_id=c.id,
                       type=int(OrderType.MARKET), side=int(side), size=size, created=now, updated=now)
        self._orders[order.id] = order
        return self._activate(order, c, now)

    @_locked
    def open_positions(self, account_id: int) -> list[dict]:
        acct = self._account(account_id, SimErrorCode.ACCOUNT_NOT_FOUND)
        return [self._position_payload(p) for p in sorted(self._positions.values(), key=lambda p: p.id)
                if p.account_id == acct.id]

    # -- queries -----------------------------------------------------------------------------

    @_locked
    def open_orders(self, account_id: int) -> list[dict]:
        acct = self._account(account_id, SimErrorCode.ACCOUNT_NOT_FOUND)
        return [self._order_payload(o) for o in self._orders.values()
                if o.account_id == acct.id and o.is_open]

    @_locked
    def search_orders(self, account_id: int, start: datetime | str,
                      end: datetime | str | None = None) -> list[dict]:
        acct = self._account(account_id, SimErrorCode.ACCOUNT_NOT_FOUND)
        lo, hi = _window(start, end)
        return [self._order_payload(o) for o in self._orders.values()
                if o.account_id == acct.id and lo <= o.created and (hi is None or o.created <= hi)]

    @_locked
    def order_by_id(self, account_id: int, order_id: int) -> dict | None:
        acct = self._account(account_id, SimErrorCode.ACCOUNT_NOT_FOUND)
        order = self._orders.get(order_id) if _is_int(order_id) else None
        if order is None or order.account_id != acct.id:
            return None
        return self._order_payload(order)

    @_locked
    def search_trades(self, account_id: int, start: datetime | str,
                      end: datetime | str | None = None) -> list[dict]:
        acct = self._account(account_id, SimErrorCode.ACCOUNT_NOT_FOUND)
        lo, hi = _window(start, end)
        return [self._trade_payload(t) for t in self._trades
                if t.account_id == acct.id and lo <= t.created and (hi is None or t.created <= hi)]

    # -- matching ----------------------------------------------------------------------------

    def _match(self, c: Contract, now: datetime) -> list[Emitted]:
        """Fill every order the last price triggers, in id order, until the book is quiet."""
        events: list[Emitted] = []
        last = self._markets[c.id].last
        while True:
            for order in sorted((o for o in self._orders.values()
                                 if o.contract_id == c.id and o.is_open), key=lambda o: o.id):
                at = self._trigger(order, last, now, events)
                if at is not None:
                    events.extend(self._fill(order, c, at, now))
                    # The fill may have cancelled or created orders: rescan from the start.
                    break
            else:
                return events

    def _trigger(self, o: _Order, last: int, now: datetime, events: list[Emitted]) -> int | None:
        """Fill price in ticks if `last` triggers this resting order, else None."""
        buy = o.side == OrderSide.BUY
        if o.type == OrderType.LIMIT:
            return o.limit if (last <= o.limit if buy else last >= o.limit) else None
        if o.type == OrderType.STOP:
            return last if (last >= o.stop if buy else last <= o.stop) else None
        if o.type == OrderType.STOP_LIMIT:
            if not o.triggered:
                if not (last >= o.stop if buy else last <= o.stop):
                    return None
                o.triggered = True
                # Marketable at the moment it becomes a limit: fills at the market, like a new limit.
                return last if (last <= o.limit if buy else last >= o.limit) else None
            return o.limit if (last <= o.limit if buy else last >= o.limit) else None
        if o.type == OrderType.TRAILING_STOP:
            better = last < o.best if buy else last > o.best
            if better:
                o.best = last
                o.stop = last + o.trail if buy else last - o.trail
                o.updated = now
                events.append(self._ev_order(o))
            return last if (last >= o.stop if buy else last <= o.stop) else None
        return None  # market orders never rest

    def _fill(self, order: _Order, c: Contract, price: int, now: datetime) -> list[Emitted]:
        acct = self._accounts[order.account_id]
        order.updated = now
        events = [self._ev_order(order)]

        fee_each = self._fee(c)
        fees = fee_each * order.size
        signed = order.size if order.side == OrderSide.BUY else -order.size
        key = (acct.id, c.id)
        pos = self._positions.get(key)
        if pos is None:
            pos = _Position(id=self._next_position, account_id=acct.id, contract_id=c.id, created=now)
            self._next_position += 1
            self._positions[key] = pos
        old = pos.size
        closing = min(abs(old), order.size) if old and (old > 0) != (signed > 0) else 0
        pnl: Decimal | None = None
        balance_before = acct.balance
        if closing:
            direction = 1 if old > 0 else -1
            gross = _cents((Fraction(price) - pos.avg) * closing * direction * Fraction(c.tick_value))
            pnl = gross - fee_each * closing if self.pnl_includes_fees else gross
            acct.balance += gross
        acct.balance -= fees
        balance_changed = acct.balance != balance_before

        new = old + signed
        # Reducing keeps the average (the difference was just realized); going flat keeps it too,
        # so the closing position event still reports what was closed.
        if new != 0 and (old == 0 or (old > 0) != (new > 0)):
            pos.avg = Fraction(price)  # opened, or reversed through zero
        elif abs(new) > abs(old):
            pos.avg = (pos.avg * abs(old) + Fraction(price) * order.size) / abs(new)
        pos.size = new

        trade = _Trade(id=self._next_trade, account_id=acct.id, contract_id=c.id, created=now,
                       price=price, pnl=pnl, fees=fees, side=order.side, size=order.size,
                       order_id=order.id)
        self._next_trade += 1
        self._trades.append(trade)
        events.append(Emitted("GatewayUserTrade", acct.id, self._trade_payload(trade), contract_id=c.id))

        order.status = int(OrderStatus.FILLED)
        order.fill_volume = order.size
        order.filled_at = price
        events.append(self._ev_order(order))

        pos_payload = self._position_payload(pos)
        if new == 0:
            pos_payload["size"] = 0
            pos_payload["type"] = int(PositionType.LONG if old > 0 else PositionType.SHORT)
            del self._positions[key]
        events.append(Emitted("GatewayUserPosition", acct.id, pos_payload, contract_id=c.id))
        if balance_changed:
            events.append(self._ev_account(acct))

        self._markets[c.id].volume += order.size
        events.extend(self._after_fill(order, c, new, now))
        return events

    def _after_fill(self, order: _Order, c: Contract, new_size: int, now: datetime) -> list[Emitted]:
        events: list[Emitted] = []
        if order.oco_id is not None:
            sibling = self._orders.get(order.oco_id)
            if sibling is not None and sibling.is_open:
                events.append(self._cancel(sibling, now))
        if new_size == 0:
            for o in sorted(self._orders.values(), key=lambda o: o.id):
                if (o.is_open and o.parent_id is not None and o.account_id == order.account_id
                        and o.contract_id == c.id):
                    events.append(self._cancel(o, now))
            return events
        if order.stop_loss is None and order.take_profit is None:
            return events
        exit_side = OrderSide.SELL if order.side == OrderSide.BUY else OrderSide.BUY
        away = 1 if order.side == OrderSide.BUY else -1    # +1: profit is above the entry
        children: list[_Order] = []
        for spec, sign in ((order.stop_loss, -away), (order.take_profit, away)):
            if spec is None:
                continue
            child = _Order(id=self._take_order_id(), account_id=order.account_id, contract_id=c.id,
                           type=spec["type"], side=int(exit_side), size=order.size, created=now,
                           updated=now, parent_id=order.id)
            target = order.filled_at + sign * spec["ticks"]
            if spec["type"] == OrderType.LIMIT:
                child.limit = target
            elif spec["type"] == OrderType.STOP:
                child.stop = target
            else:
                child.trail = spec["ticks"]
                child.best = order.filled_at
                child.stop = target
            self._orders[child.id] = child
            children.append(child)
        if len(children) == 2:
            children[0].oco_id, children[1].oco_id = children[1].id, children[0].id
        events.extend(self._ev_order(ch) for ch in children)
        return events

    # -- persistence -------------------------------------------------------------------------

    @_locked
    def to_dict(self) -> dict:
        """Complete JSON-serializable state; exact values are kept as strings."""
        return {
            "version": STATE_VERSION,
            "pnlIncludesFees": self.pnl_includes_fees,
            "fees": {root: str(fee) for root, fee in self._fees.items()},
            "next": {"account": self._next_account, "order": self._next_order,
                     "trade": self._next_trade, "position": self._next_position},
            "accounts": [{"id": a.id, "name": a.name, "balance": str(a.balance),
                          "canTrade": a.can_trade, "isVisible": a.is_visible,
                          "simulated": a.simulated} for a in self._accounts.values()],
            "orders": [_order_to_dict(o) for o in self._orders.values()],
            "positions": [{"id": p.id, "accountId": p.account_id, "contractId": p.contract_id,
                           "created": iso(p.created), "size": p.size, "avg": str(p.avg)}
                          for p in self._positions.values()],
            "trades": [{"id": t.id, "accountId": t.account_id, "contractId": t.contract_id,
                        "created": iso(t.created), "price": t.price,
                        "pnl": None if t.pnl is None else str(t.pnl), "fees": str(t.fees),
                        "side": t.side, "size": t.size, "orderId": t.order_id, "voided": t.voided}
                       for t in self._trades],
            "markets": {cid: {"last": m.last, "open": m.open, "high": m.high, "low": m.low,
                              "volume": m.volume,
                              "updated": None if m.updated is None else iso(m.updated)}
                        for cid, m in self._markets.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], clock: SimClock | None = None) -> "Engine":
        """Rebuild an engine saved by to_dict(); ValueError if the state is from another version."""
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"state version {d.get('version')!r} is not {STATE_VERSION}")
        eng = cls(clock=clock, pnl_includes_fees=d["pnlIncludesFees"], fees=d["fees"])
        n = d["next"]
        eng._next_account, eng._next_order = n["account"], n["order"]
        eng._next_trade, eng._next_position = n["trade"], n["position"]
        for a in d["accounts"]:
            eng._accounts[a["id"]] = _Account(id=a["id"], name=a["name"], balance=Decimal(a["balance"]),
                                              can_trade=a["canTrade"], is_visible=a["isVisible"],
                                              simulated=a["simulated"])
        for o in d["orders"]:
            eng._orders[o["id"]] = _order_from_dict(o)
        for p in d["positions"]:
            eng._positions[(p["accountId"], p["contractId"])] = _Position(
                id=p["id"], account_id=p["accountId"], contract_id=p["contractId"],
                created=_dt(p["created"]), size=p["size"], avg=Fraction(p["avg"]))
        for t in d["trades"]:
            eng._trades.append(_Trade(
                id=t["id"], account_id=t["accountId"], contract_id=t["contractId"],
                created=_dt(t["created"]), price=t["price"],
                pnl=None if t["pnl"] is None else Decimal(t["pnl"]), fees=Decimal(t["fees"]),
                side=t["side"], size=t["size"], order_id=t["orderId"], voided=t["voided"]))
        for cid, m in d["markets"].items():
            eng._markets[cid] = _Market(last=m["last"], open=m["open"], high=m["high"], low=m["low"],
                                        volume=m["volume"],
                                        updated=None if m["updated"] is None else _dt(m["updated"]))
        return eng


_ORDER_FIELDS = ("id", "account_id", "contract_id", "type", "side", "size", "status", "limit",
                 "stop", "trail", "custom_tag", "fill_volume", "filled_at", "stop_loss",
                 "take_profit", "parent_id", "oco_id", "triggered", "best")


def _order_to_dict(o: _Order) -> dict:
    out = {name: getattr(o, name) for name in _ORDER_FIELDS}
    out["status"], out["type"], out["side"] = int(o.status), int(o.type), int(o.side)
    out["created"], out["updated"] = iso(o.created), iso(o.updated)
    return out


def _order_from_dict(d: Mapping[str, Any]) -> _Order:
    kw = {name: d[name] for name in _ORDER_FIELDS}
    return _Order(created=_dt(d["created"]), updated=_dt(d["updated"]), **kw)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _window(start: datetime | str, end: datetime | str | None) -> tuple[datetime, datetime | None]:
    return _parse_time(start, "startTimestamp"), None if end is None else _parse_time(end, "endTimestamp")


def _parse_time(value: datetime | str, field_name: str) -> datetime:
    """Accept a datetime or gateway ISO text; a time without zone is read as UTC (gateway habit)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise EngineError(SimErrorCode.INVALID_VALUE,
                              f"{field_name} {value!r} is not an ISO-8601 timestamp") from None
    if not isinstance(value, datetime):
        raise EngineError(SimErrorCode.INVALID_VALUE, f"{field_name} must be a timestamp, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value
