"""007 CooldownAfterLoss: a losing trade closes everything and stops trading for a while.

A closing trade whose P&L is at or below a tier's ``loss_amount`` flattens the account (close all
positions, cancel all orders) and starts a cooldown lock of that tier's ``cooldown_duration``
seconds. When several tiers match, the largest one wins (the longest cooldown; with tiers that
grow with the loss, as validated, that is the deepest tier matched). A new loss during a
cooldown extends it to max(current expiry, now + tier); nothing shortens it.

The figure is the trade's ``profitAndLoss`` as the gateway reports it (what the platform shows on
the trade). With ``include_fees: true`` the trade's own fees are subtracted first (the fees of
its opening half-turn belong to that other trade). Opening half-turns (P&L null), profits and
voided trades do nothing.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import attrs

from rules.base import (Alert, FlattenAccount, Lock, LOCK_COOLDOWN, Reconciled, Rule,
                        RuleViolation, TradeEvent)


def _negative(_inst, attribute, value) -> None:
    if value >= 0:
        raise ValueError(f"{attribute.name} must be < 0 (a loss), got {value!r}")


def _positive(_inst, attribute, value) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0 (seconds), got {value!r}")


@attrs.frozen
class Tier:
    """A loss at or below ``loss_amount`` (dollars, negative) -> ``cooldown_duration`` seconds."""

    loss_amount: float = attrs.field(converter=float, validator=_negative)
    cooldown_duration: int = attrs.field(validator=_positive)


DEFAULT_TIERS = (Tier(-100.0, 300), Tier(-200.0, 900), Tier(-300.0, 1800))


def _tiers(_inst, attribute, value) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must list at least one tier, got {list(value)!r}")
    amounts = [t.loss_amount for t in value]
    if len(set(amounts)) != len(amounts):
        raise ValueError(f"{attribute.name} must not repeat a loss_amount, got {amounts!r}")
    # A bigger loss must never earn a shorter cooldown: almost certainly a typo in the config.
    ordered = sorted(value, key=lambda t: -t.loss_amount)
    for smaller, bigger in zip(ordered, ordered[1:]):
        if bigger.cooldown_duration < smaller.cooldown_duration:
            raise ValueError(
                f"{attribute.name} must not give a bigger loss a shorter cooldown: "
                f"{bigger.loss_amount:g} -> {bigger.cooldown_duration} s but "
                f"{smaller.loss_amount:g} -> {smaller.cooldown_duration} s")


@attrs.frozen
class Params:
    """Parameters of cooldown_after_loss."""

    loss_thresholds: tuple[Tier, ...] = attrs.field(default=DEFAULT_TIERS, converter=tuple,
                                                    validator=_tiers)
    include_fees: bool = False


def trade_figure(pnl: float, fees: float, include_fees: bool) -> float:
    """The single-trade P&L compared with the tiers, exact to the cent."""
    value = Decimal(str(pnl)) - (Decimal(str(fees)) if include_fees else Decimal(0))
    return float(round(value, 2))


def tier_for(figure: float, tiers) -> Tier | None:
    """The tier a trade's P&L falls in: of every tier it reaches (figure <= loss_amount), the one
    with the longest cooldown. None when it reaches none. Monotone: a bigger loss never gets a
    shorter cooldown, whatever order the tiers are written in."""
    matched = [t for t in tiers if figure <= t.loss_amount]
    if not matched:
        return None
    return max(matched, key=lambda t: (t.cooldown_duration, -t.loss_amount))


class CooldownAfterLoss(Rule):
    """Tiered cooldown after a single losing trade (007)."""

    name = "cooldown_after_loss"
    rule_id = "007"
    version = "1.0"
    description = "Closes everything and starts a cooldown after a losing trade, by loss tier."
    author = "riskd"
    Params = Params
    events = (TradeEvent, Reconciled)

    def _tier(self, record) -> Tier | None:
        if record.voided or record.pnl is None:
            return None
        return tier_for(trade_figure(record.pnl, record.fees, self.params.include_fees),
                        self.params.loss_thresholds)

    def evaluate(self, event, state, now):
        if isinstance(event, TradeEvent):
            record = state.trades.get(event.trade_id)
            if record is None or record.voided or event.voided:
                return None
            tier = self._tier(record)
            if tier is None:
                return None
            # The loss just happened: the cooldown runs from now.
            hit, until = record, now + timedelta(seconds=tier.cooldown_duration)
        else:
            # After a (re)connect: a loss booked while riskd was not listening calls for the
            # cooldown that would be running now (from the trade's time); an old one does not.
            hit, until, tier = None, None, None
            for record in state.trades.values():
                t = self._tier(record)
                if t is None:
                    continue
                end = min(record.created, now) + timedelta(seconds=t.cooldown_duration)
                if until is None or end > until:
                    hit, until, tier = record, end, t
            if until is None or until <= now:
                return None
        own = [lk for lk in state.lockouts if lk.rule == self.name and lk.active(now)]
        if any(lk.expires_at is None or lk.expires_at >= until for lk in own):
            return None  # the running cooldown already ends later: max(current, now + tier)
        figure = trade_figure(hit.pnl, hit.fees, self.params.include_fees)
        return RuleViolation(
            self.name,
            f"trade P&L {figure:.2f} reached the {tier.loss_amount:.2f} tier: "
            f"cooldown {tier.cooldown_duration} s until {until:%Y-%m-%d %H:%M:%S} UTC",
            contract_id=hit.contract_id,
            data={"pnl": figure, "tier": tier.loss_amount, "seconds": tier.cooldown_duration,
                  "until": until, "trade_id": hit.trade_id})

    def get_enforcement_action(self, violation):
        # Close everything first, then the cooldown keeps the account flat until it ends.
        return (FlattenAccount(),
                Lock(LOCK_COOLDOWN, violation.reason, violation.data["until"]),
                Alert(f"Loss cooldown: {violation.reason}.", "warning"))
