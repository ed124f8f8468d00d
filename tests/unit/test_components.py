"""The ``components:`` config section (strict) and ``risk-trader stats`` without a daemon."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
import yaml
from click.testing import CliRunner

from risk_actors import messages as m
from risk_actors.analytics.component import AnalyticsComponent
from risk_actors.cli.trader import main as trader
from risk_actors.components import ComponentContext, discover
from risk_actors.config import ConfigError, load_config
from risk_actors.db import Database
from risk_actors.plugins import discover as discover_rules

MNQ = "CON.F.US.MNQ.Z26"


def _config(tmp_path, components=None) -> str:
    doc = {
        "version": 2,
        "broker": {"api_url": "http://127.0.0.1:9/api",
                   "user_hub_url": "http://127.0.0.1:9/hubs/user",
                   "market_hub_url": "http://127.0.0.1:9/hubs/market",
                   "username": "u", "api_key": "k"},
        "accounts": [{"id": 7, "name": "A"}], "rules": {"max_contracts": {"limit": 5}},
        "daemon": {"admin_port": 1999, "state_dir": str(tmp_path / "state")}}
    if components is not None:
        doc["components"] = components
    path = tmp_path / "riskd.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def _load(path):
    return load_config(path, discover_rules()[0])


def test_analytics_is_installed_as_an_entry_point():
    assert discover()[0]["analytics"] is AnalyticsComponent


def test_no_components_section_when_loaded_then_analytics_runs_with_daily_report(tmp_path):
    (analytics,) = _load(_config(tmp_path)).components
    assert (analytics.name, analytics.enabled, analytics.daily_report) == ("analytics", True, True)


def test_components_section_when_analytics_disabled_then_kept_disabled(tmp_path):
    cfg = _load(_config(tmp_path, {"analytics": {"enabled": False, "daily_report": False}}))
    assert [(c.name, c.enabled, c.daily_report) for c in cfg.components] == [
        ("analytics", False, False)]


@pytest.mark.parametrize("section, expected", [
    ({"analytcs": {"enabled": True}}, "components.analytcs: unknown component 'analytcs' "
                                      "(did you mean 'analytics'?)"),
    ({"analytics": {"enabeld": True}}, "components.analytics.enabeld: unknown key 'enabeld'"),
    ({"analytics": {"daily_report": "yes"}}, "components.analytics.daily_report: must be true "
                                             "or false"),
    (["analytics"], "components: must be a mapping"),
])
def test_bad_components_section_when_loaded_then_error_names_file_line_and_key(tmp_path,
                                                                               section,
                                                                               expected):
    path = _config(tmp_path, section)
    with pytest.raises(ConfigError) as err:
        _load(path)
    text = str(err.value)
    assert expected in text
    found = re.search(rf"{re.escape(path)}:(\d+): components", text)
    assert found, text
    line = open(path).read().splitlines()[int(found.group(1)) - 1]
    key = expected.split(":")[0].split(".")[-1]
    assert key in line, (line, key)


def test_shipped_default_config_loads_with_analytics(monkeypatch):
    monkeypatch.setenv("PROJECT_X_USERNAME", "u")
    monkeypatch.setenv("PROJECT_X_API_KEY", "k")
    cfg = _load("etc/riskd.yaml")
    assert [c.name for c in cfg.components if c.enabled] == ["analytics"]


# ---- risk-trader stats --------------------------------------------------------------------------
@pytest.fixture
def recorded(tmp_path):
    """A config whose database holds two round turns on account 7 (no daemon running)."""
    path = _config(tmp_path)
    (tmp_path / "state").mkdir()
    db = tmp_path / "state" / "riskd.sqlite"
    Database(db).close()
    comp = AnalyticsComponent()
    comp.start(ComponentContext(str(db), str(tmp_path / "state")))
    at = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
    for tid, pnl in ((1, None), (2, 25.0), (3, None), (4, -10.0)):
        comp.on_event(7, m.TradeEvent(7, tid, MNQ, at, 100.0, pnl, 0.5, 0, 1), at)
    comp.on_event(7, m.RuleTriggered("max_contracts", "enforce", "6 > 5"), at)
    comp.close()
    return path


def test_stats_json_when_daemon_down_then_reports_figures_and_says_so(recorded):
    result = CliRunner().invoke(trader, ["stats", "--json", "--config", recorded])
    assert result.exit_code == 0, result.output
    assert "riskd is NOT running" in result.stderr
    data = json.loads(result.stdout)
    (acc,) = data["accounts"]
    assert (acc["account_id"], acc["trades"], acc["wins"], acc["losses"]) == (7, 2, 1, 1)
    assert acc["net_pnl"] == 13.0          # 25 - 10 - 4 * 0.50
    assert acc["rule_triggers"] == {"max_contracts": 1}
    assert list(acc["by_instrument"]) == ["MNQ"] and list(acc["by_hour"]) == ["09"]


def test_stats_range_when_outside_the_trades_then_empty(recorded):
    result = CliRunner().invoke(trader, ["stats", "--json", "--from", "2026-11-25",
                                         "--config", recorded])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accounts"][0]["trades"] == 0


def test_stats_human_output_is_a_table(recorded):
    result = CliRunner().invoke(trader, ["stats", "--account", "7", "--from", "2026-11-24",
                                         "--to", "2026-11-24", "--config", recorded])
    assert result.exit_code == 0, result.output
    for text in ("account 7", "win rate", "50.0%", "profit factor", "2.50", "by hour", "MNQ",
                 "max_contracts x1"):
        assert text in result.stdout


@pytest.mark.parametrize("args, expected", [
    (["--from", "24/11/2026"], "'24/11/2026' is not a date: write YYYY-MM-DD"),
    (["--to", "tomorrowish"], "is not a date"),
    (["--from", "2026-11-25", "--to", "2026-11-24"], "2026-11-25 is after --to 2026-11-24"),
])
def test_stats_bad_dates_when_given_then_usage_error_naming_the_option(recorded, args, expected):
    result = CliRunner().invoke(trader, ["stats", *args, "--config", recorded])
    assert result.exit_code == 2
    assert expected in result.output


def test_stats_help_describes_every_option():
    result = CliRunner().invoke(trader, ["stats", "--help"])
    for option in ("--account", "--from", "--to", "--json", "--config"):
        assert option in result.output
    assert "YYYY-MM-DD" in result.output


def test_stats_when_no_database_then_says_so(tmp_path):
    result = CliRunner().invoke(trader, ["stats", "--config", _config(tmp_path)])
    assert result.exit_code == 1
    assert "no database" in result.output
