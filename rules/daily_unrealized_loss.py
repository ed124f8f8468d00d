"""004 DailyUnrealizedLoss: close a position whose open loss reaches the per-position limit.

Each open position is priced at its contract's latest quote: unrealized P&L = (lastPrice -
averagePrice) / tickSize x tickValue x size, + for a long, - for a short (rules-spec section 0).
When one position's figure is at or below ``limit`` (exactly at the limit is a breach), riskd
closes that position alone: the others stay open and nothing is locked (rules-spec 004, V34).
The close books the loss, so 003 DailyRealizedLoss may lock the day right after (004 e).

The rule runs on position and quote events (and on the contract metadata, reconciliation and
its own timer) and judges every open position each time, so a figure never depends on which
event happened to arrive last.

Missing data never breaches: a position without a quote or without contract metadata is
skipped. It is noted in the rule's memory (``unpriced``: contract -> why, since when), and if it
stays unpriced for ``max_quote_age_seconds`` the trader gets one warning that this position is
not protected by the rule. A quote older than ``max_quote_age_seconds`` is still used (the last
price is the best estimate there is) with one warning per stale quote.

Re-firing: a close takes a round trip, and quotes keep arriving meanwhile. Once a position was
ordered closed, the same position (same contract, side, size and average price) is not ordered
closed again for ``REFIRE_SECONDS``; a new fill that changes it is judged at once. Memory reaches
the next evaluation only after this verdict is applied, so a repeat can still slip through; the
enforcer makes that harmless (a second close of the same contract joins the running job).

``PerPositionPnlRule`` holds all of this for 004 and for 005 MaxUnrealizedProfit, which differs
only in the direction and the threshold.
"""

from __future__ import annotations

import abc
from datetime import datetime, timedelta
from typing import Any, Mapping

import attrs

from rules.base import (Alert, ClosePosition, ContractsKnown, PositionEvent, QuoteEvent,
                        Reconciled, Rule, RuleUpdate, RuleViolation, Tick, Usage)

# How long a close order stands for the same position before the rule may order it again. The
# enforcer retries on its own well within this; a repeat only guards against a lost job.
REFIRE_SECONDS = 5.0
NO_QUOTE = "no quote yet"
NO_METADATA = "no contract metadata (tick size/value)"


def _negative(_inst, attribute, value) -> None:
    if value >= 0:
        raise ValueError(f"{attribute.name} must be < 0 (a loss), got {value!r}")


def _positive(_inst, attribute, value) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class Params:
    """Parameters of daily_unrealized_loss."""

    limit: float = attrs.field(default=-300.0, converter=float, validator=_negative)
    max_quote_age_seconds: float = attrs.field(default=10.0, converter=float,
                                               validator=_positive)


@attrs.frozen
class Mark:
    """One open position as the rule sees it at ``now``.

    ``pnl`` is None when the position cannot be priced (``missing`` says why); ``quote_age`` is
    the age in seconds of the quote used (None without a quote).
    """

    contract_id: str
    label: str
    signature: tuple
    pnl: float | None
    missing: str | None
    quote_received: datetime | None
    quote_age: float | None


def label_of(state, contract_id: str) -> str:
    """The contract's name for people (``MNQZ6``), its id when the metadata is unknown."""
    info = state.contracts.get(contract_id)
    return info.name if info and info.name else contract_id


def mark_positions(state, now: datetime) -> list[Mark]:
    """Every open position priced at its latest quote (sorted by contract id)."""
    marks: list[Mark] = []
    for cid, pos in sorted(state.positions.items()):
        quote = state.quotes.get(cid)
        has_price = quote is not None and quote.last_price is not None
        missing = None
        if cid not in state.contracts:
            missing = NO_METADATA
        elif not has_price:
            missing = NO_QUOTE
        received = (quote.received_at or quote.timestamp) if has_price else None
        age = (now - received).total_seconds() if received is not None else None
        marks.append(Mark(cid, label_of(state, cid), (pos.type, pos.size, pos.average_price),
                          None if missing else state.unrealized(cid), missing, received, age))
    return marks


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _plain(value: Any) -> Any:
    """Memory (possibly read-only mappings and tuples) as plain dicts and lists, to compare."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class PerPositionPnlRule(Rule):
    """Shared engine of 004 and 005: judge each open position's unrealized P&L on its own and
    close the position that crosses the threshold. Subclasses say which way and how far."""

    events = (PositionEvent, QuoteEvent, ContractsKnown, Reconciled, Tick)
    what = "unrealized P&L"

    @property
    @abc.abstractmethod
    def threshold(self) -> float:
        """The configured limit (004, negative) or target (005, positive)."""

    @abc.abstractmethod
    def breached(self, pnl: float) -> bool:
        """True when ``pnl`` is at or past the threshold."""

    def evaluate(self, event, state, now):
        if isinstance(event, QuoteEvent) and event.contract_id not in state.positions:
            # riskd also watches quotes of contracts with working orders only: no figure moved.
            return None
        old = _plain(state.rule_memory.get(self.name) or {})
        max_age = self.params.max_quote_age_seconds
        closing_old: dict = old.get("closing") or {}
        unpriced_old: dict = old.get("unpriced") or {}
        stale_old: dict = old.get("stale") or {}
        closing: dict = {}
        unpriced: dict = {}
        stale: dict = {}
        breaches: list[Mark] = []
        alerts: list[Alert] = []
        wake: list[datetime] = []
        for mark in mark_positions(state, now):
            cid = mark.contract_id
            if mark.pnl is None:
                # Never breach on missing data; say so once if it lasts (the position is then
                # unprotected by this rule, which a person must know).
                entry = unpriced_old.get(cid) or {}
                since = _when(entry.get("since")) or now
                warned = bool(entry.get("warned"))
                if not warned and (now - since).total_seconds() >= max_age:
                    warned = True
                    alerts.append(Alert(
                        f"{self.name}: cannot price {mark.label} ({mark.missing}); that "
                        f"position is not checked against the {self.what} "
                        f"{self._money(self.threshold)} until it can be.", "warning"))
                elif not warned:
                    wake.append(since + timedelta(seconds=max_age))
                unpriced[cid] = {"why": mark.missing, "since": _iso(since), "warned": warned}
                continue
            if mark.quote_age is not None and mark.quote_age > max_age:
                stale[cid] = _iso(mark.quote_received)
                if stale_old.get(cid) != stale[cid]:
                    # Used anyway: the last price is the best estimate there is (rules-spec
                    # 004 d). The text is stable so the notifier can merge repeats.
                    alerts.append(Alert(
                        f"{self.name}: the quote of {mark.label} is older than {max_age:g} s; "
                        f"judging the position on it.", "warning"))
            signature = list(mark.signature)  # memory is JSON: a list reads back as a list
            previous = closing_old.get(cid)
            if previous is not None and previous.get("position") == signature:
                ordered = _when(previous.get("at"))
                if ordered is not None and (now - ordered).total_seconds() < REFIRE_SECONDS:
                    closing[cid] = previous  # already being closed: don't ask again yet
                    continue
            if self.breached(mark.pnl):
                breaches.append(mark)
                closing[cid] = {"position": signature, "at": _iso(now)}
        memory = {k: v for k, v in (("closing", closing), ("unpriced", unpriced),
                                    ("stale", stale)) if v}
        changed = memory != old
        wake_at = min(wake) if wake else None
        if breaches:
            names = ", ".join(f"{b.label} {b.pnl:.2f}"
                              + (f" (quote {b.quote_age:.0f} s old)" if b.contract_id in stale
                                 else "") for b in breaches)
            return RuleViolation(
                self.name,
                f"{self.what} of {names} reached the per-position {self._kind()} "
                f"{self._money(self.threshold)}",
                contract_id=breaches[0].contract_id,
                data={"contracts": tuple(b.contract_id for b in breaches),
                      "pnl": {b.contract_id: b.pnl for b in breaches},
                      "labels": tuple(b.label for b in breaches),
                      "threshold": self.threshold,
                      "warnings": tuple(a.message for a in alerts)},
                memory=memory if changed else None, wake_at=wake_at)
        if changed or alerts or wake_at is not None:
            return RuleUpdate(memory=memory if changed else None, wake_at=wake_at,
                              actions=tuple(alerts))
        return None

    def get_enforcement_action(self, violation):
        data = violation.data
        closes = tuple(ClosePosition(cid) for cid in data["contracts"])
        told = tuple(Alert(
            f"{label} {self.what} {data['pnl'][cid]:.2f} reached the per-position "
            f"{self._kind()} {self._money(data['threshold'])}: closing that position "
            f"(no lock).", "warning")
            for cid, label in zip(data["contracts"], data["labels"]))
        warnings = tuple(Alert(text, "warning") for text in data.get("warnings", ()))
        return closes + told + warnings

    def usage(self, state, now):
        # The position nearest the threshold is the one that matters.
        priced = [m for m in mark_positions(state, now) if m.pnl is not None]
        if not priced:
            return ()
        worst = min(priced, key=lambda m: m.pnl) if self.threshold < 0 else \
            max(priced, key=lambda m: m.pnl)
        return (Usage(f"{self.what} of {worst.label}", worst.pnl, self.threshold, "$"),)

    # ---- wording ------------------------------------------------------------------------------
    def _kind(self) -> str:
        return "limit" if self.threshold < 0 else "target"

    @staticmethod
    def _money(value: float) -> str:
        return f"{value:.2f}"


class DailyUnrealizedLoss(PerPositionPnlRule):
    """Closes a single position whose unrealized loss reaches the per-position limit (004)."""

    name = "daily_unrealized_loss"
    rule_id = "004"
    version = "1.0"
    description = ("Closes a position whose unrealized loss reaches the per-position limit; "
                   "no lock.")
    author = "riskd"
    Params = Params
    what = "unrealized loss"

    @property
    def threshold(self) -> float:
        return self.params.limit

    def breached(self, pnl: float) -> bool:
        return pnl <= self.params.limit
