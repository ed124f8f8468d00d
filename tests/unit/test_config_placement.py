"""``daemon.rule_placement``, ``daemon.quote_interval_ms`` and a rule's own ``placement``."""

from __future__ import annotations

import pytest

from tests.unit.test_config import BASE, load, problems


def test_no_placement_keys_then_auto_and_20_ms_quote_interval(tmp_path):
    config = load(tmp_path, BASE)
    assert config.daemon.rule_placement == "auto"
    assert config.daemon.quote_interval_ms == 20
    assert config.daemon.enforcer_placement == "inline"
    assert config.daemon.broker_placement == "inline"
    assert all(r.placement is None for r in config.rules)


def test_placement_keys_given_then_kept_and_rule_override_wins(tmp_path):
    text = BASE.replace("  state_dir: var\n", "  state_dir: var\n  rule_placement: actor\n"
                                               "  quote_interval_ms: 0\n")
    text = text.replace("limit: 5, count_type: net}", "limit: 5, count_type: net, "
                                                      "placement: inline}")
    config = load(tmp_path, text)
    assert config.daemon.rule_placement == "actor" and config.daemon.quote_interval_ms == 0
    assert config.rule("max_contracts").placement == "inline"
    assert config.rule("max_contracts").params.limit == 5   # placement is not a rule param


@pytest.mark.parametrize("line, key, shown", [
    ("  rule_placement: thread\n", "daemon.rule_placement", "'thread'"),
    ("  quote_interval_ms: 5000\n", "daemon.quote_interval_ms", "5000"),
    ("  quote_interval_ms: fast\n", "daemon.quote_interval_ms", "'fast'"),
    ("  enforcer_placement: auto\n", "daemon.enforcer_placement", "'auto'"),
    ("  broker_placement: thread\n", "daemon.broker_placement", "'thread'"),
])
def test_bad_daemon_placement_value_then_error_names_key_and_value(tmp_path, line, key, shown):
    found = problems(tmp_path, BASE.replace("  state_dir: var\n", "  state_dir: var\n" + line)).problems
    assert any(p.path == key and p.value == shown for p in found), found


def test_bad_rule_placement_then_error_names_rule_key(tmp_path):
    text = BASE.replace("limit: 5, count_type: net}", "limit: 5, count_type: net, "
                                                      "placement: auto}")
    found = problems(tmp_path, text).problems
    assert any(p.path == "rules.max_contracts.placement" and p.value == "'auto'"
               for p in found), found
