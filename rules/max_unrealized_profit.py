"""005 MaxUnrealizedProfit: take the profit of a position whose open gain reaches the target.

Each open position is priced at its contract's latest quote, exactly as 004 does (rules-spec
section 0). When one position's unrealized P&L is at or above ``target`` (exactly at the target
is a breach), riskd closes that position alone: the others stay open and nothing is locked
(rules-spec 005, V34). The close books the profit, so 013 DailyRealizedProfit may lock the day
right after (005 c).

Missing data, stale quotes and repeated closes are handled as in 004 (shared engine
:class:`rules.daily_unrealized_loss.PerPositionPnlRule`): no quote or no metadata never breaches
and is warned about once if it lasts ``max_quote_age_seconds``; a stale quote is used with one
warning; a position already ordered closed is not ordered again for a few seconds.
"""

from __future__ import annotations

import attrs

from rules.daily_unrealized_loss import PerPositionPnlRule


def _positive(_inst, attribute, value) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class Params:
    """Parameters of max_unrealized_profit."""

    target: float = attrs.field(default=1000.0, converter=float, validator=_positive)
    max_quote_age_seconds: float = attrs.field(default=10.0, converter=float,
                                               validator=_positive)


class MaxUnrealizedProfit(PerPositionPnlRule):
    """Closes a single position whose unrealized profit reaches the per-position target (005)."""

    name = "max_unrealized_profit"
    rule_id = "005"
    version = "1.0"
    description = ("Closes a position whose unrealized profit reaches the per-position target; "
                   "no lock.")
    author = "riskd"
    Params = Params
    what = "unrealized profit"

    @property
    def threshold(self) -> float:
        return self.params.target

    def breached(self, pnl: float) -> bool:
        return pnl >= self.params.target
