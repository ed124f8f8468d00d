"""Logging: loguru everywhere, thespian's stdlib logging routed into it, secrets scrubbed."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from loguru import logger

_SECRETS = [
    (re.compile(r"(access_token=)[^&\s\"']+", re.I), r"\1***"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._\-]+", re.I), r"\1***"),
    (re.compile(r"((?:api_?key|apiKey|password|token)[\"']?\s*[:=]\s*[\"']?)[^\"',\s}]+", re.I),
     r"\1***"),
    (re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "***jwt***"),
]


def scrub(text: str) -> str:
    """Remove tokens, API keys and passwords from a log message."""
    for pattern, repl in _SECRETS:
        text = pattern.sub(repl, text)
    return text


def _patch(record) -> None:
    record["message"] = scrub(record["message"])


class LoguruHandler(logging.Handler):
    """A stdlib handler that forwards records (thespian's, libraries') into loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(exception=record.exc_info).log(level, "[{}] {}", record.name,
                                                    scrub(record.getMessage()))


def setup(log_dir: str | Path | None, level: str = "INFO", stderr: bool = True) -> dict:
    """Configure loguru for this process; return thespian's ``logDefs`` routing into it."""
    logger.remove()
    logger.configure(patcher=_patch)
    if stderr:
        logger.add(sys.stderr, level=level, enqueue=False,
                   format="{time:HH:mm:ss.SSS} {level: <8} {process} {message}")
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        logger.add(Path(log_dir) / "riskd.log", level="DEBUG", rotation="20 MB", retention=10,
                   format="{time:YYYY-MM-DDTHH:mm:ss.SSSZZ} {level: <8} {process} {name}: {message}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"loguru": {"class": "risk_actors.logs.LoguruHandler", "level": "INFO"}},
        "root": {"handlers": ["loguru"], "level": "INFO"},
    }
