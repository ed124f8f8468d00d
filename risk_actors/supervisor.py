"""Supervisor (globalName ``riskd``): config, the account registry, admin requests, restarts.

Kept deliberately small: it has no parent to restart it, so the daemon process (or systemd)
watches it. It starts the Notifier and one AccountActor per enabled account, restarts an account
that dies (its state comes back from SQLite), caches each account's status for ``riskd status``,
and applies a config reload only when the new config is valid.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
from loguru import logger
from thespian.actors import ActorExitRequest, ActorTypeDispatcher, ChildActorExited, WakeupMessage

from risk_actors import messages as m
from risk_actors.account import AccountInit, RuleSpec, RulesChanged
from risk_actors.orphan import CHECK_SECONDS, ParentWatch
from risk_actors.plugins import discover, rule_path

GLOBAL_NAME = "riskd"


@attrs.frozen
class Boot:
    """Daemon -> Supervisor: load this config and start watching its accounts."""

    config_path: str
    sim_url: str | None = None


def sim_broker(settings, sim_url: str):
    """BrokerSettings pointed at a local simulator (``--sim URL``)."""
    base = sim_url.rstrip("/")
    return attrs.evolve(settings, api_url=f"{base}/api", user_hub_url=f"{base}/hubs/user",
                        market_hub_url=f"{base}/hubs/market")


class Supervisor(ActorTypeDispatcher):
    """Root of riskd's actor tree."""

    def __init__(self) -> None:
        super().__init__()
        self.boot: Boot | None = None
        self.config = None
        self.registry: dict = {}
        self.notifier = None
        # thespian addresses are unhashable: key by their string form, keep the address beside.
        self.accounts: dict[str, tuple[Any, AccountInit]] = {}
        self.status: dict[int, m.AccountStatus] = {}
        self.started_at: datetime | None = None

    # ---- boot --------------------------------------------------------------------------------
    def receiveMsg_Boot(self, msg: Boot, sender) -> None:
        if self.boot is not None:
            self.send(sender, m.AdminReply(True, "already running"))
            return
        from risk_actors.config import ConfigError, load_config
        self.registry, _problems = discover()
        try:
            config = load_config(msg.config_path, self.registry)
        except ConfigError as exc:
            self.send(sender, m.AdminReply(False, str(exc)))
            return
        except Exception as exc:
            self.send(sender, m.AdminReply(False, f"cannot load {msg.config_path}: {exc}"))
            return
        unnamed = [a.label for a in config.accounts if a.enabled and a.id is None]
        if unnamed:
            # Fail closed: an account the admin configured must never go silently unwatched.
            self.send(sender, m.AdminReply(False, "these accounts have no gateway id, which "
                                                  "riskd needs to watch them: "
                                                  + ", ".join(unnamed)))
            return
        self.boot, self.config = msg, config
        self.started_at = datetime.now(timezone.utc)
        self.watch = ParentWatch("supervisor")
        self.wakeupAfter(CHECK_SECONDS, payload=("orphan-check",))
        from risk_actors.db import Database
        Database(self.db_path(), migrate=True).close()  # create / migrate before anyone writes
        self.notifier = self.createActor("risk_actors.notifier.NotifierActor")
        for acc in config.accounts:
            if acc.enabled and acc.id is not None:
                self._start_account(self._account_init(acc))
        names = ", ".join(a.label for a in config.accounts if a.enabled)
        logger.info("riskd booted: config {} accounts {}", config.source, names or "none")
        self.send(sender, m.AdminReply(True, f"watching {names or 'no account'}",
                                       data={"warnings": list(config.warnings)}))

    def db_path(self) -> str:
        state_dir = Path(self.config.daemon.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        return str(state_dir / "riskd.sqlite")

    def _account_init(self, acc) -> AccountInit:
        broker = self.config.broker.settings()
        if self.boot.sim_url:
            broker = sim_broker(broker, self.boot.sim_url)
        specs = tuple(RuleSpec(r.name, rule_path(self.registry[r.name]), r.mode, r.params)
                      for r in self.config.rules_for(acc.id, acc.name))
        reset = self.config.timers.daily_reset
        return AccountInit(acc.id, acc.name or str(acc.id), broker, specs, self.db_path(),
                           reset.time, reset.timezone, self.config.daemon.rule_timeout_ms,
                           self.notifier)

    def _start_account(self, init: AccountInit) -> None:
        address = self.createActor("risk_actors.account.AccountActor")
        self.accounts[str(address)] = (address, init)
        self.send(address, init)

    # ---- supervision -------------------------------------------------------------------------
    def receiveMsg_ChildActorExited(self, msg: ChildActorExited, sender) -> None:
        _, init = self.accounts.pop(str(msg.childAddress), (None, None))
        if init is not None and self.boot is not None:
            logger.error("account {} actor exited; restarting from its saved state",
                         init.account_id)
            self._start_account(init)
        elif msg.childAddress == self.notifier:
            self.notifier = self.createActor("risk_actors.notifier.NotifierActor")

    # ---- status and admin --------------------------------------------------------------------
    def receiveMsg_AccountStatus(self, msg: m.AccountStatus, sender) -> None:
        self.status[msg.account_id] = msg

    def receiveMsg_StatusRequest(self, msg: m.StatusRequest, sender) -> None:
        if self.boot is None:
            self.send(sender, m.StatusReply(False, detail="riskd is starting (not booted yet)"))
            return
        rows = tuple(s for a, s in sorted(self.status.items())
                     if msg.account_id is None or a == msg.account_id)
        self.send(sender, m.StatusReply(True, rows, self.started_at,
                                        f"config {self.config.source}"))

    def receiveMsg_AdminRequest(self, msg: m.AdminRequest, sender) -> None:
        if msg.command == "reload":
            self.send(sender, self._reload())
        elif msg.command == "ping":
            self.send(sender, m.AdminReply(True, "pong"))
        else:
            self.send(sender, m.AdminReply(False, f"unknown admin command {msg.command!r}; "
                                                  "known: reload, ping"))

    def _reload(self) -> m.AdminReply:
        from risk_actors.config import ConfigError, load_config
        if self.boot is None:
            return m.AdminReply(False, "not booted")
        try:
            new = load_config(self.boot.config_path, self.registry)
        except ConfigError as exc:
            logger.error("config reload refused, keeping the running config:\n{}", exc)
            return m.AdminReply(False, f"reload refused, running config kept:\n{exc}")
        except Exception as exc:
            return m.AdminReply(False, f"reload refused, running config kept: {exc}")
        self.config = new
        changed = 0
        for key, (address, init) in list(self.accounts.items()):
            if new.account(init.account_id) is None:
                continue  # removing an account takes a restart: say so rather than drop enforcement
            fresh = self._account_init(new.account(init.account_id))
            if fresh.rules != init.rules:
                self.accounts[key] = (address, attrs.evolve(init, rules=fresh.rules))
                self.send(address, RulesChanged(fresh.rules))
                changed += 1
        logger.info("config reloaded from {}: {} account(s) changed rules", new.source, changed)
        return m.AdminReply(True, f"config reloaded; {changed} account(s) changed rules")

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender) -> None:
        if msg.payload == ("orphan-check",):
            self.watch.check()  # the admin process died: our accounts must not run on unseen
            self.wakeupAfter(CHECK_SECONDS, payload=("orphan-check",))

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender) -> None:
        logger.info("riskd supervisor stopping")
