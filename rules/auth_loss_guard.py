"""010 AuthLossGuard: when the broker revokes trading, flatten and lock until it comes back.

The broker's ``canTrade`` flag arrives in ``GatewayUserAccount`` events and in the
``Account/search`` row riskd reads at start-up and after every reconnect (``Reconciled``).
``canTrade: false`` -> close every position, cancel every order and lock the account with no
expiry (kind ``indefinite``). ``canTrade: true`` -> lift this rule's lock only; locks of other
rules stay. A payload without ``canTrade`` (or null) is treated as true: it never locks and never
unlocks (no information either way), and a warning goes out once.

A failed close does not lift the lock. While the lock is on and positions or orders remain, the
rule asks again every ``check_interval_seconds`` (on top of the enforcer's own retries).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from rules.base import (AccountEvent, Alert, FlattenAccount, LiftLock, Lock, LOCK_INDEFINITE,
                        PositionEvent, Reconciled, Rule, RuleUpdate, RuleViolation, Tick)

WARNED = "warned_missing_can_trade"
RETRY_AT = "retry_at"


def _positive(_inst, attribute, value) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0 (seconds), got {value!r}")


@attrs.frozen
class Params:
    """Parameters of auth_loss_guard."""

    check_interval_seconds: int = attrs.field(default=30, validator=_positive)


class AuthLossGuard(Rule):
    """canTrade false -> flatten and lock with no expiry; canTrade true -> unlock (010)."""

    name = "auth_loss_guard"
    rule_id = "010"
    version = "1.0"
    description = "Flattens and locks the account while the broker says canTrade is false."
    author = "riskd"
    Params = Params
    events = (AccountEvent, Reconciled, Tick, PositionEvent)

    def evaluate(self, event, state, now):
        memory = dict(state.rule_memory.get(self.name, {}))
        locked = any(lk.rule == self.name and lk.active(now) for lk in state.lockouts)
        exposed = bool(state.positions or state.orders)
        retry = now + timedelta(seconds=self.params.check_interval_seconds)

        if isinstance(event, PositionEvent):
            # The lockout guard closes a fill made while locked; check back later in case that
            # close does not hold.
            if locked and event.size > 0:
                return RuleUpdate(memory={**memory, RETRY_AT: retry.isoformat()}, wake_at=retry)
            return None

        if isinstance(event, Tick):
            if not locked:
                # E.g. the rule was just enabled by a config reload while canTrade is false.
                return self._lock(state, now, memory, retry) if state.can_trade is False else None
            due = memory.get(RETRY_AT)
            if not exposed or (due and datetime.fromisoformat(due) > now):
                return None  # flat, or another rule's timer: keep to our own interval
            return self._lock(state, now, memory, retry, again=True)

        if isinstance(event, AccountEvent):
            value, known = event.can_trade, True
        elif event.account is not None:  # Reconciled: the Account/search row
            value, known = event.account.can_trade, True
        else:
            value, known = state.can_trade, False  # no row this time: the last value we had

        if value is None:
            if not known or memory.get(WARNED):
                return None
            memory[WARNED] = True
            return RuleUpdate(memory=memory, actions=(Alert(
                "The broker sent account data without canTrade: treating it as true (no lock, "
                "no unlock) until it says otherwise.", "warning"),))
        if WARNED in memory:
            memory.pop(WARNED)  # a real value again: warn anew if it goes missing later
        if value is False:
            if not locked:
                return self._lock(state, now, memory, retry)
            due = memory.get(RETRY_AT)
            # Still exposed under our lock (a restart while locked, a close that failed): make
            # sure a re-check is scheduled. Timers are not persisted, so a reconnect always
            # schedules one; a mere balance update does not push a pending one back.
            if exposed and (isinstance(event, Reconciled) or not due
                            or datetime.fromisoformat(due) <= now):
                return RuleUpdate(memory={**memory, RETRY_AT: retry.isoformat()}, wake_at=retry)
            return RuleUpdate(memory=memory) if memory != state.rule_memory.get(
                self.name, {}) else None
        if locked:
            memory.pop(RETRY_AT, None)
            return RuleUpdate(memory=memory, actions=(
                LiftLock(), Alert("The broker allows trading again (canTrade true): the "
                                  "account is unlocked.", "info")))
        return RuleUpdate(memory=memory) if memory != state.rule_memory.get(self.name, {}) \
            else None

    def _lock(self, state, now, memory, retry, again: bool = False) -> RuleViolation:
        n_pos, n_ord = len(state.positions), len(state.orders)
        reason = (f"the broker revoked trading (canTrade false); {n_pos} position(s), "
                  f"{n_ord} order(s) open")
        return RuleViolation(
            self.name, ("still " if again else "") + reason,
            data={"positions": n_pos, "orders": n_ord, "retry": again},
            memory={**memory, RETRY_AT: retry.isoformat()}, wake_at=retry)

    def get_enforcement_action(self, violation):
        actions = (FlattenAccount(), Lock(LOCK_INDEFINITE, violation.reason, None))
        if violation.data["retry"]:
            return actions  # the first alert (and the enforcer's failure alerts) said it all
        return actions + (Alert(f"Trading disabled by the broker: {violation.reason}. "
                                f"Everything is being closed; the account stays locked until "
                                f"canTrade is true again.", "critical"),)
