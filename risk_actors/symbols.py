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

# A futures contract name is root + month letter + 1-2 year digits (MNQZ6, ESZ25, M2KH7).
_NAME = re.compile(r"^(?P<root>[A-Z0-9]+?)(?P<month>[FGHJKMNQUVXZ])(?P<year>\d{1,2})$")


def root_from_name(name: str) -> str | None:
    """``MNQZ6`` -> ``MNQ``; None when the name does not look like a futures contract."""
    m = _NAME.match((name or "").strip().upper())
    return m.group("root") if m else None


def root_of(contract_id: str, name: str | None = None, symbol_id: str | None = None,
            aliases: Mapping[str, str] = DEFAULT_ALIASES) -> str | None:
    """Best-known symbol root of a contract: its name first, then the alias of its symbol id.

    ``symbol_id`` is ``F.US.EP``-shaped; its last segment is an exchange root that the alias
    table maps (``EP`` -> ``ES``). Returns None when neither source identifies the contract,
    so callers apply their unknown-symbol policy instead of guessing.
    """
    if name:
        root = root_from_name(name)
        if root:
            return aliases.get(root, root)
    if symbol_id:
        seg = symbol_id.strip().upper().split(".")[-1]
        if seg:
            return aliases.get(seg, seg)
    return None
