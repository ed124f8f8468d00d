"""The analytics tables, in riskd's SQLite file, through a connection of their own.

They are not part of :mod:`risk_actors.db`'s versioned schema: the component creates them with
``CREATE TABLE IF NOT EXISTS`` so that an optional component never forces a core migration, and
dropping them loses only statistics. Same conventions as the core: WAL, short ``BEGIN
IMMEDIATE`` writes, times as ISO-8601 UTC strings, money as exact decimal text.

* ``analytics_fills``: one row per (account, trade id); a fill seen again (a reconciliation, a
  void) replaces its row, so recording is idempotent.
* ``analytics_rule_triggers``: one row per rule violation (enforce and shadow alike).

``trading_day`` is stored with each row (computed with the reset settings in force when it was
recorded) so that a date range is an index lookup.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Iterator

from risk_actors.analytics.stats import Fill, money
from risk_actors.db import iso, parse_iso

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS analytics_fills (
        account_id INTEGER NOT NULL, trade_id INTEGER NOT NULL, contract_id TEXT NOT NULL,
        symbol TEXT NOT NULL, created TEXT NOT NULL, trading_day TEXT NOT NULL,
        price TEXT, pnl TEXT, fees TEXT NOT NULL, side INTEGER, size INTEGER,
        voided INTEGER NOT NULL DEFAULT 0, order_id INTEGER,
        PRIMARY KEY (account_id, trade_id))""",
    """CREATE INDEX IF NOT EXISTS analytics_fills_day ON analytics_fills (trading_day,
        account_id)""",
    """CREATE TABLE IF NOT EXISTS analytics_rule_triggers (
        id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER NOT NULL, at TEXT NOT NULL,
        trading_day TEXT NOT NULL, rule TEXT NOT NULL, mode TEXT NOT NULL, reason TEXT NOT NULL,
        UNIQUE (account_id, at, rule, reason))""",
    """CREATE INDEX IF NOT EXISTS analytics_triggers_day ON analytics_rule_triggers
        (trading_day, account_id)""",
)


class AnalyticsStore:
    """Read/write access to the analytics tables (``readonly=True`` for the CLI)."""

    def __init__(self, path: str | Path, *, readonly: bool = False,
                 busy_timeout: float = 5.0) -> None:
        self.path = str(path)
        self.readonly = readonly
        if readonly:
            uri = f"{Path(self.path).absolute().as_uri()}?mode=ro"
            self.conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout,
                                        isolation_level=None)
        else:
            self.conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if not readonly:
                self.conn.execute("PRAGMA journal_mode = WAL")
                with self._write() as conn:
                    for sql in SCHEMA:
                        conn.execute(sql)
        except BaseException:
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # The write lock is taken at BEGIN, as in risk_actors.db: several processes write here.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def ready(self) -> bool:
        """True when the tables exist (False: analytics never ran on this file)."""
        row = self.conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND "
                                "name IN ('analytics_fills', 'analytics_rule_triggers')"
                                ).fetchone()
        return row[0] == 2

    # ---- writes -------------------------------------------------------------------------
    def add_fill(self, fill: Fill, trading_day: date, price: float | None = None,
                 order_id: int | None = None) -> None:
        """Record (or replace) one fill: the latest copy of a trade id wins."""
        pnl = None if fill.pnl is None else str(fill.pnl)
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO analytics_fills VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (fill.account_id, fill.trade_id, fill.contract_id, fill.symbol,
                 iso(fill.created), trading_day.isoformat(),
                 None if price is None else str(money(price)), pnl, str(fill.fees), fill.side,
                 fill.size, int(fill.voided), order_id))

    def add_trigger(self, account_id: int, at: datetime, trading_day: date, rule: str,
                    mode: str, reason: str) -> None:
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO analytics_rule_triggers (account_id, at, "
                         "trading_day, rule, mode, reason) VALUES (?,?,?,?,?,?)",
                         (account_id, iso(at), trading_day.isoformat(), rule, mode, reason))

    # ---- reads --------------------------------------------------------------------------
    @staticmethod
    def _where(account_id: int | None, first: date | None, last: date | None
               ) -> tuple[str, list]:
        parts, args = [], []
        if account_id is not None:
            parts.append("account_id = ?")
            args.append(account_id)
        if first is not None:
            parts.append("trading_day >= ?")
            args.append(first.isoformat())
        if last is not None:
            parts.append("trading_day <= ?")
            args.append(last.isoformat())
        return (" WHERE " + " AND ".join(parts) if parts else ""), args

    def fills(self, account_id: int | None = None, first: date | None = None,
              last: date | None = None) -> list[Fill]:
        """Fills (voided ones included: the statistics skip them) of trading days
        ``first..last`` (inclusive), oldest first."""
        where, args = self._where(account_id, first, last)
        rows = self.conn.execute(
            "SELECT account_id, trade_id, contract_id, created, pnl, fees, size, side, voided, "
            f"symbol FROM analytics_fills{where} ORDER BY created, trade_id", args).fetchall()
        return [Fill(r[0], r[1], r[2], parse_iso(r[3]), money(r[4]), money(r[5]), r[6] or 0,
                     r[7] or 0, bool(r[8]), r[9]) for r in rows]

    def triggers(self, account_id: int | None = None, first: date | None = None,
                 last: date | None = None) -> list[tuple[str, str, str]]:
        """(rule, mode, reason) of each rule trigger in the range, oldest first."""
        where, args = self._where(account_id, first, last)
        return [tuple(r) for r in self.conn.execute(
            f"SELECT rule, mode, reason FROM analytics_rule_triggers{where} ORDER BY at, id",
            args)]

    def accounts(self) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT account_id FROM analytics_fills UNION "
            "SELECT account_id FROM analytics_rule_triggers ORDER BY 1")]

    def rows(self) -> Iterator[tuple]:
        yield from self.conn.execute("SELECT * FROM analytics_fills ORDER BY account_id, "
                                     "trade_id")
