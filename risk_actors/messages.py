"""Messages exchanged between riskd's actors.

Every message is a frozen ``attrs`` class importable by module path, because thespian's
multiproc bases pickle them between processes. Mapping fields are never mutated after
construction (the reducer builds new ones); treat them as read-only.

Three families live here:

* broker events: what the gateway told us, parsed from its payloads (``PositionEvent`` ...);
* pipeline messages: how an event travels through the account, its rules and its enforcer;
* enforcement actions: what a rule asks for (``ClosePosition``, ``Lock`` ...), executed only by the
  EnforcerActor (locks are applied by the AccountActor through the reducer).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import attrs

# ---------------------------------------------------------------------------------------------
# gateway enums (the gateway's own numbering; see gateway-api.md, never the SDK's)
SIDE_BUY, SIDE_SELL = 0, 1
POSITION_LONG, POSITION_SHORT = 1, 2
ORDER_LIMIT, ORDER_MARKET, ORDER_STOP_LIMIT, ORDER_STOP, ORDER_TRAILING_STOP = 1, 2, 3, 4, 5
STATUS_OPEN, STATUS_FILLED, STATUS_CANCELLED, STATUS_EXPIRED, STATUS_REJECTED, STATUS_PENDING = (
    1, 2, 3, 4, 5, 6)
WORKING_STATUSES = frozenset({STATUS_OPEN, STATUS_PENDING})
STOP_TYPES = frozenset({ORDER_STOP_LIMIT, ORDER_STOP, ORDER_TRAILING_STOP})


# ---------------------------------------------------------------------------------------------
# broker events
@attrs.frozen
class PositionEvent:
    """``GatewayUserPosition``: the account's net position in one contract; size 0 = closed."""

    account_id: int
    contract_id: str
    size: int
    type: int = POSITION_LONG
    average_price: float = 0.0
    position_id: int | None = None
    created: datetime | None = None

    @property
    def signed_size(self) -> int:
        return -self.size if self.type == POSITION_SHORT else self.size


@attrs.frozen
class OrderEvent:
    """``GatewayUserOrder``: an order's current status."""

    account_id: int
    order_id: int
    contract_id: str
    status: int
    type: int
    side: int
    size: int
    symbol_id: str | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    fill_volume: int = 0
    filled_price: float | None = None
    custom_tag: str | None = None
    created: datetime | None = None
    updated: datetime | None = None

    @property
    def working(self) -> bool:
        return self.status in WORKING_STATUSES


@attrs.frozen
class TradeEvent:
    """``GatewayUserTrade``: one fill. ``pnl`` is None on an opening half-turn."""

    account_id: int
    trade_id: int
    contract_id: str
    created: datetime
    price: float
    pnl: float | None
    fees: float
    side: int
    size: int
    voided: bool = False
    order_id: int | None = None


@attrs.frozen
class AccountEvent:
    """``GatewayUserAccount`` (or an ``Account/search`` row). ``can_trade`` None = not sent."""

    account_id: int
    name: str = ""
    balance: float | None = None
    can_trade: bool | None = None


@attrs.frozen
class QuoteEvent:
    """``GatewayQuote`` merged into the last full quote of its contract."""

    contract_id: str
    last_price: float | None
    best_bid: float | None = None
    best_ask: float | None = None
    timestamp: datetime | None = None
    received_at: datetime | None = None


@attrs.frozen
class ContractInfo:
    """Contract metadata from ``Contract/searchById``, cached per contract."""

    contract_id: str
    name: str
    tick_size: float
    tick_value: float
    symbol_id: str | None = None
    description: str = ""


@attrs.frozen
class ContractsKnown:
    """Contract metadata learnt by the GatewayActor; applied to state like any event."""

    account_id: int
    contracts: tuple[ContractInfo, ...]


@attrs.frozen
class Reconciled:
    """REST truth after a (re)connect: replaces positions and orders, merges trades by id.

    Rows that user-hub events changed while the REST answers were on their way carry those
    events' values (``reconcile.overlay``): the snapshot never undoes what the account already saw.
    """

    account_id: int
    account: AccountEvent | None
    positions: tuple[PositionEvent, ...]
    orders: tuple[OrderEvent, ...]
    trades: tuple[TradeEvent, ...]
    contracts: tuple[ContractInfo, ...] = ()


@attrs.frozen
class ConnectionChanged:
    """The broker link of an account went up or down (``detail`` says why)."""

    account_id: int
    connected: bool
    detail: str = ""


@attrs.frozen
class Tick:
    """A timer firing: lock expiry, cooldown end, grace deadline, reset, session edge."""

    account_id: int
    reason: str = "timer"


# ---------------------------------------------------------------------------------------------
# enforcement actions (what a rule asks for); strength orders the merge of one event's verdicts
@attrs.frozen
class FlattenAccount:
    """Close every position and cancel every working order of the account."""

    strength: int = attrs.field(default=60, init=False)


@attrs.frozen
class ClosePosition:
    """Close one contract's whole position (``Position/closeContract``)."""

    contract_id: str
    strength: int = attrs.field(default=50, init=False)


@attrs.frozen
class ReducePosition:
    """Close ``size`` contracts of one position (``Position/partialCloseContract``)."""

    contract_id: str
    size: int
    strength: int = attrs.field(default=40, init=False)


@attrs.frozen
class CancelOrders:
    """Cancel working orders: of one contract, or all of them when ``contract_id`` is None."""

    contract_id: str | None = None
    strength: int = attrs.field(default=30, init=False)


@attrs.frozen
class CancelOrder:
    """Cancel one working order."""

    order_id: int
    strength: int = attrs.field(default=30, init=False)


@attrs.frozen
class PlaceStop:
    """Place a protective stop order. ``custom_tag`` (unique per account at the gateway) makes
    a repeated placement of the same stop fail instead of doubling it."""

    contract_id: str
    side: int
    size: int
    stop_price: float
    custom_tag: str | None = None
    strength: int = attrs.field(default=25, init=False)


@attrs.frozen
class ModifyStop:
    """Move an existing stop (and/or resize it)."""

    order_id: int
    stop_price: float
    size: int | None = None
    strength: int = attrs.field(default=25, init=False)


LOCK_HARD, LOCK_INDEFINITE, LOCK_COOLDOWN, LOCK_SYMBOL = "hard", "indefinite", "cooldown", "symbol"


@attrs.frozen
class Lock:
    """Lock the account (or one symbol root) until ``expires_at`` (None = no expiry)."""

    kind: str
    reason: str
    expires_at: datetime | None
    scope: str = "account"
    symbol: str | None = None
    until_reset: bool = False
    strength: int = attrs.field(default=20, init=False)


@attrs.frozen
class LiftLock:
    """Lift the rule's *own* lock (all of them, or the one of ``symbol``) where the spec allows:
    010 when canTrade returns, 011 when a symbol leaves the blocked list. Nothing else can."""

    symbol: str | None = None
    strength: int = attrs.field(default=15, init=False)


@attrs.frozen
class Alert:
    """Tell the trader/admin; changes nothing at the broker."""

    message: str
    severity: str = "warning"
    strength: int = attrs.field(default=10, init=False)


EnforcementAction = (FlattenAccount | ClosePosition | ReducePosition | CancelOrders | CancelOrder
                     | PlaceStop | ModifyStop | Lock | LiftLock | Alert)


# ---------------------------------------------------------------------------------------------
# pipeline
@attrs.frozen
class Inbound:
    """GatewayActor -> AccountActor: one broker event stamped with the account's sequence."""

    account_id: int
    seq: int
    event: Any
    received_at: datetime


@attrs.frozen
class InboundBatch:
    """GatewayActor -> AccountActor: several ``Inbound`` drained together, in order.

    One message per drain instead of one per event: a fill is five events (order, trade, order,
    position, account) and each thespian message costs a pickle and a socket write."""

    account_id: int
    items: tuple[Inbound, ...]


# --- the shared market data feed (daemon.market_data: shared) --------------------------------
# Quotes are the same for every account: one market hub connection for the daemon parses each
# quote once, instead of once per account (docs/performance.md, "Shared market data").
@attrs.frozen
class QuotesWanted:
    """Broker session -> AccountActor: quotes of these contracts are needed (held, worked or
    traded). With a shared feed the session subscribes nothing itself and says so instead."""

    account_id: int
    contract_ids: tuple[str, ...]


@attrs.frozen
class QuoteInterest:
    """AccountActor -> Supervisor -> MarketFeedActor: send this account these contracts' quotes.
    ``subscriber`` is the account's address, filled in by the Supervisor."""

    account_id: int
    contract_ids: tuple[str, ...]
    subscriber: Any = None


@attrs.frozen
class FeedQuotes:
    """MarketFeedActor -> AccountActor: the latest quote of each contract the account wants,
    at most one per contract per ``quote_interval_ms``; ``received_at`` is set on each."""

    quotes: tuple[QuoteEvent, ...]


@attrs.frozen
class MarketFeedLink:
    """MarketFeedActor -> Supervisor: the shared market data link went up or down."""

    up: bool
    detail: str
    at: datetime


@attrs.frozen
class Evaluate:
    """AccountActor -> RuleActor: evaluate one event against a state snapshot at ``now``."""

    account_id: int
    seq: int
    event: Any
    state: Any
    now: datetime


@attrs.frozen
class Verdict:
    """RuleActor -> AccountActor: a rule's answer to one ``Evaluate``.

    ``error`` is set when the plugin raised; the event then goes on without this rule.
    ``memory`` (when not None) replaces the rule's memory in ``AccountState``.
    """

    account_id: int
    seq: int
    rule: str
    mode: str
    violation: Any = None
    actions: tuple = ()
    memory: Mapping[str, Any] | None = None
    wake_at: datetime | None = None
    error: str | None = None
    elapsed_ms: float = 0.0


@attrs.frozen
class Enforce:
    """AccountActor -> EnforcerActor: execute these broker actions, verify, retry."""

    account_id: int
    seq: int
    rule: str
    reason: str
    actions: tuple
    requested_at: datetime
    # The account's view when the verdict was made: lets the enforcer act without a first
    # round trip, and turns "reduce by N" into an idempotent "reduce to size" target.
    positions: Mapping[str, int] = attrs.field(factory=dict)   # contract -> signed size
    orders: Mapping[int, str] = attrs.field(factory=dict)      # working order id -> contract
    # A re-sent request (enforcer restart, reconnect): an earlier call may still be in flight,
    # so the enforcer must read the broker back (after settling) before acting on the snapshot.
    replay: bool = False


@attrs.frozen
class EnforcementDone:
    """EnforcerActor -> AccountActor: outcome of one ``Enforce`` after verification."""

    account_id: int
    seq: int
    rule: str
    ok: bool
    detail: str = ""
    attempts: int = 1
    final: bool = True  # False: a progress report (still retrying), sent once for alerting
    key: tuple = ()     # the enforcement goal (see enforcer.job_key)


@attrs.frozen
class BrokerCall:
    """EnforcerActor -> GatewayActor: one REST call. ``op`` names a broker operation."""

    account_id: int
    call_id: str
    op: str
    args: Mapping[str, Any] = attrs.field(factory=dict)
    urgent: bool = True


@attrs.frozen
class BrokerReply:
    """GatewayActor -> EnforcerActor: result of a ``BrokerCall``."""

    account_id: int
    call_id: str
    op: str
    ok: bool
    result: Any = None
    error: str | None = None
    retry_after: float | None = None


# ---------------------------------------------------------------------------------------------
# admin / CLI
@attrs.frozen
class StatusRequest:
    """Ask the Supervisor for a status snapshot of every account."""

    account_id: int | None = None


@attrs.frozen
class StatusReply:
    """Per-account status: connection, positions, daily P&L, locks, rules loaded."""

    ok: bool
    accounts: tuple = ()
    started_at: datetime | None = None
    detail: str = ""


@attrs.frozen
class AccountStatus:
    """One account's line of ``riskd status``."""

    account_id: int
    name: str
    connected: bool
    positions: tuple = ()
    realized_pnl: float = 0.0
    fees: float = 0.0
    lockouts: tuple = ()
    rules: tuple = ()
    last_event_at: datetime | None = None
    failures: tuple = ()
    # Added for the CLIs (issue 5); lockouts above are (rule, scope, symbol, reason, expires_at
    # ISO) and lock_started the matching started_at ISO strings, in the same order.
    unrealized_pnl: float | None = None     # sum over positions with a quote; None = unknown
    usage: tuple = ()          # (rule, mode, label, value, limit, unit) from Rule.usage
    next_reset_at: datetime | None = None
    lock_started: tuple = ()
    can_trade: bool | None = None


@attrs.frozen
class AdminRequest:
    """A mutating admin command (reload, shutdown ...). ``proof`` authenticates it."""

    command: str
    args: Mapping[str, Any] = attrs.field(factory=dict)
    proof: str = ""
    nonce: str = ""


@attrs.frozen
class AdminReply:
    """Outcome of an ``AdminRequest``."""

    ok: bool
    message: str = ""
    data: Any = None


# ---------------------------------------------------------------------------------------------
# alerts and components (off the enforcement path: sent after the work, fire-and-forget)
SEVERITIES = ("info", "warning", "error", "critical")
# What an alert is about. Channels and webhooks filter on these; ``WEBHOOK_EVENTS`` maps the
# webhook names of the config to the kinds they carry.
ALERT_KINDS = (
    "enforcement",          # an enforcement completed: what, why, result
    "enforcement_failed",   # an enforcement could not be completed (or is still retrying)
    "lock_start",           # an account/symbol lock began (once per lock)
    "lock_end",             # a lock ended (expiry, reset or lifted by its rule)
    "warning",              # a limit is X % used (the configured fractions)
    "rule_failure",         # a rule raised, hung, died or could not load
    "quarantine",           # an event crashed a rule twice and was set aside
    "disconnected",         # the broker link has been down longer than the configured time
    "reconnected",          # ... and is back
    "daemon_start",
    "daemon_stop",
    "daily_report",         # the day's analytics at the daily reset
    "rule_alert",           # a rule's own Alert action
    "store",                # the journal or audit could not be written
)
WEBHOOK_EVENTS = {
    "on_enforcement": ("enforcement", "enforcement_failed"),
    "on_lockout": ("lock_start", "lock_end"),
    "on_warning": ("warning",),
}


@attrs.frozen
class NotifierChanged:
    """Supervisor -> AccountActor: alerts go straight to this Notifier (a restarted one has a
    new address). Direct, not through the Supervisor: one process hop less per alert."""

    address: Any


@attrs.frozen
class Notify:
    """Anyone -> Supervisor -> Notifier: something a person must hear about.

    ``key`` identifies "the same alert" for de-duplication (default: kind, account, rule and
    message); ``data`` holds the structured details webhooks and JSON channels send.
    """

    kind: str
    severity: str
    account_id: int | None
    rule: str | None
    message: str
    at: datetime
    data: Mapping[str, Any] = attrs.field(factory=dict)
    key: str | None = None

    def dedup_key(self) -> str:
        """The key identical alerts share."""
        return self.key or f"{self.kind}|{self.account_id}|{self.rule}|{self.message}"


@attrs.frozen
class RuleTriggered:
    """Component feed: a rule returned a violation for an event (any mode)."""

    rule: str
    mode: str
    reason: str
    actions: tuple[str, ...] = ()


@attrs.frozen
class DayClosed:
    """Component feed: the account's trading day ``[start, end)`` ended at a daily reset."""

    start: datetime | None
    end: datetime


@attrs.frozen
class ComponentFeed:
    """AccountActor -> Supervisor -> ComponentHost: one item of the account's event stream
    (a broker event other than quotes, a ``RuleTriggered`` or a ``DayClosed``), after the
    pipeline has handled it."""

    account_id: int
    seq: int
    item: Any
    at: datetime


@attrs.frozen
class ComponentFeedBatch:
    """The ``ComponentFeed`` items of one handled message, sent together after its work."""

    feeds: tuple[ComponentFeed, ...]


# thespian formats every message it sends and receives (``str(message)``) for a debug line it
# then drops. For attrs classes that is the full repr: a batch of events, a status with its
# rule usage, a feed of quotes with their datetimes, every time, on both sides. On the
# messages that cross processes often, ``str`` is the class name and the account; ``repr``
# stays complete for logs and tests.
def _brief(self: Any) -> str:
    aid = getattr(self, "account_id", None)
    return f"{type(self).__name__}(account {aid})" if aid is not None else type(self).__name__


for _cls in (Inbound, InboundBatch, FeedQuotes, QuoteInterest, QuotesWanted, Evaluate, Verdict,
             BrokerCall, BrokerReply, AccountStatus, Notify, ComponentFeed, ComponentFeedBatch):
    _cls.__str__ = _brief
del _cls
