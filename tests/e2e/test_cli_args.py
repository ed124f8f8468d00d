"""Argument parsing and validation of both CLIs without a daemon (click's CliRunner): every bad
argument names what is wrong and what is allowed, before anything is sent anywhere."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from risk_actors.cli.admin import main as riskd
from risk_actors.cli.trader import main as trader


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "riskd.yaml"
    path.write_text(yaml.safe_dump({
        "version": 2,
        "broker": {"api_url": "http://127.0.0.1:9/api", "user_hub_url": "http://127.0.0.1:9/hubs/user",
                   "market_hub_url": "http://127.0.0.1:9/hubs/market",
                   "username": "${UNSET_USER_FOR_TEST}", "api_key_file": "missing-key-file"},
        "accounts": [{"id": 7, "name": "A"}], "rules": {"max_contracts": {"limit": 5}},
        "daemon": {"admin_port": 1999, "state_dir": str(tmp_path / "state")}}))
    return str(path)


@pytest.mark.parametrize("args, expected", [
    (["nope", "limit", "3"], "unknown rule 'nope'; installed rules: "),
    (["max_contracts", "limt", "3"], "allowed: enabled, mode, placement, limit, count_type"),
    (["max_contracts", "count_type", "both"], "must be one of net, gross (got 'both')"),
    (["max_contracts", "limit", "0"], "limit: must be > 0 (got 0)"),
    (["max_contracts", "mode", "loud"], "mode must be one of enforce, shadow"),
    (["max_contracts", "limit", "[1, 2]"], "must be one number, true/false or text"),
    (["max_contracts", "limit", "3", "--account", "99"], "configured accounts: 7"),
])
def test_rules_set_when_argument_bad_then_names_it_and_what_is_allowed(config, args, expected):
    result = CliRunner().invoke(riskd, ["rules", "set", *args, "--config", config])
    assert result.exit_code == 2, result.output
    assert expected in result.output


def test_audit_since_when_unparseable_then_names_the_allowed_forms(config):
    result = CliRunner().invoke(riskd, ["audit", "--since", "yesterday", "--config", config])
    assert result.exit_code == 2 and "30m, 2h, 1d" in result.output


def test_trader_watch_interval_when_above_1s_then_refused(config):
    result = CliRunner().invoke(trader, ["watch", "--interval", "5", "--config", config])
    assert result.exit_code == 2 and "0.2<=x<=1.0" in result.output


def test_config_view_when_credentials_unreadable_then_trader_rules_still_work(config):
    # the trader may read the config but neither riskd's environment nor its key file
    result = CliRunner().invoke(trader, ["rules", "--config", config])
    assert result.exit_code == 0, result.output
    assert "max_contracts" in result.output and "limit 5" in result.output


@pytest.mark.parametrize("cli, group", [(riskd, []), (riskd, ["rules"]), (riskd, ["accounts"]),
                                        (riskd, ["config"]), (trader, [])])
def test_every_command_when_asked_then_has_help_text(cli, group):
    import click
    cmd = cli
    for name in group:
        cmd = cmd.commands[name]
    for name, sub in cmd.commands.items():
        assert sub.help and len(sub.help) > 20, f"{name} has no help"
        assert CliRunner().invoke(cli, [*group, name, "--help"]).exit_code == 0
    assert isinstance(cmd, click.Group)
