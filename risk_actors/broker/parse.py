"""Gateway payloads -> frozen riskd events. Pure functions, no I/O, no SDK import.

Everything the gateway sends (hub events and REST rows alike) goes through here before anything
else in riskd sees it. A payload that does not fit the documented shape raises
:class:`PayloadError` naming the field and the offending value; nothing else ever escapes (the
property tests hold this for arbitrary JSON). The session logs the raw text of such a payload and
drops it, so one bad frame never takes the bridge down.

Enums are the gateway's own numbering (``gateway-api.md`` section 1, :mod:`risk_actors.messages`),
never the SDK's. Timestamps become aware UTC datetimes. User events may come bare, wrapped as
``{"action": N, "data": {...}}``, or as a list of either: :func:`unwrap` flattens all three.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping

from risk_actors import messages as m

__all__ = [
    "PayloadError", "unwrap", "parse_position", "parse_order", "parse_trade", "parse_account",
    "parse_quote", "parse_contract", "QuoteMerger", "USER_PARSERS", "parse_user_event",
]

# Bounds that separate "unusual" from "nonsense". Anything outside is a malformed payload: a
# risk engine must not do arithmetic on a 10**30 contract position or a NaN price.
MAX_ID = 2**63 - 1           # gateway ids are .NET int64
MAX_SIZE = 1_000_000         # contracts in one order/position; no prop account gets near this
MAX_PRICE = 1e9              # futures prices; negative allowed (CL settled below zero in 2020)
MAX_MONEY = 1e12             # P&L, fees, balances
MAX_TEXT = 256               # ids, names, tags
MAX_TS_TEXT = 64

ORDER_SIDES = frozenset({0, 1})                       # OrderSide: 0 Bid (buy), 1 Ask (sell)
ORDER_TYPES = frozenset(range(0, 8))                  # OrderType 0..7
ORDER_STATUSES = frozenset(range(0, 7))               # OrderStatus 0..6
POSITION_TYPES = frozenset({0, m.POSITION_LONG, m.POSITION_SHORT})   # 0 = Undefined
TRADE_SIDES = frozenset({0, 1})                       # TradeLogType: 0 Buy, 1 Sell


class PayloadError(ValueError):
    """A gateway payload that does not fit its documented shape.

    ``kind`` names the payload (``GatewayUserOrder`` ...), ``field`` the offending key and
    ``value`` what was found there (``MISSING`` when absent).
    """

    def __init__(self, kind: str, field: str, value: Any, reason: str) -> None:
        self.kind = kind
        self.field = field
        self.value = value
        self.reason = reason
        shown = _short(value)
        super().__init__(f"{kind}.{field}={shown}: {reason}")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # a repr that fails must not turn a PayloadError into something else
        text = f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------------------------
# field readers
class _Reader:
    """Typed, bounded access to one payload dict; every failure is a PayloadError."""

    __slots__ = ("kind", "d")

    def __init__(self, kind: str, payload: Any) -> None:
        if not isinstance(payload, Mapping):
            raise PayloadError(kind, "<payload>", payload, "expected a JSON object")
        self.kind = kind
        self.d = payload

    def fail(self, field: str, value: Any, reason: str) -> PayloadError:
        return PayloadError(self.kind, field, value, reason)

    def raw(self, field: str) -> Any:
        return self.d.get(field, MISSING)

    def int(self, field: str, *, required: bool = True, default: int | None = None,
            lo: int = 0, hi: int = MAX_ID, allowed: frozenset[int] | None = None) -> Any:
        v = self.raw(field)
        if v is MISSING or v is None:
            if required:
                raise self.fail(field, v, "required integer")
            return default
        # bool is an int subclass in Python but never a valid count, id or enum on the wire.
        if isinstance(v, bool):
            raise self.fail(field, v, "expected an integer, got a boolean")
        if isinstance(v, float):
            if not math.isfinite(v) or not v.is_integer():
                raise self.fail(field, v, "expected an integer")
            v = int(v)
        elif not isinstance(v, int):
            raise self.fail(field, v, "expected an integer")
        if not lo <= v <= hi:
            raise self.fail(field, v, f"out of range [{lo}, {hi}]")
        if allowed is not None and v not in allowed:
            raise self.fail(field, v, f"unknown enum value (known: {sorted(allowed)})")
        return v

    def float(self, field: str, *, required: bool = True, default: float | None = None,
              bound: float = MAX_PRICE, positive: bool = False, nonneg: bool = False) -> Any:
        v = self.raw(field)
        if v is MISSING or v is None:
            if required:
                raise self.fail(field, v, "required number")
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(field, v, "expected a number")
        try:
            f = float(v)
        except OverflowError:  # a JSON integer too large for a double
            raise self.fail(field, v, "number too large") from None
        if not math.isfinite(f):
            raise self.fail(field, v, "not a finite number")
        if abs(f) > bound:
            raise self.fail(field, v, f"magnitude above {bound:g}")
        if positive and f <= 0:
            raise self.fail(field, v, "must be > 0")
        if nonneg and f < 0:
            raise self.fail(field, v, "must be >= 0")
        return f

    def str(self, field: str, *, required: bool = True, default: str | None = None,
            empty_ok: bool = False) -> Any:
        v = self.raw(field)
        if v is MISSING or v is None:
            if required:
                raise self.fail(field, v, "required string")
            return default
        if not isinstance(v, str):
            raise self.fail(field, v, "expected a string")
        if len(v) > MAX_TEXT:
            raise self.fail(field, v, f"longer than {MAX_TEXT} characters")
        if not empty_ok and not v.strip():
            if required:
                raise self.fail(field, v, "empty string")
            return default
        return v

    def bool(self, field: str, *, required: bool = True, default: bool | None = None) -> Any:
        v = self.raw(field)
        if v is MISSING or v is None:
            if required:
                raise self.fail(field, v, "required boolean")
            return default
        if not isinstance(v, bool):
            raise self.fail(field, v, "expected a boolean")
        return v

    def dt(self, field: str, *, required: bool = True) -> Any:
        v = self.raw(field)
        if v is MISSING or v is None:
            if required:
                raise self.fail(field, v, "required timestamp")
            return None
        if not isinstance(v, str) or len(v) > MAX_TS_TEXT:
            raise self.fail(field, v, "expected an ISO-8601 timestamp string")
        return _parse_ts(v, lambda reason: self.fail(field, v, reason))


def _parse_ts(text: str, fail: Callable[[str], PayloadError]) -> datetime:
    """ISO-8601 (``Z``, offsets, 7-digit .NET fractions) -> aware UTC; naive = UTC."""
    try:
        dt = datetime.fromisoformat(text.strip())
        if dt.tzinfo is None:
            # The gateway documents UTC; a naive stamp is read as UTC rather than local time.
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.astimezone(timezone.utc)
    except (ValueError, OverflowError, TypeError) as exc:
        raise fail(f"not an ISO-8601 timestamp ({exc})") from None


# ---------------------------------------------------------------------------------------------
# envelopes
def unwrap(payload: Any, kind: str = "payload") -> Iterator[Any]:
    """Yield the bare payload objects inside ``payload``.

    Accepts a bare object, the ``{"action": N, "data": {...}}`` wrapper (``data`` may itself be a
    list), or a JSON list of either. Anything else raises PayloadError. Items are yielded lazily,
    so a caller can parse the good items of a list and report the bad ones one by one.
    """
    if isinstance(payload, list):
        if len(payload) > 1000:
            raise PayloadError(kind, "<payload>", f"list of {len(payload)}", "too many items")
        for item in payload:
            # One level only: a list of lists is not a documented shape, and refusing it keeps
            # a hostile deeply nested frame from recursing.
            if not isinstance(item, Mapping):
                raise PayloadError(kind, "<item>", item, "expected a JSON object")
            yield from unwrap(item, kind)
        return
    if not isinstance(payload, Mapping):
        raise PayloadError(kind, "<payload>", payload, "expected a JSON object or list")
    if "data" in payload and "action" in payload and "id" not in payload:
        data = payload["data"]
        if isinstance(data, list):
            for item in data:
                if not isinstance(item, Mapping):
                    raise PayloadError(kind, "data", item, "expected a JSON object")
                yield item
            return
        if not isinstance(data, Mapping):
            raise PayloadError(kind, "data", data, "expected a JSON object")
        yield data
        return
    yield payload


# ---------------------------------------------------------------------------------------------
# events
def parse_position(payload: Any) -> m.PositionEvent:
    """``GatewayUserPosition`` or a ``Position/searchOpen`` row -> PositionEvent."""
    r = _Reader("GatewayUserPosition", payload)
    size = r.int("size", hi=MAX_SIZE)
    ptype = r.int("type", required=size > 0, default=0, allowed=POSITION_TYPES)
    if size > 0 and ptype not in (m.POSITION_LONG, m.POSITION_SHORT):
        # An open position whose direction is unknown cannot be risk-managed: refuse it loudly
        # instead of guessing long.
        raise r.fail("type", ptype, "open position must be Long (1) or Short (2)")
    avg = r.float("averagePrice", required=size > 0, default=0.0)
    return m.PositionEvent(
        account_id=r.int("accountId"),
        contract_id=r.str("contractId"),
        size=size,
        type=ptype,
        average_price=avg,
        position_id=r.int("id", required=False),
        created=r.dt("creationTimestamp", required=False),
    )


def parse_order(payload: Any) -> m.OrderEvent:
    """``GatewayUserOrder`` or an ``Order/search*`` row -> OrderEvent."""
    r = _Reader("GatewayUserOrder", payload)
    return m.OrderEvent(
        account_id=r.int("accountId"),
        order_id=r.int("id"),
        contract_id=r.str("contractId"),
        status=r.int("status", allowed=ORDER_STATUSES),
        type=r.int("type", allowed=ORDER_TYPES),
        side=r.int("side", allowed=ORDER_SIDES),
        size=r.int("size", hi=MAX_SIZE),
        symbol_id=r.str("symbolId", required=False),
        limit_price=r.float("limitPrice", required=False),
        stop_price=r.float("stopPrice", required=False),
        fill_volume=r.int("fillVolume", required=False, default=0, hi=MAX_SIZE),
        filled_price=r.float("filledPrice", required=False),
        custom_tag=r.str("customTag", required=False, empty_ok=True),
        created=r.dt("creationTimestamp", required=False),
        updated=r.dt("updateTimestamp", required=False),
    )


def parse_trade(payload: Any) -> m.TradeEvent:
    """``GatewayUserTrade`` or a ``Trade/search`` row -> TradeEvent (``pnl`` None = half-turn)."""
    r = _Reader("GatewayUserTrade", payload)
    return m.TradeEvent(
        account_id=r.int("accountId"),
        trade_id=r.int("id"),
        contract_id=r.str("contractId"),
        created=r.dt("creationTimestamp"),
        price=r.float("price"),
        pnl=r.float("profitAndLoss", required=False, bound=MAX_MONEY),
        fees=r.float("fees", required=False, default=0.0, bound=MAX_MONEY),
        side=r.int("side", allowed=TRADE_SIDES),
        size=r.int("size", lo=1, hi=MAX_SIZE),
        voided=r.bool("voided", required=False, default=False),
        order_id=r.int("orderId", required=False),
    )


def parse_account(payload: Any) -> m.AccountEvent:
    """``GatewayUserAccount`` or an ``Account/search`` row -> AccountEvent."""
    r = _Reader("GatewayUserAccount", payload)
    return m.AccountEvent(
        account_id=r.int("id"),
        name=r.str("name", required=False, default="", empty_ok=True),
        balance=r.float("balance", required=False, bound=MAX_MONEY),
        can_trade=r.bool("canTrade", required=False),
    )


def parse_quote(contract_id: Any, payload: Any, received_at: datetime | None = None
                ) -> m.QuoteEvent:
    """``GatewayQuote`` (handler args ``(contractId, data)``) -> QuoteEvent, possibly partial.

    ``contract_id`` is the subscription's contract id: the payload's ``symbol`` is a symbol id
    (``F.US.EP``), not a contract id. Missing price fields stay None; :class:`QuoteMerger` fills
    them from the previous quote.
    """
    r = _Reader("GatewayQuote", payload)
    if not isinstance(contract_id, str) or not contract_id.strip() or len(contract_id) > MAX_TEXT:
        raise PayloadError("GatewayQuote", "contractId", contract_id, "expected a contract id")
    ts = r.dt("timestamp", required=False) or r.dt("lastUpdated", required=False)
    return m.QuoteEvent(
        contract_id=contract_id,
        last_price=r.float("lastPrice", required=False),
        best_bid=r.float("bestBid", required=False),
        best_ask=r.float("bestAsk", required=False),
        timestamp=ts,
        received_at=received_at,
    )


def parse_contract(payload: Any) -> m.ContractInfo:
    """A ``Contract/searchById`` / ``Contract/search`` row -> ContractInfo."""
    r = _Reader("Contract", payload)
    return m.ContractInfo(
        contract_id=r.str("id"),
        name=r.str("name"),
        tick_size=r.float("tickSize", positive=True),
        tick_value=r.float("tickValue", positive=True, bound=MAX_MONEY),
        symbol_id=r.str("symbolId", required=False),
        description=r.str("description", required=False, default="", empty_ok=True),
    )


class QuoteMerger:
    """Merges partial quotes into the last full quote of each contract (not thread-safe).

    The market hub may send only the fields that changed; a QuoteEvent leaving riskd's bridge
    always carries the latest known value of every field.
    """

    def __init__(self) -> None:
        self._last: dict[str, m.QuoteEvent] = {}

    def merge(self, quote: m.QuoteEvent) -> m.QuoteEvent:
        old = self._last.get(quote.contract_id)
        if old is not None:
            quote = m.QuoteEvent(
                contract_id=quote.contract_id,
                last_price=quote.last_price if quote.last_price is not None else old.last_price,
                best_bid=quote.best_bid if quote.best_bid is not None else old.best_bid,
                best_ask=quote.best_ask if quote.best_ask is not None else old.best_ask,
                timestamp=quote.timestamp or old.timestamp,
                received_at=quote.received_at,
            )
        self._last[quote.contract_id] = quote
        return quote


# SDK callback name -> (gateway target, parser)
USER_PARSERS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "account_update": ("GatewayUserAccount", parse_account),
    "position_update": ("GatewayUserPosition", parse_position),
    "order_update": ("GatewayUserOrder", parse_order),
    "trade_execution": ("GatewayUserTrade", parse_trade),
}


def parse_user_event(callback: str, payload: Any) -> Iterator[m.PositionEvent | m.OrderEvent
                                                              | m.TradeEvent | m.AccountEvent]:
    """Yield the events of one user-hub callback payload (bare, wrapped or a list).

    Raises PayloadError at the first bad item (the items before it have been yielded).
    """
    target, parser = USER_PARSERS[callback]
    for item in unwrap(payload, target):
        yield parser(item)
