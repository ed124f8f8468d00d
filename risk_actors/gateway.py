"""``GatewayActor``: one account's broker bridge inside the actor tree.

Started by its AccountActor, which sends :class:`GatewayStart`. The actor then owns a
:class:`~risk_actors.broker.session.BrokerSession` (project-x-py on a background asyncio
thread) and:

* forwards every broker event as ``Inbound(account_id, seq, event, received_at)`` to the parent,
  ``seq`` increasing by one per event (the first event gets ``GatewayStart.start_seq + 1``);
* executes ``BrokerCall``s from any sender and answers that sender with the ``BrokerReply``;
* emits on this (the actor's) thread the log records the SDK thread produced.

Guard rails (DESIGN.md sections 2 and 9):

* thespian resets the fd watch after *every* message, so :meth:`GatewayActor.receiveMessage`
  returns ``ThespianWatch([session fd])`` on every path, exceptions included; a ``wakeupAfter``
  heartbeat drains the session as a backstop should a watch ever be lost;
* SDK-thread log records travel through the session's socketpair, never through thespian's
  logging from that thread;
* the actor creates no children (fork after threads can deadlock);
* the SDK is imported lazily, in the actor's own process, when the session is built: modules that
  only build a ``GatewayStart`` do not pay for it.
"""

from __future__ import annotations

import collections
import os
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
from loguru import logger
from thespian.actors import (ActorExitRequest, ActorTypeDispatcher, PoisonMessage,
                             ThespianWatch, WakeupMessage, WatchMessage)

from risk_actors import messages as m
from risk_actors.broker.settings import BrokerSettings

__all__ = ["GatewayStart", "GatewayActor", "HEARTBEAT"]

# Backstop drain interval: bounds the damage of a lost watch, costs one message a second.
HEARTBEAT = timedelta(seconds=1.0)
# A session thread that died is rebuilt after this long (it never should; see session.py).
RESTART_AFTER = timedelta(seconds=2.0)


@attrs.frozen
class GatewayStart:
    """AccountActor -> GatewayActor: start the broker session of one account.

    ``start_seq`` is the last sequence number the parent has already processed (0 for a fresh
    account): the first event this actor sends is ``start_seq + 1``, so a restarted gateway never
    reuses a seq the parent would drop as a duplicate. ``reset_boundary``: start of the current
    trading day; reconciles fetch trades since then (move it with
    ``BrokerCall(op="set_reset_boundary", args={"at": dt})``).
    """

    account_id: int
    account_name: str
    settings: BrokerSettings
    reset_boundary: datetime
    start_seq: int = 0
    # Quotes leave the broker session at most once per this many ms (the latest of each
    # contract; a quote is a level, so skipping one loses nothing but its moment). 0 = all.
    quote_interval_ms: int = 0
    # "own": the session subscribes its account's quotes; "external": the daemon's shared
    # MarketFeedActor sends them (FeedQuotes); "only": this is that feed (see BrokerSession).
    quotes: str = "own"


@attrs.frozen
class _Heartbeat:
    """Payload of the backstop wake-up (a generation lets stale timers be ignored)."""

    generation: int


class GatewayActor(ActorTypeDispatcher):
    """Broker bridge of one account (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._start: GatewayStart | None = None
        self._parent: Any = None
        self._session: Any = None
        self._seq = 0
        self._pending: dict[str, collections.deque[Any]] = {}
        self._generation = 0
        self._restart_due: float | None = None
        self._start_failures = 0
        self._exiting = False
        self._ppid: int | None = None
        # Newest price forwarded per contract (quotes "external": from the shared feed). See
        # _mark: a fill refreshes an older one, and a feed quote older than it is dropped.
        self._marks: dict[str, m.QuoteEvent] = {}

    # ------------------------------------------------------------------ dispatch
    def receiveMessage(self, message: Any, sender: Any) -> Any:
        """Dispatch, then hand thespian the watch: on every path, errors included."""
        try:
            super().receiveMessage(message, sender)
        except Exception:
            # Swallowed on purpose: a re-raise would make thespian retry the message and then
            # reset the watch; the broker link matters more than one bad message.
            logger.exception("GatewayActor: error handling {}", type(message).__name__)
        try:
            self._pump()
        except Exception:
            logger.exception("GatewayActor: error draining the broker session")
        return self._watch()

    def _watch(self) -> ThespianWatch | None:
        s = self._session
        if s is None or self._exiting:
            return None
        try:
            return ThespianWatch([s.fileno()])
        except (OSError, ValueError):  # socket already closed
            return None

    # ------------------------------------------------------------------ handlers
    def receiveMsg_GatewayStart(self, msg: GatewayStart, sender: Any) -> None:
        if self._start is not None:
            if msg != self._start:
                logger.error("GatewayActor {}: second GatewayStart ignored", self._start.account_id)
            return
        self._start = msg
        self._parent = sender
        self._seq = msg.start_seq
        # thespian forks a child actor from its parent's process: the OS parent *is* the
        # AccountActor. Remember it to notice when it is gone (see _check_parent).
        self._ppid = os.getppid()
        self._schedule_heartbeat()
        self._open_session()

    def receiveMsg_BrokerCall(self, call: m.BrokerCall, sender: Any) -> None:
        if self._session is None or self._start is None:
            self.send(sender, m.BrokerReply(call.account_id, call.call_id, call.op, False,
                                            error="gateway not started"))
            return
        if call.op == "set_reset_boundary" and "at" in call.args:
            # Remember it for a rebuilt session too.
            try:
                self._start = attrs.evolve(self._start, reset_boundary=call.args["at"])
            except Exception:
                pass
        self._pending.setdefault(call.call_id, collections.deque()).append((sender, call.op))
        self._session.submit(call)

    def receiveMsg_FeedQuotes(self, msg: m.FeedQuotes, sender: Any) -> None:
        """Quotes from the shared feed join this account's event sequence like its own would,
        after the user events the session has already received (drained first); _mark keeps
        prices in time order per contract (a fill newer than a feed quote wins)."""
        from risk_actors.broker.session import Received

        if self._start is None:
            return
        self._pump()
        self._forward([Received(q, q.received_at or datetime.now(timezone.utc))
                       for q in msg.quotes])

    def receiveMsg_WatchMessage(self, msg: WatchMessage, sender: Any) -> None:
        pass  # receiveMessage drains after every message

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        if not isinstance(msg.payload, _Heartbeat) or msg.payload.generation != self._generation:
            return
        self._check_parent()
        try:
            self._check_session()
        finally:
            self._schedule_heartbeat()

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender: Any) -> None:
        self._exiting = True
        self._close_session()

    def receiveMsg_PoisonMessage(self, msg: PoisonMessage, sender: Any) -> None:
        logger.error("GatewayActor: a message it sent crashed its receiver: {}",
                     type(msg.poisonMessage).__name__)

    def receiveUnrecognizedMessage(self, msg: Any, sender: Any) -> None:
        logger.warning("GatewayActor: unexpected message {}", type(msg).__name__)

    # ------------------------------------------------------------------ session
    def _open_session(self) -> None:
        from risk_actors.broker.session import BrokerSession, Received  # lazy: imports the SDK

        st = self._start
        assert st is not None
        try:
            session = BrokerSession(st.account_id, st.account_name, st.settings,
                                    st.reset_boundary,
                                    quote_interval=st.quote_interval_ms / 1000.0,
                                    quotes=st.quotes)
            session.start()
        except Exception as exc:
            # Tell the account once (it shows "disconnected" and why); the heartbeat retries
            # with a growing delay.
            logger.exception("GatewayActor {}: cannot start the broker session", st.account_id)
            self._start_failures += 1
            delay = min(60.0, RESTART_AFTER.total_seconds() * 2 ** (self._start_failures - 1))
            self._restart_due = time.monotonic() + delay
            if self._start_failures == 1:
                self._forward([Received(m.ConnectionChanged(
                    st.account_id, False, f"broker session cannot start: {exc}"),
                    datetime.now(timezone.utc))])
            return
        self._start_failures = 0
        self._session = session

    def _close_session(self) -> None:
        s, self._session = self._session, None
        if s is None:
            return
        try:
            s.stop()
        finally:
            self._forward(s.drain())  # the last items (ConnectionChanged down) still count
            # Calls the stopped session will never answer: tell their senders now rather than
            # let them wait for a timeout.
            pending, self._pending = self._pending, {}
            aid = self._start.account_id if self._start else 0
            for call_id, senders in pending.items():
                for target, op in senders:
                    self.send(target, m.BrokerReply(aid, call_id, op, False,
                                                    error="broker session stopped"))

    def _check_parent(self) -> None:
        """Exit when the parent's process died (kill -9 of the account or the whole daemon).

        thespian does not stop the children of a killed actor: an orphaned GatewayActor would
        keep a live broker session (hubs + REST login) forever, and its replacement would open
        a second one. Nobody can receive our events any more, so close the session cleanly and
        leave; the parent's successor starts a fresh GatewayActor that reconciles.
        """
        if self._ppid is None or self._exiting or os.getppid() == self._ppid:
            return
        logger.error("GatewayActor {}: parent process {} is gone; closing the broker session "
                     "and exiting", self._start.account_id if self._start else "?", self._ppid)
        self._exiting = True
        try:
            self._close_session()
        finally:
            os._exit(0)  # thespian's own exit would try to notify the dead parent first

    def _check_session(self) -> None:
        """Heartbeat: rebuild a session whose thread died (belt and braces)."""
        s = self._session
        now = time.monotonic()
        if s is None and self._start is not None and not self._exiting:
            if self._restart_due is not None and now >= self._restart_due:
                self._restart_due = None
                self._open_session()  # a previous start failed
            return
        if s is None or self._exiting or s.running:
            self._restart_due = None
            return
        if self._restart_due is None:
            logger.error("GatewayActor {}: broker session thread ended; restarting",
                         self._start.account_id if self._start else "?")
            self._restart_due = now + RESTART_AFTER.total_seconds()
        elif now >= self._restart_due:
            self._restart_due = None
            self._close_session()
            self._open_session()

    def _schedule_heartbeat(self) -> None:
        self._generation += 1
        self.wakeupAfter(HEARTBEAT, payload=_Heartbeat(self._generation))

    # ------------------------------------------------------------------ pumping
    def _pump(self) -> None:
        s = self._session
        if s is not None:
            self._forward(s.drain())

    def _forward(self, items: list[Any]) -> None:
        from risk_actors.broker import logs
        from risk_actors.broker.session import Received

        st = self._start
        out: list[m.Inbound] = []
        external = st.quotes == "external"
        for item in items:
            if isinstance(item, Received):
                if external and isinstance(item.event, m.QuoteEvent) and not self._mark(item):
                    continue
                self._seq += 1
                out.append(m.Inbound(st.account_id, self._seq, item.event, item.received_at))
                if external and isinstance(item.event, m.TradeEvent):
                    refreshed = self._fill_mark(item)
                    if refreshed is not None:
                        self._seq += 1
                        out.append(m.Inbound(st.account_id, self._seq, refreshed,
                                             item.received_at))
            elif isinstance(item, m.QuotesWanted):
                self.send(self._parent, item)
            elif isinstance(item, m.BrokerReply):
                senders = self._pending.get(item.call_id)
                if not senders:
                    logger.error("GatewayActor: reply {} for an unknown call", item.call_id)
                    continue
                target, _ = senders.popleft()
                if not senders:
                    del self._pending[item.call_id]
                self.send(target, item)
            elif isinstance(item, logs.LogRecord):
                logs.emit_to_loguru(item)
            else:
                logger.warning("GatewayActor: unexpected session item {!r}", item)
        if len(out) == 1:
            self.send(self._parent, out[0])
        elif out:
            self.send(self._parent, m.InboundBatch(st.account_id, tuple(out)))


    # A quote from the shared feed travels one process hop more than the account's own fills:
    # the price can move back up, the trader buy, and the fill reach the rules before the new
    # quote does; the new position would then be priced at the old level (a false
    # unrealized-loss close). So prices are kept in time order per contract, and a fill counts
    # as a price: it is the market's last trade for that contract.
    def _mark(self, item: Any) -> bool:
        """True to forward this feed quote: not older than the newest price forwarded."""
        q = item.event
        mark = self._marks.get(q.contract_id)
        if mark is not None and mark.received_at is not None and \
                item.received_at < mark.received_at:
            return False
        self._marks[q.contract_id] = attrs.evolve(q, received_at=item.received_at)
        return True

    def _fill_mark(self, item: Any) -> m.QuoteEvent | None:
        """A fill newer than its contract's price: that price, as a quote to forward after it.
        Never the first price of a contract (that comes from the market data)."""
        t = item.event
        mark = self._marks.get(t.contract_id)
        if t.voided or mark is None or (mark.received_at is not None
                                        and mark.received_at >= item.received_at):
            return None
        q = m.QuoteEvent(t.contract_id, t.price, timestamp=t.created,
                         received_at=item.received_at)
        self._marks[t.contract_id] = q
        return q


class EmbeddedGateway(GatewayActor):
    """The broker bridge run inside its AccountActor's process (``daemon.broker_placement:
    inline``): no process hop between a broker event and the rules, nor between the enforcer
    and the REST call.

    The host hands it ``GatewayStart``, ``BrokerCall``s and its wake-ups, pumps the session
    after every message it handles and returns :meth:`GatewayActor._watch` to thespian. Events
    and replies for the host go straight to its handlers. The host must not create children
    once the session thread runs (fork after threads): the Supervisor only chooses this
    placement for an account whose rules and enforcer all run inline.
    """

    def __init__(self, host: Any) -> None:
        super().__init__()
        self.host = host

    def send(self, target: Any, msg: Any) -> None:
        if target == self.host.myAddress:
            handler = getattr(self.host, f"receiveMsg_{type(msg).__name__}", None)
            if handler is not None:
                handler(msg, self.host.myAddress)
                return
        self.host.send(target, msg)

    def wakeupAfter(self, timePeriod: Any, payload: Any = None) -> None:
        self.host.wakeupAfter(timePeriod, payload=("gateway", payload))

    def _check_parent(self) -> None:
        pass  # the host is this process: it watches its own parent
