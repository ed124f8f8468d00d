"""Property: whatever the change sequence and snapshot cadence, what ``load`` restores equals the
reducer's full replay, and the derived tables mirror the state (risk_actors/db.py).

Sequences are drawn from the real message/state classes: positions, orders, fills (re-used ids,
voids), locks (account and symbol, overlapping keys), lifts, rule memory, daily resets, quotes,
account updates, ticks, REST reconciliations. Snapshots happen automatically (random
``snapshot_every``) and on demand, the database is reopened mid-way (fresh per-process caches)
and intermediate loads are checked.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from risk_actors import db as dbm
from risk_actors import messages as m
from risk_actors import state as st

T0 = datetime(2025, 6, 2, 13, 0, tzinfo=timezone.utc)
ACCT = 77
CONTRACTS = ("CON.F.US.MNQ.U25", "CON.F.US.EP.U25", "CON.F.US.RTY.U25")
RULES = ("daily_realized_loss", "trade_frequency_limit", "cooldown_after_loss", "symbol_blocks")

prices = hs.integers(-400_000, 400_000).map(lambda q: q / 4)  # quarter ticks: exact in JSON
money = hs.integers(-200_000, 200_000).map(lambda c: c / 100)
offsets = hs.integers(-3600, 4 * 3600).map(lambda s: T0 + timedelta(seconds=s))
contract = hs.sampled_from(CONTRACTS)
json_value = hs.recursive(hs.none() | hs.booleans() | hs.integers(-10**6, 10**6)
                          | hs.text(max_size=5),
                          lambda inner: hs.lists(inner, max_size=3)
                          | hs.dictionaries(hs.text(max_size=4), inner, max_size=3),
                          max_leaves=6)

position = hs.builds(m.PositionEvent, hs.just(ACCT), contract, hs.integers(0, 6),
                     hs.sampled_from((m.POSITION_LONG, m.POSITION_SHORT)), prices,
                     hs.none() | hs.integers(1, 99), hs.none() | offsets)
order = hs.builds(m.OrderEvent, hs.just(ACCT), hs.integers(1, 6), contract, hs.integers(1, 6),
                  hs.integers(1, 5), hs.integers(0, 1), hs.integers(1, 4),
                  symbol_id=hs.none() | hs.just("F.US.MNQ"), stop_price=hs.none() | prices)
trade = hs.builds(m.TradeEvent, hs.just(ACCT), hs.integers(1, 12), contract, offsets, prices,
                  hs.none() | money, money.map(abs), hs.integers(0, 1), hs.integers(1, 3),
                  hs.booleans(), hs.none() | hs.integers(1, 6))
account = hs.builds(m.AccountEvent, hs.just(ACCT), hs.sampled_from(("", "PRAC-1")),
                    hs.none() | money, hs.none() | hs.booleans())
quote = hs.builds(m.QuoteEvent, contract, hs.none() | prices, hs.none() | prices)
contracts = hs.builds(m.ContractsKnown, hs.just(ACCT), hs.lists(hs.builds(
    m.ContractInfo, contract, hs.sampled_from(("MNQU5", "ESU5")), hs.just(0.25),
    hs.sampled_from((0.5, 12.5))), max_size=2).map(tuple))
lock = hs.builds(m.Lock, hs.sampled_from((m.LOCK_HARD, m.LOCK_COOLDOWN, m.LOCK_INDEFINITE)),
                 hs.text(max_size=8), hs.none() | offsets, hs.just("account"), hs.none(),
                 hs.booleans())
symbol_lock = hs.builds(m.Lock, hs.just(m.LOCK_SYMBOL), hs.text(max_size=8), hs.none() | offsets,
                        hs.just("symbol"), hs.sampled_from(("RTY", "mnq")))
locks_added = hs.builds(st.LocksAdded, hs.sampled_from(RULES),
                        hs.lists(lock | symbol_lock, min_size=1, max_size=3).map(tuple))
lifted = hs.builds(st.LockLifted, hs.sampled_from(RULES), hs.none() | hs.just("RTY"))
memory = hs.builds(st.RuleMemorySet, hs.sampled_from(RULES),
                   hs.dictionaries(hs.text(max_size=4), json_value, max_size=3))
reset = hs.builds(st.DailyReset, offsets, offsets)
scheduled = hs.builds(st.ResetScheduled, offsets, hs.none() | offsets)
misc = hs.builds(m.Tick, hs.just(ACCT)) | hs.builds(m.ConnectionChanged, hs.just(ACCT),
                                                     hs.booleans())
reconciled = hs.builds(m.Reconciled, hs.just(ACCT), hs.none() | account,
                       hs.lists(position, max_size=3).map(tuple),
                       hs.lists(order, max_size=3).map(tuple),
                       hs.lists(trade, max_size=4).map(tuple))
change = hs.one_of(position, order, trade, account, quote, contracts, locks_added, lifted, memory,
                   reset, scheduled, misc, reconciled)

# One step: a change, seconds since the previous step, a seq increment (0 = same event as the
# previous change), and whether to snapshot on demand / reopen / load after it.
step = hs.tuples(change, hs.integers(0, 900), hs.sampled_from((0, 1, 1, 1, 2)),
                 hs.sampled_from((False,) * 9 + (True,)), hs.sampled_from((False,) * 14 + (True,)),
                 hs.sampled_from((False,) * 9 + (True,)))


def _check_derived(db: dbm.Database, state: st.AccountState) -> None:
    conn = db._conn
    locks = conn.execute("SELECT rule, kind, reason, started_at, expires_at, scope, symbol, "
                         "until_reset FROM lockouts WHERE account_id = ? ORDER BY rowid",
                         (ACCT,)).fetchall()
    assert tuple(dbm.Database._lockout(r) for r in locks) == state.lockouts
    trades = dict(conn.execute("SELECT trade_id, pnl FROM trades WHERE account_id = ?", (ACCT,)))
    assert trades == {k: t.pnl for k, t in state.trades.items()}
    day = conn.execute("SELECT realized, fees, net, trade_count FROM daily_pnl WHERE "
                       "account_id = ? AND day_start = ?",
                       (ACCT, dbm.iso(state.last_reset_at) or "")).fetchone()
    if state.trades or day is not None:
        assert day == (state.realized_pnl, state.fees_total, state.net_realized(),
                       sum(1 for t in state.trades.values() if not t.voided))


# RISKD_DB_EXAMPLES=2000 for a longer soak; 60 keeps the unit run in a couple of seconds.
@settings(max_examples=int(os.environ.get("RISKD_DB_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(steps=hs.lists(step, min_size=10, max_size=60), snapshot_every=hs.integers(1, 12))
def test_snapshot_prune_load_equals_full_replay(steps, snapshot_every) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.db"
        db = dbm.Database(path, snapshot_every=snapshot_every)
        state, at, seq, journal = st.AccountState(ACCT), T0, 0, []
        try:
            for ch, dt, dseq, snap, reopen, check in steps:
                at, seq = at + timedelta(seconds=dt), seq + dseq
                state = attrs.evolve(st.reduce(state, ch, at), last_seq=seq)
                db.record(ACCT, seq, ch, state, at)
                journal.append((ch, at))
                if snap:
                    db.snapshot(ACCT, seq, state, at)
                if reopen:
                    db.close()
                    db = dbm.Database(path, snapshot_every=snapshot_every)
                if check:
                    assert db.load(ACCT) == (attrs.evolve(state, quotes={}), seq)
                    _check_derived(db, state)
            _check_derived(db, state)
            errors: list = []
            full = st.reduce_all(st.AccountState(ACCT), journal)
            assert db.load(ACCT, errors) == (attrs.evolve(full, quotes={}, last_seq=seq), seq)
            assert errors == []
            # The journal never holds more than one cadence's worth of rows.
            n = db._conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
            assert n < snapshot_every
        finally:
            db.close()
