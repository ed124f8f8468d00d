"""A fast quote stream: ``GatewayQuote`` events at a target rate (tens of thousands a second) on
a list of contracts, for benchmarks (``POST /sim/quotes/stream``, docs/internal/sim-contract.md).

The price paths (``/sim/prices/path``) go through the engine, the recorder and one websocket
message per event for every quote, and one Python process tops out near 2,300 quotes/s with
them. This generator instead:

- pre-encodes, per contract, a short cycle of quote frames (the price wiggles +-``amplitude``
  ticks around the engine's last price, so every quote differs from the previous one of that
  contract) with a placeholder for the timestamp, so a quote costs one ``str.join``;
- wakes every ``tick_ms`` and emits the number of quotes due at the target rate (`Pacer`),
  round-robin over the contracts;
- sends each subscribed market-hub socket *one* websocket message per tick holding all of its
  quotes of that tick (SignalR JSON records separated by 0x1E may share a message; pysignalr,
  under project-x-py 4.4.1, splits them), through the socket's ordinary writer queue, so the
  quotes stay in order with every other event of that socket;
- does not write a ``/sim/log`` record per quote (the log would hold nothing else): it keeps
  counters instead (`QuoteStream.stats`): emitted (generated), queued (emitted x subscribed
  sockets), written (handed to the socket by its writer: what reached the peer, give or take
  the kernel's and aiohttp's buffers) and dropped (not queued because the socket's backlog of
  stream quotes exceeded ``max_backlog_s`` seconds of stream: a slow consumer).

The engine's last price does *not* follow the stream unless ``sync_engine`` is set: the stream
wiggles around the price the engine had when it started, fills happen at that centre price, and
riskd's unrealized P&L moves only by the +-``amplitude`` ticks the quotes carry. With
``sync_engine`` the engine's last price is set to each contract's latest streamed price once per
tick (``engine.set_price``: resting orders it crosses fill and their events are published; the
engine's own quote event is not, the stream already sent that price).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway_sim import contracts, protocol
from gateway_sim.clock import iso

if TYPE_CHECKING:  # pragma: no cover
    from gateway_sim.hubs import HubConnection
    from gateway_sim.server import Simulator

log = logging.getLogger("gateway_sim.quote_stream")

TS_PLACEHOLDER = "@@TS@@"
# pysignalr (project-x-py's SignalR client) refuses websocket messages over 1 MiB; a quote frame
# is ~450 bytes, so 500 frames per message stay well under it.
MAX_FRAMES_PER_MESSAGE = 500


class Pacer:
    """How many quotes are due at each wake-up for a constant ``rate`` (quotes/s) since ``start``.

    ``due(now)`` returns the quotes owed since the last call (the integer part of
    ``rate * elapsed`` minus what was already handed out). A wake-up that comes late owes more;
    when more than ``max_burst`` are owed at once (the loop stalled), ``max_burst`` are handed
    out and the rest is forgiven and counted in ``skipped``, so a stall does not turn into a
    burst that starves every other task.
    """

    def __init__(self, rate: float, start: float, max_burst: int | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate = float(rate)
        self.start = start
        self.max_burst = max_burst if max_burst is not None else max(1, math.ceil(rate * 0.05))
        self.sent = 0
        self.skipped = 0

    def due(self, now: float) -> int:
        owed = int((now - self.start) * self.rate + 1e-6) - self.sent - self.skipped  # float slack
        if owed <= 0:
            return 0
        if owed > self.max_burst:
            self.skipped += owed - self.max_burst
            owed = self.max_burst
        self.sent += owed
        return owed


def price_cycle(amplitude: int) -> list[int]:
    """Tick offsets of one cycle: 0, 1 .. A, A-1 .. -A .. -1 (4A steps; consecutive differ)."""
    if amplitude < 1:
        raise ValueError(f"amplitude must be >= 1 tick, got {amplitude}")
    up = list(range(0, amplitude + 1))                 # 0 .. A
    down = list(range(amplitude - 1, -amplitude - 1, -1))  # A-1 .. -A
    back = list(range(-amplitude + 1, 0))              # -A+1 .. -1
    return up + down + back


def quote_templates(contract: contracts.Contract, base: dict[str, Any], amplitude: int
                    ) -> tuple[list[list[str]], list[float]]:
    """Per step of the cycle: the frame text split around the timestamp placeholder, and the
    price. ``base`` is the engine's GatewayQuote payload for the contract (its shape is kept)."""
    tick = float(contract.tick_size)
    last = float(base["lastPrice"])
    open_ = float(base["open"])
    parts, prices = [], []
    for off in price_cycle(amplitude):
        p = round(last + off * tick, contract.decimals)
        if p <= 0:
            raise ValueError(f"{contract.id}: {amplitude} ticks below {last} is not a price")
        q = dict(base)
        change = p - open_
        q.update(lastPrice=p, bestBid=p, bestAsk=p, change=round(change, contract.decimals + 2),
                 changePercent=round(change / open_ * 100, 2) if open_ else 0.0,
                 high=max(float(base["high"]), p), low=min(float(base["low"]), p),
                 lastUpdated=TS_PLACEHOLDER, timestamp=TS_PLACEHOLDER)
        text = protocol.encode(protocol.invocation("GatewayQuote", [contract.id, q]))
        parts.append(text.split(TS_PLACEHOLDER))
        prices.append(p)
    return parts, prices


@dataclass
class StreamCounters:
    """Running totals; ``written`` is bumped by the sockets' writers (hubs.HubConnection)."""

    emitted: int = 0
    queued: int = 0
    written: int = 0
    dropped: int = 0
    messages: int = 0
    ticks: int = 0
    late_ticks: int = 0          # woke more than one tick after it was due
    max_lag_ms: float = 0.0


class QuoteStream:
    """One stream of quotes at ``rate`` quotes/s (in total, over ``contract_ids``) in the
    simulator's event loop. ``start()`` it; it stops after ``duration_s`` (None = until
    ``stop()``)."""

    def __init__(self, sim: "Simulator", contract_ids: list[str], rate: float, *, tick_ms: float = 5.0,
                 duration_s: float | None = None, amplitude: int = 2, sync_engine: bool = False,
                 max_backlog_s: float = 1.0, frames_per_message: int = MAX_FRAMES_PER_MESSAGE) -> None:
        if not contract_ids:
            raise ValueError("contracts must name at least one contract")
        if not 1 <= tick_ms <= 1000:
            raise ValueError(f"tickMs must be between 1 and 1000, got {tick_ms}")
        if duration_s is not None and duration_s <= 0:
            raise ValueError(f"durationS must be > 0, got {duration_s}")
        if not 1 <= frames_per_message <= MAX_FRAMES_PER_MESSAGE:
            raise ValueError(f"framesPerMessage must be between 1 and {MAX_FRAMES_PER_MESSAGE}, "
                             f"got {frames_per_message}")
        if max_backlog_s <= 0:
            raise ValueError(f"maxBacklogS must be > 0, got {max_backlog_s}")
        self.sim = sim
        self.contract_ids = list(contract_ids)
        self.rate = float(rate)
        self.tick_s = tick_ms / 1000.0
        self.duration_s = duration_s
        self.amplitude = amplitude
        self.sync_engine = sync_engine
        self.frames_per_message = frames_per_message
        self.max_backlog = max(1, int(self.rate * max_backlog_s))
        self.counters = StreamCounters()
        self._parts: list[list[list[str]]] = []
        self._prices: list[list[float]] = []
        for cid in self.contract_ids:
            c = contracts.resolve(cid)
            parts, prices = quote_templates(c, sim.engine.quote(c.id), amplitude)
            self._parts.append(parts)
            self._prices.append(prices)
        self._step = [0] * len(self.contract_ids)
        self._next_contract = 0
        self.pacer = Pacer(self.rate, 0.0, max(1, math.ceil(self.rate * max(0.05, 4 * self.tick_s))))
        self.started_at: float | None = None     # time.monotonic(), the clock of /sim/log
        self.stopped_at: float | None = None
        self.task: asyncio.Task | None = None
        self._stop_requested = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> "QuoteStream":
        self.task = asyncio.get_running_loop().create_task(self._run(), name="quote-stream")
        return self

    def stop(self) -> None:
        self._stop_requested = True
        if self.task is not None and not self.task.done():
            self.task.cancel()  # takes effect at its next await: no tick runs after this
        if self.stopped_at is None and self.started_at is not None:
            self.stopped_at = time.monotonic()

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done() and not self._stop_requested

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.started_at = time.monotonic()
        self.pacer.start = start
        end = start + self.duration_s if self.duration_s is not None else math.inf
        k = 0
        try:
            while True:
                k += 1
                due_at = start + k * self.tick_s
                delay = due_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = loop.time()
                lag = now - due_at
                c = self.counters
                c.ticks += 1
                if lag > self.tick_s:
                    c.late_ticks += 1
                    k = int((now - start) / self.tick_s)  # do not replay the missed wake-ups
                c.max_lag_ms = max(c.max_lag_ms, lag * 1000)
                self.tick(self.pacer.due(min(now, end)))
                if now >= end:
                    break
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug here must not go unnoticed, nor kill the simulator
            log.exception("quote stream failed")
        finally:
            if self.stopped_at is None:
                self.stopped_at = time.monotonic()

    # -- one tick --------------------------------------------------------------------------------

    def tick(self, n: int) -> None:
        """Emit ``n`` quotes now: one websocket message (or a few) per subscribed socket."""
        if n <= 0:
            return
        c = self.counters
        nc = len(self.contract_ids)
        ts = iso(self.sim.clock.now())
        groups: list[list[str]] = [[] for _ in range(nc)]
        first = self._next_contract
        for j in range(nc):
            # quotes of contract (first + j) % nc in this tick: round-robin over the contracts
            count = n // nc + (1 if j < n % nc else 0)
            if not count:
                continue
            ci = (first + j) % nc
            parts, cycle = self._parts[ci], len(self._parts[ci])
            step = self._step[ci]
            frames = groups[ci]
            for _ in range(count):
                frames.append(ts.join(parts[step]))
                step = (step + 1) % cycle
            self._step[ci] = step
        self._next_contract = (first + n) % nc
        c.emitted += n

        per_conn: dict["HubConnection", list[str]] = {}
        hubs = self.sim.hubs
        for ci, frames in enumerate(groups):
            if not frames:
                continue
            for conn in hubs.subscribers("market", "quotes", self.contract_ids[ci]):
                per_conn.setdefault(conn, []).extend(frames)
        for conn, frames in per_conn.items():
            if conn.stream_backlog + len(frames) > self.max_backlog:
                c.dropped += len(frames)
                continue
            step = self.frames_per_message
            for i in range(0, len(frames), step):
                chunk = frames[i:i + step]
                conn.send_batch("".join(chunk), len(chunk), c)
                c.messages += 1
            c.queued += len(frames)

        if self.sync_engine:
            self._sync_engine(groups)

    def _sync_engine(self, groups: list[list[str]]) -> None:
        for ci, frames in enumerate(groups):
            if not frames:
                continue
            cid = self.contract_ids[ci]
            cycle = self._prices[ci]
            price = cycle[(self._step[ci] - 1) % len(cycle)]
            events = [e for e in self.sim.engine.set_price(cid, price) if e.target != "GatewayQuote"]
            if events:
                self.sim.publish(events)
            self.sim.history.add(cid, self.sim.clock.now(), price)

    # -- figures ---------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        c = self.counters
        now = time.monotonic()
        t0 = self.started_at
        t1 = self.stopped_at if self.stopped_at is not None else now
        elapsed = max((t1 - t0) if t0 is not None else 0.0, 1e-9)
        return {
            "running": self.running, "contracts": self.contract_ids, "rate": self.rate,
            "tickMs": self.tick_s * 1000, "durationS": self.duration_s, "amplitude": self.amplitude,
            "syncEngine": self.sync_engine, "framesPerMessage": self.frames_per_message,
            "maxBacklog": self.max_backlog,
            "t": now, "startedAt": t0, "stoppedAt": self.stopped_at, "elapsedS": elapsed if t0 else 0.0,
            "emitted": c.emitted, "queued": c.queued, "written": c.written, "dropped": c.dropped,
            "skipped": self.pacer.skipped, "messages": c.messages, "ticks": c.ticks,
            "lateTicks": c.late_ticks, "maxLagMs": round(c.max_lag_ms, 3),
            "emittedPerS": c.emitted / elapsed if t0 else 0.0,
            "queuedPerS": c.queued / elapsed if t0 else 0.0,
            "writtenPerS": c.written / elapsed if t0 else 0.0,
            "sockets": len(self.sim.hubs.connections["market"]),
        }

