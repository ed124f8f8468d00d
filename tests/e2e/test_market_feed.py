"""The shared market data feed (``daemon.market_data: shared``, the default), end to end.

Three accounts hold MNQ; one price drop must close all three through daily_unrealized_loss,
with the quotes reaching them over a single market hub subscription (the simulator's hub log
says which connection subscribed what). ``per_account`` keeps one subscription per account.
"""

from __future__ import annotations

import pytest
import yaml

from tests.e2e.conftest import wait_for, write_config

pytestmark = pytest.mark.e2e
RULES = {"daily_unrealized_loss": {"enabled": True, "limit": -200}}


def _three_accounts(sim, tmp_path, market_data: str):
    ids = [sim.control.create_account(f"FEED-{i}", balance=50000.0)["id"] for i in range(3)]
    sim.control.set_price("MNQ", 21000)
    path = write_config(tmp_path, sim.url, ids[0], RULES,
                        extra={"daemon": {"market_data": market_data}})
    doc = yaml.safe_load(path.read_text())
    doc["accounts"] = [{"id": a, "name": f"FEED-{i}", "enabled": True} for i, a in enumerate(ids)]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return ids, path


def _quote_subscriptions(sim, since: int) -> dict[str, set[str]]:
    """market hub connection id -> contracts it subscribed quotes for."""
    subs: dict[str, set[str]] = {}
    for r in sim.control.log(since=since, kind="hub")["records"]:
        if r.get("hub") == "market" and r.get("target") == "SubscribeContractQuotes" \
                and not r.get("error"):
            subs.setdefault(r["connectionId"], set()).update(r.get("args") or [])
    return subs


@pytest.mark.parametrize("market_data, connections", [("shared", 1), ("per_account", 3)])
def test_price_drop_closes_every_account_through_one_market_subscription(
        sim, riskd_factory, tmp_path, market_data, connections):
    ids, path = _three_accounts(sim, tmp_path, market_data)
    since = sim.control.log()["next"]
    daemon = riskd_factory(path)
    for a in ids:
        daemon.wait_connected(a)
    for a in ids:
        sim.control.place_order(a, "MNQ", "market", "buy", 2)
    wait_for(lambda: len(_quote_subscriptions(sim, since)) == connections, 10,
             f"{connections} market hub connection(s) subscribed to MNQ quotes")

    sim.control.set_price("MNQ", 20940)  # 2 x -60 pt x $2 = -$240 <= -$200 on every account

    wait_for(lambda: all(sim.position(a, "MNQ") == 0 for a in ids), 5,
             "every account's MNQ closed by daily_unrealized_loss")
    subs = _quote_subscriptions(sim, since)
    assert len(subs) == connections, subs
    assert all(cids == {next(iter(cids))} and next(iter(cids)).startswith("CON.F.US.MNQ")
               for cids in subs.values()), subs
    closes = [r["body"]["accountId"] for r in sim.requests("/api/Position/closeContract", since)]
    assert sorted(set(closes)) == sorted(ids)
