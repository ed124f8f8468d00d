"""SignalR framing, tokens, the record, faults, and the hubs' wire behaviour with a raw client."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp
import pytest

from gateway_sim import protocol
from gateway_sim.auth import TokenIssuer, bearer
from gateway_sim.control_client import ControlClient
from gateway_sim.faults import FaultError, FaultSet
from gateway_sim.recorder import Recorder, redact

RS = "\x1e"
pytestmark = pytest.mark.timeout(30)


# -- framing -------------------------------------------------------------------------------------

def test_encode_appends_the_record_separator_and_decode_splits_a_frame_into_messages() -> None:
    frame = protocol.encode(protocol.invocation("GatewayQuote", ["CON.F.US.MNQ.Z26", {"lastPrice": 1.5}])) + \
        protocol.encode(protocol.ping())
    assert frame.count(RS) == 2 and frame.endswith(RS)
    first, second = protocol.decode(frame.encode())
    assert first == {"type": 1, "target": "GatewayQuote", "arguments": ["CON.F.US.MNQ.Z26", {"lastPrice": 1.5}]}
    assert second == {"type": 6}


@pytest.mark.parametrize("frame", ["{nope" + RS, "[1,2]" + RS, b"\xff\xfe" + RS.encode()])
def test_decode_rejects_frames_that_are_not_json_objects(frame: Any) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(frame)


def test_handshake_returns_the_request_and_any_message_in_the_same_frame() -> None:
    request, rest = protocol.parse_handshake('{"protocol":"json","version":1}' + RS + '{"type":6}' + RS)
    assert request == {"protocol": "json", "version": 1} and rest == [{"type": 6}]
    assert protocol.handshake_response() == "{}" + RS
    assert json.loads(protocol.handshake_response("bad")[:-1]) == {"error": "bad"}


@pytest.mark.parametrize("text, reason", [
    ('{"protocol":"json","version":1}', "separator"),
    ('{"protocol":"messagepack","version":1}' + RS, "messagepack"),
    ('{"protocol":"json","version":2}' + RS, "version 2"),
    ("nope" + RS, "not valid JSON"),
])
def test_handshake_errors_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(protocol.ProtocolError, match=reason):
        protocol.parse_handshake(text)


def test_completion_and_close_messages_have_the_spec_fields() -> None:
    assert protocol.completion("7") == {"type": 3, "invocationId": "7"}
    assert protocol.completion("7", error="x") == {"type": 3, "invocationId": "7", "error": "x"}
    assert protocol.close(allow_reconnect=True) == {"type": 7, "allowReconnect": True}
    assert protocol.close(error="e") == {"type": 7, "error": "e"}
    assert protocol.message_type({"type": True}) is None


# -- tokens --------------------------------------------------------------------------------------

def _sdk_exp(token: str) -> float:
    # Exactly how project-x-py reads the expiry (client/auth.py): no signature check.
    payload = token.split(".")[1]
    payload += "=" * (4 - len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))["exp"]


def test_token_is_jwt_shaped_and_the_sdk_can_read_its_exp() -> None:
    now = [1_000_000.0]
    issuer = TokenIssuer(lifetime_s=60, now=lambda: now[0])
    token = issuer.issue("trader")
    assert token.count(".") == 2 and _sdk_exp(token) == 1_000_060.0
    assert issuer.claims(token)["sub"] == "trader"
    now[0] += 60
    assert issuer.claims(token) is None


def test_token_checks_signature_generation_and_revocation() -> None:
    issuer = TokenIssuer()
    token = issuer.issue("a")
    head, body, sig = token.split(".")
    assert issuer.claims(f"{head}.{body}.{sig[:-2]}AA") is None
    assert TokenIssuer().claims(token) is None  # another secret
    assert issuer.claims("garbage") is None and issuer.claims(None) is None
    revoked = issuer.issue("a")
    issuer.revoke(revoked)
    assert issuer.claims(revoked) is None and issuer.claims(token) is not None
    issuer.expire_all()
    assert issuer.claims(token) is None and issuer.claims(issuer.issue("a")) is not None
    restored = TokenIssuer.from_dict(issuer.to_dict())
    assert restored.claims(issuer.issue("b")) is not None


def test_bearer_header_parsing() -> None:
    assert bearer("Bearer abc") == "abc" and bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None and bearer("Bearer ") is None and bearer(None) is None


# -- the record ----------------------------------------------------------------------------------

def test_recorder_numbers_contiguously_filters_pages_and_keeps_counting_after_clear() -> None:
    clock = iter(range(100))
    rec = Recorder(capacity=5, clock=lambda: float(next(clock)))
    for i in range(7):
        rec.record("request" if i % 2 else "event", i=i)
    records, nxt = rec.since(0)
    assert [r["n"] for r in records] == [3, 4, 5, 6, 7] and nxt == 8  # ring buffer kept the last 5
    assert [r["n"] for r in rec.since(5, ["request"])[0]] == [6]
    page, cursor = rec.since(3, limit=2)
    assert [r["n"] for r in page] == [3, 4] and cursor == 5
    rec.clear()
    assert rec.since(0) == ([], 8) and rec.record("mark")["n"] == 8


def test_redact_masks_secret_keys_at_any_depth() -> None:
    body = {"userName": "u", "apiKey": "k", "nested": [{"Token": "t", "ok": 1}], "accessToken": "x"}
    assert redact(body) == {"userName": "u", "apiKey": "***", "nested": [{"Token": "***", "ok": 1}],
                            "accessToken": "***"}


# -- faults --------------------------------------------------------------------------------------

def test_fault_is_consumed_count_times_then_disappears() -> None:
    faults = FaultSet()
    faults.add({"path": "Order/place", "kind": "5xx", "count": 2})
    assert faults.list()[0]["path"] == "/api/Order/place"
    assert faults.take("/api/Position/searchOpen") is None
    assert faults.take("/api/order/PLACE").kind == "5xx"
    assert faults.take("/api/Order/place").remaining == 0
    assert faults.take("/api/Order/place") is None and faults.list() == []


def test_wildcard_and_hub_faults_match_their_targets_only() -> None:
    faults = FaultSet()
    faults.add({"path": "*", "kind": "429", "retryAfter": 3})
    faults.add({"path": "hub:all", "kind": "drop"})
    assert faults.take("hub:user", frozenset({"5xx"})) is None
    assert faults.take("hub:market", frozenset({"drop"})).kind == "drop"
    assert faults.take("/api/Order/cancel").retry_after == 3


@pytest.mark.parametrize("spec, named", [
    ({"path": "/api/Order/place", "kind": "logout"}, "logout"),
    ({"path": "hub:nope", "kind": "drop"}, "hub:nope"),
    ({"path": "/api/Order/place", "kind": "5xx", "count": 0}, "count"),
    ({"path": "/api/Order/place", "kind": "slow", "delayMs": "x"}, "delayMs"),
    ({"path": "", "kind": "5xx"}, "path"),
    ({"path": "/api/x", "kind": "boom"}, "boom"),
    ({"path": "hub:user", "kind": "late"}, "late"),
])
def test_bad_fault_specs_are_rejected_naming_the_value(spec: dict, named: str) -> None:
    with pytest.raises(FaultError, match=named):
        FaultSet().add(spec)


# -- the hubs on the wire ------------------------------------------------------------------------

class RawHub:
    """A hand-written SignalR client: exactly the frames a test sends, nothing else."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session, self.ws = session, ws
        self.buffer: list[dict[str, Any]] = []

    async def send(self, *messages: dict[str, Any]) -> None:
        await self.ws.send_str("".join(protocol.encode(m) for m in messages))

    async def next(self, pred=lambda m: m.get("type") != 6, timeout: float = 3.0) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            while True:
                for i, m in enumerate(self.buffer):
                    if pred(m):
                        return self.buffer.pop(i)
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return {"closed": msg.type.name}
                self.buffer.extend(protocol.decode(msg.data))
        return await asyncio.wait_for(read(), timeout)

    async def nothing(self, pred=lambda m: m.get("type") != 6, wait: float = 0.3) -> None:
        with pytest.raises(asyncio.TimeoutError):
            got = await self.next(pred, wait)
            pytest.fail(f"unexpected message {got}")


def _ws_url(url: str, hub: str) -> str:
    return url.replace("http://", "ws://") + f"/hubs/{hub}"


async def _token(session: aiohttp.ClientSession, url: str) -> str:
    async with session.post(f"{url}/api/Auth/loginKey", json={"userName": "raw", "apiKey": "k"}) as r:
        return (await r.json())["token"]


async def _connect(session: aiohttp.ClientSession, url: str, hub: str, token: str, conn_id: str | None = None,
                   handshake: str = '{"protocol":"json","version":1}' + RS) -> tuple[RawHub, str]:
    if conn_id is None:
        async with session.post(f"{url}/hubs/{hub}/negotiate?access_token={token}") as r:
            assert r.status == 200
            conn_id = (await r.json())["connectionId"]
    ws = await session.ws_connect(f"{_ws_url(url, hub)}?access_token={token}&id={conn_id}")
    await ws.send_str(handshake)
    msg = await ws.receive(timeout=3)
    return RawHub(session, ws), msg.data


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_negotiate_and_upgrade_need_a_valid_token(sim_url: str) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{sim_url}/hubs/user/negotiate") as r:
                assert r.status == 401
            token = await _token(session, sim_url)
            async with session.post(f"{sim_url}/hubs/market/negotiate", headers={"Authorization": f"Bearer {token}"}) as r:
                body = await r.json()
                assert r.status == 200 and body["negotiateVersion"] == 0 and body["connectionId"]
                assert body["availableTransports"][0]["transport"] == "WebSockets"
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await session.ws_connect(f"{_ws_url(sim_url, 'user')}?access_token=bad&id=x")
            assert err.value.status == 401

    run(scenario())


def test_handshake_with_an_unsupported_protocol_gets_an_error_and_a_close(sim_url: str) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            token = await _token(session, sim_url)
            hub, answer = await _connect(session, sim_url, "user", token,
                                         handshake='{"protocol":"messagepack","version":1}' + RS)
            assert "not supported" in json.loads(answer[:-1])["error"]
            assert (await hub.ws.receive(timeout=3)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

    run(scenario())


def test_subscriptions_are_idempotent_case_insensitive_and_unknown_methods_are_ignored(
        sim_url: str, control: ControlClient) -> None:
    acct = control.create_account("raw-hub-subscriber")
    other = control.create_account("raw-hub-other")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            token = await _token(session, sim_url)
            hub, answer = await _connect(session, sim_url, "user", token, conn_id="never-negotiated")
            assert answer == "{}" + RS
            await hub.send(protocol.invocation("Heartbeat", [{"timestamp": 1.0}]),
                           protocol.invocation("subscribepositions", [acct["id"]]),
                           protocol.invocation("SubscribePositions", [acct["id"]]),
                           protocol.invocation("SubscribeOrders", ["not-an-int"], invocation_id="1"),
                           protocol.invocation("NoSuchMethod", [], invocation_id="2"),
                           protocol.invocation("SubscribeTrades", [acct["id"]], invocation_id="3"),
                           protocol.ping())
            assert "accountId must be an integer" in (await hub.next(lambda m: m.get("invocationId") == "1"))["error"]
            assert "Unknown hub method" in (await hub.next(lambda m: m.get("invocationId") == "2"))["error"]
            assert "error" not in await hub.next(lambda m: m.get("invocationId") == "3")
            await asyncio.to_thread(control.place_order, other["id"], "MNQ", "market", "buy", 1)
            await asyncio.to_thread(control.place_order, acct["id"], "MNQ", "market", "buy", 1)
            position = await hub.next(lambda m: m.get("target") == "GatewayUserPosition")
            assert position["arguments"][0]["accountId"] == acct["id"]
            trade = await hub.next(lambda m: m.get("target") == "GatewayUserTrade")
            assert trade["arguments"][0]["accountId"] == acct["id"]
            # Subscribed twice, delivered once; nothing of the other account, no orders.
            await hub.nothing(lambda m: m.get("type") == 1)
            await hub.send(protocol.invocation("UnsubscribePositions", [acct["id"]]))
            await asyncio.sleep(0.1)
            await asyncio.to_thread(control.close_position, acct["id"], "MNQ")
            await hub.next(lambda m: m.get("target") == "GatewayUserTrade")
            await hub.nothing(lambda m: m.get("target") == "GatewayUserPosition")
            await hub.ws.close()

    run(scenario())


def test_market_subscription_by_symbol_gets_a_snapshot_with_the_contract_id(sim_url: str, control: ControlClient) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            token = await _token(session, sim_url)
            hub, _ = await _connect(session, sim_url, "market", token)
            await hub.send(protocol.invocation("SubscribeContractQuotes", ["GC"]))
            snapshot = await hub.next(lambda m: m.get("target") == "GatewayQuote")
            contract_id, quote = snapshot["arguments"]
            assert contract_id == "CON.F.US.GCE.G27" and quote["symbol"] == "F.US.GCE"
            await asyncio.to_thread(control.set_price, "GC", 2651.3)
            moved = await hub.next(lambda m: m.get("target") == "GatewayQuote")
            assert moved["arguments"][1]["lastPrice"] == 2651.3
            await hub.ws.close()

    run(scenario())


def test_drop_modes_close_with_or_without_a_signalr_error(sim_url: str, control: ControlClient) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            token = await _token(session, sim_url)
            hub, _ = await _connect(session, sim_url, "market", token)
            await asyncio.to_thread(control.request, "POST", "/sim/drop", {"hub": "market", "mode": "error"})
            close = await hub.next(lambda m: m.get("type") == 7)
            assert close.get("error")  # the kind pysignalr never recovers from
            hub, _ = await _connect(session, sim_url, "market", token)
            await asyncio.to_thread(control.drop, "market")
            close = await hub.next(lambda m: m.get("type") == 7)
            assert close == {"type": 7, "allowReconnect": True}
            assert (await hub.next(lambda m: True))["closed"] in ("CLOSE", "CLOSED", "CLOSING")
            hub, _ = await _connect(session, sim_url, "user", token)
            await asyncio.to_thread(control.logout)
            logout = await hub.next(lambda m: m.get("target") == "GatewayLogout")
            assert logout["arguments"] == [{"reason": "Session ended"}]

    run(scenario())


def test_hub_connection_fault_refuses_the_next_attempt_only(sim_url: str, control: ControlClient) -> None:
    control.add_fault("hub:user", "5xx", 1)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            token = await _token(session, sim_url)
            async with session.post(f"{sim_url}/hubs/user/negotiate?access_token={token}") as r:
                assert r.status == 500
            hub, answer = await _connect(session, sim_url, "user", token)
            assert answer == "{}" + RS
            await hub.ws.close()

    run(scenario())


def test_a_frame_that_is_not_json_closes_the_socket_with_an_error(sim_url: str) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            token = await _token(session, sim_url)
            hub, _ = await _connect(session, sim_url, "user", token)
            await hub.ws.send_str("{oops" + RS)
            close = await hub.next(lambda m: m.get("type") == 7)
            assert close.get("error")

    run(scenario())


def test_token_lifetime_control_makes_new_tokens_expire(sim_url: str, control: ControlClient) -> None:
    control.tokens(expires_in=0.5)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            token = await _token(session, sim_url)
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post(f"{sim_url}/api/Auth/validate", headers=headers) as r:
                assert r.status == 200 and (await r.json())["newToken"]
            await asyncio.sleep(0.6)
            async with session.post(f"{sim_url}/api/Account/search", json={}, headers=headers) as r:
                assert r.status == 401
            async with session.post(f"{sim_url}/hubs/user/negotiate?access_token={token}") as r:
                assert r.status == 401

    run(scenario())


def test_late_answer_describes_the_broker_when_it_left_not_when_it_arrives(
        sim_url: str, control: ControlClient) -> None:
    """``late`` holds an executed answer back: a change made meanwhile is not in it."""
    acct = control.create_account(f"late-{time.monotonic_ns()}")
    control.place_order(acct["id"], "MNQ", "market", "buy", 2)
    control.add_fault("/api/Position/searchOpen", "late", 1, delay_ms=600)

    async def scenario() -> tuple[list[Any], float]:
        async with aiohttp.ClientSession() as session:
            token = await _token(session, sim_url)
            headers = {"Authorization": f"Bearer {token}"}
            t0 = time.monotonic()
            search = asyncio.ensure_future(session.post(
                f"{sim_url}/api/Position/searchOpen", json={"accountId": acct["id"]}, headers=headers))
            await asyncio.sleep(0.2)
            await asyncio.to_thread(control.place_order, acct["id"], "MNQ", "market", "sell", 1)
            async with await search as r:
                body = await r.json()
            return body["positions"], time.monotonic() - t0

    positions, took = run(scenario())
    assert took >= 0.6
    assert [p["size"] for p in positions] == [2]  # the sell 0.2 s in is not in the answer
    assert [p["size"] for p in control.state(acct["id"])["positions"]] == [1]


def test_rate_limit_answers_429_after_200_requests_a_minute_per_user(sim_url: str, control: ControlClient) -> None:
    control.request("POST", "/sim/config", {"rateLimit": True})

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{sim_url}/api/Auth/loginKey", json={"userName": "budget", "apiKey": "k"}) as r:
                token = (await r.json())["token"]
            headers = {"Authorization": f"Bearer {token}"}
            statuses = []
            for _ in range(201):
                async with session.post(f"{sim_url}/api/Account/search", json={}, headers=headers) as r:
                    statuses.append((r.status, r.headers.get("Retry-After")))
            assert [s for s, _ in statuses[:200]] == [200] * 200
            status, retry_after = statuses[200]
            assert status == 429 and 1 <= int(retry_after) <= 60
            # Another user has a budget of its own; the bars bucket is separate.
            other = await _token(session, sim_url)
            async with session.post(f"{sim_url}/api/Account/search", json={},
                                    headers={"Authorization": f"Bearer {other}"}) as r:
                assert r.status == 200

    run(scenario())
