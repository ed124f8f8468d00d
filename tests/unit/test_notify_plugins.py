"""Channel plugins: discovery through ``riskd.notifiers`` and parameter validation."""

from __future__ import annotations

from risk_actors.notify.channels import AppriseChannel
from risk_actors.notify.plugins import check_channel, discover_channels
from risk_actors.notify.webhook import WebhookChannel


def test_builtins_are_found_by_name():
    found, errors = discover_channels()
    assert found["apprise"] is AppriseChannel and found["webhook"] is WebhookChannel
    assert errors == []


def test_a_class_that_is_not_a_channel_is_refused():
    import pytest
    from risk_actors.notify.plugins import ChannelPluginError
    with pytest.raises(ChannelPluginError):
        check_channel(object, "test")


def test_validate_names_the_bad_key():
    assert WebhookChannel.validate({"url": "https://h.example/x",
                                    "secret": "0123456789abcdef"}) == []
    problems = WebhookChannel.validate({"url": "ftp://h", "secret": "0123456789abcdef",
                                        "colour": "red"})
    assert problems[0].startswith("colour: unknown key")
    assert problems[1].startswith("url: must be an http(s)")
    assert AppriseChannel.validate({"urls": ["nope://x"]})[0].startswith("urls: item 0")
    assert AppriseChannel.validate({})[0] == "urls: required key missing"
