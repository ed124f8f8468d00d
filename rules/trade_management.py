"""012 TradeManagement: automatic breakeven and trailing stop for open positions.

Automation only: it never closes a position and never locks. For each open position it keeps the
best price seen since the position opened (high-water mark for a long, low-water mark for a
short, from the quotes' ``lastPrice``) and derives the stop the trader asked for:

* breakeven: once the best price is ``profit_trigger_ticks`` in profit, a stop at the average
  price plus ``offset_ticks`` (in the profit direction);
* trailing: once the best price is ``activation_ticks`` in profit, a stop
  ``trail_distance_ticks`` behind the best price.

The tighter of the two wins, and a stop is only ever tightened, never loosened. Without a stop
the rule places one (sell stop for a long, buy stop for a short, the position's size); with the
trader's own Stop order it moves that one instead of adding a second (two full-size stops could
reverse the position). A trader's StopLimit or TrailingStop is left alone: its price cannot be
moved without changing what the trader set up, so the rule says so once and stands back.
A size change resizes the managed stop; a closed (or reversed) position drops its tracking and
cancels the stop this rule placed, so no orphan stop can open a new position later.

Broker calls are one-shot (the enforcer reports the broker's answer), so the rule itself sees
whether they took: the stop's ``GatewayUserOrder`` event shows its new price and size. A modify
that did not take is sent again on a later event (a quote), at most once per
``min_modify_interval_seconds`` per order, backing off while it keeps failing. A placement waits
for the new stop's order event; if none arrives within ``placement_timeout_seconds`` it is sent
again with the same ``customTag``, which the gateway refuses if the first one did go through.
All of this lives in the rule's (JSON) memory, so a restart carries on where it stopped.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Mapping

import attrs

from risk_actors.messages import (ORDER_STOP, POSITION_SHORT, SIDE_BUY, SIDE_SELL, STOP_TYPES)
from rules.base import (Alert, CancelOrder, ModifyStop, OrderEvent, PlaceStop, PositionEvent,
                        QuoteEvent, Reconciled, Rule, RuleUpdate, RuleViolation, Tick)

TAG_PREFIX = "riskd-012-"
MAX_BACKOFF_FACTOR = 32  # a broker that keeps refusing is asked at most every 32 intervals


def _positive(_inst, attribute, value) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _offset_below_trigger(inst, attribute, value) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")
    if value >= inst.profit_trigger_ticks:
        # The stop would sit at or beyond the price that armed it: the broker refuses a sell
        # stop at or above the market.
        raise ValueError(f"{attribute.name} must be below profit_trigger_ticks "
                         f"({inst.profit_trigger_ticks}), got {value!r}")


@attrs.frozen
class AutoBreakeven:
    """``auto_breakeven`` of trade_management: move the stop to entry once in profit."""

    enabled: bool = True
    profit_trigger_ticks: int = attrs.field(default=10, validator=_positive)
    offset_ticks: int = attrs.field(default=0, validator=_offset_below_trigger)


@attrs.frozen
class TrailingStop:
    """``trailing_stop`` of trade_management: trail the best price once far enough in profit."""

    enabled: bool = True
    activation_ticks: int = attrs.field(default=20, validator=_positive)
    trail_distance_ticks: int = attrs.field(default=10, validator=_positive)


def _something_enabled(inst, attribute, value) -> None:
    if not inst.auto_breakeven.enabled and not value.enabled:
        raise ValueError("auto_breakeven and trailing_stop are both disabled, so the rule would "
                         f"do nothing: set enabled: false on the rule instead (got {value!r})")


@attrs.frozen
class Params:
    """Parameters of trade_management."""

    auto_breakeven: AutoBreakeven = attrs.field(factory=AutoBreakeven)
    trailing_stop: TrailingStop = attrs.field(factory=TrailingStop, validator=_something_enabled)
    min_modify_interval_seconds: float = attrs.field(default=1.0, converter=float,
                                                     validator=_positive)
    placement_timeout_seconds: float = attrs.field(default=5.0, converter=float,
                                                   validator=_positive)


# ---------------------------------------------------------------------------------------------
# the price math: in whole ticks, exact (Decimal), so every stop lands on the tick grid
def to_ticks(price: float, tick_size: float) -> Decimal:
    """A price in ticks (fractional when the price is off the grid, e.g. an averaged entry)."""
    return Decimal(str(price)) / Decimal(str(tick_size))


def to_price(ticks: int, tick_size: float) -> float:
    """A whole number of ticks back to a price, exactly on the grid."""
    return float(Decimal(ticks) * Decimal(str(tick_size)))


def target_stop(direction: int, average_ticks: Decimal, mark_ticks: Decimal,
                params: Params) -> tuple[int, str] | None:
    """The stop (in ticks) the automation asks for after the best price ``mark_ticks``, and
    which part asked (``breakeven``/``trailing``); None while neither is armed.

    ``direction`` is +1 for a long, -1 for a short. Levels off the grid round toward the profit
    side for breakeven (it must not lose) and away from the market for trailing (never closer
    than the configured distance).
    """
    best = (mark_ticks - average_ticks) * direction
    candidates: list[tuple[int, str]] = []
    be = params.auto_breakeven
    if be.enabled and best >= be.profit_trigger_ticks:
        level = average_ticks + direction * be.offset_ticks
        candidates.append((math.ceil(level) if direction > 0 else math.floor(level), "breakeven"))
    tr = params.trailing_stop
    if tr.enabled and best >= tr.activation_ticks:
        level = mark_ticks - direction * tr.trail_distance_ticks
        candidates.append((math.floor(level) if direction > 0 else math.ceil(level), "trailing"))
    if not candidates:
        return None
    # Tighter wins: the higher stop for a long, the lower for a short (ties: breakeven first).
    return max(candidates, key=lambda c: c[0] * direction)


def tighter(direction: int, new: Decimal | int, old: Decimal | int) -> bool:
    """True when stop ``new`` is strictly tighter (closer to the market) than ``old``."""
    return (new - old) * direction > 0


def stop_side(position_type: int) -> int:
    """The order side that closes a position: sell for a long, buy for a short."""
    return SIDE_BUY if position_type == POSITION_SHORT else SIDE_SELL


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@attrs.define
class _Pass:
    """What one evaluation decided so far (actions, alerts, wake-ups, reasons)."""

    actions: list = attrs.field(factory=list)
    alerts: list = attrs.field(factory=list)
    reasons: list = attrs.field(factory=list)
    wakes: list = attrs.field(factory=list)


class TradeManagement(Rule):
    """Automatic breakeven and trailing stop (012): places and tightens protective stops."""

    name = "trade_management"
    rule_id = "012"
    version = "1.0"
    description = "Moves the stop to breakeven and trails it as a position gains; never loosens."
    author = "riskd"
    Params = Params
    events = (QuoteEvent, PositionEvent, OrderEvent, Reconciled, Tick)

    # ---- evaluate ------------------------------------------------------------------------------
    def evaluate(self, event, state, now):
        memory = _plain(state.rule_memory.get(self.name) or {})
        old_positions: dict = memory.get("positions", {})
        # Keep modify records only for orders still working: the rest can never be modified.
        modified = {k: v for k, v in memory.get("modified", {}).items()
                    if int(k) in state.orders}
        run = _Pass()
        positions: dict = {}
        for cid, old in sorted(old_positions.items()):
            pos = state.positions.get(cid)
            if pos is None or pos.type != old["side"]:
                self._drop(cid, old, state, run)  # closed or reversed: this tracking is over
        for cid, pos in sorted(state.positions.items()):
            positions[cid] = self._manage(cid, pos, old_positions.get(cid), event, state, now,
                                          modified, run)
        new_memory = {k: v for k, v in (("positions", positions), ("modified", modified)) if v}
        changed = new_memory != memory
        wake_at = min(run.wakes) if run.wakes else None
        if run.actions:
            return RuleViolation(self.name, "; ".join(run.reasons),
                                 contract_id=getattr(run.actions[0], "contract_id", None),
                                 data={"actions": tuple(run.actions) + tuple(run.alerts)},
                                 memory=new_memory, wake_at=wake_at)
        if changed or wake_at is not None or run.alerts:
            return RuleUpdate(memory=new_memory if changed else None, wake_at=wake_at,
                              actions=tuple(run.alerts))
        return None

    def get_enforcement_action(self, violation):
        return tuple(violation.data["actions"])

    # ---- one position --------------------------------------------------------------------------
    def _manage(self, cid, pos, old, event, state, now, modified, run) -> dict:
        p = self.params
        direction = -1 if pos.type == POSITION_SHORT else 1
        side = stop_side(pos.type)
        if old is None or old["side"] != pos.type:
            # The tag generation carries over a reversal: the gateway keeps the position id,
            # and a reused customTag would be refused.
            entry = {"side": pos.type, "mark": None, "gen": old["gen"] if old else 0,
                     "since": int(now.timestamp())}
        else:
            entry = dict(old)
        info = state.contracts.get(cid)
        quote = state.quotes.get(cid)
        if (isinstance(event, QuoteEvent) and event.contract_id == cid and quote is not None
                and quote.last_price is not None):
            # Only this contract's own quotes move its mark: a quote remembered from before the
            # position opened must not count as profit made by it.
            mark = entry["mark"]
            last = quote.last_price
            entry["mark"] = last if mark is None else (max(mark, last) if direction > 0
                                                       else min(mark, last))
        if (isinstance(event, OrderEvent) and event.contract_id == cid and event.working
                and (event.custom_tag or "").startswith(TAG_PREFIX) and event.side == side):
            entry["own"] = event.order_id  # the stop this rule placed: cancelled when flat
        stops = [o for o in state.orders.values()
                 if o.contract_id == cid and o.side == side and o.type in STOP_TYPES
                 and o.order_id != entry.get("cancelling")]
        if stops:
            entry.pop("pending", None)  # the placed stop (or another) has arrived
        own = entry.get("own")
        theirs = [o for o in stops if o.order_id != own]
        if (own is not None and len(theirs) < len(stops)
                and sum(o.size for o in theirs) >= pos.size):
            # The trader's stop arrived after this rule placed one (orders and quotes come on
            # two hubs, so a quote can overtake the trader's new order). Two full-size stops
            # could both fill and reverse the position: keep the trader's, cancel ours.
            run.actions.append(CancelOrder(own))
            run.reasons.append(f"{cid}: your own stop covers the position; cancel the extra "
                               f"stop this rule placed (order {own})")
            entry["cancelling"] = own
            entry.pop("own", None)
            if entry.get("stop_id") == own:
                entry.pop("stop_id", None)
            stops = theirs
        if info is None or entry["mark"] is None or quote is None or quote.last_price is None:
            return entry  # never act on missing data
        tick = info.tick_size
        target = target_stop(direction, to_ticks(pos.average_price, tick),
                             to_ticks(entry["mark"], tick), p)
        if target is None:
            return entry
        if state.locked_for(cid, now):
            return entry  # the lockout guard is closing it and would cancel any new stop
        stop_t, kind = target
        # Never through the market: the broker refuses such a stop. One tick inside it is the
        # tightest stop that can exist; a later quote tightens further if the price recovers.
        last_t = to_ticks(quote.last_price, tick)
        if direction > 0:
            stop_t = min(stop_t, math.floor(last_t) - 1)
        else:
            stop_t = max(stop_t, math.ceil(last_t) + 1)
        label = f"{info.name or cid} {'long' if direction > 0 else 'short'} {pos.size}"
        movable = [o for o in stops if o.type == ORDER_STOP and o.stop_price is not None]
        if stops and not movable:
            if not entry.get("foreign"):
                entry["foreign"] = True
                run.alerts.append(Alert(
                    f"Trade management: {label} is protected by your own stop-limit or trailing "
                    f"stop; it is left as you set it (breakeven/trailing not applied).", "info"))
            return entry
        entry.pop("foreign", None)
        if not movable:
            self._place(cid, pos, entry, side, stop_t, kind, label, tick, now, run)
        else:
            self._tighten(pos, entry, movable, len(stops), direction, stop_t, kind, label, tick,
                          now, modified, run)
        return entry

    def _place(self, cid, pos, entry, side, stop_t, kind, label, tick, now, run) -> None:
        timeout = timedelta(seconds=self.params.placement_timeout_seconds)
        pending = entry.get("pending")
        if pending is not None:
            due = _when(pending["at"]) + timeout * min(2 ** (pending["tries"] - 1),
                                                       MAX_BACKOFF_FACTOR)
            if now < due:
                run.wakes.append(due)  # still waiting for the new stop's order event
                return
            tag, tries = pending["tag"], pending["tries"] + 1  # same tag: no duplicate stop
        else:
            entry["gen"] = entry["gen"] + 1
            # Unique per account for good (the gateway refuses a tag it has seen, even on a
            # filled or cancelled order), yet the same for two evaluations of one memory state:
            # position id, when this tracking began, and a count of placements.
            ident = pos.position_id if pos.position_id is not None else 0
            tag, tries = f"{TAG_PREFIX}{ident}-{entry['since']}-{entry['gen']}", 1
        price = to_price(stop_t, tick)
        entry["pending"] = {"tag": tag, "at": now.isoformat(), "price": price, "tries": tries}
        run.wakes.append(now + timeout * min(2 ** (tries - 1), MAX_BACKOFF_FACTOR))
        run.actions.append(PlaceStop(cid, side, pos.size, price, custom_tag=tag))
        run.reasons.append(f"{kind} stop for {label}: place {'sell' if side else 'buy'} stop "
                           f"{pos.size} @ {price:.2f}")

    def _tighten(self, pos, entry, movable, n_stops, direction, stop_t, kind, label, tick, now,
                 modified, run) -> None:
        # The stop this rule placed or moved before, else the tightest of the trader's.
        by_id = {o.order_id: o for o in movable}
        stop = by_id.get(entry.get("stop_id")) or max(
            movable, key=lambda o: (to_ticks(o.stop_price, tick) * direction, -o.order_id))
        entry["stop_id"] = stop.order_id
        current = to_ticks(stop.stop_price, tick)
        move = tighter(direction, stop_t, current)
        # With several stops the trader split the protection; sizing one to the position would
        # over-hedge, so only a single stop follows the position's size.
        resize = n_stops == 1 and stop.size != pos.size
        if not (move or resize):
            return
        price = to_price(stop_t, tick) if move else stop.stop_price
        size = pos.size if resize else None
        key = str(stop.order_id)
        record = modified.get(key)
        tries = 1
        if record is not None:
            took = (record["price"] == stop.stop_price
                    and (record["size"] is None or record["size"] == stop.size))
            tries = 1 if took else record["tries"] + 1
            interval = timedelta(seconds=self.params.min_modify_interval_seconds)
            due = _when(record["at"]) + interval * min(2 ** (record["tries"] - 1) if not took
                                                       else 1, MAX_BACKOFF_FACTOR)
            if now < due:
                run.wakes.append(due)  # at most one modify per interval per order
                return
        modified[key] = {"at": now.isoformat(), "price": price, "size": size, "tries": tries}
        run.actions.append(ModifyStop(stop.order_id, price, size))
        what = []
        if move:
            what.append(f"stop {stop.stop_price:.2f} -> {price:.2f}")
        if resize:
            what.append(f"size {stop.size} -> {pos.size}")
        run.reasons.append(f"{kind if move else 'managed'} stop for {label}: modify order "
                           f"{stop.order_id} {', '.join(what)}")

    def _drop(self, cid, old, state, run) -> None:
        own = old.get("own")
        order = state.orders.get(own) if own is not None else None
        if order is not None and order.contract_id == cid and order.side == stop_side(old["side"]):
            # Our stop outlived its position: left working it could open a new one.
            run.actions.append(CancelOrder(own))
            info = state.contracts.get(cid)
            run.reasons.append(f"{(info.name if info else None) or cid} position closed or "
                               f"reversed: cancel the stop this rule placed (order {own})")
