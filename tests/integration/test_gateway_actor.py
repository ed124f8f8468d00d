"""GatewayActor on a real multiprocTCPBase actor system against a gateway simulator subprocess.

A tiny parent actor (``Recorder``) creates the GatewayActor, sends it ``GatewayStart`` and records
every ``Inbound`` with its latency (``time.time()`` at the parent minus ``received_at``, the SDK
callback time stamped on the gateway's session thread). The test asks it what it saw.

Latency figures (SDK callback -> Inbound at the parent) are printed by
``test_latency_sdk_callback_to_parent``; reproduce with::

    .venv/bin/python -m pytest tests/integration/test_gateway_actor.py -k latency -s -q
    RISKD_LATENCY_ORDERS=200 RISKD_LATENCY_SPACING=0.005 ...  (more / denser orders;
                                                               5 user events per market order)

The bound asserted here is loose on purpose (a loaded 2-core CI box): the figure is printed.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from thespian.actors import ActorExitRequest, ActorSystem, ActorTypeDispatcher

from risk_actors import messages as m
from risk_actors.broker.settings import BrokerSettings
from risk_actors.gateway import GatewayActor, GatewayStart

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


# ---------------------------------------------------------------------------------------------
# test actors and their messages (module-level: thespian pickles them by module path)
@attrs.frozen
class StartGateway:
    start: GatewayStart


@attrs.frozen
class Seen:
    """Ask the recorder for the records from index ``since`` on (incremental: a growing reply
    pickled every poll would load the very actor being measured)."""

    since: int = 0


@attrs.frozen
class Pid:
    """Ask an actor for its OS process id."""


@attrs.frozen
class Record:
    seq: int
    kind: str
    latency_ms: float
    detail: Any


class Recorder(ActorTypeDispatcher):
    """Parent of one GatewayActor; records every Inbound."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.records: list[Record] = []
        self.gateway = None

    def receiveMsg_StartGateway(self, msg: StartGateway, sender: Any) -> None:
        self.gateway = self.createActor(GatewayActor)
        self.send(self.gateway, msg.start)
        self.send(sender, self.gateway)

    def receiveMsg_Inbound(self, msg: m.Inbound, sender: Any) -> None:
        latency = (time.time() - msg.received_at.timestamp()) * 1000.0
        ev = msg.event
        detail = None
        if isinstance(ev, m.OrderEvent):
            detail = (ev.order_id, ev.status)
        elif isinstance(ev, m.PositionEvent):
            detail = (ev.contract_id, ev.size)
        elif isinstance(ev, m.ConnectionChanged):
            detail = ev.connected
        self.records.append(Record(msg.seq, type(ev).__name__, latency, detail))

    def receiveMsg_InboundBatch(self, msg: m.InboundBatch, sender: Any) -> None:
        for item in msg.items:
            self.receiveMsg_Inbound(item, sender)

    def receiveMsg_Pid(self, msg: Pid, sender: Any) -> None:
        self.send(sender, os.getpid())

    def receiveMsg_Seen(self, msg: Seen, sender: Any) -> None:
        self.send(sender, self.records[msg.since:])


# ---------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sim():
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway_sim", "serve", "--port", "0", "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    if "listening on" not in line:
        proc.kill()
        pytest.fail(f"simulator did not start: {line!r}")
    url = line.rsplit(" ", 1)[-1]
    from gateway_sim.control_client import ControlClient
    try:
        yield url, ControlClient(url)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def system():
    # DESIGN.md section 9: bounded transmit queues; a distinct admin port per test.
    os.environ.setdefault("THESPIAN_MAX_QUEUED_TRANSMITS", "16")
    os.environ.setdefault("THESPIAN_QUEUED_TRANSMIT_UNBLOCK_THRESHOLD", "8")
    asys = ActorSystem("multiprocTCPBase", {"Admin Port": free_port()},
                       logDefs={"version": 1, "disable_existing_loggers": False,
                                "handlers": {}, "root": {"level": "WARNING", "handlers": []}})
    try:
        yield asys
    finally:
        asys.shutdown()


def start(system: ActorSystem, sim: Any, start_seq: int = 0) -> tuple[Any, Any, dict]:
    url, ctl = sim
    acc = ctl.create_account(f"GW{os.getpid()}-{time.monotonic_ns()}")
    settings = BrokerSettings(f"{url}/api", f"{url}/hubs/user", f"{url}/hubs/market",
                              "trader", "sim-key-xyz")
    recorder = system.createActor(Recorder)
    gw = system.ask(recorder, StartGateway(GatewayStart(
        acc["id"], acc["name"], settings, datetime.now(timezone.utc) - timedelta(hours=1),
        start_seq)), 10)
    assert gw is not None, "recorder did not answer"
    return recorder, gw, acc


_seen: dict[Any, list[Record]] = {}


def wait_records(system: ActorSystem, recorder: Any, pred: Any, timeout: float = 15.0
                 ) -> list[Record]:
    end = time.monotonic() + timeout
    records = _seen.setdefault(str(recorder), [])
    while time.monotonic() < end:
        records.extend(system.ask(recorder, Seen(len(records)), 5) or [])
        if pred(records):
            return list(records)
        time.sleep(0.1)
    raise AssertionError(f"timed out; got {[(r.seq, r.kind, r.detail) for r in records][-20:]}")


# ---------------------------------------------------------------------------------------------
def test_inbound_in_seq_order_and_broker_calls(system, sim):
    _, ctl = sim
    recorder, gw, acc = start(system, sim, start_seq=40)  # parent has processed up to 40
    wait_records(system, recorder, lambda rs: any(r.kind == "Reconciled" for r in rs))
    oid = ctl.place_order(acc["id"], "MNQ", "market", "buy", 2)
    records = wait_records(system, recorder, lambda rs: any(
        r.kind == "PositionEvent" and r.detail == ("CON.F.US.MNQ.Z26", 2) for r in rs))
    assert [r.seq for r in records] == list(range(41, 41 + len(records)))
    assert records[0].kind == "ConnectionChanged" and records[0].detail is True
    kinds = [(r.kind, r.detail) for r in records
             if r.kind in ("OrderEvent", "TradeEvent", "PositionEvent")]
    assert kinds[:4] == [("OrderEvent", (oid, 1)), ("TradeEvent", None),
                         ("OrderEvent", (oid, 2)), ("PositionEvent", ("CON.F.US.MNQ.Z26", 2))]

    # BrokerCall from any sender (here: the test itself) is answered to that sender
    reply = system.ask(gw, m.BrokerCall(acc["id"], "q1", "search_positions"), 10)
    assert isinstance(reply, m.BrokerReply) and reply.ok and reply.call_id == "q1"
    assert [(p.contract_id, p.size) for p in reply.result] == [("CON.F.US.MNQ.Z26", 2)]
    reply = system.ask(gw, m.BrokerCall(acc["id"], "c1", "close",
                                        {"contract_id": "CON.F.US.MNQ.Z26"}), 10)
    assert reply.ok, reply
    wait_records(system, recorder, lambda rs: any(
        r.kind == "PositionEvent" and r.detail == ("CON.F.US.MNQ.Z26", 0) for r in rs))
    reply = system.ask(gw, m.BrokerCall(acc["id"], "x", "no_such_op"), 10)
    assert not reply.ok and "unknown op" in reply.error

    # a dropped hub: ConnectionChanged down/up and Reconciled, seq still contiguous
    ctl.drop("all")
    records = wait_records(system, recorder, lambda rs: sum(
        r.kind == "Reconciled" for r in rs) >= 2)
    assert [r.seq for r in records] == list(range(41, 41 + len(records)))
    assert (False in [r.detail for r in records if r.kind == "ConnectionChanged"])

    # exit: the session is stopped cleanly (the actor answers nothing more, the system shuts down)
    system.tell(gw, ActorExitRequest())


def test_latency_sdk_callback_to_parent(system, sim):
    _, ctl = sim
    recorder, gw, acc = start(system, sim)
    wait_records(system, recorder, lambda rs: any(r.kind == "Reconciled" for r in rs))
    n_orders = int(os.environ.get("RISKD_LATENCY_ORDERS", "60"))
    spacing = float(os.environ.get("RISKD_LATENCY_SPACING", "0.02"))
    first = len(wait_records(system, recorder, lambda rs: True))
    for i in range(n_orders):
        ctl.place_order(acc["id"], "MNQ", "market", "buy" if i % 2 == 0 else "sell", 1)
        time.sleep(spacing)  # a trader clicking fast (each order = 5 events), not a flood
    records = wait_records(system, recorder, lambda rs: sum(
        r.kind == "OrderEvent" and r.detail[1] == 2 for r in rs) >= n_orders, 30)
    user = [r.latency_ms for r in records[first:]
            if r.kind in ("OrderEvent", "TradeEvent", "PositionEvent", "AccountEvent")]
    assert len(user) >= 4 * n_orders
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    q = statistics.quantiles(user, n=100)
    print(f"\nSDK callback -> Inbound at parent over {len(user)} user events "
          f"({n_orders} orders {spacing * 1000:.0f} ms apart): p50 {statistics.median(user):.3f} "
          f"ms, p99 {q[98]:.3f} ms, max {max(user):.3f} ms")
    assert statistics.median(user) < 250.0


def test_misconfigured_urls_never_dial_and_the_parent_is_told(system):
    """A cleartext non-loopback URL is refused before any connection; the account learns why
    and broker calls are answered, not left hanging."""
    settings = BrokerSettings("http://gateway.example.com/api",
                              "http://gateway.example.com/hubs/user",
                              "http://gateway.example.com/hubs/market", "trader", "k")
    recorder = system.createActor(Recorder)
    gw = system.ask(recorder, StartGateway(GatewayStart(
        77, "ACC", settings, datetime.now(timezone.utc), 0)), 10)
    records = wait_records(system, recorder, lambda rs: any(
        r.kind == "ConnectionChanged" for r in rs), 10)
    assert records[0].seq == 1 and records[0].detail is False
    reply = system.ask(gw, m.BrokerCall(77, "c", "search_positions"), 10)
    assert isinstance(reply, m.BrokerReply) and not reply.ok and "disabled" in reply.error


def test_orphaned_gateway_closes_its_session_and_exits(system, sim):
    """kill -9 of the parent's process: the GatewayActor must not keep a broker session alive."""
    import signal

    recorder, gw, acc = start(system, sim)
    wait_records(system, recorder, lambda rs: any(r.kind == "Reconciled" for r in rs))
    parent_pid = system.ask(recorder, Pid(), 5)
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent_pid)],
                              capture_output=True, text=True).stdout.split()
    assert len(children) == 1, children  # the GatewayActor (it creates no children itself)
    gw_pid = int(children[0])
    os.kill(parent_pid, signal.SIGKILL)
    end = time.monotonic() + 10
    while time.monotonic() < end and os.path.exists(f"/proc/{gw_pid}"):
        try:
            if open(f"/proc/{gw_pid}/stat").read().split()[2] == "Z":
                break  # exited, not yet reaped
        except OSError:
            break
        time.sleep(0.1)
    else:
        if os.path.exists(f"/proc/{gw_pid}"):
            os.kill(gw_pid, signal.SIGKILL)
            pytest.fail("orphaned GatewayActor still running 10 s after its parent died")
