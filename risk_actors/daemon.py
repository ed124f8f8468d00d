"""Daemon lifecycle: start the actor system, find it again, stop it, clean up after a kill -9.

thespian's ``ActorSystem(...)`` quietly *starts* a system when none is listening on the admin
port, so nothing here calls it before probing the port: a CLI must never launch a daemon by
accident. The daemon records its pid and process group in ``<state_dir>/riskd.pid``; after a
kill -9 of the daemon, its actor processes (same process group) may still hold the admin port,
and ``start`` kills them before starting afresh.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loguru import logger

# thespian's defaults make bursts of sends quadratic (DESIGN.md section 9).
THESPIAN_ENV = {
    "THESPIAN_MAX_QUEUED_TRANSMITS": "16",
    "THESPIAN_QUEUED_TRANSMIT_UNBLOCK_THRESHOLD": "8",
    "THESPIAN_BASE_IPADDR": "127.0.0.1",
}
SYSTEM_BASE = "multiprocTCPBase"


class DaemonError(Exception):
    """A lifecycle problem to show the user as one clear line."""


def resolve_config(path: str | None) -> Path:
    """The config file to use: ``--config`` (a file, or a directory holding riskd.yaml or a 1.0
    layout), else ``$RISKD_CONFIG``, else ``./etc/riskd.yaml``."""
    raw = path or os.environ.get("RISKD_CONFIG") or "etc/riskd.yaml"
    p = Path(raw).expanduser().resolve()
    if p.is_dir() and (p / "riskd.yaml").is_file():
        return p / "riskd.yaml"
    if not p.exists():
        raise DaemonError(f"config not found: {p} (give --config FILE|DIR or set RISKD_CONFIG)")
    return p


def load(path: Path):
    """Load and validate the config in this process, so errors reach the user's terminal."""
    from risk_actors.config import load_config
    from risk_actors.plugins import discover
    registry, _ = discover()
    return load_config(str(path), registry)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    """Whether something accepts connections on ``host:port`` (without starting anything)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


def pidfile(state_dir: Path) -> Path:
    return Path(state_dir) / "riskd.pid"


def read_pidfile(state_dir: Path) -> dict | None:
    try:
        return json.loads(pidfile(state_dir).read_text())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port_holders(port: int) -> list[int]:
    import psutil
    pids = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            pids.add(conn.pid)
    return sorted(pids)


def _groups(info: dict | None) -> list[int]:
    if not info:
        return []
    return [g for g in [info.get("pgid"), *info.get("actor_pgids", [])] if g]


def kill_all(info: dict) -> None:
    """SIGKILL every process of a daemon: its own group (when it owns one) and its actors'."""
    for group in _groups(info):
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.kill(info["pid"], signal.SIGKILL)
    except (ProcessLookupError, PermissionError, KeyError):
        pass


def clean_stale(state_dir: Path, port: int) -> list[str]:
    """Kill what a dead daemon left behind (its process group, then port holders of ours)."""
    done: list[str] = []
    info = read_pidfile(state_dir)
    if info and alive(info.get("pid", -1)):
        return done  # a live daemon is not stale
    for group in _groups(info):
        try:
            os.killpg(group, signal.SIGKILL)
            done.append(f"killed stale process group {group}")
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 3
    while port_open(port) and time.monotonic() < deadline:
        for pid in _port_holders(port):
            if pid == os.getpid():
                continue
            try:
                import psutil
                cmd = " ".join(psutil.Process(pid).cmdline())
            except Exception:
                cmd = ""
            if "riskd" in cmd or "risk_actors" in cmd or "thespian" in cmd:
                os.kill(pid, signal.SIGKILL)
                done.append(f"killed orphan actor process {pid} holding port {port}")
        time.sleep(0.2)
    if info:
        pidfile(state_dir).unlink(missing_ok=True)
    return done


def _prepare_thespian() -> None:
    """Environment settings + the loopback bind shim, before any ``ActorSystem(...)``."""
    os.environ.update(THESPIAN_ENV)
    from risk_actors import netshim
    netshim.install()


def connect(port: int):
    """Join the running actor system, refusing to start one (probe first)."""
    if not port_open(port):
        raise DaemonError(f"riskd is not running (nothing listens on admin port {port})")
    _prepare_thespian()
    from thespian.actors import ActorSystem
    asys = ActorSystem(SYSTEM_BASE, {"Admin Port": port})
    if _started_by_us(port):
        # The daemon went away between the probe and the join, and thespian started an admin
        # of our own instead of joining: undo it rather than leave a stray system behind.
        asys.shutdown()
        raise DaemonError(f"riskd is not running (it stopped while connecting; admin port {port})")
    return asys


def _started_by_us(port: int) -> bool:
    """Whether the admin now on ``port`` was forked from this process (same command line)."""
    import psutil
    ours = psutil.Process().cmdline()
    for pid in _port_holders(port):
        try:
            if pid != os.getpid() and psutil.Process(pid).cmdline() == ours:
                return True
        except psutil.Error:
            continue
    return False


def supervisor(asys):
    from risk_actors.supervisor import GLOBAL_NAME, Supervisor
    return asys.createActor(Supervisor, globalName=GLOBAL_NAME)


def ask(port: int, msg: Any, timeout: float = 10.0) -> Any:
    asys = connect(port)
    reply = asys.ask(supervisor(asys), msg, timeout)
    if reply is None:
        raise DaemonError(f"riskd did not answer within {timeout:.0f} s (admin port {port})")
    return reply


WATCH_INTERVAL = 1.0      # s between the daemon's checks of the Supervisor
WATCH_ASK_TIMEOUT = 5.0   # s the Supervisor has to answer a check
WATCH_MISSES_ALERT = 3    # unanswered checks in a row before a critical log line


class SupervisorWatch:
    """The daemon process watching the Supervisor, which has no parent actor (issue 6).

    Every WATCH_INTERVAL it asks the Supervisor for its status. A SIGKILLed Supervisor is
    replaced by thespian with a fresh, unbooted one at the next lookup of the global name (its
    children, orphaned, would exit on their own within ``orphan.CHECK_SECONDS``); the watch
    notices the "not booted" answer, SIGKILLs the orphans of the old tree at once (so two trees
    never watch one account: a second enforcement would double a partial close), and boots the
    new Supervisor with the same config: accounts restore from SQLite and reconcile over REST.
    A Supervisor that stops answering is logged as critical after WATCH_MISSES_ALERT checks;
    the systemd watchdog (notify.watchdog) restarts a hung daemon.
    """

    def __init__(self, asys, boot, port: int, groups: list[int]) -> None:
        self.asys, self.boot, self.port, self.groups = asys, boot, port, set(groups)
        self.misses = 0
        self.restarts = 0

    def check(self) -> None:
        from risk_actors import messages as m
        try:
            reply = self.asys.ask(supervisor(self.asys), m.StatusRequest(), WATCH_ASK_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the watch must never end the daemon
            logger.error("supervisor check failed: {}", exc)
            reply = None
        if reply is None:
            self.misses += 1
            if self.misses == WATCH_MISSES_ALERT:
                logger.critical("the riskd Supervisor has not answered {} checks in a row",
                                self.misses)
            return
        self.misses = 0
        if getattr(reply, "ok", False) or "not booted" not in str(getattr(reply, "detail", "")):
            return
        self.restarts += 1
        logger.critical("the riskd Supervisor died and was replaced by an unbooted one; "
                        "removing the old tree and booting it again (restart {})", self.restarts)
        for line in self.kill_orphans():
            logger.warning(line)
        try:
            reply = self.asys.ask(supervisor(self.asys), self.boot, 30)
        except Exception as exc:  # noqa: BLE001
            reply = None
            logger.error("supervisor re-boot failed: {}", exc)
        if reply is None or not getattr(reply, "ok", False):
            logger.critical("supervisor re-boot failed: {}; retrying at the next check",
                            getattr(reply, "message", "no answer"))
        else:
            logger.warning("supervisor booted again: {}", reply.message)

    def kill_orphans(self) -> list[str]:
        """SIGKILL actor processes (our admin's process groups) that are no longer descendants
        of the thespian admin: the remains of a tree whose Supervisor died."""
        import psutil
        ours = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(proc.pid) in self.groups and proc.status() != psutil.STATUS_ZOMBIE:
                    ours.append(proc)
            except (ProcessLookupError, psutil.Error, OSError):
                continue
        # Roots to keep: this process and every process of ours listening on the admin port
        # (the admin; thespian's logger inherits the socket): they and their descendants stay.
        roots = [psutil.Process()]
        for proc in ours:
            try:
                if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.port
                       for c in proc.net_connections(kind="tcp")):
                    roots.append(proc)
            except psutil.Error:
                continue
        keep = set()
        for root in roots:
            try:
                keep.add(root.pid)
                keep.update(c.pid for c in root.children(recursive=True))
            except psutil.Error:
                continue
        done = []
        for proc in ours:
            try:
                if proc.pid in keep:
                    continue
                proc.kill()
                done.append(f"killed orphaned actor process {proc.pid}")
            except (ProcessLookupError, psutil.Error, OSError):
                continue
        return done


def run_foreground(config_path: Path, sim_url: str | None, log_level: str = "INFO") -> int:
    """Run the daemon in this process until SIGTERM/SIGINT; returns the exit status."""
    from risk_actors import logs
    config = load(config_path)
    state_dir = Path(config.daemon.state_dir)
    port = config.daemon.admin_port
    state_dir.mkdir(parents=True, exist_ok=True)
    log_defs = logs.setup(state_dir / "logs", log_level)
    info = read_pidfile(state_dir)
    if info and alive(info.get("pid", -1)) and port_open(port):
        raise DaemonError(f"riskd is already running (pid {info['pid']}, admin port {port})")
    for line in clean_stale(state_dir, port):
        logger.warning(line)
    if port_open(port):
        raise DaemonError(f"admin port {port} is in use by another program")
    _prepare_thespian()
    from thespian.actors import ActorSystem
    from risk_actors.supervisor import Boot
    asys = ActorSystem(SYSTEM_BASE, {"Admin Port": port}, logDefs=log_defs)
    stopping = False

    def _stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        # Record the process group only when it is ours alone (started detached): killing a
        # terminal's job group after a crash could take the user's other programs with it.
        pgid = os.getpgid(0) if os.getpgid(0) == os.getpid() else None
        # thespian's admin detaches (setsid + double fork): every actor lives in the admin's
        # process group, not ours. Record it so a later start/stop can remove them all.
        groups = sorted({os.getpgid(pid) for pid in _port_holders(port)} - {os.getpgid(0)})
        pidfile(state_dir).write_text(json.dumps({"pid": os.getpid(), "pgid": pgid,
                                                  "actor_pgids": groups, "port": port,
                                                  "config": str(config_path)}))
        boot = Boot(str(config_path), sim_url)
        reply = asys.ask(supervisor(asys), boot, 30)
        if reply is None or not reply.ok:
            raise DaemonError(f"riskd failed to boot: {getattr(reply, 'message', 'no answer')}")
        logger.info("riskd running: {} (admin port {}, state {})", reply.message, port, state_dir)
        for warning in (reply.data or {}).get("warnings", []):
            logger.warning("config: {}", warning)
        from risk_actors import messages as m
        from risk_actors.notify.watchdog import Watchdog
        watchdog = Watchdog(config.watchdog)
        watchdog.ready(reply.message)
        sup_watch = SupervisorWatch(asys, boot, port, groups)
        next_watch = time.monotonic() + WATCH_INTERVAL
        while not stopping:
            if watchdog.due():
                # Ping only after the Supervisor answered: a hung daemon must go silent.
                try:
                    status = asys.ask(supervisor(asys), m.StatusRequest(), 5)
                except Exception as exc:  # noqa: BLE001 - a failed probe is a missed ping
                    logger.error("watchdog probe failed: {}", exc)
                    status = None
                watchdog.alive(bool(getattr(status, "ok", False)))
            time.sleep(0.2)
            if not stopping and time.monotonic() >= next_watch:
                sup_watch.check()  # a SIGKILLed Supervisor is booted again (issue 6)
                next_watch = time.monotonic() + WATCH_INTERVAL
        logger.info("riskd stopping")
        watchdog.stopping()
        return 0
    finally:
        info = read_pidfile(state_dir)
        try:
            asys.shutdown()
        finally:
            _reap_actors(info, port)
            pidfile(state_dir).unlink(missing_ok=True)


def _reap_actors(info: dict | None, port: int, grace: float = 3.0) -> None:
    """After shutdown: SIGKILL what is left of the actor system. Under heavy load thespian's
    shutdown can return while its admin still runs; a survivor would hold the admin port with
    no daemon to stop it (every actor was already asked to exit and save its state)."""
    deadline = time.monotonic() + grace
    while port_open(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not port_open(port):
        return
    for group in (info or {}).get("actor_pgids", []):
        try:
            os.killpg(group, signal.SIGKILL)
            logger.warning("stop: killed the actor processes left in group {}", group)
        except (ProcessLookupError, PermissionError):
            pass


def start_background(config_path: Path, sim_url: str | None, wait: float = 60.0) -> str:
    """Start ``riskd start --foreground`` detached (own session) and wait until it answers."""
    config = load(config_path)
    state_dir = Path(config.daemon.state_dir)
    port = config.daemon.admin_port
    info = read_pidfile(state_dir)
    if info and alive(info.get("pid", -1)) and port_open(port):
        raise DaemonError(f"riskd is already running (pid {info['pid']}, admin port {port})")
    state_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "risk_actors.cli.admin", "start", "--foreground",
           "--config", str(config_path)]
    if sim_url:
        cmd += ["--sim", sim_url]
    out = open(state_dir / "riskd.out", "ab")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            start_new_session=True)
    deadline = time.monotonic() + wait
    from risk_actors import messages as m
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (state_dir / "riskd.out").read_text(errors="replace")[-2000:]
            raise DaemonError(f"riskd exited during start-up (status {proc.returncode}):\n{tail}")
        info = read_pidfile(state_dir)
        if info and info.get("pid") == proc.pid and port_open(port):
            try:
                reply = ask(port, m.StatusRequest(), timeout=2)
                if getattr(reply, "ok", False):
                    return f"riskd started (pid {proc.pid}, admin port {port}); logs in {state_dir / 'logs'}"
            except DaemonError:
                pass
        time.sleep(0.3)
    raise DaemonError(f"riskd did not come up within {wait:.0f} s; see {state_dir / 'riskd.out'}")


def stop(config_path: Path, timeout: float = 15.0) -> str:
    """Stop the daemon: SIGTERM, wait, then kill its process group if it lingers."""
    config = load(config_path)
    state_dir = Path(config.daemon.state_dir)
    port = config.daemon.admin_port
    info = read_pidfile(state_dir)
    if not info or not alive(info.get("pid", -1)):
        cleaned = clean_stale(state_dir, port)
        if cleaned:
            return "riskd was not running; " + "; ".join(cleaned)
        raise DaemonError("riskd is not running")
    os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (alive(info["pid"]) or port_open(port)):
        time.sleep(0.2)
    if alive(info["pid"]) or port_open(port):
        kill_all(info)
        clean_stale(state_dir, port)
        return f"riskd (pid {info['pid']}) did not stop in {timeout:.0f} s: killed"
    return f"riskd (pid {info['pid']}) stopped"
