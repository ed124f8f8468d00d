"""Keep every thespian socket of riskd on the loopback interface.

thespian (4.0.x) binds each actor's listening socket, the admin's included, to ``''`` (all
interfaces) whenever the address is "external", which is every actor of ``multiprocTCPBase``;
it has no setting for the bind address (``THESPIAN_BASE_IPADDR`` only changes the *advertised*
address). Anything that can reach the machine could then connect and have thespian unpickle
what it sends. :func:`install` is the small contained patch: it sets ``THESPIAN_BASE_IPADDR``
and replaces ``IPActorAddress.bindArgs`` so that an all-interfaces bind becomes a bind to
``127.0.0.1``. It must run before the first ``ActorSystem(...)`` of a process (daemon, CLI,
test). Actor processes are forked (thespian's default start method on Linux), so they inherit
the patched class; :func:`install` refuses another start method rather than silently not
covering the children.

Loopback alone does not keep out another *local* user: that is the admin proof's job
(:mod:`risk_actors.security`; docs/security.md). Multi-host conventions need a private network
and are not supported by this shim (it would make a worker unreachable).
"""

from __future__ import annotations

import ipaddress
import os

LOOPBACK = "127.0.0.1"
_ANY = ("", "0.0.0.0")
_installed = False


def is_loopback_host(host: str) -> bool:
    """Whether a URL's host names this machine (``localhost`` or a loopback address): where
    plain http is acceptable, since nothing crosses a network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install(host: str = LOOPBACK) -> None:
    """Patch thespian (idempotent). ``host`` must be a loopback address."""
    global _installed
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"riskd binds to loopback only, not {host!r}")
    os.environ["THESPIAN_BASE_IPADDR"] = host
    if _installed:
        return
    from thespian.system.transport.IPBase import IPActorAddress

    original = IPActorAddress.bindArgs

    def bindArgs(self):  # noqa: N802  (thespian's name)
        (name,) = original.fget(self)
        if name[0] in _ANY:
            return ((host, *name[1:]),)
        return (name,)

    IPActorAddress.bindArgs = property(bindArgs)
    IPActorAddress._riskd_loopback = host
    _installed = True


def check_capabilities(capabilities: dict) -> None:
    """The shim covers forked children only: refuse a capability that would spawn them."""
    method = capabilities.get("Process Startup Method", "fork")
    if method != "fork":
        raise ValueError(f"Process Startup Method {method!r}: riskd's loopback shim needs 'fork'")


def non_loopback_listeners(pids: set[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of TCP/UDP sockets of ``pids`` listening on a non-loopback
    address: what must stay empty (used by tests and ``riskd status --security``)."""
    import psutil
    bad = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.pid not in pids or not conn.laddr:
            continue
        listening = conn.status == psutil.CONN_LISTEN or (conn.type == 2 and not conn.raddr)
        if listening and not ipaddress.ip_address(conn.laddr.ip).is_loopback:
            bad.append((conn.pid, conn.laddr.ip, conn.laddr.port))
    return bad
