"""Plugin discovery: built-ins come through the ``riskd.rules`` entry points like any plugin."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint, entry_points

import pytest

from risk_actors import plugins
from risk_actors.plugins import PluginError, discover, load_rule, rule_path
from rules.daily_realized_loss import DailyRealizedLoss
from rules.max_contracts import MaxContracts

BUILT_INS = {"max_contracts": MaxContracts, "daily_realized_loss": DailyRealizedLoss}


def test_installed_package_when_listing_entry_points_then_both_built_ins_registered():
    eps = {ep.name: ep.value for ep in entry_points(group=plugins.GROUP)}
    assert eps.get("max_contracts") == "rules.max_contracts:MaxContracts"
    assert eps.get("daily_realized_loss") == "rules.daily_realized_loss:DailyRealizedLoss"


def test_discover_when_entry_points_only_then_finds_both_built_ins_by_name():
    # Act
    found, errors = discover(include_package=False)
    # Assert
    for name, cls in BUILT_INS.items():
        assert found[name] is cls
    assert errors == []


def test_discover_when_package_scan_included_then_same_classes_and_no_errors():
    found, errors = discover()
    for name, cls in BUILT_INS.items():
        assert found[name] is cls
    assert errors == []


def test_rule_path_when_loaded_back_then_same_class():
    for cls in BUILT_INS.values():
        assert load_rule(rule_path(cls)) is cls


def test_load_rule_when_path_is_not_a_rule_then_plugin_error():
    with pytest.raises(PluginError):
        load_rule("risk_actors.messages:Alert")


# ---- malformed plugins are reported, never raised -------------------------------------------
@pytest.fixture
def bad_plugin_modules(tmp_path, monkeypatch):
    """A throwaway package with the usual ways a third-party plugin can be broken."""
    pkg = tmp_path / "badrules"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "broken_import.py").write_text("import module_that_does_not_exist_xyz\n")
    (pkg / "no_events.py").write_text(textwrap.dedent("""
        from rules.base import Rule
        class NoEvents(Rule):
            name = "no_events"
            def evaluate(self, event, state, now): return None
            def get_enforcement_action(self, violation): return ()
    """))
    nameless = tmp_path / "namelessrules"  # kept apart: scanning it currently raises
    nameless.mkdir()
    (nameless / "__init__.py").write_text("")
    (nameless / "no_name.py").write_text(textwrap.dedent("""
        from rules.base import Rule, TradeEvent
        class NoName(Rule):
            events = (TradeEvent,)
            def evaluate(self, event, state, now): return None
            def get_enforcement_action(self, violation): return ()
    """))
    (pkg / "good.py").write_text(textwrap.dedent("""
        from rules.base import Rule, TradeEvent
        class GoodRule(Rule):
            name = "good_rule"
            events = (TradeEvent,)
            def evaluate(self, event, state, now): return None
            def get_enforcement_action(self, violation): return ()
        class NotARule:
            name = "not_a_rule"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "badrules"
    for mod in [k for k in sys.modules if k.split(".")[0] in ("badrules", "namelessrules")]:
        del sys.modules[mod]


def test_malformed_entry_points_when_discovered_then_reported_and_others_still_load(
        bad_plugin_modules, monkeypatch):
    # Arrange: the installed entry points plus broken third-party ones
    real = list(entry_points(group=plugins.GROUP))
    broken = [
        EntryPoint("missing_module", "module_that_does_not_exist_xyz:Rule", plugins.GROUP),
        EntryPoint("missing_attr", "rules.max_contracts:NoSuchClass", plugins.GROUP),
        EntryPoint("not_a_rule", "risk_actors.messages:Alert", plugins.GROUP),
        EntryPoint("no_events", "badrules.no_events:NoEvents", plugins.GROUP),
        EntryPoint("no_name", "namelessrules.no_name:NoName", plugins.GROUP),
        EntryPoint("renamed", "badrules.good:GoodRule", plugins.GROUP),
    ]
    monkeypatch.setattr(plugins, "entry_points", lambda group: [*broken, *real]
                        if group == plugins.GROUP else [])
    # Act
    found, errors = discover(include_package=False)
    # Assert
    assert found["max_contracts"] is MaxContracts
    assert found["daily_realized_loss"] is DailyRealizedLoss
    assert "good_rule" in found  # loaded under its own name, mismatch reported
    assert {"max_contracts", "daily_realized_loss", "good_rule"} <= set(found)
    assert not {"missing_module", "missing_attr", "not_a_rule", "no_events", "no_name",
                "renamed", "no_events_rule"} & set(found)
    for name in ("missing_module", "missing_attr", "not_a_rule", "no_events", "no_name",
                 "renamed"):
        assert sum(f"'{name}'" in e for e in errors) == 1, (name, errors)


def test_malformed_modules_when_package_scanned_then_reported_and_good_rule_found(
        bad_plugin_modules):
    # Arrange
    found: dict = {}
    errors: list[str] = []
    # Act
    plugins._from_package(found, errors, package=bad_plugin_modules)
    # Assert
    assert set(found) == {"good_rule"}
    assert any("broken_import" in e for e in errors)
    assert any("no_events" in e for e in errors)
    assert len(errors) == 2


def test_rule_without_name_when_package_scanned_then_reported_not_raised(bad_plugin_modules):
    # Arrange
    found: dict = {}
    errors: list[str] = []
    # Act
    plugins._from_package(found, errors, package="namelessrules")
    # Assert
    assert found == {}
    assert len(errors) == 1 and "NoName" in errors[0]
