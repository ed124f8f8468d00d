"""The rule plugin interface.

A rule is a small class: it declares who it is (``name`` = its config key, ``rule_id``,
``version``, ``description``, ``author``), its parameters (``Params``, a frozen attrs class that
config is structured into with cattrs; unknown keys are an error), the event types it listens to
(``events``), and two pure methods:

* ``evaluate(event, state, now) -> RuleViolation | RuleUpdate | None``: no I/O, no clock reads,
  no mutation. ``state`` is the account's frozen :class:`risk_actors.state.AccountState` *after*
  the event was applied; ``now`` is the injected clock.
* ``get_enforcement_action(violation) -> tuple[EnforcementAction, ...]``: what to do about it.

Memory that must outlive one evaluation (a grace deadline, a high-water mark) is returned in
``RuleViolation.memory`` / ``RuleUpdate.memory`` and handed back in ``state.rule_memory[name]``:
a rule object holds nothing between calls, so its host can be killed and restarted freely.
Memory is persisted as JSON: keep it to str, int, float, bool, None, lists and dicts (times as
ISO-8601 strings), so it reads back exactly as written.

Built-in rules register exactly like third-party ones, as entry points of the ``riskd.rules``
group (``setup.cfg``); modules of this package are discovered as a fallback. See
``risk_actors.plugins`` for loading and ``risk_actors.testing.RuleTester`` to test a rule.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any, ClassVar, Mapping

import attrs

from risk_actors.messages import (  # noqa: F401  (re-exported for plugin authors)
    AccountEvent, Alert, CancelOrder, CancelOrders, ClosePosition, ContractsKnown,
    EnforcementAction, FlattenAccount, LiftLock, Lock, LOCK_COOLDOWN, LOCK_HARD, LOCK_INDEFINITE,
    LOCK_SYMBOL, ModifyStop, OrderEvent, PlaceStop, PositionEvent, QuoteEvent, Reconciled,
    ReducePosition, Tick, TradeEvent)
from risk_actors.state import AccountState  # noqa: F401

MODES = ("enforce", "shadow")


@attrs.frozen
class RuleViolation:
    """A breach: why, and everything ``get_enforcement_action`` needs to decide what to do.

    ``data`` carries figures for the audit trail and for the enforcement (e.g. the excess size,
    the lock expiry); ``contract_id`` names the position concerned when there is one.
    """

    rule: str
    reason: str
    contract_id: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict)
    memory: Mapping[str, Any] | None = None
    wake_at: datetime | None = None


@attrs.frozen
class RuleUpdate:
    """No breach, but the rule's memory changes, it wants to be woken at ``wake_at``, or it
    takes a non-breach action: ``LiftLock`` of its own lock, an early-warning ``Alert``."""

    memory: Mapping[str, Any] | None = None
    wake_at: datetime | None = None
    actions: tuple = ()


@attrs.frozen
class Usage:
    """How close the account is to one of a rule's limits, for people (``risk-trader status``).

    ``value`` and ``limit`` are in ``unit`` ("contracts", "$", "trades" ...); a loss limit is
    negative and so is the loss counted against it. :attr:`percent` is the share of the limit
    used (0 when moving away from it, 100 or more at and past it).
    """

    label: str
    value: float
    limit: float
    unit: str = ""

    @property
    def percent(self) -> float:
        if not self.limit or (self.value > 0) != (self.limit > 0) or not self.value:
            return 0.0
        return round(100.0 * self.value / self.limit, 1)


@attrs.frozen
class NoParams:
    """Params class of a rule that takes none."""


class Rule(abc.ABC):
    """Base class of every rule plugin (built-in or third-party)."""

    name: ClassVar[str]
    rule_id: ClassVar[str] = ""
    version: ClassVar[str] = "1.0"
    description: ClassVar[str] = ""
    author: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    events: ClassVar[tuple[type, ...]] = ()

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def applies_to_event(self, event: Any) -> bool:
        """True when this rule wants to see ``event`` (the core routes only those)."""
        return isinstance(event, self.events)

    @abc.abstractmethod
    def evaluate(self, event: Any, state: AccountState,
                 now: datetime) -> RuleViolation | RuleUpdate | None:
        """Decide whether ``event`` (already applied to ``state``) breaches the rule."""

    @abc.abstractmethod
    def get_enforcement_action(self, violation: RuleViolation) -> tuple:
        """The enforcement actions for ``violation`` (see :mod:`risk_actors.messages`)."""

    def usage(self, state: AccountState, now: datetime) -> tuple[Usage, ...]:
        """Optional: where ``state`` stands against this rule's limits (pure, cheap: it runs
        with every status update, off the event path). Default: nothing to show."""
        return ()
