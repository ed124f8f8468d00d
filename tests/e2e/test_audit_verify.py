"""`riskd audit verify` / `riskd audit export` as real CLI processes over a real database file
that the test tampers with directly, the way someone with write access to the file could."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from risk_actors.db import Database
from tests.e2e.conftest import write_config

pytestmark = pytest.mark.e2e
T0 = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
def trail(tmp_path) -> tuple[Path, Path]:
    """A config (no daemon, nothing on its port) whose database holds 5 audit records."""
    config = write_config(tmp_path, "http://127.0.0.1:9", 7, {"max_contracts": {"limit": 5}})
    (tmp_path / "state").mkdir()
    db_file = tmp_path / "state" / "riskd.sqlite"
    db = Database(db_file)
    for i in range(1, 6):
        db.audit("verdict", 7, "max_contracts", {"reason": f"reason {i}", "seq": i},
                 T0 + timedelta(seconds=i))
    db.close()
    return config, db_file


def riskd(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "risk_actors.cli.admin", "audit", *args,
                           "--config", str(config)], capture_output=True, text=True, timeout=60)


def tamper(db_file: Path, *statements: str) -> None:
    conn = sqlite3.connect(db_file)
    # The triggers refuse UPDATE/DELETE through riskd; an attacker simply drops them.
    conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()


def test_untouched_trail_when_verified_then_exit_0(trail):
    config, _ = trail
    result = riskd(config, "verify")
    assert result.returncode == 0, result.stderr
    assert "audit trail intact: 5 record(s)" in result.stdout
    assert "riskd is NOT running" in result.stderr


def test_edited_record_when_verified_then_fails_naming_it(trail):
    config, db_file = trail
    tamper(db_file, """UPDATE audit SET detail = '{"reason":"nothing happened","seq":3}'
                       WHERE id = 3""")
    result = riskd(config, "verify")
    assert result.returncode == 1
    assert "first bad record is #3" in result.stderr
    assert "content does not match its hash" in result.stderr


def test_removed_record_when_verified_then_fails_naming_the_gap(trail):
    config, db_file = trail
    tamper(db_file, "DELETE FROM audit WHERE id = 3")
    result = riskd(config, "verify", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["intact"] is False and data["first_bad_record"] == 4
    assert "rows 3..3 are missing" in data["reason"]


def test_removed_last_record_when_verified_then_the_chain_head_catches_it(trail):
    config, db_file = trail
    tamper(db_file, "DELETE FROM audit WHERE id = 5")
    result = riskd(config, "verify")
    assert result.returncode == 1
    assert "first bad record is #5" in result.stderr and "missing at the end" in result.stderr


def test_swapped_records_when_verified_then_fails_at_the_first_moved_one(trail):
    config, db_file = trail
    # Swap records 2 and 3 (ids stay in order, contents and hashes trade places).
    tamper(db_file,
           "UPDATE audit SET id = -2 WHERE id = 2",
           "UPDATE audit SET id = 2 WHERE id = 3",
           "UPDATE audit SET id = 3 WHERE id = -2")
    result = riskd(config, "verify")
    assert result.returncode == 1
    assert "first bad record is #2" in result.stderr


def test_old_verify_flag_still_works(trail):
    config, db_file = trail
    assert riskd(config, "--verify").returncode == 0
    tamper(db_file, "UPDATE audit SET rule = 'other' WHERE id = 4")
    result = riskd(config, "--verify")
    assert result.returncode == 1 and "#4" in result.stderr


def test_export_csv_and_json_when_asked_then_every_record_oldest_first(trail, tmp_path):
    config, _ = trail
    as_csv = riskd(config, "export", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert json.loads(rows[2]["detail"]) == {"reason": "reason 3", "seq": 3}
    out = tmp_path / "audit.jsonl"
    as_json = riskd(config, "export", "--format", "json", "--output", str(out))
    assert as_json.returncode == 0, as_json.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["kind"] == "verdict" and records[0]["rule"] == "max_contracts"
    bad = riskd(config, "export", "--format", "xml")
    assert bad.returncode == 2 and "'xml' is not one of 'csv', 'json'" in bad.stderr
