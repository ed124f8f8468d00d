"""The channel plugin interface (entry-point group ``riskd.notifiers``).

A channel is a class with a ``name`` (the plugin name used as ``type:`` in the config), a
``Params`` attrs class (validated strictly at config load: unknown keys and bad values are
errors naming the key), a constructor taking ``(instance_name, params)`` and ``send(alert)``,
which delivers one alert or raises. The delivery worker calls ``send`` from its own thread and
owns retries, so ``send`` should make exactly one attempt and may block up to its own timeout.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import attrs

from risk_actors.messages import Notify


class ChannelError(Exception):
    """A delivery attempt failed; ``permanent`` means retrying cannot help (e.g. HTTP 400)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@attrs.frozen
class NoParams:
    """Params of a channel that takes none."""


class Channel:
    """Base class of notification channels.

    Subclasses set ``name`` (the plugin name), ``description`` and ``Params``, and implement
    :meth:`send`. They must never put secrets (tokens in URLs, signing keys) into ``repr``,
    log lines or exception messages: those end up in the log and in ``riskd status``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams

    def __init__(self, instance: str, params: Any) -> None:
        self.instance = instance
        self.params = params

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> list[str]:
        """Problems of a raw params mapping, each naming its key (empty: valid). The config
        loader does the same with file and line; this is for plugin tests and tools."""
        from risk_actors.config.load import _cattrs_problems, _field_names, make_converter
        allowed = _field_names(cls.Params)
        problems = [f"{k}: unknown key; allowed: {', '.join(allowed)}"
                    for k in params if k not in allowed]
        known = {k: v for k, v in params.items() if k in allowed}
        try:
            make_converter().structure(known, cls.Params)
        except Exception as exc:  # noqa: BLE001  (plugin validators may raise anything)
            for sub, message, _value in _cattrs_problems(exc, known, fields=allowed):
                problems.append(f"{'.'.join(map(str, sub))}: {message}")
        return problems

    def wants(self, alert: Notify) -> bool:
        """Whether this channel carries ``alert`` at all (on top of the configured filters)."""
        return True

    def send(self, alert: Notify) -> None:  # pragma: no cover - abstract
        """Deliver one alert (one attempt); raise :class:`ChannelError` (or anything) on failure."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (HTTP clients); called once when the channel is replaced/stopped."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.instance!r}>"


def render(alert: Notify) -> tuple[str, str]:
    """(title, body) of an alert for human channels (chat, email, push)."""
    who = f"account {alert.account_id}" if alert.account_id is not None else "riskd"
    rule = f" [{alert.rule}]" if alert.rule else ""
    title = f"riskd {alert.severity.upper()}: {alert.kind.replace('_', ' ')} ({who})"
    body = f"{alert.message}\n\n{who}{rule} at {alert.at:%Y-%m-%d %H:%M:%S %Z}".rstrip()
    return title, body
