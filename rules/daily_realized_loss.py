"""003 DailyRealizedLoss: stop the day when realized losses reach the limit.

The daily figure is the sum of ``profitAndLoss`` of the trades since the last reset, minus their
fees when ``include_fees`` (default; fees of opening half-turns count too). With ``basis: net``
the open positions' unrealized P&L at the latest quote is added, as the prop firms count their
own daily loss limit. At or below ``limit``: close everything, cancel every order, and lock the
account until the next daily reset (17:00 America/Chicago by default). While the lock is active,
the lockout guard of the core flattens any new fill; nobody can lift the lock early.
"""

from __future__ import annotations

from typing import Literal

import attrs

from risk_actors.state import unrealized_pnl
from rules._common import flatten_and_lock_until_reset
from rules.base import (PositionEvent, QuoteEvent, Reconciled, Rule, RuleViolation,
                        TradeEvent, Usage)


def _negative(_inst, attribute, value) -> None:
    if value >= 0:
        raise ValueError(f"{attribute.name} must be < 0 (a loss), got {value!r}")


@attrs.frozen
class Params:
    """Parameters of daily_realized_loss."""

    limit: float = attrs.field(default=-500.0, converter=float, validator=_negative)
    include_fees: bool = True
    basis: Literal["realized", "net"] = "realized"


def daily_figure(state, include_fees: bool, basis: str,
                 closed: tuple[str, int] | None = None) -> tuple[float, list[str]]:
    """The day's P&L as this rule counts it, and the contracts whose unrealized P&L is unknown.

    ``closed`` = (contract, size): count that position as ``size`` contracts smaller (a closing
    fill whose Position update has not arrived yet).
    """
    total = state.net_realized(include_fees)
    missing: list[str] = []
    if basis == "net":
        for contract_id, pos in state.positions.items():
            value = state.unrealized(contract_id)
            if value is None:
                missing.append(contract_id)  # never breach on missing data: count it as 0
                continue
            if closed is not None and closed[0] == contract_id:
                left = max(pos.size - closed[1], 0) * (1 if pos.signed_size > 0 else -1)
                info = state.contracts[contract_id]
                value = unrealized_pnl(pos.average_price, state.quotes[contract_id].last_price,
                                       left, info.tick_size, info.tick_value)
            total += value
    return round(total, 2), missing


class DailyRealizedLoss(Rule):
    """Daily loss limit with a hard lock until the reset (003)."""

    name = "daily_realized_loss"
    rule_id = "003"
    version = "1.0"
    description = "Closes everything and locks the account until the daily reset at the loss limit."
    author = "riskd"
    Params = Params
    events = (TradeEvent, Reconciled, QuoteEvent, PositionEvent)

    def applies_to_event(self, event) -> bool:
        if isinstance(event, (QuoteEvent, PositionEvent)):
            return self.params.basis == "net"
        return isinstance(event, (TradeEvent, Reconciled))

    def evaluate(self, event, state, now):
        if (isinstance(event, TradeEvent) and event.pnl is None and not event.voided
                and not (self.params.include_fees and event.fees)):
            # An opening half-turn changes no realized figure (rules-spec 003 d), unless its
            # fees count (section 8: fees of opening half-turns count too).
            return None
        if any(lk.rule == self.name and lk.active(now) for lk in state.lockouts):
            return None  # already stopped for the day; the lockout guard handles new fills
        total, _missing = daily_figure(state, self.params.include_fees, self.params.basis)
        if (self.params.basis == "net" and isinstance(event, TradeEvent)
                and event.pnl is not None and not event.voided):
            # A closing fill's Trade comes before its Position update (gateway-api.md), so the
            # position may still hold the lots whose loss this trade just realized. Count it
            # both ways and keep the smaller loss: never breach on a loss counted twice. The
            # Position event (or the next quote) re-checks once the state has settled.
            settled, _ = daily_figure(state, self.params.include_fees, self.params.basis,
                                      closed=(event.contract_id, event.size))
            total = max(total, settled)
        if total > self.params.limit:
            return None
        until = state.next_reset_at
        return RuleViolation(
            self.name,
            f"daily {'net' if self.params.basis == 'net' else 'realized'} P&L {total:.2f} "
            f"reached the limit {self.params.limit:.2f}",
            data={"pnl": total, "limit": self.params.limit, "until": until})

    def get_enforcement_action(self, violation):
        return flatten_and_lock_until_reset(
            violation.data["until"], violation.reason,
            f"Daily loss limit hit: {violation.reason}. Trading locked until the daily reset.",
            "critical")

    def usage(self, state, now):
        total, _missing = daily_figure(state, self.params.include_fees, self.params.basis)
        what = "net" if self.params.basis == "net" else "realized"
        fees = ", fees included" if self.params.include_fees else ""
        return (Usage(f"daily {what} P&L{fees}", total, self.params.limit, "$"),)
