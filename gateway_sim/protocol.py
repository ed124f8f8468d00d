"""SignalR JSON hub protocol, version 1: framing, handshake and the messages the simulator uses.

Every message is a JSON object followed by the record separator 0x1E; one websocket text frame
may carry several. The client opens with ``{"protocol": "json", "version": 1}`` + 0x1E and the
server answers ``{}`` + 0x1E (or ``{"error": "..."}`` + 0x1E and closes).
Reference: https://github.com/dotnet/aspnetcore/blob/main/src/SignalR/docs/specs/HubProtocol.md
"""

from __future__ import annotations

import enum
import json
from typing import Any

RECORD_SEPARATOR = "\x1e"


class MessageType(enum.IntEnum):
    """Hub protocol message types (the ``type`` field)."""

    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7


class ProtocolError(ValueError):
    """A frame or handshake the simulator cannot accept; the socket should be closed."""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(message: dict[str, Any]) -> str:
    """One message as wire text, separator included."""
    return _dumps(message) + RECORD_SEPARATOR


def encode_many(messages: list[dict[str, Any]]) -> str:
    return "".join(encode(m) for m in messages)


def decode(text: str | bytes) -> list[dict[str, Any]]:
    """Split a frame into messages. Raises ProtocolError on anything that is not a JSON object."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("frame is not UTF-8") from exc
    messages = []
    for part in text.split(RECORD_SEPARATOR):
        if not part.strip():
            continue
        try:
            obj = json.loads(part)
        except ValueError as exc:
            raise ProtocolError(f"not JSON: {part[:80]!r}") from exc
        if not isinstance(obj, dict):
            raise ProtocolError(f"not a JSON object: {part[:80]!r}")
        messages.append(obj)
    return messages


def parse_handshake(text: str | bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return (handshake request, messages that followed it in the same frame).

    Raises ProtocolError with a message fit for the handshake response's ``error`` field.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if RECORD_SEPARATOR not in text:
        raise ProtocolError("Handshake request is missing the record separator.")
    head, _, rest = text.partition(RECORD_SEPARATOR)
    try:
        request = json.loads(head)
    except ValueError as exc:
        raise ProtocolError("Handshake request is not valid JSON.") from exc
    if not isinstance(request, dict):
        raise ProtocolError("Handshake request is not a JSON object.")
    protocol = request.get("protocol")
    version = request.get("version")
    if protocol != "json":
        raise ProtocolError(f"The protocol '{protocol}' is not supported.")
    if version != 1:
        raise ProtocolError(f"The server does not support version {version} of the 'json' protocol.")
    return request, decode(rest) if rest else []


def handshake_response(error: str | None = None) -> str:
    return encode({"error": error} if error else {})


def invocation(target: str, arguments: list[Any], invocation_id: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": MessageType.INVOCATION, "target": target, "arguments": arguments}
    if invocation_id is not None:
        message["invocationId"] = invocation_id
    return message


def completion(invocation_id: str, result: Any = None, error: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": MessageType.COMPLETION, "invocationId": invocation_id}
    if error is not None:
        message["error"] = error
    elif result is not None:
        message["result"] = result
    return message


def ping() -> dict[str, Any]:
    return {"type": MessageType.PING}


def close(error: str | None = None, allow_reconnect: bool | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": MessageType.CLOSE}
    if error is not None:
        message["error"] = error
    if allow_reconnect is not None:
        message["allowReconnect"] = allow_reconnect
    return message


def message_type(message: dict[str, Any]) -> int | None:
    """The ``type`` field, or None when absent or not an integer."""
    value = message.get("type")
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value
