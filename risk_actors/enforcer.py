"""EnforcerActor: turns enforcement actions into broker calls and keeps at it until they hold.

Each action becomes a *job* with a goal on the broker's state ("no position in MNQ", "MNQ at
most 5 long", "no working orders"). A job acts on what it knows, then reads the broker back
(``Position/searchOpen``, ``Order/searchOpen``) and acts again on what is still wrong, with
backoff, until the goal holds. That makes enforcement idempotent (a second request for the same
goal joins the running job) and convergent (a close that the broker swallowed, a 5xx, a fill that
raced the close are all caught by the read-back). Every call and outcome goes to the audit trail.

Calls stay inside the gateway budget (200 requests / 60 s; configured lower for margin): when
the window is full, calls wait in order instead of being refused by the broker with a 429.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from typing import Any

import attrs
from loguru import logger
from thespian.actors import ActorTypeDispatcher, WakeupMessage

from risk_actors import messages as m
from risk_actors.orphan import CHECK_SECONDS, ParentWatch
from risk_actors.clock import SystemClock

BACKOFF_START, BACKOFF_MAX = 0.05, 5.0
ALERT_AFTER_ATTEMPTS = 3
GIVE_UP_AFTER_ATTEMPTS = 40
# After a mutating call that got no answer (timeout, dropped transport), the gateway may still
# apply it: read back only after this long, or a second reduce could overshoot the goal.
SETTLE_SECONDS = 2.0
# A close or reduce whose position update (user hub) shows the goal met is verified by it; only
# without such an update within this long is the position read back over REST. Saves a REST
# call per enforcement (docs/performance.md) where the enforcer sees the account's events.
HUB_VERIFY_SECONDS = 1.0
# Safe only because a reconcile snapshot can no longer roll a position back past a hub update
# that overtook its REST answer (reconcile.overlay): before that, a job finished on the hub's
# update and a stale snapshot then put the old size back, and a second reduce went out (CI,
# 6 -> 4). False = REST read-back after every close/reduce (the before/after figure).
HUB_VERIFY = True


@attrs.frozen
class EnforcerInit:
    """AccountActor -> EnforcerActor: where the broker is and where to record."""

    account_id: int
    gateway: Any
    db_path: str | None = None
    requests_per_minute: int = 190


@attrs.define
class Job:
    """One enforcement goal being driven to completion."""

    key: tuple
    goal: Any               # the action that states the goal
    seq: int
    rules: list[str]
    reason: str
    target: int | None = None   # reduce: absolute size to end at
    attempts: int = 0
    outstanding: set = attrs.field(factory=set)
    positions: dict | None = None   # last broker view (contract -> signed size)
    orders: dict | None = None      # last broker view (order id -> contract)
    started: float = attrs.field(factory=time.monotonic)
    phase: str = "act"
    alerted: bool = False
    # A request joined while this job was running: the broker may have changed after the last
    # read-back (a new fill), so the job must read back once more before it may finish.
    dirty: bool = False
    retry_after: float | None = None  # the broker's Retry-After (429/5xx) for the next attempt
    settle: bool = False  # an uncertain mutating call: wait SETTLE_SECONDS before reading back
    # signed size of the goal's contract in the newest position update from the user hub since
    # the job's last calls left (hub verification; None = none yet)
    hub_view: int | None = None
    act_failed: bool = False  # a call of the last act was refused: read back at once, no hub wait


def _unanswered(error: str | None) -> bool:
    """A mutating call that got no answer (timeout, dropped transport) may still be applied by
    the gateway. One the gateway answered with an error (4xx/5xx) is judged by the read-back
    at once: waiting there would only delay enforcement."""
    text = error or ""
    return "outcome uncertain" in text and ("timeout" in text or "transport error" in text)


def job_key(action: Any) -> tuple:
    if isinstance(action, m.FlattenAccount):
        return ("flatten",)
    if isinstance(action, m.ClosePosition):
        return ("close", action.contract_id)
    if isinstance(action, m.ReducePosition):
        return ("reduce", action.contract_id)
    if isinstance(action, m.CancelOrders):
        return ("cancel_orders", action.contract_id)
    if isinstance(action, m.CancelOrder):
        return ("cancel", action.order_id)
    if isinstance(action, m.PlaceStop):
        return ("stop", action.contract_id)
    if isinstance(action, m.ModifyStop):
        return ("modify", action.order_id)
    raise TypeError(f"not a broker action: {action!r}")


def plan_calls(job: Job, positions: dict[str, int], orders: dict[int, str]) -> list[tuple[str, dict]]:
    """Broker calls that move ``positions``/``orders`` toward the job's goal."""
    g = job.goal
    if isinstance(g, m.FlattenAccount):
        return ([("close", {"contract_id": c}) for c, s in positions.items() if s]
                + [("cancel", {"order_id": o}) for o in orders])
    if isinstance(g, m.ClosePosition):
        return [("close", {"contract_id": g.contract_id})] if positions.get(g.contract_id) else []
    if isinstance(g, m.ReducePosition):
        size = abs(positions.get(g.contract_id, 0))
        excess = size - (job.target or 0)
        if excess <= 0:
            return []
        if excess >= size:
            return [("close", {"contract_id": g.contract_id})]
        return [("partial_close", {"contract_id": g.contract_id, "size": excess})]
    if isinstance(g, m.CancelOrders):
        return [("cancel", {"order_id": o}) for o, c in orders.items()
                if g.contract_id is None or c == g.contract_id]
    if isinstance(g, m.CancelOrder):
        return [("cancel", {"order_id": g.order_id})] if g.order_id in orders else []
    if isinstance(g, m.PlaceStop):
        args = {"contract_id": g.contract_id, "side": g.side, "size": g.size,
                "stop_price": g.stop_price}
        if g.custom_tag is not None:
            args["custom_tag"] = g.custom_tag
        return [("place_stop", args)]
    if isinstance(g, m.ModifyStop):
        return [("modify", {"order_id": g.order_id, "stop_price": g.stop_price, "size": g.size})]
    return []


def satisfied(job: Job, positions: dict[str, int], orders: dict[int, str]) -> bool:
    """Whether the broker's state meets the job's goal."""
    g = job.goal
    if isinstance(g, m.FlattenAccount):
        return not any(positions.values()) and not orders
    if isinstance(g, m.ClosePosition):
        return not positions.get(g.contract_id)
    if isinstance(g, m.ReducePosition):
        return abs(positions.get(g.contract_id, 0)) <= (job.target or 0)
    if isinstance(g, m.CancelOrders):
        return not any(g.contract_id is None or c == g.contract_id for c in orders.values())
    if isinstance(g, m.CancelOrder):
        return g.order_id not in orders
    return True  # place/modify: judged by the call's own result


def _signed(p: Any) -> tuple[str, int]:
    if isinstance(p, m.PositionEvent):
        return p.contract_id, p.signed_size
    size = int(p.get("size", 0))
    return p["contractId"], -size if p.get("type") == m.POSITION_SHORT else size


def _order_pair(o: Any) -> tuple[int, str] | None:
    if isinstance(o, m.OrderEvent):
        return (o.order_id, o.contract_id) if o.working else None
    if o.get("status") in m.WORKING_STATUSES:
        return int(o["id"]), o["contractId"]
    return None


class EnforcerActor(ActorTypeDispatcher):
    """Executes, verifies and retries enforcement for one account."""

    def __init__(self) -> None:
        super().__init__()
        self.init: EnforcerInit | None = None
        self.parent = None
        self.db = None
        self.jobs: dict[tuple, Job] = {}
        self.calls: dict[str, tuple[tuple, str, dict]] = {}   # call id -> (job key, op, args)
        self.window: deque[float] = deque()
        self.waiting: deque[tuple[tuple, str, dict]] = deque()
        self.ids = itertools.count(1)
        self.clock = SystemClock()
        # Position updates reach only the embedded enforcer (its host hands them over): only
        # it verifies a close/reduce by them (see HUB_VERIFY_SECONDS).
        self.hub_verify = False

    # ---- set-up ------------------------------------------------------------------------------
    def receiveMsg_EnforcerInit(self, msg: EnforcerInit, sender) -> None:
        self.init, self.parent = msg, sender
        if getattr(self, "watch", None) is None:  # re-inits (new gateway) keep one check chain
            self.watch = ParentWatch(f"enforcer of account {msg.account_id}")
            self.wakeupAfter(CHECK_SECONDS, payload=("orphan-check",))
        if msg.db_path and self.db is None:
            from risk_actors.db import Database
            try:
                self.db = Database(msg.db_path, migrate=False)
            except Exception as exc:  # noqa: BLE001
                # Enforce without an audit trail rather than not at all (a locked or damaged
                # file at start-up); the next init (gateway restart) tries again.
                logger.error("enforcer of account {}: audit database unavailable, enforcing "
                             "without it: {}", msg.account_id, exc)

    # ---- requests ----------------------------------------------------------------------------
    def receiveMsg_Enforce(self, msg: m.Enforce, sender) -> None:
        if self.init is None:
            logger.error("enforcer of account {} got Enforce before init", msg.account_id)
            return
        for action in msg.actions:
            key = job_key(action)
            job = self.jobs.get(key)
            target = None
            if isinstance(action, m.ReducePosition):
                target = max(abs(msg.positions.get(action.contract_id, 0)) - action.size, 0)
            if job is not None:
                # Idempotent: the same goal joins the running job (a reduce keeps the lower target).
                job.rules.append(msg.rule)
                job.dirty = True
                if target is not None:
                    job.target = min(job.target if job.target is not None else target, target)
                if job.phase == "hub-wait":
                    self._verify(job)  # read back now: the goal moved while waiting
                continue
            job = Job(key, action, msg.seq, [msg.rule], msg.reason, target)
            self.jobs[key] = job
            if msg.replay and not isinstance(action, (m.PlaceStop, m.ModifyStop)):
                job.settle = True
                self._verify_settled(job)  # the first attempt may still be in flight
            else:
                self._act(job, dict(msg.positions), dict(msg.orders))
            # Recorded just after the call left: the shared database's write lock must not
            # delay the broker call (the call's outcome is audited when its reply comes).
            self._audit("enforcement", msg.rule, {"event": "start", "action": repr(action),
                                                  "seq": msg.seq, "reason": msg.reason,
                                                  "replay": msg.replay})

    # ---- the job loop: act -> verify -> (backoff) -> act ... -----------------------------------
    def _act(self, job: Job, positions: dict, orders: dict) -> None:
        job.phase = "act"
        job.hub_view = None  # only updates after these calls may verify them
        job.act_failed = False
        calls = plan_calls(job, positions, orders)
        if not calls:
            self._verify(job)
            return
        for op, args in calls:
            self._call(job, op, args)

    def _verify_settled(self, job: Job) -> None:
        """Read back now, or after SETTLE_SECONDS when a call's outcome is still unknown; or,
        for a close/reduce whose calls all succeeded where the account's position updates reach
        us, let the next update verify it (REST read-back after HUB_VERIFY_SECONDS without
        one). A refused call is read back at once, so its retry is not held up."""
        if not job.settle and self.hub_verify and not job.dirty and not job.act_failed \
                and isinstance(job.goal, (m.ClosePosition, m.ReducePosition)):
            job.phase = "hub-wait"
            if not self._hub_check(job):
                self.wakeupAfter(HUB_VERIFY_SECONDS, payload=("verify", job.key))
            return
        if not job.settle:
            self._verify(job)
            return
        job.settle = False
        job.phase = "settle"
        self.wakeupAfter(SETTLE_SECONDS, payload=("verify", job.key))

    def on_position(self, contract_id: str, signed_size: int) -> None:
        """A position update from the user hub, handed over by the account (hub verification).

        Updates arrive in the broker's order, after the violating one: a size that meets the
        goal is the broker's own word that it is met, as a read-back would say."""
        for job in list(self.jobs.values()):
            g = job.goal
            if isinstance(g, (m.ClosePosition, m.ReducePosition)) and \
                    g.contract_id == contract_id and job.phase in ("act", "hub-wait"):
                job.hub_view = signed_size
                if job.phase == "hub-wait":
                    self._hub_check(job)

    def _hub_check(self, job: Job) -> bool:
        if job.hub_view is None or \
                not satisfied(job, {job.goal.contract_id: job.hub_view}, {}):
            return False
        self._finish(job, True, f"verified by the broker's position update after "
                                f"{job.attempts + 1} attempt(s)")
        return True

    def _verify(self, job: Job) -> None:
        if isinstance(job.goal, (m.PlaceStop, m.ModifyStop)):
            self._finish(job, True, "accepted by the broker")
            return
        job.phase = "verify"
        job.positions = job.orders = None
        # Read back only what the goal is judged on: a close or reduce needs no order list
        # (one REST call less per enforcement, against the gateway's 200 per minute).
        if isinstance(job.goal, (m.CancelOrders, m.CancelOrder)):
            job.positions = {}
        else:
            self._call(job, "search_positions", {})
        if isinstance(job.goal, (m.ClosePosition, m.ReducePosition)):
            job.orders = {}
        else:
            self._call(job, "search_orders", {})

    def _call(self, job: Job, op: str, args: dict) -> None:
        call_id = f"{self.init.account_id}-{next(self.ids)}"
        job.outstanding.add(call_id)
        self.calls[call_id] = (job.key, op, args)
        self._send_or_queue(call_id, op, args)

    def _send_or_queue(self, call_id: str, op: str, args: dict) -> None:
        now = time.monotonic()
        while self.window and now - self.window[0] >= 60.0:
            self.window.popleft()
        if len(self.window) >= self.init.requests_per_minute:
            self.waiting.append((call_id, op, args))
            self.wakeupAfter(max(0.05, 60.0 - (now - self.window[0])), payload=("budget",))
            return
        self.window.append(now)
        self.send(self.init.gateway, m.BrokerCall(self.init.account_id, call_id, op, args))

    def receiveMsg_BrokerReply(self, msg: m.BrokerReply, sender) -> None:
        entry = self.calls.pop(msg.call_id, None)
        if entry is None:
            return
        key, op, args = entry
        job = self.jobs.get(key)
        self._audit("broker_call", job.rules[0] if job else None,
                    {"op": op, "args": args, "ok": msg.ok, "error": msg.error,
                     "call_id": msg.call_id})
        if job is None:
            return
        job.outstanding.discard(msg.call_id)
        if op == "search_positions" and msg.ok:
            job.positions = dict(_signed(p) for p in (msg.result or ()))
        elif op == "search_orders" and msg.ok:
            job.orders = dict(pair for o in (msg.result or ()) if (pair := _order_pair(o)))
        elif not msg.ok:
            # Often benign (the order filled or the position closed first); the read-back decides.
            logger.info("account {} {} {} refused: {} (verifying)", self.init.account_id, op,
                        args, msg.error)
        if not msg.ok and job.phase == "act":
            # No position update will come for a refused call: the retry must not wait for one.
            job.act_failed = True
        if not msg.ok and _unanswered(msg.error) and op not in ("search_positions",
                                                               "search_orders"):
            job.settle = True
        if not msg.ok and msg.retry_after:
            # Kept on the job: the retry is scheduled from a later reply (the read-back).
            job.retry_after = max(job.retry_after or 0.0, msg.retry_after)
        if job.outstanding:
            return
        if job.phase == "act":
            if isinstance(job.goal, (m.PlaceStop, m.ModifyStop)) and not msg.ok:
                self._retry(job, msg.retry_after)
            else:
                self._verify_settled(job)
        elif job.positions is None or job.orders is None:
            self._retry(job, msg.retry_after)  # could not read back: try again
        elif satisfied(job, job.positions, job.orders):
            if job.dirty:
                job.dirty = False
                self._verify(job)  # this read-back may predate the request that joined
            else:
                self._finish(job, True, f"verified after {job.attempts + 1} attempt(s)")
        else:
            self._retry(job, msg.retry_after)

    def _retry(self, job: Job, retry_after: float | None = None) -> None:
        job.attempts += 1
        if job.attempts >= GIVE_UP_AFTER_ATTEMPTS:
            self._finish(job, False, f"broker state still wrong after {job.attempts} attempts")
            return
        if job.attempts >= ALERT_AFTER_ATTEMPTS and not job.alerted:
            job.alerted = True
            self._report(job, False, f"not yet done after {job.attempts} attempts; retrying",
                         final=False)
        delay = min(BACKOFF_MAX, BACKOFF_START * 2 ** (job.attempts - 1))
        wait = max(retry_after or 0.0, job.retry_after or 0.0)
        job.retry_after = None
        if wait:
            delay = max(delay, wait)
        job.phase = "backoff"
        self.wakeupAfter(delay, payload=("retry", job.key))

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender) -> None:
        payload = msg.payload or ()
        if payload == ("orphan-check",):
            self.watch.check()
            self.wakeupAfter(CHECK_SECONDS, payload=("orphan-check",))
        elif payload and payload[0] == "budget":
            waiting, self.waiting = self.waiting, deque()
            for call in waiting:
                self._send_or_queue(*call)
        elif payload and payload[0] == "verify":
            job = self.jobs.get(payload[1])
            if job is not None and job.phase in ("settle", "hub-wait"):
                self._verify(job)
        elif payload and payload[0] == "retry":
            job = self.jobs.get(payload[1])
            if job is not None and job.phase == "backoff":
                if isinstance(job.goal, (m.PlaceStop, m.ModifyStop)):
                    self._act(job, {}, {})  # judged by the broker's answer: ask again
                elif job.positions is not None and job.orders is not None:
                    self._act(job, job.positions, job.orders)
                else:
                    self._verify(job)

    def _finish(self, job: Job, ok: bool, detail: str) -> None:
        self.jobs.pop(job.key, None)
        elapsed = (time.monotonic() - job.started) * 1000
        (logger.info if ok else logger.error)(
            "account {} enforcement {} {} ({}): {} in {:.1f} ms", self.init.account_id,
            "done" if ok else "FAILED", job.key, ",".join(job.rules), detail, elapsed)
        self._audit("enforcement", job.rules[0], {"event": "done" if ok else "failed",
                                                  "action": repr(job.goal), "seq": job.seq,
                                                  "detail": detail, "attempts": job.attempts + 1,
                                                  "elapsed_ms": round(elapsed, 2)})
        self._report(job, ok, detail, final=True)

    def _report(self, job: Job, ok: bool, detail: str, final: bool) -> None:
        if self.parent is not None:
            self.send(self.parent, m.EnforcementDone(self.init.account_id, job.seq, job.rules[0],
                                                     ok, f"{job.key}: {detail}",
                                                     job.attempts + 1, final, job.key))

    def _audit(self, kind: str, rule: str | None, detail: dict) -> None:
        if self.db is None:
            return
        try:
            self.db.audit(kind, self.init.account_id, rule, detail, self.clock.now())
        except Exception as exc:  # the audit must never stop an enforcement
            logger.error("audit write failed: {}", exc)


class EmbeddedEnforcer(EnforcerActor):
    """The same enforcer, run inside its AccountActor's process (``daemon.enforcer_placement:
    inline``, the default): one process hop less between a verdict and the broker call.

    The host (the AccountActor) hands it ``Enforce``, ``BrokerReply`` and its wake-ups; its
    ``BrokerCall``s leave from the host (so replies come back to the host) and its
    ``EnforcementDone`` goes straight to the host's handler. What it gives up is surviving the
    account: if the account process dies, the restarted account reconciles with the broker
    and its rules and lockout guard ask again for what is still wrong.
    """

    def __init__(self, host: Any) -> None:
        super().__init__()
        self.host = host
        self.hub_verify = HUB_VERIFY

    def send(self, target: Any, msg: Any) -> None:
        if isinstance(msg, m.EnforcementDone):
            self.host.receiveMsg_EnforcementDone(msg, None)
        elif isinstance(msg, m.BrokerCall) and getattr(self.host, "embedded_gw", None) is not None:
            self.host.embedded_gw.receiveMsg_BrokerCall(msg, self.host.myAddress)
        else:
            self.host.send(target, msg)

    def _audit(self, kind: str, rule: str | None, detail: dict) -> None:
        # Into the host's transaction for the message being handled (one commit, not four).
        self.host._audit(kind, rule, detail, self.clock.now())

    def wakeupAfter(self, timePeriod: Any, payload: Any = None) -> None:
        if payload == ("orphan-check",):
            return  # the host watches its own parent
        self.host.wakeupAfter(timePeriod, payload=("enforcer", payload))
