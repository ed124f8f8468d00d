"""The built-in analytics component: records fills and rule triggers, reports each day."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from risk_actors import messages as m
from risk_actors.analytics.stats import Fill, compute, money, summary_line, symbol_root
from risk_actors.analytics.store import AnalyticsStore
from risk_actors.calendar import trading_day
from risk_actors.components import Component, ComponentContext, DailyReport
from risk_actors.symbols import DEFAULT_ALIASES


class AnalyticsComponent(Component):
    """Trade statistics (trades, win rate, average win/loss, profit factor, largest win/loss,
    fees, net P&L, rule triggers, P&L by hour and by instrument) kept in riskd's database so
    they survive restarts; read them with ``risk-trader stats``. Sends a daily report at the
    reset. Definitions: ``docs/analytics.md``."""

    name = "analytics"
    description = "trade statistics and the daily report"
    author = "riskd"
    events = (m.TradeEvent, m.Reconciled, m.RuleTriggered)
    default_enabled = True

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self.store: AnalyticsStore | None = None
        self.context: ComponentContext | None = None

    def start(self, context: ComponentContext) -> None:
        self.context = context
        self.store = AnalyticsStore(context.db_path)

    def _aliases(self):
        return self.context.aliases or DEFAULT_ALIASES

    def _day(self, at: datetime):
        return trading_day(at, self.context.reset_time, self.context.reset_timezone)

    def _record_fill(self, account_id: int, t: m.TradeEvent) -> None:
        created = t.created if t.created.tzinfo else t.created.replace(tzinfo=timezone.utc)
        fill = Fill(account_id, t.trade_id, t.contract_id, created, money(t.pnl),
                    money(t.fees) or money(0), t.size, t.side, t.voided,
                    symbol_root(t.contract_id, self._aliases()))
        self.store.add_fill(fill, self._day(created), t.price, t.order_id)

    def on_event(self, account_id: int, item: Any, at: datetime) -> None:
        if isinstance(item, m.TradeEvent):
            self._record_fill(account_id, item)
        elif isinstance(item, m.Reconciled):
            # Fills made while riskd was not listening arrive only through reconciliation.
            for t in item.trades:
                self._record_fill(account_id, t)
        elif isinstance(item, m.RuleTriggered):
            self.store.add_trigger(account_id, at, self._day(at), item.rule, item.mode,
                                   item.reason)

    def on_day_closed(self, account_id: int, start: datetime | None,
                      end: datetime) -> DailyReport | None:
        # The day that ended is the one the instant just before the reset belongs to.
        day = self._day(end - timedelta(microseconds=1))
        fills = self.store.fills(account_id, day, day)
        triggers = [rule for rule, _mode, _reason in self.store.triggers(account_id, day, day)]
        stats = compute(fills, triggers, tz=self.context.reset_timezone,
                        reset_time=self.context.reset_time,
                        aliases=self._aliases())
        text = f"daily report {day.isoformat()} account {account_id}: {summary_line(stats)}"
        if stats.rule_triggers:
            text += "; rules triggered: " + ", ".join(
                f"{rule} x{n}" for rule, n in sorted(stats.rule_triggers.items()))
        return DailyReport(text, {"account_id": account_id, "trading_day": day.isoformat(),
                                  **stats.to_dict()})

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

