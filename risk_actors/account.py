"""AccountActor: owns one account's state and runs its pipeline.

For every broker event (in the GatewayActor's sequence order): apply it with the reducer and
journal it (durable before anything acts on it), run the core's lockout guard, fan the event out
to the rules subscribed to its type, merge their verdicts when all have answered or the rule
timeout has passed, apply locks, and hand broker actions to the EnforcerActor.

It supervises its children: a GatewayActor (broker link), an EnforcerActor and one RuleActor per
enabled rule. A child that dies is recreated and given back what it had not finished: a rule
gets the evaluation it died on again (once: a message that killed a rule twice is quarantined),
the enforcer gets its unfinished enforcement requests, the gateway reconnects and reconciles.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta
from typing import Any

import attrs
from loguru import logger
from thespian.actors import ActorExitRequest, ActorTypeDispatcher, ChildActorExited, WakeupMessage

from risk_actors import messages as m
from risk_actors import symbols
from risk_actors.broker.settings import BrokerSettings
from risk_actors.calendar import last_reset, next_reset
from risk_actors.clock import SystemClock
from risk_actors.enforcer import EnforcerInit, job_key
from risk_actors.pipeline import _strongest, lockout_guard, merge, run_rule
from risk_actors.orphan import ParentWatch
from risk_actors.plugins import load_rule
from risk_actors.rule_host import RuleInit, RuleReady
from risk_actors.state import (AccountState, DailyReset, LockLifted, LocksAdded, ResetScheduled,
                               RuleMemorySet, reduce)

SWEEP_SECONDS = 1.0
STATUS_EVERY = 1.0
STATUS_MIN_GAP = 0.2
MAX_RULE_RESTARTS_PER_MINUTE = 10
ENFORCE_REPLAY_SECONDS = 300.0
# A rule that misses the deadline is slow (a loaded machine) until it stays silent this many
# times the timeout: then it is hung, and is killed and restarted.
HANG_FACTOR = 10
FEED_BATCH_MAX = 200   # component feed items held before a send outside the sweep


@attrs.frozen
class RuleSpec:
    """One enabled rule of an account: plugin path, mode and validated params."""

    name: str
    path: str
    mode: str
    params: Any
    placement: str = "actor"   # "inline": evaluated in the account's process, no RuleActor


@attrs.frozen
class AccountInit:
    """Supervisor -> AccountActor: everything the account needs to run."""

    account_id: int
    name: str
    broker: BrokerSettings | None
    rules: tuple[RuleSpec, ...]
    db_path: str | None
    reset_time: str = "17:00"
    reset_timezone: str = "America/Chicago"
    rule_timeout_ms: int = 100
    warning_fractions: tuple[float, ...] = (0.75, 0.9)  # early warnings at these shares of a limit
    disconnect_alert_seconds: float = 30.0  # broker link down longer than this: alert
    quote_interval_ms: int = 20  # the gateway forwards one quote per contract per this long
    symbol_aliases: tuple[tuple[str, str], ...] = ()  # daemon.symbol_aliases (over defaults)
    enforcer_placement: str = "actor"  # "inline": the enforcer runs in this process
    broker_placement: str = "actor"  # "inline": the broker session runs in this process
    market_feed: bool = False  # True: quotes come from the Supervisor's shared MarketFeedActor
    notifier: Any = None  # the Notifier's address (alerts go straight to it); None: via parent
    connect: bool = True  # False: no GatewayActor (tests feed Inbound themselves)
    gateway_address: Any = None  # tests: a stand-in broker actor instead of a GatewayActor
    clock: Any = None  # a Clock; None = system time (tests on simpleSystemBase drive a FakeClock)


@attrs.frozen
class RulesChanged:
    """Supervisor -> AccountActor: a reloaded config's rules for this account."""

    rules: tuple[RuleSpec, ...]


@attrs.frozen
class RulePids:
    """Ask an AccountActor for its rule processes' pids (fault tests and diagnostics)."""


@attrs.define
class _RuleSlot:
    spec: RuleSpec
    rule: Any                 # local instance, only for applies_to_event routing
    address: Any = None
    pid: int | None = None
    ready: bool = False
    killed: bool = False      # killed by us (timeout): its exit is not a crash
    restarts: list[float] = attrs.field(factory=list)
    disabled: str | None = None
    silent_since: float | None = None  # monotonic start of the oldest unanswered evaluation


@attrs.define
class _Pending:
    event: Any
    waiting: set[str]
    verdicts: list
    started: float


class AccountActor(ActorTypeDispatcher):
    """One account: state, pipeline, timers and the supervision of its children."""

    def __init__(self) -> None:
        super().__init__()
        self.init: AccountInit | None = None
        self.parent = None
        self.clock = SystemClock()
        self.state: AccountState | None = None
        self.db = None
        self.jseq = 0
        self.gateway = None
        self.enforcer = None
        self.embedded = None      # the EmbeddedEnforcer when enforcer_placement is inline
        self.embedded_gw = None   # the EmbeddedGateway when broker_placement is inline
        self.rules: dict[str, _RuleSlot] = {}
        self.pending: dict[int, _Pending] = {}
        self.crashes: dict[tuple[str, int], int] = {}
        self.open_enforce: dict[int, tuple[m.Enforce, set, float]] = {}
        self.failures: list[str] = []
        self.sweep_gen = 0
        self.tick_seq = 0
        self.eval_timer = False
        self.late: dict[tuple[str, int], tuple] = {}  # (rule, seq) -> (event, started)
        self.quotes_in_flight: dict[str, int] = {}   # contract -> seq being judged
        self.quotes_waiting: dict[str, int] = {}     # contract -> seq of the newest unjudged
        self.wakes: dict[str, datetime] = {}
        self.next_sweep_at: datetime | None = None
        self.last_status = 0.0
        self.status_dirty = False
        self.notifier = None
        self.warned: set = set()
        self.warned_day: Any = None
        self.down_since: float | None = None
        self.down_alerted = False
        self.journal_buf: list = []
        self.audit_buf: list = []   # audit records of the message being handled
        self.stopping = False
        self.feed_buf: list = []

    # =========================================================================================
    # start-up
    def receiveMsg_AccountInit(self, msg: AccountInit, sender) -> None:
        if self.init is not None:
            return  # thespian re-delivers a message whose handler raised: start once only
        self.init, self.parent = msg, sender
        self.notifier = msg.notifier
        self.parent_watch = ParentWatch(f"account {msg.account_id}")
        symbols.configure(dict(msg.symbol_aliases))
        if msg.clock is not None:
            self.clock = msg.clock
        now = self.clock.now()
        self.state = self._load(msg, now)
        try:
            if msg.gateway_address is not None:
                self.gateway = msg.gateway_address
            elif msg.connect and msg.broker is not None:
                self._start_gateway()
            self._start_enforcer()
            for spec in msg.rules:
                self._add_rule(spec)
        except Exception as exc:  # noqa: BLE001
            # Shown in `riskd status` and alerted, instead of an account that silently never
            # reports; the sweep and status below still run.
            logger.exception("account {}: start-up failed", msg.account_id)
            self._failure("account", f"start-up failed: {type(exc).__name__}: {exc}")
        self._sweep(now)
        self._push_status(force=True)

    def _load(self, msg: AccountInit, now: datetime) -> AccountState:
        state = None
        if msg.db_path:
            from risk_actors.db import Database
            for attempt in range(4):
                try:
                    self.db = Database(msg.db_path, migrate=False)  # the Supervisor migrated it
                    break
                except Exception as exc:  # noqa: BLE001 - busy at start-up (many openers)
                    logger.error("account {}: cannot open the state database (attempt {}): {}",
                                 msg.account_id, attempt + 1, exc)
                    time.sleep(0.5)
            try:
                if self.db is not None:
                    state, self.jseq = self.db.load(msg.account_id)
            except Exception as exc:  # fail loudly but keep running: REST rebuilds the day
                logger.error("account {}: could not restore state: {}", msg.account_id, exc)
        if state is None:
            state = AccountState(msg.account_id, name=msg.name)
            self.state = state
            state = self._apply(ResetScheduled(
                self._next_reset(now),
                last_reset(now, self.init.reset_time, self.init.reset_timezone)), now)
        else:
            logger.info("account {}: restored state at journal {} ({} lock(s))",
                        msg.account_id, self.jseq, len(state.lockouts))
        self.state = state
        # A reset missed while the daemon was down runs now (rules-spec section 3).
        if state.next_reset_at is not None and now >= state.next_reset_at:
            logger.info("account {}: running the daily reset missed while down", msg.account_id)
            self.state = self._apply(DailyReset(state.next_reset_at, self._next_reset(now)), now)
        return self.state

    def _next_reset(self, after: datetime) -> datetime:
        return next_reset(after, self.init.reset_time, self.init.reset_timezone)

    def _start_gateway(self) -> None:
        from risk_actors.gateway import GatewayStart  # message class only; the SDK loads in the child
        boundary = self.state.last_reset_at or (self.clock.now() - timedelta(days=1))
        start = GatewayStart(self.init.account_id, self.init.name, self.init.broker, boundary,
                             self.state.last_seq, self.init.quote_interval_ms,
                             quotes="external" if self.init.market_feed else "own")
        if self.init.broker_placement == "inline":
            from risk_actors.gateway import EmbeddedGateway
            self.embedded_gw = EmbeddedGateway(self)
            self.gateway = self.myAddress
            self.embedded_gw.receiveMsg_GatewayStart(start, self.myAddress)
            return
        self.gateway = self.createActor("risk_actors.gateway.GatewayActor")
        self.send(self.gateway, start)

    def _start_enforcer(self) -> None:
        if self.init.enforcer_placement == "inline":
            from risk_actors.enforcer import EmbeddedEnforcer
            self.enforcer = None
            self.embedded = EmbeddedEnforcer(self)
            self.embedded.receiveMsg_EnforcerInit(self._enforcer_init(), self.myAddress)
            return
        self.enforcer = self.createActor("risk_actors.enforcer.EnforcerActor")
        self.send(self.enforcer, self._enforcer_init())

    def _to_enforcer(self, msg: Any) -> None:
        if self.embedded is not None:
            getattr(self.embedded, f"receiveMsg_{type(msg).__name__}")(msg, self.myAddress)
        else:
            self.send(self.enforcer, msg)

    def receiveMsg_BrokerReply(self, msg: m.BrokerReply, sender) -> None:
        if self.embedded is not None:  # answers to the embedded enforcer's calls
            self.embedded.receiveMsg_BrokerReply(msg, sender)

    def _enforcer_init(self) -> EnforcerInit:
        rpm = self.init.broker.requests_per_minute if self.init.broker else 190
        # Without a broker link the enforcer's calls come back to us and are dropped.
        return EnforcerInit(self.init.account_id, self.gateway or self.myAddress,
                            self.init.db_path, rpm)

    def _add_rule(self, spec: RuleSpec) -> None:
        try:
            local = load_rule(spec.path)(spec.params)
        except Exception as exc:
            self._failure(spec.name, f"rule {spec.name} cannot load: {exc}")
            return
        if spec.placement != "inline" and self.embedded_gw is not None:
            # This process runs the SDK's thread: forking a rule process now could deadlock.
            logger.warning("account {}: rule {} runs inline (the broker link is in this "
                           "process)", self.init.account_id, spec.name)
            spec = attrs.evolve(spec, placement="inline")
        slot = _RuleSlot(spec, local)
        self.rules[spec.name] = slot
        if spec.placement == "inline":
            slot.ready = True  # runs in this process: nothing to start
        else:
            self._spawn_rule(slot)

    def _spawn_rule(self, slot: _RuleSlot) -> None:
        slot.address = self.createActor("risk_actors.rule_host.RuleActor")
        slot.ready, slot.killed, slot.pid, slot.silent_since = False, False, None, None
        for key in [k for k in self.late if k[0] == slot.spec.name]:
            del self.late[key]  # the old process's answers will never come
        self.send(slot.address, RuleInit(self.init.account_id, slot.spec.name, slot.spec.path,
                                         slot.spec.params, slot.spec.mode,
                                         self.init.symbol_aliases))

    def receiveMsg_RuleReady(self, msg: RuleReady, sender) -> None:
        slot = self.rules.get(msg.rule_name)
        if slot is None or slot.address != sender:
            return
        if msg.error:
            slot.disabled = msg.error
            self._failure(msg.rule_name, f"rule {msg.rule_name} failed to start: {msg.error}")
            return
        slot.ready, slot.pid = True, msg.pid

    # =========================================================================================
    # the pipeline
    def receiveMsg_Inbound(self, msg: m.Inbound, sender) -> None:
        if self.state is None:
            return
        if msg.seq <= self.state.last_seq:
            return  # already processed (a gateway restart re-sent it)
        self._process(msg.event, msg.seq)

    def receiveMsg_InboundBatch(self, msg: m.InboundBatch, sender) -> None:
        for item in msg.items:
            self.receiveMsg_Inbound(item, sender)

    def _process(self, event: Any, seq: int) -> None:
        now = self.clock.now()
        self._reset_if_due(now)  # a lock decided now must not expire at a reset already past
        before = self.state
        after = self._apply(event, now, seq=seq)
        guard = lockout_guard(event, before, after, now)
        if guard:
            self._enforce(seq, "lockout_guard", "account or symbol locked", guard, now)
        if isinstance(event, m.Reconciled):
            self._replay_open_enforcements()
        self._dispatch(seq, event, now)
        if not isinstance(event, (m.QuoteEvent, m.Tick)):
            self._feed(seq, event, now)
        # Status follows changes within STATUS_MIN_GAP (the sweep flushes what is pending);
        # pushing on every event would put a message per event on the latency-critical path.
        self.status_dirty = self.status_dirty or not isinstance(event, m.QuoteEvent)
        if isinstance(event, (m.ConnectionChanged, m.Reconciled)):
            self._push_status(force=True)
        elif self.status_dirty:
            self._push_status(min_gap=STATUS_MIN_GAP)
        if isinstance(event, m.PositionEvent) and self.embedded is not None \
                and self.embedded.hub_verify and self.embedded.jobs:
            # Last: a job it verifies reports back (EnforcementDone) into this actor's state.
            self.embedded.on_position(event.contract_id, -event.size
                                      if event.type == m.POSITION_SHORT else event.size)

    def _apply(self, change: Any, now: datetime, seq: int | None = None) -> AccountState:
        """The one way state changes: reducer, then journal (durable before acting on it)."""
        new = reduce(self.state, change, now)
        if seq is not None:
            new = attrs.evolve(new, last_seq=seq)
        if new is self.state:
            return new
        prev, self.state = self.state, new
        if new.lockouts is not prev.lockouts:
            self._announce_locks(prev, new, now)
        # Quotes are rebuilt from the feed after a restart, never persisted: journaling them
        # would cost a write per tick for nothing.
        if self.db is not None and not isinstance(change, m.QuoteEvent):
            self.jseq += 1
            self.journal_buf.append((self.jseq, change, new, now))
        return new

    def receiveMessage(self, msg: Any, sender: Any) -> Any:
        try:
            super().receiveMessage(msg, sender)
        finally:
            gw = self.embedded_gw
            if gw is not None:
                try:
                    gw._pump()  # broker events that arrived meanwhile, handled right here
                except Exception:  # noqa: BLE001 - the broker link must outlive one bad item
                    logger.exception("account: error draining the embedded broker session")
            self._flush_journal()
            if len(self.feed_buf) >= FEED_BATCH_MAX:
                self._flush_feed()
        # thespian resets the fd watch after every message: hand it back each time.
        return self.embedded_gw._watch() if self.embedded_gw is not None else None

    def receiveMsg_WatchMessage(self, msg: Any, sender: Any) -> None:
        pass  # receiveMessage drains the embedded broker session after every message

    def receiveMsg_BrokerCall(self, msg: m.BrokerCall, sender: Any) -> None:
        if self.embedded_gw is not None:
            self.embedded_gw.receiveMsg_BrokerCall(msg, sender)

    def receiveMsg_QuotesWanted(self, msg: m.QuotesWanted, sender: Any) -> None:
        # The shared feed (through the Supervisor, which remembers it for a restarted feed).
        self.send(self.parent, m.QuoteInterest(msg.account_id, msg.contract_ids))

    def receiveMsg_FeedQuotes(self, msg: m.FeedQuotes, sender: Any) -> None:
        # Through the gateway, so feed quotes get this account's sequence numbers and order.
        if self.embedded_gw is not None:
            self.embedded_gw.receiveMsg_FeedQuotes(msg, sender)
        elif self.gateway is not None and self.gateway != self.myAddress:
            self.send(self.gateway, msg)

    def _flush_feed(self) -> None:
        """Send the components what piled up: once per sweep (about a second), or sooner when
        the batch is large. Every message costs CPU on the enforcement path's cores, and
        analytics do not need the millisecond."""
        if self.feed_buf and self.parent is not None:
            feeds, self.feed_buf = tuple(self.feed_buf), []
            self.send(self.parent, m.ComponentFeedBatch(feeds))

    def _flush_journal(self) -> None:
        """Write the changes and the audit records of the message just handled, in one
        transaction.

        Done when the message's work is out (broker actions sent), not before each action: the
        database is shared by every account's processes and its write lock can take
        milliseconds under load. A kill -9 inside that window loses at most these changes,
        which the reconciliation after restart rebuilds from the broker, and their audit
        records (the broker's own record then shows the call).
        """
        if not self.journal_buf and not self.audit_buf:
            return
        entries, self.journal_buf = self.journal_buf, []
        audits, self.audit_buf = self.audit_buf, []
        try:
            self.db.record_batch(self.init.account_id, entries, audits)
        except Exception as exc:
            # Enforcement goes on regardless (undoing a violation beats recording it), but
            # a person must know that a crash now could lose these changes.
            logger.error("account {}: journal write failed: {}", self.init.account_id, exc)
            self._notify("store", "critical", f"journal write failed: {exc}", kind="store")

    def _dispatch(self, seq: int, event: Any, now: datetime) -> None:
        if isinstance(event, m.QuoteEvent):
            # Coalesce quotes per contract, latest wins: while the rules still judge one quote
            # of a contract, newer ones only update the state; the newest is judged next.
            if event.contract_id in self.quotes_in_flight:
                self.quotes_waiting[event.contract_id] = seq
                return
        targets = [s for s in self.rules.values()
                   if s.ready and not s.disabled and s.rule.applies_to_event(event)]
        if not targets:
            return
        remote = [s for s in targets if s.address is not None]
        # Inline rules judge now, in this process (pure and bounded: the rules shipped with
        # riskd); an exception is a failed verdict, exactly as in a RuleActor.
        verdicts = [run_rule(s.rule, s.spec.mode, self.init.account_id, seq, event, self.state,
                             now) for s in targets if s.address is None]
        for v in verdicts:
            self._report_raise(v)
        if not remote:
            self._conclude(seq, event, verdicts)
            return
        if isinstance(event, m.QuoteEvent):
            self.quotes_in_flight[event.contract_id] = seq
        self.pending[seq] = _Pending(event, {s.spec.name for s in remote}, verdicts,
                                     time.monotonic())
        ev = m.Evaluate(self.init.account_id, seq, event, self.state, now)
        for slot in remote:
            self.send(slot.address, ev)
        if not self.eval_timer:
            # thespian cannot cancel a wake-up, and one per event piles up thousands at quote
            # rates: keep a single chain that checks every pending evaluation when it fires.
            self.eval_timer = True
            self.wakeupAfter(self.init.rule_timeout_ms / 1000.0, payload=("eval",))

    def receiveMsg_Verdict(self, v: m.Verdict, sender) -> None:
        p = self.pending.get(v.seq)
        if p is None or v.rule not in p.waiting:
            late = self.late.pop((v.rule, v.seq), None)
            if late is None:
                logger.warning("account {}: verdict of {} for seq {} ignored (not expected)",
                               self.init.account_id, v.rule, v.seq)
                return
            # Fail closed: a verdict that missed the deadline (a loaded machine, not a hang) is
            # still enforced, late, rather than dropped.
            slot = self.rules.get(v.rule)
            if slot is not None:
                slot.silent_since = None
            logger.warning("account {}: late verdict of {} for seq {} after {:.0f} ms: applied",
                           self.init.account_id, v.rule, v.seq,
                           (time.monotonic() - late[1]) * 1000)
            self._conclude(v.seq, late[0], [v])
            return
        p.waiting.discard(v.rule)
        p.verdicts.append(v)
        self._report_raise(v)
        if not p.waiting:
            self._complete(v.seq)

    def _report_raise(self, v: m.Verdict) -> None:
        """A plugin that raised (inline or in its actor): recorded and alerted, event goes on."""
        if v.error:
            self._failure(v.rule, f"rule {v.rule} raised on seq {v.seq}: "
                                  f"{v.error.splitlines()[0]}", detail=v.error)

    def _complete(self, seq: int) -> None:
        p = self.pending.pop(seq, None)
        if p is None:
            return
        self._conclude(seq, p.event, p.verdicts)

    def _conclude(self, seq: int, event: Any, verdicts: list) -> None:
        """Apply the verdicts of one event: memory, records, merged plan, locks, enforcement."""
        now = self.clock.now()
        if isinstance(event, m.QuoteEvent):
            self._next_quote(event.contract_id, seq, now)
        for v in verdicts:
            if v.memory is not None:
                self._apply(RuleMemorySet(v.rule, v.memory), now)
            if v.wake_at is not None:
                self.wakes[v.rule] = v.wake_at
                self._sweep_by(v.wake_at, now)
            if v.violation is not None:
                self._feed(seq, m.RuleTriggered(v.rule, v.mode, v.violation.reason,
                                                tuple(repr(a) for a in v.actions)), now)
                self._audit("verdict", v.rule, {
                    "seq": seq, "mode": v.mode, "reason": v.violation.reason,
                    "actions": [repr(a) for a in v.actions], "elapsed_ms": round(v.elapsed_ms, 3)})
                logger.warning("account {} rule {} ({}): {}", self.init.account_id, v.rule,
                               v.mode, v.violation.reason)
        plan = merge(verdicts)
        if plan.empty:
            return
        for rule, lift in plan.lifts:
            self._apply(LockLifted(rule, lift.symbol), now)
            self._audit("unlock", rule, {"symbol": lift.symbol})
        before = self.state
        for rule in dict.fromkeys(r for r, _ in plan.locks):
            locks = tuple(lk for r, lk in plan.locks if r == rule)
            self._apply(LocksAdded(rule, locks), now)
            self._audit("lock", rule, {"locks": [repr(lk) for lk in locks]})
        guard = lockout_guard(None, before, self.state, now) if plan.locks else ()
        actions = _strongest(list(plan.broker_actions) + list(guard))
        if actions:
            reason = "; ".join(v.violation.reason for v in verdicts
                               if v.violation is not None and v.mode == "enforce")
            self._enforce(seq, ",".join(plan.rules) or "lockout_guard", reason, actions, now)
        for rule, alert in plan.alerts:
            self._notify(rule, alert.severity, alert.message, kind="rule_alert")
        if plan.locks:
            self._push_status(force=True)

    def _enforce(self, seq: int, rule: str, reason: str, actions: tuple, now: datetime) -> None:
        msg = m.Enforce(self.init.account_id, seq, rule, reason, actions, now,
                        {c: p.signed_size for c, p in self.state.positions.items()},
                        {o.order_id: o.contract_id for o in self.state.orders.values()})
        self.open_enforce[seq * 1000 + len(self.open_enforce) % 1000] = (
            msg, {job_key(a) for a in actions}, time.monotonic())
        self._to_enforcer(msg)

    def receiveMsg_EnforcementDone(self, msg: m.EnforcementDone, sender) -> None:
        if msg.ok:
            enf = next((e for e, keys, _ in self.open_enforce.values()
                        if tuple(msg.key) in keys), None)
            why = enf.reason if enf is not None and enf.reason else msg.rule
            self._notify(msg.rule, "warning", f"enforced: {msg.detail} (why: {why}; "
                         f"{msg.attempts} attempt(s))", kind="enforcement",
                         data={"goal": list(msg.key), "result": msg.detail, "reason": why,
                               "attempts": msg.attempts, "seq": msg.seq})
        else:
            self._notify(msg.rule, "critical" if msg.final else "warning",
                         f"enforcement {'FAILED' if msg.final else 'not yet complete'}: {msg.detail}",
                         kind="enforcement_failed",
                         data={"goal": list(msg.key), "result": msg.detail, "final": msg.final,
                               "attempts": msg.attempts, "seq": msg.seq})
            # Shown in `riskd status` at once, not only when the enforcer finally gives up.
            text = f"{msg.rule}: {msg.detail}" if msg.final else f"{msg.rule} (retrying): {msg.detail}"
            self.failures = (self.failures + [text])[-10:]
            self._push_status(force=True)
        if msg.final and msg.key:
            for k, (enf, keys, t) in list(self.open_enforce.items()):
                keys.discard(tuple(msg.key))
                if not keys:
                    del self.open_enforce[k]

    def _replay_open_enforcements(self) -> None:
        cutoff = time.monotonic() - ENFORCE_REPLAY_SECONDS
        for k, (enf, keys, t) in list(self.open_enforce.items()):
            if t < cutoff:
                del self.open_enforce[k]
            else:
                self._to_enforcer(attrs.evolve(enf, replay=True))

    # =========================================================================================
    # timers: one sweep chain (lock expiry, reset, rule wake-ups, rule timeouts)
    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender) -> None:
        payload = msg.payload or ()
        if not payload or self.state is None:
            return
        if payload[0] == "gateway":
            if self.embedded_gw is not None:
                self.embedded_gw.receiveMsg_WakeupMessage(WakeupMessage(msg.delayPeriod,
                                                                        payload[1]), sender)
        elif payload[0] == "enforcer":
            if self.embedded is not None:
                self.embedded.receiveMsg_WakeupMessage(WakeupMessage(msg.delayPeriod,
                                                                     payload[1]), sender)
        elif payload[0] == "eval":
            self._check_rule_timeouts()
        elif payload[0] == "config-tick":
            self.tick_seq -= 1
            self._dispatch(self.tick_seq, m.Tick(self.init.account_id, "config"), self.clock.now())
        elif payload[0] == "sweep" and payload[1] == self.sweep_gen:
            self._sweep(self.clock.now())

    def _reset_if_due(self, now: datetime) -> None:
        state = self.state
        if state.next_reset_at is not None and now >= state.next_reset_at:
            logger.info("account {}: daily reset", self.init.account_id)
            self._apply(DailyReset(state.next_reset_at, self._next_reset(now)), now)
            self._audit("daily_reset", None, {"at": state.next_reset_at.isoformat()})
            self._feed(0, m.DayClosed(state.last_reset_at, state.next_reset_at), now)
            self._push_status(force=True)

    def _sweep(self, now: datetime) -> None:
        self.parent_watch.check()
        self._flush_feed()
        self._reset_if_due(now)
        self._check_connection(now)
        self.sweep_gen += 1
        before = self.state
        self._apply(m.Tick(self.init.account_id), now)  # drops expired locks
        if self.state is not before:
            self._push_status(force=True)
        due = [r for r, t in self.wakes.items() if t <= now]
        if due:
            for r in due:
                del self.wakes[r]
            self._dispatch_tick(now)
        deadline = min([d for d in [self.state.next_deadline(), *self.wakes.values()] if d],
                       default=None)
        delay = SWEEP_SECONDS
        if deadline is not None:
            delay = min(delay, max(0.01, (deadline - now).total_seconds()))
        self.next_sweep_at = now + timedelta(seconds=delay)
        self.wakeupAfter(delay, payload=("sweep", self.sweep_gen))
        self._push_status()

    def _sweep_by(self, when: datetime, now: datetime) -> None:
        # A wake-up asked for after the sweep was planned (e.g. by the verdict of a timer Tick)
        # can be nearer than that sweep: bring the sweep forward so timers stay exact. The
        # planned wake-up then carries a stale generation and is ignored.
        if self.next_sweep_at is not None and when >= self.next_sweep_at:
            return
        self.next_sweep_at = when
        self.wakeupAfter(max(0.01, (when - now).total_seconds()),
                         payload=("sweep", self.sweep_gen))

    def _next_quote(self, contract_id: str, done_seq: int, now: datetime) -> None:
        """A quote evaluation finished: judge the newest quote that arrived meanwhile, if any."""
        if self.quotes_in_flight.get(contract_id) == done_seq:
            del self.quotes_in_flight[contract_id]
        waiting = self.quotes_waiting.pop(contract_id, None)
        quote = self.state.quotes.get(contract_id)
        if waiting is not None and quote is not None:
            self._dispatch(waiting, m.QuoteEvent(contract_id, quote.last_price, quote.best_bid,
                                                 quote.best_ask, quote.timestamp,
                                                 quote.received_at), now)

    def _dispatch_tick(self, now: datetime) -> None:
        # Timer evaluations get their own (negative) sequence so they never collide with events.
        self.tick_seq -= 1
        self._dispatch(self.tick_seq, m.Tick(self.init.account_id, "rule wake-up"), now)

    def _check_rule_timeouts(self) -> None:
        self.eval_timer = False
        limit = self.init.rule_timeout_ms / 1000.0
        now_m = time.monotonic()
        for seq, p in list(self.pending.items()):
            if now_m - p.started >= limit:
                self._rule_timeout(seq)
        self._kill_hung_rules(now_m, limit * HANG_FACTOR)
        starts = [p.started for p in self.pending.values()]
        if starts or self.late:
            self.eval_timer = True
            delay = (min(starts) + limit - now_m) if starts else limit
            self.wakeupAfter(max(0.005, delay), payload=("eval",))

    def _rule_timeout(self, seq: int) -> None:
        """Past the deadline the event goes on without the silent rules; their verdicts stay
        welcome (enforced late). Only a rule silent for HANG_FACTOR x the timeout is killed."""
        p = self.pending.get(seq)
        if p is None:
            return
        for name in list(p.waiting):
            slot = self.rules.get(name)
            self.late[(name, seq)] = (p.event, p.started)
            if slot is not None and slot.silent_since is None:
                slot.silent_since = p.started
            self._failure(name, f"rule {name} did not answer seq {seq} within "
                                f"{self.init.rule_timeout_ms} ms: going on without it; a late "
                                "verdict will still be enforced")
        p.waiting.clear()
        self._complete(seq)

    def _kill_hung_rules(self, now_m: float, hang_after: float) -> None:
        for name, slot in self.rules.items():
            if slot.silent_since is None or now_m - slot.silent_since < hang_after:
                continue
            slot.silent_since = None
            for key in [k for k in self.late if k[0] == name]:
                del self.late[key]
            if slot.pid and not slot.killed:
                self._failure(name, f"rule {name} silent for {hang_after * 1000:.0f} ms: "
                                    "hung, killed and restarted")
                slot.killed, slot.ready = True, False
                try:
                    os.kill(slot.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    # =========================================================================================
    # supervision
    def receiveMsg_ChildActorExited(self, msg: ChildActorExited, sender) -> None:
        child = msg.childAddress
        if self.init is None or self.stopping:
            return  # (stopping: children leave because we do; restarting them undoes the stop)
        if child == self.gateway:
            logger.error("account {}: gateway actor exited; restarting", self.init.account_id)
            self._start_gateway()
            self._to_enforcer(self._enforcer_init())
            return
        if child == self.enforcer:
            logger.error("account {}: enforcer exited; restarting and replaying",
                         self.init.account_id)
            self._start_enforcer()
            self._replay_open_enforcements()
            return
        slot = next((s for s in self.rules.values() if s.address == child), None)
        if slot is not None:
            self._rule_exited(slot)

    def _rule_exited(self, slot: _RuleSlot) -> None:
        name = slot.spec.name
        now_m = time.monotonic()
        slot.restarts = [t for t in slot.restarts if now_m - t < 60] + [now_m]
        if not slot.killed:
            self._failure(name, f"rule actor {name} died; restarting")
        if len(slot.restarts) > MAX_RULE_RESTARTS_PER_MINUTE:
            slot.disabled = "restarted too often"
            self._failure(name, f"rule {name} disabled: {len(slot.restarts)} restarts in 60 s")
            for seq, p in list(self.pending.items()):
                if name in p.waiting:
                    p.waiting.discard(name)
                    if not p.waiting:
                        self._complete(seq)
            return
        self._spawn_rule(slot)
        # Give it back the evaluations it died on, once; the second death quarantines the event.
        for seq, p in list(self.pending.items()):
            if name not in p.waiting:
                continue
            count = self.crashes.get((name, seq), 0) + 1
            self.crashes[(name, seq)] = count
            if count >= 2:
                self._quarantine(name, seq, p.event)
                p.waiting.discard(name)
                if not p.waiting:
                    self._complete(seq)
            else:
                self.send(slot.address, m.Evaluate(self.init.account_id, seq, p.event,
                                                   self.state, self.clock.now()))

    def _quarantine(self, rule: str, seq: int, event: Any) -> None:
        now = self.clock.now()
        text = f"event seq {seq} crashed rule {rule} twice: quarantined"
        logger.error("account {}: {}: {!r}", self.init.account_id, text, event)
        if self.db is not None:
            try:
                self.db.quarantine(self.init.account_id, seq, rule, repr(event)[:2000],
                                   "rule process died twice", now)
            except Exception as exc:
                logger.error("quarantine write failed: {}", exc)
        self._audit("quarantine", rule, {"seq": seq, "event": repr(event)[:500]})
        self._notify(rule, "critical", text, kind="quarantine", data={"seq": seq})

    # =========================================================================================
    # config reload, status, exit
    def receiveMsg_RulesChanged(self, msg: RulesChanged, sender) -> None:
        wanted = {s.name: s for s in msg.rules}
        for name, slot in list(self.rules.items()):
            if name not in wanted or wanted[name] != slot.spec:
                self.rules.pop(name)
                slot.killed = True
                if slot.address is not None:
                    self.send(slot.address, ActorExitRequest())
                for seq, p in list(self.pending.items()):
                    if name in p.waiting:
                        p.waiting.discard(name)
                        if not p.waiting:
                            self._complete(seq)
        for name, spec in wanted.items():
            if name not in self.rules:
                self._add_rule(spec)
        self._push_status(force=True)
        # Rules that judge the config itself (011 lifting an unblocked symbol) re-check now;
        # new rule actors get it once they are up (messages to them queue in order).
        self.wakeupAfter(0.2, payload=("config-tick",))

    def receiveMsg_RulePids(self, msg: RulePids, sender) -> None:
        self.send(sender, {n: s.pid for n, s in self.rules.items() if s.ready and s.pid})

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender) -> None:
        self.stopping = True
        if self.embedded_gw is not None:
            self.embedded_gw.receiveMsg_ActorExitRequest(msg, sender)  # close the session
        self._flush_journal()  # before the snapshot, which covers them
        self._flush_feed()
        if self.db is not None and self.state is not None:
            try:
                self.db.snapshot(self.init.account_id, self.jseq, self.state, self.clock.now())
            except Exception as exc:
                logger.error("final snapshot failed: {}", exc)

    def _status(self) -> m.AccountStatus:
        s, now = self.state, self.clock.now()
        return m.AccountStatus(
            s.account_id, s.name or self.init.name, s.connected,
            tuple((c, p.signed_size, p.average_price) for c, p in sorted(s.positions.items())),
            s.realized_pnl, s.fees_total,
            tuple((lk.rule, lk.scope, lk.symbol, lk.reason,
                   lk.expires_at.isoformat() if lk.expires_at else None)
                  for lk in s.active_lockouts(now)),
            tuple(f"{n}{'' if sl.ready else ' (starting)'}{' DISABLED: ' + sl.disabled if sl.disabled else ''}"
                  f" [{sl.spec.mode}]" for n, sl in sorted(self.rules.items())),
            s.last_event_at, tuple(self.failures),
            *self._cli_status(s, now))

    def _cli_status(self, s: AccountState, now: datetime) -> tuple:
        """Unrealized P&L, each rule's usage of its limits, next reset, lock start times,
        canTrade: for the CLIs. Runs only with a status push (throttled, off the event path);
        a plugin whose ``usage`` raises shows nothing rather than break the status."""
        unrealized = [s.unrealized(c) for c in s.positions]
        usage = []
        for name, slot in sorted(self.rules.items()):
            try:
                usage += [(name, slot.spec.mode, u.label, u.value, u.limit, u.unit)
                          for u in slot.rule.usage(s, now)]
            except Exception as exc:  # noqa: BLE001
                logger.debug("rule {} usage failed: {}", name, exc)
        self._check_warnings(usage, now)
        known = [u for u in unrealized if u is not None]
        return (round(sum(known), 2) if known or not unrealized else None, tuple(usage),
                s.next_reset_at,
                tuple(lk.started_at.isoformat() for lk in s.active_lockouts(now)), s.can_trade)

    def _push_status(self, force: bool = False, min_gap: float = STATUS_EVERY) -> None:
        if self.parent is None or self.state is None:
            return
        t = time.monotonic()
        if force or t - self.last_status >= min_gap or (self.status_dirty and
                                                          t - self.last_status >= STATUS_MIN_GAP):
            self.last_status, self.status_dirty = t, False
            self.send(self.parent, self._status())

    # =========================================================================================
    # records
    def _failure(self, rule: str, text: str, detail: str | None = None) -> None:
        logger.error("account {}: {}", self.init.account_id, text)
        self.failures = (self.failures + [text])[-10:]
        self._audit("rule_failure", rule, {"text": text, "detail": (detail or "")[:2000]})
        self._notify(rule, "error", text, kind="rule_failure")

    def _notify(self, rule: str | None, severity: str, text: str, kind: str = "rule_alert",
                data: dict | None = None, key: str | None = None) -> None:
        # Straight to the Notifier (the Supervisor says when a restarted one replaces it);
        # through the Supervisor when none was given (tests, or before the first).
        target = self.notifier or self.parent
        if self.init is not None and target is not None:
            self.send(target, m.Notify(kind, severity, self.init.account_id, rule, text,
                                       self.clock.now(), data or {}, key))

    def receiveMsg_NotifierChanged(self, msg: m.NotifierChanged, sender) -> None:
        self.notifier = msg.address

    def _feed(self, seq: int, item: Any, now: datetime) -> None:
        """Hand one item of the event stream to the components (analytics ...), after the
        pipeline is done with it: components are never on the enforcement path."""
        if self.parent is not None:
            self.feed_buf.append(m.ComponentFeed(self.init.account_id, seq, item, now))

    def _announce_locks(self, before: AccountState, after: AccountState, now: datetime) -> None:
        """Alert once per lock started and once per lock ended (expired, lifted, reset)."""
        old = {(lk.key, lk.started_at): lk for lk in before.lockouts}
        new = {(lk.key, lk.started_at): lk for lk in after.lockouts}
        for k, lk in new.items():
            if k not in old:
                until = lk.expires_at.isoformat() if lk.expires_at else (
                    "the next daily reset" if lk.until_reset else "lifted by its rule")
                what = f"{lk.symbol} locked" if lk.scope == "symbol" else "account locked"
                self._notify(lk.rule, "warning", f"{what} until {until}: {lk.reason}",
                             kind="lock_start", key=f"lock_start|{self.init.account_id}|{k}",
                             data={"scope": lk.scope, "symbol": lk.symbol, "reason": lk.reason,
                                   "started_at": lk.started_at.isoformat(),
                                   "expires_at": lk.expires_at.isoformat()
                                   if lk.expires_at else None})
        for k, lk in old.items():
            if k not in new:
                what = f"{lk.symbol} unlocked" if lk.scope == "symbol" else "account unlocked"
                self._notify(lk.rule, "info", f"{what} (lock of {lk.started_at:%H:%M:%S} UTC "
                             f"ended)", kind="lock_end", key=f"lock_end|{self.init.account_id}|{k}",
                             data={"scope": lk.scope, "symbol": lk.symbol,
                                   "started_at": lk.started_at.isoformat(),
                                   "ended_at": now.isoformat()})

    def _check_warnings(self, usage: list, now: datetime) -> None:
        """Early warnings: once per trading day when a limit's usage crosses a fraction."""
        day = self.state.last_reset_at
        if self.warned_day != day:
            self.warned_day, self.warned = day, set()
        for name, mode, label, value, limit, unit in usage:
            if not limit or (value > 0) != (limit > 0) or not value:
                continue
            share = value / limit
            for frac in sorted(self.init.warning_fractions, reverse=True):
                if share >= frac and share < 1.0:
                    key = (name, label, frac)
                    if key not in self.warned:
                        self.warned.update((name, label, f) for f in self.init.warning_fractions
                                           if f <= frac)
                        self._notify(name, "warning",
                                     f"{label}: {value:g} of {limit:g} {unit} "
                                     f"({share * 100:.0f} % of the limit)".replace("  ", " "),
                                     kind="warning",
                                     data={"label": label, "value": value, "limit": limit,
                                           "unit": unit, "fraction": frac, "mode": mode})
                    break

    def _check_connection(self, now: datetime) -> None:
        """Alert when the broker link stays down longer than the configured time, and when
        it comes back after such an alert."""
        if self.state.connected:
            if self.down_alerted:
                self._notify(None, "info", "broker connection restored", kind="reconnected")
            self.down_since, self.down_alerted = None, False
            return
        t = time.monotonic()
        if self.down_since is None:
            self.down_since = t
        elif not self.down_alerted and t - self.down_since >= self.init.disconnect_alert_seconds:
            self.down_alerted = True
            self._notify(None, "critical", f"broker disconnected for {t - self.down_since:.0f} s: "
                         "riskd cannot see or enforce this account until it is back",
                         kind="disconnected")

    def _audit(self, kind: str, rule: str | None, detail: dict,
               at: datetime | None = None) -> None:
        """Recorded with the journal of the message being handled, in its one transaction
        (written when the message's broker calls have left: see _flush_journal)."""
        if self.db is None:
            return
        self.audit_buf.append((kind, self.init.account_id, rule, detail,
                               at or self.clock.now()))
