"""Config loading: schema, errors (file, key, line, value), overrides, reload, write-back."""

from __future__ import annotations

import os
import pickle
import textwrap
from datetime import time
from pathlib import Path
from typing import Literal, Mapping
from zoneinfo import ZoneInfo

import attrs
import pytest

from risk_actors.broker.settings import BrokerSettings
from risk_actors.config import (Config, ConfigError, load_config, make_converter, read_document,
                                reload, write_document)
from risk_actors.symbols import DEFAULT_ALIASES
from rules.base import Rule

REPO = Path(__file__).resolve().parents[2]
ENV = {"PROJECT_X_USERNAME": "trader1", "PROJECT_X_API_KEY": "sk-LIVE-0123456789abcdef"}
SECRET = ENV["PROJECT_X_API_KEY"]


# ---------------------------------------------------------------------------------------------
# tiny fake rules (the real ones are written elsewhere; config must not depend on them)
@attrs.frozen
class MaxContractsParams:
    limit: int = attrs.field(default=5, validator=attrs.validators.gt(0))
    count_type: Literal["net", "gross"] = "net"
    reduce_to_limit: bool = True
    close_all: bool = False


class FakeMaxContracts(Rule):
    name = "max_contracts"
    Params = MaxContractsParams

    def evaluate(self, event, state, now):
        return None

    def get_enforcement_action(self, violation):
        return ()


@attrs.frozen
class DailyLossParams:
    limit: float = attrs.field(validator=attrs.validators.lt(0))  # required
    include_fees: bool = True


def _loss(_inst, _attr, value):
    if value >= 0:  # a hand-written message, as real rules write them
        raise ValueError(f"limit must be < 0 (a loss), got {value}")


@attrs.frozen
class LossParams:
    limit: float = attrs.field(default=-500.0, converter=float, validator=_loss)


class FakeLoss(FakeMaxContracts):
    name = "loss"
    Params = LossParams


class FakeDailyLoss(FakeMaxContracts):
    name = "daily_realized_loss"
    Params = DailyLossParams


@attrs.frozen
class Tier:
    loss: float
    seconds: int


@attrs.frozen
class NestedParams:
    limits: Mapping[str, int] = attrs.Factory(dict)
    tiers: list[Tier] = attrs.Factory(list)


class FakeNested(FakeMaxContracts):
    name = "per_symbol"
    Params = NestedParams


REGISTRY = {"max_contracts": FakeMaxContracts, "daily_realized_loss": FakeDailyLoss}
REGISTRY3 = {**REGISTRY, "per_symbol": FakeNested}

BASE = """\
version: 2
broker:
  api_url: https://api.topstepx.com/api
  user_hub_url: https://rtc.topstepx.com/hubs/user
  market_hub_url: https://rtc.topstepx.com/hubs/market
  username: ${PROJECT_X_USERNAME}
  api_key: ${PROJECT_X_API_KEY}
accounts:
  - id: 536
    name: PRAC-V2-1
    overrides:
      rules:
        daily_realized_loss: {limit: -300}
  - name: EXPRESS-2
rules:
  max_contracts: {enabled: true, mode: enforce, limit: 5, count_type: net}
  daily_realized_loss: {limit: -500, include_fees: true}
timers:
  daily_reset: {time: "17:00", timezone: America/Chicago}
daemon:
  admin_port: 19555
  state_dir: var
"""


def write(tmp_path: Path, text: str, name: str = "riskd.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, registry=REGISTRY, env=ENV) -> Config:
    return load_config(write(tmp_path, text), registry, env=env)


def problems(tmp_path: Path, text: str, registry=REGISTRY, env=ENV):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, registry, env)
    return info.value


def only(err: ConfigError):
    assert len(err.problems) == 1, str(err)
    return err.problems[0]


# ---------------------------------------------------------------------------------------------
# the shipped configs
def test_demo_config_loads_and_points_at_the_simulator():
    cfg = load_config(REPO / "etc/demo/riskd.yaml", REGISTRY, env={})
    assert cfg.broker.api_url == "http://127.0.0.1:8931/api"
    assert cfg.broker.settings() == BrokerSettings(
        api_url="http://127.0.0.1:8931/api", user_hub_url="http://127.0.0.1:8931/hubs/user",
        market_hub_url="http://127.0.0.1:8931/hubs/market", username="demo", api_key="demo-key")
    assert [r.name for r in cfg.rules_for(1001)] == ["max_contracts", "daily_realized_loss"]
    assert cfg.daemon.state_dir == REPO / "var/demo"


def installed_rules() -> dict:
    """The real rule plugins (the shipped default config enables most of them)."""
    from risk_actors.plugins import discover
    return dict(discover()[0])


def test_default_config_loads_with_credentials_from_the_environment():
    cfg = load_config(REPO / "etc/riskd.yaml", installed_rules(), env=ENV)
    assert cfg.broker.username == "trader1"
    assert cfg.broker.api_url.startswith("http://127.0.0.1")  # never production by default
    rules = {r.name: r for r in cfg.rules_for(1001)}
    mc = rules["max_contracts"].params
    assert (mc.limit, mc.count_type, mc.reduce_to_limit, mc.close_all) == (5, "net", True, False)
    loss = rules["daily_realized_loss"].params
    assert (loss.limit, loss.include_fees) == (-300, True)  # the account's override
    assert "trade_management" not in rules  # automation is off unless asked for
    assert cfg.rule("daily_realized_loss").params.limit == -500
    assert cfg.timers.daily_reset.time == "17:00"


def test_default_config_without_environment_names_the_missing_variables():
    err = load_config_error(REPO / "etc/riskd.yaml", installed_rules(), env={})
    assert {p.path for p in err.problems} == {"broker.username", "broker.api_key"}
    assert "PROJECT_X_USERNAME is not set" in str(err)
    assert "PROJECT_X_API_KEY is not set" in str(err)


def test_shipped_configs_validate_against_the_installed_rules():
    from importlib.metadata import entry_points
    registry = {}
    for ep in entry_points(group="riskd.rules"):
        try:
            registry[ep.name] = ep.load()
        except ImportError:
            pytest.skip(f"rule plugin {ep.value} not importable yet")
    if not registry:
        pytest.skip("riskd is not installed (no riskd.rules entry points)")
    load_config(REPO / "etc/riskd.yaml", registry, env=ENV)
    load_config(REPO / "etc/demo/riskd.yaml", registry, env={})


def load_config_error(path, registry, env) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, env=env)
    return info.value


# ---------------------------------------------------------------------------------------------
# structure
def test_base_config_loads(tmp_path):
    cfg = load(tmp_path, BASE)
    assert cfg.version == 2 and cfg.migrated_from is None and cfg.warnings == ()
    assert [a.label for a in cfg.accounts] == ["536 'PRAC-V2-1'", "'EXPRESS-2'"]
    assert cfg.daemon.admin_port == 19555
    assert cfg.daemon.state_dir == (tmp_path / "var").resolve()  # relative to the file
    assert cfg.daemon.rule_timeout_ms == 100


def test_config_objects_are_frozen(tmp_path):
    cfg = load(tmp_path, BASE)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cfg.daemon.admin_port = 1


def test_listed_rule_is_enabled_unless_it_says_otherwise(tmp_path):
    cfg = load(tmp_path, BASE.replace("max_contracts: {enabled: true, ", "max_contracts: {"))
    assert cfg.rule("max_contracts").enabled is True
    cfg = load(tmp_path, BASE.replace("enabled: true, mode: enforce", "enabled: false"))
    assert cfg.rule("max_contracts").enabled is False
    assert [r.name for r in cfg.rules_for(536)] == ["daily_realized_loss"]
    assert [r.name for r in cfg.rules_for(536, include_disabled=True)] == [
        "max_contracts", "daily_realized_loss"]


def test_rule_with_no_settings_runs_with_default_params(tmp_path):
    cfg = load(tmp_path, BASE.replace(
        "max_contracts: {enabled: true, mode: enforce, limit: 5, count_type: net}",
        "max_contracts:"))
    assert cfg.rule("max_contracts") .params == MaxContractsParams()
    assert cfg.rule("max_contracts").mode == "enforce"


def test_shadow_mode(tmp_path):
    cfg = load(tmp_path, BASE.replace("mode: enforce", "mode: shadow"))
    assert cfg.rule("max_contracts").mode == "shadow"


def test_unlisted_rule_does_not_run(tmp_path):
    cfg = load(tmp_path, BASE.replace(
        "  max_contracts: {enabled: true, mode: enforce, limit: 5, count_type: net}\n", ""))
    assert [r.name for r in cfg.rules_for(536)] == ["daily_realized_loss"]


def test_optional_sections_default(tmp_path):
    text = BASE.split("timers:")[0]
    cfg = load(tmp_path, text)
    assert (cfg.timers.daily_reset.time, cfg.timers.daily_reset.timezone) == ("17:00",
                                                                               "America/Chicago")
    assert cfg.daemon.admin_port == 19500
    assert cfg.daemon.state_dir == (tmp_path / "var").resolve()


def test_symbol_aliases_are_added_to_the_built_in_table(tmp_path):
    cfg = load(tmp_path, BASE + "  symbol_aliases: {ep: es, MYX: MES}\n")
    assert cfg.daemon.symbol_aliases == {"EP": "ES", "MYX": "MES"}
    assert cfg.daemon.aliases() == {**DEFAULT_ALIASES, "MYX": "MES"}


def test_repr_and_errors_never_show_the_api_key(tmp_path):
    cfg = load(tmp_path, BASE)
    assert cfg.broker.api_key == SECRET
    assert SECRET not in repr(cfg) and SECRET not in repr(cfg.broker.settings())
    # A literal key in the file with something else wrong: the key stays out of the message.
    text = BASE.replace("${PROJECT_X_API_KEY}", SECRET).replace("limit: 5", "limit: -5")
    err = problems(tmp_path, text)
    assert SECRET not in str(err) and SECRET not in repr(err.problems)


def test_api_key_of_wrong_type_is_reported_without_its_value(tmp_path):
    p = only(problems(tmp_path, BASE.replace("${PROJECT_X_API_KEY}", "[1, 2]")))
    assert (p.path, p.value) == ("broker.api_key", None)
    assert "value is not shown" in p.message


@pytest.mark.parametrize("broken", [
    'api_key: "sk-LIVE-0123456789abcdef\n',              # unterminated quote on the key's line
    "api_key: sk-LIVE-0123456789abcdef\n  api_key: sk-LIVE-0123456789abcdef\n",  # duplicate key
])
def test_yaml_errors_on_the_key_line_do_not_quote_it(tmp_path, broken):
    text = BASE.replace("api_key: ${PROJECT_X_API_KEY}\n", broken)
    err = problems(tmp_path, text)
    assert SECRET not in str(err)
    assert err.problems[0].line is not None


# ---------------------------------------------------------------------------------------------
# every error names file, key path, line, value and what is allowed
CASES = [
    # (old text, new text, key path, line, message fragment, shown value)
    ("limit: 5, count", "limit: 0, count", "rules.max_contracts.limit", 16, "must be > 0", "0"),
    ("limit: -500", "limit: 5", "rules.daily_realized_loss.limit", 17, "must be < 0", "5"),
    ("limit: -500, ", "", "rules.daily_realized_loss.limit", 17, "required key missing", None),
    ("count_type: net", "count_type: nett", "rules.max_contracts.count_type", 16,
     "must be one of net, gross", "'nett'"),
    ("mode: enforce", "mode: enforced", "rules.max_contracts.mode", 16,
     "must be one of enforce, shadow", "'enforced'"),
    ("enabled: true, mode", "enabled: 'yes', mode", "rules.max_contracts.enabled", 16,
     "must be true or false", "'yes'"),
    ("include_fees: true", "include_fees: 'false'", "rules.daily_realized_loss.include_fees", 17,
     "must be true or false", "'false'"),
    ("limit: 5, count", "limit: 5.5, count", "rules.max_contracts.limit", 16,
     "must be an integer", "5.5"),
    ("count_type: net", "count_type: net, limt: 3", "rules.max_contracts.limt", 16,
     "unknown key 'limt' (did you mean 'limit'?); allowed: enabled, mode, placement, limit, count_type, "
     "reduce_to_limit, close_all", None),
    ("  max_contracts:", "  max_contract:", "rules.max_contract", 16,
     "unknown rule 'max_contract' (did you mean 'max_contracts'?); installed: "
     "daily_realized_loss, max_contracts", None),
    ('time: "17:00"', 'time: "5pm"', "timers.daily_reset.time", 19, "HH:MM", "'5pm'"),
    ("time: \"17:00\"", "time: 1020", "timers.daily_reset.time", 19, "quoted", "1020"),
    ("America/Chicago", "America/Chicgo", "timers.daily_reset.timezone", 19,
     "unknown IANA time zone; did you mean America/Chicago", "'America/Chicgo'"),
    ("admin_port: 19555", "admin_port: 80", "daemon.admin_port", 21, "between 1024 and 65535",
     "80"),
    ("admin_port: 19555", "admin_port: '19555'", "daemon.admin_port", 21, "must be an integer",
     "'19555'"),
    ("admin_port: 19555", "admin_prot: 19555", "daemon.admin_prot", 21,
     "unknown key 'admin_prot' (did you mean 'admin_port'?); allowed: admin_port, state_dir, "
     "rule_timeout_ms, symbol_aliases", None),
    ("https://api.topstepx.com/api", "ftp://api.topstepx.com/api", "broker.api_url", 3,
     "must be a URL starting with https:// or http://", "'ftp://api.topstepx.com/api'"),
    ("https://api.topstepx.com/api", "http://api.topstepx.com/api", "broker.api_url", 3,
     "plain http would send the API key unencrypted", "'http://api.topstepx.com/api'"),
    ("https://api.topstepx.com/api", "https://api.topstepx.com", "broker.api_url", 3,
     "must include the REST base path, e.g. https://api.topstepx.com/api",
     "'https://api.topstepx.com'"),
    ("hubs/user", "hubs/user?access_token=abc", "broker.user_hub_url", 4,
     "must not contain a query string", "'https://rtc.topstepx.com/hubs/user?***'"),
    ("https://api.topstepx.com/api", "http://me:pw@api.topstepx.com/api", "broker.api_url", 3,
     "plain http", "'http://***@api.topstepx.com/api'"),
    ("  username: ${PROJECT_X_USERNAME}\n", "", "broker.username", 2, "required key missing", None),
    ("  - id: 536", "  - id: -536", "accounts[0].id", 9, "must be >= 1", "-536"),
    ("  - id: 536", "  - id: true", "accounts[0].id", 9, "must be an integer", "True"),
    ("  - name: EXPRESS-2", "  - name: PRAC-V2-1", "accounts[1].name", 14,
     "duplicate account name; also accounts[0]", "'PRAC-V2-1'"),
    ("  - name: EXPRESS-2", "  - description: x", "accounts[1]", 14,
     "needs an id (the gateway's account number) or a name", None),
    ("  - name: EXPRESS-2", "  - name: EXPRESS-2\n    enable: false", "accounts[1].enable", 15,
     "unknown key 'enable' (did you mean 'enabled'?); allowed: id, name, enabled, description, "
     "overrides", None),
    ("limit: -300}", "limit: 300}", "accounts[0].overrides.rules.daily_realized_loss.limit", 13,
     "account 536 'PRAC-V2-1': must be < 0", "300"),
    ("daily_realized_loss: {limit: -300}", "daily_realised_loss: {limit: -300}",
     "accounts[0].overrides.rules.daily_realised_loss", 13,
     "account 536 'PRAC-V2-1': unknown rule 'daily_realised_loss' (did you mean "
     "'daily_realized_loss'?)", None),
    ("    overrides:", "    overides:", "accounts[0].overides", 11, "unknown key 'overides'", None),
    ("daemon:", "deamon:", "deamon", 20, "unknown key 'deamon' (did you mean 'daemon'?); allowed: "
     "version, broker, accounts, rules, timers, daemon, ", None),  # + optional sections
]


@pytest.mark.parametrize("old, new, path, line, fragment, value", CASES,
                         ids=[c[2] + ":" + c[4][:20] for c in CASES])
def test_error_names_file_key_line_value_and_what_is_allowed(tmp_path, old, new, path, line,
                                                             fragment, value):
    assert old in BASE
    err = problems(tmp_path, BASE.replace(old, new, 1))
    matching = [p for p in err.problems if p.path == path]
    assert matching, str(err)
    p = matching[0]
    assert p.file == str(tmp_path / "riskd.yaml")
    assert p.line == line, str(p)
    assert fragment in p.message, str(p)
    assert p.value == value, str(p)
    assert f"{p.file}:{p.line}: {path}: " in str(err)


def test_error_message_format(tmp_path):
    err = problems(tmp_path, BASE.replace("limit: -500", "limit: 5").replace("nett", "net")
                   .replace("max_contracts:", "max_contract:"))
    text = str(err)
    file = tmp_path / "riskd.yaml"
    assert text.splitlines()[0] == f"invalid configuration {file} (2 problems):"
    assert f"  {file}:17: rules.daily_realized_loss.limit: must be < 0 (got 5)" in text
    assert (f"  {file}:16: rules.max_contract: unknown rule 'max_contract' (did you mean "
            "'max_contracts'?); installed: daily_realized_loss, max_contracts") in text


def test_all_problems_are_reported_at_once(tmp_path):
    text = (BASE.replace("limit: 5,", "limit: 0,").replace("limit: -500", "limit: 1")
            .replace("America/Chicago", "Mars/Base").replace("19555", "70000"))
    err = problems(tmp_path, text)
    assert {p.path for p in err.problems} == {
        "rules.max_contracts.limit", "rules.daily_realized_loss.limit",
        "timers.daily_reset.timezone", "daemon.admin_port"}
    assert all(p.line and p.value for p in err.problems)


def test_invalid_global_rule_is_not_reported_again_for_each_account(tmp_path):
    err = problems(tmp_path, BASE.replace("limit: -500", "limit: 5"))
    assert [p.path for p in err.problems] == ["rules.daily_realized_loss.limit"]


def test_nested_param_errors_name_the_nested_key(tmp_path):
    text = BASE.replace("\nrules:\n", "\nrules:\n  per_symbol:\n    limits: {MNQ: 2, ES: two}\n"
                                    "    tiers: [{loss: -100, seconds: 300}, {loss: -200}]\n", 1)
    err = problems(tmp_path, text, registry=REGISTRY3)
    by_path = {p.path: p for p in err.problems}
    assert by_path["rules.per_symbol.limits.ES"].message == "must be an integer"
    assert by_path["rules.per_symbol.limits.ES"].value == "'two'"
    assert by_path["rules.per_symbol.limits.ES"].line == 17
    assert by_path["rules.per_symbol.tiers[1].seconds"].message == "required key missing"


# ---------------------------------------------------------------------------------------------
# version, files
def test_missing_version(tmp_path):
    err = problems(tmp_path, BASE.replace("version: 2\n", ""))
    assert [(p.path, p.message) for p in err.problems] == [("version", "required key missing")]


@pytest.mark.parametrize("version", ["3", "'2.5'", "banana"])
def test_unknown_version_names_it_and_the_supported_ones(tmp_path, version):
    p = only(problems(tmp_path, BASE.replace("version: 2", f"version: {version}")))
    assert p.path == "version" and p.line == 1
    assert "unsupported version" in p.message
    assert "reads version 2 and migrates 1.0" in p.message
    assert p.value is not None


def test_version_1_0_in_a_file_points_to_the_directory_layout(tmp_path):
    p = only(problems(tmp_path, "version: '1.0'\nrules: {}\n"))
    assert "directory layout (accounts.yaml, risk_config.yaml, timers_config.yaml)" in p.message


def test_missing_file(tmp_path):
    err = load_config_error(tmp_path / "nope.yaml", REGISTRY, env=ENV)
    assert only(err).message == "file not found"


def test_empty_file(tmp_path):
    assert "is empty" in only(problems(tmp_path, "")).message


def test_top_level_not_a_mapping(tmp_path):
    assert "must be a mapping" in only(problems(tmp_path, "- a\n- b\n")).message


def test_yaml_syntax_error_names_the_line(tmp_path):
    p = only(problems(tmp_path, BASE.replace("\n  daily_realized_loss: {limit", "\n  daily: [: {")))
    assert p.file == str(tmp_path / "riskd.yaml")
    assert p.line == 17
    assert p.message.startswith("YAML syntax error")


def test_duplicate_key_is_an_error(tmp_path):
    p = only(problems(tmp_path, BASE.replace("daemon:\n", "daemon:\n  admin_port: 19556\n")))
    assert p.message == "duplicate key 'admin_port'"
    assert p.line == 22


def test_directory_without_config_files(tmp_path):
    err = load_config_error(tmp_path, REGISTRY, env=ENV)
    assert "not a 1.0 config" in only(err).message


# ---------------------------------------------------------------------------------------------
# environment and secrets
def test_environment_variables_expand_anywhere(tmp_path):
    cfg = load(tmp_path, BASE.replace("state_dir: var", "state_dir: ${STATE}/db"),
               env={**ENV, "STATE": str(tmp_path / "s")})
    assert cfg.daemon.state_dir == tmp_path / "s" / "db"


def test_double_dollar_is_a_literal(tmp_path):
    cfg = load(tmp_path, BASE.replace("name: EXPRESS-2", "name: 'a$${B}c'"))
    assert cfg.accounts[1].name == "a${B}c"


def test_missing_variable_names_it_and_the_key(tmp_path):
    p = only(problems(tmp_path, BASE, env={"PROJECT_X_API_KEY": "k"}))
    assert (p.path, p.line) == ("broker.username", 6)
    assert p.message == "environment variable PROJECT_X_USERNAME is not set"


def test_bad_variable_reference(tmp_path):
    p = only(problems(tmp_path, BASE.replace("${PROJECT_X_USERNAME}", "${PROJECT-X}")))
    assert "bad environment reference ${PROJECT-X}" in p.message


def test_missing_api_key(tmp_path):
    p = only(problems(tmp_path, BASE.replace("  api_key: ${PROJECT_X_API_KEY}\n", "")))
    assert p.path == "broker.api_key" and "api_key_file" in p.message


def _key_file(tmp_path: Path, mode: int) -> Path:
    secret = tmp_path / "secrets" / "api_key"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    secret.chmod(mode)
    return secret


def test_api_key_file_relative_to_the_config(tmp_path):
    _key_file(tmp_path, 0o600)
    cfg = load(tmp_path, BASE.replace("api_key: ${PROJECT_X_API_KEY}",
                                      "api_key_file: secrets/api_key"))
    assert cfg.broker.api_key == SECRET
    assert cfg.broker.api_key_file == (tmp_path / "secrets/api_key").resolve()
    assert SECRET not in repr(cfg)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_api_key_file_readable_by_others_is_an_error(tmp_path, mode):
    secret = _key_file(tmp_path, mode)
    p = only(problems(tmp_path, BASE.replace("api_key: ${PROJECT_X_API_KEY}",
                                             "api_key_file: secrets/api_key")))
    assert p.path == "broker.api_key_file" and p.line == 7
    assert f"mode {mode:04o}" in p.message and f"chmod 600 {secret.resolve()}" in p.message
    assert SECRET not in str(p)


def test_api_key_file_missing(tmp_path):
    p = only(problems(tmp_path, BASE.replace("api_key: ${PROJECT_X_API_KEY}",
                                             "api_key_file: nothing/here")))
    assert "does not exist" in p.message and p.value == "'nothing/here'"


def test_api_key_and_api_key_file_together(tmp_path):
    _key_file(tmp_path, 0o600)
    p = only(problems(tmp_path, BASE.replace("api_key: ${PROJECT_X_API_KEY}",
                                             "api_key: x\n  api_key_file: secrets/api_key")))
    assert "either api_key or api_key_file" in p.message


def test_literal_api_key_in_a_readable_file_warns(tmp_path):
    path = write(tmp_path, BASE.replace("${PROJECT_X_API_KEY}", SECRET))
    path.chmod(0o644)
    cfg = load_config(path, REGISTRY, env=ENV)
    assert any("readable by others" in w for w in cfg.warnings)
    assert not any(SECRET in w for w in cfg.warnings)
    path.chmod(0o600)
    assert load_config(path, REGISTRY, env=ENV).warnings == ()


def test_loopback_simulator_may_use_plain_http(tmp_path):
    text = (BASE.replace("https://api.topstepx.com", "http://127.0.0.1:8931")  # keeps /api
            .replace("https://rtc.topstepx.com", "http://localhost:8931"))
    assert load(tmp_path, text).broker.user_hub_url == "http://localhost:8931/hubs/user"


# ---------------------------------------------------------------------------------------------
# accounts and overrides
def test_rules_for_applies_the_accounts_overrides(tmp_path):
    cfg = load(tmp_path, BASE)
    assert cfg.rules_for(536)[1].params == DailyLossParams(-300, True)
    assert cfg.rule("daily_realized_loss").params == DailyLossParams(-500, True)
    assert cfg.rules_for(999, "EXPRESS-2")[1].params == DailyLossParams(-500, True)


def test_account_matched_by_name_only_when_it_has_no_id(tmp_path):
    cfg = load(tmp_path, BASE)
    assert cfg.account(536).name == "PRAC-V2-1"
    assert cfg.account(777, "PRAC-V2-1") is None  # has an id: the id decides
    assert cfg.account(777, "EXPRESS-2").name == "EXPRESS-2"


def test_rules_for_an_unconfigured_account_raises(tmp_path):
    cfg = load(tmp_path, BASE)
    with pytest.raises(KeyError, match="account 999 is not in the config"):
        cfg.rules_for(999)


def test_override_can_disable_a_rule_for_one_account(tmp_path):
    cfg = load(tmp_path, BASE.replace("{limit: -300}", "{enabled: false}"))
    assert [r.name for r in cfg.rules_for(536)] == ["max_contracts"]
    assert [r.name for r in cfg.rules_for(None, "EXPRESS-2")] == ["max_contracts",
                                                                  "daily_realized_loss"]


def test_override_can_shadow_a_rule_for_one_account(tmp_path):
    cfg = load(tmp_path, BASE.replace("{limit: -300}", "{mode: shadow}"))
    assert cfg.rules_for(536)[1] .mode == "shadow"
    assert cfg.rules_for(536)[1].params.limit == -500


def test_override_can_add_a_rule_for_one_account(tmp_path):
    global_mc = "  max_contracts: {enabled: true, mode: enforce, limit: 5, count_type: net}\n"
    text = BASE.replace(global_mc, "").replace(
        "daily_realized_loss: {limit: -300}",
        "daily_realized_loss: {limit: -300}\n        max_contracts: {limit: 2}")
    cfg = load(tmp_path, text)
    assert [(r.name, r.params.limit) for r in cfg.rules_for(536)] == [
        ("daily_realized_loss", -300), ("max_contracts", 2)]
    assert [r.name for r in cfg.rules_for(None, "EXPRESS-2")] == ["daily_realized_loss"]


def test_override_merges_nested_mappings_key_by_key(tmp_path):
    text = BASE.replace("\nrules:\n", "\nrules:\n  per_symbol: {limits: {MNQ: 2, ES: 1}}\n", 1) \
        .replace("daily_realized_loss: {limit: -300}", "per_symbol: {limits: {ES: 3}}")
    cfg = load(tmp_path, text, registry=REGISTRY3)
    per_symbol = {r.name: r for r in cfg.rules_for(536)}["per_symbol"]
    assert per_symbol.params.limits == {"MNQ": 2, "ES": 3}
    assert cfg.rule("per_symbol").params.limits == {"MNQ": 2, "ES": 1}


def test_override_replaces_lists_whole(tmp_path):
    text = BASE.replace("\nrules:\n", "\nrules:\n  per_symbol: {tiers: [{loss: -1, seconds: 1}, "
                                    "{loss: -2, seconds: 2}]}\n", 1) \
        .replace("daily_realized_loss: {limit: -300}",
                 "per_symbol: {tiers: [{loss: -5, seconds: 5}]}")
    cfg = load(tmp_path, text, registry=REGISTRY3)
    assert {r.name: r for r in cfg.rules_for(536)}["per_symbol"].params.tiers == [Tier(-5, 5)]


def test_override_error_names_the_account_and_line(tmp_path):
    err = problems(tmp_path, BASE.replace("{limit: -300}", "{limit: -300, include_fees: maybe}"))
    p = only(err)
    assert p.path == "accounts[0].overrides.rules.daily_realized_loss.include_fees"
    assert p.message == "account 536 'PRAC-V2-1': must be true or false"
    assert (p.line, p.value) == (13, "'maybe'")


def test_override_must_be_a_mapping(tmp_path):
    p = only(problems(tmp_path, BASE.replace("{limit: -300}", "-300")))
    assert p.path == "accounts[0].overrides.rules.daily_realized_loss"
    assert "must be a mapping" in p.message and p.value == "-300"


def test_accounts_must_not_be_empty(tmp_path):
    text = BASE.split("accounts:")[0] + "accounts: []\nrules:" + BASE.split("rules:", 1)[1].split(
        "\nrules:", 1)[1]
    p = only(problems(tmp_path, text))
    assert p.path == "accounts" and "at least one account" in p.message


# ---------------------------------------------------------------------------------------------
# daemon paths
def test_state_dir_that_is_a_file_is_an_error(tmp_path):
    (tmp_path / "var").write_text("x")
    p = only(problems(tmp_path, BASE))
    assert p.path == "daemon.state_dir" and "is not a directory" in p.message


def test_state_dir_absolute(tmp_path):
    cfg = load(tmp_path, BASE.replace("state_dir: var", f"state_dir: {tmp_path / 'abs'}"))
    assert cfg.daemon.state_dir == tmp_path / "abs"


def test_bad_symbol_alias(tmp_path):
    p = only(problems(tmp_path, BASE + "  symbol_aliases: {EP: 'E S'}\n"))
    assert p.path == "daemon.symbol_aliases.EP" and "symbol root" in p.message


# ---------------------------------------------------------------------------------------------
# reload
def test_reload_with_a_valid_file_returns_the_new_config(tmp_path):
    path = write(tmp_path, BASE)
    old = load_config(path, REGISTRY, env=ENV)
    path.write_text(BASE.replace("limit: -500", "limit: -400"))
    new, errors = reload(old, path, REGISTRY, env=ENV)
    assert errors == ()
    assert new.rule("daily_realized_loss").params.limit == -400
    assert new.warnings == ()


def test_reload_with_an_invalid_file_keeps_the_old_config(tmp_path):
    path = write(tmp_path, BASE)
    old = load_config(path, REGISTRY, env=ENV)
    path.write_text(BASE.replace("limit: -500", "limit: 500").replace("mode: enforce", "mode: x"))
    new, errors = reload(old, None, REGISTRY, env=ENV)
    assert new is old
    assert {p.path for p in errors} == {"rules.daily_realized_loss.limit",
                                        "rules.max_contracts.mode"}


def test_reload_with_a_broken_or_missing_file_keeps_the_old_config(tmp_path):
    path = write(tmp_path, BASE)
    old = load_config(path, REGISTRY, env=ENV)
    path.write_text("version: 2\nbroker: [\n")
    assert reload(old, path, REGISTRY, env=ENV)[0] is old
    path.unlink()
    new, errors = reload(old, path, REGISTRY, env=ENV)
    assert new is old and errors[0].message == "file not found"


def test_reload_warns_about_changes_that_need_a_restart(tmp_path):
    path = write(tmp_path, BASE)
    old = load_config(path, REGISTRY, env=ENV)
    path.write_text(BASE.replace("19555", "19556"))
    new, errors = reload(old, path, REGISTRY, env={**ENV, "PROJECT_X_API_KEY": "other"})
    assert errors == ()
    assert any("admin_port changed (19555 -> 19556)" in w for w in new.warnings)
    assert any("broker settings changed" in w for w in new.warnings)
    assert not any("other" in w for w in new.warnings)


# ---------------------------------------------------------------------------------------------
# write-back keeps comments
def test_document_written_back_keeps_comments_and_validates(tmp_path):
    src = REPO / "etc/riskd.yaml"
    path = tmp_path / "riskd.yaml"
    path.write_text(src.read_text())
    doc = read_document(path)
    doc["rules"]["max_contracts"]["limit"] = 3
    write_document(doc, path)
    text = path.read_text()
    assert "limit: 3                 # most contracts allowed open" in text
    assert "# --- The broker: one ProjectX Gateway login" in text
    assert text.replace("limit: 3 ", "limit: 5 ") == src.read_text()
    cfg = load_config(path, installed_rules(), env=ENV)
    assert cfg.rule("max_contracts").params.limit == 3


def test_new_file_is_written_private(tmp_path):
    write_document({"version": 2}, tmp_path / "new.yaml")
    assert (tmp_path / "new.yaml").stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------------------------------------
# the converter plugin Params go through
def test_converter_does_not_coerce_types():
    conv = make_converter()
    assert conv.structure({"limit": 3, "close_all": True}, MaxContractsParams).limit == 3
    for bad in ({"limit": "3"}, {"limit": 3.0}, {"limit": True}, {"close_all": "false"},
                {"close_all": 1}, {"count_type": 1}, {"extra": 1}):
        with pytest.raises(Exception):
            conv.structure(bad, MaxContractsParams)


@attrs.frozen
class Session:
    start: time
    zone: ZoneInfo


def test_converter_reads_times_and_zones():
    s = make_converter().structure({"start": "08:30", "zone": "America/Chicago"}, Session)
    assert s == Session(time(8, 30), ZoneInfo("America/Chicago"))


def test_params_hold_plain_python_types(tmp_path):
    cfg = load(tmp_path, BASE)
    params = cfg.rule("max_contracts").params
    assert type(params.limit) is int and type(params.count_type) is str
    assert type(cfg.rules_for(536)[1].params.limit) is float
    assert type(cfg.accounts[0].overrides) is dict
    assert os.fspath(cfg.source) == str(tmp_path / "riskd.yaml")


def test_config_survives_pickling_between_actor_processes(tmp_path):
    cfg = load(tmp_path, BASE)
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def test_hand_written_validator_message_is_reported_at_its_attribute(tmp_path):
    text = BASE.replace("\nrules:\n", "\nrules:\n  loss: {limit: 500}\n", 1)
    p = only(problems(tmp_path, text, registry={**REGISTRY, "loss": FakeLoss}))
    assert (p.path, p.message, p.value, p.line) == ("rules.loss.limit", "must be < 0 (a loss)",
                                                    "500", 16)
