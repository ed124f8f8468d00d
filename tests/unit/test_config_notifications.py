"""Config: the ``notifications`` and ``watchdog`` sections (strict keys, file/line/key errors,
secrets never shown)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from risk_actors.config import ConfigError, load_config
from risk_actors.plugins import discover

REPO = Path(__file__).resolve().parents[2]
ENV = {"PROJECT_X_USERNAME": "trader1", "PROJECT_X_API_KEY": "sk-LIVE-0123456789abcdef",
       "HOOK_SECRET": "s3cr3t-0123456789abcdef", "NTFY": "ntfy://tok3n-abcdef@ntfy.example/t"}
BASE = """\
version: 2
broker:
  api_url: http://127.0.0.1:8931/api
  user_hub_url: http://127.0.0.1:8931/hubs/user
  market_hub_url: http://127.0.0.1:8931/hubs/market
  username: ${PROJECT_X_USERNAME}
  api_key: ${PROJECT_X_API_KEY}
accounts:
  - id: 1001
"""


@pytest.fixture(scope="module")
def registry():
    return discover()[0]


def _load(tmp_path, extra: str, registry):
    path = tmp_path / "riskd.yaml"
    path.write_text(BASE + textwrap.dedent(extra))
    return load_config(path, registry, env=ENV)


def _problems(tmp_path, extra, registry) -> str:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, extra, registry)
    return str(err.value)


def test_default_config_has_default_notifications_and_watchdog(registry):
    config = load_config(REPO / "etc" / "riskd.yaml", registry, env=ENV)
    assert config.notifications.warning_fractions == (0.75, 0.9)
    assert config.notifications.disconnect_alert_seconds == 30
    assert config.notifications.channels == ()
    assert config.watchdog.systemd is True and config.watchdog.heartbeat_url is None


def test_full_section_parses_channels_and_webhooks(tmp_path, registry):
    config = _load(tmp_path, """\
        notifications:
          warning_fractions: [0.9, 0.5]
          disconnect_alert_seconds: 45
          dedup_seconds: 0
          channels:
            - name: phone
              type: apprise
              urls: ["${NTFY}", "json://127.0.0.1:9999/hook"]
              min_severity: warning
              kinds: [lock_start, enforcement]
              max_per_minute: 0
          webhooks:
            - url: https://hooks.example/riskd
              events: [on_enforcement]
              secret: ${HOOK_SECRET}
              retries: 5
              timeout_seconds: 2
        watchdog:
          systemd: false
          heartbeat_url: https://hc.example/ping/abc-123
          heartbeat_seconds: 30
        """, registry)
    n = config.notifications
    assert n.warning_fractions == (0.5, 0.9)
    assert n.disconnect_alert_seconds == 45.0 and n.dedup_seconds == 0.0
    phone, hook = n.channels
    assert (phone.name, phone.type, phone.min_severity, phone.kinds, phone.max_per_minute) == \
        ("phone", "apprise", "warning", ("lock_start", "enforcement"), 0)
    assert phone.params.urls[0] == ENV["NTFY"]
    assert (hook.name, hook.type, hook.retries) == ("webhook-1", "webhook", 5)
    assert hook.params.events == ("on_enforcement",) and hook.params.timeout_seconds == 2
    assert hook.params.secret == ENV["HOOK_SECRET"]
    assert config.watchdog.heartbeat_url == "https://hc.example/ping/abc-123"
    # secrets never appear in a repr
    text = repr(config)
    assert ENV["HOOK_SECRET"] not in text and "tok3n" not in text and "abc-123" not in text


def test_unknown_key_in_channel_names_file_line_and_key(tmp_path, registry):
    text = _problems(tmp_path, """\
        notifications:
          channels:
            - name: phone
              type: apprise
              urls: ["json://127.0.0.1:9/x"]
              min_severty: warning
        """, registry)
    assert "riskd.yaml:15: notifications.channels[0].min_severty: unknown key" in text
    assert "did you mean 'min_severity'" in text


def test_unknown_top_level_key_in_notifications_is_an_error(tmp_path, registry):
    text = _problems(tmp_path, "notifications:\n  dedup_secs: 5\n", registry)
    assert "notifications.dedup_secs: unknown key" in text


def test_unknown_channel_type_lists_installed_types(tmp_path, registry):
    text = _problems(tmp_path, """\
        notifications:
          channels:
            - {name: x, type: pigeon}
        """, registry)
    assert "notifications.channels[0].type: unknown channel type" in text
    assert "apprise" in text and "webhook" in text


def test_bad_apprise_url_shows_scheme_only(tmp_path, registry):
    text = _problems(tmp_path, """\
        notifications:
          channels:
            - {name: x, type: apprise, urls: ["bogus://sup3rsecret-token/abc"]}
        """, registry)
    assert "notifications.channels[0].urls" in text and "bogus://***" in text
    assert "sup3rsecret" not in text


@pytest.mark.parametrize("entry, expected", [
    ("{url: 'http://hooks.example/x?token=abcdefsecret', secret: s3cr3t-0123456789abcdef}",
     "notifications.webhooks[0].url: must use https"),
    ("{url: 'https://hooks.example/x', secret: short-s3cret}",
     "notifications.webhooks[0].secret: must be at least 16 characters"),
    ("{url: 'https://hooks.example/x', secret: s3cr3t-0123456789abcdef, events: [on_all]}",
     "notifications.webhooks[0].events: must be one or more of on_enforcement"),
])
def test_webhook_errors_name_the_key_and_never_show_secrets(tmp_path, registry, entry, expected):
    text = _problems(tmp_path, f"notifications:\n  webhooks:\n    - {entry}\n", registry)
    assert expected in text
    assert "s3cr3t" not in text and "abcdefsecret" not in text


def test_webhook_needs_url_and_secret(tmp_path, registry):
    text = _problems(tmp_path, "notifications:\n  webhooks:\n    - {events: [on_warning]}\n",
                     registry)
    assert "webhooks[0].url: required key missing" in text
    assert "webhooks[0].secret: required key missing" in text


@pytest.mark.parametrize("extra, expected", [
    ("notifications:\n  warning_fractions: [0.75, 1.5]\n", "each fraction must be > 0 and < 1"),
    ("notifications:\n  warning_fractions: 0.9\n", "must be a list of numbers"),
    ("notifications:\n  disconnect_alert_seconds: 0\n", "must be > 0"),
    ("notifications:\n  channels:\n    - {type: apprise, urls: ['json://127.0.0.1/x'], "
     "min_severity: loud}\n", "must be one of info, warning, error, critical"),
    ("notifications:\n  channels:\n    - {type: apprise, urls: ['json://127.0.0.1/x'], "
     "kinds: [nope]}\n", "must be a non-empty list of alert kinds"),
    ("notifications:\n  channels:\n    - {name: a, type: apprise, urls: ['json://127.0.0.1/x']}\n"
     "    - {name: a, type: apprise, urls: ['json://127.0.0.1/y']}\n", "used 2 times"),
    ("watchdog:\n  heartbeat_url: ftp://x\n", "watchdog.heartbeat_url: must be an http(s)"),
    ("watchdog:\n  systemd: yes please\n", "watchdog.systemd: must be true or false"),
    ("watchdog:\n  beat: 1\n", "watchdog.beat: unknown key"),
])
def test_bad_values_are_reported_with_their_key(tmp_path, registry, extra, expected):
    assert expected in _problems(tmp_path, extra, registry)
