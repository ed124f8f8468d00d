"""The unchanged project-x-py 4.4.1 SDK against the simulator, over real sockets.

The simulator runs as a subprocess (conftest.py); every test drives the SDK the way riskd's
GatewayActor will: ProjectX with an explicit ProjectXConfig, one realtime client per account with
the stale-feed watchdog switched off, callbacks that copy payloads at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
import urllib.error
import urllib.request
from typing import Any, AsyncIterator, Callable

import pytest
from project_x_py import EventBus, OrderManager, PositionManager, ProjectX, ProjectXConfig
from project_x_py.exceptions import OrderSubmissionUncertainError, ProjectXAuthenticationError, ProjectXOrderError
from project_x_py.realtime import ProjectXRealtimeClient

from gateway_sim.control_client import ControlClient

MNQ = "CON.F.US.MNQ.Z26"
CALLBACKS = ("account_update", "position_update", "order_update", "trade_execution", "quote_update")
pytestmark = pytest.mark.timeout(60)


def sdk_config(url: str) -> ProjectXConfig:
    return ProjectXConfig(api_url=f"{url}/api", user_hub_url=f"{url}/hubs/user",
                          market_hub_url=f"{url}/hubs/market", requests_per_minute=1000, timeout_seconds=5)


class Events:
    """Every SDK callback payload, copied on arrival (the SDK mutates its dicts later)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    def callback(self, name: str) -> Callable[[Any], Any]:
        async def cb(data: Any) -> None:
            self.items.append((name, copy.deepcopy(data)))
            self._changed.set()
        return cb

    def of(self, name: str, pred: Callable[[Any], bool] = lambda d: True) -> list[Any]:
        return [d for n, d in self.items if n == name and pred(d)]

    async def wait_for(self, name: str, pred: Callable[[Any], bool] = lambda d: True, count: int = 1,
                       timeout: float = 5.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.of(name, pred)
            if len(found) >= count:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{count} x {name} not received in {timeout} s; got {self.items!r}"[:2000])
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)


class Session:
    """A logged-in ProjectX client plus a connected, subscribed realtime client."""

    def __init__(self, px: ProjectX, rt: ProjectXRealtimeClient, events: Events):
        self.px, self.rt, self.events = px, rt, events

    @property
    def account_id(self) -> int:
        return self.px.get_account_info().id


@contextlib.asynccontextmanager
async def sdk_session(url: str, account_name: str, contracts: tuple[str, ...] = (MNQ,)) -> AsyncIterator[Session]:
    cfg = sdk_config(url)
    async with ProjectX(username="trader", api_key="sim-key", config=cfg, account_name=account_name) as px:
        await px.authenticate()
        rt = ProjectXRealtimeClient(px.session_token, str(px.get_account_info().id), config=cfg)
        # gateway-api.md section 2: the watchdog reconnect loop loses events; riskd turns it off.
        rt.stale_feed_seconds = 1e9
        events = Events()
        for name in CALLBACKS:
            await rt.add_callback(name, events.callback(name))
        assert await rt.connect() is True
        assert await rt.subscribe_user_updates() is True
        if contracts:
            assert await rt.subscribe_market_data(list(contracts)) is True
        try:
            yield Session(px, rt, events)
        finally:
            await rt.cleanup()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def raw_post(url: str, path: str, body: Any, token: str | None = None, raw: bytes | None = None
             ) -> tuple[int, dict[str, str], bytes]:
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url + path, data=data, method="POST", headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def login_token(url: str) -> str:
    status, _, body = raw_post(url, "/api/Auth/loginKey", {"userName": "raw", "apiKey": "raw-key"})
    assert status == 200
    return json.loads(body)["token"]


def wait_until(pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- login and connections -------------------------------------------------------------------------

def test_login_selects_the_named_account_and_lists_every_account(sim_url: str, control: ControlClient, account: dict) -> None:
    other = control.create_account(account["name"] + "-b")

    async def scenario() -> None:
        async with ProjectX(username="trader", api_key="k", config=sdk_config(sim_url),
                            account_name=account["name"].lower()) as px:
            await px.authenticate()
            assert px.get_account_info().id == account["id"]
            ids = {a.id for a in await px.list_accounts()}
            assert {account["id"], other["id"]} <= ids
            assert await px.ping() == "pong"

    run(scenario())


def test_both_hubs_connect_and_quotes_arrive_on_change_and_periodically(sim_url: str, control: ControlClient, account: dict) -> None:
    async def scenario() -> None:
        async with sdk_session(sim_url, account["name"]) as s:
            assert s.rt.is_connected()
            # Snapshot on subscribe.
            await s.events.wait_for("quote_update", lambda d: d["contract_id"] == MNQ)
            await asyncio.to_thread(control.set_price, "MNQ", 21012.5)
            quotes = await s.events.wait_for("quote_update", lambda d: d["data"]["lastPrice"] == 21012.5)
            assert quotes[0]["data"]["symbol"] == "F.US.MNQ"
            # Periodic re-sends (every 500 ms in the test simulator) keep the SDK's watchdog fed.
            n = len(s.events.of("quote_update"))
            await s.events.wait_for("quote_update", count=n + 2, timeout=3.0)

    run(scenario())


def test_trader_fill_delivers_order_trade_order_position_account_through_sdk_callbacks(
        sim_url: str, control: ControlClient, account: dict) -> None:
    async def scenario() -> None:
        async with sdk_session(sim_url, account["name"]) as s:
            order_id = await asyncio.to_thread(control.place_order, account["id"], "MNQ", "market", "buy", 2)
            await s.events.wait_for("account_update", lambda d: d["id"] == account["id"] and d["balance"] < 50000)
            user = [(n, d) for n, d in s.events.items if n != "quote_update"]
            assert [n for n, _ in user] == ["order_update", "trade_execution", "order_update",
                                            "position_update", "account_update"]
            assert user[0][1]["id"] == order_id and user[0][1]["status"] == 1
            trade = user[1][1]
            assert (trade["orderId"], trade["size"], trade["price"], trade["profitAndLoss"]) == (order_id, 2, 21000.0, None)
            assert user[2][1]["status"] == 2 and user[2][1]["filledPrice"] == 21000.0
            assert (user[3][1]["size"], user[3][1]["type"], user[3][1]["averagePrice"]) == (2, 1, 21000.0)

    run(scenario())


def test_user_events_reach_only_the_sockets_subscribed_to_that_account(sim_url: str, control: ControlClient, account: dict) -> None:
    other = control.create_account(account["name"] + "-other")

    async def scenario() -> None:
        async with sdk_session(sim_url, account["name"], contracts=()) as s:
            mark = (await asyncio.to_thread(control.mark, "other-account-fill"))["record"]["n"]
            await asyncio.to_thread(control.place_order, other["id"], "MNQ", "market", "buy", 1)
            await asyncio.to_thread(control.place_order, account["id"], "MNQ", "market", "buy", 1)
            await s.events.wait_for("position_update", lambda d: d["accountId"] == account["id"])
            await asyncio.sleep(0.2)
            per_account = [d for n, d in s.events.items if n not in ("quote_update", "account_update")]
            assert per_account and all(d["accountId"] == account["id"] for d in per_account)
            # SubscribeAccounts() has no account argument: balance updates of every account come.
            assert {d["id"] for d in s.events.of("account_update")} == {account["id"], other["id"]}
            records = (await asyncio.to_thread(control.log, mark, "event"))["records"]
            other_events = [r for r in records if r["accountId"] == other["id"] and r["target"] != "GatewayUserAccount"]
            assert len(other_events) == 4 and all(r["delivered"] == 0 for r in other_events)

    run(scenario())


# -- trading through the SDK -----------------------------------------------------------------------

def test_sdk_places_modifies_and_cancels_a_limit_order(sim_url: str, control: ControlClient, account: dict) -> None:
    async def scenario() -> None:
        async with sdk_session(sim_url, account["name"], contracts=()) as s:
            om = OrderManager(s.px, EventBus())
            placed = await om.place_order(MNQ, 1, 0, 1, limit_price=20990.0)
            assert placed.success and placed.orderId
            await s.events.wait_for("order_update", lambda d: d["id"] == placed.orderId and d["status"] == 1)
            open_ids = [o.id for o in await om.search_open_orders()]
            assert placed.orderId in open_ids

            assert await om.modify_order(placed.orderId, limit_price=20995.0) is True
            await s.events.wait_for("order_update", lambda d: d["id"] == placed.orderId and d["limitPrice"] == 20995.0)
            state = await asyncio.to_thread(control.state, account["id"])
            assert [o["limitPrice"] for o in state["orders"]] == [20995.0]

            assert await om.cancel_order(placed.orderId) is True
            await s.events.wait_for("order_update", lambda d: d["id"] == placed.orderId and d["status"] == 3)
            assert (await asyncio.to_thread(control.state, account["id"]))["orders"] == []
            # A modify of the cancelled order is refused; the SDK turns success:false into an error.
            with pytest.raises(ProjectXOrderError, match="not open"):
                await om.modify_order(placed.orderId, limit_price=20990.0)

    run(scenario())


def test_sdk_partial_close_then_close_flattens_the_position(sim_url: str, control: ControlClient, account: dict) -> None:
    async def scenario() -> None:
        async with sdk_session(sim_url, account["name"], contracts=()) as s:
            await asyncio.to_thread(control.place_order, account["id"], "MNQ", "market", "buy", 3)
            await s.events.wait_for("position_update", lambda d: d["size"] == 3)
            pm = PositionManager(s.px, EventBus())
            result = await pm.partially_close_position(MNQ, 1)
            assert result["success"] is True
            await s.events.wait_for("position_update", lambda d: d["size"] == 2)
            assert [(p.size, p.type) for p in await s.px.search_open_positions()] == [(2, 1)]
            result = await pm.close_position_direct(MNQ)
            assert result["success"] is True
            await s.events.wait_for("position_update", lambda d: d["size"] == 0)
            assert await s.px.search_open_positions() == []
            # Closing a flat position: the SDK swallows the error and reports success False.
            assert (await pm.close_position_direct(MNQ))["success"] is False
            trades = await s.px.search_trades()
            assert sorted(t.size for t in trades) == [1, 2, 3]

    run(scenario())


# -- reconnects ------------------------------------------------------------------------------------

def _hub_invokes(control: ControlClient, since: int, target: str) -> list[dict]:
    records = control.log(since, "hub")["records"]
    return [r for r in records if r.get("action") == "invoke" and r.get("target") == target]


def test_reconnect_after_drop_restores_subscriptions_and_delivers_the_next_event_once(
        sim_url: str, control: ControlClient, account: dict) -> None:
    async def scenario() -> None:
        async with sdk_session(sim_url, account["name"]) as s:
            mark = (await asyncio.to_thread(control.mark, "before-drop"))["record"]["n"]
            dropped = await asyncio.to_thread(control.drop, "all")
            assert dropped["dropped"] == 2
            await asyncio.to_thread(wait_until, lambda: len(_hub_invokes(control, mark, "SubscribeTrades")) >= 1
                                    and len(_hub_invokes(control, mark, "SubscribeContractQuotes")) >= 1,
                                    5.0, "resubscription")
            await asyncio.sleep(0.3)  # the SDK's second round of subscriptions
            assert s.rt.is_connected()
            order_id = await asyncio.to_thread(control.place_order, account["id"], "MNQ", "market", "sell", 1)
            await s.events.wait_for("trade_execution", lambda d: d["orderId"] == order_id)
            await asyncio.sleep(0.3)
            assert len(s.events.of("trade_execution", lambda d: d["orderId"] == order_id)) == 1
            assert len(s.events.of("position_update", lambda d: d["size"] == 1)) == 1
            # Quotes flow again on the new market socket.
            await asyncio.to_thread(control.set_price, "MNQ", 21001)
            await s.events.wait_for("quote_update", lambda d: d["data"]["lastPrice"] == 21001.0)

    run(scenario())


def test_gateway_logout_and_a_hub_drop_fault_lose_events_but_the_sdk_reconnects(
        sim_url: str, control: ControlClient, account: dict) -> None:
    async def scenario() -> None:
        async with sdk_session(sim_url, account["name"], contracts=()) as s:
            mark = (await asyncio.to_thread(control.mark, "logout"))["record"]["n"]
            assert (await asyncio.to_thread(control.logout))["loggedOut"] == 2
            await asyncio.to_thread(wait_until, lambda: len(_hub_invokes(control, mark, "SubscribeOrders")) >= 1,
                                    5.0, "resubscription after logout")
            # The next user event is lost: the socket is cut instead of delivering it.
            await asyncio.to_thread(control.add_fault, "hub:user", "drop", 1)
            mark2 = (await asyncio.to_thread(control.mark, "drop-fault"))["record"]["n"]
            first = await asyncio.to_thread(control.place_order, account["id"], "MNQ", "market", "buy", 1)
            await asyncio.to_thread(wait_until, lambda: len(_hub_invokes(control, mark2, "SubscribeOrders")) >= 1,
                                    5.0, "resubscription after the drop fault")
            await asyncio.sleep(0.3)
            second = await asyncio.to_thread(control.place_order, account["id"], "MNQ", "market", "buy", 1)
            await s.events.wait_for("trade_execution", lambda d: d["orderId"] == second)
            assert not s.events.of("order_update", lambda d: d["id"] == first)
            # Nothing is replayed: REST shows the truth (riskd reconciles after every reconnect).
            assert [p.size for p in await s.px.search_open_positions()] == [2]
            lost = [r for r in (await asyncio.to_thread(control.log, mark2, "event"))["records"]
                    if r.get("fault") == "drop"]
            assert len(lost) == 1 and lost[0]["delivered"] == 0

    run(scenario())


# -- auth, faults, bad input -----------------------------------------------------------------------

def test_bad_bearer_gets_401_and_expired_tokens_need_a_fresh_login(sim_url: str, control: ControlClient, account: dict) -> None:
    status, headers, body = raw_post(sim_url, "/api/Account/search", {"onlyActiveAccounts": True}, token="not.a.token")
    assert status == 401 and body == b"" and headers.get("WWW-Authenticate") == "Bearer"
    status, _, _ = raw_post(sim_url, "/api/Account/search", {"onlyActiveAccounts": True})
    assert status == 401

    async def scenario() -> None:
        async with ProjectX(username="trader", api_key="k", config=sdk_config(sim_url),
                            account_name=account["name"]) as px:
            await px.authenticate()
            await asyncio.to_thread(control.tokens, None, True)
            # The SDK re-logs in on 401 only when its token is near exp; otherwise it raises.
            with pytest.raises(ProjectXAuthenticationError):
                await px.search_open_positions()
            await px.authenticate()
            assert await px.search_open_positions() == []

    run(scenario())


def test_fault_fails_the_next_call_then_clears(sim_url: str, control: ControlClient, account: dict) -> None:
    async def scenario() -> None:
        async with ProjectX(username="trader", api_key="k", config=sdk_config(sim_url),
                            account_name=account["name"]) as px:
            await px.authenticate()
            om = OrderManager(px, EventBus())
            await asyncio.to_thread(control.add_fault, "/api/Order/place", "5xx", 1)
            with pytest.raises(OrderSubmissionUncertainError):
                await om.place_order(MNQ, 2, 0, 1)
            state = await asyncio.to_thread(control.state, account["id"])
            assert state["positions"] == [] and state["trades"] == []
            assert (await asyncio.to_thread(control.faults))["faults"] == []
            placed = await om.place_order(MNQ, 2, 0, 1)
            assert placed.success

            await asyncio.to_thread(control.add_fault, "/api/Order/place", "429", 5, 7)
            with pytest.raises(OrderSubmissionUncertainError):
                await om.place_order(MNQ, 2, 0, 1)
            armed = (await asyncio.to_thread(control.faults))["faults"]
            assert [(f["kind"], f["remaining"]) for f in armed] == [("429", 4)]
            await asyncio.to_thread(control.clear_faults)
            assert (await om.place_order(MNQ, 2, 0, 1)).success
            assert [p.size for p in await px.search_open_positions()] == [2]

    run(scenario())
    token = login_token(sim_url)
    control.add_fault("/api/Position/searchOpen", "429", 1, 7)
    status, headers, _ = raw_post(sim_url, "/api/Position/searchOpen", {"accountId": account["id"]}, token)
    assert status == 429 and headers["Retry-After"] == "7"
    status, _, _ = raw_post(sim_url, "/api/Position/searchOpen", {"accountId": account["id"]}, token)
    assert status == 200


def test_slow_fault_beyond_the_sdk_timeout_leaves_an_order_that_was_placed(sim_url: str, control: ControlClient, account: dict) -> None:
    async def scenario() -> None:
        cfg = sdk_config(sim_url)
        cfg.timeout_seconds = 1
        async with ProjectX(username="trader", api_key="k", config=cfg, account_name=account["name"]) as px:
            await px.authenticate()
            await asyncio.to_thread(control.add_fault, "/api/Order/place", "slow", 1, None, 1500)
            with pytest.raises(OrderSubmissionUncertainError):
                await OrderManager(px, EventBus()).place_order(MNQ, 2, 0, 1)
            # The simulator finishes the request after the client gave up: reconcile, never retry blind.
            await asyncio.to_thread(wait_until, lambda: control.state(account["id"])["positions"] != [], 3.0,
                                    "the slow order to execute")

    run(scenario())


def test_bad_input_gets_the_gateway_error_shape_and_changes_nothing(sim_url: str, control: ControlClient, account: dict) -> None:
    token = login_token(sim_url)
    acct = account["id"]
    status, _, body = raw_post(sim_url, "/api/Order/place", None, token, raw=b"{not json")
    answer = json.loads(body)
    assert status == 400 and answer["success"] is False and answer["errorCode"] != 0
    cases = [
        ({"accountId": acct, "contractId": MNQ, "type": 2, "side": 0, "size": "2"}, "size"),
        ({"accountId": acct, "contractId": MNQ, "type": 2, "side": 0}, "size"),
        ({"accountId": 999999, "contractId": MNQ, "type": 2, "side": 0, "size": 1}, "999999"),
        ({"accountId": acct, "contractId": "CON.F.US.NOPE.Z26", "type": 2, "side": 0, "size": 1}, "NOPE"),
        ({"accountId": acct, "contractId": MNQ, "type": 1, "side": 0, "size": 1, "limitPrice": 21000.1}, "21000.1"),
        ({"accountId": acct, "contractId": MNQ, "type": 2, "side": 0, "size": 0}, "size"),
        ({"accountId": acct, "contractId": MNQ, "type": 2, "side": 7, "size": 1}, "side"),
    ]
    for request, named in cases:
        status, _, body = raw_post(sim_url, "/api/Order/place", request, token)
        answer = json.loads(body)
        assert status == 200, request
        assert answer["success"] is False and answer["errorCode"] != 0, request
        assert named in answer["errorMessage"], (request, answer)
    status, _, body = raw_post(sim_url, "/api/Order/cancel", {"accountId": acct, "orderId": 424242}, token)
    assert json.loads(body)["errorCode"] == 2
    status, _, body = raw_post(sim_url, "/api/Position/closeContract", {"accountId": acct, "contractId": MNQ}, token)
    assert json.loads(body)["errorCode"] == 2
    state = control.state(acct)
    assert state["positions"] == [] and state["orders"] == [] and state["trades"] == []
    assert state["account"]["balance"] == 50000.0


def test_log_records_requests_and_events_with_monotonic_times_and_no_secrets(sim_url: str, control: ControlClient, account: dict) -> None:
    start = control.mark("log-test")["record"]["n"]
    tokens: list[str] = []

    async def scenario() -> None:
        async with sdk_session(sim_url, account["name"]) as s:
            tokens.append(s.px.session_token)
            om = OrderManager(s.px, EventBus())
            placed = await om.place_order(MNQ, 2, 1, 1)
            await s.events.wait_for("position_update", lambda d: d["size"] == 1)
            tokens.append(str(placed.orderId))

    run(scenario())
    records = control.log(start)["records"]
    text = json.dumps(records)
    assert tokens[0] not in text and "sim-key" not in text and "access_token" not in text
    ns = [r["n"] for r in records]
    ts = [r["t"] for r in records]
    assert ns == list(range(ns[0], ns[0] + len(ns))) and ts == sorted(ts)
    requests = [r for r in records if r["kind"] == "request"]
    login = next(r for r in requests if r["path"] == "/api/Auth/loginKey")
    assert login["body"]["apiKey"] == "***" and login["status"] == 200
    assert all("?" not in r["path"] for r in requests)
    place = next(r for r in requests if r["path"] == "/api/Order/place")
    assert (place["accountId"], place["contractId"], place["status"], place["success"]) == (account["id"], MNQ, 200, True)
    events = [r for r in records if r["kind"] == "event" and r.get("accountId") == account["id"]]
    assert [e["target"] for e in events if e["target"] != "GatewayUserAccount"][:4] == [
        "GatewayUserOrder", "GatewayUserTrade", "GatewayUserOrder", "GatewayUserPosition"]
    assert all(e["delivered"] == 1 for e in events)
    assert place["t"] <= events[0]["t"]


def test_wrapped_events_arrive_as_action_data(sim_url: str, control: ControlClient, account: dict) -> None:
    control.config(wrap_events=True)

    async def scenario() -> None:
        async with sdk_session(sim_url, account["name"], contracts=()) as s:
            await asyncio.to_thread(control.place_order, account["id"], "MNQ", "market", "buy", 1)
            got = await s.events.wait_for("position_update", lambda d: "data" in d)
            assert got[0]["action"] == 1 and got[0]["data"]["size"] == 1

    run(scenario())


def test_retrieve_bars_builds_ohlc_from_the_price_history(sim_url: str, control: ControlClient, account: dict) -> None:
    token = login_token(sim_url)
    before = control.clock()["now"]
    for p in (21000, 21004, 20998, 21002):
        control.set_price("MNQ", p)
    status, _, body = raw_post(sim_url, "/api/History/retrieveBars", {
        "contractId": MNQ, "live": False, "startTime": before, "endTime": "2099-01-01T00:00:00Z",
        "unit": 4, "unitNumber": 1, "limit": 10, "includePartialBar": True}, token)
    answer = json.loads(body)
    assert status == 200 and answer["success"] is True
    bar = answer["bars"][0]
    assert (bar["o"], bar["h"], bar["l"], bar["c"], bar["v"]) == (21000, 21004, 20998, 21002, 4)


def test_state_file_survives_a_restart_and_old_tokens_stay_valid(tmp_path, sim_factory) -> None:
    state = tmp_path / "sim.json"
    first = sim_factory("--state", str(state), "--quote-interval-ms", "0")
    try:
        acct = first.control.create_account("persist")
        first.control.set_price("ES", 6001.25)
        first.control.place_order(acct["id"], "ES", "market", "buy", 2)
        token = login_token(first.url)
    finally:
        assert first.stop() == 0
    assert json.loads(state.read_text())["engine"]["accounts"][0]["name"] == "persist"
    second = sim_factory("--state", str(state), "--quote-interval-ms", "0")
    try:
        positions = second.control.state(acct["id"])["positions"]
        assert [(p["contractId"], p["size"], p["averagePrice"]) for p in positions] == [("CON.F.US.EP.Z26", 2, 6001.25)]
        status, _, body = raw_post(second.url, "/api/Position/searchOpen", {"accountId": acct["id"]}, token)
        assert status == 200 and json.loads(body)["positions"][0]["size"] == 2
    finally:
        second.stop()
