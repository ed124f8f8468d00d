"""Scenario format and runner: validation, expectations, the CLI, and (when it runs) the real simulator.

The runner is judged against `FakeSim`, a small http.server stand-in for the /sim control API that
can also play a riskd (append REST request records to its log after a delay), so every outcome of
an expectation (in time, late, absent, unwanted) is reproducible in milliseconds.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_sim.control_client import ControlClient, ControlError, ControlUnavailable
from gateway_sim.scenario import (
    ScenarioError,
    loads_scenario,
    parse_scenario,
    run_scenario,
    scenario as scenario_command,
)

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "scenarios"
TRADER_YAML = SCENARIOS / "sim_trader_buys_and_sees_position.yaml"
FAILING_YAML = SCENARIOS / "sim_failing_expectation.yaml"
DOCS = ROOT / "docs" / "scenarios.md"
PYTHON = sys.executable


# ================================================================================================
# A fake /sim control API
# ================================================================================================

CONTRACT_IDS = {"MNQ": "CON.F.US.MNQ.Z26", "MES": "CON.F.US.MES.Z26", "ES": "CON.F.US.EP.Z26", "NQ": "CON.F.US.ENQ.Z26"}
TYPES = {"limit": 1, "market": 2, "stoplimit": 3, "stop": 4, "trailing": 5}


class FakeSim:
    """Just enough of the control API for the runner: accounts, market fills, resting orders,
    state, clock, marks and the log. ``react`` hooks stand in for riskd acting on fills."""

    def __init__(self, page_size: int | None = None, mark_returns_record: bool = False) -> None:
        self.lock = threading.RLock()
        self.page_size = page_size
        self.mark_returns_record = mark_returns_record
        self.accounts: dict[int, dict[str, Any]] = {}
        self.positions: dict[tuple[int, str], list[float]] = {}  # (account, contract) -> [signed size, avg]
        self.orders: dict[int, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str, Any]] = []
        self.reactions: list[Callable[[int, str, int], None]] = []
        self.next_id = 1

    # -- bookkeeping -----------------------------------------------------------------------------

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            entry = {"n": len(self.log) + 1, "t": time.monotonic(), "kind": kind, **fields}
            self.log.append(entry)
            return entry

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def riskd_request(
        self, path: str, account_id: int, contract_id: str, body: dict | None = None, status: int | None = 200
    ) -> None:
        """What the simulator would record when riskd calls its REST API."""
        self.record(
            "request",
            method="POST",
            path=path,
            accountId=account_id,
            contractId=contract_id,
            status=status,
            body={"accountId": account_id, "contractId": contract_id, **(body or {})},
        )

    def react_after(
        self, delay_s: float, when: Callable[[int], bool], path: str, body: Callable[[int], dict] | None = None
    ) -> None:
        """After a fill leaves a position for which ``when(signed size)`` holds, send ``path`` later."""

        def reaction(account_id: int, contract_id: str, size: int) -> None:
            if when(size):
                threading.Timer(
                    delay_s, self.riskd_request, (path, account_id, contract_id, body(size) if body else None)
                ).start()

        self.reactions.append(reaction)

    # -- the API ---------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        with self.lock:
            self.calls.append((method, path, body))
            if method == "GET" and path == "/sim/accounts":
                return 200, {"accounts": list(self.accounts.values())}
            if method == "POST" and path == "/sim/accounts":
                account_id = body.get("id") or self.new_id()
                account = {
                    "id": account_id,
                    "name": body["name"],
                    "balance": body.get("balance", 50000.0),
                    "canTrade": body.get("canTrade", True),
                    "isVisible": True,
                }
                self.accounts[account_id] = account
                return 200, {"account": account}
            m = re.fullmatch(r"/sim/accounts/(\d+)/canTrade", path)
            if m:
                self.accounts[int(m.group(1))]["canTrade"] = body["canTrade"]
                return 200, {}
            if path == "/sim/prices":
                if body["contract"] not in CONTRACT_IDS:
                    return 400, {"error": f"contract: unknown contract {body['contract']!r}"}
                return 200, {"contractId": CONTRACT_IDS[body["contract"]], "price": body["price"]}
            if path == "/sim/orders":
                return self.place(body)
            if path == "/sim/orders/cancel":
                order = self.orders.get(body["orderId"])
                if order is None or order["status"] != 1:
                    return 404, {"error": f"orderId: no open order {body['orderId']}"}
                order["status"] = 3
                return 200, {}
            if path == "/sim/positions/close":
                cid = CONTRACT_IDS[body["contract"]]
                self.fill(body["accountId"], cid, -self.positions.get((body["accountId"], cid), [0, 0])[0])
                return 200, {}
            if path == "/sim/state":
                account_id = int(query["accountId"])
                if account_id not in self.accounts:
                    return 404, {"error": f"accountId: no account {account_id}"}
                positions = [
                    {
                        "id": 1,
                        "accountId": a,
                        "contractId": c,
                        "type": 1 if s > 0 else 2,
                        "size": abs(int(s)),
                        "averagePrice": avg,
                    }
                    for (a, c), (s, avg) in self.positions.items()
                    if a == account_id and s
                ]
                orders = [o for o in self.orders.values() if o["accountId"] == account_id]
                return 200, {
                    "account": self.accounts[account_id],
                    "positions": positions,
                    "orders": orders,
                    "trades": [],
                }
            if path == "/sim/clock" and method == "GET":
                return 200, {"now": "2026-11-24T15:00:00+00:00", "monotonic": time.monotonic()}
            if path == "/sim/mark":
                entry = self.record("mark", label=body["label"])
                return 200, (entry if self.mark_returns_record else {})
            if path == "/sim/log":
                since = int(query.get("since", 0))
                kinds = query.get("kind")
                records = [r for r in self.log if r["n"] >= since and (not kinds or r["kind"] == kinds)]
                nxt = len(self.log) + 1
                if self.page_size is not None and len(records) > self.page_size:
                    nxt = records[self.page_size]["n"]
                    records = records[: self.page_size]
                return 200, {"records": records, "next": nxt}
            if path.startswith("/sim/"):
                self.record("control", path=path, body=body)
                return 200, {}
            return 404, {"error": f"no such endpoint {path}"}

    def place(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body["contract"] not in CONTRACT_IDS:
            return 400, {"error": f"contract: unknown contract {body['contract']!r}"}
        if body["size"] > 50:
            return 400, {"error": f"size: {body['size']} is over the account's maximum of 50"}
        account_id = body["accountId"]
        if not self.accounts[account_id]["canTrade"]:
            return 400, {"error": "accountId: canTrade is false"}
        cid = CONTRACT_IDS[body["contract"]]
        order_id = self.new_id()
        side = {"buy": 0, "sell": 1}[body["side"]]
        order = {
            "id": order_id,
            "accountId": account_id,
            "contractId": cid,
            "type": TYPES[body["type"]],
            "side": side,
            "size": body["size"],
            "limitPrice": body.get("limitPrice"),
            "stopPrice": body.get("stopPrice"),
            "status": 1,
        }
        self.orders[order_id] = order
        if body["type"] == "market":
            order["status"] = 2
            self.fill(account_id, cid, body["size"] if side == 0 else -body["size"])
        return 200, {"orderId": order_id}

    def fill(self, account_id: int, cid: str, delta: int) -> None:
        size, avg = self.positions.get((account_id, cid), [0, 0.0])
        new = size + delta
        self.positions[(account_id, cid)] = [new, avg or 21000.0]
        for reaction in list(self.reactions):
            reaction(account_id, cid, int(new))

    # -- serving ---------------------------------------------------------------------------------

    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _go(self, method: str) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                status, answer = fake.handle(method, parts.path, query, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._go("GET")

            def do_POST(self) -> None:
                self._go("POST")

            def do_DELETE(self) -> None:
                self._go("DELETE")

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def fake():
    sim = FakeSim()
    server, url = sim.serve()
    sim.url = url
    yield sim
    server.shutdown()
    server.server_close()


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def doc(steps: str, extra: str = "") -> str:
    """A scenario around some steps, with an account `trader` and MNQ at 21000."""
    return (
        "name: t\naccounts:\n  trader: {balance: 50000}\nprices: {MNQ: 21000}\n"
        + extra
        + "steps:\n"
        + "\n".join("  " + line for line in steps.strip("\n").splitlines())
        + "\n"
    )


# ================================================================================================
# Validation
# ================================================================================================


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_scenario_file_is_valid(path):
    sc = loads_scenario(path.read_text(), str(path))
    assert sc.steps


def test_every_yaml_example_in_the_docs_is_valid_unless_marked_invalid():
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert len(blocks) >= 10
    checked = 0
    for block in blocks:
        if block.lstrip().startswith("# invalid"):
            with pytest.raises(ScenarioError):
                loads_scenario(block if re.search(r"^steps:", block, flags=re.M) else doc(block), "docs")
            continue
        text = block if re.search(r"^steps:", block, flags=re.M) else doc(block)
        loads_scenario(text, "docs")
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            doc("- order: {account: trader, side: buyy, size: 2, contract: MNQ, type: market}"),
            "step 1 (order, line 6): side: must be one of buy, sell, got 'buyy'",
        ),
        (doc("- ordr: {account: trader}"), "step 1 (line 6): ordr: unknown step kind (did you mean 'order'?)"),
        (
            doc("- order: {account: trader, side: buy, size: 0, contract: MNQ, type: market}"),
            "size: must be at least 1, got 0",
        ),
        (
            doc("- order: {account: trader, side: buy, size: true, contract: MNQ, type: market}"),
            "size: must be a whole number, got True",
        ),
        (
            doc("- order: {account: trader, side: buy, size: 1, contract: MNQ, type: market, limit: 20990}"),
            "limit: does not apply to a market order, got 20990",
        ),
        (
            doc("- order: {account: trader, side: buy, size: 1, contract: MNQ, type: stoplimit, stop: 21010}"),
            "limit: is required for a stoplimit order",
        ),
        (
            doc("- order: {account: tradr, side: buy, size: 1, contract: MNQ, type: market}"),
            "account: unknown account alias (did you mean 'trader'?) (aliases so far: trader), got 'tradr'",
        ),
        (
            doc("- order: {account: trader, side: buy, size: 1, contract: 'MNQ Z6', type: market}"),
            "contract: is not a valid contract",
        ),
        (
            doc("- set_price: {contract: MNQ, price: -5}"),
            "step 1 (set_price, line 6): price: must be greater than 0, got -5",
        ),
        (doc("- set_price: {contract: MNQ, price: .nan}"), "price: must be a finite number"),
        (doc("- can_trade: {account: trader, value: 'no'}"), "value: must be true or false, got 'no'"),
        (doc("- set_clock: {at: 2025-01-21T16:30:00}"), "at: needs a UTC offset or a zone"),
        (doc("- set_clock: {at: '2025-01-21 16:30 Mars/Olympus'}"), "at: unknown time zone 'Mars/Olympus'"),
        (doc("- wait: {ms: 5000000}"), "ms: must be at most 600000"),
        (
            doc("- fault: {path: /api/Position/closeContract, kind: logout}"),
            "kind: logout applies to a hub (hub:user, hub:market, hub:all), got 'logout'",
        ),
        (
            doc("- fault: {path: /api/Order/place, kind: 429, delay_ms: 5}"),
            "delay_ms: applies only to kind slow or late, got 5",
        ),
        (
            doc("- fault: {path: hub:user, kind: late}"),
            "kind: late applies to a REST path (a hub has no answer to hold back), got 'late'",
        ),
        (doc("- fault: {path: /api/Order/place, kind: slow, status: 503}"), "status: applies only to kind 5xx"),
        (
            doc("- fault: {path: hub:users, kind: drop}"),
            "path: a hub fault targets one of hub:user, hub:market, hub:all",
        ),
        (doc("- fault: {path: Order/place, kind: 5xx}"), "path: must be a REST path such as"),
        (
            doc("- expect:\n    position: {account: trader, contract: MNQ, size: 2, within_ms: 50}"),
            "position.within_ms: belongs beside position:, directly under expect:, not inside it",
        ),
        (
            doc("- expect:\n    position: {account: trader, contract: MNQ, size: 2}\n    for_ms: 50"),
            "for_ms: unknown key",
        ),
        (
            doc("- expect:\n    positon: {account: trader, contract: MNQ, size: 2}"),
            "positon: unknown expectation (did you mean 'position'?)",
        ),
        (
            doc("- expect:\n    position: {account: trader, contract: MNQ, side: short, size: -2}"),
            "position.size: with side short give a positive size",
        ),
        (doc("- expect:\n    no_request: {path: /api/Position/closeContract}"), "for_ms: is required"),
        (
            doc("- expect:\n    request: {path: /api/Position/closeContract}\n    after_step: 3"),
            "step 1 (expect, line 6): after_step: must be an earlier step number (1 to 0), got 3",
        ),
        (
            doc(
                "- set_price: {contract: MNQ, price: 1}\n- expect:\n    request: {path: /api/Order/place}\n    after_step: breech"
            ),
            "after_step: must be an earlier step's number, name or label",
        ),
        (doc("- expect:\n    request: {path: api/Order/place}"), "request.path: must be a REST path starting with /"),
        (
            doc("- cancel: {account: trader, order: entry}"),
            "order: must be an order id or the name of an earlier order step",
        ),
        (doc("- cancel: {account: trader}"), "give either order"),
        (
            doc("- name: a\n  wait: {ms: 1}\n- name: a\n  wait: {ms: 1}"),
            "step 2 (wait, line 8): name: is already used by step 1",
        ),
        (doc("- wait: {ms: 1}\n  expect_error: true"), "expect_error: unknown key beside wait:"),
        (doc("- wait: {ms: 1}\n  set_price: {contract: MNQ, price: 1}"), "has several step kinds (wait, set_price)"),
        (
            "name: t\naccounts:\n  trader: {canTrade: false}\nsteps:\n  - wait: {ms: 1}\n",
            "accounts: trader.canTrade: unknown key (did you mean 'can_trade'?)",
        ),
        (
            "name: t\naccounts:\n  trader: {existing: PRAC-1, balance: 5}\nsteps:\n  - wait: {ms: 1}\n",
            "trader.existing: stands alone",
        ),
        ("name: t\nsteps: []\n", "steps: must be a non-empty list of steps, got []"),
        ("steps:\n  - wait: {ms: 1}\n", "name: is required"),
        ("name: t\nname: u\nsteps:\n  - wait: {ms: 1}\n", "found duplicate key 'name' (first at line 1)"),
        (
            "name: t\nsteps:\n  - wait: {ms: 1}\n    ms: 2\n",
            "step 1 (wait, line 3): ms: unknown key beside wait: (allowed: name, label); fields of wait go inside",
        ),
        ("name: t\nsteps:\n  - wait: {ms: 1\n", "bad.yaml: not valid YAML: while parsing a flow mapping"),
        ("- just\n- a list\n", "a scenario must be a mapping"),
        ("name: t\nsteps:\n  - wait: {ms: 1}\n  - 7\n", "step 2: a step must be a mapping"),
    ],
)
def test_invalid_scenario_error_names_step_key_and_value(text, expected):
    with pytest.raises(ScenarioError) as info:
        loads_scenario(text, "bad.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("bad.yaml: ")


def test_error_carries_step_number_and_key():
    with pytest.raises(ScenarioError) as info:
        loads_scenario(doc("- wait: {ms: 1}\n- close: {account: trader, contract: MNQ, size: -1}"))
    assert (info.value.step, info.value.key) == (2, "size")


def test_position_side_short_becomes_a_negative_size():
    sc = loads_scenario(doc("- expect:\n    position: {account: trader, contract: MNQ, side: short, size: 3}"))
    assert sc.steps[0].args["size"] == -3


@pytest.mark.parametrize(
    ("at", "utc"),
    [
        ("'2025-07-15 08:30 America/Chicago'", "2025-07-15T13:30:00+00:00"),  # CDT: 13:30 UTC
        ("'2025-01-15 08:30 America/Chicago'", "2025-01-15T14:30:00+00:00"),  # CST: 14:30 UTC
        ("2025-01-21T16:30:00-06:00", "2025-01-21T22:30:00+00:00"),
        ("'2025-01-21T22:30:00Z'", "2025-01-21T22:30:00+00:00"),
    ],
)
def test_set_clock_accepts_offsets_and_zones_and_sends_utc(at, utc):
    sc = loads_scenario(doc(f"- set_clock: {{at: {at}}}"))
    assert sc.steps[0].args["at"] == utc


def test_request_anchor_defaults_to_the_last_step_that_is_not_an_expect_or_a_wait():
    sc = loads_scenario(doc("""
- order: {account: trader, side: buy, size: 3, contract: MNQ, type: market}
- wait: {ms: 10}
- expect:
    position: {account: trader, contract: MNQ, size: 3}
- expect:
    request: {path: /api/Position/partialCloseContract}
"""))
    assert sc.steps[3].args["after_step"] == 1


def test_after_step_resolves_names_labels_and_mark_labels():
    sc = loads_scenario(doc("""
- name: entry
  order: {account: trader, side: buy, size: 3, contract: MNQ, type: market}
- label: price drops to the loss limit
  set_price: {contract: MNQ, price: 20925}
- mark: {label: breach}
- expect: {request: {path: /x}, after_step: entry}
- expect: {request: {path: /x}, after_step: price drops to the loss limit}
- expect: {request: {path: /x}, after_step: breach}
- expect: {request: {path: /x}, after_step: 2}
"""))
    assert [s.args["after_step"] for s in sc.steps[3:]] == [1, 2, 3, 2]


def test_brackets_shorthand_and_full_form():
    sc = loads_scenario(doc("""
- order: {account: trader, side: buy, size: 1, contract: MNQ, type: market, brackets: {stop_loss: 40, take_profit: {ticks: 80, type: limit}}}
"""))
    assert sc.steps[0].args["brackets"] == {
        "stop_loss": {"ticks": 40, "type": 4},
        "take_profit": {"ticks": 80, "type": 1},
    }


def test_create_account_step_defines_an_alias_for_later_steps_only():
    with pytest.raises(ScenarioError, match="unknown account alias"):
        loads_scenario(
            doc(
                "- order: {account: late, side: buy, size: 1, contract: MNQ, type: market}\n- create_account: {alias: late}"
            )
        )
    loads_scenario(
        doc(
            "- create_account: {alias: late}\n- order: {account: late, side: buy, size: 1, contract: MNQ, type: market}"
        )
    )


# -- property tests ------------------------------------------------------------------------------

STEP_FIELDS = {
    "create_account": ["alias", "name", "balance", "can_trade", "id"],
    "set_price": ["contract", "price"],
    "price_path": ["contract", "prices", "interval_ms", "wait"],
    "order": ["account", "side", "size", "contract", "type", "limit", "stop", "trail", "brackets"],
    "cancel": ["account", "order", "all", "contract"],
    "close": ["account", "contract", "size"],
    "can_trade": ["account", "value"],
    "advance_clock": ["seconds"],
    "set_clock": ["at"],
    "wait": ["ms"],
    "fault": ["path", "kind", "count", "retry_after", "delay_ms"],
    "clear_faults": [],
    "drop": ["hub"],
    "logout": [],
    "tokens": ["expires_in", "expire_all"],
    "config": ["wrap_events", "pnl_includes_fees", "quote_interval_ms"],
    "mark": ["label"],
}
EXPECT_FIELDS = {
    "position": ["account", "contract", "size", "side", "average_price"],
    "orders": ["account", "contract", "count", "type", "side", "size", "limit", "stop"],
    "account": ["account", "can_trade", "balance"],
    "request": ["path", "account", "contract", "body", "status", "success", "count"],
    "no_request": ["path", "account", "contract", "body", "status", "success"],
}
GOOD = {  # values that are valid for some kind, so generated steps reach the deep checks
    "account": ["trader", 1],
    "alias": ["acct2", "trader"],
    "name": ["entry", "x", "SIM-1"],
    "label": ["entry", "breach"],
    "side": ["buy", "sell", "long", "short"],
    "size": [1, 2, -2, 0],
    "contract": ["MNQ", "ES", "CON.F.US.MNQ.Z26"],
    "type": ["market", "limit", "stop", "stoplimit", "trailing"],
    "limit": [21000, 20990.25],
    "stop": [20990],
    "trail": [10],
    "price": [21000],
    "average_price": [21000],
    "balance": [50000, 0],
    "prices": [[21000, 21001.25]],
    "interval_ms": [50],
    "ms": [0, 20],
    "within_ms": [0, 50],
    "for_ms": [10, 50],
    "wait": [False],
    "can_trade": [True, False],
    "value": [True, False],
    "expire_all": [True],
    "wrap_events": [True],
    "pnl_includes_fees": [False],
    "id": [5],
    "order": ["entry", 3],
    "all": [True],
    "seconds": [60],
    "expires_in": [60],
    "retry_after": [2],
    "at": ["2025-01-21T16:30:00Z", "2025-01-21 16:30 America/Chicago"],
    "path": ["/api/Position/closeContract", "hub:user", ["/api/Order/*", "/api/Position/*"]],
    "kind": ["429", "slow", "drop", 429, "5xx"],
    "count": [1, 0, 2],
    "delay_ms": [100],
    "hub": ["user", "all"],
    "quote_interval_ms": [100],
    "body": [{"size": 1}],
    "status": [200],
    "success": [True],
    "after_step": [1, "entry", "breach"],
    "brackets": [{"stop_loss": 40}, {"take_profit": {"ticks": 80, "type": "limit"}}],
    "existing": ["PRAC-1", 3],
    "expect_error": [True, "canTrade"],
}
WORDS = sorted(
    {v for vs in GOOD.values() for v in vs if isinstance(v, str)} | {"", "America/", "9999-12-31T23:59:59-12:00"}
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.sampled_from(WORDS)
    | st.text(max_size=10)
)
ALL_KEYS = sorted(
    {k for fs in list(STEP_FIELDS.values()) + list(EXPECT_FIELDS.values()) for k in fs}
    | set(STEP_FIELDS)
    | set(EXPECT_FIELDS)
    | set(GOOD)
    | {"expect", "steps", "accounts", "prices", "description", "ticks"}
)
keys = st.sampled_from(ALL_KEYS) | st.text(max_size=6) | st.integers() | st.none() | st.booleans()
yamlish = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5), max_leaves=25
)


def value_of(field: str) -> st.SearchStrategy:
    good = st.sampled_from(GOOD[field]) if field in GOOD else scalars
    return st.one_of(good, good, good, good, scalars, yamlish)  # mostly plausible, sometimes anything


def _kind_body(fields: list[str]) -> st.SearchStrategy:
    body = st.fixed_dictionaries({}, optional={f: value_of(f) for f in fields})
    return st.one_of(body, body, body, body, body, yamlish)


action_step = st.sampled_from(sorted(STEP_FIELDS)).flatmap(
    lambda kind: st.fixed_dictionaries(
        {kind: _kind_body(STEP_FIELDS[kind])}, optional={f: value_of(f) for f in ("name", "label", "expect_error")}
    )
)
expect_step = st.sampled_from(sorted(EXPECT_FIELDS)).flatmap(
    lambda what: st.fixed_dictionaries(
        {
            "expect": st.fixed_dictionaries(
                {what: _kind_body(EXPECT_FIELDS[what])},
                optional={f: value_of(f) for f in ("within_ms", "for_ms", "after_step")},
            )
        }
    )
)
near_valid_doc = st.fixed_dictionaries(
    {
        "name": st.one_of(st.just("scenario"), st.just("scenario"), scalars),
        "steps": st.lists(st.one_of(action_step, action_step, expect_step, yamlish), min_size=1, max_size=8),
    },
    optional={
        "description": scalars,
        "accounts": st.dictionaries(
            st.sampled_from(["trader", "x"]) | keys,
            st.one_of(
                st.fixed_dictionaries({}, optional={k: value_of(k) for k in ("name", "balance", "can_trade", "id")}),
                st.fixed_dictionaries({"existing": value_of("existing")}),
                yamlish,
            ),
            max_size=3,
        ),
        "prices": st.dictionaries(st.sampled_from(["MNQ", "ES"]) | keys, value_of("price"), max_size=3),
    },
)


def _plausible_body(fields: list[str]) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={f: st.sampled_from(GOOD[f]) for f in fields if f in GOOD})


plausible_step = st.one_of(
    st.sampled_from(sorted(STEP_FIELDS)).flatmap(
        lambda kind: st.fixed_dictionaries(
            {kind: _plausible_body(STEP_FIELDS[kind])},
            optional={f: st.sampled_from(GOOD[f]) for f in ("name", "label")},
        )
    ),
    st.sampled_from(sorted(EXPECT_FIELDS)).flatmap(
        lambda what: st.fixed_dictionaries(
            {
                "expect": st.fixed_dictionaries(
                    {what: _plausible_body(EXPECT_FIELDS[what])},
                    optional={f: st.sampled_from(GOOD[f]) for f in ("within_ms", "for_ms", "after_step")},
                )
            }
        )
    ),
)
# Every value plausible on its own: what fails here is how fields combine (a limit on a market order,
# an anchor that does not exist yet), the checks random data rarely reaches.
plausible_doc = st.fixed_dictionaries(
    {
        "name": st.just("scenario"),
        "accounts": st.just({"trader": {}}),
        "steps": st.lists(plausible_step, min_size=1, max_size=8),
    }
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(plausible_doc, near_valid_doc, yamlish))
def test_parser_never_crashes_it_parses_or_raises_scenario_error(document):
    try:
        sc = parse_scenario(document)
    except ScenarioError as exc:
        assert str(exc)
    else:
        assert sc.steps and all(step.title for step in sc.steps)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_yaml_text_never_crashes_the_loader(text):
    try:
        loads_scenario(text)
    except ScenarioError:
        pass


# ================================================================================================
# Control client
# ================================================================================================


def test_client_error_names_endpoint_status_and_server_text(fake):
    client = ControlClient(fake.url)
    account = client.create_account("A")
    with pytest.raises(ControlError) as info:
        client.place_order(account["id"], "MNQ", "market", "buy", 99)
    assert str(info.value) == "POST /sim/orders: HTTP 400: size: 99 is over the account's maximum of 50"
    assert (info.value.endpoint, info.value.status) == ("POST /sim/orders", 400)


def test_client_sends_camel_case_and_omits_unset_fields(fake):
    client = ControlClient(fake.url)
    client.add_fault("/api/Order/place", "429", count=2, retry_after=2)
    method, path, body = fake.calls[-1]
    assert (method, path, body) == (
        "POST",
        "/sim/faults",
        {"path": "/api/Order/place", "kind": "429", "count": 2, "retryAfter": 2},
    )


def test_client_without_a_server_raises_unavailable_with_a_hint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(
        ControlUnavailable, match=r"GET /sim/clock: no simulator at http://127.0.0.1:\d+ \(connection refused"
    ):
        ControlClient(f"http://127.0.0.1:{port}", timeout=2).clock()


# ================================================================================================
# Running against the fake
# ================================================================================================


def test_trader_scenario_passes_with_every_step_ok(fake):
    result = run_scenario(TRADER_YAML, fake.url)
    assert result.passed, [f.describe for f in result.failures]
    assert [r.status for r in result.steps] == ["ok"] * len(result.steps)
    marks = [r["label"] for r in fake.log if r["kind"] == "mark"]
    assert len(marks) == 1 + len(result.steps)  # start + one per step, in order
    assert "step 10: cancel trader order protective_stop" in marks[10]


def test_failed_position_expectation_says_what_was_seen(fake):
    result = run_scenario(FAILING_YAML, fake.url)
    assert not result.passed
    (failure,) = result.failures
    assert failure.index == 2 and failure.status == "failed"
    assert re.fullmatch(
        r"step 2 expect position trader MNQ size \+5 within 300 ms: saw size \+2 @21000 \(last checked \+(3\d\d|[4-9]\d\d|\d{4}) ms\)",
        failure.describe,
    ), failure.describe
    assert (
        result.steps[2].status == "ok" and result.steps[3].status == "ok"
    )  # a failed expectation does not stop the run


def test_fail_fast_skips_the_rest(fake):
    result = run_scenario(FAILING_YAML, fake.url, fail_fast=True)
    assert [r.status for r in result.steps] == ["ok", "failed", "skipped", "skipped"]


def test_position_expectation_polls_until_it_holds(fake, tmp_path):
    fake.react_after(0.15, lambda size: size > 2, "/api/Position/partialCloseContract")

    def shrink(account_id, cid, size):
        if size > 2:
            threading.Timer(0.15, lambda: fake.positions.__setitem__((account_id, cid), [2, 21000.0])).start()

    fake.reactions.append(shrink)
    result = run_scenario(
        write(
            tmp_path,
            doc("""
- order: {account: trader, side: buy, size: 3, contract: MNQ, type: market}
- expect:
    position: {account: trader, contract: MNQ, size: 2}
    within_ms: 1000
"""),
        ),
        fake.url,
    )
    assert result.passed, result.failures[0].describe if result.failures else ""
    assert 100 <= result.steps[1].elapsed_ms < 900


RISKD_LIKE = """
- name: entry
  order: {account: trader, side: buy, size: 3, contract: MNQ, type: market}
- expect:
    request: {path: /api/Position/partialCloseContract, account: trader, contract: MNQ, body: {size: 1}}
    within_ms: 300
"""


def test_request_expectation_passes_when_the_call_arrives_in_time(fake, tmp_path):
    fake.react_after(0.05, lambda size: size > 2, "/api/Position/partialCloseContract", lambda size: {"size": size - 2})
    result = run_scenario(write(tmp_path, doc(RISKD_LIKE)), fake.url)
    assert result.passed, result.failures[0].describe if result.failures else ""
    assert re.fullmatch(r"\+\d+ ms", result.steps[1].message)
    assert 40 <= int(result.steps[1].message[1:-3]) < 300


def test_request_expectation_reports_a_late_call_with_its_latency(fake, tmp_path):
    fake.react_after(0.5, lambda size: size > 2, "/api/Position/partialCloseContract", lambda size: {"size": size - 2})
    path = write(
        tmp_path,
        doc(RISKD_LIKE + "- wait: {ms: 600}\n- expect:\n    position: {account: trader, contract: MNQ, size: 3}\n"),
    )
    # The runner judges request 2 only once its window has closed, and the late call is in the log by step 4.
    result = run_scenario(path, fake.url)
    failure = result.steps[1]
    assert failure.status == "failed"
    assert failure.message == "saw none (the window closed at +300 ms)" or failure.message.startswith(
        "none in time; first at +"
    )


def test_request_expectation_names_near_misses(fake, tmp_path):
    fake.react_after(0.02, lambda size: size > 2, "/api/Position/partialCloseContract", lambda size: {"size": 2})
    result = run_scenario(write(tmp_path, doc(RISKD_LIKE)), fake.url)
    failure = result.steps[1]
    assert failure.status == "failed"
    assert failure.message.startswith(
        'none matching; saw 1 to that path: POST /api/Position/partialCloseContract CON.F.US.MNQ.Z26 {"size":2} -> 200 at +'
    )


def test_symbol_matches_exchange_root_ids(fake, tmp_path):
    fake.react_after(0.01, lambda size: True, "/api/Position/closeContract")
    result = run_scenario(
        write(
            tmp_path,
            doc("""
- order: {account: trader, side: sell, size: 1, contract: ES, type: market}
- expect:
    request: {path: /api/position/CLOSECONTRACT, contract: ES}
    within_ms: 500
- expect:
    position: {account: trader, contract: CON.F.US.EP.Z26, size: -1}
"""),
        ),
        fake.url,
    )
    assert result.passed, result.failures[0].describe if result.failures else ""


def test_no_request_fails_when_the_call_arrives_and_passes_when_it_does_not(fake, tmp_path):
    fake.react_after(0.05, lambda size: size > 2, "/api/Position/closeContract")
    text = doc("""
- order: {account: trader, side: buy, size: 2, contract: MNQ, type: market}
- expect:
    no_request: {path: [/api/Position/closeContract, /api/Position/partialCloseContract]}
    for_ms: 200
- order: {account: trader, side: buy, size: 1, contract: MNQ, type: market}
- expect:
    no_request: {path: /api/Position/*, contract: MNQ}
    for_ms: 200
""")
    result = run_scenario(write(tmp_path, text), fake.url)
    assert [r.status for r in result.steps] == ["ok", "ok", "ok", "failed"]
    assert result.steps[3].message.startswith("saw 1: POST /api/Position/closeContract CON.F.US.MNQ.Z26 -> 200 at +")
    assert result.steps[1].elapsed_ms >= 200 - 5  # a no_request waits its whole window


def test_request_status_is_read_again_while_the_call_is_in_flight(fake, tmp_path):
    def slow_answer(account_id, cid, size):
        if size > 2:
            fake.riskd_request("/api/Position/partialCloseContract", account_id, cid, {"size": 1}, status=None)
            record = fake.log[-1]
            threading.Timer(0.15, lambda: record.update(status=200, success=True)).start()

    fake.reactions.append(slow_answer)
    text = doc(RISKD_LIKE.replace("body: {size: 1}}", "body: {size: 1}, status: 200, success: true}"))
    result = run_scenario(write(tmp_path, text), fake.url)
    assert result.passed, result.failures[0].describe if result.failures else ""


def test_request_count_requires_exactly_that_many_in_the_window(fake, tmp_path):
    for delay in (0.02, 0.05):
        fake.react_after(delay, lambda size: size > 2, "/api/Position/partialCloseContract", lambda size: {"size": 1})
    text = doc(
        RISKD_LIKE.replace("within_ms: 300", "within_ms: 300").replace("body: {size: 1}}", "body: {size: 1}, count: 1}")
    )
    result = run_scenario(write(tmp_path, text), fake.url)
    assert result.steps[1].status == "failed"
    assert result.steps[1].message.startswith("saw 2: POST /api/Position/partialCloseContract")


def test_log_is_read_page_by_page_and_marks_from_the_answer_are_used(tmp_path):
    sim = FakeSim(page_size=2, mark_returns_record=True)
    server, url = sim.serve()
    try:
        for _ in range(7):  # older noise before this run
            sim.riskd_request("/api/Position/partialCloseContract", 1, "CON.F.US.MNQ.Z26", {"size": 1})
        sim.react_after(0.03, lambda size: size > 2, "/api/Position/partialCloseContract", lambda size: {"size": 1})
        result = run_scenario(write(tmp_path, doc(RISKD_LIKE)), url)
        assert result.passed, result.failures[0].describe if result.failures else ""
        assert not any(path == "/sim/log" and "kind=mark" in path for _, path, _ in sim.calls)
    finally:
        server.shutdown()
        server.server_close()


def test_expect_error_accepts_a_refusal_and_an_unexpected_refusal_stops_the_run(fake, tmp_path):
    text = doc("""
- order: {account: trader, side: buy, size: 99, contract: MNQ, type: market}
  expect_error: maximum of 50
- can_trade: {account: trader, value: false}
- order: {account: trader, side: buy, size: 1, contract: MNQ, type: market}
- expect:
    position: {account: trader, contract: MNQ, size: 0}
""")
    result = run_scenario(write(tmp_path, text), fake.url)
    assert [r.status for r in result.steps] == ["ok", "ok", "error", "skipped"]
    assert result.steps[0].message == "refused as expected: size: 99 is over the account's maximum of 50"
    assert result.steps[2].message == "POST /sim/orders: HTTP 400: accountId: canTrade is false"


def test_expect_error_fails_when_the_call_succeeds(fake, tmp_path):
    result = run_scenario(
        write(tmp_path, doc("- set_price: {contract: MNQ, price: 1}\n  expect_error: true")), fake.url
    )
    assert result.steps[0].status == "error"
    assert "accepted it, but the step expects an error" in result.steps[0].message


def test_existing_accounts_are_found_by_name_or_id(fake, tmp_path):
    client = ControlClient(fake.url)
    acc = client.create_account("PRAC-1")
    text = (
        "name: t\naccounts:\n  a: {existing: PRAC-1}\n  b: {existing: %d}\n  c: {existing: NOPE}\nsteps:\n  - wait: {ms: 1}\n"
        % acc["id"]
    )
    result = run_scenario(write(tmp_path, text), fake.url)
    assert [r.status for r in result.setup] == ["ok", "ok", "ok", "error"]
    assert "no simulator account 'NOPE' (have: #" in result.setup[-1].message
    assert [r.status for r in result.steps] == ["skipped"]


def test_orders_and_account_expectations(fake, tmp_path):
    text = doc("""
- order: {account: trader, side: sell, size: 2, contract: MNQ, type: stop, stop: 20990}
- order: {account: trader, side: sell, size: 2, contract: MNQ, type: limit, limit: 21050}
- expect:
    orders: {account: trader, contract: MNQ, count: 2}
- expect:
    orders: {account: trader, type: stop, side: sell, stop: 20990, size: 2, count: 1}
- cancel: {account: trader, all: true, contract: MNQ}
- expect:
    orders: {account: trader, count: 0}
- can_trade: {account: trader, value: false}
- expect:
    account: {account: trader, can_trade: false, balance: 50000}
- expect:
    account: {account: trader, balance: 49000}
    within_ms: 100
""")
    result = run_scenario(write(tmp_path, text), fake.url)
    assert [r.status for r in result.steps] == ["ok"] * 8 + ["failed"]
    assert result.steps[4].message == "2 orders"
    assert result.steps[8].message.startswith("saw balance 50000 (last checked +1")


def test_unreachable_simulator_is_an_error_not_a_crash(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_scenario(TRADER_YAML, f"http://127.0.0.1:{port}")
    assert not result.passed
    assert result.setup[0].status == "error" and "no simulator at" in result.setup[0].message
    assert {r.status for r in result.steps} == {"skipped"}


def test_json_report_round_trips(fake):
    result = run_scenario(FAILING_YAML, fake.url)
    report = json.loads(json.dumps(result.to_dict()))
    assert report["passed"] is False and len(report["failures"]) == 1
    assert report["steps"][1]["detail"]["positions"][0]["size"] == 2


# ================================================================================================
# The command
# ================================================================================================


def invoke(*args: str) -> Any:
    return CliRunner().invoke(scenario_command, list(args), catch_exceptions=False)


def test_cli_progress_lines_and_exit_0(fake):
    out = invoke(str(TRADER_YAML), "--url", fake.url)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("scenario 'sim trader buys and sees the position'")
    assert any(
        re.fullmatch(r"   1/12 order trader buy 2 MNQ market \.\.\. ok order #\d+ \(\d+ ms\)", line) for line in lines
    ), lines
    assert lines[-1].startswith("PASSED sim trader buys and sees the position: 12 steps, 6/6 expectations held in ")


def test_cli_failure_exit_1_repeats_each_failure_at_the_end(fake):
    out = invoke(str(FAILING_YAML), "--url", fake.url)
    assert out.exit_code == 1
    assert (
        "FAILED step 2 expect position trader MNQ size +5 within 300 ms: saw size +2 @21000 (last checked +"
        in out.output
    )
    assert out.output.splitlines()[-1].startswith(
        "FAILED failing expectation is reported: 4 steps, 1/2 expectations held"
    )


def test_cli_quiet_prints_only_failures_and_summary(fake):
    out = invoke(str(TRADER_YAML), str(FAILING_YAML), "--url", fake.url, "--quiet")
    assert out.exit_code == 1
    lines = out.output.splitlines()
    assert (
        len(lines) == 3
        and lines[0].startswith("PASSED")
        and lines[1].startswith("FAILED step 2")
        and lines[2].startswith("FAILED")
    )


def test_cli_json(fake):
    out = invoke(str(FAILING_YAML), "--url", fake.url, "--json")
    assert out.exit_code == 1
    report = json.loads(out.output)
    assert report["passed"] is False
    assert report["scenarios"][0]["failures"][0].startswith("step 2 expect position trader MNQ size +5")


def test_cli_invalid_file_exits_2_with_the_error(tmp_path):
    out = CliRunner().invoke(
        scenario_command, [str(write(tmp_path, doc("- wait: {ms: -1}"))), "--url", "http://127.0.0.1:9"]
    )
    assert out.exit_code == 2
    assert "step 1 (wait, line 6): ms: must be at least 0, got -1" in out.output


def test_cli_check_needs_no_simulator():
    out = invoke("--check", str(TRADER_YAML), str(FAILING_YAML))
    assert out.exit_code == 0
    assert out.output.count("ok ") == 2


def test_cli_default_url_is_the_rest_of_gateway_sims():
    from gateway_sim import cli, scenario as scenario_module

    assert scenario_module.DEFAULT_URL == cli.DEFAULT_URL


def test_cli_without_a_simulator_exits_2_before_running_anything():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = CliRunner().invoke(scenario_command, [str(TRADER_YAML), "--url", f"http://127.0.0.1:{port}"])
    assert out.exit_code == 2
    assert f"gateway-sim scenario: no simulator at http://127.0.0.1:{port} (connection refused" in out.output


# ================================================================================================
# The real simulator
# ================================================================================================


# These run the simulator as its own process (tests/sim/conftest.py's session fixture) and the
# runner through the real command line, exactly as a black-box test of riskd would.

requires_server = pytest.mark.skipif(
    not (ROOT / "gateway_sim" / "server.py").exists(), reason="gateway_sim/server.py not written yet"
)


def gateway_sim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`gateway-sim ARGS` in a child process (as `python -m gateway_sim`, which needs no install)."""
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_SIM_URL"}
    env["PYTHONPATH"] = str(ROOT) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run(
        [PYTHON, "-m", "gateway_sim", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@requires_server
@pytest.mark.e2e
def test_real_simulator_trader_scenario_is_green_through_the_cli(sim_url):
    done = gateway_sim("scenario", str(TRADER_YAML), "--url", sim_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "12/12 expect no_request /api/Position/* for 200 ms after step 1 ... ok" in done.stdout
    assert done.stdout.splitlines()[-1].startswith(
        "PASSED sim trader buys and sees the position: 12 steps, 6/6 expectations held"
    )


@requires_server
@pytest.mark.e2e
def test_real_simulator_failing_scenario_is_red_with_what_was_seen(sim_url):
    done = gateway_sim("scenario", str(FAILING_YAML), "--url", sim_url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(
        r"^FAILED step 2 expect position trader MNQ size \+5 within 300 ms: saw size \+2 @21000 "
        r"\(last checked \+(3\d\d|[4-9]\d\d|\d{4}) ms\)$",
        done.stdout,
        flags=re.M,
    ), done.stdout


@requires_server
@pytest.mark.e2e
def test_real_simulator_json_report_and_marks_in_the_log(sim_url, control):
    done = gateway_sim("scenario", str(TRADER_YAML), "--url", sim_url, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    run_id = report["scenarios"][0]["run_id"]
    labels = [r["label"] for r in control.log(kind="mark")["records"] if f"run {run_id}" in str(r.get("label"))]
    assert len(labels) == 13 and labels[1].endswith("step 1: order trader buy 2 MNQ market [entry]")


class StandInRiskd(threading.Thread):
    """Plays riskd's part from outside the runner: watches one account through /sim/state and cuts
    any position over ``limit`` through the gateway's own REST API, as riskd's MaxContracts would."""

    def __init__(self, url: str, account_id: int, limit: int = 2) -> None:
        super().__init__(daemon=True)
        self.url, self.account_id, self.limit = url, account_id, limit
        self.control = ControlClient(url)
        self.stop = threading.Event()
        self.token = self.rest("/api/Auth/loginKey", {"userName": "riskd", "apiKey": "k"}, token=None)["token"]

    def rest(self, path: str, body: dict, token: str | None = "") -> dict:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token or self.token}"
        req = urllib.request.Request(self.url + path, json.dumps(body).encode(), headers, method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def run(self) -> None:
        while not self.stop.wait(0.01):
            for p in self.control.state(self.account_id)["positions"]:
                if p["size"] > self.limit:
                    self.rest(
                        "/api/Position/partialCloseContract",
                        {"accountId": self.account_id, "contractId": p["contractId"], "size": p["size"] - self.limit},
                    )


@requires_server
@pytest.mark.e2e
def test_real_simulator_judges_a_separate_process_acting_on_it(sim_url, account, tmp_path):
    """The black-box pattern: something else (riskd; here a stand-in) acts on the simulator while
    the runner, knowing nothing of it, judges what reached the simulator and when."""
    scenario_file = write(
        tmp_path,
        f"""
name: stand-in riskd cuts MNQ back to 2
accounts:
  trader: {{existing: {account['name']}}}
prices: {{MNQ: 21000}}
steps:
  - name: breach
    order: {{account: trader, side: buy, size: 3, contract: MNQ, type: market}}
  - expect:
      request: {{path: /api/Position/partialCloseContract, account: trader, contract: MNQ, body: {{size: 1}}, success: true}}
      after_step: breach
      within_ms: 1000
  - expect:
      position: {{account: trader, contract: MNQ, size: 2}}
  - expect:
      no_request: {{path: /api/Position/closeContract, account: trader}}
      after_step: breach
      for_ms: 300
  - close: {{account: trader, contract: MNQ}}
""",
    )
    riskd = StandInRiskd(sim_url, account["id"])
    riskd.start()
    try:
        done = gateway_sim("scenario", str(scenario_file), "--url", sim_url)
    finally:
        riskd.stop.set()
        riskd.join(5)
    assert done.returncode == 0, done.stdout + done.stderr
    latency = re.search(r"2/5 expect request .* \.\.\. ok \+(\d+) ms", done.stdout)
    assert latency and int(latency.group(1)) < 1000, done.stdout
