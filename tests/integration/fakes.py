"""Stand-ins for actor tests: a scripted broker actor and rule plugins that misbehave.

Only for tests of one piece (the AccountActor pipeline and its supervision); end-to-end tests
use the real SDK against the simulator.
"""

from __future__ import annotations

import os
import time

import attrs
from thespian.actors import ActorTypeDispatcher

from risk_actors import messages as m
from rules.base import PositionEvent, Rule, RuleViolation, ClosePosition, TradeEvent


@attrs.frozen
class SetBroker:
    positions: dict = attrs.field(factory=dict)   # contract -> signed size
    orders: dict = attrs.field(factory=dict)      # order id -> contract
    fail_ops: tuple = ()                          # ops that answer ok=False (once each)


@attrs.frozen
class GetCalls:
    pass


class FakeBroker(ActorTypeDispatcher):
    """Answers BrokerCalls like a gateway would and remembers every call, in order."""

    def __init__(self):
        super().__init__()
        self.positions, self.orders, self.calls, self.fail = {}, {}, [], []

    def receiveMsg_SetBroker(self, msg, sender):
        self.positions, self.orders = dict(msg.positions), dict(msg.orders)
        self.fail = list(msg.fail_ops)
        self.send(sender, True)

    def receiveMsg_GetCalls(self, msg, sender):
        self.send(sender, (list(self.calls), dict(self.positions), dict(self.orders)))

    def receiveMsg_BrokerCall(self, call, sender):
        self.calls.append((call.op, dict(call.args), time.monotonic()))
        if call.op in self.fail:
            self.fail.remove(call.op)
            self.send(sender, m.BrokerReply(call.account_id, call.call_id, call.op, False,
                                            error="simulated failure"))
            return
        result = None
        a = call.args
        if call.op == "close":
            self.positions.pop(a["contract_id"], None)
        elif call.op == "partial_close":
            s = self.positions.get(a["contract_id"], 0)
            self.positions[a["contract_id"]] = s - a["size"] if s > 0 else s + a["size"]
        elif call.op == "cancel":
            self.orders.pop(a["order_id"], None)
        elif call.op == "search_positions":
            result = [m.PositionEvent(call.account_id, c, abs(s),
                                      m.POSITION_LONG if s > 0 else m.POSITION_SHORT, 0.0)
                      for c, s in self.positions.items() if s]
        elif call.op == "search_orders":
            result = [m.OrderEvent(call.account_id, o, c, m.STATUS_OPEN, m.ORDER_LIMIT,
                                   m.SIDE_BUY, 1) for o, c in self.orders.items()]
        self.send(sender, m.BrokerReply(call.account_id, call.call_id, call.op, True, result))


# ---- misbehaving plugins ----------------------------------------------------------------------
@attrs.frozen
class NoParams:
    pass


class RaisingRule(Rule):
    """Raises on every position event."""

    name = "raising_rule"
    Params = NoParams
    events = (PositionEvent,)

    def evaluate(self, event, state, now):
        raise RuntimeError("plugin bug")

    def get_enforcement_action(self, violation):
        return ()


class HangingRule(Rule):
    """Never returns on a position event of size 7."""

    name = "hanging_rule"
    Params = NoParams
    events = (PositionEvent,)

    def evaluate(self, event, state, now):
        if event.size == 7:
            while True:
                time.sleep(1)
        return None

    def get_enforcement_action(self, violation):
        return ()


class ExitingRule(Rule):
    """Kills its own process on a position event of size 9 (a segfault stand-in)."""

    name = "exiting_rule"
    Params = NoParams
    events = (PositionEvent,)

    def evaluate(self, event, state, now):
        if event.size == 9:
            os._exit(3)
        return None

    def get_enforcement_action(self, violation):
        return ()


class SlowQuoteRule(Rule):
    """Takes 40 ms per quote and remembers every price it judged (to observe coalescing)."""

    name = "slow_quote_rule"
    Params = NoParams
    events = (m.QuoteEvent,)

    def evaluate(self, event, state, now):
        from rules.base import RuleUpdate
        time.sleep(0.04)
        seen = list((state.rule_memory.get(self.name) or {}).get("seen", []))
        return RuleUpdate(memory={"seen": seen + [event.last_price]})

    def get_enforcement_action(self, violation):
        return ()


class SlowRule(Rule):
    """Answers a position of size 8 only after 300 ms: slow (a loaded machine), not hung."""

    name = "slow_rule"
    Params = NoParams
    events = (PositionEvent,)

    def evaluate(self, event, state, now):
        if event.size == 8:
            time.sleep(0.3)
            return RuleViolation(self.name, "slow but right", contract_id=event.contract_id)
        return None

    def get_enforcement_action(self, violation):
        return (ClosePosition(violation.contract_id),)
