"""The built-in analytics component: trade statistics kept in riskd's SQLite file.

``stats`` is the pure arithmetic over a list of trades; ``store`` the analytics tables;
``component`` the :class:`~risk_actors.components.Component` that feeds them and writes the daily
report. ``risk-trader stats`` reads the same tables. Definitions: ``docs/analytics.md``.
"""
