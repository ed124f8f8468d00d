"""011 SymbolBlocks: symbols the trader has chosen never to trade.

``blocked_symbols`` lists symbol roots, exactly (``RTY``) or as shell-style patterns with ``*``
and ``?`` (``M*``, ``BTC*``), compared case-insensitively with the *whole* root: ``ES`` blocks ES,
not MES (rules-spec 011 c, e). The root comes from contract metadata (``MNQZ6`` -> MNQ, exchange
alias ``EP`` -> ES), never from slicing the contract id.

A position in a blocked root -> close every contract of that root (all months), cancel its
working orders, and lock that symbol with no expiry (scope ``symbol``): from then on the core's
lockout guard flattens any new fill and cancels any new order of that root, and the rule itself
closes whatever it still sees open there; every other symbol stays tradable. A working order of
a blocked root gets the same treatment.

The lock lasts until the symbol leaves ``blocked_symbols``: after a config reload (the account
sends ``Tick(reason="config")``) or a restart (``Reconciled``) the rule lifts the locks of
symbols no longer blocked, and closes what is open in symbols newly blocked (hot-add).
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

import attrs

from rules.base import (Alert, CancelOrders, ClosePosition, ContractsKnown, LiftLock, Lock,
                        LOCK_SYMBOL, OrderEvent, PositionEvent, Reconciled, Rule, RuleUpdate,
                        RuleViolation, Tick)

_PATTERN = re.compile(r"^[A-Z0-9*?]+$")


def _patterns(value: Any) -> tuple[str, ...]:
    # Typed Any so that cattrs hands over the raw value: a bare string would otherwise be
    # structured as a tuple of its characters ("RTY" -> R, T, Y), blocking every R*... root.
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"blocked_symbols must be a list of symbol roots or patterns "
                         f"(e.g. [RTY, \"BTC*\"]), got {value!r}")
    out: list[str] = []
    for i, item in enumerate(value):
        text = item.strip().upper() if isinstance(item, str) else None
        if not text or not _PATTERN.match(text):
            raise ValueError(f"blocked_symbols entries must be symbol roots or patterns of "
                             f"letters, digits, * and ? (e.g. RTY, M*, BTC?); item {i} "
                             f"({item!r}) is not one")
        if text not in out:
            out.append(text)
    return tuple(out)


@attrs.frozen
class Params:
    """Parameters of symbol_blocks (see docs/rules/symbol_blocks.md).

    An empty list is valid: it is how the last blocked symbol is removed (and its lock lifted).
    """

    blocked_symbols: Any = attrs.field(default=(), converter=_patterns)


def matching_pattern(root: str | None, patterns: tuple[str, ...]) -> str | None:
    """The first pattern that matches the whole root, case-insensitively; None when none does.

    ``fnmatchcase`` on upper-cased text: exact or glob, never a substring (``ES`` is not in
    ``MES``). Patterns are validated to letters, digits, ``*`` and ``?``, so ``[`` never
    reaches fnmatch as a character class.
    """
    if not root:
        return None
    text = root.strip().upper()
    return next((p for p in patterns if fnmatchcase(text, p.upper())), None)


class SymbolBlocks(Rule):
    """Blocked symbol roots: close, cancel and lock the symbol permanently (011)."""

    name = "symbol_blocks"
    rule_id = "011"
    version = "1.0"
    description = ("Closes and cancels everything in a blocked symbol and locks that symbol "
                   "until it is removed from blocked_symbols.")
    author = "riskd"
    Params = Params
    # ContractsKnown: a contract whose root was unknown at the fill is judged once it is known.
    # Tick: after a config reload, block newly listed symbols and lift removed ones.
    events = (PositionEvent, OrderEvent, Reconciled, ContractsKnown, Tick)

    def evaluate(self, event, state, now):
        patterns = self.params.blocked_symbols
        ours = {lk.symbol.upper() for lk in state.active_lockouts(now)
                if lk.rule == self.name and lk.scope == "symbol" and lk.symbol}
        lifts = tuple(sorted(s for s in ours if matching_pattern(s, patterns) is None))

        exposed: dict[str, set[str]] = {}  # root -> contracts with a position or working order
        for cid in list(state.positions) + [o.contract_id for o in state.orders.values()]:
            root = state.root(cid)
            if root is not None:
                exposed.setdefault(root.upper(), set()).add(cid)

        if isinstance(event, (PositionEvent, OrderEvent)):
            adds = event.size > 0 if isinstance(event, PositionEvent) else event.working
            root = state.root(event.contract_id)
            # Only the root this event touched. Also when already locked: the core's lockout
            # guard undoes what opened or grew, but a blocked root must hold nothing at all
            # (a shrinking position, a close that did not fully hold), and asking again for
            # the same close joins the enforcer's running job.
            candidates = {root.upper()} if adds and root else set()
        else:
            candidates = set(exposed)  # reload, reconnect, new metadata: check everything

        blocked = {r: p for r in sorted(candidates)
                   if r in exposed and (p := matching_pattern(r, patterns)) is not None}
        if not blocked:
            if not lifts:
                return None
            return RuleUpdate(actions=tuple(LiftLock(symbol=s) for s in lifts) + (
                Alert(f"{', '.join(lifts)} removed from blocked_symbols: unlocked.", "info"),))

        close = tuple(sorted(c for r in blocked for c in exposed[r] if c in state.positions))
        cancel = tuple(sorted(c for r in blocked for c in exposed[r]))
        new_locks = tuple(r for r in blocked if r not in ours)
        n_orders = sum(1 for o in state.orders.values() if o.contract_id in cancel)
        reason = "; ".join(f"{r} is blocked (blocked_symbols {p})" for r, p in blocked.items())
        return RuleViolation(
            self.name,
            f"{reason}: {len(close)} position(s) to close, {n_orders} order(s) to cancel",
            contract_id=getattr(event, "contract_id", None),
            data={"blocked": dict(blocked), "close": close, "cancel": cancel,
                  "lock": new_locks, "lift": lifts})

    def get_enforcement_action(self, violation):
        data = violation.data
        actions: list = [ClosePosition(c) for c in data["close"]]
        # Cancel per contract, also where only a position is known: a bracket order may be on
        # its way; the enforcer reads the orders back and cancels whatever is working.
        actions += [CancelOrders(c) for c in data["cancel"]]
        for root in data["lock"]:
            actions.append(Lock(LOCK_SYMBOL, f"{root} is blocked (blocked_symbols "
                                             f"{data['blocked'][root]})", None,
                                scope="symbol", symbol=root))
            actions.append(Alert(f"{root} is on your blocked list ({data['blocked'][root]}): its "
                                 f"positions are closed, its orders cancelled, and it stays "
                                 f"locked until removed from blocked_symbols. Other symbols "
                                 f"remain tradable.", "warning"))
        actions += [LiftLock(symbol=s) for s in data["lift"]]
        if data["lift"]:
            actions.append(Alert(f"{', '.join(data['lift'])} removed from blocked_symbols: "
                                 f"unlocked.", "info"))
        return tuple(actions)
