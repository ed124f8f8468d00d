"""riskd's SQLite layer: journal + snapshots, derived tables, audit chain, quarantine, meta.

Who writes, and why
-------------------
Durability comes before action: an AccountActor must not ask for a broker call about a change it
has not persisted, and a kill -9 must lose nothing it has committed. Sending every change to one
Store actor and waiting for its answer would put a round trip to another process in the hot path,
so the lead decided:

* each AccountActor owns a :class:`Database` in its own process and journals its own changes
  synchronously through :meth:`Database.record` (one connection per process);
* the Store actor (:mod:`risk_actors.store`) creates/migrates the schema at start-up, serves the
  read queries of status/audit/CLI, and writes for actors that have no DB of their own (audit
  records of the notifier, quarantine records of the supervisor).

Several processes therefore write the same file. That is safe because:

* ``journal_mode=WAL``: readers never block the writer and the writer never blocks readers;
* every write is one short ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front, so
  two writers queue on the busy handler instead of failing with SQLITE_BUSY when a deferred
  read transaction tries to upgrade (which the busy handler cannot resolve); JSON encoding and
  hashing are done before ``BEGIN`` where possible to keep the lock short;
* ``busy_timeout`` (5 s by default) makes a writer wait for the lock rather than fail;
* each account's journal, snapshot and derived rows are written by one process only (its
  AccountActor). The audit chain is shared: its append reads the chain head inside the same
  ``BEGIN IMMEDIATE`` transaction, so concurrent appenders serialize and the chain stays linear.

``synchronous=NORMAL`` (the default here): in WAL mode a commit is appended to the -wal file
before ``COMMIT`` returns, and the OS keeps it even if the process is killed (kill -9, segfault,
OOM): such a crash loses no committed transaction. NORMAL skips the fsync at each commit, so a
*power loss or kernel crash* may roll back the last few commits (never corrupt the file). Pass
``synchronous="FULL"`` to fsync the WAL at every commit when that matters more than latency.

Schema versioning
-----------------
``schema_version`` holds one row per applied migration. :data:`MIGRATIONS` is an ordered list;
adding version 2 is appending ``Migration(2, "what", fn)``. Pending migrations run at open in one
transaction (SQLite DDL is transactional: a failing migration leaves the file untouched). A file
whose version is newer than the code knows raises :class:`SchemaTooNew`.

Journal and load
----------------
``record(account_id, seq, change, state_after, at)`` appends the change (``change_to_dict`` JSON)
and, in the same transaction, brings the derived tables (``lockouts``, ``daily_pnl``, ``trades``,
``accounts``) in step with ``state_after``; every ``snapshot_every`` records it also stores
``state_after`` as the snapshot and prunes the journal it covers. ``load`` = latest snapshot +
``state.reduce_all`` over the journal rows after it. Journal rows are ordered by their own row id,
not by ``seq``: several changes may share the seq of the event that caused them (a position
event, then the locks its verdicts added), so snapshots record the journal row they cover.
A journal row that does not decode is logged, reported and skipped; a snapshot that does not
decode falls back to the derived tables, which hold the current locks and the day's trades.

The derived tables are for people and the CLI (and that fallback); ``load`` never needs them.
Writing them costs little because the reducer reuses unchanged objects: ``record`` compares
by identity and writes only the rows that changed (a per-process cache, valid because one
process writes one account, dropped when a transaction fails).

Audit trail
-----------
Append-only (triggers refuse UPDATE/DELETE), each row carrying ``prev_hash`` and
``hash = sha256(prev_hash + canonical JSON of the row, id included)``; the chain head (last id and
hash) is kept in ``audit_head`` so that removing the newest rows is detected too.
:meth:`Database.verify_audit` names the first bad row. This is tamper-*evidence* without a
secret: someone with write access who knows the scheme can rebuild the whole chain; anchoring
the head hash elsewhere (logs, alerts) is what would catch that.

Timestamps are stored as ISO-8601 UTC strings with microseconds (one fixed format, so string
comparison is time comparison). Naive datetimes are taken as UTC, as in :mod:`risk_actors.state`.
No function reads the clock: callers pass ``at``/``now``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import attrs
from loguru import logger

from risk_actors import state as st

# ---------------------------------------------------------------------------------------------
# constants
AUDIT_KINDS = frozenset({"verdict", "lock", "enforcement", "broker_call", "rule_failure",
                         "quarantine", "admin", "daemon"})
GENESIS_HASH = "0" * 64
DEFAULT_SNAPSHOT_EVERY = 200
DEFAULT_BUSY_TIMEOUT = 5.0
# Writes on the event path (record, snapshot, audit) wait at most WRITE_WAIT for the lock: every
# riskd transaction holds it for milliseconds, so a longer wait means the file is stuck (a
# backup or an admin's sqlite3 shell holding a lock), and an AccountActor blocked in SQLite
# enforces nothing (issue 6: a locked file stalled each journal write 5 s, one fill ~30 s). After
# a failed write the connection fails fast (no wait) for FAIL_FAST_SECONDS, and the next write
# that succeeds for an account also stores its snapshot, covering the changes that were lost.
WRITE_WAIT = 0.5
FAIL_FAST_SECONDS = 5.0


# ---------------------------------------------------------------------------------------------
# errors and row types
class DatabaseError(Exception):
    """Base class of the errors this module raises on purpose."""


class SchemaTooNew(DatabaseError):
    """The file was written by a newer riskd (schema version above what this code knows)."""


class SchemaNotReady(DatabaseError):
    """Opened with ``migrate=False`` but the file is not at the code's schema version."""


@attrs.frozen
class Migration:
    """One schema step: ``apply(conn)`` runs inside the open transaction; never commits."""

    version: int
    description: str
    apply: Callable[[sqlite3.Connection], None]


@attrs.frozen
class CorruptRow:
    """A stored row ``load`` could not use (logged and skipped, never raised)."""

    table: str
    row_id: int
    seq: int | None
    error: str


@attrs.frozen
class AuditRow:
    """One audit record as stored (``detail`` decoded)."""

    id: int
    at: datetime
    kind: str
    account_id: int | None
    rule: str | None
    detail: Mapping[str, Any]
    prev_hash: str
    hash: str


@attrs.frozen
class QuarantineRow:
    """A message set aside after crashing a child twice."""

    id: int
    account_id: int | None
    seq: int | None
    who: str
    message_repr: str
    error: str
    at: datetime


@attrs.frozen
class AccountRow:
    """An account the database knows, with the last journaled sequence number."""

    account_id: int
    name: str
    last_seq: int
    last_at: datetime | None


@attrs.frozen
class DailyPnlRow:
    """Realized P&L and fees of one trading day (``day_start`` = that day's reset, or None)."""

    account_id: int
    day_start: datetime | None
    realized: float
    fees: float
    net: float
    trade_count: int
    updated_at: datetime


# ---------------------------------------------------------------------------------------------
# helpers
def iso(dt: datetime | None) -> str | None:
    """The one stored form of a time: UTC, microseconds, ``+00:00`` (sorts as it compares)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_iso(text: str | None) -> datetime | None:
    if text is None:
        return None
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return iso(obj)
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if attrs.has(type(obj)):
        # Keep the class name: an audit reader must see "ClosePosition", not just its fields.
        return {"type": type(obj).__name__, **st.converter.unstructure(obj)}
    raise TypeError(f"not JSON-serializable: {type(obj).__name__}")


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the same value always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


def audit_hash(prev_hash: str, row_id: int, at: str, kind: str, account_id: int | None,
               rule: str | None, detail_text: str) -> str:
    """sha256 of ``prev_hash`` + canonical JSON of the row (its id included, so moves show)."""
    body = canonical_json({"id": row_id, "at": at, "kind": kind, "account_id": account_id,
                           "rule": rule, "detail": detail_text})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def _add_trade(sums: list, t: st.TradeRecord, sign: int) -> None:
    """Add (sign=+1) or remove (-1) one trade's share of [realized, fees, count] (voided: none)."""
    if t.voided:
        return
    if t.pnl is not None:
        sums[0] += sign * Decimal(str(t.pnl))
    sums[1] += sign * Decimal(str(t.fees))
    sums[2] += sign


# ---------------------------------------------------------------------------------------------
# migrations
def _v1_initial(conn: sqlite3.Connection) -> None:
    # Statement by statement: executescript() would COMMIT the migration transaction.
    for sql in _V1_SQL:
        conn.execute(sql)


# The audit table is append-only: triggers refuse UPDATE and DELETE, so no code path of riskd can
# change history by accident. Someone with raw access can drop them; the hash chain is what
# *detects* that (tamper-evidence, not tamper-proofing).
_V1_SQL = (
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE accounts (
        account_id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '',
        last_seq INTEGER NOT NULL DEFAULT 0, last_at TEXT)""",
    """CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER NOT NULL,
        seq INTEGER NOT NULL, at TEXT NOT NULL, change TEXT NOT NULL)""",
    """CREATE INDEX journal_account ON journal (account_id, id)""",
    """CREATE TABLE snapshots (
        account_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, journal_id INTEGER NOT NULL,
        at TEXT NOT NULL, state TEXT NOT NULL)""",
    """CREATE TABLE lockouts (
        account_id INTEGER NOT NULL, rule TEXT NOT NULL, kind TEXT NOT NULL,
        scope TEXT NOT NULL, symbol TEXT, reason TEXT NOT NULL, started_at TEXT NOT NULL,
        expires_at TEXT, until_reset INTEGER NOT NULL)""",
    """CREATE INDEX lockouts_account ON lockouts (account_id)""",
    """CREATE TABLE daily_pnl (
        account_id INTEGER NOT NULL, day_start TEXT NOT NULL, realized REAL NOT NULL,
        fees REAL NOT NULL, net REAL NOT NULL, trade_count INTEGER NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (account_id, day_start))""",
    """CREATE TABLE trades (
        account_id INTEGER NOT NULL, trade_id INTEGER NOT NULL, ts TEXT NOT NULL,
        contract_id TEXT NOT NULL, price REAL NOT NULL, side INTEGER NOT NULL,
        size INTEGER NOT NULL, pnl REAL, fees REAL NOT NULL, voided INTEGER NOT NULL,
        PRIMARY KEY (account_id, trade_id))""",
    """CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
        account_id INTEGER, rule TEXT, detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL)""",
    """CREATE INDEX audit_account ON audit (account_id, id)""",
    """CREATE INDEX audit_kind ON audit (kind, id)""",
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END""",
    # The chain head: without it, deleting the *last* rows would leave a valid shorter chain.
    """CREATE TABLE audit_head (
        one INTEGER PRIMARY KEY CHECK (one = 1), last_id INTEGER NOT NULL,
        last_hash TEXT NOT NULL)""",
    """CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER, seq INTEGER,
        who TEXT NOT NULL, message_repr TEXT NOT NULL, error TEXT NOT NULL, at TEXT NOT NULL)""",
)

#: Ordered schema steps; version N is the N-th entry. Append to add a version.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _v1_initial),
)


def _check_migrations(migrations: Sequence[Migration]) -> None:
    versions = [mig.version for mig in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..n in order, got {versions}")


# ---------------------------------------------------------------------------------------------
# the database
class Database:
    """One process's connection to riskd's SQLite file (WAL; see the module docstring).

    ``migrate=True`` (the Store actor, tests) applies pending migrations at open;
    ``migrate=False`` (AccountActors) only checks that the file is at the code's version.
    ``readonly=True`` (a CLI reading the file directly) opens it ``mode=ro``: queries work,
    writes raise ``sqlite3.OperationalError``, the schema must already be current.
    ``snapshot_every`` is how many records of one account go between automatic snapshots.
    Meant for one thread (actors are single-threaded); a lock serializes calls if shared.
    One ``Database`` per process: never carry one across fork.
    """

    def __init__(self, path: str | Path, *, migrate: bool = True,
                 snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
                 busy_timeout: float = DEFAULT_BUSY_TIMEOUT, synchronous: str = "NORMAL",
                 migrations: Sequence[Migration] = MIGRATIONS,
                 readonly: bool = False, now: datetime | None = None) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            # OFF could lose committed transactions on a crash mid-checkpoint: not allowed.
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}")
        if snapshot_every < 1:
            raise ValueError("snapshot_every must be >= 1")
        _check_migrations(migrations)
        self.path = str(path)
        self.snapshot_every = snapshot_every
        self.migrations = tuple(migrations)
        # Per-account caches of what this process last wrote (see _sync_derived). Valid because
        # one process writes one account; dropped on rollback.
        self._derived: dict[int, dict[str, Any]] = {}
        self._since_snapshot: dict[int, int] = {}
        self._lock = threading.Lock()  # cheap guard should a caller share us across threads
        self.readonly = readonly
        self.busy_timeout = busy_timeout
        self.write_wait = min(busy_timeout, WRITE_WAIT)
        self._busy_ms = int(busy_timeout * 1000)
        self._fail_fast_until = 0.0
        self._failing: str | None = None     # the error of the last failed write, until one works
        self._unsaved: set[int] = set()      # accounts with a change lost by a failed record()
        # isolation_level=None: no implicit BEGIN from the sqlite3 module; we issue our own.
        if readonly:
            uri = f"{Path(self.path).absolute().as_uri()}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout,
                                         isolation_level=None)
        else:
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            mode = self._conn.execute("PRAGMA journal_mode" if readonly
                                      else "PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal" and self.path != ":memory:":
                raise DatabaseError(f"{self.path}: not in WAL mode (journal_mode={mode})")
            if not readonly:
                self._conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            self.version = self._open_schema(migrate and not readonly, now)
        except BaseException:
            self._conn.close()
            raise

    # ---- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _set_busy(self, seconds: float) -> None:
        ms = int(seconds * 1000)
        if ms != self._busy_ms:
            self._conn.execute(f"PRAGMA busy_timeout = {ms}")
            self._busy_ms = ms

    def _begin_immediate(self, wait: float) -> None:
        """Take the write lock, waiting at most ``wait`` seconds for it.

        Polled here in steps of at most 2 ms rather than left to SQLite's busy handler, whose
        sleeps grow to 25, 50 and 100 ms: with every account's process writing to this one
        file, a writer that found the lock taken for a millisecond slept 25 ms or more, and the
        next event of its account waited behind it (the long tail at 10 accounts in
        docs/performance.md). Once the lock is held the busy timeout is ``wait`` again (a
        checkpoint at COMMIT may still need to wait).
        """
        self._set_busy(0)
        deadline = time.monotonic() + wait
        step = 0.0002
        try:
            while True:
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    left = deadline - time.monotonic()
                    if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY or left <= 0:
                        raise
                    time.sleep(min(step, left))
                    step = min(step * 2, 0.002)
        finally:
            self._set_busy(wait)

    @contextmanager
    def _write(self, wait: float | None = None) -> Iterator[sqlite3.Connection]:
        """One short write transaction; the write lock is taken at BEGIN (see module doc).

        ``wait``: how long to wait for the lock (default ``write_wait``, or none at all during
        the fail-fast window after a failed write; see WRITE_WAIT).
        """
        with self._lock:
            if wait is None:
                wait = 0.0 if time.monotonic() < self._fail_fast_until else self.write_wait
            try:
                self._begin_immediate(wait)
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        try:
                            self._conn.execute("ROLLBACK")
                        except sqlite3.Error:
                            pass
                    raise
            except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
                raise  # a bug or a constraint, not the file
            except sqlite3.Error as exc:  # locked, read-only, I/O error, disk full, malformed
                self._fail_fast_until = time.monotonic() + FAIL_FAST_SECONDS
                if self._failing is None:
                    logger.error("db {}: write failed ({}); writes fail fast for {:.0f} s at a "
                                 "time until the file is writable again", self.path, exc,
                                 FAIL_FAST_SECONDS)
                self._failing = str(exc)
                raise
            if self._failing is not None:
                logger.warning("db {}: writable again (last error: {})", self.path,
                               self._failing)
                self._failing = None
                self._fail_fast_until = 0.0

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several SELECTs see one consistent WAL snapshot."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    # ---- schema ---------------------------------------------------------------------------
    def _current_version(self) -> int:
        has = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                                 "name='schema_version'").fetchone()
        if not has:
            return 0
        row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return row[0] or 0

    def _open_schema(self, migrate: bool, now: datetime | None) -> int:
        latest = len(self.migrations)
        with (self._read() if self.readonly else self._write(self.busy_timeout)):
            current = self._current_version()
            if current > latest:
                raise SchemaTooNew(
                    f"{self.path}: schema version {current} is newer than this riskd knows "
                    f"({latest}); run the riskd version that wrote it, or restore a backup")
            if current == latest:
                return current
            if not migrate or self.readonly:
                raise SchemaNotReady(f"{self.path}: schema version {current}, code needs "
                                     f"{latest}; the Store actor migrates it at start-up")
            if current == 0:
                self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                                   "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                                   "applied_at TEXT)")
            for mig in self.migrations[current:]:
                logger.info("db {}: migrating schema to v{} ({})", self.path, mig.version,
                            mig.description)
                mig.apply(self._conn)
                self._conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                                   (mig.version, mig.description, iso(now)))
            return latest

    # ---- journal --------------------------------------------------------------------------
    def record(self, account_id: int, seq: int, change: st.Change, state_after: st.AccountState,
               at: datetime) -> int:
        """Journal ``change`` (applied at ``at``) and sync derived tables to ``state_after``.

        One transaction: when this returns the change is durable (see module doc on kill -9).
        Every ``snapshot_every`` records of the account, ``state_after`` becomes the snapshot
        and the journal it covers is pruned. Returns the journal row id.
        """
        return self.record_batch(account_id, [(seq, change, state_after, at)])

    def record_batch(self, account_id: int,
                     entries: list[tuple[int, st.Change, st.AccountState, datetime]],
                     audits: list[tuple[str, int | None, str | None, Mapping[str, Any],
                                        datetime]] = ()) -> int:
        """Journal several ``(seq, change, state_after, at)`` in order, and append the audit
        records ``(kind, account_id, rule, detail, at)`` of the same handled message, in one
        transaction.

        A fill is several changes (order, trade, order, position, account) and an enforcement
        several audit records (verdict, start, broker call, done): one commit for all of them
        takes the shared write lock once instead of many times. Returns the last journal row id
        (0 for no entries).
        """
        if not entries:
            if audits:
                with self._write() as conn:
                    for a in audits:
                        self._append_audit(conn, *a)
            return 0
        rows = [(seq, json.dumps(st.change_to_dict(change), separators=(",", ":"),
                                 default=_json_default), iso(at), state_after)
                for seq, change, state_after, at in entries]
        journal_id = 0
        try:
            with self._write() as conn:
                for seq, change_text, at_text, state_after in rows:
                    cur = conn.execute("INSERT INTO journal (account_id, seq, at, change) "
                                       "VALUES (?, ?, ?, ?)",
                                       (account_id, seq, at_text, change_text))
                    journal_id = cur.lastrowid
                seq, _, at_text, state_after = rows[-1]
                conn.execute(
                    "INSERT INTO accounts (account_id, name, last_seq, last_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET "
                    "name = excluded.name, last_seq = MAX(last_seq, excluded.last_seq), "
                    "last_at = excluded.last_at", (account_id, state_after.name, seq, at_text))
                self._sync_derived(conn, account_id, state_after, at_text)
                for a in audits:
                    self._append_audit(conn, *a)
                cached = account_id in self._since_snapshot
                # (a count from the file already includes the rows just inserted)
                since = self._rows_since_snapshot(conn, account_id) + (
                    len(rows) - 1 if cached else 0)
                if since >= self.snapshot_every or account_id in self._unsaved:
                    # (after lost changes, state_after is the only complete record of them)
                    self._write_snapshot(conn, account_id, seq, state_after, at_text, journal_id)
                    since = 0
        except BaseException:
            # The caches may describe rows that were rolled back: rebuild them next time.
            self._derived.pop(account_id, None)
            self._since_snapshot.pop(account_id, None)
            self._unsaved.add(account_id)
            raise
        self._unsaved.discard(account_id)
        self._since_snapshot[account_id] = since
        return journal_id

    def _rows_since_snapshot(self, conn: sqlite3.Connection, account_id: int) -> int:
        since = self._since_snapshot.get(account_id)
        if since is None:  # first record of this account in this process: ask the file
            row = conn.execute("SELECT journal_id FROM snapshots WHERE account_id = ?",
                               (account_id,)).fetchone()
            since = conn.execute("SELECT COUNT(*) FROM journal WHERE account_id = ? AND id > ?",
                                 (account_id, row[0] if row else 0)).fetchone()[0]
            return since
        return since + 1

    def _sync_derived(self, conn: sqlite3.Connection, account_id: int, state: st.AccountState,
                      at_text: str) -> None:
        """Make lockouts/trades/daily_pnl mirror ``state``; write only what changed.

        The reducer reuses unchanged mappings (``attrs.evolve``), so an identity check skips most
        work; the cache holds references so those identities stay meaningful.
        """
        cache = self._derived.get(account_id)
        if cache is None:
            conn.execute("DELETE FROM lockouts WHERE account_id = ?", (account_id,))
            conn.execute("DELETE FROM trades WHERE account_id = ?", (account_id,))
            cache = {"lockouts": None, "trades_obj": None, "trades": {}, "pnl": None,
                     "reset": object(), "sums": [Decimal(0), Decimal(0), 0]}
        if state.lockouts is not cache["lockouts"] and state.lockouts != cache["lockouts"]:
            conn.execute("DELETE FROM lockouts WHERE account_id = ?", (account_id,))
            conn.executemany(
                "INSERT INTO lockouts (account_id, rule, kind, scope, symbol, reason, "
                "started_at, expires_at, until_reset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(account_id, lk.rule, lk.kind, lk.scope, lk.symbol, lk.reason,
                  iso(lk.started_at), iso(lk.expires_at), int(lk.until_reset))
                 for lk in state.lockouts])
        trades_changed = state.trades is not cache["trades_obj"]
        if trades_changed:
            # The reducer copies the mapping but keeps unchanged TradeRecord objects: compare by
            # identity so a new fill costs O(1) SQL, not a rewrite of the whole day. The day's
            # sums move by the same deltas (exact Decimal arithmetic, so they equal
            # state.realized_pnl / fees_total without re-summing hundreds of trades per fill).
            old, sums = cache["trades"], cache["sums"]
            gone = [tid for tid in old if tid not in state.trades]
            changed = [t for tid, t in state.trades.items() if old.get(tid) is not t]
            for tid in gone:
                _add_trade(sums, old[tid], -1)
            for t in changed:
                if t.trade_id in old:
                    _add_trade(sums, old[t.trade_id], -1)
                _add_trade(sums, t, +1)
            if gone:
                conn.executemany("DELETE FROM trades WHERE account_id = ? AND trade_id = ?",
                                 [(account_id, tid) for tid in gone])
            if changed:
                conn.executemany(
                    "INSERT OR REPLACE INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(account_id, t.trade_id, iso(t.created), t.contract_id, t.price, t.side,
                      t.size, t.pnl, t.fees, int(t.voided)) for t in changed])
            cache["trades"] = dict(state.trades)
        if trades_changed or state.last_reset_at != cache["reset"]:
            realized, fees, count = cache["sums"]
            # net as state.net_realized(True) computes it
            pnl = (iso(state.last_reset_at) or "", float(realized), float(fees),
                   round(float(realized) - float(fees), 2), count)
            if pnl != cache["pnl"]:
                conn.execute(
                    "INSERT INTO daily_pnl VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (account_id, day_start) DO UPDATE SET "
                    "realized = excluded.realized, fees = excluded.fees, net = excluded.net, "
                    "trade_count = excluded.trade_count, updated_at = excluded.updated_at",
                    (account_id, *pnl, at_text))
                cache["pnl"] = pnl
        cache["lockouts"] = state.lockouts
        cache["trades_obj"] = state.trades
        cache["reset"] = state.last_reset_at
        self._derived[account_id] = cache

    def snapshot(self, account_id: int, seq: int, state: st.AccountState, at: datetime) -> None:
        """Store ``state`` as the account's snapshot and prune the journal it covers.

        ``state`` must include every change recorded for the account so far (the caller is its
        only writer); the journal is pruned up to the newest row, whatever its seq.
        """
        at_text = iso(at)
        try:
            with self._write() as conn:
                row = conn.execute("SELECT MAX(id) FROM journal WHERE account_id = ?",
                                   (account_id,)).fetchone()
                old = conn.execute("SELECT journal_id FROM snapshots WHERE account_id = ?",
                                   (account_id,)).fetchone()
                journal_id = row[0] if row[0] is not None else (old[0] if old else 0)
                self._write_snapshot(conn, account_id, seq, state, at_text, journal_id)
        except BaseException:
            self._since_snapshot.pop(account_id, None)
            raise
        self._unsaved.discard(account_id)
        self._since_snapshot[account_id] = 0

    def _write_snapshot(self, conn: sqlite3.Connection, account_id: int, seq: int,
                        state: st.AccountState, at_text: str, journal_id: int) -> None:
        text = json.dumps(st.state_to_dict(state), separators=(",", ":"), default=_json_default)
        conn.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?, ?)",
                     (account_id, seq, journal_id, at_text, text))
        conn.execute("DELETE FROM journal WHERE account_id = ? AND id <= ?",
                     (account_id, journal_id))

    def load(self, account_id: int, errors: list[CorruptRow] | None = None
             ) -> tuple[st.AccountState | None, int]:
        """Restore an account: latest snapshot + replay of the journal after it.

        Returns ``(state, last_seq)``; ``(None, 0)`` for an unknown account. The state has no
        quotes (rebuilt, not persisted) and ``last_seq`` set. A row that cannot be decoded is
        logged, appended to ``errors`` and skipped; load never raises on bad data. A corrupt
        snapshot falls back to the derived tables (locks, trades, last reset), so no lock is lost.
        """
        errors = [] if errors is None else errors
        with self._read() as conn:
            snap = conn.execute("SELECT seq, journal_id, state FROM snapshots "
                                "WHERE account_id = ?", (account_id,)).fetchone()
            after = snap[1] if snap else 0
            rows = conn.execute("SELECT id, seq, at, change FROM journal WHERE account_id = ? "
                                "AND id > ? ORDER BY id", (account_id, after)).fetchall()
            acct = conn.execute("SELECT last_seq FROM accounts WHERE account_id = ?",
                                (account_id,)).fetchone()
            fallback = None
            state: st.AccountState | None = None
            if snap is not None:
                try:
                    state = st.state_from_dict(json.loads(snap[2]))
                except Exception as exc:  # noqa: BLE001 - bad data is reported, not raised
                    errors.append(self._corrupt("snapshots", account_id, snap[0], exc))
                    fallback = self._state_from_tables(conn, account_id)
        if snap is None and not rows and acct is None:
            return None, 0
        last_seq = max([snap[0] if snap else 0, acct[0] if acct else 0]
                       + [r[1] for r in rows])
        if fallback is not None:
            # The derived tables already reflect every journaled change: do not replay.
            return attrs.evolve(fallback, last_seq=last_seq), last_seq
        changes = []
        for row_id, seq, at_text, text in rows:
            try:
                changes.append((st.change_from_dict(json.loads(text)), parse_iso(at_text)))
            except Exception as exc:  # noqa: BLE001
                errors.append(self._corrupt("journal", row_id, seq, exc))
        state = st.reduce_all(state or st.AccountState(account_id), changes)
        return attrs.evolve(state, quotes={}, last_seq=last_seq), last_seq

    @staticmethod
    def _corrupt(table: str, row_id: int, seq: int | None, exc: Exception) -> CorruptRow:
        err = f"{type(exc).__name__}: {exc}"
        logger.error("db: corrupt {} row {} (seq {}) skipped: {}", table, row_id, seq, err)
        return CorruptRow(table, row_id, seq, err)

    def _state_from_tables(self, conn: sqlite3.Connection, account_id: int) -> st.AccountState:
        lockouts = tuple(self._lockout(r) for r in conn.execute(
            "SELECT rule, kind, reason, started_at, expires_at, scope, symbol, until_reset "
            "FROM lockouts WHERE account_id = ? ORDER BY rowid", (account_id,)))
        trades = {r[0]: st.TradeRecord(r[0], r[2], parse_iso(r[1]), r[3], r[6], r[7], r[4], r[5],
                                       bool(r[8]))
                  for r in conn.execute("SELECT trade_id, ts, contract_id, price, side, size, "
                                        "pnl, fees, voided FROM trades WHERE account_id = ?",
                                        (account_id,))}
        reset = conn.execute("SELECT day_start FROM daily_pnl WHERE account_id = ? "
                             "ORDER BY day_start DESC LIMIT 1", (account_id,)).fetchone()
        name = conn.execute("SELECT name FROM accounts WHERE account_id = ?",
                            (account_id,)).fetchone()
        return st.AccountState(account_id, name=name[0] if name else "", trades=trades,
                               lockouts=lockouts,
                               last_reset_at=parse_iso(reset[0]) if reset and reset[0] else None)

    @staticmethod
    def _lockout(r: tuple) -> st.Lockout:
        return st.Lockout(rule=r[0], kind=r[1], reason=r[2], started_at=parse_iso(r[3]),
                          expires_at=parse_iso(r[4]), scope=r[5], symbol=r[6],
                          until_reset=bool(r[7]))

    # ---- audit ----------------------------------------------------------------------------
    def audit(self, kind: str, account_id: int | None, rule: str | None,
              detail: Mapping[str, Any], at: datetime) -> int:
        """Append one audit record, chained to the previous one; returns its id."""
        with self._write() as conn:
            return self._append_audit(conn, kind, account_id, rule, detail, at)

    def _append_audit(self, conn: sqlite3.Connection, kind: str, account_id: int | None,
                      rule: str | None, detail: Mapping[str, Any], at: datetime) -> int:
        if kind not in AUDIT_KINDS:
            logger.warning("db: audit kind {!r} is not one of the core kinds", kind)
        detail_text = canonical_json(dict(detail))
        at_text = iso(at)
        # Read the head inside BEGIN IMMEDIATE: concurrent appenders serialize here.
        head = conn.execute("SELECT last_id, last_hash FROM audit_head").fetchone()
        seq_row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'"
                               ).fetchone()
        row_id = max(head[0] if head else 0, seq_row[0] if seq_row else 0) + 1
        prev = head[1] if head else GENESIS_HASH
        digest = audit_hash(prev, row_id, at_text, kind, account_id, rule, detail_text)
        conn.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (row_id, at_text, kind, account_id, rule, detail_text, prev, digest))
        conn.execute("INSERT OR REPLACE INTO audit_head VALUES (1, ?, ?)", (row_id, digest))
        return row_id

    def verify_audit(self) -> tuple[int, str] | None:
        """Check the whole chain; None when intact, else ``(row_id, why)`` of the first bad row."""
        with self._read() as conn:
            head = conn.execute("SELECT last_id, last_hash FROM audit_head").fetchone()
            prev_id, prev_hash = 0, GENESIS_HASH
            for (row_id, at_text, kind, account_id, rule, detail_text, stored_prev,
                 stored_hash) in conn.execute("SELECT * FROM audit ORDER BY id"):
                if row_id != prev_id + 1:
                    return row_id, (f"rows {prev_id + 1}..{row_id - 1} are missing "
                                    "(removed)")
                if stored_prev != prev_hash:
                    return row_id, (f"prev_hash does not match row {prev_id}'s hash "
                                    "(a row was removed, reordered or its hash edited)")
                if audit_hash(stored_prev, row_id, at_text, kind, account_id, rule,
                              detail_text) != stored_hash:
                    return row_id, "content does not match its hash (row edited or moved)"
                prev_id, prev_hash = row_id, stored_hash
        if head is None:
            return None if prev_id == 0 else (prev_id, "chain head missing")
        if head[0] != prev_id or head[1] != prev_hash:
            if head[0] > prev_id:
                return prev_id + 1, (f"rows {prev_id + 1}..{head[0]} are missing at the end "
                                     "(the chain head records them)")
            return head[0], "chain head does not match the last row"
        return None

    def audit_rows(self, account_id: int | None = None, kind: str | None = None,
                   since: datetime | None = None, limit: int = 200,
                   newest_first: bool = True) -> list[AuditRow]:
        """Audit records filtered by account, kind and time (``at >= since``)."""
        where, args = self._filters(account_id=account_id, kind=kind, since=since)
        order = "DESC" if newest_first else "ASC"
        with self._read() as conn:
            rows = conn.execute(f"SELECT * FROM audit{where} ORDER BY id {order} LIMIT ?",
                                (*args, limit)).fetchall()
        return [AuditRow(r[0], parse_iso(r[1]), r[2], r[3], r[4], json.loads(r[5]), r[6], r[7])
                for r in rows]

    @staticmethod
    def _filters(**conds: Any) -> tuple[str, list]:
        parts, args = [], []
        for name, value in conds.items():
            if value is None:
                continue
            if name == "since":
                parts.append("at >= ?")
                args.append(iso(value))
            else:
                parts.append(f"{name} = ?")
                args.append(value)
        return (" WHERE " + " AND ".join(parts) if parts else ""), args

    # ---- quarantine -----------------------------------------------------------------------
    def quarantine(self, account_id: int | None, seq: int | None, who: str, message_repr: str,
                   error: str, at: datetime) -> int:
        """Record a message set aside after it crashed a child twice; returns the row id."""
        with self._write() as conn:
            cur = conn.execute("INSERT INTO quarantine (account_id, seq, who, message_repr, "
                               "error, at) VALUES (?, ?, ?, ?, ?, ?)",
                               (account_id, seq, who, message_repr, error, iso(at)))
            return cur.lastrowid

    def quarantined(self, account_id: int | None = None, limit: int = 100
                    ) -> list[QuarantineRow]:
        """Quarantined messages, newest first."""
        where, args = self._filters(account_id=account_id)
        with self._read() as conn:
            rows = conn.execute(f"SELECT * FROM quarantine{where} ORDER BY id DESC LIMIT ?",
                                (*args, limit)).fetchall()
        return [QuarantineRow(r[0], r[1], r[2], r[3], r[4], r[5], parse_iso(r[6])) for r in rows]

    # ---- meta -----------------------------------------------------------------------------
    def meta_get(self, key: str, default: Any = None) -> Any:
        """A small JSON value by key (last start, pid ...), or ``default``."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def meta_set(self, key: str, value: Any) -> None:
        text = canonical_json(value)
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, text))

    # ---- status queries -------------------------------------------------------------------
    def accounts(self) -> list[AccountRow]:
        """Every account that has journaled something, by id."""
        with self._read() as conn:
            rows = conn.execute("SELECT account_id, name, last_seq, last_at FROM accounts "
                                "ORDER BY account_id").fetchall()
        return [AccountRow(r[0], r[1], r[2], parse_iso(r[3])) for r in rows]

    def latest_state(self, account_id: int) -> st.AccountState | None:
        """The account's state as of its last committed record (snapshot + replay)."""
        return self.load(account_id)[0]

    def active_lockouts(self, account_id: int, now: datetime) -> list[st.Lockout]:
        """Lockouts of the account still active at ``now`` (from the lockouts table)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT rule, kind, reason, started_at, expires_at, scope, symbol, until_reset "
                "FROM lockouts WHERE account_id = ? AND (expires_at IS NULL OR expires_at > ?) "
                "ORDER BY rowid", (account_id, iso(now))).fetchall()
        return [self._lockout(r) for r in rows]

    def daily_pnl(self, account_id: int, limit: int = 30) -> list[DailyPnlRow]:
        """Realized P&L per trading day, newest first (the current day is the first row)."""
        with self._read() as conn:
            rows = conn.execute("SELECT * FROM daily_pnl WHERE account_id = ? "
                                "ORDER BY day_start DESC LIMIT ?", (account_id, limit)).fetchall()
        return [DailyPnlRow(r[0], parse_iso(r[1]) if r[1] else None, r[2], r[3], r[4], r[5],
                            parse_iso(r[6])) for r in rows]


# ---------------------------------------------------------------------------------------------
# a corrupt file at start-up (issue 6)
#
# The state file holds the locks, so both simple answers are bad for a trader: refusing to start
# leaves the account with no enforcement at all, and silently starting empty forgets the locks.
# What riskd does instead (``open_checked``, called by the Supervisor at boot):
#   1. check the file (SQLite header, ``PRAGMA quick_check``; a 0-byte file counts as truncated,
#      since riskd never leaves one behind);
#   2. move it (and its -wal/-shm) aside as ``riskd.sqlite.corrupt-<UTC time>`` for forensics;
#   3. create a fresh file and salvage what the old one still yields per account (``load`` on a
#      scratch copy: locks, the day's trades, last reset; positions come from the broker anyway),
#      written as each account's snapshot;
#   4. record it: a ``daemon`` audit row and a ``db_recovered`` meta entry that the Supervisor
#      shows in ``riskd status`` (daemon detail) and alerts as critical.
# Then the accounts start as after any restart: REST reconciliation rebuilds positions, orders and
# the day's trades/P&L from the broker, and rules re-derive what follows from them (a daily-loss
# lock re-fires when the broker's P&L is past the limit). Only what exists nowhere but in the lost
# pages (e.g. a cooldown or an admin lock) can be lost, and the critical alert says so.
# Errors that are not corruption (permissions, a locked file, a newer schema) are raised as before.

SQLITE_MAGIC = b"SQLite format 3\x00"
RECOVERY_META_KEY = "db_recovered"
RECOVERY_SHOWN_SECONDS = 24 * 3600.0


@attrs.frozen
class Recovery:
    """What ``open_checked`` did with a corrupt file."""

    reason: str
    moved_to: str
    at: datetime
    salvaged: tuple[int, ...] = ()
    salvage_errors: tuple[str, ...] = ()

    def notice(self) -> str:
        kept = (f"state salvaged for account(s) {', '.join(map(str, self.salvaged))}"
                if self.salvaged else "nothing salvaged: locks not derivable from the broker "
                                      "may be lost")
        return (f"CRITICAL: state database was corrupt at start-up ({self.reason}); moved to "
                f"{self.moved_to}; started fresh at {iso(self.at)}, {kept}; positions and the "
                "day's trades re-read from the broker")


def check_file(path: str | Path) -> str | None:
    """Why ``path`` is not a usable SQLite database, or None (usable, or absent).

    Only corruption is reported; a file that cannot be opened for another reason (permissions,
    locked) raises ``sqlite3.OperationalError`` so the caller does not mistake it for garbage.
    """
    p = Path(path)
    if not p.exists():
        return None
    size = p.stat().st_size
    if size == 0:
        return "empty file (0 bytes): truncated"
    with open(p, "rb") as fh:
        head = fh.read(100)
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        return f"not an SQLite file (bad header, {size} bytes)"
    # Checked on a scratch copy (with its -wal): even a read-only open of a WAL file writes to
    # it (-shm, checkpoint at close), and a corrupt file must stay as found, for forensics.
    import shutil
    import tempfile
    scratch = Path(tempfile.mkdtemp(prefix="riskd-check-", dir=str(p.parent)))
    try:
        copy = scratch / p.name
        shutil.copyfile(p, copy)
        if Path(str(p) + "-wal").exists():
            shutil.copyfile(Path(str(p) + "-wal"), Path(str(copy) + "-wal"))
        conn = sqlite3.connect(str(copy), timeout=5.0, isolation_level=None)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.OperationalError as exc:
            if "malformed" in str(exc) or "not a database" in str(exc):
                return f"{exc}"
            raise
        except sqlite3.DatabaseError as exc:  # "database disk image is malformed" ...
            return f"{exc}"
        finally:
            conn.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if rows != [("ok",)]:
        return "quick_check: " + "; ".join(str(r[0]) for r in rows[:3])
    return None


def _move_aside(path: Path, now: datetime) -> Path:
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            src.replace(Path(str(target) + suffix))
    return target


def _salvage(bad: Path, into: "Database", now: datetime) -> tuple[list[int], list[str]]:
    """Per-account state still readable from the corrupt copy ``bad``, as snapshots in ``into``.
    Works on a scratch copy so the forensics file stays byte-for-byte as found."""
    import shutil
    import tempfile
    saved: list[int] = []
    errors: list[str] = []
    scratch = Path(tempfile.mkdtemp(prefix="riskd-salvage-", dir=str(bad.parent)))
    try:
        copy = scratch / "salvage.sqlite"
        shutil.copyfile(bad, copy)
        for suffix in ("-wal",):
            if Path(str(bad) + suffix).exists():
                shutil.copyfile(Path(str(bad) + suffix), Path(str(copy) + suffix))
        conn = sqlite3.connect(str(copy), timeout=1.0, isolation_level=None)
        try:
            ids = set()
            for table in ("accounts", "snapshots", "lockouts"):
                try:
                    ids.update(r[0] for r in conn.execute(f"SELECT DISTINCT account_id FROM {table}"))
                except sqlite3.DatabaseError as exc:
                    errors.append(f"{table}: {exc}")
        finally:
            conn.close()
        old = Database.__new__(Database)  # no schema checks/migrations on the broken copy
        old.path, old.readonly, old._lock = str(copy), True, threading.Lock()
        old._derived, old._since_snapshot = {}, {}
        old._conn = sqlite3.connect(str(copy), timeout=1.0, isolation_level=None)
        try:
            for aid in sorted(i for i in ids if isinstance(i, int)):
                try:
                    state, seq = old.load(aid)
                except Exception as exc:  # noqa: BLE001
                    try:  # the snapshot/journal pages are gone: the derived tables may remain
                        with old._read() as c:
                            state, seq = old._state_from_tables(c, aid), 0
                    except Exception as exc2:  # noqa: BLE001
                        errors.append(f"account {aid}: {exc}; tables: {exc2}")
                        continue
                if state is None:
                    continue
                into.snapshot(aid, seq, state, now)
                saved.append(aid)
        finally:
            old._conn.close()
    except Exception as exc:  # noqa: BLE001 - salvage is best effort, never fatal
        errors.append(f"salvage: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return saved, errors


def open_checked(path: str | Path, now: datetime, **kw: Any) -> tuple["Database", Recovery | None]:
    """Open (and migrate) the state file; a corrupt one is moved aside, salvaged and recorded
    (see the comment above). Returns the open database and the recovery done, if any."""
    p = Path(path)
    reason = check_file(p)
    if reason is None:
        return Database(p, migrate=True, now=now, **kw), None
    moved = _move_aside(p, now)
    logger.critical("db {}: corrupt ({}); moved to {}; starting with a fresh file", p, reason,
                    moved)
    db = Database(p, migrate=True, now=now, **kw)
    saved, errors = _salvage(moved, db, now)
    rec = Recovery(reason, str(moved), now, tuple(saved), tuple(errors))
    db.audit("daemon", None, None, {"event": "corrupt_state_file_recovered", "reason": reason,
                                    "moved_to": str(moved), "salvaged_accounts": saved,
                                    "salvage_errors": errors[:10]}, now)
    db.meta_set(RECOVERY_META_KEY, {"reason": reason, "moved_to": str(moved), "at": iso(now),
                                    "salvaged": saved, "salvage_errors": errors[:10]})
    return db, rec


def recent_recovery(db: "Database", now: datetime) -> Recovery | None:
    """The recovery recorded in ``db`` within the last day (shown in status after a restart)."""
    try:
        doc = db.meta_get(RECOVERY_META_KEY)
    except Exception:  # noqa: BLE001
        return None
    if not isinstance(doc, dict) or not doc.get("at"):
        return None
    at = parse_iso(doc["at"])
    if at is None or (now - at).total_seconds() > RECOVERY_SHOWN_SECONDS:
        return None
    return Recovery(str(doc.get("reason")), str(doc.get("moved_to")), at,
                    tuple(doc.get("salvaged") or ()), tuple(doc.get("salvage_errors") or ()))
