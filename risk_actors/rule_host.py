"""RuleActor: hosts one rule plugin for one account, in its own process.

Stateless by design (rule memory travels in ``AccountState``), so the AccountActor can kill it
when it hangs or dies and start a fresh one without anything being lost. A plugin that raises
does not kill the actor: ``run_rule`` turns the exception into a failed verdict.
"""

from __future__ import annotations

import os
from typing import Any

import attrs
from thespian.actors import ActorExitRequest, ActorTypeDispatcher, WakeupMessage

from risk_actors import messages as m
from risk_actors import symbols
from risk_actors.orphan import CHECK_SECONDS, ParentWatch
from risk_actors.pipeline import run_rule
from risk_actors.plugins import load_rule


@attrs.frozen
class RuleInit:
    """AccountActor -> RuleActor: which plugin to host, with which params and mode."""

    account_id: int
    rule_name: str
    rule_path: str
    params: Any
    mode: str = "enforce"
    symbol_aliases: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class RuleReady:
    """RuleActor -> AccountActor: the plugin is loaded; ``pid`` lets the parent kill a hang."""

    account_id: int
    rule_name: str
    pid: int
    error: str | None = None


class RuleActor(ActorTypeDispatcher):
    """One rule plugin of one account."""

    def __init__(self) -> None:
        super().__init__()
        self.rule = None
        self.init: RuleInit | None = None

    def receiveMsg_RuleInit(self, msg: RuleInit, sender) -> None:
        self.init = msg
        symbols.configure(dict(msg.symbol_aliases))
        self.watch = ParentWatch(f"rule {msg.rule_name} of account {msg.account_id}")
        self.wakeupAfter(CHECK_SECONDS, payload=("orphan-check",))
        try:
            self.rule = load_rule(msg.rule_path)(msg.params)
            self.send(sender, RuleReady(msg.account_id, msg.rule_name, os.getpid()))
        except Exception as exc:  # a plugin that cannot load is reported, not fatal
            self.send(sender, RuleReady(msg.account_id, msg.rule_name, os.getpid(),
                                        f"{type(exc).__name__}: {exc}"))

    def receiveMsg_Evaluate(self, msg: m.Evaluate, sender) -> None:
        if self.rule is None or self.init is None:
            self.send(sender, m.Verdict(msg.account_id, msg.seq, "?", "enforce",
                                        error="rule host not initialised"))
            return
        self.send(sender, run_rule(self.rule, self.init.mode, msg.account_id, msg.seq,
                                   msg.event, msg.state, msg.now))

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender) -> None:
        if msg.payload == ("orphan-check",):
            self.watch.check()
            self.wakeupAfter(CHECK_SECONDS, payload=("orphan-check",))

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender) -> None:
        pass
