"""Bad input: generated gateway payloads through the parse layer and the reducer, malformed
config files through `riskd config validate`, malformed admin messages to a live Supervisor.
The result must be a clear error, the daemon alive, no state corrupted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from risk_actors.broker import parse as p
from risk_actors.state import AccountState, reduce, state_from_dict, state_to_dict
from tests.faults.conftest import LONG, MAX5, ROOT_DIR, wait_for, write_config

EXAMPLES = 10_000 if LONG else 300
UTC = timezone.utc
ACC = 1001

# -- 1. generated gateway payloads --------------------------------------------------------------
weird = (st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70)
         | st.floats() | st.just(float("nan")) | st.just(float("inf")) | st.just(1e308)
         | st.text(max_size=20) | st.just("") | st.lists(st.integers(), max_size=3)
         | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
stamp = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                     timezones=st.just(UTC)).map(lambda d: d.isoformat())
contract = st.sampled_from(["CON.F.US.MNQ.Z26", "CON.F.US.EP.Z26", "CON.F.US.X.Z26", "", "?"])
FIELDS = {
    "position_update": {"id": st.integers(0, 10**6), "accountId": st.just(ACC),
                        "contractId": contract, "creationTimestamp": stamp,
                        "type": st.sampled_from([1, 2, 0, 3, 99]), "size": st.integers(0, 50),
                        "averagePrice": st.floats(1, 30000)},
    "order_update": {"id": st.integers(0, 10**6), "accountId": st.just(ACC),
                     "contractId": contract, "symbolId": st.just("F.US.MNQ"),
                     "creationTimestamp": stamp, "updateTimestamp": stamp,
                     "status": st.integers(-1, 9), "type": st.integers(-1, 9),
                     "side": st.integers(-1, 3), "size": st.integers(0, 50),
                     "limitPrice": st.none() | st.floats(1, 30000),
                     "stopPrice": st.none() | st.floats(1, 30000),
                     "fillVolume": st.integers(0, 50), "filledPrice": st.none() | st.floats(1, 3e4),
                     "customTag": st.none() | st.text(max_size=10)},
    "trade_execution": {"id": st.integers(0, 10**6), "accountId": st.just(ACC),
                        "contractId": contract, "creationTimestamp": stamp,
                        "price": st.floats(1, 30000),
                        "profitAndLoss": st.none() | st.floats(-1e4, 1e4),
                        "fees": st.floats(0, 10), "side": st.integers(0, 1),
                        "size": st.integers(1, 50),
                        "voided": st.booleans(), "orderId": st.integers(0, 10**6)},
    "account_update": {"id": st.just(ACC), "name": st.text(max_size=10),
                       "balance": st.floats(-1e6, 1e6), "canTrade": st.booleans()},
}


@st.composite
def gateway_payloads(draw):
    callback = draw(st.sampled_from(sorted(FIELDS)))
    item = {k: draw(s) for k, s in FIELDS[callback].items()}
    for _ in range(draw(st.integers(0, 3))):           # corrupt 0-3 fields
        key = draw(st.sampled_from(sorted(item)))
        action = draw(st.sampled_from(["drop", "replace", "rename"]))
        if action == "drop":
            item.pop(key, None)
        elif action == "replace":
            item[key] = draw(weird)
        else:
            item[key.upper()] = item.pop(key, None)
    form = draw(st.sampled_from(["bare", "wrapped", "list", "wrapped-list", "junk-wrapper"]))
    payload = {"bare": item, "wrapped": {"action": draw(st.integers(0, 2)), "data": item},
               "list": [item, item], "wrapped-list": [{"action": 1, "data": item}],
               "junk-wrapper": {"action": draw(weird), "data": draw(weird)}}[form]
    return callback, payload


def _finite(obj) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_finite(v) for v in obj)
    return True


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(gateway_payloads())
def test_generated_gateway_payloads_rejected_cleanly_or_applied_without_corrupting_state(case):
    """Parse raises only PayloadError (logged and dropped by the session); what parses applies
    to the state with the real reducer and the state still serializes to finite JSON and back."""
    callback, payload = case
    now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    state = AccountState(ACC, name="fuzz")
    events = []
    try:
        for ev in p.parse_user_event(callback, json.loads(json.dumps(payload, allow_nan=True))):
            events.append(ev)
    except p.PayloadError as exc:
        assert str(exc)  # a message to log
    for ev in events:
        state = reduce(state, ev, now)
    data = state_to_dict(state)
    text = json.dumps(data, default=str)
    assert _finite(json.loads(text)), "a non-finite number reached the persisted state"
    assert state_from_dict(json.loads(text)).account_id == ACC


# -- 2. malformed config files and migration edge cases ---------------------------------------
class _Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _validate(path: Path, env: dict | None = None) -> _Result:
    """`riskd config validate --config PATH`, in-process through click (a crash shows as a
    Traceback in the output, as it would on the terminal)."""
    import traceback
    from click.testing import CliRunner
    from risk_actors.cli.admin import main
    result = CliRunner().invoke(main, ["config", "validate", "--config", str(path)], env=env)
    out = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        out += "Traceback\n" + "".join(traceback.format_exception(result.exception))
    return _Result(result.exit_code, out, "")


def _base(tmp_path) -> dict:
    return yaml.safe_load(write_config(tmp_path, "http://127.0.0.1:9", ACC, MAX5).read_text())


CONFIG_CASES = {
    "not yaml": lambda b: "version: 2\nrules: [unclosed\n",
    "empty file": lambda b: "",
    "binary garbage": lambda b: "\x00\x01\x02\xff\xfe",
    "top level is a list": lambda b: "- 1\n- 2\n",
    "unknown version": lambda b: yaml.safe_dump({**b, "version": 99}),
    "version is a string": lambda b: yaml.safe_dump({**b, "version": "two"}),
    "negative limit": lambda b: yaml.safe_dump(
        {**b, "rules": {"max_contracts": {"enabled": True, "limit": -3}}}),
    "limit is text": lambda b: yaml.safe_dump(
        {**b, "rules": {"max_contracts": {"enabled": True, "limit": "five"}}}),
    "unknown rule key": lambda b: yaml.safe_dump(
        {**b, "rules": {"max_contracts": {"enabled": True, "limit": 5, "limt": 4}}}),
    "unknown rule": lambda b: yaml.safe_dump({**b, "rules": {"no_such_rule": {"enabled": True}}}),
    "accounts not a list": lambda b: yaml.safe_dump({**b, "accounts": "E2E"}),
    "huge admin port": lambda b: yaml.safe_dump({**b, "daemon": {**b["daemon"],
                                                               "admin_port": 10**9}}),
    "reset time nonsense": lambda b: yaml.safe_dump(
        {**b, "timers": {"daily_reset": {"time": "25:99", "timezone": "Mars/Olympus"}}}),
    "duplicate key": lambda b: "version: 2\nversion: 2\n" + yaml.safe_dump(
        {k: v for k, v in b.items() if k != "version"}),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_malformed_config_refused_with_a_clear_error_and_no_traceback(tmp_path, case):
    path = tmp_path / "riskd.yaml"
    text = CONFIG_CASES[case](_base(tmp_path))
    path.write_bytes(text.encode("latin-1") if case == "binary garbage" else text.encode())
    result = _validate(path)
    out = result.stdout + result.stderr
    assert result.returncode != 0, f"{case}: accepted: {out}"
    assert "Traceback" not in out, f"{case}: crashed instead of a clear error:\n{out}"
    assert str(path.name) in out or "riskd.yaml" in out, f"{case}: error names no file: {out}"


def test_version_1_layout_migrates_on_validate(tmp_path):
    import shutil
    src = ROOT_DIR / "tests" / "unit" / "fixtures" / "config_v1"
    shutil.copytree(src, tmp_path / "v1")
    result = _validate(tmp_path / "v1", {"PROJECT_X_USERNAME": "u", "PROJECT_X_API_KEY": "k"})
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 0 and "migrated" in result.stdout, result.stdout + result.stderr


# -- 3. malformed admin messages to a live daemon ----------------------------------------------
ADMIN_GARBAGE = textwrap.dedent("""
    import sys
    from risk_actors import daemon, messages as m
    port = int(sys.argv[1])
    asys = daemon.connect(port)
    sup = daemon.supervisor(asys)
    replies = []
    for msg in [m.AdminRequest("reload", args="garbage"), m.AdminRequest("reload", args=[1, 2]),
                m.AdminRequest(None), m.AdminRequest("x" * 100000, args={"a": object}),
                m.AdminRequest("shutdown", args={"hash": 5}, proof=None, nonce=7),
                m.AdminRequest("config_summary", args=None)]:
        r = asys.ask(sup, msg, 5)
        text = str(getattr(r, "message", r))[:80]
        replies.append((type(r).__name__, getattr(r, "ok", None), text))
    for junk in [{"command": "shutdown"}, "shutdown", 12345, None.__class__, b"\\x00" * 1000,
                 Exception("boom")]:
        asys.tell(sup, junk)
    r = asys.ask(sup, m.AdminRequest("ping"), 5)
    replies.append(("ping", getattr(r, "ok", None), getattr(r, "message", repr(r))))
    for x in replies:
        print(x)
""")


def test_malformed_admin_messages_get_clear_errors_and_daemon_keeps_enforcing(
        sim, riskd_factory, tmp_path):
    import os
    acc = sim.control.create_account("E2E", balance=50000.0)
    account_id = acc["id"]
    sim.control.set_price("MNQ", 21000)
    config = write_config(tmp_path, sim.url, account_id, MAX5)
    # a password is set, so garbage reaches the argument handling behind the proof check
    env = {**os.environ, "RISKD_NEW_ADMIN_PASSWORD": "fault-pw"}
    assert subprocess.run([sys.executable, "-m", "risk_actors.cli.admin", "passwd", "--config",
                           str(config)], env=env, capture_output=True, timeout=60).returncode == 0
    daemon = riskd_factory(config)
    daemon.wait_connected(account_id)
    port = yaml.safe_load(daemon.config.read_text())["daemon"]["admin_port"]
    result = subprocess.run([sys.executable, "-c", ADMIN_GARBAGE, str(port)], capture_output=True,
                            text=True, timeout=90, cwd=ROOT_DIR)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stderr[-3000:]
    assert lines[-1] == "('ping', True, 'pong')", result.stdout
    for line in lines[:-2]:  # (the last two: config_summary with args=None is fine, and ping)
        assert "AdminReply" in line and "False" in line, f"not a clear refusal: {line}"
    assert daemon.proc.poll() is None
    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 5, "still enforcing")
    from tests.faults.conftest import audit_ok
    audit_ok(tmp_path / "state")
