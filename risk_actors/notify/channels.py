"""Built-in human channels: ``apprise`` (any apprise URL) and the always-on log.

apprise covers Discord, Telegram, Slack, email (``mailto://``), Pushover, ntfy, generic JSON
(``json://``) and dozens more; its URLs carry the service tokens, so they are secrets: never
shown in a repr, an error or a log line (only their scheme is).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import attrs
from loguru import logger

from risk_actors.messages import Notify
from risk_actors.notify.base import Channel, ChannelError, render

_LOG_LEVELS = {"critical": "CRITICAL", "error": "ERROR", "warning": "WARNING", "info": "INFO"}


def log_alert(alert: Notify) -> None:
    """The log channel: always on, every alert that passed de-duplication, at its severity."""
    who = f"account {alert.account_id}" if alert.account_id is not None else "riskd"
    rule = f" [{alert.rule}]" if alert.rule else ""
    logger.log(_LOG_LEVELS.get(alert.severity, "INFO"), "ALERT {} {}{}: {}", alert.kind, who,
               rule, alert.message)


def scheme_of(url: Any) -> str:
    """What an error may show of a secret URL: its scheme only (``tgram://***``)."""
    if isinstance(url, str) and "://" in url:
        return url.split("://", 1)[0] + "://***"
    return "***"


def host_of(url: Any) -> str:
    """What a log line or error may show of a webhook-style URL: scheme and host only (tokens
    often sit in the path: Slack, Discord, healthchecks)."""
    from urllib.parse import urlsplit
    if not isinstance(url, str):
        return "***"
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.hostname}/***" if parts.hostname else scheme_of(url)


def _check_urls(_inst: Any, _attr: Any, urls: tuple[str, ...]) -> None:
    import apprise
    if not urls:
        raise ValueError("urls must list at least one apprise URL")
    for i, url in enumerate(urls):
        if apprise.Apprise.instantiate(url.strip(), suppress_exceptions=True) is None:
            raise ValueError(f"urls item {i} ({scheme_of(url)}) is not a URL apprise "
                             "understands (see https://github.com/caronc/apprise/wiki)")


@attrs.frozen
class AppriseParams:
    """``urls``: one or more apprise URLs (secrets: use ``${ENV}`` references)."""

    urls: tuple[str, ...] = attrs.field(repr=False, validator=_check_urls)


_NOTIFY_TYPES = {"info": "info", "warning": "warning", "error": "failure", "critical": "failure"}


class AppriseChannel(Channel):
    """Delivers alerts to every apprise URL of the channel.

    A retry resends only to the URLs that failed the previous attempt for the same alert, so
    one dead service does not make the others receive duplicates.
    """

    name = "apprise"
    description = "any apprise URL: Discord, Telegram, Slack, email, Pushover, ntfy, json:// ..."
    Params = AppriseParams

    def __init__(self, instance: str, params: AppriseParams) -> None:
        import apprise
        super().__init__(instance, params)
        # apprise logs through the stdlib; keep it out of the actor's log transport and the
        # root handlers (it might quote a URL), and hand its messages over scrubbed instead.
        logging.getLogger("apprise").propagate = False
        self._targets = []
        for url in params.urls:
            target = apprise.Apprise()
            target.add(url.strip())
            self._targets.append(target)
        self._secrets = sorted({piece for url in params.urls
                                for piece in re.split(r"[/:@?&=#]+", url) if len(piece) >= 6},
                               key=len, reverse=True)
        self._pending: tuple[Notify | None, list[int]] = (None, [])

    def scrub(self, text: str) -> str:
        """``text`` with every longer piece of a configured URL replaced by ``***``."""
        for piece in self._secrets:
            text = text.replace(piece, "***")
        return text

    def send(self, alert: Notify) -> None:
        import apprise
        last, remaining = self._pending
        todo = remaining if last is alert else list(range(len(self._targets)))
        title, body = render(alert)
        failed: list[int] = []
        details: list[str] = []
        for i in todo:
            with apprise.LogCapture(level=logging.WARNING) as captured:
                ok = self._targets[i].notify(body=body, title=title,
                                             notify_type=_NOTIFY_TYPES.get(alert.severity, "info"))
                text = captured.getvalue()
            if not ok:
                failed.append(i)
                lines = [ln.split(" - ", 2)[-1] for ln in text.strip().splitlines()]
                details.append(f"{scheme_of(self.params.urls[i])}: "
                               + self.scrub("; ".join(lines[-2:]) or "failed"))
        self._pending = (alert, failed)
        if failed:
            raise ChannelError(f"{len(failed)} of {len(self._targets)} URL(s) failed: "
                               + " | ".join(details))
