"""001 MaxContracts: cap the number of contracts open across the whole account.

Breach when the account count exceeds ``limit`` (``net`` = |sum of signed sizes|, ``gross`` =
sum of |sizes|). By default riskd partially closes just the excess, taking it from the contract
whose fill caused the breach first, then from the largest positions (rules-spec 001 (inf)); with
``close_all`` it closes every position instead. No lockout.
"""

from __future__ import annotations

from typing import Literal

import attrs

from rules._common import take_excess
from rules.base import (ClosePosition, PositionEvent, Reconciled, ReducePosition, Rule,
                        RuleViolation, Usage)


def _positive(_inst, attribute, value) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class Params:
    """Parameters of max_contracts."""

    limit: int = attrs.field(default=5, validator=_positive)
    count_type: Literal["net", "gross"] = "net"
    reduce_to_limit: bool = True
    close_all: bool = False


def account_count(signed_sizes: list[int], count_type: str) -> int:
    """Contracts counted against the limit: net = |sum|, gross = sum of |size|."""
    if count_type == "gross":
        return sum(abs(s) for s in signed_sizes)
    return abs(sum(signed_sizes))


def reductions(signed: dict[str, int], excess: int, trigger: str | None,
               count_type: str) -> list[tuple[str, int]]:
    """Which contracts to shrink, and by how much, to remove ``excess`` from the count.

    For a net count only positions on the side of the net exposure reduce it; closing the other
    side would add to it.
    """
    net = sum(signed.values())
    candidates = [c for c, s in signed.items()
                  if s != 0 and (count_type == "gross" or (s > 0) == (net > 0))]
    candidates.sort(key=lambda c: (c != trigger, -abs(signed[c]), c))
    return take_excess(candidates, signed, excess)


class MaxContracts(Rule):
    """Account-wide contract cap (001)."""

    name = "max_contracts"
    rule_id = "001"
    version = "1.0"
    description = "Caps the contracts open across the account; reduces the excess at once."
    author = "riskd"
    Params = Params
    events = (PositionEvent, Reconciled)

    def evaluate(self, event, state, now):
        signed = {cid: p.signed_size for cid, p in state.positions.items()}
        count = account_count(list(signed.values()), self.params.count_type)
        if count <= self.params.limit:
            return None
        trigger = event.contract_id if isinstance(event, PositionEvent) else None
        excess = count - self.params.limit
        if self.params.close_all or not self.params.reduce_to_limit:
            plan = [(cid, abs(s)) for cid, s in sorted(signed.items()) if s]
        else:
            plan = reductions(signed, excess, trigger, self.params.count_type)
        sizes = {cid: abs(s) for cid, s in signed.items()}
        return RuleViolation(
            self.name,
            f"{count} contracts open ({self.params.count_type}), limit {self.params.limit}",
            contract_id=trigger,
            data={"count": count, "limit": self.params.limit, "excess": excess,
                  "plan": tuple((cid, take, take >= sizes[cid]) for cid, take in plan)})

    def get_enforcement_action(self, violation):
        return tuple(ClosePosition(cid) if whole else ReducePosition(cid, take)
                     for cid, take, whole in violation.data["plan"])

    def usage(self, state, now):
        count = account_count([p.signed_size for p in state.positions.values()],
                              self.params.count_type)
        return (Usage(f"contracts open ({self.params.count_type})", count, self.params.limit,
                      "contracts"),)
