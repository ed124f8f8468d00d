"""Tests of the SQLite layer (risk_actors/db.py) and the Store actor (risk_actors/store.py).

Real files in tmp_path; crash and concurrency tests run writers in child processes that
kill -9 themselves, because that is the failure the journal exists for.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest
from thespian.actors import ActorExitRequest, ActorSystem

from risk_actors import db as dbm
from risk_actors import messages as m
from risk_actors import state as st
from risk_actors import store

T0 = datetime(2025, 3, 3, 14, 30, tzinfo=timezone.utc)
ACCT = 536
MNQ = "CON.F.US.MNQ.H25"
ES = "CON.F.US.EP.H25"


def changes_for(account: int, n: int, start: datetime = T0) -> list[tuple[object, datetime]]:
    """A deterministic trading day: positions, orders, fills, locks, memory, a reset, ticks."""
    out: list[tuple[object, datetime]] = []
    for i in range(n):
        at = start + timedelta(seconds=5 * i)
        k = i % 11
        if k == 0:
            ch = m.PositionEvent(account, MNQ if i % 2 else ES, size=i % 4, average_price=100 + i)
        elif k == 1:
            ch = m.TradeEvent(account, 1000 + i, MNQ, at, 100.25, pnl=-12.5 * (i % 3) or None,
                              fees=0.37, side=m.SIDE_SELL, size=1)
        elif k == 2:
            ch = m.OrderEvent(account, 50 + i % 5, MNQ, status=m.STATUS_OPEN if i % 3 else 2,
                              type=m.ORDER_STOP, side=m.SIDE_SELL, size=1, stop_price=99.5)
        elif k == 3:
            ch = st.LocksAdded("trade_frequency_limit", (m.Lock(
                m.LOCK_COOLDOWN, f"too many trades {i}", at + timedelta(seconds=30)),))
        elif k == 4:
            ch = st.RuleMemorySet("no_stop_loss_grace", {"deadline_s": i, "ids": [i, i + 1]})
        elif k == 5:
            ch = m.AccountEvent(account, "PRAC-V2-1", balance=50_000 - i, can_trade=bool(i % 2))
        elif k == 6:
            ch = m.QuoteEvent(MNQ, last_price=100 + i / 4)
        elif k == 7:
            ch = st.LocksAdded("daily_realized_loss", (m.Lock(
                m.LOCK_HARD, "daily loss", at + timedelta(hours=3), until_reset=True),))
        elif k == 8:
            ch = m.TradeEvent(account, 1000 + i - 7, MNQ, at, 100.0, pnl=-3.0, fees=0.37,
                              side=m.SIDE_BUY, size=1, voided=True)
        elif k == 9:
            ch = (st.DailyReset(at, at + timedelta(days=1)) if i % 3 == 0
                  else st.LocksAdded("symbol_blocks", (m.Lock(m.LOCK_SYMBOL, "blocked", None,
                                                              scope="symbol", symbol="rty"),)))
        else:
            ch = m.Tick(account)
        out.append((ch, at))
    return out


def record_all(db: dbm.Database, account: int, changes, state: st.AccountState | None = None,
               first_seq: int = 1) -> st.AccountState:
    state = state or st.AccountState(account)
    for seq, (ch, at) in enumerate(changes, first_seq):
        state = st.reduce(state, ch, at)
        db.record(account, seq, ch, state, at)
    return state


def expected(account: int, changes, last_seq: int) -> st.AccountState:
    state = st.reduce_all(st.AccountState(account), changes)
    return attrs.evolve(state, quotes={}, last_seq=last_seq)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "riskd.db"


@pytest.fixture
def db(path: Path):
    with dbm.Database(path, snapshot_every=5) as d:
        yield d


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# ---------------------------------------------------------------------------------------------
# opening, pragmas
def test_open_sets_wal_normal_busy_timeout_and_version(db: dbm.Database) -> None:
    conn = db._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert db.version == len(dbm.MIGRATIONS) == 1


def test_synchronous_off_is_refused(path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        dbm.Database(path, synchronous="OFF")


def test_timestamps_are_one_sortable_utc_format() -> None:
    est = timezone(timedelta(hours=-5))
    assert dbm.iso(datetime(2025, 1, 1, 9, 0, tzinfo=est)) == "2025-01-01T14:00:00.000000+00:00"
    assert dbm.iso(datetime(2025, 1, 1, 9, 0)) == "2025-01-01T09:00:00.000000+00:00"
    assert dbm.parse_iso("2025-01-01T14:00:00.000000+00:00") == datetime(
        2025, 1, 1, 14, tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------------
# journal, snapshot, derived tables
def test_load_unknown_account(db: dbm.Database) -> None:
    assert db.load(42) == (None, 0)
    assert db.latest_state(42) is None


def test_record_then_load_equals_reducer(db: dbm.Database) -> None:
    changes = changes_for(ACCT, 60)
    final = record_all(db, ACCT, changes)
    errors: list = []
    state, last_seq = db.load(ACCT, errors)
    assert (state, last_seq, errors) == (expected(ACCT, changes, 60), 60, [])
    assert state == attrs.evolve(final, quotes={}, last_seq=60)
    # snapshot_every=5: the journal holds at most the rows since the last snapshot.
    assert db._conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] < 5


def test_derived_tables_mirror_state(db: dbm.Database) -> None:
    changes = changes_for(ACCT, 30)  # includes a DailyReset at i=9 and locks after it
    final = record_all(db, ACCT, changes)
    now = changes[-1][1]
    assert db.active_lockouts(ACCT, now) == list(final.active_lockouts(now))
    rows = db._conn.execute("SELECT trade_id, pnl, fees, voided FROM trades WHERE account_id=?",
                            (ACCT,)).fetchall()
    assert sorted(rows) == sorted((t.trade_id, t.pnl, t.fees, int(t.voided))
                                  for t in final.trades.values())
    today = db.daily_pnl(ACCT)
    assert today[0].day_start == final.last_reset_at
    assert (today[0].realized, today[0].fees, today[0].net) == (
        final.realized_pnl, final.fees_total, final.net_realized())
    assert len(today) == 2  # the day before the reset is kept as history
    assert db.accounts() == [dbm.AccountRow(ACCT, "PRAC-V2-1", 30, now)]


def test_active_lockouts_filters_expired(db: dbm.Database) -> None:
    s0 = st.AccountState(ACCT)
    cool = st.LocksAdded("cooldown_after_loss", (m.Lock(m.LOCK_COOLDOWN, "cool",
                                                        T0 + timedelta(seconds=60)),))
    auth = st.LocksAdded("auth_loss_guard", (m.Lock(m.LOCK_INDEFINITE, "canTrade false", None),))
    s1 = st.reduce(st.reduce(s0, cool, T0), auth, T0)
    db.record(ACCT, 1, cool, st.reduce(s0, cool, T0), T0)
    db.record(ACCT, 2, auth, s1, T0)
    assert len(db.active_lockouts(ACCT, T0 + timedelta(seconds=59))) == 2
    only = db.active_lockouts(ACCT, T0 + timedelta(seconds=60))
    assert [lk.kind for lk in only] == [m.LOCK_INDEFINITE]


def test_shared_seq_and_manual_snapshot(db: dbm.Database) -> None:
    """Several changes of one event share its seq; replay order is record order, not seq."""
    pos = m.PositionEvent(ACCT, MNQ, 3)
    lock = st.LocksAdded("max_contracts", (m.Lock(m.LOCK_HARD, "x", T0 + timedelta(hours=1)),))
    s1 = st.reduce(st.AccountState(ACCT), pos, T0)
    db.record(ACCT, 7, pos, s1, T0)
    db.snapshot(ACCT, 7, s1, T0)
    s2 = st.reduce(s1, lock, T0)
    db.record(ACCT, 7, lock, s2, T0)  # same seq after the snapshot: still replayed
    assert db.load(ACCT) == (attrs.evolve(s2, last_seq=7), 7)
    db.snapshot(ACCT, 7, s2, T0)
    assert db._conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 0
    assert db.load(ACCT) == (attrs.evolve(s2, last_seq=7), 7)


def test_reopen_continues_snapshot_cadence_and_derived_tables(path: Path) -> None:
    changes = changes_for(ACCT, 40)
    with dbm.Database(path, snapshot_every=7) as d:
        mid = record_all(d, ACCT, changes[:23])
    with dbm.Database(path, snapshot_every=7) as d:  # fresh caches in a new "process"
        final = record_all(d, ACCT, changes[23:], mid, first_seq=24)
        assert d.load(ACCT) == (expected(ACCT, changes, 40), 40)
        assert d.active_lockouts(ACCT, changes[-1][1]) == list(
            final.active_lockouts(changes[-1][1]))
        n = d._conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
        assert n == 40 % 7  # 23 = 3*7+2 rows, then 17 more: snapshots at 28 and 35


def test_failed_record_rolls_back_and_caches_recover(db: dbm.Database, monkeypatch) -> None:
    changes = changes_for(ACCT, 12)
    state = record_all(db, ACCT, changes[:7])
    ch, at = changes[7]  # the daily-loss lock
    assert isinstance(ch, st.LocksAdded)
    real = db._sync_derived

    def boom(*a, **k):
        real(*a, **k)  # the cache now describes rows the rollback will undo
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(db, "_sync_derived", boom)
    with pytest.raises(sqlite3.OperationalError):
        db.record(ACCT, 8, ch, st.reduce(state, ch, at), at)
    monkeypatch.undo()
    assert db.load(ACCT)[1] == 7  # nothing of seq 8 committed
    assert [lk.rule for lk in db.active_lockouts(ACCT, at)] == ["trade_frequency_limit"]
    state = record_all(db, ACCT, changes[7:9], state, first_seq=8)  # the actor retries
    assert {lk.rule for lk in db.active_lockouts(ACCT, at)} == {"trade_frequency_limit",
                                                                 "daily_realized_loss"}
    assert db.active_lockouts(ACCT, at) == list(state.active_lockouts(at))
    record_all(db, ACCT, changes[9:], state, first_seq=10)
    assert db.load(ACCT) == (expected(ACCT, changes, 12), 12)


def test_corrupt_journal_rows_are_reported_and_skipped(path: Path) -> None:
    changes = changes_for(ACCT, 8)
    with dbm.Database(path, snapshot_every=100) as d:
        record_all(d, ACCT, changes)
    with raw(path) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM journal ORDER BY id")]
        conn.execute("UPDATE journal SET change = '{not json' WHERE id = ?", (ids[2],))
        conn.execute("UPDATE journal SET change = ? WHERE id = ?",
                     (json.dumps({"type": "Nope", "data": {}}), ids[5]))
        conn.execute("UPDATE journal SET change = ? WHERE id = ?",  # right type, bad fields
                     (json.dumps({"type": "PositionEvent", "data": {"size": "x"}}), ids[6]))
    errors: list[dbm.CorruptRow] = []
    with dbm.Database(path) as d:
        state, last_seq = d.load(ACCT, errors)
    assert [(e.table, e.row_id, e.seq) for e in errors] == [
        ("journal", ids[2], 3), ("journal", ids[5], 6), ("journal", ids[6], 7)]
    kept = [c for i, c in enumerate(changes) if i not in (2, 5, 6)]
    assert (state, last_seq) == (expected(ACCT, kept, 8), 8)


def test_corrupt_snapshot_falls_back_to_derived_tables(path: Path) -> None:
    changes = changes_for(ACCT, 25)
    with dbm.Database(path, snapshot_every=4) as d:
        final = record_all(d, ACCT, changes)
    with raw(path) as conn:
        conn.execute("UPDATE snapshots SET state = '{\"account_id\": \"x\"}'")
    errors: list[dbm.CorruptRow] = []
    with dbm.Database(path) as d:
        state, last_seq = d.load(ACCT, errors)
    assert [e.table for e in errors] == ["snapshots"]
    assert last_seq == 25
    # No lock and no trade of the day is lost; the rest comes back from the broker (REST).
    assert set(state.lockouts) == set(final.lockouts)
    assert state.trades == {k: attrs.evolve(t, order_id=None) for k, t in final.trades.items()}
    assert state.last_reset_at == final.last_reset_at


# ---------------------------------------------------------------------------------------------
# kill -9 and concurrency (child processes)
CHILD = r'''
import json, os, signal, sys, time
from datetime import datetime
from risk_actors import db as dbm, state as st

path, account, changes_file, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
changes = [(st.change_from_dict(c), datetime.fromisoformat(at))
           for c, at in json.load(open(changes_file))]
db = dbm.Database(path, migrate=False, snapshot_every=7)
if mode == "concurrent":
    go = sys.argv[5]
    while not os.path.exists(go):  # start together with the other writer
        time.sleep(0.001)
state = st.AccountState(account)
for seq, (ch, at) in enumerate(changes, 1):
    state = st.reduce(state, ch, at)
    db.record(account, seq, ch, state, at)
    if mode == "concurrent":
        db.audit("verdict", account, "r", {"seq": seq}, at)
if mode == "kill":
    # A transaction in flight when the process dies must vanish, and leave no lock behind.
    db._conn.execute("BEGIN IMMEDIATE")
    db._conn.execute("INSERT INTO journal (account_id, seq, at, change) VALUES (?, ?, ?, ?)",
                     (account, 999, "2025-01-01T00:00:00+00:00", "{}"))
    os.kill(os.getpid(), signal.SIGKILL)
'''


def _child(tmp_path: Path, path: Path, account: int, changes, mode: str, *extra: str):
    cfile = tmp_path / f"changes-{account}.json"
    cfile.write_text(json.dumps([(st.change_to_dict(c), at.isoformat()) for c, at in changes]))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.Popen([sys.executable, str(script), str(path), str(account), str(cfile),
                             mode, *extra], stderr=subprocess.PIPE)


def test_kill9_right_after_commit_loses_nothing(tmp_path: Path, path: Path) -> None:
    dbm.Database(path).close()  # the Store migrates; the account process opens migrate=False
    changes = changes_for(ACCT, 45)
    proc = _child(tmp_path, path, ACCT, changes, "kill")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    with dbm.Database(path) as d:
        errors: list = []
        assert d.load(ACCT, errors) == (expected(ACCT, changes, 45), 45)
        assert errors == []
        d.meta_set("after_crash", True)  # the dead writer left no lock on the file
        assert d._conn.execute("SELECT COUNT(*) FROM journal WHERE seq = 999").fetchone()[0] == 0


def test_concurrent_writers_lose_nothing(tmp_path: Path, path: Path) -> None:
    dbm.Database(path).close()
    go = tmp_path / "go"
    a, b = changes_for(1, 250), changes_for(2, 250, T0 + timedelta(milliseconds=1))
    procs = [_child(tmp_path, path, 1, a, "concurrent", str(go)),
             _child(tmp_path, path, 2, b, "concurrent", str(go))]
    time.sleep(0.3)  # both children are importing/opening; then start them at once
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    with dbm.Database(path) as d:
        assert d.load(1) == (expected(1, a, 250), 250)
        assert d.load(2) == (expected(2, b, 250), 250)
        assert d._conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 500
        assert d.verify_audit() is None  # two appenders, one linear chain
        per = d._conn.execute("SELECT account_id, COUNT(*) FROM audit GROUP BY account_id")
        assert dict(per.fetchall()) == {1: 250, 2: 250}


def test_writer_waits_for_the_lock_instead_of_failing(path: Path, db: dbm.Database) -> None:
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, lambda: other.execute("COMMIT")).start()
    t = time.monotonic()
    db.audit("daemon", None, None, {"event": "start"}, T0)  # blocks ~0.3 s, then succeeds
    assert time.monotonic() - t >= 0.25
    other.close()
    assert db.verify_audit() is None


# ---------------------------------------------------------------------------------------------
# audit chain
def _audit_some(db: dbm.Database, n: int = 6) -> None:
    kinds = sorted(dbm.AUDIT_KINDS)
    for i in range(n):
        db.audit(kinds[i % len(kinds)], ACCT if i % 2 else None, "r" if i % 3 else None,
                 {"i": i, "at": T0 + timedelta(seconds=i), "action": m.ClosePosition(MNQ)},
                 T0 + timedelta(seconds=i))


def _tamper(path: Path, *sql: str | tuple) -> None:
    with raw(path) as conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_no_update")  # an attacker with raw access
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        for s in sql:
            conn.execute(*((s,) if isinstance(s, str) else s))


def test_audit_chain_verifies_and_queries(db: dbm.Database) -> None:
    _audit_some(db)
    assert db.verify_audit() is None
    rows = db.audit_rows()
    assert [r.id for r in rows] == [6, 5, 4, 3, 2, 1]
    assert rows[-1].prev_hash == dbm.GENESIS_HASH and rows[-2].prev_hash == rows[-1].hash
    assert rows[0].detail["action"] == {"type": "ClosePosition", "contract_id": MNQ}
    assert [r.id for r in db.audit_rows(account_id=ACCT)] == [6, 4, 2]
    assert [r.id for r in db.audit_rows(since=T0 + timedelta(seconds=4), newest_first=False)
            ] == [5, 6]
    assert [r.id for r in db.audit_rows(limit=2)] == [6, 5]
    assert db.audit_rows(kind=rows[0].kind)[0].id == 6


def test_audit_is_append_only_for_the_application(path: Path, db: dbm.Database) -> None:
    _audit_some(db, 2)
    with raw(path) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit SET detail = '{}' WHERE id = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit WHERE id = 1")


@pytest.mark.parametrize("sql, bad_row, why", [
    ("UPDATE audit SET detail = '{\"i\":99}' WHERE id = 3", 3, "edited"),
    ("UPDATE audit SET kind = 'admin' WHERE id = 5", 5, "edited"),
    ("DELETE FROM audit WHERE id = 3", 4, "missing"),
    ("DELETE FROM audit WHERE id >= 5", 5, "missing at the end"),
    ("DELETE FROM audit", 1, "missing at the end"),
    ("UPDATE audit_head SET last_id = 99", 7, "missing at the end"),
    ("UPDATE audit_head SET last_hash = 'x'", 6, "chain head does not match"),
])
def test_audit_tampering_is_detected(path: Path, db: dbm.Database, sql, bad_row, why) -> None:
    _audit_some(db)
    _tamper(path, sql)
    found = db.verify_audit()
    assert found is not None and found[0] == bad_row and why in found[1], found


def test_audit_swapping_two_rows_names_the_first(path: Path, db: dbm.Database) -> None:
    _audit_some(db)
    cols = "at, kind, account_id, rule, detail, prev_hash, hash"
    _tamper(path, "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE id IN (2, 4)",
            f"UPDATE audit SET ({cols}) = (SELECT {cols} FROM t WHERE t.id = 4) WHERE id = 2",
            f"UPDATE audit SET ({cols}) = (SELECT {cols} FROM t WHERE t.id = 2) WHERE id = 4")
    assert db.verify_audit()[0] == 2
    # A rehash by someone who knows the scheme still breaks the link to the next row.
    row = db._conn.execute("SELECT * FROM audit WHERE id = 2").fetchone()
    good = dbm.audit_hash(db.audit_rows(limit=6)[-1].hash, 2, *row[1:6])
    _tamper(path, ("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = 2",
                   (db.audit_rows(limit=6)[-1].hash, good)))
    assert db.verify_audit()[0] == 3


def test_audit_appends_after_tail_deletion_keep_the_gap_visible(path: Path,
                                                                db: dbm.Database) -> None:
    _audit_some(db)
    _tamper(path, "DELETE FROM audit WHERE id = 6")
    db.audit("admin", None, None, {"x": 1}, T0)
    assert db.verify_audit() == (7, "rows 6..6 are missing (removed)")


# ---------------------------------------------------------------------------------------------
# migrations
def _v2(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE trades ADD COLUMN symbol TEXT")
    conn.execute("UPDATE trades SET symbol = 'MNQ'")


V2 = (*dbm.MIGRATIONS, dbm.Migration(2, "trades.symbol", _v2))


def test_v0_file_is_migrated_to_current(path: Path) -> None:
    with raw(path) as conn:
        conn.execute("CREATE TABLE legacy (x)")  # a pre-versioning file: no schema_version
    with dbm.Database(path, now=T0) as d:
        assert d.version == 1
        assert d._conn.execute("SELECT version, description, applied_at FROM schema_version"
                               ).fetchall() == [(1, "initial schema", dbm.iso(T0))]


def test_fake_v2_migration_upgrades_in_place_and_old_code_refuses(path: Path) -> None:
    changes = changes_for(ACCT, 9)  # two trade rows (the reset at i=9 is not reached)
    with dbm.Database(path) as d:
        record_all(d, ACCT, changes)
    with dbm.Database(path, migrations=V2) as d:
        assert d.version == 2
        assert d._conn.execute("SELECT DISTINCT symbol FROM trades").fetchall() == [("MNQ",)]
        assert d.load(ACCT) == (expected(ACCT, changes, 9), 9)
        assert [r[0] for r in d._conn.execute("SELECT version FROM schema_version")] == [1, 2]
    with pytest.raises(dbm.SchemaTooNew, match="schema version 2 is newer than this riskd"):
        dbm.Database(path)
    with dbm.Database(path, migrations=V2) as d:  # idempotent: nothing to do the second time
        assert d.version == 2


def test_failing_migration_leaves_the_file_untouched(path: Path) -> None:
    dbm.Database(path).close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("bug in migration")
    with pytest.raises(RuntimeError):
        dbm.Database(path, migrations=(*dbm.MIGRATIONS, dbm.Migration(2, "broken", broken)))
    with raw(path) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half_done'"
                            ).fetchone()[0] == 0


def test_fresh_file_runs_all_migrations_in_order(path: Path) -> None:
    with dbm.Database(path, migrations=V2) as d:
        assert d.version == 2


def test_migrate_false_refuses_an_unmigrated_file(path: Path) -> None:
    with pytest.raises(dbm.SchemaNotReady):
        dbm.Database(path, migrate=False)
    dbm.Database(path).close()
    dbm.Database(path, migrate=False).close()


def test_migration_list_must_be_numbered_in_order(path: Path) -> None:
    with pytest.raises(ValueError, match="1..n"):
        dbm.Database(path, migrations=(dbm.Migration(2, "x", _v2),))


def test_readonly_reads_but_cannot_write(path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        dbm.Database(path, readonly=True)  # no file yet: nothing is created
    changes = changes_for(ACCT, 8)
    with dbm.Database(path) as d:
        record_all(d, ACCT, changes)
        d.audit("daemon", None, None, {"event": "start"}, T0)
        with dbm.Database(path, readonly=True) as ro:  # while the writer is open (WAL)
            assert ro.load(ACCT) == (expected(ACCT, changes, 8), 8)
            assert ro.verify_audit() is None and len(ro.audit_rows()) == 1
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                ro.meta_set("x", 1)
    dbm.Database(path, migrations=V2).close()
    with pytest.raises(dbm.SchemaTooNew):
        dbm.Database(path, readonly=True)


# ---------------------------------------------------------------------------------------------
# quarantine, meta
def test_quarantine_and_meta(db: dbm.Database) -> None:
    q1 = db.quarantine(ACCT, 17, "RuleActor[536,max_contracts]", "Evaluate(seq=17)", "boom", T0)
    db.quarantine(None, None, "Notifier", "Alert(...)", "smtp", T0 + timedelta(seconds=1))
    assert [r.id for r in db.quarantined()] == [q1 + 1, q1]
    assert db.quarantined(ACCT) == [dbm.QuarantineRow(q1, ACCT, 17, "RuleActor[536,max_contracts]",
                                                      "Evaluate(seq=17)", "boom", T0)]
    assert db.meta_get("pid") is None and db.meta_get("pid", 0) == 0
    db.meta_set("pid", 1234)
    db.meta_set("last_start", {"at": T0, "version": "0.1.0"})
    assert db.meta_get("pid") == 1234
    assert db.meta_get("last_start") == {"at": dbm.iso(T0), "version": "0.1.0"}


# ---------------------------------------------------------------------------------------------
# the Store actor
@pytest.fixture
def asys():
    system = ActorSystem("simpleSystemBase")
    yield system
    system.shutdown()


def test_store_actor(asys, path: Path) -> None:
    addr = asys.createActor(store.StoreActor)
    assert isinstance(asys.ask(addr, store.AuditQuery(), 5), store.StoreError)  # not open yet
    assert asys.ask(addr, store.StoreOpen(str(path)), 5) == store.StoreOpened(str(path), 1)
    changes = changes_for(ACCT, 20)
    with dbm.Database(path, migrate=False) as d:  # an AccountActor's own connection
        final = record_all(d, ACCT, changes)
    asys.tell(addr, store.RecordAudit("enforcement", ACCT, "max_contracts",
                                      {"action": "reduce", "size": 2}, T0))
    asys.tell(addr, store.RecordQuarantine(ACCT, 3, "Enforcer", "Enforce(...)", "boom", T0))
    rows = asys.ask(addr, store.AuditQuery(account_id=ACCT), 5)
    assert [(r.kind, r.detail) for r in rows.rows] == [("enforcement",
                                                        {"action": "reduce", "size": 2})]
    assert asys.ask(addr, store.VerifyAudit(), 5) == store.AuditVerified(True)
    now = changes[-1][1]
    reply = asys.ask(addr, store.StateQuery(now), 5)
    (row,) = reply.rows
    assert (row.account_id, row.last_seq, row.state) == (ACCT, 20, expected(ACCT, changes, 20))
    assert row.lockouts == final.active_lockouts(now) and row.corrupt == ()
    assert asys.ask(addr, store.StateQuery(now, account_id=9), 5) == store.StateRows(())
    q = asys.ask(addr, store.QuarantineQuery(), 5)
    assert [r.who for r in q.rows] == ["Enforcer"]
    asys.tell(addr, ActorExitRequest())


def test_store_actor_reports_a_too_new_schema(asys, path: Path) -> None:
    dbm.Database(path, migrations=V2).close()
    addr = asys.createActor(store.StoreActor)
    reply = asys.ask(addr, store.StoreOpen(str(path)), 5)
    assert isinstance(reply, store.StoreError) and "SchemaTooNew" in reply.error
