"""008 NoStopLossGrace: every open position must have a protective stop within a grace period.

A protective stop is a working order (status Open or Pending) in the same contract, on the
opposite side of the position, of type StopLimit (3), Stop (4) or TrailingStop (5). When a new
position opens (or one turns from long to short), a grace deadline starts; if the position has
no stop when the deadline comes, riskd closes that position alone. No lockout.

What is measured from when (rules-spec 008):
- the grace runs from the position's opening: scaling in (1 -> 2) does not restart it, a stop
  that arrives and is cancelled again inside the grace (e) does not extend it;
- a stop present when the deadline comes satisfies it, bracket stops included (h);
- a position that goes flat cancels its deadline (f);
- a position that had its stop at the deadline and loses it later gets a fresh grace from that
  moment: traders move stops by cancel-and-replace, and closing on that would be a false
  enforcement;
- a position found by reconciliation (start-up, reconnect) that has no deadline starts one.

The deadlines live in the rule's memory (persisted), so a restart keeps them: the Reconciled
event after start-up re-arms the timer, and a deadline that passed while riskd was down is
judged at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

import attrs

from risk_actors.messages import (POSITION_SHORT, SIDE_BUY, SIDE_SELL, STOP_TYPES,
                                  WORKING_STATUSES)
from rules.base import (Alert, ClosePosition, OrderEvent, PositionEvent, Reconciled, Rule,
                        RuleUpdate, RuleViolation, Tick)


def _positive(_inst, attribute, value) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0 seconds, got {value!r}")


@attrs.frozen
class Params:
    """Parameters of no_stop_loss_grace."""

    grace_period_seconds: float = attrs.field(default=10.0, converter=float, validator=_positive)


def stop_side(position_type: int) -> int:
    """The order side that closes a position: sell for a long, buy for a short."""
    return SIDE_BUY if position_type == POSITION_SHORT else SIDE_SELL


def has_protective_stop(orders: Mapping[int, Any], contract_id: str, position_type: int) -> bool:
    """True when a working stop order protects the position (rules-spec 008 definition)."""
    side = stop_side(position_type)
    return any(o.contract_id == contract_id and o.type in STOP_TYPES
               and o.status in WORKING_STATUSES and o.side == side
               for o in orders.values())


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class NoStopLossGrace(Rule):
    """Closes a position that has no protective stop when its grace period ends (008)."""

    name = "no_stop_loss_grace"
    rule_id = "008"
    version = "1.0"
    description = "Closes a position still without a stop loss when its grace period ends."
    author = "riskd"
    Params = Params
    events = (PositionEvent, OrderEvent, Tick, Reconciled)

    def evaluate(self, event, state, now):
        grace = timedelta(seconds=self.params.grace_period_seconds)
        old: Mapping[str, Any] = (state.rule_memory.get(self.name) or {}).get("positions") or {}
        tracked: dict[str, dict] = {}
        overdue: list[str] = []
        # Every evaluation re-derives the whole picture from the state, so a lost or late memory
        # update (the next event may be evaluated before this verdict is applied) heals itself.
        for cid, pos in sorted(state.positions.items()):
            covered = has_protective_stop(state.orders, cid, pos.type)
            entry = old.get(cid)
            if entry is None or entry.get("side") != pos.type:
                # A new position, or a reversal (a new position the other way): grace starts now.
                entry = {"side": pos.type, "deadline": (now + grace).isoformat(),
                         "covered": covered}
            deadline = _when(entry.get("deadline"))
            if deadline is not None and now >= deadline:
                # "covered" in memory = a stop was there at the last event before this one, so it
                # was there at the deadline even if this event (a late timer, a restart, the
                # stop's own cancel) comes after it. Only a gap at the deadline is a breach.
                if covered or entry.get("covered"):
                    deadline = None
                else:
                    overdue.append(cid)
                    # If the close does not take, the position is judged again one grace later.
                    deadline = now + grace
            if deadline is None and not covered:
                deadline = now + grace  # lost its stop after the grace: a fresh grace from now
            tracked[cid] = {"side": pos.type,
                            "deadline": deadline.isoformat() if deadline else None,
                            "covered": covered}
        memory = {"positions": tracked} if tracked else {}
        pending = [_when(e["deadline"]) for e in tracked.values() if e["deadline"]]
        wake_at = min(pending) if pending else None
        if overdue:
            names = ", ".join(self._label(state, c) for c in overdue)
            return RuleViolation(
                self.name,
                f"no stop loss on {names} {self.params.grace_period_seconds:g} s after the "
                f"position opened",
                contract_id=overdue[0],
                data={"contracts": tuple(overdue), "labels": names,
                      "grace": self.params.grace_period_seconds},
                memory=memory, wake_at=wake_at)
        changed = dict(memory) != _plain(state.rule_memory.get(self.name) or {})
        if changed or wake_at is not None:
            return RuleUpdate(memory=memory if changed else None, wake_at=wake_at)
        return None

    def get_enforcement_action(self, violation):
        closes = tuple(ClosePosition(cid) for cid in violation.data["contracts"])
        return closes + (Alert(f"No stop loss on {violation.data['labels']} within "
                               f"{violation.data['grace']:g} s: position closed.", "warning"),)

    @staticmethod
    def _label(state, contract_id: str) -> str:
        info = state.contracts.get(contract_id)
        return info.name if info and info.name else contract_id


def _plain(value: Any) -> Any:
    """Memory as plain dicts, to compare with a freshly built one."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
