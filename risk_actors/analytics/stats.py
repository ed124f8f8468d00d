"""Trade statistics: pure functions over a list of fills (no I/O, no clock).

Money is :class:`~decimal.Decimal` throughout (built from the broker's float through ``str``, so
``0.1`` stays ``0.1``) and rounded to cents only when shown; ratios are rounded to two decimals.
The exact definitions (what counts as a trade, a win, where fees go) are in ``docs/analytics.md``;
in short:

* a *fill* is one non-voided ``TradeEvent``; a *trade* is a fill that closes (a half-turn with a
  P&L); opening fills count only through their fees;
* win: P&L > 0, loss: P&L < 0, scratch: P&L == 0 (gross of fees); win rate = wins / trades;
* fees are those of every fill; net P&L = sum of trade P&L - fees;
* each fill's P&L and fees go to the hour (in the reset timezone) and the trading day of the
  fill's time, and to its symbol root, so each breakdown sums to the overall net P&L.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

import attrs

from risk_actors.calendar import DEFAULT_RESET_TIME, DEFAULT_TIMEZONE, trading_day
from risk_actors.symbols import DEFAULT_ALIASES, root_of

ZERO = Decimal("0")
CENT = Decimal("0.01")


def money(value: float | int | str | Decimal | None) -> Decimal | None:
    """A broker amount as an exact Decimal (``0.1`` -> ``Decimal('0.1')``, not its binary twin)."""
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def cents(value: Decimal | None) -> float | None:
    """Round half up to cents for display/JSON (exact in a float for any realistic amount)."""
    return None if value is None else float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def ratio(num: Decimal, den: Decimal | int, places: str = "0.01") -> float | None:
    """``num / den`` rounded (None when ``den`` is 0: undefined, not zero)."""
    if not den:
        return None
    return float((Decimal(num) / Decimal(den)).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def symbol_root(contract_id: str, aliases: Mapping[str, str] = DEFAULT_ALIASES) -> str:
    """``CON.F.US.MNQ.Z26`` -> ``MNQ`` (exchange roots through ``aliases``: ``EP`` -> ``ES``).

    Trade events carry only the contract id; its symbol-id part (``F.US.MNQ``) is what the
    alias table understands. An id of another shape is its own instrument.
    """
    parts = (contract_id or "").split(".")
    if len(parts) >= 4:
        root = root_of(contract_id, symbol_id=".".join(parts[1:4]), aliases=aliases)
        if root:
            return root
    return contract_id


@attrs.frozen
class Fill:
    """One broker fill as analytics keeps it. ``pnl`` None = an opening half-turn."""

    account_id: int
    trade_id: int
    contract_id: str
    created: datetime
    pnl: Decimal | None
    fees: Decimal
    size: int = 1
    side: int = 0
    voided: bool = False
    symbol: str = ""

    @property
    def closes(self) -> bool:
        return self.pnl is not None and not self.voided


@attrs.frozen
class Bucket:
    """Totals of one slice (an hour, an instrument, a day)."""

    trades: int = 0
    wins: int = 0
    losses: int = 0
    gross_pnl: Decimal = ZERO
    fees: Decimal = ZERO

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.fees

    def add(self, fill: Fill) -> "Bucket":
        pnl = fill.pnl if fill.closes else None
        return Bucket(self.trades + (pnl is not None),
                      self.wins + (pnl is not None and pnl > 0),
                      self.losses + (pnl is not None and pnl < 0),
                      self.gross_pnl + (pnl or ZERO), self.fees + fill.fees)

    def to_dict(self) -> dict[str, Any]:
        return {"trades": self.trades, "wins": self.wins, "losses": self.losses,
                "gross_pnl": cents(self.gross_pnl), "fees": cents(self.fees),
                "net_pnl": cents(self.net_pnl)}


@attrs.frozen
class Stats:
    """The figures of a set of fills (see the module docstring and docs/analytics.md)."""

    fills: int
    trades: int
    wins: int
    losses: int
    scratches: int
    gross_profit: Decimal       # sum of winning trades' P&L (>= 0)
    gross_loss: Decimal         # sum of losing trades' P&L (<= 0)
    fees: Decimal
    largest_win: Decimal | None
    largest_loss: Decimal | None
    rule_triggers: Mapping[str, int]
    by_hour: Mapping[int, Bucket]
    by_instrument: Mapping[str, Bucket]
    by_day: Mapping[date, Bucket]
    first_fill: datetime | None = None
    last_fill: datetime | None = None

    @property
    def gross_pnl(self) -> Decimal:
        return self.gross_profit + self.gross_loss

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.fees

    @property
    def win_rate(self) -> float | None:
        """Percent of trades that won (scratches count as trades, not wins)."""
        return ratio(Decimal(100) * self.wins, self.trades)

    @property
    def average_win(self) -> Decimal | None:
        return self.gross_profit / self.wins if self.wins else None

    @property
    def average_loss(self) -> Decimal | None:
        return self.gross_loss / self.losses if self.losses else None

    @property
    def profit_factor(self) -> float | None:
        """gross profit / |gross loss|; None when there is no loss (undefined, shown as such)."""
        return ratio(self.gross_profit, -self.gross_loss)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (money rounded to cents, hours as "HH", days as ISO dates)."""
        return {
            "fills": self.fills, "trades": self.trades, "wins": self.wins,
            "losses": self.losses, "scratches": self.scratches, "win_rate": self.win_rate,
            "average_win": cents(self.average_win), "average_loss": cents(self.average_loss),
            "profit_factor": self.profit_factor,
            "largest_win": cents(self.largest_win), "largest_loss": cents(self.largest_loss),
            "gross_profit": cents(self.gross_profit), "gross_loss": cents(self.gross_loss),
            "gross_pnl": cents(self.gross_pnl), "fees": cents(self.fees),
            "net_pnl": cents(self.net_pnl),
            "rule_triggers": dict(sorted(self.rule_triggers.items())),
            "by_hour": {f"{h:02d}": b.to_dict() for h, b in sorted(self.by_hour.items())},
            "by_instrument": {s: b.to_dict() for s, b in sorted(self.by_instrument.items())},
            "by_day": {d.isoformat(): b.to_dict() for d, b in sorted(self.by_day.items())},
            "first_fill": self.first_fill.isoformat() if self.first_fill else None,
            "last_fill": self.last_fill.isoformat() if self.last_fill else None,
        }


def compute(fills: Iterable[Fill], rule_triggers: Iterable[str] = (), *,
            tz: str = DEFAULT_TIMEZONE, reset_time: str = DEFAULT_RESET_TIME,
            aliases: Mapping[str, str] = DEFAULT_ALIASES) -> Stats:
    """The figures of ``fills`` (voided ones ignored; a trade id seen twice counts once, the
    last copy winning) and of ``rule_triggers`` (one rule name per trigger).

    Hours are those of ``tz``; days are trading days (``reset_time`` in ``tz``).
    """
    zone = ZoneInfo(tz)
    latest: dict[tuple[int, int], Fill] = {}
    for f in fills:
        latest[(f.account_id, f.trade_id)] = f
    kept = [f for f in latest.values() if not f.voided]
    wins = losses = scratches = 0
    profit = loss = fees = ZERO
    big_win: Decimal | None = None
    big_loss: Decimal | None = None
    by_hour: dict[int, Bucket] = {}
    by_inst: dict[str, Bucket] = {}
    by_day: dict[date, Bucket] = {}
    for f in kept:
        fees += f.fees
        if f.closes:
            pnl = f.pnl
            if pnl > 0:
                wins, profit = wins + 1, profit + pnl
                big_win = pnl if big_win is None else max(big_win, pnl)
            elif pnl < 0:
                losses, loss = losses + 1, loss + pnl
                big_loss = pnl if big_loss is None else min(big_loss, pnl)
            else:
                scratches += 1
        created = f.created if f.created.tzinfo else f.created.replace(tzinfo=timezone.utc)
        hour = created.astimezone(zone).hour
        sym = f.symbol or symbol_root(f.contract_id, aliases)
        day = trading_day(created, reset_time, tz)
        by_hour[hour] = by_hour.get(hour, Bucket()).add(f)
        by_inst[sym] = by_inst.get(sym, Bucket()).add(f)
        by_day[day] = by_day.get(day, Bucket()).add(f)
    counts: dict[str, int] = {}
    for rule in rule_triggers:
        counts[rule] = counts.get(rule, 0) + 1
    times = [f.created for f in kept]
    return Stats(fills=len(kept), trades=wins + losses + scratches, wins=wins, losses=losses,
                 scratches=scratches, gross_profit=profit, gross_loss=loss, fees=fees,
                 largest_win=big_win, largest_loss=big_loss, rule_triggers=counts,
                 by_hour=by_hour, by_instrument=by_inst, by_day=by_day,
                 first_fill=min(times) if times else None,
                 last_fill=max(times) if times else None)


def summary_line(s: Stats) -> str:
    """One line for people: trades, win rate, net, fees, profit factor, largest loss."""
    if not s.trades and not s.fills:
        return "no trades"
    pf = s.profit_factor
    pf_text = f"{pf:.2f}" if pf is not None else ("inf" if s.wins else "n/a")
    wr = f"{s.win_rate:.1f}%" if s.win_rate is not None else "n/a"
    big = f"{cents(s.largest_loss):+,.2f}" if s.largest_loss is not None else "none"
    return (f"{s.trades} trade(s), win rate {wr}, net {cents(s.net_pnl):+,.2f} "
            f"(gross {cents(s.gross_pnl):+,.2f}, fees {cents(s.fees):,.2f}), profit factor "
            f"{pf_text}, largest loss {big}")
