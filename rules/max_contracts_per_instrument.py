"""002 MaxContractsPerInstrument: cap the contracts held in each symbol root.

Each root (MNQ, ES ...) has its own limit in ``limits``. The count of a root is the sum of the
absolute sizes of all its contracts, across contract months (rules-spec 002 e): long or short
counts the same (002 b), and a calendar spread counts both legs (conservative: the prop firms'
contract limits count every contract held). Over the limit, riskd partially closes just the
excess (``enforcement: reduce_to_limit``) or closes every contract of that root (``close_all``);
other roots are untouched. No lockout.

Roots missing from ``limits`` follow ``unknown_symbol_action``: ``block`` (close them),
``allow`` (no limit) or ``allow_with_limit:N``.

The root comes from contract metadata, which can reach riskd a few milliseconds after the first
fill of a new contract. A contract not identified yet is not judged on a guess: it is re-checked
when its metadata arrives (``ContractsKnown``); one still unidentified after
``unidentified_grace_seconds`` is treated as an unknown symbol of its own.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal, Mapping

import attrs

from rules._common import take_excess
from rules.base import (Alert, ClosePosition, ContractsKnown, PositionEvent, Reconciled,
                        ReducePosition, Rule, RuleUpdate, RuleViolation, Tick)

UNIDENTIFIED = "unidentified"  # memory: contract id -> first seen without a root (ISO time)
_ROOT = re.compile(r"^[A-Z0-9]+$")
_POLICY = re.compile(r"^(block|allow|allow_with_limit:(\d+))$")
MAX_GRACE_SECONDS = 300


# ---------------------------------------------------------------------------------------------
# params
def _roots(value: Mapping[str, int]) -> dict[str, int]:
    # Converters run before validators: a bad key must still be reported under `limits`.
    out: dict[str, int] = {}
    for key, limit in value.items():
        root = str(key).strip().upper()
        if not _ROOT.match(root):
            raise ValueError(f"limits keys must be symbol roots (letters and digits, e.g. MNQ); "
                             f"{key!r} is not one")
        if root in out:
            raise ValueError(f"limits must name each root once (case-insensitive); {root} "
                             f"appears twice")
        out[root] = limit
    return out


def _limits(_inst, attribute, value) -> None:
    for root, limit in value.items():
        if limit < 0:
            raise ValueError(f"{attribute.name} must be whole numbers >= 0 (contracts per root); "
                             f"{root} is {limit!r}")


def parse_unknown_policy(text: str) -> int | None:
    """Limit for roots missing from ``limits``: ``block`` -> 0, ``allow`` -> None (no limit),
    ``allow_with_limit:N`` -> N. Raises ValueError naming the field and the value."""
    match = _POLICY.match(text.strip().lower()) if isinstance(text, str) else None
    if match is None or (match.group(2) is not None and int(match.group(2)) < 1):
        raise ValueError(f"unknown_symbol_action must be block, allow or allow_with_limit:N "
                         f"(N a whole number >= 1, e.g. allow_with_limit:1), got {text!r}")
    if match.group(1) == "block":
        return 0
    if match.group(1) == "allow":
        return None
    return int(match.group(2))


def _policy(_inst, _attribute, value) -> None:
    parse_unknown_policy(value)


def _grace(_inst, attribute, value) -> None:
    if not 0 <= value <= MAX_GRACE_SECONDS:
        raise ValueError(f"{attribute.name} must be between 0 and {MAX_GRACE_SECONDS} seconds, "
                         f"got {value!r}")


@attrs.frozen
class Params:
    """Parameters of max_contracts_per_instrument (see docs/rules/max_contracts_per_instrument.md).

    ``limits`` is required: with ``unknown_symbol_action: block`` an empty default would close
    every position, and an invented one would enforce limits nobody chose.
    """

    limits: dict[str, int] = attrs.field(converter=_roots, validator=_limits)
    enforcement: Literal["reduce_to_limit", "close_all"] = "reduce_to_limit"
    unknown_symbol_action: str = attrs.field(default="block", validator=_policy)
    unidentified_grace_seconds: int = attrs.field(default=10, validator=_grace)

    @property
    def unknown_limit(self) -> int | None:
        return parse_unknown_policy(self.unknown_symbol_action)

    def limit_for(self, root: str) -> int | None:
        """The root's limit; None = unlimited (an unknown root under ``allow``)."""
        return self.limits.get(root.upper(), self.unknown_limit)


# ---------------------------------------------------------------------------------------------
# pure plan arithmetic (property-tested)
def root_count(signed_sizes) -> int:
    """Contracts a root counts against its limit: sum of |size| over its contracts."""
    return sum(abs(s) for s in signed_sizes)


def reduction_order(signed: Mapping[str, int], created: Mapping[str, datetime | None]) -> list[str]:
    """Which contracts of one root give up lots first: the most recently opened, then by id.

    The order does not depend on sizes or on the event being evaluated, so a re-evaluation on a
    state that has not yet seen an earlier reduction asks for the same or a lower target on the
    same contracts (the enforcer keeps the lower target): the plans never add up to more than
    the excess.
    """
    def key(cid: str):
        when = created.get(cid)
        return (when is None, -(when.timestamp()) if when else 0.0, cid)
    return sorted((c for c, s in signed.items() if s), key=key)


def plan_root(signed: Mapping[str, int], limit: int, close_all: bool,
              created: Mapping[str, datetime | None] | None = None) -> list[tuple[str, int]]:
    """(contract, lots to close) that bring one root within ``limit``; [] when within it.

    ``close_all`` closes every contract of the root instead of just the excess.
    """
    count = root_count(signed.values())
    if count <= limit:
        return []
    order = reduction_order(signed, created or {})
    if close_all:
        return [(c, abs(signed[c])) for c in order]
    return take_excess(order, signed, count - limit)


# ---------------------------------------------------------------------------------------------
class MaxContractsPerInstrument(Rule):
    """Per-symbol-root contract caps with an unknown-symbol policy (002)."""

    name = "max_contracts_per_instrument"
    rule_id = "002"
    version = "1.0"
    description = ("Caps the contracts held per symbol root (all months together); reduces or "
                   "closes the excess at once.")
    author = "riskd"
    Params = Params
    # ContractsKnown: a root unidentified at the fill is judged once its metadata arrives.
    # Tick: the unidentified grace, and re-checking open positions after a config reload.
    events = (PositionEvent, Reconciled, ContractsKnown, Tick)

    def evaluate(self, event, state, now):
        old = dict((state.rule_memory.get(self.name) or {}).get(UNIDENTIFIED) or {})
        grace = timedelta(seconds=self.params.unidentified_grace_seconds)
        groups: dict[str, dict[str, int]] = {}
        unknown_ids: set[str] = set()
        seen: dict[str, str] = {}
        pending: list[datetime] = []
        for cid, pos in state.positions.items():
            root = state.root(cid)
            if root is None:
                seen[cid] = old.get(cid, now.isoformat())
                due = datetime.fromisoformat(seen[cid]) + grace
                if due > now:
                    pending.append(due)
                    continue  # not judged on a guess: ContractsKnown or the deadline re-checks
                root = cid  # still unidentified: an unknown symbol of its own
                unknown_ids.add(cid)
            groups.setdefault(root, {})[cid] = pos.signed_size

        if isinstance(event, PositionEvent):
            # Only the root that changed: the others were judged on their own events.
            root = state.root(event.contract_id)
            if root is None:
                root = event.contract_id if event.contract_id in unknown_ids else None
            groups = {root: groups[root]} if root in groups else {}

        memory = None if seen == old else ({UNIDENTIFIED: seen} if seen else {})
        wake_at = min(pending) if pending else None
        created = {cid: p.created for cid, p in state.positions.items()}
        close_all = self.params.enforcement == "close_all"
        plan: list[tuple[str, int, bool]] = []
        breaches: list[str] = []
        for root in sorted(groups):
            signed = groups[root]
            limit = (self.params.unknown_limit if root in unknown_ids
                     else self.params.limit_for(root))
            if limit is None:
                continue  # an unknown root under `allow`
            steps = plan_root(signed, limit, close_all, created)
            if not steps:
                continue
            count = root_count(signed.values())
            label = (f"unidentified contract {root}" if root in unknown_ids else root)
            if root in unknown_ids or root not in self.params.limits:
                breaches.append(f"{label}: {count} contract(s), not in limits "
                                f"(unknown_symbol_action {self.params.unknown_symbol_action})")
            else:
                breaches.append(f"{label}: {count} contract(s), limit {limit}")
            plan += [(cid, take, take >= abs(signed[cid])) for cid, take in steps]

        if not plan:
            if memory is None and wake_at is None:
                return None
            return RuleUpdate(memory=memory, wake_at=wake_at)
        return RuleViolation(
            self.name, "; ".join(breaches),
            contract_id=event.contract_id if isinstance(event, PositionEvent) else None,
            data={"plan": tuple(plan), "unidentified": tuple(sorted(unknown_ids))},
            memory=memory, wake_at=wake_at)

    def get_enforcement_action(self, violation):
        actions: tuple = tuple(ClosePosition(cid) if whole else ReducePosition(cid, take)
                               for cid, take, whole in violation.data["plan"])
        if violation.data["unidentified"]:
            actions += (Alert(f"Contract(s) {', '.join(violation.data['unidentified'])} could "
                              f"not be identified (no contract metadata); treated as unknown "
                              f"symbols: {violation.reason}", "warning"),)
        return actions
