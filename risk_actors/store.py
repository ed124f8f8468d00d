"""The Store actor: owns the schema, answers read queries, writes for actors without a DB.

AccountActors journal their own changes through :class:`risk_actors.db.Database` in their own
process (durability before action, see :mod:`risk_actors.db`). The Store is the rest:

* on :class:`StoreOpen` it opens the file and applies pending migrations (the only place that
  migrates; AccountActors open with ``migrate=False`` afterwards);
* it answers the status/audit/CLI queries (:class:`AuditQuery`, :class:`VerifyAudit`,
  :class:`StateQuery`, :class:`QuarantineQuery`);
* it writes the records of actors that have no DB of their own (:class:`RecordAudit` from the
  notifier or supervisor, :class:`RecordQuarantine`), fire-and-forget.

Each handler is a thin call into ``db.py``. A failing query is answered with
:class:`StoreError` (so an ``ask`` never hangs); a failing fire-and-forget write is logged.
The messages below are frozen attrs classes importable by module path (thespian pickles them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import attrs
from loguru import logger
from thespian.actors import ActorExitRequest, ActorTypeDispatcher

from risk_actors import db as dbm
from risk_actors.state import AccountState, Lockout


# ---------------------------------------------------------------------------------------------
# requests and replies
@attrs.frozen
class StoreOpen:
    """Open (and migrate) the database at ``path``; answered with :class:`StoreOpened`."""

    path: str
    now: datetime | None = None


@attrs.frozen
class StoreOpened:
    """The database is open at schema ``version``."""

    path: str
    version: int


@attrs.frozen
class StoreError:
    """A request failed; ``request`` names its class, ``error`` says why."""

    request: str
    error: str


@attrs.frozen
class AuditQuery:
    """Audit records filtered like :meth:`Database.audit_rows`; answered with AuditRows."""

    account_id: int | None = None
    kind: str | None = None
    since: datetime | None = None
    limit: int = 200
    newest_first: bool = True


@attrs.frozen
class AuditRows:
    rows: tuple[dbm.AuditRow, ...]


@attrs.frozen
class VerifyAudit:
    """Check the audit hash chain; answered with :class:`AuditVerified`."""


@attrs.frozen
class AuditVerified:
    """``ok`` or the first bad row (``row_id``) and why."""

    ok: bool
    row_id: int | None = None
    why: str | None = None


@attrs.frozen
class StateQuery:
    """Persisted state of one account (or all when ``account_id`` is None) as of ``now``."""

    now: datetime
    account_id: int | None = None


@attrs.frozen
class AccountStateRow:
    """One account as the database has it: restored state and locks active at the query time."""

    account_id: int
    name: str
    last_seq: int
    last_at: datetime | None
    state: AccountState | None
    lockouts: tuple[Lockout, ...]
    corrupt: tuple[dbm.CorruptRow, ...] = ()


@attrs.frozen
class StateRows:
    rows: tuple[AccountStateRow, ...]


@attrs.frozen
class RecordAudit:
    """Fire-and-forget: append one audit record (see :meth:`Database.audit`)."""

    kind: str
    account_id: int | None
    rule: str | None
    detail: Mapping[str, Any]
    at: datetime


@attrs.frozen
class RecordQuarantine:
    """Fire-and-forget: record a message set aside (see :meth:`Database.quarantine`)."""

    account_id: int | None
    seq: int | None
    who: str
    message_repr: str
    error: str
    at: datetime


@attrs.frozen
class QuarantineQuery:
    account_id: int | None = None
    limit: int = 100


@attrs.frozen
class QuarantineRows:
    rows: tuple[dbm.QuarantineRow, ...]


# ---------------------------------------------------------------------------------------------
class StoreActor(ActorTypeDispatcher):
    """Thin actor around one :class:`~risk_actors.db.Database` (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.db: dbm.Database | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def receiveMsg_StoreOpen(self, msg: StoreOpen, sender: Any) -> None:
        try:
            if self.db is not None and self.db.path != msg.path:
                self.db.close()
                self.db = None
            if self.db is None:
                self.db = dbm.Database(msg.path, migrate=True, now=msg.now)
            self.send(sender, StoreOpened(self.db.path, self.db.version))
        except Exception as exc:  # noqa: BLE001 - answered, so the asker learns why
            logger.error("store: cannot open {}: {}", msg.path, exc)
            self.send(sender, StoreError("StoreOpen", f"{type(exc).__name__}: {exc}"))

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender: Any) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    # ---- queries --------------------------------------------------------------------------
    def _answer(self, msg: Any, sender: Any, fn: Any) -> None:
        if self.db is None:
            self.send(sender, StoreError(type(msg).__name__, "store not open (send StoreOpen)"))
            return
        try:
            reply = fn(self.db)
        except Exception as exc:  # noqa: BLE001
            logger.exception("store: {} failed", type(msg).__name__)
            reply = StoreError(type(msg).__name__, f"{type(exc).__name__}: {exc}")
        self.send(sender, reply)

    def receiveMsg_AuditQuery(self, msg: AuditQuery, sender: Any) -> None:
        self._answer(msg, sender, lambda db: AuditRows(tuple(db.audit_rows(
            msg.account_id, msg.kind, msg.since, msg.limit, msg.newest_first))))

    def receiveMsg_VerifyAudit(self, msg: VerifyAudit, sender: Any) -> None:
        def verify(db: dbm.Database) -> AuditVerified:
            bad = db.verify_audit()
            return AuditVerified(True) if bad is None else AuditVerified(False, *bad)
        self._answer(msg, sender, verify)

    def receiveMsg_StateQuery(self, msg: StateQuery, sender: Any) -> None:
        def rows(db: dbm.Database) -> StateRows:
            out = []
            for acct in db.accounts():
                if msg.account_id is not None and acct.account_id != msg.account_id:
                    continue
                errors: list[dbm.CorruptRow] = []
                state, last_seq = db.load(acct.account_id, errors)
                out.append(AccountStateRow(acct.account_id, acct.name, last_seq, acct.last_at,
                                           state,
                                           tuple(db.active_lockouts(acct.account_id, msg.now)),
                                           tuple(errors)))
            return StateRows(tuple(out))
        self._answer(msg, sender, rows)

    def receiveMsg_QuarantineQuery(self, msg: QuarantineQuery, sender: Any) -> None:
        self._answer(msg, sender,
                     lambda db: QuarantineRows(tuple(db.quarantined(msg.account_id, msg.limit))))

    # ---- fire-and-forget writes -----------------------------------------------------------
    def _write(self, msg: Any, fn: Any) -> None:
        if self.db is None:
            logger.error("store: {} dropped: store not open", type(msg).__name__)
            return
        try:
            fn(self.db)
        except Exception:  # noqa: BLE001 - no one waits for an answer: say it loudly
            logger.exception("store: {} failed", type(msg).__name__)

    def receiveMsg_RecordAudit(self, msg: RecordAudit, sender: Any) -> None:
        self._write(msg, lambda db: db.audit(msg.kind, msg.account_id, msg.rule, msg.detail,
                                             msg.at))

    def receiveMsg_RecordQuarantine(self, msg: RecordQuarantine, sender: Any) -> None:
        self._write(msg, lambda db: db.quarantine(msg.account_id, msg.seq, msg.who,
                                                  msg.message_repr, msg.error, msg.at))

    def receiveUnrecognizedMessage(self, msg: Any, sender: Any) -> None:
        # thespian system messages (ChildActorExited, WakeupMessage ...) land here too: ignore.
        logger.debug("store: ignoring {}", type(msg).__name__)
