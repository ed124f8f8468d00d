"""Route the SDK's (and its transports') stdlib logging into loguru, without secrets.

Three problems this module solves (gateway-api.md section 2, DESIGN.md section 2):

* project-x-py attaches its own stdout JSON handler with ``propagate=False`` to most of its
  module loggers (``ProjectXLogger.get_logger``), so its lines bypass any configuration.
  :func:`install` strips those handlers and puts one routing handler on the top-level loggers.
* pysignalr logs the negotiate URL, token included, at INFO; websockets/httpx may log headers.
  Every record is passed through :func:`scrub` (``access_token=...``, ``Bearer ...``, JWT-shaped
  strings, ``apiKey`` values and any registered secret value become ``***``).
* Records produced on the SDK's thread must not go through thespian's logging transport from that
  thread (a log storm wedged an actor in a prototype). The routing handler hands a record to the
  *sink bound to the current thread* (the session puts it on its socketpair queue); records from
  other threads go to loguru directly. A ``logging.Filter`` would not be enough: thespian's handler
  skips filters, and the point is to keep the records away from it altogether.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Callable

import attrs
from loguru import logger

__all__ = ["LogRecord", "scrub", "ScrubFilter", "install", "bind_thread", "unbind_thread",
           "register_secret", "loguru_patcher", "emit_to_loguru", "SDK_LOGGERS"]

# Top-level loggers whose records riskd captures. asyncio is included because "Task exception was
# never retrieved" from the SDK loop would otherwise reach the root logger (thespian's).
SDK_LOGGERS = ("project_x_py", "pysignalr", "websockets", "httpx", "httpcore", "hpack", "h2",
               "aiohttp", "asyncio")
# Per-transport floor: httpx logs every request at INFO, websockets/hpack are chatty at DEBUG.
# pysignalr narrates every state change and handshake at INFO; the session reports link changes
# itself (ConnectionChanged + its own log lines).
_FLOORS = {"pysignalr": logging.WARNING, "httpx": logging.WARNING, "httpcore": logging.WARNING, "hpack": logging.WARNING,
           "h2": logging.WARNING, "websockets": logging.WARNING, "aiohttp": logging.WARNING}

_PATTERNS = [
    (re.compile(r"(access_token=)[^&\s'\"`]+", re.I), r"\1***"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I), r"\1***"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "***JWT***"),
    (re.compile(r"""(["']?(?:apiKey|api_key|password|token|newToken)["']?\s*[:=]\s*["']?)"""
                r"""[^"',}\s]+""", re.I), r"\1***"),
]
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Scrub this exact value from every future message (api keys, issued tokens)."""
    if value and len(value) >= 6:
        with _secrets_lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    """``text`` with tokens, bearer headers, API keys and registered secrets replaced."""
    if not text:
        return text
    for secret in tuple(_secrets):
        if secret in text:
            text = text.replace(secret, "***")
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class ScrubFilter(logging.Filter):
    """A stdlib filter that rewrites a record's message through :func:`scrub`.

    Useful on any handler riskd owns; note that thespian's own handler ignores filters.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def loguru_patcher(record: dict) -> None:
    """``logger.configure(patcher=loguru_patcher)``: scrub every loguru message as well."""
    record["message"] = scrub(record["message"])


@attrs.frozen
class LogRecord:
    """One log line produced on a session thread, carried to the actor thread to be emitted."""

    level: str
    name: str
    message: str
    created: float = attrs.field(factory=time.time)


def emit_to_loguru(rec: LogRecord) -> None:
    """Write a carried record to loguru (call on the actor thread)."""
    try:
        logger.log(rec.level, "[{}] {}", rec.name, rec.message)
    except (ValueError, TypeError):  # unknown level name
        logger.warning("[{}] {}", rec.name, rec.message)


_sinks: dict[int, Callable[[LogRecord], None]] = {}


def bind_thread(sink: Callable[[LogRecord], None]) -> None:
    """Route records produced on the calling thread to ``sink`` (a session's queue)."""
    _sinks[threading.get_ident()] = sink


def unbind_thread() -> None:
    _sinks.pop(threading.get_ident(), None)


_LEVELS = {logging.CRITICAL: "CRITICAL", logging.ERROR: "ERROR", logging.WARNING: "WARNING",
           logging.INFO: "INFO", logging.DEBUG: "DEBUG"}


_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> str:
    parts = []
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            try:
                text = repr(value)
            except Exception:
                text = "<unrepresentable>"
            parts.append(f"{key}={text[:300]}")
    return " ".join(parts)


class _RoutingHandler(logging.Handler):
    """Scrubs each record, then hands it to the thread's sink or to loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            extra = _extras(record)
            if extra:
                # The SDK puts the substance in ``extra`` ("WebSocket error" + {"error": ...}).
                message = f"{message} {extra}"
            if record.exc_info and record.exc_info[1] is not None:
                message = f"{message}: {record.exc_info[0].__name__}: {record.exc_info[1]}"
            rec = LogRecord(_LEVELS.get(record.levelno, "INFO"), record.name, scrub(message),
                            record.created)
            sink = _sinks.get(threading.get_ident())
            if sink is not None:
                sink(rec)
            else:
                emit_to_loguru(rec)
        except Exception:  # logging must never raise into the SDK
            pass


_handler = _RoutingHandler()
_install_lock = threading.Lock()


_level = logging.INFO


def install(level: int | None = None) -> None:
    """(Re)attach riskd's routing to the SDK's loggers. Idempotent; call again after the SDK
    has imported more modules (each import may attach a fresh stdout handler). ``level`` (default:
    the last one given, initially INFO) applies to the SDK's loggers; chatty transports keep a
    WARNING floor."""
    global _level
    if level is not None:
        _level = level
    level = _level
    with _install_lock:
        for name in list(logging.Logger.manager.loggerDict):
            if any(name == top or name.startswith(top + ".") for top in SDK_LOGGERS) \
                    and name not in SDK_LOGGERS:
                child = logging.getLogger(name)
                # Drop the SDK's stdout handlers and let records climb to the top-level logger.
                for h in list(child.handlers):
                    child.removeHandler(h)
                child.propagate = True
                child.setLevel(logging.NOTSET)
        for top in SDK_LOGGERS:
            lg = logging.getLogger(top)
            for h in list(lg.handlers):
                if h is not _handler:
                    lg.removeHandler(h)
            if _handler not in lg.handlers:
                lg.addHandler(_handler)
            # Never on to the root logger: in an actor process that is thespian's transport.
            lg.propagate = False
            lg.setLevel(max(level, _FLOORS.get(top, logging.NOTSET)))
