"""Actor used by bench/placement.py: fans one Evaluate out to K real RuleActors (the daemon's
own class, risk_actors.rule_host) and times the round trip from inside an actor process, as the
AccountActor experiences it."""

from __future__ import annotations

import time

import attrs
from thespian.actors import ActorExitRequest, ActorTypeDispatcher

from risk_actors import messages as m
from risk_actors.rule_host import RuleActor, RuleInit


@attrs.frozen
class Setup:
    inits: tuple  # RuleInit per rule


@attrs.frozen
class Run:
    n: int
    evaluate: m.Evaluate


class FanOut(ActorTypeDispatcher):
    def __init__(self) -> None:
        super().__init__()
        self.rules: list = []
        self.ready = 0
        self.client = None

    def receiveMsg_Setup(self, msg: Setup, sender) -> None:
        self.client = sender
        for init in msg.inits:
            a = self.createActor(RuleActor)
            self.rules.append(a)
            self.send(a, init)

    def receiveMsg_RuleReady(self, msg, sender) -> None:
        self.ready += 1
        if self.ready == len(self.rules):
            self.send(self.client, ("ready", [None]))

    def receiveMsg_Run(self, msg: Run, sender) -> None:
        self.client, self.left, self.ev, self.times = sender, msg.n, msg.evaluate, []
        self._go()

    def _go(self) -> None:
        self.pending = len(self.rules)
        self.t0 = time.perf_counter()
        for a in self.rules:
            self.send(a, self.ev)

    def receiveMsg_Verdict(self, msg, sender) -> None:
        self.pending -= 1
        if self.pending:
            return
        self.times.append((time.perf_counter() - self.t0) * 1000)
        self.left -= 1
        if self.left > 0:
            self._go()
        else:
            self.send(self.client, ("done", self.times))

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender) -> None:
        for a in self.rules:
            self.send(a, ActorExitRequest())
