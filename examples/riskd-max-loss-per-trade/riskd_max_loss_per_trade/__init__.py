"""max_loss_per_trade: a losing trade beyond the limit locks its symbol until the daily reset.

An example of a third-party riskd rule. It imports only the plugin interface (``rules.base``)
and registers itself with one entry point (see pyproject.toml); riskd finds it by itself.
"""

from __future__ import annotations

import attrs

from rules.base import (CancelOrders, ClosePosition, Lock, LOCK_HARD, Rule, RuleViolation,
                        TradeEvent)


def _negative(_inst, attribute, value) -> None:
    if value >= 0:
        raise ValueError(f"{attribute.name} must be < 0 (a loss), got {value!r}")


@attrs.frozen
class Params:
    """Parameters: ``limit``, the loss in dollars (negative) one trade may book."""

    limit: float = attrs.field(default=-150.0, converter=float, validator=_negative)


class MaxLossPerTrade(Rule):
    """One trade losing ``limit`` or more locks that symbol for the rest of the trading day."""

    name = "max_loss_per_trade"
    rule_id = "X01"
    version = "1.0.0"
    description = "A single losing trade beyond the limit locks its symbol until the reset."
    author = "riskd examples"
    Params = Params
    events = (TradeEvent,)

    def evaluate(self, event, state, now):
        if event.voided or event.pnl is None or event.pnl > self.params.limit:
            return None
        root = state.root(event.contract_id)
        if root is None:
            return None  # never guess a symbol: without its metadata, do nothing
        return RuleViolation(
            self.name, f"one {root} trade lost {event.pnl:.2f} (limit {self.params.limit:.2f})",
            contract_id=event.contract_id,
            data={"root": root, "until": state.next_reset_at,
                  "contracts": tuple(c for c in state.positions if state.root(c) == root)})

    def get_enforcement_action(self, violation):
        actions = [ClosePosition(c) for c in violation.data["contracts"]]
        actions.append(CancelOrders(violation.contract_id))
        actions.append(Lock(LOCK_HARD, violation.reason, violation.data["until"], scope="symbol",
                            symbol=violation.data["root"], until_reset=True))
        return tuple(actions)
