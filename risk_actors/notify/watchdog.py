"""Being noticed when silent: systemd's watchdog (``sd_notify``) and an external heartbeat URL.

Both are fed only after the Supervisor answered a ``StatusRequest``: a daemon whose actor system
hangs stops pinging, so systemd restarts it (``WatchdogSec=``) and the heartbeat service (uptime
kuma, healthchecks.io) raises its own alarm.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable
from urllib.parse import urlsplit

from loguru import logger

DEFAULT_PROBE_SECONDS = 10.0


def probe_interval(env: dict | None = None) -> float:
    """How often to check the Supervisor: half systemd's ``WATCHDOG_USEC`` when set."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        usec = 0
    return max(1.0, usec / 2e6) if usec > 0 else DEFAULT_PROBE_SECONDS


def shown(url: str) -> str:
    """A heartbeat URL as a log line may show it (push URLs embed their token in the path)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/***"


class Watchdog:
    """Notifies systemd and pings the heartbeat URL while ``probe()`` says riskd is alive."""

    def __init__(self, config: Any, *, notifier: Any = None, clock: Callable[[], float] =
                 time.monotonic, env: dict | None = None,
                 http_get: Callable[[str], Any] | None = None) -> None:
        env = os.environ if env is None else env
        self.clock = clock
        self.interval = probe_interval(env)
        self.heartbeat_url = getattr(config, "heartbeat_url", None)
        self.heartbeat_seconds = float(getattr(config, "heartbeat_seconds", 60.0))
        self.sd = notifier
        if self.sd is None and getattr(config, "systemd", True) and env.get("NOTIFY_SOCKET"):
            import sdnotify
            self.sd = sdnotify.SystemdNotifier()
        self.http_get = http_get or _http_get
        self.last_probe = float("-inf")
        self.last_beat = float("-inf")
        self.pings = 0
        self.beats = 0
        self._beat_thread: threading.Thread | None = None

    def _notify(self, state: str) -> None:
        if self.sd is not None:
            try:
                self.sd.notify(state)
            except Exception as exc:  # noqa: BLE001  (no systemd socket must not stop riskd)
                logger.warning("sd_notify {} failed: {}", state.split("=")[0], exc)

    def ready(self, status: str = "") -> None:
        """Booted: ``READY=1`` (systemd ``Type=notify`` starts counting the watchdog now)."""
        self._notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def stopping(self) -> None:
        self._notify("STOPPING=1")

    def due(self) -> bool:
        """Whether a probe is due (call :meth:`alive` with its result)."""
        return self.clock() - self.last_probe >= self.interval

    def alive(self, ok: bool) -> None:
        """The result of a probe: ping systemd and (every ``heartbeat_seconds``) the URL."""
        now = self.clock()
        self.last_probe = now
        if not ok:
            logger.error("watchdog: the supervisor did not answer; not pinging")
            return
        self._notify("WATCHDOG=1")
        self.pings += 1
        if self.heartbeat_url and now - self.last_beat >= self.heartbeat_seconds:
            if self._beat_thread is not None and self._beat_thread.is_alive():
                return  # the previous ping still hangs: never pile them up
            self.last_beat = now
            self._beat_thread = threading.Thread(target=self._beat, daemon=True,
                                                 name="riskd-heartbeat")
            self._beat_thread.start()

    def _beat(self) -> None:
        try:
            self.http_get(self.heartbeat_url)
            self.beats += 1
        except Exception as exc:  # noqa: BLE001
            logger.warning("heartbeat {} failed: {}", shown(self.heartbeat_url),
                           type(exc).__name__)


def _http_get(url: str) -> None:
    import httpx
    response = httpx.get(url, timeout=10.0, follow_redirects=True)
    response.raise_for_status()
