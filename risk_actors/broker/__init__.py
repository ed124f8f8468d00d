"""riskd's adapter to the ProjectX Gateway through project-x-py (the only SDK importer).

* :mod:`.settings` - ``BrokerSettings`` (shared with config);
* :mod:`.parse` - gateway payloads -> frozen events, ``PayloadError`` (pure);
* :mod:`.reconcile` - REST snapshot -> ``Reconciled`` (pure);
* :mod:`.sdk` - SDK client construction and the URL guard;
* :mod:`.logs` - SDK/pysignalr logging into loguru, token scrubbing;
* :mod:`.session` - ``BrokerSession``: the SDK on a background asyncio thread, socketpair bridge.

Importing this package does not import the SDK (~0.3 s, ~90 MB): only ``sdk`` and ``session``
do, and only when a session is built, so actors that merely exchange broker messages stay light.
"""
