"""Supervisor (globalName ``riskd``): config, the account registry, admin requests, restarts.

Kept deliberately small: it has no parent to restart it, so the daemon process (or systemd)
watches it. It starts the Notifier and one AccountActor per enabled account, restarts an account
that dies (its state comes back from SQLite), caches each account's status for ``riskd status``,
and applies a config reload only when the new config is valid.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import attrs
from loguru import logger
from thespian.actors import ActorExitRequest, ActorTypeDispatcher, ChildActorExited, WakeupMessage

from risk_actors import messages as m
from risk_actors.account import AccountInit, RuleSpec, RulesChanged
from risk_actors.orphan import CHECK_SECONDS, ParentWatch
from risk_actors.plugins import discover, rule_path

GLOBAL_NAME = "riskd"
MUTATING_COMMANDS = ("reload", "rules_set", "accounts_add", "accounts_remove", "passwd")


def config_summary(config) -> dict:
    """Effective rules per account as plain data (``riskd config diff``)."""
    out = {}
    for acc in config.accounts:
        out[acc.label] = {"enabled": acc.enabled, "rules": {
            r.name: {"enabled": r.enabled, "mode": r.mode,
                     **(attrs.asdict(r.params) if attrs.has(type(r.params)) else {})}
            for r in acc.rules}}
    return out


def placement_of(cls: type, setting: str) -> str:
    """Where a rule class runs: ``inline`` or ``actor`` (``daemon.rule_placement``; ``auto``
    runs the rules shipped with riskd inline and third-party plugins in their own actor)."""
    if setting != "auto":
        return setting
    return "inline" if cls.__module__.split(".")[0] == "rules" else "actor"


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
        self.components = None   # the ComponentHost (analytics and other components)
        self.feed = None         # the MarketFeedActor (daemon.market_data: shared)
        # account id -> (AccountActor address, contracts it wants): replayed to a new feed
        self.feed_interest: dict[int, tuple[Any, set[str]]] = {}
        self.feed_link: m.MarketFeedLink | None = None
        # thespian addresses are unhashable: key by their string form, keep the address beside.
        # By account id. thespian addresses are unhashable, and their str() differs between the
        # address createActor returns and the one ChildActorExited carries: match with ==.
        self.accounts: dict[int, tuple[Any, AccountInit]] = {}
        self.status: dict[int, m.AccountStatus] = {}
        self.started_at: datetime | None = None
        self.db = None
        from risk_actors.security import ProofVerifier
        self.verifier = ProofVerifier()

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
        # Create / migrate before anyone writes; a corrupt file is moved aside, salvaged and
        # recorded (risk_actors.db.open_checked), and shown in status + alerted for a day.
        from risk_actors.db import open_checked, recent_recovery
        db, recovery = open_checked(self.db_path(), self.started_at)
        self.db_notice = recovery or recent_recovery(db, self.started_at)
        db.close()
        self.notifier = self.createActor("risk_actors.notifier.NotifierActor")
        self._init_notifier()
        if self.db_notice is not None:
            logger.critical("{}", self.db_notice.notice())
            self.send(self.notifier, m.Notify("store", "critical", None, None,
                                              self.db_notice.notice(), self.started_at))
        self._start_components()
        self._start_feed()
        for acc in config.accounts:
            if acc.enabled and acc.id is not None:
                self._start_account(self._account_init(acc))
        names = ", ".join(a.label for a in config.accounts if a.enabled)
        logger.info("riskd booted: config {} accounts {}", config.source, names or "none")
        self._alert("daemon_start", "info", f"riskd started, watching {names or 'no account'}")
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
        placement = self.config.daemon.rule_placement
        specs = tuple(RuleSpec(r.name, rule_path(self.registry[r.name]), r.mode, r.params,
                               r.placement or placement_of(self.registry[r.name], placement))
                      for r in self.config.rules_for(acc.id, acc.name))
        reset, notes = self.config.timers.daily_reset, self.config.notifications
        return AccountInit(acc.id, acc.name or str(acc.id), broker, specs, self.db_path(),
                           reset.time, reset.timezone, self.config.daemon.rule_timeout_ms,
                           quote_interval_ms=self.config.daemon.quote_interval_ms,
                           enforcer_placement=self.config.daemon.enforcer_placement,
                           broker_placement=self._broker_placement(acc, specs),
                           market_feed=self.config.daemon.market_data == "shared",
                           symbol_aliases=tuple(sorted(self.config.daemon.symbol_aliases.items())),
                           warning_fractions=tuple(notes.warning_fractions),
                           disconnect_alert_seconds=float(notes.disconnect_alert_seconds))

    def _broker_placement(self, acc, specs) -> str:
        wanted = self.config.daemon.broker_placement
        if wanted != "inline":
            return "actor"
        actors = [s.name for s in specs if s.placement != "inline"]
        if actors or self.config.daemon.enforcer_placement != "inline":
            logger.warning("account {}: broker_placement inline needs every rule and the "
                           "enforcer inline (here: {}); its broker link runs in its own actor",
                           acc.label, ", ".join(actors) or "enforcer")
            return "actor"
        return "inline"

    def _start_account(self, init: AccountInit) -> None:
        init = attrs.evolve(init, notifier=self.notifier)
        address = self.createActor("risk_actors.account.AccountActor")
        self.accounts[init.account_id] = (address, init)
        self.send(address, init)

    # ---- supervision -------------------------------------------------------------------------
    def receiveMsg_ComponentFeedBatch(self, msg: m.ComponentFeedBatch, sender) -> None:
        # Accounts batch their feed so it never delays enforcement; passed on whole.
        if self.components is not None:
            self.send(self.components, msg)

    def receiveMsg_ChildActorExited(self, msg: ChildActorExited, sender) -> None:
        if getattr(self, "stopping", False):
            return  # the children leave because we do: restarting them would undo the stop
        key = next((aid for aid, (address, _) in self.accounts.items()
                    if address == msg.childAddress), None)
        _, init = self.accounts.pop(key, (None, None)) if key is not None else (None, None)
        if init is not None and self.boot is not None:
            logger.error("account {} actor exited; restarting from its saved state",
                         init.account_id)
            self._start_account(init)
        elif msg.childAddress == self.notifier:
            self.notifier = self.createActor("risk_actors.notifier.NotifierActor")
            self._init_notifier()
            for aid, (address, init) in list(self.accounts.items()):
                self.accounts[aid] = (address, attrs.evolve(init, notifier=self.notifier))
                self.send(address, m.NotifierChanged(self.notifier))
        elif self.components is not None and msg.childAddress == self.components:
            logger.error("component host exited; restarting it (items in flight are lost)")
            self._start_components()
        elif self.feed is not None and msg.childAddress == self.feed:
            logger.error("market feed exited; restarting it")
            self.feed = None
            self._start_feed()

    # ---- shared market data ------------------------------------------------------------------
    def _start_feed(self) -> None:
        """One market data connection for the daemon (``daemon.market_data: shared``), logged
        in as the first watched account; told again everything the accounts asked for."""
        if self.feed is not None or self.config.daemon.market_data != "shared":
            return
        acc = next((a for a in self.config.accounts if a.enabled and a.id is not None), None)
        if acc is None:
            return  # no account, no quotes needed; started when one is added
        from risk_actors.gateway import GatewayStart
        broker = self.config.broker.settings()
        if self.boot.sim_url:
            broker = sim_broker(broker, self.boot.sim_url)
        self.feed = self.createActor("risk_actors.market_feed.MarketFeedActor")
        self.send(self.feed, GatewayStart(acc.id, acc.name or str(acc.id), broker,
                                          datetime.now(timezone.utc),
                                          quote_interval_ms=self.config.daemon.quote_interval_ms,
                                          quotes="only"))
        for aid, (address, wanted) in self.feed_interest.items():
            self.send(self.feed, m.QuoteInterest(aid, tuple(sorted(wanted)), address))

    def receiveMsg_QuoteInterest(self, msg: m.QuoteInterest, sender) -> None:
        from risk_actors.market_feed import add_interest
        add_interest(self.feed_interest, msg.account_id, sender, msg.contract_ids)
        if self.feed is not None:
            self.send(self.feed, attrs.evolve(msg, subscriber=sender))

    def receiveMsg_MarketFeedLink(self, msg: m.MarketFeedLink, sender) -> None:
        was = self.feed_link
        self.feed_link = msg
        if not msg.up:
            self._alert("disconnected", "critical", f"market data down: {msg.detail}; "
                                                    "quote-driven rules see stale prices")
        elif was is not None and not was.up:
            self._alert("reconnected", "info", "market data back")

    # ---- components --------------------------------------------------------------------------
    def _component_init(self):
        from risk_actors.component_host import ComponentHostInit, ComponentSpec
        from risk_actors.components import ComponentContext, component_path, discover
        installed, _ = discover()
        specs = tuple(ComponentSpec(c.name, component_path(installed[c.name]), c.params,
                                    c.daily_report)
                      for c in self.config.components
                      if c.enabled and c.name in installed)
        reset = self.config.timers.daily_reset
        return ComponentHostInit(specs, ComponentContext(
            self.db_path(), str(self.config.daemon.state_dir), reset.time, reset.timezone,
            dict(self.config.daemon.aliases())))

    def _start_components(self) -> None:
        self.components = self.createActor("risk_actors.component_host.ComponentHostActor")
        self.send(self.components, self._component_init())

    def receiveMsg_ComponentHostReady(self, msg, sender) -> None:
        for name, why in msg.failed:
            logger.error("component {} is not running: {}", name, why)

    # ---- status and admin --------------------------------------------------------------------
    def receiveMsg_AccountStatus(self, msg: m.AccountStatus, sender) -> None:
        self.status[msg.account_id] = msg

    def receiveMsg_StatusRequest(self, msg: m.StatusRequest, sender) -> None:
        if self.boot is None:
            self.send(sender, m.StatusReply(False, detail="riskd is starting (not booted yet)"))
            return
        rows = tuple(s for a, s in sorted(self.status.items())
                     if msg.account_id is None or a == msg.account_id)
        notice = getattr(self, "db_notice", None)
        feed = self.feed_link
        self.send(sender, m.StatusReply(True, rows, self.started_at,
                                        f"config {self.config.source}"
                                        + (f"; {notice.notice()}" if notice else "")
                                        + (f"; market data DOWN since {feed.at:%H:%M:%S} UTC "
                                           f"({feed.detail})" if feed and not feed.up else "")))

    def receiveMsg_AdminRequest(self, msg: m.AdminRequest, sender) -> None:
        if msg.command == "ping":
            self.send(sender, m.AdminReply(True, "pong"))
        elif msg.command == "challenge":
            self.send(sender, self._challenge())
        elif msg.command == "config_summary":
            self.send(sender, self._config_summary())
        elif msg.command in MUTATING_COMMANDS:
            self.send(sender, self._admin(msg))
        else:
            self.send(sender, m.AdminReply(False, f"unknown admin command {msg.command!r}; known: "
                                                  "ping, challenge, config_summary, "
                                                  + ", ".join(MUTATING_COMMANDS)))

    # Every mutating request carries a proof of the admin password (risk_actors.security);
    # failures are counted and audited, and nothing changes unless the proof holds.
    def _challenge(self) -> m.AdminReply:
        from risk_actors import security
        if self.boot is None:
            return m.AdminReply(False, "riskd is starting (not booted yet)")
        stored = security.read_password_hash(self.config.daemon.state_dir)
        data = {"nonce": self.verifier.challenge(), "params": None, "hash_len": None}
        if stored and security.is_argon2_hash(stored):
            data.update(security.public_params(stored))
        return m.AdminReply(True, "challenge", data=data)

    def _admin(self, msg: m.AdminRequest) -> m.AdminReply:
        from risk_actors import security
        from risk_actors.admin_ops import EditError
        if self.boot is None:
            return m.AdminReply(False, "riskd is starting (not booted yet)")
        args = dict(msg.args) if isinstance(msg.args, Mapping) else {}
        shown = {k: v for k, v in args.items() if k != "hash"}
        stored = security.read_password_hash(self.config.daemon.state_dir)
        verdict = self.verifier.verify(stored, msg.command, args, msg.nonce, msg.proof)
        if not verdict.ok:
            logger.warning("admin {} refused: {}", msg.command, verdict.reason)
            self._admin_audit({"command": msg.command, "args": shown, "outcome": "refused",
                               "reason": verdict.reason, "failures": verdict.failures})
            return m.AdminReply(False, f"refused: {verdict.reason}",
                                data={"refused": True, "failures": verdict.failures})
        try:
            reply = getattr(self, "_admin_" + msg.command)(args)
        except (EditError, KeyError, TypeError, ValueError) as exc:
            reply = m.AdminReply(False, str(exc))
        except Exception as exc:  # noqa: BLE001  (the Supervisor must not die on a bad edit)
            logger.exception("admin {} failed", msg.command)
            reply = m.AdminReply(False, f"{msg.command} failed: {exc}")
        self._admin_audit({"command": msg.command, "args": shown,
                           "outcome": "done" if reply.ok else "failed",
                           "message": reply.message[:1000]})
        return reply

    def _admin_audit(self, detail: dict) -> None:
        try:
            if self.db is None:
                from risk_actors.db import Database
                self.db = Database(self.db_path(), migrate=False)
            self.db.audit("admin", None, None, detail, datetime.now(timezone.utc))
        except Exception as exc:  # noqa: BLE001
            logger.error("admin audit write failed: {}", exc)

    def _admin_reload(self, args: dict) -> m.AdminReply:
        return self._reload()

    def _admin_rules_set(self, args: dict) -> m.AdminReply:
        from risk_actors.admin_ops import set_rule_param
        return self._edit(lambda doc: set_rule_param(doc, self.registry, args["rule"],
                                                     args["key"], args["value"],
                                                     args.get("account")))

    def _admin_accounts_add(self, args: dict) -> m.AdminReply:
        from risk_actors.admin_ops import add_account
        return self._edit(lambda doc: add_account(doc, args["id"], args.get("name"),
                                                  args.get("description") or ""))

    def _admin_accounts_remove(self, args: dict) -> m.AdminReply:
        from risk_actors.admin_ops import remove_account
        removed: list = []

        def edit(doc):
            removed.append(remove_account(doc, args["account"]))
            return f"account {args['account']} removed"
        reply = self._edit(edit)
        if reply.ok and removed and removed[0] is not None:
            for key, (address, init) in list(self.accounts.items()):
                if init.account_id == removed[0]:
                    del self.accounts[key]  # popped first: its exit is not restarted
                    self.status.pop(init.account_id, None)
                    self.send(address, ActorExitRequest())
                    logger.warning("account {} removed by the admin: no longer watched",
                                   init.account_id)
        return reply

    def _admin_passwd(self, args: dict) -> m.AdminReply:
        from risk_actors import security
        if not security.is_argon2_hash(args.get("hash")):
            return m.AdminReply(False, "passwd needs an argon2id hash")
        security.write_password_hash(self.config.daemon.state_dir, args["hash"])
        self.verifier.reset_failures()
        return m.AdminReply(True, "admin password changed")

    def _edit(self, change) -> m.AdminReply:
        """Apply ``change(doc)`` to the config file (comments kept), validate, write, reload."""
        from risk_actors.admin_ops import validate
        from risk_actors.config import read_document, write_document
        path = Path(self.boot.config_path)
        if path.is_dir():
            return m.AdminReply(False, f"{path} is a 1.0 config directory: write it out as one "
                                       "version 2 file before editing it with riskd")
        doc = read_document(path)
        what = change(doc)
        validate(doc, self.registry, str(path))
        write_document(doc, path)
        reply = self._reload()
        return m.AdminReply(reply.ok, f"{what}; written to {path}; {reply.message}")

    def _config_summary(self) -> m.AdminReply:
        if self.boot is None:
            return m.AdminReply(False, "riskd is starting (not booted yet)")
        return m.AdminReply(True, str(self.config.source), data=config_summary(self.config))

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
        self._init_notifier()
        if self.components is not None:
            self.send(self.components, self._component_init())
        changed = 0
        for key, (address, init) in list(self.accounts.items()):
            if new.account(init.account_id) is None:
                continue  # removing an account takes a restart: say so rather than drop enforcement
            fresh = self._account_init(new.account(init.account_id))
            if fresh.rules != init.rules:
                self.accounts[key] = (address, attrs.evolve(init, rules=fresh.rules))
                self.send(address, RulesChanged(fresh.rules))
                changed += 1
        running = {init.account_id for _, init in self.accounts.values()}
        added = [acc for acc in new.accounts
                 if acc.enabled and acc.id is not None and acc.id not in running]
        if added:
            self._start_feed()
        for acc in added:  # an account added to the config is watched at once
            self._start_account(self._account_init(acc))
        logger.info("config reloaded from {}: {} account(s) changed rules, {} added",
                    new.source, changed, len(added))
        return m.AdminReply(True, f"config reloaded; {changed} account(s) changed rules"
                                  + (f", {len(added)} account(s) added" if added else ""))

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender) -> None:
        if msg.payload == ("orphan-check",):
            self.watch.check()  # the admin process died: our accounts must not run on unseen
            self.wakeupAfter(CHECK_SECONDS, payload=("orphan-check",))

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender) -> None:
        logger.info("riskd supervisor stopping")
        self.stopping = True
        if self.boot is not None:
            # Sent before thespian asks the children to exit (FIFO per pair): the notifier
            # delivers it while flushing on its own ActorExitRequest.
            self._alert("daemon_stop", "warning", "riskd is stopping: accounts are NOT watched "
                                                  "until it runs again")

    # ---- alerts ------------------------------------------------------------------------------
    def receiveMsg_Notify(self, msg: m.Notify, sender) -> None:
        # Forwarded to whatever notifier is current, so a restarted one keeps receiving.
        if self.notifier is not None:
            self.send(self.notifier, msg)
        else:
            logger.warning("ALERT (no notifier yet) {}: {}", msg.kind, msg.message)

    def _init_notifier(self) -> None:
        from risk_actors.notifier import NotifierInit
        if self.notifier is not None and self.config is not None:
            self.send(self.notifier, NotifierInit(self.config.notifications))

    def _alert(self, kind: str, severity: str, message: str) -> None:
        self.receiveMsg_Notify(m.Notify(kind=kind, severity=severity, account_id=None, rule=None,
                                        message=message, at=datetime.now(timezone.utc)), None)
