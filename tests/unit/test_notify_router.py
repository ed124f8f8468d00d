"""Router: severity/kind filters, de-duplication windows, rate limits, lock-once (clock moved by
hand: ``now`` is a plain number of seconds)."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings, strategies as st

from risk_actors.messages import Notify
from risk_actors.notify.router import Deduper, RateLimiter, Route, Router, severity_at_least

AT = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)


def alert(kind="enforcement", severity="warning", message="closed 1 MNQ", key=None, acct=7):
    return Notify(kind=kind, severity=severity, account_id=acct, rule="max_contracts",
                  message=message, at=AT, key=key)


def delivered(batch, channel="c"):
    return [a for name, a in batch.deliveries if name == channel]


def test_severity_order_and_unknown_counts_as_worst():
    assert severity_at_least("critical", "warning")
    assert not severity_at_least("info", "warning")
    assert severity_at_least("mystery", "critical")


def test_channel_with_min_severity_when_info_alert_then_not_delivered():
    router = Router([Route("c", min_severity="error")], dedup_seconds=60)
    batch = router.offer(alert(severity="warning"), now=0)
    assert delivered(batch) == [] and len(batch.logged) == 1  # the log still gets it


def test_channel_with_kinds_when_other_kind_then_not_delivered():
    router = Router([Route("c", kinds=frozenset({"lock_start"}))], 60)
    assert delivered(router.offer(alert(kind="enforcement"), 0)) == []
    assert len(delivered(router.offer(alert(kind="lock_start", message="x"), 0))) == 1


def test_channel_wants_predicate_is_applied():
    router = Router([Route("c", wants=lambda a: a.account_id == 1)], 60)
    assert delivered(router.offer(alert(acct=2), 0)) == []
    assert len(delivered(router.offer(alert(acct=1), 0))) == 1


def test_five_identical_alerts_when_window_closes_then_one_delivery_and_one_summary():
    router = Router([Route("c")], dedup_seconds=60)
    out = []
    for t in (0, 1, 2, 3, 4):
        out += delivered(router.offer(alert(), t))
    assert len(out) == 1
    assert router.next_deadline() == 60
    assert delivered(router.tick(59.9)) == []
    summary = delivered(router.tick(60))
    assert len(summary) == 1
    assert "repeated 4 more times within 60 s" in summary[0].message
    assert summary[0].data["repeated"] == 4
    assert router.next_deadline() is None


def test_single_alert_when_window_closes_then_no_summary():
    router = Router([Route("c")], 60)
    router.offer(alert(), 0)
    assert router.tick(61).deliveries == ()


def test_identical_alert_after_window_then_delivered_again_after_the_summary():
    router = Router([Route("c")], 60)
    router.offer(alert(), 0)
    router.offer(alert(), 10)
    batch = router.offer(alert(), 70)  # the closed window's summary first, then the new one
    msgs = [a.message for a in delivered(batch)]
    assert msgs == ["closed 1 MNQ (repeated 1 more time within 60 s)", "closed 1 MNQ"]


def test_different_messages_are_not_merged():
    router = Router([Route("c")], 60)
    assert len(delivered(router.offer(alert(message="a"), 0))) == 1
    assert len(delivered(router.offer(alert(message="b"), 0))) == 1


def test_lock_with_key_when_repeated_later_then_announced_once_without_summary():
    router = Router([Route("c")], dedup_seconds=60, once_seconds=86_400)
    lock = alert(kind="lock_start", key="lock|7|daily_realized_loss|2026-03-02T23:00")
    assert len(delivered(router.offer(lock, 0))) == 1
    for t in (5, 100, 3600):
        assert delivered(router.offer(lock, t)) == []
    assert router.drain(4000).deliveries == ()


def test_dedup_zero_window_then_every_alert_goes_out():
    router = Router([Route("c", max_per_minute=0)], dedup_seconds=0)
    assert sum(len(delivered(router.offer(alert(), t))) for t in range(10)) == 10


def test_rate_limit_when_exceeded_then_excess_merged_into_one_summary():
    router = Router([Route("c", max_per_minute=3)], dedup_seconds=60)
    out = []
    for i in range(10):
        out += delivered(router.offer(alert(message=f"m{i}", severity="error" if i == 7 else
                                            "warning"), i))
    assert [a.message for a in out] == ["m0", "m1", "m2"]
    assert router.next_deadline() == 60
    assert delivered(router.tick(59)) == []
    (summary,) = delivered(router.tick(60))
    assert summary.data["rate_limited"] == 7
    assert summary.severity == "error"  # the worst of the merged ones
    assert "7 alerts held back by the rate limit (3 per minute)" in summary.message
    assert "Latest: m9" in summary.message


def test_rate_limit_is_per_channel():
    router = Router([Route("slow", max_per_minute=1), Route("fast", max_per_minute=0)], 60)
    for i in range(3):
        router.offer(alert(message=f"m{i}"), i)
    assert len(router.limits["slow"].held) == 2 and router.limits["fast"].held == []


def test_drain_releases_everything_ignoring_limits():
    router = Router([Route("c", max_per_minute=1)], 60)
    router.offer(alert(message="a"), 0)
    router.offer(alert(message="a"), 1)       # merged (dedup)
    router.offer(alert(message="b"), 2)       # held (rate)
    (merged,) = delivered(router.drain(3))
    assert merged.data["messages"] == ["b", "a (repeated 1 more time within 60 s)"]


def test_deduper_memory_is_bounded():
    d = Deduper(60)
    for i in range(12_000):
        d.offer(alert(message=str(i)), 0)
        if i % 1000 == 0:
            d.due(0)
    d.due(0)
    assert len(d.open) <= 10_000


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 30), st.sampled_from("abc")), max_size=20),
       st.integers(1, 10))
def test_every_copy_is_accounted_for_and_rate_is_respected(steps, limit):
    router = Router([Route("c", max_per_minute=limit)], dedup_seconds=20)
    now, sent_times, copies = 0.0, [], 0
    accounted = 0
    for gap, msg in steps:
        now += gap
        batch = router.offer(alert(message=msg), now)
        for a in delivered(batch):
            sent_times.append(now)
            accounted += _count(a)
        copies += 1
    for a in delivered(router.drain(now + 1000)):
        accounted += _count(a)
    assert accounted == copies
    # no 60 s window (before the final drain) holds more than `limit` deliveries
    for i, t in enumerate(sent_times):
        assert sum(1 for u in sent_times[i:] if u - t < 60) <= limit


def _count(a: Notify) -> int:
    # an original stands for 1 copy, a de-dup summary for its repeats, a rate-limit summary
    # for what it merged (its data lists up to 20 messages: the strategy stays below that)
    if "rate_limited" in a.data:
        return sum(_repeats(m) or 1 for m in a.data["messages"])
    return a.data.get("repeated", 1)


def _repeats(message: str) -> int:
    import re
    m = re.search(r"repeated (\d+) more time", message)
    return int(m.group(1)) if m else 0


def test_rate_limiter_zero_limit_is_unlimited():
    lim = RateLimiter(0)
    assert all(lim.offer(alert(), 0) is not None for _ in range(100))
