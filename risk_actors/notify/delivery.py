"""Delivery workers: one thread and one bounded queue per channel, retries with backoff.

The notifier actor only enqueues (:meth:`ChannelWorker.submit` never blocks), so a slow or dead
channel delays nothing else: not the actor, not the other channels. A full queue drops the
oldest waiting alert (the newest state of things matters most) and says so in the log.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterator

from loguru import logger

from risk_actors.messages import Notify
from risk_actors.notify.base import Channel, ChannelError


def backoff_delays(retries: int, base: float = 0.5, factor: float = 2.0,
                   cap: float = 30.0) -> Iterator[float]:
    """The waits before each of ``retries`` retries: base, base*factor, ... capped at ``cap``."""
    delay = base
    for _ in range(max(0, retries)):
        yield min(delay, cap)
        delay *= factor


def deliver(channel: Channel, alert: Notify, retries: int, *, base: float = 0.5,
            cap: float = 30.0, wait: Callable[[float], bool] = lambda s: (time.sleep(s), False)[1]
            ) -> tuple[bool, int, str]:
    """Send with retries: ``(delivered, attempts, last error)``. ``wait(seconds)`` returns True
    to abandon the remaining retries (shutdown)."""
    attempts, error = 0, ""
    delays = backoff_delays(retries, base, cap=cap)
    while True:
        attempts += 1
        try:
            channel.send(alert)
            return True, attempts, ""
        except ChannelError as exc:
            error = str(exc)
            if exc.permanent:
                return False, attempts, error
        except Exception as exc:  # noqa: BLE001  (a plugin's bug must not kill the worker)
            # The type only: a third-party exception text may quote a URL with its token.
            error = f"{type(exc).__name__} raised by the channel"
        delay = next(delays, None)
        if delay is None or wait(delay):
            return False, attempts, error


class ChannelWorker:
    """Delivers one channel's alerts from its own daemon thread."""

    def __init__(self, channel: Channel, *, retries: int = 3, queue_size: int = 100,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0) -> None:
        self.channel = channel
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.queue: queue.Queue[Notify | None] = queue.Queue(maxsize=queue_size)
        self.abort = threading.Event()  # set: give up pending retries (final shutdown)
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"riskd-notify-{channel.instance}")
        self._thread.start()

    @property
    def name(self) -> str:
        return self.channel.instance

    def submit(self, alert: Notify) -> bool:
        """Enqueue without blocking; when full, the oldest waiting alert is dropped."""
        while True:
            try:
                self.queue.put_nowait(alert)
                return True
            except queue.Full:
                try:
                    old = self.queue.get_nowait()
                    self.queue.task_done()
                except queue.Empty:
                    continue
                if old is not None:
                    self.dropped += 1
                    logger.error("notification channel {}: queue full, dropped alert {} ({})",
                                 self.name, old.kind, old.message[:200])

    def _run(self) -> None:
        while True:
            alert = self.queue.get()
            try:
                if alert is None:
                    return
                ok, attempts, error = deliver(self.channel, alert, self.retries,
                                              base=self.backoff_base, cap=self.backoff_cap,
                                              wait=self.abort.wait)
                if ok:
                    self.delivered += 1
                else:
                    self.failed += 1
                    logger.error("notification channel {}: alert {} NOT delivered after {} "
                                 "attempt(s): {}", self.name, alert.kind, attempts, error)
            except Exception:  # noqa: BLE001  (logging must not end the thread either)
                self.failed += 1
            finally:
                self.queue.task_done()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the queue to be delivered; True when it was."""
        deadline = time.monotonic() + timeout
        with self.queue.all_tasks_done:
            while self.queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.queue.all_tasks_done.wait(left)
        return True

    def stop(self, timeout: float = 0.0) -> bool:
        """Flush for up to ``timeout`` s, then end the thread (abandoning what is left)."""
        done = self.flush(timeout) if timeout > 0 else self.queue.unfinished_tasks == 0
        self.abort.set()
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass  # the thread is a daemon: it ends with the process
        self._thread.join(0.5)
        try:
            self.channel.close()
        except Exception:  # noqa: BLE001
            pass
        return done

    def retire(self) -> None:
        """End after the alerts already queued (a reload replaced this channel); never blocks."""
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            # Too far behind to wait for: give up the retries; the idle daemon thread ends
            # with the process.
            self.abort.set()
