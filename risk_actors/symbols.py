"""Symbol roots: which instrument a contract is, for per-symbol limits, blocks and locks.

The gateway's contract ids carry exchange roots (ES is ``CON.F.US.EP.Z26``), so the root comes
from the contract *name* (``ESZ6`` -> ``ES``) or from an alias table, never from slicing the id
(rules-spec section 8).
"""

from __future__ import annotations

import re
from typing import Mapping

# Exchange roots seen in contract/symbol ids -> trading symbol. Extendable from config.
DEFAULT_ALIASES: Mapping[str, str] = {
    "EP": "ES", "ENQ": "NQ", "CLE": "CL", "GCE": "GC", "YM": "YM", "MYM": "MYM",
}

_active: dict[str, str] = dict(DEFAULT_ALIASES)


def configure(aliases: Mapping[str, str]) -> None:
    """Set this process's alias table (``daemon.symbol_aliases`` over the defaults).

    Process-wide on purpose: rules ask ``state.root(cid)`` and must not carry config around;
    each account process and rule process sets it once at start from its init message.
    """
    global _active
    _active = {**DEFAULT_ALIASES, **{k.upper(): v.upper() for k, v in aliases.items()}}


def active_aliases() -> Mapping[str, str]:
    """The alias table in force in this process."""
    return _active


# A futures contract name is root + month letter + 1-2 year digits (MNQZ6, ESZ25, M2KH7).
_NAME = re.compile(r"^(?P<root>[A-Z0-9]+?)(?P<month>[FGHJKMNQUVXZ])(?P<year>\d{1,2})$")


def root_from_name(name: str) -> str | None:
    """``MNQZ6`` -> ``MNQ``; None when the name does not look like a futures contract."""
    m = _NAME.match((name or "").strip().upper())
    return m.group("root") if m else None


def root_of(contract_id: str, name: str | None = None, symbol_id: str | None = None,
            aliases: Mapping[str, str] | None = None) -> str | None:
    """Best-known symbol root of a contract: its name first, then the alias of its symbol id.

    ``symbol_id`` is ``F.US.EP``-shaped; its last segment is an exchange root that the alias
    table maps (``EP`` -> ``ES``). Returns None when neither source identifies the contract,
    so callers apply their unknown-symbol policy instead of guessing. ``aliases`` None: the
    table in force (:func:`configure`).
    """
    if aliases is None:
        aliases = _active
    if name:
        root = root_from_name(name)
        if root:
            return aliases.get(root, root)
    if symbol_id:
        seg = symbol_id.strip().upper().split(".")[-1]
        if seg:
            return aliases.get(seg, seg)
    return None
