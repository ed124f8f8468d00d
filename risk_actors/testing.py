"""``RuleTester``: drive one rule plugin with broker events and a fake clock, without actors.

It goes through the same reducer and the same ``run_rule``/``merge`` as the daemon, so a rule
tested here behaves the same inside riskd::

    t = RuleTester(DailyRealizedLoss, {"limit": -500}, start=ct(2026, 11, 24, 13, 0))
    t.trade(-300)
    r = t.trade(-250)
    assert r.broker_actions == (FlattenAccount(),)
    assert r.lock_expiry == ct(2026, 11, 24, 17, 0)
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import attrs

from risk_actors import messages as m
from risk_actors.calendar import last_reset, next_reset
from risk_actors.clock import FakeClock
from risk_actors.pipeline import Plan, merge, run_rule
from risk_actors.state import (AccountState, DailyReset, LockLifted, LocksAdded, ResetScheduled,
                               RuleMemorySet, reduce)

CHICAGO = ZoneInfo("America/Chicago")

# The simulator's front-month catalogue, so rule tests and end-to-end tests speak of the same ids.
CONTRACTS: Mapping[str, m.ContractInfo] = {
    "MNQ": m.ContractInfo("CON.F.US.MNQ.Z26", "MNQZ6", 0.25, 0.50, "F.US.MNQ"),
    "MES": m.ContractInfo("CON.F.US.MES.Z26", "MESZ6", 0.25, 1.25, "F.US.MES"),
    "ES": m.ContractInfo("CON.F.US.EP.Z26", "ESZ6", 0.25, 12.50, "F.US.EP"),
    "NQ": m.ContractInfo("CON.F.US.ENQ.Z26", "NQZ6", 0.25, 5.00, "F.US.ENQ"),
    "RTY": m.ContractInfo("CON.F.US.RTY.Z26", "RTYZ6", 0.10, 5.00, "F.US.RTY"),
    "M2K": m.ContractInfo("CON.F.US.M2K.Z26", "M2KZ6", 0.10, 0.50, "F.US.M2K"),
    "CL": m.ContractInfo("CON.F.US.CLE.F27", "CLF7", 0.01, 10.00, "F.US.CLE"),
    "GC": m.ContractInfo("CON.F.US.GCE.G27", "GCG7", 0.10, 10.00, "F.US.GCE"),
}


def ct(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A Chicago wall-clock time as an aware UTC datetime (rules-spec scenarios are in CT)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=CHICAGO).astimezone(timezone.utc)


@attrs.frozen
class Result:
    """What one event did: the rule's verdict, the merged plan, and the state after it."""

    verdict: m.Verdict
    plan: Plan
    state: AccountState
    now: datetime

    @property
    def violation(self):
        return self.verdict.violation

    @property
    def broker_actions(self) -> tuple:
        return self.plan.broker_actions

    @property
    def locks(self) -> tuple:
        return tuple(lock for _, lock in self.plan.locks)

    @property
    def lock_expiry(self) -> datetime | None:
        return self.state.lock_expiry(self.now)


class RuleTester:
    """One rule, one account, a fake clock; events in, verdicts and resulting state out."""

    def __init__(self, rule_cls: type, params: Any = None, *, start: datetime | None = None,
                 account_id: int = 1, mode: str = "enforce", reset_at: datetime | None = None,
                 contracts: Mapping[str, m.ContractInfo] = CONTRACTS) -> None:
        if isinstance(params, Mapping) or params is None:
            from risk_actors.config import make_converter  # the same rules as config loading
            params = make_converter().structure(dict(params or {}), rule_cls.Params)
        self.rule = rule_cls(params)
        self.mode = mode
        self.clock = FakeClock(start or ct(2026, 11, 24, 10, 0))
        self.contracts = dict(contracts)
        self._ids = itertools.count(1)
        self.seq = 0
        now = self.clock.now()
        self.state = AccountState(account_id, name="TEST", can_trade=True, connected=True)
        self.state = reduce(self.state, m.ContractsKnown(account_id, tuple(self.contracts.values())), now)
        upcoming = reset_at or next_reset(now)
        # The previous reset is one *local* day earlier (23 or 25 hours across a DST change).
        self.state = reduce(self.state, ResetScheduled(upcoming, last_reset(upcoming - timedelta(seconds=1))), now)

    # ---- clock ---------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> Result:
        """Move the clock, run a reset that came due, and deliver a timer ``Tick``."""
        self.clock.advance(seconds)
        return self.tick()

    def at(self, when: datetime) -> Result:
        self.clock.set(when)
        return self.tick()

    def tick(self) -> Result:
        now = self.now
        if self.state.next_reset_at is not None and now >= self.state.next_reset_at:
            self.state = reduce(self.state, DailyReset(self.state.next_reset_at, next_reset(now)),
                                now)
        return self.send(m.Tick(self.state.account_id))

    # ---- broker events -----------------------------------------------------------------------
    def contract_id(self, symbol_or_id: str) -> str:
        info = self.contracts.get(symbol_or_id.upper())
        return info.contract_id if info else symbol_or_id

    def position(self, symbol: str, size: int, side: str = "long", avg: float = 0.0) -> Result:
        ptype = m.POSITION_SHORT if side.lower().startswith("s") else m.POSITION_LONG
        return self.send(m.PositionEvent(self.state.account_id, self.contract_id(symbol), size,
                                         ptype, avg, None, self.now))

    def trade(self, pnl: float | None, symbol: str = "MNQ", *, fees: float = 0.0, size: int = 1,
              side: int = m.SIDE_SELL, price: float = 0.0, voided: bool = False,
              trade_id: int | None = None, at: datetime | None = None) -> Result:
        return self.send(m.TradeEvent(self.state.account_id,
                                      trade_id if trade_id is not None else next(self._ids),
                                      self.contract_id(symbol), at or self.now, price, pnl, fees,
                                      side, size, voided))

    def order(self, symbol: str, *, order_id: int | None = None, type: int = m.ORDER_STOP,
              side: int = m.SIDE_SELL, size: int = 1, status: int = m.STATUS_OPEN,
              stop_price: float | None = None, limit_price: float | None = None) -> Result:
        info = self.contracts.get(symbol.upper())
        return self.send(m.OrderEvent(self.state.account_id,
                                      order_id if order_id is not None else next(self._ids),
                                      self.contract_id(symbol), status, type, side, size,
                                      info.symbol_id if info else None, limit_price, stop_price,
                                      created=self.now, updated=self.now))

    def quote(self, symbol: str, last: float) -> Result:
        return self.send(m.QuoteEvent(self.contract_id(symbol), last, timestamp=self.now,
                                      received_at=self.now))

    def account(self, can_trade: bool | None) -> Result:
        return self.send(m.AccountEvent(self.state.account_id, self.state.name, None, can_trade))

    def send(self, event: Any) -> Result:
        """Apply ``event``, evaluate the rule if it subscribes, apply its memory and locks."""
        now = self.now
        self.seq += 1
        self.state = reduce(self.state, event, now)
        if self.rule.applies_to_event(event):
            verdict = run_rule(self.rule, self.mode, self.state.account_id, self.seq, event,
                               self.state, now)
        else:
            verdict = m.Verdict(self.state.account_id, self.seq, self.rule.name, self.mode)
        if verdict.error:
            raise AssertionError(f"rule {self.rule.name} raised:\n{verdict.error}")
        if verdict.memory is not None:
            self.state = reduce(self.state, RuleMemorySet(self.rule.name, verdict.memory), now)
        plan = merge([verdict])
        for rule, lift in plan.lifts:
            self.state = reduce(self.state, LockLifted(rule, lift.symbol), now)
        if plan.locks:
            self.state = reduce(self.state, LocksAdded(self.rule.name,
                                                       tuple(lk for _, lk in plan.locks)), now)
        return Result(verdict, plan, self.state, now)
