"""Fault-suite harness: the e2e helpers (real simulator, real daemon processes) plus ways to find
and kill single actors of a running daemon, and the long-mode switch.

Long mode (``make fault-suite``): ``RISKD_FAULT_LONG=1`` raises the hypothesis example counts and
repetitions; tests marked ``slow`` run only there (``make test`` runs ``-m 'not slow'``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from tests.e2e.conftest import (Daemon, Simulator, free_port, riskd_factory, sim,  # noqa: F401
                                wait_for, write_config)

ROOT_DIR = Path(__file__).resolve().parents[2]
LONG = os.environ.get("RISKD_FAULT_LONG", "") not in ("", "0", "no")
MAX5 = {"max_contracts": {"enabled": True, "limit": 5, "count_type": "net",
                          "reduce_to_limit": True}}


def repeat(ci: int, long: int) -> int:
    """How many times to run a loop: ``ci`` in make test, ``long`` under make fault-suite."""
    return long if LONG else ci


def actor_processes(daemon: Daemon) -> list[psutil.Process]:
    """Every live process of the daemon's actor system (the thespian admin's process group)."""
    groups = set(daemon.pidinfo().get("actor_pgids", []))
    found = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(p.pid) in groups:
                found.append(p)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def _sqlite_handles(p: psutil.Process) -> int:
    try:
        return sum(1 for f in p.open_files() if f.path.endswith("riskd.sqlite"))
    except psutil.Error:
        return 0


def actors(daemon: Daemon) -> dict:
    """pids of the single-account daemon's actors: supervisor, account, gateway, enforcer, rules.

    Found by shape, since every actor shares the daemon's command line: the AccountActor is the
    process whose children include the GatewayActor (the only actor with extra threads: the
    SDK's event loop); its other children are the EnforcerActor (created first, before the rules)
    and the RuleActors; the AccountActor's parent is the Supervisor.
    """
    procs = actor_processes(daemon)
    for acct in procs:
        try:
            kids = acct.children()
            gw = [k for k in kids if k.num_threads() > 1]
            if len(gw) != 1 or len(kids) < 2:
                continue
            others = sorted((k for k in kids if k.pid != gw[0].pid), key=lambda k: k.create_time())
            return {"supervisor": acct.ppid(), "account": acct.pid, "gateway": gw[0].pid,
                    "enforcer": others[0].pid, "rules": [k.pid for k in others[1:]]}
        except psutil.Error:
            continue
    raise AssertionError(f"no account actor found among {[p.pid for p in procs]}")


def wait_actors(daemon: Daemon, timeout: float = 20, exclude: set | None = None) -> dict:
    """``actors()`` once the tree is complete (gateway threads up, enforcer + >= 1 rule) and none
    of ``exclude`` (old pids) is still among them."""
    exclude = exclude or set()

    def probe():
        try:
            a = actors(daemon)
        except AssertionError:
            return None
        pids = {a["account"], a["gateway"], a["enforcer"], *a["rules"]}
        return a if a["rules"] and not (pids & exclude) else None
    return wait_for(probe, timeout, f"daemon actor tree (excluding {exclude})", interval=0.1)


def kill_pid(pid: int) -> None:
    import signal
    os.kill(pid, signal.SIGKILL)


def audit_ok(state_dir: Path) -> None:
    """The append-only audit chain verifies (no row lost or rewritten)."""
    from risk_actors.db import Database
    with Database(str(state_dir / "riskd.sqlite"), migrate=False) as db:
        broken = db.verify_audit()
    assert broken is None, f"audit chain broken at {broken}"


def audit(state_dir: Path, kind: str | None = None) -> list:
    from risk_actors.db import Database
    with Database(str(state_dir / "riskd.sqlite"), migrate=False) as db:
        return db.audit_rows(kind=kind)


def setup_account(sim, riskd_factory, tmp_path, rules=None, placement="actor", **kw):
    """One simulator account watched by a fresh daemon. Rules and the enforcer run in their
    own actors by default: the fault suite kills them (``placement="inline"`` for the shipped
    default, where both run inside the account's process). With ``placement="actor"`` each
    account also keeps its own market hub (``market_data: per_account``): the tests find the
    actors by the shape of the process tree, where the shared feed would be a second threaded
    leaf beside the account's gateway."""
    extra = dict(kw.pop("extra", None) or {})
    extra["daemon"] = {"rule_placement": placement, "enforcer_placement": placement,
                       "broker_placement": placement,
                       **({"market_data": "per_account"} if placement == "actor" else {}),
                       **extra.get("daemon", {})}
    kw["extra"] = extra
    acc = sim.control.create_account("E2E", balance=50000.0)
    sim.control.set_price("MNQ", 21000)
    sim.control.set_price("ES", 6000)
    daemon = riskd_factory(write_config(tmp_path, sim.url, acc["id"], rules or MAX5, **kw))
    daemon.wait_connected(acc["id"])
    return acc["id"], daemon


def calls(sim, path: str, since: int = 0) -> list[dict]:
    return sim.requests(path, since)


def measure(fn, timeout: float, what: str) -> float:
    """Seconds until ``fn()`` holds (fails after ``timeout``)."""
    t0 = time.monotonic()
    wait_for(fn, timeout, what, interval=0.02)
    return time.monotonic() - t0


# ---- the results table (make fault-suite: RISKD_FAULT_REPORT=docs/reliability.md) -------------
_RESULTS: list[dict] = []
BEGIN, END = "<!-- fault-suite:begin -->", "<!-- fault-suite:end -->"


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if hasattr(report, "wasxfail"):
            outcome = "xfail (known bug)" if report.skipped else "XPASS (bug fixed? drop xfail)"
        else:
            outcome = {"passed": "yes", "failed": "NO", "skipped": "skipped"}[report.outcome]
        measured = " ".join(line.strip() for line in (report.capstdout or "").splitlines()
                            if line.strip() and not line.startswith(("1", "2")))
        _RESULTS.append({"test": report.nodeid.split("::", 1)[-1], "file":
                         report.nodeid.split("::")[0].rsplit("/", 1)[-1], "outcome": outcome,
                         "seconds": report.duration, "measured": measured[:200]})


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("RISKD_FAULT_REPORT")
    if not target or not _RESULTS:
        return
    path = Path(target)
    mode = "long mode" if LONG else "CI mode"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = [f"Last `make fault-suite` run ({mode}, {when}):",
            "", "| file | test | survived | seconds | measured |", "|---|---|---|---|---|"]
    rows += [f"| {r['file']} | `{r['test']}` | {r['outcome']} | {r['seconds']:.1f} | "
             f"{r['measured'].replace('|', '/')} |" for r in _RESULTS]
    text = path.read_text() if path.exists() else f"{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1] if END in rest else ""
    path.write_text(head + BEGIN + "\n" + "\n".join(rows) + "\n" + END + tail)
