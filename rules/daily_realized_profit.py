"""013 DailyRealizedProfit: stop the day when realized profit reaches the target.

The daily figure is the one 003 DailyRealizedLoss counts (its ``daily_figure``, realized basis):
the sum of ``profitAndLoss`` of the trades since the last reset, minus their fees when
``include_fees`` (default; fees of opening half-turns count too). At or above ``target`` (exactly
at the target is a breach): close everything, cancel every order, and lock the account until the
next daily reset, with the configured ``message`` as the lock's reason and the trader's alert.
While the lock is active, the core's lockout guard closes any new fill at once; nobody can lift
the lock early.
"""

from __future__ import annotations

import attrs

from rules._common import flatten_and_lock_until_reset
from rules.base import Reconciled, Rule, RuleViolation, TradeEvent, Usage
from rules.daily_realized_loss import daily_figure


def _positive(_inst, attribute, value) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0 (a profit), got {value!r}")


def _text(_inst, attribute, value) -> None:
    if not value.strip():
        raise ValueError(f"{attribute.name} must not be empty, got {value!r}")


@attrs.frozen
class Params:
    """Parameters of daily_realized_profit."""

    target: float = attrs.field(default=1000.0, converter=float, validator=_positive)
    include_fees: bool = True
    message: str = attrs.field(default="Daily profit target reached", validator=_text)


class DailyRealizedProfit(Rule):
    """Daily profit target with a hard lock until the reset (013)."""

    name = "daily_realized_profit"
    rule_id = "013"
    version = "1.0"
    description = ("Closes everything and locks the account until the daily reset at the "
                   "profit target.")
    author = "riskd"
    Params = Params
    events = (TradeEvent, Reconciled)

    def evaluate(self, event, state, now):
        if isinstance(event, TradeEvent) and event.pnl is None and not event.voided:
            # An opening half-turn realizes nothing, and its fees only move the figure away
            # from a profit target.
            return None
        if any(lk.rule == self.name and lk.active(now) for lk in state.lockouts):
            return None  # already stopped for the day; the lockout guard handles new fills
        total, _ = daily_figure(state, self.params.include_fees, "realized")
        if total < self.params.target:
            return None
        until = state.next_reset_at
        return RuleViolation(
            self.name,
            f"{self.params.message}: daily realized P&L {total:.2f} reached the target "
            f"{self.params.target:.2f}",
            data={"pnl": total, "target": self.params.target, "until": until})

    def get_enforcement_action(self, violation):
        return flatten_and_lock_until_reset(
            violation.data["until"], violation.reason,
            f"{violation.reason}. Positions closed; trading locked until the daily reset.",
            "warning")

    def usage(self, state, now):
        total, _ = daily_figure(state, self.params.include_fees, "realized")
        fees = ", fees included" if self.params.include_fees else ""
        return (Usage(f"daily realized P&L{fees}", total, self.params.target, "$"),)
