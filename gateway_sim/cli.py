"""``gateway-sim``: run the ProjectX Gateway simulator and drive it from a shell.

Every command except ``serve`` talks to a running simulator through its ``/sim`` control API
(``--url``, default $GATEWAY_SIM_URL or http://127.0.0.1:8931). User errors print one line
naming the bad value and exit 1; usage errors exit 2 (click); no simulator answering exits 3.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import signal
import sys
import time
from typing import Any, NoReturn

import click

from gateway_sim import assumptions, contracts
from gateway_sim.control_client import ControlClient, ControlError, ControlUnavailable

DEFAULT_PORT = 8931
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
SIDE_NAMES = {0: "buy", 1: "sell"}
TYPE_NAMES = {1: "limit", 2: "market", 3: "stop-limit", 4: "stop", 5: "trailing"}
STATUS_NAMES = {0: "none", 1: "open", 2: "filled", 3: "cancelled", 4: "expired", 5: "rejected", 6: "pending"}

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"gateway-sim: {message}", err=True)
    sys.exit(code)


def url_option(fn):
    return click.option(
        "--url", envvar="GATEWAY_SIM_URL", default=DEFAULT_URL, show_default=True,
        help="Simulator base URL (env GATEWAY_SIM_URL).")(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print the simulator's JSON answer.")(fn)


class _Sim:
    """ControlClient with CLI error handling: every failure becomes one line and an exit code."""

    def __init__(self, url: str):
        try:
            self.client = ControlClient(url)
        except ValueError as exc:
            _fail(str(exc))
        self.url = url

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except ControlUnavailable as exc:
                _fail(f"{exc.message}", 3)
            except ControlError as exc:
                _fail(exc.message)
        return call


def _money(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, (int, float)) else str(value)


def _price(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = f"{value:.6f}".rstrip("0")
        whole, _, frac = text.partition(".")
        return f"{whole}.{frac.ljust(2, '0')}"
    return str(value)


def _short(contract_id: str) -> str:
    # CON.F.US.MNQ.Z26 -> MNQ.Z26: enough to read, unambiguous in the catalogue.
    parts = str(contract_id).split(".")
    return ".".join(parts[-2:]) if len(parts) >= 5 else str(contract_id)


def _resolve_account(sim: _Sim, value: str | None) -> dict[str, Any]:
    """An account by id or name; with no value, the only account there is."""
    accounts = sim.accounts()
    if value is None:
        if len(accounts) == 1:
            return accounts[0]
        if not accounts:
            _fail("no accounts yet: create one with `gateway-sim account create NAME`")
        names = ", ".join(f"{a['id']} ({a['name']})" for a in accounts)
        _fail(f"--account is required when there are several accounts: {names}")
    for a in accounts:
        if str(a["id"]) == value.strip() or a["name"].lower() == value.strip().lower():
            return a
    known = ", ".join(f"{a['id']} ({a['name']})" for a in accounts) or "none"
    _fail(f"account {value!r} not found (accounts: {known})")


def account_option(fn):
    return click.option("--account", "-a", metavar="ID|NAME",
                        help="Account id or name; may be left out when only one account exists.")(fn)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _root(contract_id: str) -> str:
    c = contracts.find(contract_id)
    return c.root if c is not None else str(contract_id)


def _describe_position(p: dict[str, Any]) -> str:
    side = {1: "long", 2: "short"}.get(p.get("type"), "?")
    return f"{side} {p['size']} {_root(p['contractId'])} @ {_price(p['averagePrice'])}  ({p['contractId']})"


def _describe_order(o: dict[str, Any]) -> str:
    kind = TYPE_NAMES.get(o.get("type"), str(o.get("type")))
    prices = []
    if o.get("limitPrice") is not None:
        prices.append(f"limit {_price(o['limitPrice'])}")
    if o.get("stopPrice") is not None:
        prices.append(f"stop {_price(o['stopPrice'])}")
    status = STATUS_NAMES.get(o.get("status"), str(o.get("status")))
    return (f"#{o['id']}  {SIDE_NAMES.get(o.get('side'), '?')} {o['size']} {_short(o['contractId'])}  {kind}"
            + (f" ({', '.join(prices)})" if prices else "") + f"  {status}")


# -- the group ----------------------------------------------------------------------------------

@click.group(context_settings=CONTEXT)
def main() -> None:
    """Loopback simulator of the ProjectX Gateway (TopstepX) for riskd and the project-x-py SDK.

    \b
    Start it, then drive it from another shell:
      gateway-sim serve                      # REST + both SignalR hubs on 127.0.0.1:8931
      gateway-sim account create demo        # a 50,000 account that can trade
      gateway-sim price MNQ 21000            # set the last price
      gateway-sim order buy 2 MNQ            # buy 2 at market, as the trader would
      gateway-sim state                      # positions, working orders, trades

    Point the SDK at it with ProjectXConfig(api_url=URL/api, user_hub_url=URL/hubs/user,
    market_hub_url=URL/hubs/market); any user name and API key log in.
    """


# -- serve --------------------------------------------------------------------------------------

@main.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (keep it loopback: the control API has no auth).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="Port; 0 picks a free one (the listening line says which).")
@click.option("--state", "state_file", type=click.Path(dir_okay=False), help="Load the simulator's state from FILE if it exists, and save it there on every change and at exit.")
@click.option("--wrap-events/--no-wrap-events", default=assumptions.WRAP_EVENTS_DEFAULT, show_default=True, help="Send user-hub events wrapped as {action, data} instead of bare payloads.")
@click.option("--quote-interval-ms", default=assumptions.QUOTE_INTERVAL_MS_DEFAULT, show_default=True, type=click.IntRange(0), help="Re-send the last quote of every subscribed contract this often (0: only on price changes). The SDK reconnects after 30 s without market data.")
@click.option("--pnl-includes-fees/--pnl-excludes-fees", default=assumptions.PNL_INCLUDES_FEES_DEFAULT, show_default=True, help="Whether a closing trade's profitAndLoss has the fees taken off.")
@click.option("--rate-limit/--no-rate-limit", default=assumptions.RATE_LIMIT_DEFAULT, show_default=True, help="Enforce the gateway's 200 requests/60 s (bars 50/30 s) per user with HTTP 429.")
@click.option("--token-lifetime", type=click.FloatRange(min=1, min_open=False), default=None, help="Lifetime of issued tokens in seconds (default 24 h).")
@click.option("--log-capacity", default=200_000, show_default=True, type=click.IntRange(min=1000), help="Records kept by GET /sim/log (oldest dropped; about 1.2 kB each).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True, help="Simulator log level (stderr). Tokens and query strings are never logged.")
def serve(host: str, port: int, state_file: str | None, wrap_events: bool, quote_interval_ms: int,
          pnl_includes_fees: bool, rate_limit: bool, token_lifetime: float | None, log_capacity: int,
          log_level: str) -> None:
    """Run the simulator: REST under /api, SignalR hubs under /hubs, control API under /sim.

    Prints `gateway-sim listening on http://HOST:PORT` on stdout once it accepts connections;
    Ctrl-C (or SIGTERM) stops it and, with --state, saves the state.
    """
    from gateway_sim.recorder import Recorder
    from gateway_sim.server import Simulator, serve as run_server

    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        click.echo(f"gateway-sim: warning: listening on {host}, not loopback; the control API has no authentication", err=True)
    sim = Simulator(wrap_events=wrap_events, quote_interval_ms=quote_interval_ms,
                    pnl_includes_fees=pnl_includes_fees, rate_limit=rate_limit, state_file=state_file,
                    recorder=Recorder(capacity=log_capacity))
    if token_lifetime is not None:
        sim.tokens.lifetime_s = token_lifetime

    def ready(url: str) -> None:
        click.echo(f"gateway-sim listening on {url}")
        sys.stdout.flush()
        logging.getLogger("gateway_sim").info(
            "REST %s/api | user hub %s/hubs/user | market hub %s/hubs/market | control %s/sim", url, url, url, url)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        await run_server(sim, host, port, ready=ready, stop=stop)

    try:
        asyncio.run(run())
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass


# -- status and accounts -------------------------------------------------------------------------

@main.command(context_settings=CONTEXT)
@url_option
@json_option
def status(url: str, as_json: bool) -> None:
    """Show whether the simulator runs, its connections, configuration and clock."""
    data = _Sim(url).request("GET", "/sim/status")
    if as_json:
        _print_json(data)
        return
    conns = data.get("connections", {})
    cfg = data.get("config", {})
    click.echo(f"simulator at {url}: {data.get('accounts')} account(s), sockets user={conns.get('user')} "
               f"market={conns.get('market')}, clock {data.get('clock')}")
    click.echo(f"config: wrapEvents={cfg.get('wrapEvents')} pnlIncludesFees={cfg.get('pnlIncludesFees')} "
               f"quoteIntervalMs={cfg.get('quoteIntervalMs')} faults armed={data.get('faults')}")


@main.group(context_settings=CONTEXT)
def account() -> None:
    """Create and list trading accounts."""


@account.command("create", context_settings=CONTEXT)
@click.argument("name")
@click.option("--balance", type=float, default=50000.0, show_default=True, help="Starting balance.")
@click.option("--id", "account_id", type=click.IntRange(min=1), help="Account id (default: the next free one).")
@click.option("--no-trade", is_flag=True, help="Create it with canTrade false.")
@url_option
@json_option
def account_create(name: str, balance: float, account_id: int | None, no_trade: bool, url: str, as_json: bool) -> None:
    """Create account NAME (names are unique)."""
    acct = _Sim(url).create_account(name, balance=balance, can_trade=not no_trade, account_id=account_id)
    if as_json:
        _print_json(acct)
        return
    click.echo(f"account {acct['id']} {acct['name']!r} created: balance {_money(acct['balance'])}, "
               f"canTrade {'yes' if acct['canTrade'] else 'no'}")


@account.command("list", context_settings=CONTEXT)
@url_option
@json_option
def account_list(url: str, as_json: bool) -> None:
    """List every account with balance and canTrade."""
    accounts = _Sim(url).accounts()
    if as_json:
        _print_json(accounts)
        return
    if not accounts:
        click.echo("no accounts (create one: gateway-sim account create NAME)")
        return
    click.echo(f"{'ID':>6}  {'NAME':<20} {'BALANCE':>14}  CAN TRADE")
    for a in accounts:
        click.echo(f"{a['id']:>6}  {a['name']:<20} {_money(a['balance']):>14}  {'yes' if a['canTrade'] else 'no'}")


@main.command("can-trade", context_settings=CONTEXT)
@click.argument("account_ref", metavar="ACCOUNT")
@click.argument("flag", type=click.Choice(["on", "off"]))
@url_option
def can_trade(account_ref: str, flag: str, url: str) -> None:
    """Switch ACCOUNT's canTrade flag on or off (as the broker would)."""
    sim = _Sim(url)
    acct = _resolve_account(sim, account_ref)
    sim.set_can_trade(acct["id"], flag == "on")
    click.echo(f"account {acct['id']} canTrade {flag}")


# -- prices --------------------------------------------------------------------------------------

@main.command(context_settings=CONTEXT)
@click.argument("symbol")
@click.argument("price", type=float)
@url_option
def price(symbol: str, price: float, url: str) -> None:
    """Set SYMBOL's last price (MNQ or a contract id); orders it triggers fill."""
    answer = _Sim(url).set_price(symbol, price)
    click.echo(f"{answer['contractId']} last {_price(answer['price'])}")


@main.command("price-path", context_settings=CONTEXT)
@click.argument("symbol")
@click.argument("prices", nargs=-1, required=True, type=float)
@click.option("--interval-ms", default=1000, show_default=True, type=click.IntRange(0), help="Time between steps.")
@url_option
def price_path(symbol: str, prices: tuple[float, ...], interval_ms: int, url: str) -> None:
    """Play PRICES for SYMBOL one after another in the background (first one now)."""
    answer = _Sim(url).price_path(symbol, list(prices), interval_ms)
    click.echo(f"{answer['contractId']}: playing {answer['steps']} prices, one every {interval_ms} ms")


@main.group("quotes", context_settings=CONTEXT)
def quotes() -> None:
    """Fast quote stream for benchmarks (thousands of GatewayQuote/s; see `quotes stream --help`)."""


def _stream_line(st: dict[str, Any]) -> str:
    if "emitted" not in st:
        return "no quote stream"
    state = "running" if st.get("running") else "stopped"
    return (f"quote stream {state}: target {st['rate']:.0f}/s on {len(st['contracts'])} contract(s), "
            f"{st['elapsedS']:.1f} s; emitted {st['emitted']} ({st['emittedPerS']:.0f}/s), "
            f"written to sockets {st['written']} ({st['writtenPerS']:.0f}/s), dropped {st['dropped']}, "
            f"late ticks {st['lateTicks']} of {st['ticks']}")


@quotes.command("stream", context_settings=CONTEXT)
@click.argument("symbols", nargs=-1, required=True)
@click.option("--rate", required=True, type=click.FloatRange(min=0, min_open=True), help="Quotes/s in total.")
@click.option("--duration", "duration_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds (default: until `quotes stop`).")
@click.option("--tick-ms", default=5.0, show_default=True, type=click.FloatRange(1, 1000),
              help="Send every this many ms the quotes due.")
@click.option("--amplitude", default=2, show_default=True, type=click.IntRange(1, 1000),
              help="Prices wiggle +- this many ticks around the last price.")
@click.option("--sync-engine", is_flag=True, help="Move the engine's last price with the stream (fills, P&L).")
@click.option("--wait", is_flag=True, help="Wait for the end (needs --duration) and print the figures.")
@json_option
@url_option
def quotes_stream(symbols: tuple[str, ...], rate: float, duration_s: float | None, tick_ms: float,
                  amplitude: int, sync_engine: bool, wait: bool, as_json: bool, url: str) -> None:
    """Stream quotes for SYMBOLS (MNQ MES ... or contract ids) at RATE in the background."""
    if wait and duration_s is None:
        _fail("--wait needs --duration")
    sim = _Sim(url)
    st = sim.quote_stream(list(symbols), rate, tick_ms=tick_ms, duration_s=duration_s, amplitude=amplitude,
                          sync_engine=sync_engine or None)
    if wait:
        time.sleep(duration_s + 0.2)
        st = sim.quote_stream_stats()
        while st.get("running"):
            time.sleep(0.2)
            st = sim.quote_stream_stats()
    if as_json:
        click.echo(json.dumps(st, indent=2))
    elif wait:
        click.echo(_stream_line(st))
    else:
        click.echo(f"quote stream started: {rate:.0f} quotes/s on {', '.join(st['contracts'])}"
                   + (f" for {duration_s:g} s" if duration_s else ""))


@quotes.command("status", context_settings=CONTEXT)
@json_option
@url_option
def quotes_status(as_json: bool, url: str) -> None:
    """Figures of the current (or last) quote stream."""
    st = _Sim(url).quote_stream_stats()
    click.echo(json.dumps(st, indent=2) if as_json else _stream_line(st))


@quotes.command("stop", context_settings=CONTEXT)
@json_option
@url_option
def quotes_stop(as_json: bool, url: str) -> None:
    """Stop the quote stream and print its figures."""
    st = _Sim(url).stop_quote_stream()
    click.echo(json.dumps(st, indent=2) if as_json else _stream_line(st))


# -- the trader's orders -------------------------------------------------------------------------

@main.group(context_settings=CONTEXT)
def order() -> None:
    """Place or cancel orders as the trader would in the broker's platform."""


def _place(side: str, size: int, symbol: str, limit: float | None, stop: float | None, trail: float | None,
           stop_loss: int | None, take_profit: int | None, account_ref: str | None, url: str, as_json: bool) -> None:
    if trail is not None and (limit is not None or stop is not None):
        _fail("--trail cannot be combined with --limit or --stop")
    kind = ("trailing" if trail is not None else "stoplimit" if stop is not None and limit is not None
            else "stop" if stop is not None else "limit" if limit is not None else "market")
    sim = _Sim(url)
    acct = _resolve_account(sim, account_ref)
    order_id = sim.place_order(
        acct["id"], symbol, kind, side, size, limit_price=limit, stop_price=stop, trail_price=trail,
        stop_loss_bracket={"ticks": stop_loss, "type": 4} if stop_loss else None,
        take_profit_bracket={"ticks": take_profit, "type": 1} if take_profit else None)
    state = sim.state(acct["id"])
    if as_json:
        _print_json({"orderId": order_id, "state": state})
        return
    click.echo(f"order {order_id}: {side} {size} {symbol} {kind} on account {acct['id']} ({acct['name']})")
    placed = next((o for o in state.get("orders", []) if o["id"] == order_id), None)
    if placed is not None:
        click.echo(f"  working: {_describe_order(placed)}")
    for p in state.get("positions", []):
        click.echo(f"  position: {_describe_position(p)}")
    if not state.get("positions"):
        click.echo("  position: flat")


def _order_command(side: str):
    @click.argument("size", type=click.IntRange(min=1))
    @click.argument("symbol")
    @click.option("--limit", type=float, help="Limit price (with --stop: a stop-limit).")
    @click.option("--stop", type=float, help="Stop price.")
    @click.option("--trail", type=float, help="Trailing stop distance in price units.")
    @click.option("--stop-loss", type=click.IntRange(min=1), metavar="TICKS", help="Bracket: stop-loss child TICKS away.")
    @click.option("--take-profit", type=click.IntRange(min=1), metavar="TICKS", help="Bracket: take-profit child TICKS away.")
    @account_option
    @url_option
    @json_option
    def command(size: int, symbol: str, limit: float | None, stop: float | None, trail: float | None,
                stop_loss: int | None, take_profit: int | None, account: str | None, url: str, as_json: bool) -> None:
        _place(side, size, symbol, limit, stop, trail, stop_loss, take_profit, account, url, as_json)
    command.__doc__ = (f"{side.capitalize()} SIZE SYMBOL: market by default, --limit/--stop/--trail for "
                       f"resting orders. Prints the resulting position.")
    return command


order.command("buy", context_settings=CONTEXT)(_order_command("buy"))
order.command("sell", context_settings=CONTEXT)(_order_command("sell"))


@order.command("cancel", context_settings=CONTEXT)
@click.argument("order_id", type=int)
@account_option
@url_option
def order_cancel(order_id: int, account: str | None, url: str) -> None:
    """Cancel working order ORDER_ID."""
    sim = _Sim(url)
    acct = _resolve_account(sim, account)
    sim.cancel_order(acct["id"], order_id)
    click.echo(f"order {order_id} cancelled")


@main.command(context_settings=CONTEXT)
@click.argument("symbol")
@click.option("--size", type=click.IntRange(min=1), help="Close only this many contracts.")
@account_option
@url_option
def close(symbol: str, size: int | None, account: str | None, url: str) -> None:
    """Close the position in SYMBOL at market (all of it, or --size contracts)."""
    sim = _Sim(url)
    acct = _resolve_account(sim, account)
    answer = sim.close_position(acct["id"], symbol, size)
    left = [p for p in answer.get("positions", []) if p.get("contractId") == answer.get("contractId")]
    click.echo(f"{answer.get('contractId')}: " + (f"now {_describe_position(left[0])}" if left else "flat"))


@main.command(context_settings=CONTEXT)
@account_option
@url_option
@json_option
def state(account: str | None, url: str, as_json: bool) -> None:
    """Show an account: balance, positions, working orders and trades."""
    sim = _Sim(url)
    acct = _resolve_account(sim, account)
    data = sim.state(acct["id"])
    if as_json:
        _print_json(data)
        return
    a = data["account"]
    click.echo(f"account {a['id']} {a['name']!r}: balance {_money(a['balance'])}, canTrade {'yes' if a['canTrade'] else 'no'}")
    positions = data.get("positions") or []
    click.echo("positions:" + ("" if positions else " none"))
    for p in positions:
        click.echo(f"  {_describe_position(p)}")
    orders = data.get("orders") or []
    click.echo("working orders:" + ("" if orders else " none"))
    for o in orders:
        click.echo(f"  {_describe_order(o)}")
    trades = data.get("trades") or []
    click.echo(f"trades: {len(trades) or 'none'}")
    for t in trades[-10:]:
        pnl = "-" if t.get("profitAndLoss") is None else _money(t["profitAndLoss"])
        click.echo(f"  #{t['id']}  {SIDE_NAMES.get(t.get('side'), '?')} {t['size']} {_short(t['contractId'])} "
                   f"@ {_price(t['price'])}  P&L {pnl}  fees {_money(t.get('fees'))}")


# -- clock, faults, sockets, tokens, config --------------------------------------------------------

@main.command(context_settings=CONTEXT)
@click.option("--set", "set_to", metavar="ISO", help="Jump to this time, e.g. 2026-11-24T21:59:00+00:00.")
@click.option("--advance", type=float, metavar="SECONDS", help="Move forward this many seconds.")
@url_option
def clock(set_to: str | None, advance: float | None, url: str) -> None:
    """Show the simulated clock, or move it with --set / --advance."""
    sim = _Sim(url)
    if set_to is not None and advance is not None:
        _fail("give --set or --advance, not both")
    if set_to is not None:
        answer = sim.set_clock(set_to)
    elif advance is not None:
        answer = sim.advance_clock(advance)
    else:
        answer = sim.clock()
    click.echo(answer["now"])


@main.group(context_settings=CONTEXT)
def fault() -> None:
    """Inject failures into REST paths or hubs (see `fault add --help`)."""


@fault.command("add", context_settings=CONTEXT)
@click.argument("path")
@click.argument("kind", type=click.Choice(["5xx", "429", "401", "slow", "late", "drop", "logout"]))
@click.option("--count", default=1, show_default=True, type=click.IntRange(min=1), help="How many requests/events/connection attempts it hits.")
@click.option("--retry-after", type=click.IntRange(min=0), help="429: Retry-After seconds (default 1).")
@click.option("--delay-ms", type=click.IntRange(min=0), help="slow/late: delay in ms (default 1000).")
@click.option("--applied", is_flag=True, help="5xx/drop on REST: execute the request anyway, then fail the answer.")
@url_option
def fault_add(path: str, kind: str, count: int, retry_after: int | None, delay_ms: int | None, applied: bool, url: str) -> None:
    """Make the next COUNT calls to PATH fail with KIND.

    \b
    PATH is a REST path (/api/Order/place, or * for all) or a hub (hub:user, hub:market, hub:all).
    REST: 5xx and 429 and 401 answer that status without executing; slow waits then executes;
    late executes at once and answers after the delay; drop closes the connection without an
    answer.
    Hubs: drop/logout close the sockets instead of delivering the next event (lost);
    slow delays the next events; 5xx/429/401 refuse the next connection attempts.
    """
    body = {"path": path, "kind": kind, "count": count, "retryAfter": retry_after, "delayMs": delay_ms}
    if applied:
        body["applied"] = True
    answer = _Sim(url).request("POST", "/sim/faults", body=body)
    f = answer["fault"]
    click.echo(f"fault {f['id']}: next {f['count']} x {f['path']} -> {f['kind']}")


@fault.command("list", context_settings=CONTEXT)
@url_option
@json_option
def fault_list(url: str, as_json: bool) -> None:
    """List armed faults with their remaining counts."""
    faults = _Sim(url).faults().get("faults", [])
    if as_json:
        _print_json(faults)
        return
    if not faults:
        click.echo("no faults armed")
    for f in faults:
        click.echo(f"fault {f['id']}: {f['path']} -> {f['kind']}, {f['remaining']} of {f['count']} left")


@fault.command("clear", context_settings=CONTEXT)
@url_option
def fault_clear(url: str) -> None:
    """Disarm every armed fault at once."""
    answer = _Sim(url).clear_faults()
    click.echo(f"{answer.get('cleared', 0)} fault(s) cleared")


@main.command(context_settings=CONTEXT)
@click.option("--hub", type=click.Choice(["user", "market", "all"]), default="all", show_default=True)
@click.option("--mode", type=click.Choice(["close", "abort", "error"]), default="close", show_default=True,
              help="close: clean close, clients reconnect; abort: cut TCP; error: SignalR close with an error (pysignalr gives up for good).")
@url_option
def drop(hub: str, mode: str, url: str) -> None:
    """Close the hub sockets now (clients reconnect; missed events are not replayed)."""
    answer = _Sim(url).request("POST", "/sim/drop", body={"hub": hub, "mode": mode})
    click.echo(f"dropped {answer.get('dropped', 0)} socket(s)")


@main.command(context_settings=CONTEXT)
@click.option("--hub", type=click.Choice(["user", "market", "all"]), default="all", show_default=True)
@click.option("--expire-tokens", is_flag=True, help="Also invalidate every token issued so far.")
@url_option
def logout(hub: str, expire_tokens: bool, url: str) -> None:
    """Send GatewayLogout on the hub sockets, then close them."""
    answer = _Sim(url).request("POST", "/sim/logout", body={"hub": hub, "expireTokens": expire_tokens})
    click.echo(f"logged out {answer.get('loggedOut', 0)} socket(s)" + (", tokens expired" if expire_tokens else ""))


@main.command(context_settings=CONTEXT)
@click.option("--expires-in", type=float, metavar="SECONDS", help="Lifetime of tokens issued from now on.")
@click.option("--expire-all", is_flag=True, help="Invalidate every token issued so far (clients get 401).")
@url_option
def tokens(expires_in: float | None, expire_all: bool, url: str) -> None:
    """Control token lifetime and expiry."""
    if expires_in is None and not expire_all:
        _fail("give --expires-in SECONDS and/or --expire-all")
    answer = _Sim(url).tokens(expires_in=expires_in, expire_all=expire_all or None)
    click.echo(f"new tokens live {answer['expiresIn']:g} s" + ("; all issued tokens expired" if expire_all else ""))


@main.command(context_settings=CONTEXT)
@click.option("--wrap-events/--no-wrap-events", default=None, help="User events as {action, data} or bare.")
@click.option("--pnl-includes-fees/--pnl-excludes-fees", default=None, help="Fees taken off profitAndLoss or not.")
@click.option("--quote-interval-ms", type=click.IntRange(0), help="Periodic quote interval (0 disables).")
@click.option("--rate-limit/--no-rate-limit", default=None, help="Enforce the gateway's request budgets with 429.")
@url_option
@json_option
def config(wrap_events: bool | None, pnl_includes_fees: bool | None, quote_interval_ms: int | None,
           rate_limit: bool | None, url: str, as_json: bool) -> None:
    """Show or change the simulator's run-time switches."""
    sim = _Sim(url)
    body = {"wrapEvents": wrap_events, "pnlIncludesFees": pnl_includes_fees,
            "quoteIntervalMs": quote_interval_ms, "rateLimit": rate_limit}
    if all(v is None for v in body.values()):
        answer = sim.request("GET", "/sim/config")
    else:
        answer = sim.request("POST", "/sim/config", body=body)
    if as_json:
        _print_json(answer)
        return
    for k, v in answer.items():
        click.echo(f"{k}: {v}")


# -- the record ----------------------------------------------------------------------------------

@main.command(context_settings=CONTEXT)
@click.argument("label")
@url_option
def mark(label: str, url: str) -> None:
    """Put LABEL into the simulator's log (to find a moment later)."""
    answer = _Sim(url).mark(label)
    rec = answer.get("record", {})
    click.echo(f"mark {rec.get('n')} at t={rec.get('t')}")


def _summary(rec: dict[str, Any]) -> str:
    kind = rec.get("kind")
    if kind == "request":
        ids = " ".join(f"{k}={rec[k]}" for k in ("accountId", "contractId", "orderId") if k in rec)
        err = f" errorCode={rec['errorCode']}" if rec.get("success") is False else ""
        fault_ = f" fault={rec['fault']}" if rec.get("fault") else ""
        return f"{rec.get('method')} {rec.get('path')} {ids} -> {rec.get('status')}{err}{fault_}".replace("  ", " ")
    if kind == "event":
        p = rec.get("payload") or {}
        detail = ""
        if rec.get("target") == "GatewayQuote":
            detail = f"last {p.get('lastPrice')}"
        elif rec.get("target") in ("GatewayUserOrder",):
            detail = f"#{p.get('id')} {STATUS_NAMES.get(p.get('status'), p.get('status'))}"
        elif rec.get("target") == "GatewayUserPosition":
            detail = f"size {p.get('size')} @ {p.get('averagePrice')}"
        elif rec.get("target") == "GatewayUserTrade":
            detail = f"#{p.get('id')} {SIDE_NAMES.get(p.get('side'), '?')} {p.get('size')} @ {p.get('price')}"
        elif rec.get("target") == "GatewayUserAccount":
            detail = f"balance {p.get('balance')} canTrade {p.get('canTrade')}"
        who = rec.get("accountId") if rec.get("accountId") is not None else rec.get("contractId")
        extra = "".join(f" {k}" for k in ("periodic", "snapshot") if rec.get(k))
        return f"{rec.get('hub')} {rec.get('target')} {who} {detail} -> {rec.get('delivered')} socket(s){extra}"
    if kind == "hub":
        bits = [str(rec.get("hub")), str(rec.get("action"))]
        if rec.get("target"):
            bits.append(f"{rec['target']}({', '.join(map(str, rec.get('args') or []))})")
        if rec.get("status") not in (None, 200):
            bits.append(f"-> {rec['status']}")
        if rec.get("error"):
            bits.append(f"error: {rec['error']}")
        return " ".join(bits)
    if kind == "control":
        return f"{rec.get('method')} {rec.get('path')} {json.dumps(rec.get('body') or {})} -> {rec.get('status')}"
    if kind == "mark":
        return f"mark {rec.get('label')!r}"
    return json.dumps(rec)


@main.command("log", context_settings=CONTEXT)
@click.option("--since", default=0, show_default=True, type=click.IntRange(min=0), help="First sequence number to show.")
@click.option("--kind", type=click.Choice(["request", "event", "hub", "control", "mark"]), multiple=True, help="Only these kinds (repeatable).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new records until Ctrl-C.")
@url_option
@json_option
def log_command(since: int, kind: tuple[str, ...], follow: bool, url: str, as_json: bool) -> None:
    """Print the simulator's record of requests, events, hub activity, control calls and marks.

    Times are the simulator's monotonic clock in seconds. With --json, one JSON record per line.
    """
    sim = _Sim(url)
    cursor = since
    kinds = ",".join(kind) or None
    try:
        while True:
            page = sim.log(since=cursor, kind=kinds)
            for rec in page.get("records", []):
                if as_json:
                    click.echo(json.dumps(rec, default=str))
                else:
                    click.echo(f"{rec['n']:>7} {rec['t']:>14.3f} {rec['kind']:<8} {_summary(rec)}")
            cursor = page.get("next", cursor)
            if not follow:
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


@main.command(context_settings=CONTEXT)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@url_option
def reset(yes: bool, url: str) -> None:
    """Forget every account, order, position, fault and log record."""
    if not yes and not click.confirm(f"reset the simulator at {url}?", default=False):
        _fail("not reset")
    _Sim(url).reset()
    click.echo("simulator reset")


def _register_scenario() -> None:
    # The scenario runner is its own module (and owner); it is optional for the rest of the CLI.
    try:
        from gateway_sim.scenario import scenario as scenario_command
    except ImportError:
        return
    main.add_command(scenario_command, "scenario")


_register_scenario()
