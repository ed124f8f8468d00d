"""The fast quote stream (gateway_sim/quote_stream.py, ``/sim/quotes/stream``): its pacing, its
frames, and that a real project-x-py realtime client takes thousands of quotes a second from it
over loopback."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from pysignalr.messages import InvocationMessage
from pysignalr.protocol.json import JSONProtocol

from gateway_sim import contracts, protocol
from gateway_sim.control_client import ControlClient, ControlError
from gateway_sim.engine import Engine
from gateway_sim.quote_stream import Pacer, price_cycle, quote_templates
from test_server_sdk import run, sdk_session  # tests/sim is on sys.path (rootdir-less layout)

MNQ = "CON.F.US.MNQ.Z26"
STREAM = ("MNQ", "MES", "ES", "NQ")


# -- pacing ------------------------------------------------------------------------------------------

def test_pacer_hands_out_the_quotes_due_at_the_rate() -> None:
    p = Pacer(20_000, start=100.0)
    assert p.due(100.0) == 0
    assert p.due(100.005) == 100           # one 5 ms tick at 20,000/s
    assert p.due(100.005) == 0             # nothing new owed at the same instant
    assert p.due(100.0075) == 50           # a half tick
    total = 150
    t = 100.0075
    for _ in range(1000):                  # irregular wake-ups: the total follows the clock
        t += 0.0031
        total += p.due(t)
    assert total == int((t - 100.0) * 20_000)
    assert p.skipped == 0


def test_pacer_rounds_down_and_never_loses_fractions() -> None:
    p = Pacer(333, start=0.0)
    got = sum(p.due(k * 0.005) for k in range(1, 2001))   # 10 s of 5 ms ticks
    assert got == 3330


def test_pacer_forgives_a_stall_beyond_max_burst() -> None:
    p = Pacer(1000, start=0.0, max_burst=50)
    assert p.due(0.010) == 10
    assert p.due(1.010) == 50              # 1,000 owed after a 1 s stall: 50 now, rest forgiven
    assert p.skipped == 950
    assert p.due(1.020) == 10              # then the rate again, not a catch-up burst
    with pytest.raises(ValueError):
        Pacer(0, start=0.0)


# -- frames ------------------------------------------------------------------------------------------

def test_price_cycle_moves_every_step() -> None:
    cyc = price_cycle(2)
    assert cyc == [0, 1, 2, 1, 0, -1, -2, -1]
    ring = cyc + cyc[:1]
    assert all(a != b for a, b in zip(ring, ring[1:]))
    with pytest.raises(ValueError):
        price_cycle(0)


def test_templates_are_gateway_quotes_the_sdk_protocol_parses_several_per_message() -> None:
    engine = Engine()
    c = contracts.resolve("MNQ")
    base = engine.quote(c.id)
    parts, prices = quote_templates(c, base, 2)
    ts = "2026-11-24T14:30:00.123456+00:00"
    message = "".join(ts.join(p) for p in parts)          # one websocket message, 8 records
    ours = protocol.decode(message)
    assert len(ours) == 8
    for m, price in zip(ours, prices):
        assert m["type"] == 1 and m["target"] == "GatewayQuote" and m["arguments"][0] == c.id
        q = m["arguments"][1]
        assert set(q) == set(base)
        assert q["lastPrice"] == q["bestBid"] == q["bestAsk"] == price
        assert q["timestamp"] == q["lastUpdated"] == ts
        assert q["low"] <= price <= q["high"]
    assert prices[:3] == [21000.0, 21000.25, 21000.5]
    theirs = JSONProtocol().decode(message)                # pysignalr, the SDK's SignalR client
    assert len(theirs) == 8 and all(isinstance(m, InvocationMessage) for m in theirs)
    assert [m.arguments[1]["lastPrice"] for m in theirs] == prices


# -- control API -------------------------------------------------------------------------------------

def test_control_call_validates_and_reports(control: ControlClient) -> None:
    for body, word in (({"contracts": [], "rate": 10}, "contracts"),
                       ({"contracts": ["NOPE"], "rate": 10}, "NOPE"),
                       ({"contracts": ["MNQ"], "rate": 0}, "rate"),
                       ({"contracts": ["MNQ"], "rate": 10, "tickMs": 0.1}, "tickMs"),
                       ({"contracts": ["MNQ"], "rate": 10, "bogus": 1}, "bogus")):
        with pytest.raises(ControlError) as exc:
            control.request("POST", "/sim/quotes/stream", body)
        assert word in exc.value.message
    st = control.quote_stream(["MNQ"], 2000, duration_s=0.5)
    assert st["started"] and st["contracts"] == [MNQ]
    time.sleep(0.8)
    st = control.quote_stream_stats()
    assert st["running"] is False
    assert 900 <= st["emitted"] <= 1000 and st["skipped"] == 0
    assert control.stop_quote_stream()["emitted"] == st["emitted"]


# -- a real SDK client -------------------------------------------------------------------------------

@pytest.mark.timeout(90)
def test_stream_delivers_5000_quotes_per_second_to_one_sdk_client(sim_url: str, control: ControlClient,
                                                                   account: dict) -> None:
    """project-x-py's realtime client, subscribed to 4 contracts, counts every GatewayQuote its
    SignalR client parsed (a second handler on the market hub) and its own quote_update
    callbacks. The SDK coalesces quotes per contract (one callback in flight, latest wins), so
    callbacks + the SDK's coalesce-dropped count = quotes received."""
    ids = [contracts.resolve(s).id for s in STREAM]
    rate, seconds = 8000.0, 3.0

    async def scenario() -> dict:
        async with sdk_session(sim_url, account["name"], contracts=tuple(ids)) as s:
            got = {"raw": 0, "prices": set()}

            def on_raw(contract_id, quote) -> None:
                got["raw"] += 1
                if contract_id == ids[0]:
                    got["prices"].add(quote["lastPrice"])

            s.rt.market_connection.on("GatewayQuote", on_raw)
            await asyncio.sleep(0.3)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: control.quote_stream(list(STREAM), rate,
                                                                          duration_s=seconds + 1.0))
            await asyncio.sleep(0.5)                          # ramp-up
            raw0, cb0, t0 = got["raw"], len(s.events.of("quote_update")), time.monotonic()
            a = await loop.run_in_executor(None, control.quote_stream_stats)
            await asyncio.sleep(seconds)
            raw1, cb1, t1 = got["raw"], len(s.events.of("quote_update")), time.monotonic()
            b = await loop.run_in_executor(None, control.quote_stream_stats)
            await loop.run_in_executor(None, control.stop_quote_stream)
            dropped = dict(getattr(s.rt, "_coalesce_dropped", {}))
            return {"received_per_s": (raw1 - raw0) / (t1 - t0), "callbacks_per_s": (cb1 - cb0) / (t1 - t0),
                    "emitted_per_s": (b["emitted"] - a["emitted"]) / (b["t"] - a["t"]),
                    "written_per_s": (b["written"] - a["written"]) / (b["t"] - a["t"]),
                    "dropped": b["dropped"], "prices": sorted(got["prices"]), "coalesced": dropped,
                    "callbacks": cb1, "raw": raw1}

    r = run(scenario())
    print(json.dumps({k: v for k, v in r.items() if k != "prices"}))
    assert r["emitted_per_s"] >= 0.9 * rate, r
    assert r["received_per_s"] >= 5000, r
    assert r["callbacks"] > 0 and len(r["prices"]) == 5, r     # 21000 +- 2 ticks: the price moves
    # the SDK saw what it parsed: each quote either reached a callback or was coalesced away
    assert r["callbacks"] + r["coalesced"].get("quote_update", 0) >= 0.95 * r["raw"], r


def test_cli_quotes_stream_status_stop(sim_url: str, control: ControlClient) -> None:
    from click.testing import CliRunner

    from gateway_sim.cli import main

    runner = CliRunner()
    r = runner.invoke(main, ["quotes", "stream", "MNQ", "MES", "--rate", "1000", "--duration", "0.4",
                             "--wait", "--url", sim_url])
    assert r.exit_code == 0, r.output
    assert "quote stream stopped: target 1000/s on 2 contract(s)" in r.output
    r = runner.invoke(main, ["quotes", "status", "--json", "--url", sim_url])
    assert r.exit_code == 0 and 350 <= json.loads(r.output)["emitted"] <= 400, r.output
    r = runner.invoke(main, ["quotes", "stream", "MNQ", "--rate", "500", "--url", sim_url])
    assert r.exit_code == 0 and "quote stream started: 500 quotes/s" in r.output, r.output
    r = runner.invoke(main, ["quotes", "stop", "--url", sim_url])
    assert r.exit_code == 0 and "quote stream stopped" in r.output, r.output
    r = runner.invoke(main, ["quotes", "stream", "NOPE", "--rate", "5", "--url", sim_url])
    assert r.exit_code == 1 and "NOPE" in r.output
    r = runner.invoke(main, ["quotes", "stream", "MNQ", "--rate", "5", "--wait", "--url", sim_url])
    assert r.exit_code == 1 and "--wait needs --duration" in r.output


def test_sync_engine_moves_the_engine_price_and_fills_what_it_crosses(control: ControlClient, account: dict) -> None:
    """With syncEngine the engine's last price follows the stream (+-2 ticks around 21000): a buy
    limit one tick below fills, and the price ends on the stream's grid."""
    control.place_order(account["id"], "MNQ", "limit", "buy", 1, limit_price=20999.75)
    control.quote_stream(["MNQ"], 400, duration_s=0.3, sync_engine=True)
    time.sleep(0.6)
    assert control.quote_stream_stats()["running"] is False
    state = control.state(account["id"])
    assert [p["size"] for p in state["positions"]] == [1]
    price = control.set_price("MNQ", 21000)  # puts it back for the other tests
    assert price["price"] == 21000
    # without syncEngine the engine price does not move: the same limit stays open
    control.place_order(account["id"], "MNQ", "limit", "buy", 1, limit_price=20999.75)
    control.quote_stream(["MNQ"], 400, duration_s=0.2)
    time.sleep(0.4)
    state = control.state(account["id"])
    assert [p["size"] for p in state["positions"]] == [1]
    assert [o["limitPrice"] for o in state["orders"] if o["status"] == 1] == [20999.75]
