"""The pure steps of the account pipeline: run a rule safely, guard locks, merge verdicts.

The AccountActor, the RuleActor and ``RuleTester`` all call these, so what a test proves about a
rule is what the daemon does with it. Nothing here performs I/O.
"""

from __future__ import annotations

import time
import traceback
from datetime import datetime
from typing import Any, Iterable

import attrs

from risk_actors import messages as m
from risk_actors.state import AccountState


def run_rule(rule: Any, mode: str, account_id: int, seq: int, event: Any, state: AccountState,
             now: datetime) -> m.Verdict:
    """Evaluate one plugin; an exception becomes a failed verdict instead of crossing actors."""
    from rules.base import RuleUpdate, RuleViolation  # rules/ is a sibling package, not a rule

    started = time.perf_counter()
    try:
        outcome = rule.evaluate(event, state, now)
        actions: tuple = ()
        memory = wake_at = violation = None
        if isinstance(outcome, RuleViolation):
            violation = outcome
            actions = tuple(rule.get_enforcement_action(outcome))
            memory, wake_at = outcome.memory, outcome.wake_at
        elif isinstance(outcome, RuleUpdate):
            memory, wake_at = outcome.memory, outcome.wake_at
            bad = [a for a in outcome.actions if not isinstance(a, (m.LiftLock, m.Alert))]
            if bad:
                raise TypeError(f"a RuleUpdate may carry only LiftLock and Alert, not {bad!r}")
            actions = tuple(outcome.actions)
        elif outcome is not None:
            raise TypeError(f"evaluate() returned {type(outcome).__name__}, expected "
                            "RuleViolation, RuleUpdate or None")
        return m.Verdict(account_id, seq, rule.name, mode, violation, actions, memory, wake_at,
                         None, (time.perf_counter() - started) * 1000)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
        return m.Verdict(account_id, seq, rule.name, mode, error=detail,
                         elapsed_ms=(time.perf_counter() - started) * 1000)


def _grew(old: Any, signed_size: int) -> bool:
    """A position that is new, larger, or reversed compared with what we knew before."""
    if old is None:
        return signed_size != 0
    before = old.signed_size
    return (before > 0) != (signed_size > 0) or abs(signed_size) > abs(before)


def lockout_guard(event: Any, before: AccountState, after: AccountState,
                  now: datetime) -> tuple:
    """Broker actions the core takes by itself while a lock is active (no rule involved).

    While the account (or the contract's symbol root) is locked, a position that opens, grows
    or reverses is closed at once and working orders are cancelled (rules-spec section 4). The
    gateway cannot refuse an order before it fills, so this is enforcement after the fact: a
    fill while locked is flattened a few ms later. ``event`` None means "a lock just started":
    working orders are cancelled, positions are left to the rule that locked (a cooldown does
    not close; a loss limit asks for a flatten itself).
    """
    actions: list = []
    if isinstance(event, m.PositionEvent):
        if after.locked_for(event.contract_id, now) and _grew(
                before.positions.get(event.contract_id), event.signed_size):
            actions.append(m.ClosePosition(event.contract_id))
            actions.append(m.CancelOrders(event.contract_id))
    elif isinstance(event, m.OrderEvent):
        if event.working and after.locked_for(event.contract_id, now):
            actions.append(m.CancelOrder(event.order_id))
    elif isinstance(event, m.Reconciled) or event is None:
        if isinstance(event, m.Reconciled):
            # After a restart or reconnect: what opened or grew while we were not looking.
            for contract_id, pos in after.positions.items():
                if after.locked_for(contract_id, now) and _grew(
                        before.positions.get(contract_id), pos.signed_size):
                    actions.append(m.ClosePosition(contract_id))
        for order in after.orders.values():
            if after.locked_for(order.contract_id, now):
                actions.append(m.CancelOrder(order.order_id))
    return tuple(actions)


@attrs.frozen
class Plan:
    """What one event leads to after all its verdicts are merged."""

    broker_actions: tuple = ()
    locks: tuple[tuple[str, m.Lock], ...] = ()
    alerts: tuple[tuple[str, m.Alert], ...] = ()
    rules: tuple[str, ...] = ()  # rules whose enforced verdicts contributed
    lifts: tuple[tuple[str, m.LiftLock], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.broker_actions or self.locks or self.alerts or self.lifts)


def merge(verdicts: Iterable[m.Verdict], guard: tuple = ()) -> Plan:
    """Merge the verdicts of one event: the strongest broker action wins (rules-spec section 8).

    A flatten makes every close, reduce and cancel redundant; a close of a contract makes its
    reduce redundant; of several reduces of one contract the largest wins. Locks and alerts are
    all kept (several locks coexist; the latest expiry wins when applied). Shadow-mode verdicts
    are not executed: the caller records them.
    """
    broker: list = list(guard)
    locks: list = []
    alerts: list = []
    rules: list = []
    lifts: list = []
    for v in verdicts:
        if v.mode != "enforce":
            continue
        if v.violation is None:  # a RuleUpdate: lifts of its own lock and warnings only
            lifts += [(v.rule, a) for a in v.actions if isinstance(a, m.LiftLock)]
            alerts += [(v.rule, a) for a in v.actions if isinstance(a, m.Alert)]
            continue
        rules.append(v.rule)
        for action in v.actions:
            if isinstance(action, m.LiftLock):
                lifts.append((v.rule, action))
            elif isinstance(action, m.Lock):
                locks.append((v.rule, action))
            elif isinstance(action, m.Alert):
                alerts.append((v.rule, action))
            else:
                broker.append(action)
    return Plan(_strongest(broker), tuple(locks), tuple(alerts), tuple(rules), tuple(lifts))


def _strongest(actions: list) -> tuple:
    if not actions:
        return ()
    if any(isinstance(a, m.FlattenAccount) for a in actions):
        return (m.FlattenAccount(),)
    closed = {a.contract_id for a in actions if isinstance(a, m.ClosePosition)}
    cancel_all = any(isinstance(a, m.CancelOrders) and a.contract_id is None for a in actions)
    reduce_by: dict[str, int] = {}
    for a in actions:
        if isinstance(a, m.ReducePosition) and a.contract_id not in closed:
            reduce_by[a.contract_id] = max(reduce_by.get(a.contract_id, 0), a.size)
    out: list = []
    seen: set = set()
    for a in actions:  # keep the rules' order (001 reduces the triggering contract first)
        if isinstance(a, m.ReducePosition):
            if a.contract_id in closed or a.contract_id in seen:
                continue
            a = m.ReducePosition(a.contract_id, reduce_by[a.contract_id])
            seen.add(a.contract_id)
        elif isinstance(a, (m.CancelOrders, m.CancelOrder)) and cancel_all and not (
                isinstance(a, m.CancelOrders) and a.contract_id is None):
            continue
        elif isinstance(a, (m.PlaceStop,)) and a.contract_id in closed:
            continue
        if a not in out:
            out.append(a)
    # closes before reduces before cancels before stops: undo exposure first
    return tuple(sorted(out, key=lambda a: -a.strength))
