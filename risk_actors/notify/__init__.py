"""Alert delivery: channels (plugins), the router (filters, de-duplication, rate limits) and the
per-channel delivery workers.

Everything here is plain Python, so it is tested without actors; :mod:`risk_actors.notifier`
is the thin actor that feeds it ``Notify`` messages and a clock.
"""
