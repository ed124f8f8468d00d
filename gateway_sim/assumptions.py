"""Everything the public gateway documentation does not settle, in one place.

The ProjectX docs (gateway.docs.projectx.com) describe the REST endpoints, the hub method names
and the payload fields, but not the wire behaviour around them. Each constant below is a choice
the simulator makes where the docs are silent; the comment says what was chosen and why, so a
measurement against the real gateway can overturn one value without hunting through the code.
Values that can change at run time (``/sim/config``, ``gateway-sim serve`` options) only have
their *defaults* here. A few constants are statements, not switches (the code has only one
behaviour and the constant names it so it can be found and argued with): they are marked
"(fact)".
"""

from __future__ import annotations

# --- user-event wrapping -------------------------------------------------------------------
# The docs show bare payloads; project-x-py's position tracker also accepts
# ``{"action": 1, "data": {...}}`` ("real-time updates come as" that, per its comments), so the
# real gateway has sent wrapped events at some point. Default bare; ``--wrap-events`` or
# ``POST /sim/config {"wrapEvents": true}`` switches every user-hub event to the wrapper.
WRAP_EVENTS_DEFAULT = False
# The only action value seen in the SDK's sources; its meaning (add/update/remove?) is unknown.
WRAP_ACTION = 1

# --- negotiate -----------------------------------------------------------------------------
# pysignalr 1.3.3 always POSTs ``{hub}/negotiate`` (it has no skip-negotiation switch wired by
# the SDK) and then opens ``ws://.../hubs/x?access_token=..&id=<connectionId>``. It reads only
# ``connectionId`` (or ``url`` + ``accessToken`` for Azure). ASP.NET Core answers a client that
# sends no ``negotiateVersion`` with protocol version 0: ``connectionId`` and transports, no
# ``connectionToken``; the simulator does the same.
NEGOTIATE_VERSION = 0
NEGOTIATE_TRANSPORTS = [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]

# --- reconnect -----------------------------------------------------------------------------
# After a dropped socket pysignalr reconnects to the *same* URL, old ``id=`` included, without
# negotiating again. ASP.NET Core would answer 404 for a connection id it has forgotten, which
# pysignalr treats as a negotiation failure (re-negotiate after ~1 s, up to 10 times). The
# simulator accepts any id, known or not, so a reconnect (also after a simulator restart) is
# immediate; set False to make unknown ids answer 404 and exercise the slower path.
ACCEPT_UNKNOWN_CONNECTION_ID = True
# SignalR groups die with the connection: a reconnected socket starts with no subscriptions and
# the client must subscribe again (project-x-py does, twice). Nothing is replayed.
SUBSCRIPTIONS_SURVIVE_RECONNECT = False  # (fact)

# --- hub method dispatch -------------------------------------------------------------------
# ASP.NET Core resolves hub method names case-insensitively.
HUB_METHODS_CASE_INSENSITIVE = True
# project-x-py invokes an undocumented ``Heartbeat`` every 10 s. ASP.NET Core answers an unknown
# method with a completion error only when the invocation carries an ``invocationId``; a
# fire-and-forget one (what the SDK sends) is dropped. The simulator does exactly that and logs
# it at debug level; it is not recorded in the request/event log.
UNKNOWN_METHOD_ERROR = "Unknown hub method '{target}'"
# Market-hub subscriptions with a bare symbol ("MNQ") are resolved to the front contract; events
# still carry the real contract id. The real gateway's behaviour for a non-id is unknown.
SUBSCRIBE_ACCEPTS_SYMBOL = True
# SubscribeAccounts() takes no account id: every account visible to the token is pushed. The
# simulator has one user's worth of accounts, so every account is visible to every token.
ALL_ACCOUNTS_VISIBLE_TO_EVERY_TOKEN = True  # (fact)

# --- keep-alive ----------------------------------------------------------------------------
# ASP.NET Core's default KeepAliveInterval is 15 s; pysignalr never checks the server's pings,
# but a real client (and riskd's own watchdog) may.
SERVER_PING_INTERVAL_S = 15.0
# Periodic quotes: project-x-py force-reconnects both hubs after 30 s without market data, so the
# market hub re-sends the last quote of every subscribed contract this often (0 disables).
QUOTE_INTERVAL_MS_DEFAULT = 1000
# The handshake must arrive within this time or the socket is closed (ASP.NET Core: 15 s).
HANDSHAKE_TIMEOUT_S = 15.0

# --- GatewayLogout -------------------------------------------------------------------------
# The SDK registers a ``GatewayLogout`` handler that only logs its arguments; the payload is not
# documented. The simulator sends one argument with a reason and closes the socket normally
# (no SignalR close error, see CLOSE_WITH_ERROR_KILLS_PYSIGNALR), so the SDK reconnects.
LOGOUT_TARGET = "GatewayLogout"
LOGOUT_PAYLOAD = {"reason": "Session ended"}
# Whether a logout also invalidates the tokens issued so far. Off by default: a real logout's
# effect on the JWT is unknown, and a dead token makes pysignalr give up for good (below).
# ``POST /sim/logout {"expireTokens": true}`` turns it on for one call.
LOGOUT_EXPIRES_TOKENS_DEFAULT = False

# --- closing sockets -----------------------------------------------------------------------
# Measured in pysignalr 1.3.3: a SignalR Close message *with an error* raises ServerError out of
# the client's run task, which then dies for good (no reconnect). A plain websocket close (or a
# Close message without error) makes it reconnect at once. ``drop`` therefore closes cleanly
# by default; ``POST /sim/drop {"mode": "error"}`` sends the fatal kind on purpose.
CLOSE_WITH_ERROR_KILLS_PYSIGNALR = True  # (fact)
DROP_CLOSE_CODE = 1001  # "going away": what a server restart or load-balancer drain sends
DROP_ERROR_MESSAGE = "Server closed the connection with an error."

# --- tokens --------------------------------------------------------------------------------
# Docs: a token is valid 24 h. Expiry is checked against the real wall clock (time.time()),
# never the simulated clock, because the SDK compares ``exp`` with datetime.now().
TOKEN_LIFETIME_S_DEFAULT = 24 * 3600
# An open socket is not closed when its token expires (ASP.NET Core's default); only new
# negotiations and socket upgrades are refused with 401.
CLOSE_SOCKET_ON_TOKEN_EXPIRY = False  # (fact)
# Any non-empty userName/apiKey logs in (there is one simulated user).
ACCEPT_ANY_CREDENTIALS = True  # (fact)

# --- REST error shapes ---------------------------------------------------------------------
# The gateway answers business errors (unknown account, bad size, ...) with HTTP 200 and
# ``{"success": false, "errorCode": N, "errorMessage": "..."}``. Missing or wrong-typed fields
# are treated the same way (HTTP 200, nothing changes). A body that is not JSON at all, or not a
# JSON object, gets HTTP 400 like ASP.NET Core's model binding, with the same three fields plus
# ProblemDetails' ``title``/``status`` so both kinds of client can read it.
MALFORMED_JSON_STATUS = 400
# A bad or expired bearer: HTTP 401, empty body, ``WWW-Authenticate: Bearer`` (ASP.NET Core).
# ``/api/Status/ping`` and ``/api/Auth/loginKey`` need no bearer.
PUBLIC_PATHS = frozenset({"/api/Status/ping", "/api/Auth/loginKey"})
# errorCode when the simulator itself rejects a request before the engine sees it (missing or
# wrong-typed field). The gateway's per-endpoint error enums are not all published; the trading
# endpoints use their own "rejected" code instead (Order/place 2, cancel/modify 3,
# partialCloseContract size 5, the engine's enums). Engine errors carry the engine's own code.
ERROR_CODE_INVALID_REQUEST = 2
ERROR_CODE_LOGIN_FAILED = 3  # LoginErrorCode.InvalidCredentials
# Status/ping answers the JSON string "pong": the SDK calls response.json() on every 200.
PING_RESPONSE = "pong"
# 429s carry ``Retry-After`` in seconds; the SDK defaults to 60 when it is missing.
RETRY_AFTER_S_DEFAULT = 1

# --- trading semantics (owned by the engine, referenced here) ------------------------------
# The event order of one fill is documented and produced in gateway_sim/engine.py:
#   GatewayUserOrder(status 1) -> GatewayUserTrade -> GatewayUserOrder(status 2)
#   -> GatewayUserPosition -> GatewayUserAccount (when the balance changed).
# The hubs deliver each engine batch in that order on every socket; events are queued before
# the REST response that caused them is written, so a client may see them first.
FILL_EVENT_ORDER = (  # (fact)
    "GatewayUserOrder",
    "GatewayUserTrade",
    "GatewayUserOrder",
    "GatewayUserPosition",
    "GatewayUserAccount",
)
# Whether a closing trade's profitAndLoss already has the fees taken off (SR says yes, the
# payload also carries ``fees``). Default: no; ``POST /sim/config {"pnlIncludesFees": true}``.
PNL_INCLUDES_FEES_DEFAULT = False

# --- rate limits ---------------------------------------------------------------------------
# Docs: 200 requests / 60 s, History/retrieveBars 50 / 30 s, then HTTP 429. Counted here per user
# name (every token and every client of one user share the budget: the conservative reading),
# accepted requests only, the two buckets separately, public endpoints not at all. Off by
# default because test suites share one user across many short sessions; turn it on with
# ``serve --rate-limit`` or ``POST /sim/config {"rateLimit": true}``. The request log lets a
# benchmark check the budget after the fact either way.
RATE_LIMIT_DEFAULT = False
RATE_LIMITS = {"api": (200, 60.0), "bars": (50, 30.0)}  # bucket -> (requests, window seconds)

# --- history -------------------------------------------------------------------------------
# History/retrieveBars builds bars from the prices the simulator was given (control API, price
# paths); a bucket with no price change has no bar; volume is the number of price changes.
# Bars come newest first, as in the docs' example.
BAR_UNITS_S = {1: 1, 2: 60, 3: 3600, 4: 86400, 5: 7 * 86400, 6: 30 * 86400}
MAX_BARS = 20000
