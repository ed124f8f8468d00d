"""The floor: a minimal client on the same SDK as riskd (project-x-py ``ProjectX`` +
``ProjectXRealtimeClient``), one asyncio process, no actors, no rules, no journal.

Per account it logs in (``account_name`` selects the account, as riskd does), opens both hubs,
subscribes the user events and the quotes of the given contracts (so it receives the same
quote load as riskd), and on a ``GatewayUserPosition`` whose size exceeds ``--limit`` POSTs
``Position/partialCloseContract`` for the excess with the SDK's own httpx client and token, the
same REST call riskd's enforcer makes. Prints ``READY`` once every account is connected, then
runs until SIGTERM.

    python bench/_floor_client.py --url URL --account ID:NAME [...] --limit 5 --quotes CID,...
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from risk_actors.broker import sdk  # noqa: E402  (URL-guarded SDK construction, nothing more)
from risk_actors.broker.settings import BrokerSettings  # noqa: E402


def _items(payload):
    if isinstance(payload, list):
        for p in payload:
            yield from _items(p)
    elif isinstance(payload, dict):
        if "data" in payload and "action" in payload and "id" not in payload:
            yield from _items(payload["data"])
        else:
            yield payload


async def run_account(settings: BrokerSettings, account_id: int, name: str, limit: int,
                      quotes: list[str], ready: asyncio.Event, counts: dict) -> None:
    client = sdk.build_rest_client(settings, name)
    await client.__aenter__()
    await client.authenticate()
    rt = sdk.build_realtime_client(settings, client.session_token, account_id)
    inflight: set[asyncio.Task] = set()

    async def reduce(contract_id: str, excess: int) -> None:
        http = await client._ensure_client()
        await http.post(f"{settings.api_url}/Position/partialCloseContract",
                        json={"accountId": account_id, "contractId": contract_id, "size": excess},
                        headers={"Authorization": f"Bearer {client.session_token}"})
        counts["reduced"] += 1

    async def on_position(data) -> None:
        for p in _items(data):
            if p.get("accountId") == account_id and p.get("size", 0) > limit:
                t = asyncio.ensure_future(reduce(p["contractId"], p["size"] - limit))
                inflight.add(t)
                t.add_done_callback(inflight.discard)

    async def on_quote(_data) -> None:
        counts["quotes"] += 1

    await rt.add_callback("position_update", on_position)
    await rt.add_callback("quote_update", on_quote)
    if not await rt.connect():
        raise RuntimeError(f"account {account_id}: hubs did not connect")
    await rt.subscribe_user_updates()

    def on_raw_quote(*_args) -> None:  # every GatewayQuote the SignalR client parsed (no coalescing)
        counts["raw_quotes"] += 1

    rt.market_connection.on("GatewayQuote", on_raw_quote)
    for cid in quotes:
        await rt.market_connection.send("SubscribeContractQuotes", [cid])
    ready.set()
    await asyncio.Event().wait()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--account", action="append", required=True, help="ID:NAME")
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--quotes", default="")
    args = ap.parse_args()
    settings = BrokerSettings(api_url=f"{args.url}/api", user_hub_url=f"{args.url}/hubs/user",
                              market_hub_url=f"{args.url}/hubs/market", username="bench",
                              api_key="bench-key", requests_per_minute=100000)
    quotes = [c for c in args.quotes.split(",") if c]
    counts = {"reduced": 0, "quotes": 0, "raw_quotes": 0}
    events, tasks = [], []
    for spec in args.account:
        aid, name = spec.split(":", 1)
        ev = asyncio.Event()
        events.append(ev)
        tasks.append(asyncio.create_task(run_account(settings, int(aid), name, args.limit,
                                                     quotes, ev, counts)))
    waiter = asyncio.gather(*(e.wait() for e in events))
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for t in tasks:
        if t in done and t.exception():
            raise t.exception()
    print("READY", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    print(f"reduced={counts['reduced']} quotes={counts['quotes']} raw_quotes={counts['raw_quotes']}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
