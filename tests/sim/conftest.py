"""Fixtures that run the gateway simulator as a real subprocess on a free loopback port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from gateway_sim.control_client import ControlClient

REPO = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"gateway-sim listening on (http://\S+)")


class SimProcess:
    """A `python -m gateway_sim serve --port 0` child; ``url`` is read from its stdout."""

    def __init__(self, *args: str, startup_timeout: float = 20.0):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway_sim", "serve", "--port", "0", *args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.stderr_lines: list[str] = []
        self._stderr_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_reader.start()
        self.url = self._await_url(startup_timeout)
        self.control = ControlClient(self.url)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def _await_url(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        found: list[str] = []

        def read() -> None:
            for line in self.proc.stdout:  # type: ignore[union-attr]
                m = LISTENING.search(line)
                if m:
                    found.append(m.group(1))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.stop()
            raise RuntimeError("simulator did not start:\n" + "".join(self.stderr_lines[-30:]))
        return found[0]

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="session")
def sim_process() -> Iterator[SimProcess]:
    """One simulator for the whole session; tests isolate themselves by account."""
    sim = SimProcess("--quote-interval-ms", "500")
    try:
        yield sim
    finally:
        code = sim.stop()
    # Anything the simulator logged as an error is a bug in it, whatever the tests saw.
    errors = [line for line in sim.stderr_lines if "Traceback" in line or " ERROR " in line]
    assert not errors, "simulator logged errors:\n" + "".join(sim.stderr_lines[-60:])
    assert code == 0, f"simulator exited with {code}"


@pytest.fixture
def sim_factory() -> Iterator[type[SimProcess]]:
    """Start extra simulators (``sim_factory("--state", path)``); all are stopped after the test."""
    started: list[SimProcess] = []

    def start(*args: str) -> SimProcess:
        sim = SimProcess(*args)
        started.append(sim)
        return sim

    yield start  # type: ignore[misc]
    for sim in started:
        sim.stop()


@pytest.fixture(scope="session")
def sim_url(sim_process: SimProcess) -> str:
    """Base URL (``http://127.0.0.1:PORT``) of the session's simulator."""
    return sim_process.url


@pytest.fixture
def control(sim_process: SimProcess) -> Iterator[ControlClient]:
    """Control client on a simulator whose clock reads real time; faults and config a test
    changes are undone after it (other tests, e.g. scenarios, move the clock)."""
    client = sim_process.control
    client.set_clock(datetime.now(timezone.utc).isoformat())
    yield client
    client.clear_faults()
    client.config(wrap_events=False, pnl_includes_fees=False, quote_interval_ms=500)
    client.request("POST", "/sim/config", {"rateLimit": False})
    client.tokens(expires_in=24 * 3600)


_names = iter(range(1, 1_000_000))


@pytest.fixture
def account(control: ControlClient) -> dict:
    """A fresh account (unique name) with MNQ reset to 21000."""
    acct = control.create_account(f"T{os.getpid()}-{next(_names)}-{time.monotonic_ns() % 100000}")
    control.set_price("MNQ", 21000)
    return acct
