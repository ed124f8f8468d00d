"""The gateway-sim CLI against a running simulator: the README's newcomer path and its errors."""

from __future__ import annotations

import json
import socket

import click
import pytest
from click.testing import CliRunner

from gateway_sim.cli import main

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def cli(sim_url: str, control):
    runner = CliRunner()

    def invoke(*args: str, url: str | None = sim_url) -> click.testing.Result:
        full = list(args) + (["--url", url] if url else [])
        return runner.invoke(main, full, catch_exceptions=False)
    return invoke


def test_newcomer_creates_an_account_buys_two_mnq_and_sees_the_position(cli) -> None:
    created = cli("account", "create", "cli-newcomer", "--json")
    assert created.exit_code == 0, created.output
    acct = json.loads(created.stdout)["id"]
    assert cli("price", "MNQ", "21000").exit_code == 0
    bought = cli("order", "buy", "2", "MNQ", "--account", "cli-newcomer")
    assert bought.exit_code == 0, bought.output
    assert "position: long 2 MNQ @ 21000.00  (CON.F.US.MNQ.Z26)" in bought.stdout
    shown = cli("state", "--account", str(acct))
    assert "long 2 MNQ @ 21000.00" in shown.stdout and "balance 49,999.26" in shown.stdout
    closed = cli("close", "MNQ", "--size", "1", "--account", str(acct))
    assert closed.exit_code == 0 and "long 1" in closed.stdout
    listed = cli("account", "list")
    assert "cli-newcomer" in listed.stdout


def test_resting_orders_price_paths_and_cancel(cli) -> None:
    cli("account", "create", "cli-rester")
    cli("price", "MNQ", "21000")
    placed = cli("order", "sell", "1", "MNQ", "--limit", "21010", "--account", "cli-rester", "--json")
    order_id = json.loads(placed.stdout)["orderId"]
    assert cli("order", "cancel", str(order_id), "--account", "cli-rester").exit_code == 0
    state = json.loads(cli("state", "--account", "cli-rester", "--json").stdout)
    assert state["orders"] == []
    path = cli("price-path", "MNQ", "21001", "21002", "--interval-ms", "10")
    assert path.exit_code == 0 and "playing 2 prices" in path.stdout


@pytest.mark.parametrize("args, named", [
    (["order", "buy", "2", "NOPE", "--account", "cli-errors"], "NOPE"),
    (["order", "buy", "2", "MNQ", "--limit", "21000.1", "--account", "cli-errors"], "21000.1"),
    (["order", "buy", "2", "MNQ", "--account", "no-such-account"], "no-such-account"),
    (["price", "MNQ", "0"], "price must be > 0"),
    (["fault", "add", "hub:nope", "drop"], "hub:nope"),
    (["clock", "--set", "yesterday"], "yesterday"),
    (["can-trade", "424242", "on"], "424242"),
])
def test_user_errors_print_one_line_naming_the_value_and_exit_1(cli, args: list[str], named: str) -> None:
    cli("account", "create", "cli-errors")
    result = cli(*args)
    assert result.exit_code == 1, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert named in result.stderr and "Traceback" not in result.stderr


def test_no_simulator_running_exits_3_with_a_hint(cli) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("account", "list", url=f"http://127.0.0.1:{port}")
    assert result.exit_code == 3 and "gateway-sim serve" in result.stderr


def test_faults_clock_config_and_log_commands(cli) -> None:
    assert "next 2 x /api/Order/place -> 429" in cli("fault", "add", "/api/Order/place", "429", "--count", "2").stdout
    assert "2 of 2 left" in cli("fault", "list").stdout
    assert "1 fault(s) cleared" in cli("fault", "clear").stdout
    assert cli("clock", "--advance", "60").exit_code == 0
    assert "wrapEvents: True" in cli("config", "--wrap-events").stdout
    assert "wrapEvents: False" in cli("config", "--no-wrap-events").stdout
    mark = cli("mark", "cli-mark")
    n = int(mark.stdout.split()[1])
    lines = cli("log", "--since", str(n), "--json").stdout.splitlines()
    assert json.loads(lines[0])["label"] == "cli-mark"
    assert "mark 'cli-mark'" in cli("log", "--since", str(n), "--kind", "mark").stdout


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


def test_every_command_explains_itself() -> None:
    for path, cmd in _commands(main):
        assert cmd.help and len(cmd.help.strip()) > 20, path
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.stdout, path
