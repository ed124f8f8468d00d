"""Fault: the SQLite state file is corrupt when the daemon starts, or unwritable while it runs.

What riskd does with a corrupt file (risk_actors/db.py ``open_checked``): refusing to start would
leave the account without any enforcement and starting silently empty would forget the locks, so
it moves the file aside (kept for forensics), starts with a fresh file plus what it can salvage
from the old one (locks, the day's trades), rebuilds positions and the day's trades/P&L from the
broker over REST, writes an audit row, logs a CRITICAL alert and shows the notice in
``riskd status``. The tests check all of that against real processes, and that the limit is
enforced afterwards.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.faults.conftest import audit, audit_ok, calls, setup_account, wait_for

pytestmark = pytest.mark.e2e
PARTIAL = "/api/Position/partialCloseContract"


def _garbage(p: Path) -> None:
    p.write_bytes(os.urandom(p.stat().st_size))


def _truncated(p: Path) -> None:
    os.truncate(p, p.stat().st_size // 3)


def _empty(p: Path) -> None:
    os.truncate(p, 0)


def _bad_page(p: Path) -> None:
    """One page in the middle overwritten (header and the other pages intact)."""
    size = p.stat().st_size
    page = 4096
    with open(p, "r+b") as fh:
        fh.seek(max(page, (size // page // 2) * page))
        fh.write(os.urandom(page))


CORRUPTIONS = {"garbage": _garbage, "bad page": _bad_page, "truncated": _truncated,
               "empty": _empty}


def _lose_20(sim, account_id):
    sim.control.place_order(account_id, "MNQ", "market", "buy", 1)
    sim.control.set_price("MNQ", 20990)
    sim.control.place_order(account_id, "MNQ", "market", "sell", 1)
    sim.control.set_price("MNQ", 21000)


def _log_text(state_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in (state_dir / "logs").glob("*.log*"))


@pytest.mark.parametrize("how", [
    "bad page", pytest.param("garbage", marks=pytest.mark.slow),
    pytest.param("truncated", marks=pytest.mark.slow), pytest.param("empty", marks=pytest.mark.slow)])
def test_corrupt_state_file_at_start_moved_aside_rebuilt_from_broker_alerted_and_enforcing(
        sim, riskd_factory, tmp_path, how):
    state_dir = tmp_path / "state"
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    _lose_20(sim, account_id)
    sim.control.place_order(account_id, "MNQ", "market", "buy", 3)
    wait_for(lambda: (a := daemon.account(account_id)) and a["realized_pnl"] == -20.0
             and a["positions"] and a, 10, "P&L -20 and a position of 3 recorded")
    daemon.stop()
    db = state_dir / "riskd.sqlite"
    assert db.exists() and db.stat().st_size > 0
    CORRUPTIONS[how](db)
    corrupt_bytes = db.read_bytes()

    t0 = time.monotonic()
    restarted = riskd_factory(daemon.config)
    acc = restarted.wait_connected(account_id)
    up = time.monotonic() - t0
    # state rebuilt from the broker: the position and the day's P&L
    acc = wait_for(lambda: (a := restarted.account(account_id)) and a["realized_pnl"] == -20.0
                   and a["positions"] and a, 15, "P&L and position re-read from the broker")
    assert [p["size"] if isinstance(p, dict) else p[1] for p in acc["positions"]] == [3], acc
    # the corrupt file kept, byte for byte, for forensics
    kept = sorted(state_dir.glob("riskd.sqlite.corrupt-*"))
    kept = [k for k in kept if not k.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and kept[0].read_bytes() == corrupt_bytes
    # shown, alerted, audited
    detail = restarted.status()["daemon"]["detail"]
    assert "CRITICAL" in detail and "corrupt" in detail and kept[0].name in detail, detail
    assert "state database was corrupt" in _log_text(state_dir)
    rows = audit(state_dir, kind="daemon")
    assert any(r.detail.get("event") == "corrupt_state_file_recovered" for r in rows), rows
    audit_ok(state_dir)
    # and enforcing: 3 + 3 = 6 > 5 -> reduced to exactly 5
    since = sim.control.log()["next"]
    t1 = time.monotonic()
    sim.control.place_order(account_id, "MNQ", "market", "buy", 3)
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 10, "MNQ reduced to 5", interval=0.02)
    delay = time.monotonic() - t1
    time.sleep(0.5)
    assert sim.position(account_id, "MNQ") == 5
    assert len(calls(sim, PARTIAL, since)) == 1
    print(f"corrupt db ({how}): up and connected {up:.2f}s after start; next violation "
          f"enforced in {delay:.2f}s")


def test_corrupt_page_salvages_locks_into_the_fresh_file(tmp_path):
    """No processes: a lock in a file with one bad page survives the move-aside (salvage)."""
    from risk_actors import state as st
    from risk_actors.db import Database, open_checked
    now = datetime.now(timezone.utc)
    path = tmp_path / "riskd.sqlite"
    lock = st.Lockout(rule="daily_loss", kind="account", reason="loss limit", started_at=now,
                      expires_at=None, scope="account", symbol=None, until_reset=True)
    with Database(path, migrate=True, now=now) as db:
        db.snapshot(7, 3, st.AccountState(7, name="x", lockouts=(lock,)), now)
        for i in range(150):  # grow the file so a middle page is not the snapshot's
            db.audit("daemon", 7, None, {"i": i, "pad": "x" * 500}, now)
    _bad_page(path)
    db, rec = open_checked(path, now)
    with db:
        assert rec is not None and rec.salvaged == (7,), rec
        state, _ = db.load(7)
        assert state.lockouts == (lock,)
        assert db.verify_audit() is None


@contextmanager
def _unwritable(state_dir: Path, how: str):
    """Make the running daemon's state file refuse writes; undo on exit.

    ``read-only``: chmod (or ``chattr +i`` when running as root, which ignores modes): writes
    fail with an I/O / read-only error. ``locked``: another process holds an EXCLUSIVE lock
    (a stuck backup, an admin's sqlite3 shell): writers wait their busy timeout, then fail.
    """
    files = [state_dir / n for n in ("riskd.sqlite", "riskd.sqlite-wal")]
    if how == "locked":
        conn = sqlite3.connect(str(state_dir / "riskd.sqlite"), timeout=5, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    if os.geteuid() == 0:
        import subprocess
        if subprocess.run(["chattr", "+i", *map(str, files)], capture_output=True).returncode:
            pytest.skip("root, and chattr +i unavailable")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", *map(str, files)], capture_output=True)
        return
    saved = {f: f.stat().st_mode for f in files if f.exists()}
    try:
        for f in saved:
            f.chmod(stat.S_IRUSR | stat.S_IRGRP)
        yield
    finally:
        for f, mode in saved.items():
            f.chmod(mode)


@pytest.mark.parametrize("how", ["read-only", "locked"])
def test_state_file_unwritable_at_run_time_still_enforces_and_reports(sim, riskd_factory,
                                                                      tmp_path, how):
    """Disk trouble while the daemon runs: enforcement must not wait for the journal, and the
    failed write is reported (log + critical alert)."""
    state_dir = tmp_path / "state"
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    time.sleep(1.0)  # let start-up writes settle
    log = lambda: _log_text(state_dir) + daemon.output()  # noqa: E731
    with _unwritable(state_dir, how):
        since = sim.control.log()["next"]
        t0 = time.monotonic()
        sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
        wait_for(lambda: sim.position(account_id, "MNQ") == 5, 30, "MNQ reduced to 5",
                 interval=0.02)
        delay = time.monotonic() - t0
        time.sleep(0.5)
        assert sim.position(account_id, "MNQ") == 5
        assert len(calls(sim, PARTIAL, since)) == 1
        wait_for(lambda: "journal write failed" in log(), 15,
                 "the failed write reported in the log", interval=0.3)
    assert daemon.status() is not None
    # writable again: the state written afterwards is whole (the missed changes are covered)
    sim.control.place_order(account_id, "MNQ", "market", "sell", 1)
    wait_for(lambda: (a := daemon.account(account_id)) and a["positions"]
             and a["positions"][0]["size"] == 4, 10, "position 4 seen")
    time.sleep(1.0)
    daemon.stop()
    from risk_actors.db import Database
    with Database(str(state_dir / "riskd.sqlite"), migrate=False) as db:
        saved = db.load(account_id)[0]
    sizes = [p.size for p in saved.positions.values()] if isinstance(saved.positions, dict) \
        else [p.size for p in saved.positions]
    assert sizes == [4], saved.positions
    audit_ok(state_dir)
    print(f"db {how}: enforced in {delay:.2f}s; failure reported in the log")
