"""Contract catalogue of the simulated ProjectX Gateway.

Ids, names and symbol ids follow the gateway's scheme (`CON.F.US.<code>.<month><yy>`, exchange
names such as `MNQZ6`, symbol ids such as `F.US.EP`). The simulated date is late November 2026,
so the equity-index front month is December 2026 (Z26), with March 2027 (H27) listed as the
inactive next quarter; crude's front month is January 2027 and gold's February 2027.

Prices are handled as integer ticks inside the simulator so that P&L is exact; this module owns
the conversion between a price and its tick count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Iterable, Mapping

__all__ = [
    "CATALOGUE",
    "Contract",
    "DEFAULT_FEES",
    "fee_table",
    "find",
    "resolve",
    "search",
]


@dataclass(frozen=True)
class Contract:
    """One tradable futures contract with the gateway's Contract fields and the sim's defaults."""

    id: str
    name: str
    description: str
    tick_size: Decimal
    tick_value: Decimal
    active: bool
    symbol_id: str
    root: str                      # the trader-facing root (ES, not EP)
    aliases: tuple[str, ...]       # other roots that find it (EP for ES)
    default_price: Decimal

    @property
    def roots(self) -> tuple[str, ...]:
        return (self.root, *self.aliases)

    @property
    def decimals(self) -> int:
        return max(0, -self.tick_size.normalize().as_tuple().exponent)

    def payload(self) -> dict:
        """The gateway's Contract/search shape."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "tickSize": float(self.tick_size),
            "tickValue": float(self.tick_value),
            "activeContract": self.active,
            "symbolId": self.symbol_id,
        }

    def to_ticks(self, price: object, field: str = "price") -> int:
        """Tick count of `price`; ValueError naming `field` if it is not a price on the grid."""
        value = to_decimal(price, field)
        ticks, rest = divmod(value, self.tick_size)
        if rest != 0:
            below = ticks * self.tick_size
            raise ValueError(
                f"{field} {_show(value)} is not on the {_show(self.tick_size)} tick grid of "
                f"{self.id} (nearest valid: {_show(below)} or {_show(below + self.tick_size)})"
            )
        return int(ticks)

    def price_of(self, ticks: int) -> Decimal:
        return self.tick_size * ticks

    def price_float(self, ticks: int) -> float:
        return float(self.price_of(ticks))


def to_decimal(value: object, field: str) -> Decimal:
    """Exact decimal of a JSON-ish number; floats go through repr so 70.01 stays 70.01."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise ValueError(f"{field} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{field} must be finite, got {value!r}")
    try:
        result = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{field} must be a number, got {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"{field} must be finite, got {value!r}")
    return result


def _show(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


_D = Decimal

_INDEX = [
    # root, gateway code, aliases, description, tick size, tick value, default price
    ("MNQ", "MNQ", (), "Micro E-mini Nasdaq-100", "0.25", "0.50", "21000"),
    ("MES", "MES", (), "Micro E-mini S&P 500", "0.25", "1.25", "6000"),
    ("ES", "EP", ("EP",), "E-mini S&P 500", "0.25", "12.50", "6000"),
    ("NQ", "ENQ", ("ENQ",), "E-mini NASDAQ-100", "0.25", "5.00", "21000"),
    ("RTY", "RTY", (), "E-mini Russell 2000", "0.10", "5.00", "2200"),
    ("M2K", "M2K", (), "Micro E-mini Russell 2000", "0.10", "0.50", "2200"),
]

_MONTHS = {"F": "January", "G": "February", "H": "March", "Z": "December"}


def _build() -> tuple[Contract, ...]:
    out: list[Contract] = []
    for root, code, aliases, desc, tick, value, price in _INDEX:
        for month, year, active in (("Z", 26, True), ("H", 27, False)):
            out.append(Contract(
                id=f"CON.F.US.{code}.{month}{year}",
                name=f"{root}{month}{year % 10}",
                description=f"{desc}: {_MONTHS[month]} 20{year}",
                tick_size=_D(tick), tick_value=_D(value), active=active,
                symbol_id=f"F.US.{code}", root=root, aliases=aliases,
                default_price=_D(price),
            ))
    out.append(Contract(
        id="CON.F.US.CLE.F27", name="CLF7", description="Crude Oil: January 2027",
        tick_size=_D("0.01"), tick_value=_D("10.00"), active=True, symbol_id="F.US.CLE",
        root="CL", aliases=("CLE",), default_price=_D("70.00"),
    ))
    out.append(Contract(
        id="CON.F.US.GCE.G27", name="GCG7", description="Gold: February 2027",
        tick_size=_D("0.10"), tick_value=_D("10.00"), active=True, symbol_id="F.US.GCE",
        root="GC", aliases=("GCE",), default_price=_D("2650.0"),
    ))
    return tuple(out)


CATALOGUE: tuple[Contract, ...] = _build()

_BY_ID = {c.id.upper(): c for c in CATALOGUE}
_FRONT_BY_ROOT = {r: c for c in CATALOGUE if c.active for r in c.roots}

# Approximate per-side, per-contract exchange + clearing + NFA fees on TopstepX.
DEFAULT_FEES: dict[str, Decimal] = {
    "MNQ": _D("0.37"), "MES": _D("0.37"), "M2K": _D("0.37"),
    "ES": _D("1.40"), "NQ": _D("1.40"), "RTY": _D("1.40"),
    "CL": _D("1.52"), "GC": _D("1.62"),
}


def find(key: object) -> Contract | None:
    """Contract by id (`CON.F.US.EP.Z26`) or by root (`ES`, `EP`: the front month), any case."""
    if not isinstance(key, str):
        return None
    k = key.strip().upper()
    return _BY_ID.get(k) or _FRONT_BY_ROOT.get(k)


def resolve(key: object) -> Contract:
    """Like find() but raises KeyError with a message naming the unknown key."""
    c = find(key)
    if c is None:
        raise KeyError(f"unknown contract {key!r} (give an id such as CON.F.US.MNQ.Z26 or a root such as MNQ)")
    return c


def search(text: str | None, limit: int = 20) -> list[Contract]:
    """Gateway-style Contract/search: substring match, exact root/name hits first, active first."""
    needle = (text or "").strip().upper()

    def hay(c: Contract) -> Iterable[str]:
        return (c.id.upper(), c.name.upper(), c.description.upper(), c.symbol_id.upper(), *c.roots)

    hits = [c for c in CATALOGUE if not needle or any(needle in h for h in hay(c))]
    hits.sort(key=lambda c: (needle not in c.roots and needle != c.name.upper(), not c.active, c.id))
    return hits[:limit]


def fee_table(overrides: Mapping[str, object] | None = None) -> dict[str, Decimal]:
    """Per-side fee by trader root, defaults overridden; unknown roots are a ValueError."""
    table = dict(DEFAULT_FEES)
    for key, value in (overrides or {}).items():
        c = find(key) if isinstance(key, str) and "." not in key else None
        if c is None:
            raise ValueError(f"fees: unknown symbol root {key!r} (known: {', '.join(sorted(DEFAULT_FEES))})")
        fee = to_decimal(value, f"fees[{key!r}]")
        if fee < 0:
            raise ValueError(f"fees[{key!r}] must be >= 0, got {value!r}")
        table[c.root] = fee
    return table
