"""Scenario files: a trader's actions on the simulator and what must follow, checked end to end.

A scenario (YAML, format in docs/scenarios.md) is parsed and validated completely before anything
runs, then played against a running simulator through its ``/sim`` control API only. It never
imports or talks to riskd: a black-box test starts riskd on the simulator, runs a scenario, and
the expectations judge riskd by what the simulator saw (positions, orders, the request log).

Public surface: `load_scenario`, `parse_scenario`, `run_scenario`, `Scenario`, `ScenarioError`,
`ScenarioResult`, `StepResult`, and the click command `scenario` (registered by cli.py as
``gateway-sim scenario``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import fnmatch
import json
import math
import re
import secrets
import sys
import time
import zoneinfo
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import click
import yaml

from gateway_sim.control_client import ControlClient, ControlError, ControlUnavailable

__all__ = [
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "Step",
    "StepResult",
    "load_scenario",
    "loads_scenario",
    "parse_scenario",
    "run_scenario",
    "scenario",
]

# Caps on durations: a typo such as `within_ms: 5000000` would otherwise hang CI for an hour.
MAX_MS = 600_000
DEFAULT_WITHIN_MS = 1000
POLL_S = 0.05
# Request records are appended by the server as requests arrive; give a record written just
# before the window closed time to become readable before calling it absent.
LOG_GRACE_S = 0.1
# After a price path's last scheduled price, let the simulator's timer fire before going on.
PATH_SETTLE_S = 0.05
# Same default as the rest of gateway-sim's commands (cli.DEFAULT_URL; not imported: cli imports us).
DEFAULT_URL = "http://127.0.0.1:8931"

ACTION_KINDS = (
    "create_account",
    "set_price",
    "price_path",
    "order",
    "cancel",
    "close",
    "can_trade",
    "advance_clock",
    "set_clock",
    "wait",
    "fault",
    "clear_faults",
    "drop",
    "logout",
    "tokens",
    "config",
    "mark",
)
STEP_KINDS = ACTION_KINDS + ("expect",)
EXPECT_KINDS = ("position", "orders", "account", "request", "no_request")
ORDER_TYPES = ("market", "limit", "stop", "stoplimit", "trailing")
ORDER_TYPE_CODES = {"limit": 1, "market": 2, "stoplimit": 3, "stop": 4, "trailing": 5}
SIDES = ("buy", "sell")
SIDE_CODES = {"buy": 0, "sell": 1}
FAULT_KINDS = ("5xx", "429", "401", "slow", "late", "drop", "logout")
HUB_TARGETS = ("hub:user", "hub:market", "hub:all")
HUBS = ("user", "market", "all")
DROP_MODES = ("close", "abort", "error")
OPEN_ORDER_STATUSES = (1, 6)  # Open, Pending

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_CONTRACT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ZONED = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s+([A-Za-z_]+(?:/[A-Za-z0-9_+-]+)+)$")
_MISSING: Any = object()


# ================================================================================================
# Errors and model
# ================================================================================================


class ScenarioError(Exception):
    """A scenario file is invalid; the message names the file, the step, the key and the bad value.

    Raised before anything runs, so a broken scenario never half-executes against a simulator.
    """

    def __init__(self, message: str, *, step: int | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.key = key


@dataclasses.dataclass(frozen=True)
class AccountSpec:
    """An account the scenario sets up before step 1: created, or an existing one looked up."""

    alias: str
    name: str | None = None
    balance: float | None = None
    can_trade: bool | None = None
    id: int | None = None
    existing: str | int | None = None


@dataclasses.dataclass(frozen=True)
class Step:
    """One validated step: ``kind`` is the action (or ``expect``), ``args`` its normalised fields."""

    index: int
    kind: str
    args: Mapping[str, Any]
    name: str | None = None
    label: str | None = None
    expect_error: str | bool | None = None
    line: int | None = None

    @property
    def title(self) -> str:
        return _title(self)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A parsed, fully validated scenario."""

    name: str
    description: str
    accounts: tuple[AccountSpec, ...]
    prices: tuple[tuple[str, float], ...]
    steps: tuple[Step, ...]
    source: str = "<scenario>"


# ================================================================================================
# Loading YAML
# ================================================================================================


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and remembers the line of every mapping.

    PyYAML silently keeps the last of two equal keys; in a scenario that drops a step's
    expectation without a word, which is exactly the kind of silent pass this runner exists to
    prevent.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.lines: dict[int, int] = {}

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, "found an unhashable key", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first at line {seen[key].line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def _construct_map_with_line(self, node: Any) -> Any:
        data: dict[Any, Any] = {}
        self.lines[id(data)] = node.start_mark.line + 1
        yield data
        data.update(self.construct_mapping(node))


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader._construct_map_with_line)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises `ScenarioError` naming the file on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    return loads_scenario(text, source=str(path))


def loads_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate a scenario given as YAML text."""
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # the reader rejects control characters before parsing starts
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    try:
        doc = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: the document is nested too deeply") from None
    finally:
        loader.dispose()
    return parse_scenario(doc, source=source, lines=loader.lines)


# ================================================================================================
# Validation
# ================================================================================================


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Ctx:
    """Where in the document a value sits, so every error can say so."""

    def __init__(self, source: str, where: str, step: int | None = None) -> None:
        self.source = source
        self.where = where
        self.step = step

    def error(self, key: str | None, problem: str, value: Any = _MISSING) -> ScenarioError:
        parts = [self.source, self.where]
        if key:
            parts.append(key)
        message = ": ".join(p for p in parts if p) + f": {problem}"
        if value is not _MISSING:
            message += f", got {_show(value)}"
        return ScenarioError(message, step=self.step, key=key)

    # -- shapes --------------------------------------------------------------------------------

    def mapping(self, key: str | None, value: Any, *, allow_null: bool = False) -> dict[str, Any]:
        if value is None and allow_null:
            return {}
        if not isinstance(value, dict):
            raise self.error(key, "must be a mapping", value)
        for k in value:
            if not isinstance(k, str):
                raise self.error(key, f"keys must be names, found key {_show(k)}")
        return value

    def fields(
        self,
        key: str | None,
        value: Any,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
        *,
        allow_null: bool = False,
    ) -> dict[str, Any]:
        body = self.mapping(key, value, allow_null=allow_null and not required)
        required = tuple(required)
        allowed = set(required) | set(optional)
        for k in body:
            if k not in allowed:
                raise self.error(
                    _join(key, k), f"unknown key{_did_you_mean(k, allowed)} (allowed: {', '.join(sorted(allowed))})"
                )
        for k in required:
            if k not in body:
                raise self.error(_join(key, k), "is required")
        return body

    # -- scalars -------------------------------------------------------------------------------

    def text(self, key: str, value: Any, *, pattern: re.Pattern[str] | None = None, what: str = "text") -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be non-empty {what}", value)
        if pattern is not None and not pattern.fullmatch(value):
            raise self.error(key, f"is not a valid {what}", value)
        return value

    def choice(self, key: str, value: Any, choices: Iterable[str]) -> str:
        choices = tuple(choices)
        if not isinstance(value, str) or value.lower() not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}", value)
        return value.lower()

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false", value)
        return value

    def integer(self, key: str, value: Any, *, lo: int | None = None, hi: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "must be a whole number", value)
        if lo is not None and value < lo:
            raise self.error(key, f"must be at least {lo}", value)
        if hi is not None and value > hi:
            raise self.error(key, f"must be at most {hi}", value)
        return value

    def number(
        self, key: str, value: Any, *, lo: float | None = None, positive: bool = False, hi: float | None = None
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, "must be a number", value)
        if isinstance(value, int) and abs(value) > 10**15:
            raise self.error(key, "is out of range", value)
        number = float(value)
        if not math.isfinite(number):
            raise self.error(key, "must be a finite number", value)
        if positive and number <= 0:
            raise self.error(key, "must be greater than 0", value)
        if lo is not None and number < lo:
            raise self.error(key, f"must be at least {_num(lo)}", value)
        if hi is not None and number > hi:
            raise self.error(key, f"must be at most {_num(hi)}", value)
        return number

    def ms(self, key: str, value: Any, *, positive: bool = False) -> float:
        return self.number(key, value, lo=0, hi=MAX_MS, positive=positive)

    def price(self, key: str, value: Any) -> float:
        return self.number(key, value, positive=True)

    def contract(self, key: str, value: Any) -> str:
        return self.text(
            key, value, pattern=_CONTRACT, what="contract (symbol such as MNQ or id such as CON.F.US.MNQ.Z26)"
        )


def _join(prefix: str | None, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _did_you_mean(key: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    snake = _snake(key)
    if snake != key and snake in allowed:
        return f" (did you mean {snake!r}?)"
    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Parser:
    """Validates a whole document; keeps what earlier steps defined (aliases, names, orders)."""

    def __init__(self, source: str, lines: Mapping[int, int] | None) -> None:
        self.source = source
        self.lines = lines or {}
        self.aliases: set[str] = set()
        self.refs: dict[str, int] = {}  # step name / label / mark label -> step index
        self.order_refs: dict[str, int] = {}  # same, for order steps only (cancel targets)
        self.last_anchor = 0  # 0 = the scenario's start

    def line_of(self, value: Any) -> int | None:
        return self.lines.get(id(value))

    # -- top level -----------------------------------------------------------------------------

    def parse(self, doc: Any) -> Scenario:
        top = _Ctx(self.source, "")
        if not isinstance(doc, dict):
            raise top.error(None, "a scenario must be a mapping with name, steps, ...", doc)
        body = top.fields(None, doc, required=("name", "steps"), optional=("description", "accounts", "prices"))
        name = top.text("name", body["name"]).strip()
        description = body.get("description", "")
        if description is None:
            description = ""
        if not isinstance(description, str):
            raise top.error("description", "must be text", description)
        accounts = self.parse_accounts(top, body.get("accounts"))
        prices = self.parse_prices(top, body.get("prices"))
        raw_steps = body["steps"]
        if not isinstance(raw_steps, list) or not raw_steps:
            raise top.error("steps", "must be a non-empty list of steps", raw_steps)
        steps = tuple(self.parse_step(i, raw) for i, raw in enumerate(raw_steps, start=1))
        return Scenario(name, description.strip(), accounts, prices, steps, self.source)

    def parse_accounts(self, top: _Ctx, raw: Any) -> tuple[AccountSpec, ...]:
        if raw is None:
            return ()
        ctx = _Ctx(self.source, "accounts")
        accounts = ctx.mapping(None, raw)
        specs = []
        for alias, spec in accounts.items():
            ctx.text(alias, alias, pattern=_IDENT, what="alias (letters, digits, _ or -)")
            body = ctx.fields(alias, spec, optional=("name", "balance", "can_trade", "id", "existing"), allow_null=True)
            if "existing" in body:
                if len(body) > 1:
                    raise ctx.error(
                        f"{alias}.existing",
                        "stands alone: an existing account is used as it is (drop name, balance, can_trade, id)",
                    )
                existing = body["existing"]
                if isinstance(existing, int) and not isinstance(existing, bool):
                    ctx.integer(f"{alias}.existing", existing, lo=0)
                else:
                    ctx.text(f"{alias}.existing", existing, what="account name or id")
                specs.append(AccountSpec(alias, existing=existing))
            else:
                specs.append(AccountSpec(alias, **self.account_fields(ctx, alias, body)))
            self.aliases.add(alias)
        return tuple(specs)

    def account_fields(self, ctx: _Ctx, prefix: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "name" in body:
            out["name"] = ctx.text(_join(prefix, "name"), body["name"], what="account name")
        if "balance" in body:
            out["balance"] = ctx.number(_join(prefix, "balance"), body["balance"], lo=0)
        if "can_trade" in body:
            out["can_trade"] = ctx.boolean(_join(prefix, "can_trade"), body["can_trade"])
        if "id" in body:
            out["id"] = ctx.integer(_join(prefix, "id"), body["id"], lo=0)
        return out

    def parse_prices(self, top: _Ctx, raw: Any) -> tuple[tuple[str, float], ...]:
        if raw is None:
            return ()
        ctx = _Ctx(self.source, "prices")
        prices = ctx.mapping(None, raw)
        return tuple(
            (ctx.contract(contract, contract), ctx.price(contract, price)) for contract, price in prices.items()
        )

    # -- steps ---------------------------------------------------------------------------------

    def parse_step(self, index: int, raw: Any) -> Step:
        line = self.line_of(raw)
        where = f"step {index}" + (f" (line {line})" if line else "")
        ctx = _Ctx(self.source, where, index)
        if not isinstance(raw, dict):
            raise ctx.error(None, f"a step must be a mapping with one of {', '.join(STEP_KINDS)}", raw)
        ctx.mapping(None, raw)
        kinds = [k for k in raw if k in STEP_KINDS]
        if len(kinds) != 1:
            unknown = [k for k in raw if k not in STEP_KINDS and k not in ("name", "label", "expect_error")]
            if not kinds and unknown:
                raise ctx.error(
                    unknown[0],
                    f"unknown step kind{_did_you_mean(unknown[0], STEP_KINDS)} (kinds: {', '.join(STEP_KINDS)})",
                )
            problem = "has no step kind" if not kinds else f"has several step kinds ({', '.join(kinds)}): one per step"
            raise ctx.error(None, f"{problem}; kinds: {', '.join(STEP_KINDS)}")
        kind = kinds[0]
        ctx = _Ctx(self.source, f"step {index} ({kind}" + (f", line {line})" if line else ")"), index)
        optional = ["name", "label"] + (["expect_error"] if kind not in ("expect", "wait", "mark") else [])
        for k in raw:
            if k != kind and k not in optional and not _did_you_mean(k, optional):
                # The usual cause is a field written beside the kind instead of under it.
                raise ctx.error(
                    k,
                    f"unknown key beside {kind}: (allowed: {', '.join(optional)}); fields of {kind} go inside {kind}: {{...}}",
                )
        ctx.fields(None, raw, required=(kind,), optional=optional)

        name = (
            ctx.text("name", raw["name"], pattern=_IDENT, what="step name (letters, digits, _ or -)")
            if "name" in raw
            else None
        )
        label = ctx.text("label", raw["label"], what="label") if "label" in raw else None
        expect_error: str | bool | None = None
        if "expect_error" in raw:
            value = raw["expect_error"]
            if isinstance(value, bool):
                if not value:
                    raise ctx.error(
                        "expect_error", "is true or the text the error must contain (omit it for no error)", value
                    )
                expect_error = True
            else:
                expect_error = ctx.text("expect_error", value, what="text")

        args = getattr(self, f"step_{kind}")(ctx, index, raw[kind])
        step = Step(index, kind, args, name=name, label=label, expect_error=expect_error, line=line)

        for ref_key, ref in (
            ("name", name),
            ("label", label),
            ("mark.label", args.get("label") if kind == "mark" else None),
        ):
            if ref is None:
                continue
            if ref in self.refs:
                raise ctx.error(
                    ref_key, f"is already used by step {self.refs[ref]}: step names and labels must be unique", ref
                )
            self.refs[ref] = index
            if kind == "order":
                self.order_refs[ref] = index
        if kind not in ("expect", "wait"):
            self.last_anchor = index
        return step

    def account_ref(self, ctx: _Ctx, key: str, value: Any) -> str | int:
        if isinstance(value, int) and not isinstance(value, bool):
            return ctx.integer(key, value, lo=0)
        if not isinstance(value, str):
            raise ctx.error(key, "must be an account alias or a numeric account id", value)
        if value not in self.aliases:
            known = ", ".join(sorted(self.aliases)) or "none defined"
            raise ctx.error(
                key, f"unknown account alias{_did_you_mean(value, self.aliases)} (aliases so far: {known})", value
            )
        return value

    def step_create_account(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, required=("alias",), optional=("name", "balance", "can_trade", "id"))
        alias = ctx.text("alias", body["alias"], pattern=_IDENT, what="alias (letters, digits, _ or -)")
        if alias in self.aliases:
            raise ctx.error("alias", "is already defined", alias)
        args = {"alias": alias, **self.account_fields(ctx, None, body)}
        self.aliases.add(alias)
        return args

    def step_set_price(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, required=("contract", "price"))
        return {"contract": ctx.contract("contract", body["contract"]), "price": ctx.price("price", body["price"])}

    def step_price_path(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, required=("contract", "prices", "interval_ms"), optional=("wait",))
        prices = body["prices"]
        if not isinstance(prices, list) or not prices:
            raise ctx.error("prices", "must be a non-empty list of prices", prices)
        values = [ctx.price(f"prices[{i}]", p) for i, p in enumerate(prices)]
        interval = ctx.ms("interval_ms", body["interval_ms"], positive=True)
        if interval * len(values) > MAX_MS:
            raise ctx.error("interval_ms", f"the path would play for over {MAX_MS} ms", interval)
        return {
            "contract": ctx.contract("contract", body["contract"]),
            "prices": values,
            "interval_ms": interval,
            "wait": ctx.boolean("wait", body["wait"]) if "wait" in body else False,
        }

    def step_order(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(
            None,
            raw,
            required=("account", "side", "size", "contract", "type"),
            optional=("limit", "stop", "trail", "brackets"),
        )
        order_type = ctx.choice("type", body["type"], ORDER_TYPES)
        needs = {
            "market": (),
            "limit": ("limit",),
            "stop": ("stop",),
            "stoplimit": ("limit", "stop"),
            "trailing": ("trail",),
        }[order_type]
        for price_key in ("limit", "stop", "trail"):
            if price_key in needs and price_key not in body:
                raise ctx.error(price_key, f"is required for a {order_type} order")
            if price_key not in needs and price_key in body:
                raise ctx.error(price_key, f"does not apply to a {order_type} order", body[price_key])
        args: dict[str, Any] = {
            "account": self.account_ref(ctx, "account", body["account"]),
            "side": ctx.choice("side", body["side"], SIDES),
            "size": ctx.integer("size", body["size"], lo=1, hi=100_000),
            "contract": ctx.contract("contract", body["contract"]),
            "type": order_type,
        }
        for price_key in needs:
            args[price_key] = ctx.price(price_key, body[price_key])
        if "brackets" in body:
            args["brackets"] = self.brackets(ctx, body["brackets"])
        return args

    def brackets(self, ctx: _Ctx, raw: Any) -> dict[str, dict[str, int]]:
        body = ctx.fields("brackets", raw, optional=("stop_loss", "take_profit"))
        if not body:
            raise ctx.error("brackets", "needs stop_loss and/or take_profit")
        out = {}
        # The types the simulator accepts for each leg (engine._bracket), so a wrong one fails here.
        for leg, default_type, leg_types in (
            ("stop_loss", "stop", ("stop", "trailing")),
            ("take_profit", "limit", ("limit",)),
        ):
            if leg not in body:
                continue
            key = f"brackets.{leg}"
            value = body[leg]
            if isinstance(value, dict):
                leg_body = ctx.fields(key, value, required=("ticks",), optional=("type",))
                ticks = ctx.integer(f"{key}.ticks", leg_body["ticks"], lo=-100_000, hi=100_000)
                leg_type = (
                    ctx.choice(f"{key}.type", leg_body["type"], leg_types) if "type" in leg_body else default_type
                )
            else:
                ticks = ctx.integer(key, value, lo=-100_000, hi=100_000)
                leg_type = default_type
            if ticks == 0:
                raise ctx.error(key, "ticks must not be 0", value)
            out[leg] = {"ticks": ticks, "type": ORDER_TYPE_CODES[leg_type]}
        return out

    def step_cancel(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, required=("account",), optional=("order", "all", "contract"))
        args: dict[str, Any] = {"account": self.account_ref(ctx, "account", body["account"])}
        if ("order" in body) == ("all" in body):
            raise ctx.error(None, "give either order (an order step's name, or an order id) or all: true")
        if "order" in body:
            if "contract" in body:
                raise ctx.error("contract", "applies only with all: true", body["contract"])
            order = body["order"]
            if isinstance(order, int) and not isinstance(order, bool):
                args["order_id"] = ctx.integer("order", order, lo=0)
            elif isinstance(order, str) and order in self.order_refs:
                args["order_step"] = self.order_refs[order]
                args["order_ref"] = order
            else:
                known = ", ".join(sorted(self.order_refs)) or "none"
                raise ctx.error(
                    "order",
                    f"must be an order id or the name of an earlier order step{_did_you_mean(str(order), self.order_refs)} (known: {known})",
                    order,
                )
        else:
            if ctx.boolean("all", body["all"]) is not True:
                raise ctx.error("all", "must be true (use order: to cancel one order)", body["all"])
            args["all"] = True
            if "contract" in body:
                args["contract"] = ctx.contract("contract", body["contract"])
        return args

    def step_close(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, required=("account", "contract"), optional=("size",))
        args = {
            "account": self.account_ref(ctx, "account", body["account"]),
            "contract": ctx.contract("contract", body["contract"]),
        }
        if "size" in body:
            args["size"] = ctx.integer("size", body["size"], lo=1, hi=100_000)
        return args

    def step_can_trade(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, required=("account", "value"))
        return {
            "account": self.account_ref(ctx, "account", body["account"]),
            "value": ctx.boolean("value", body["value"]),
        }

    def step_advance_clock(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, required=("seconds",))
        return {"seconds": ctx.number("seconds", body["seconds"], positive=True, hi=400 * 86400)}

    def step_set_clock(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, required=("at",))
        return {"at": _parse_instant(ctx, "at", body["at"])}

    def step_wait(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, required=("ms",))
        return {"ms": ctx.ms("ms", body["ms"])}

    def step_fault(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(
            None, raw, required=("path", "kind"), optional=("count", "retry_after", "delay_ms", "status", "applied")
        )
        kind = body["kind"]
        if isinstance(kind, int) and not isinstance(kind, bool):
            kind = str(kind)  # `kind: 429` unquoted is a YAML int
        kind = ctx.choice("kind", kind, FAULT_KINDS)
        path = ctx.text("path", body["path"], what="path")
        hub = path.startswith("hub:")
        if hub and path not in HUB_TARGETS:
            raise ctx.error("path", f"a hub fault targets one of {', '.join(HUB_TARGETS)}", path)
        if not hub and path != "*" and not path.startswith("/api/"):
            raise ctx.error(
                "path",
                "must be a REST path such as /api/Position/closeContract, * (every REST path) or hub:user|hub:market|hub:all",
                path,
            )
        if kind == "logout" and not hub:
            raise ctx.error("kind", "logout applies to a hub (hub:user, hub:market, hub:all)", kind)
        args: dict[str, Any] = {
            "path": path,
            "kind": kind,
            "count": ctx.integer("count", body.get("count", 1), lo=1, hi=100_000),
        }
        if kind == "late" and hub:
            raise ctx.error("kind", "late applies to a REST path (a hub has no answer to hold back)", kind)
        for key, only, lo, hi in (
            ("retry_after", ("429",), 0, 3600),
            ("delay_ms", ("slow", "late"), 0, MAX_MS),
            ("status", ("5xx",), 500, 599),
        ):
            if key in body:
                if kind not in only:
                    raise ctx.error(key, f"applies only to kind {' or '.join(only)}", body[key])
                args[key] = ctx.integer(key, body[key], lo=lo, hi=hi)
        if "applied" in body:
            if kind not in ("5xx", "drop") or hub:
                raise ctx.error("applied", "applies only to 5xx and drop faults on REST paths", body["applied"])
            args["applied"] = ctx.boolean("applied", body["applied"])
        return args

    def step_clear_faults(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        ctx.fields(None, raw, allow_null=True)
        return {}

    def step_drop(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, optional=("hub", "mode"), allow_null=True)
        args = {"hub": ctx.choice("hub", body["hub"], HUBS) if "hub" in body else "all"}
        if "mode" in body:
            args["mode"] = ctx.choice("mode", body["mode"], DROP_MODES)
        return args

    def step_logout(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, optional=("hub", "expire_tokens"), allow_null=True)
        args: dict[str, Any] = {"hub": ctx.choice("hub", body["hub"], HUBS) if "hub" in body else "all"}
        if "expire_tokens" in body:
            args["expire_tokens"] = ctx.boolean("expire_tokens", body["expire_tokens"])
        return args

    def step_tokens(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, optional=("expires_in", "expire_all"))
        if not body:
            raise ctx.error(None, "needs expires_in (seconds) and/or expire_all: true")
        args: dict[str, Any] = {}
        if "expires_in" in body:
            args["expires_in"] = ctx.number("expires_in", body["expires_in"], positive=True, hi=400 * 86400)
        if "expire_all" in body:
            args["expire_all"] = ctx.boolean("expire_all", body["expire_all"])
        return args

    def step_config(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, optional=("wrap_events", "pnl_includes_fees", "quote_interval_ms"))
        if not body:
            raise ctx.error(None, "needs at least one of wrap_events, pnl_includes_fees, quote_interval_ms")
        args: dict[str, Any] = {}
        for key in ("wrap_events", "pnl_includes_fees"):
            if key in body:
                args[key] = ctx.boolean(key, body[key])
        if "quote_interval_ms" in body:
            args["quote_interval_ms"] = ctx.integer("quote_interval_ms", body["quote_interval_ms"], lo=1, hi=MAX_MS)
        return args

    def step_mark(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.fields(None, raw, required=("label",))
        return {"label": ctx.text("label", body["label"], what="label")}

    # -- expectations --------------------------------------------------------------------------

    def step_expect(self, ctx: _Ctx, index: int, raw: Any) -> dict[str, Any]:
        body = ctx.mapping(None, raw)
        kinds = [k for k in body if k in EXPECT_KINDS]
        if len(kinds) != 1:
            unknown = [k for k in body if k not in EXPECT_KINDS and k not in ("within_ms", "for_ms", "after_step")]
            if not kinds and unknown:
                raise ctx.error(
                    unknown[0],
                    f"unknown expectation{_did_you_mean(unknown[0], EXPECT_KINDS)} (kinds: {', '.join(EXPECT_KINDS)})",
                )
            problem = (
                "names no expectation"
                if not kinds
                else f"names several expectations ({', '.join(kinds)}): one per step"
            )
            raise ctx.error(None, f"{problem}; kinds: {', '.join(EXPECT_KINDS)}")
        what = kinds[0]
        if isinstance(body[what], dict):
            for modifier in ("within_ms", "for_ms", "after_step"):
                if modifier in body[what]:
                    raise ctx.error(
                        f"{what}.{modifier}", f"belongs beside {what}:, directly under expect:, not inside it"
                    )
        timed = {"request": ("within_ms", "after_step"), "no_request": ("for_ms", "after_step")}.get(
            what, ("within_ms",)
        )
        ctx.fields(None, body, required=(what,) + (("for_ms",) if what == "no_request" else ()), optional=timed)
        args: dict[str, Any] = {"what": what}
        args.update(getattr(self, f"expect_{what}")(ctx, body[what]))
        if "within_ms" in timed:
            args["within_ms"] = ctx.ms("within_ms", body.get("within_ms", DEFAULT_WITHIN_MS))
        if what == "no_request":
            args["for_ms"] = ctx.ms("for_ms", body["for_ms"], positive=True)
        if "after_step" in timed:
            args["after_step"] = (
                self.anchor(ctx, index, body["after_step"]) if "after_step" in body else self.last_anchor
            )
        return args

    def anchor(self, ctx: _Ctx, index: int, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value < index:
                raise ctx.error("after_step", f"must be an earlier step number (1 to {index - 1})", value)
            return value
        if isinstance(value, str) and value in self.refs:
            return self.refs[value]
        known = ", ".join(sorted(self.refs)) or "none"
        raise ctx.error(
            "after_step",
            f"must be an earlier step's number, name or label{_did_you_mean(str(value), self.refs)} (known: {known})",
            value,
        )

    def expect_position(self, ctx: _Ctx, raw: Any) -> dict[str, Any]:
        body = ctx.fields("position", raw, required=("account", "contract", "size"), optional=("side", "average_price"))
        size = ctx.integer("position.size", body["size"], lo=-100_000, hi=100_000)
        if "side" in body:
            side = ctx.choice("position.side", body["side"], ("long", "short"))
            if size <= 0:
                raise ctx.error(
                    "position.size", f"with side {side} give a positive size (size 0 alone means flat)", size
                )
            size = size if side == "long" else -size
        args = {
            "account": self.account_ref(ctx, "position.account", body["account"]),
            "contract": ctx.contract("position.contract", body["contract"]),
            "size": size,
        }
        if "average_price" in body:
            if size == 0:
                raise ctx.error("position.average_price", "a flat position has no average price", body["average_price"])
            args["average_price"] = ctx.price("position.average_price", body["average_price"])
        return args

    def expect_orders(self, ctx: _Ctx, raw: Any) -> dict[str, Any]:
        body = ctx.fields(
            "orders", raw, required=("account", "count"), optional=("contract", "type", "side", "size", "limit", "stop")
        )
        args: dict[str, Any] = {
            "account": self.account_ref(ctx, "orders.account", body["account"]),
            "count": ctx.integer("orders.count", body["count"], lo=0, hi=100_000),
        }
        if "contract" in body:
            args["contract"] = ctx.contract("orders.contract", body["contract"])
        if "type" in body:
            args["type"] = ctx.choice("orders.type", body["type"], ORDER_TYPES)
        if "side" in body:
            args["side"] = ctx.choice("orders.side", body["side"], SIDES)
        if "size" in body:
            args["size"] = ctx.integer("orders.size", body["size"], lo=1, hi=100_000)
        for key in ("limit", "stop"):
            if key in body:
                args[key] = ctx.price(f"orders.{key}", body[key])
        return args

    def expect_account(self, ctx: _Ctx, raw: Any) -> dict[str, Any]:
        body = ctx.fields("account", raw, required=("account",), optional=("can_trade", "balance"))
        if len(body) == 1:
            raise ctx.error("account", "needs can_trade and/or balance to check")
        args: dict[str, Any] = {"account": self.account_ref(ctx, "account.account", body["account"])}
        if "can_trade" in body:
            args["can_trade"] = ctx.boolean("account.can_trade", body["can_trade"])
        if "balance" in body:
            args["balance"] = ctx.number("account.balance", body["balance"])
        return args

    def expect_request(self, ctx: _Ctx, raw: Any, what: str = "request") -> dict[str, Any]:
        optional = ["account", "contract", "body", "status", "success"] + (["count"] if what == "request" else [])
        body = ctx.fields(what, raw, required=("path",), optional=optional)
        paths = body["path"]
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not paths:
            raise ctx.error(
                f"{what}.path",
                "must be a REST path such as /api/Position/closeContract, or a list of them",
                body["path"],
            )
        for i, path in enumerate(paths):
            key = f"{what}.path" if len(paths) == 1 else f"{what}.path[{i}]"
            if not isinstance(path, str) or not path.startswith("/"):
                raise ctx.error(key, "must be a REST path starting with / (globs * ? allowed)", path)
        args: dict[str, Any] = {"paths": list(paths)}
        if "account" in body:
            args["account"] = self.account_ref(ctx, f"{what}.account", body["account"])
        if "contract" in body:
            args["contract"] = ctx.contract(f"{what}.contract", body["contract"])
        if "body" in body:
            args["body"] = ctx.mapping(f"{what}.body", body["body"])
        if "status" in body:
            args["status"] = ctx.integer(f"{what}.status", body["status"], lo=100, hi=599)
        if "success" in body:
            args["success"] = ctx.boolean(f"{what}.success", body["success"])
        if "count" in body:
            args["count"] = ctx.integer(f"{what}.count", body["count"], lo=1, hi=100_000)
        return args

    def expect_no_request(self, ctx: _Ctx, raw: Any) -> dict[str, Any]:
        return self.expect_request(ctx, raw, what="no_request")


def _parse_instant(ctx: _Ctx, key: str, value: Any) -> str:
    """An aware instant as ISO text in UTC. Naive times are refused: a scenario about session
    hours (rules 009) is wrong by an hour the moment someone reads a bare time in another zone."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ctx.error(
                key,
                "needs a UTC offset or a zone, e.g. 2025-01-21T16:30:00-06:00 or '2025-01-21 16:30 America/Chicago'",
                value,
            )
        try:
            return value.astimezone(dt.timezone.utc).isoformat()
        except OverflowError:
            raise ctx.error(key, "is out of range", value) from None
    if not isinstance(value, str):
        raise ctx.error(
            key, "must be a time such as 2025-01-21T16:30:00-06:00 or '2025-01-21 16:30 America/Chicago'", value
        )
    zoned = _ZONED.match(value.strip())
    if zoned:
        try:
            zone = zoneinfo.ZoneInfo(zoned.group(2))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ctx.error(key, f"unknown time zone {zoned.group(2)!r}", value) from None
        try:
            local = dt.datetime.fromisoformat(zoned.group(1).replace(" ", "T"))
            return local.replace(tzinfo=zone).astimezone(dt.timezone.utc).isoformat()
        except (ValueError, OverflowError):
            raise ctx.error(key, "is not a valid date and time", value) from None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ctx.error(
            key, "must be a time such as 2025-01-21T16:30:00-06:00 or '2025-01-21 16:30 America/Chicago'", value
        ) from None
    if parsed.tzinfo is None:
        raise ctx.error(
            key,
            "needs a UTC offset or a zone, e.g. 2025-01-21T16:30:00-06:00 or '2025-01-21 16:30 America/Chicago'",
            value,
        )
    try:
        return parsed.astimezone(dt.timezone.utc).isoformat()
    except OverflowError:
        raise ctx.error(key, "is out of range", value) from None


def parse_scenario(doc: Any, source: str = "<scenario>", lines: Mapping[int, int] | None = None) -> Scenario:
    """Validate an already-loaded document; raises `ScenarioError` and nothing else on bad input."""
    try:
        return _Parser(source, lines).parse(doc)
    except ScenarioError:
        raise
    except RecursionError:
        raise ScenarioError(f"{source}: the document is nested too deeply") from None


# ================================================================================================
# Describing steps
# ================================================================================================


def _num(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _signed(size: int) -> str:
    return f"+{size}" if size > 0 else str(size)


def _acct(ref: str | int) -> str:
    return f"#{ref}" if isinstance(ref, int) else ref


def _anchor_text(index: int) -> str:
    return f"step {index}" if index else "the start"


def _title(step: Step) -> str:
    a = step.args
    k = step.kind
    if k == "create_account":
        extra = [
            f"{f} {_num(a[f]) if f == 'balance' else str(a[f]).lower()}"
            for f in ("name", "balance", "can_trade", "id")
            if f in a
        ]
        return f"create account {a['alias']}" + (f" ({', '.join(extra)})" if extra else "")
    if k == "set_price":
        return f"set price {a['contract']} {_num(a['price'])}"
    if k == "price_path":
        shown = " ".join(_num(p) for p in a["prices"][:6]) + (" ..." if len(a["prices"]) > 6 else "")
        return f"price path {a['contract']} {shown} every {_num(a['interval_ms'])} ms"
    if k == "order":
        prices = " ".join(f"{p}={_num(a[p])}" for p in ("limit", "stop", "trail") if p in a)
        text = f"order {_acct(a['account'])} {a['side']} {a['size']} {a['contract']} {a['type']}" + (
            f" {prices}" if prices else ""
        )
        if "brackets" in a:
            legs = {"stop_loss": "SL", "take_profit": "TP"}
            text += " brackets " + " ".join(f"{legs[leg]} {v['ticks']}" for leg, v in a["brackets"].items())
        return text
    if k == "cancel":
        if a.get("all"):
            return f"cancel {_acct(a['account'])} all orders" + (f" on {a['contract']}" if "contract" in a else "")
        return f"cancel {_acct(a['account'])} order {a.get('order_ref', a.get('order_id'))}"
    if k == "close":
        return f"close {_acct(a['account'])} {a['contract']}" + (f" size {a['size']}" if "size" in a else "")
    if k == "can_trade":
        return f"can_trade {_acct(a['account'])} {str(a['value']).lower()}"
    if k == "advance_clock":
        return f"advance clock {_num(a['seconds'])} s"
    if k == "set_clock":
        return f"set clock {a['at']}"
    if k == "wait":
        return f"wait {_num(a['ms'])} ms"
    if k == "fault":
        extra = "".join(f" {f} {str(a[f]).lower()}" for f in ("retry_after", "delay_ms", "status", "applied") if f in a)
        return f"fault {a['kind']} on {a['path']} x{a['count']}{extra}"
    if k == "clear_faults":
        return "clear faults"
    if k == "drop":
        return f"drop {a['hub']} hub" + ("s" if a["hub"] == "all" else "") + (f" ({a['mode']})" if "mode" in a else "")
    if k == "logout":
        extra = (
            " and expire tokens"
            if a.get("expire_tokens")
            else " keeping tokens" if a.get("expire_tokens") is False else ""
        )
        return f"logout (GatewayLogout) on {a['hub']} hub" + ("s" if a["hub"] == "all" else "") + extra
    if k == "tokens":
        return "tokens " + " ".join(f"{f} {str(v).lower() if isinstance(v, bool) else _num(v)}" for f, v in a.items())
    if k == "config":
        return "config " + " ".join(f"{f} {str(v).lower() if isinstance(v, bool) else v}" for f, v in a.items())
    if k == "mark":
        return f"mark {a['label']!r}"
    return _expect_title(a)


def _expect_title(a: Mapping[str, Any]) -> str:
    what = a["what"]
    if what == "position":
        size = "flat" if a["size"] == 0 else f"size {_signed(a['size'])}"
        avg = f" @{_num(a['average_price'])}" if "average_price" in a else ""
        return f"expect position {_acct(a['account'])} {a['contract']} {size}{avg} within {_num(a['within_ms'])} ms"
    if what == "orders":
        shown = {
            "size": lambda v: f"size {v}",
            "limit": lambda v: f"limit={_num(v)}",
            "stop": lambda v: f"stop={_num(v)}",
        }
        filters = " ".join(
            shown.get(f, str)(a[f]) for f in ("contract", "side", "type", "size", "limit", "stop") if f in a
        )
        head = f"expect orders {_acct(a['account'])}" + (f" {filters}" if filters else "")
        return f"{head} count {a['count']} within {_num(a['within_ms'])} ms"
    if what == "account":
        checks = " ".join(
            f"{f} {str(a[f]).lower() if f == 'can_trade' else _num(a[f])}" for f in ("can_trade", "balance") if f in a
        )
        return f"expect account {_acct(a['account'])} {checks} within {_num(a['within_ms'])} ms"
    path = "|".join(a["paths"])
    filters = "".join(f" {v}" for v in (_acct(a["account"]) if "account" in a else None, a.get("contract")) if v)
    if "body" in a:
        filters += " " + json.dumps(a["body"], separators=(",", ":"), default=str)
    if "status" in a:
        filters += f" status {a['status']}"
    if "success" in a:
        filters += f" success {str(a['success']).lower()}"
    if what == "request":
        count = f" x{a['count']}" if "count" in a else ""
        return (
            f"expect request {path}{filters}{count} within {_num(a['within_ms'])} ms of {_anchor_text(a['after_step'])}"
        )
    return f"expect no_request {path}{filters} for {_num(a['for_ms'])} ms after {_anchor_text(a['after_step'])}"


# ================================================================================================
# Results
# ================================================================================================


@dataclasses.dataclass
class StepResult:
    """What happened to one step: status ``ok``, ``failed`` (an expectation did not hold),
    ``error`` (the simulator refused or failed a call) or ``skipped`` (an earlier step errored)."""

    index: int
    kind: str
    title: str
    status: str
    message: str = ""
    elapsed_ms: float = 0.0
    name: str | None = None
    label: str | None = None
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def describe(self) -> str:
        where = "setup" if self.index == 0 else f"step {self.index}"
        return f"{where} {self.title}: {self.message}" if self.message else f"{where} {self.title}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ScenarioResult:
    """Outcome of one run; ``passed`` is true only if every step ran and every expectation held."""

    name: str
    source: str
    url: str
    run_id: str
    steps: list[StepResult] = dataclasses.field(default_factory=list)
    setup: list[StepResult] = dataclasses.field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def failures(self) -> list[StepResult]:
        return [r for r in self.setup + self.steps if r.status in ("failed", "error")]

    @property
    def passed(self) -> bool:
        return not self.failures and all(r.status == "ok" for r in self.steps)

    @property
    def expectations(self) -> list[StepResult]:
        return [r for r in self.steps if r.kind == "expect"]

    def summary(self) -> str:
        expects = self.expectations
        held = sum(1 for r in expects if r.status == "ok")
        errors = sum(1 for r in self.setup + self.steps if r.status == "error")
        skipped = sum(1 for r in self.steps if r.status == "skipped")
        parts = [f"{len(self.steps)} steps", f"{held}/{len(expects)} expectations held"]
        if errors:
            parts.append(f"{errors} error{'s' if errors > 1 else ''}")
        if skipped:
            parts.append(f"{skipped} skipped")
        verdict = "PASSED" if self.passed else "FAILED"
        return f"{verdict} {self.name}: {', '.join(parts)} in {self.duration_ms / 1000:.2f} s"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.source,
            "url": self.url,
            "run_id": self.run_id,
            "passed": self.passed,
            "duration_ms": round(self.duration_ms, 1),
            "failures": [r.describe for r in self.failures],
            "setup": [r.to_dict() for r in self.setup],
            "steps": [r.to_dict() for r in self.steps],
        }


class _Failed(Exception):
    """An expectation did not hold; ``detail`` is what was seen, for the JSON report."""

    def __init__(self, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.detail = detail or {}


# ================================================================================================
# Running
# ================================================================================================


class Reporter:
    """Receives progress; the base class is silent (tests, --json)."""

    def start(self, scenario: Scenario, url: str) -> None: ...

    def step_started(self, index: int, total: int, title: str) -> None: ...

    def step_finished(self, result: StepResult) -> None: ...

    def finished(self, result: ScenarioResult) -> None: ...


class ConsoleReporter(Reporter):
    """One line per step, test-runner style; failures repeated at the end so they are not scrolled away."""

    def __init__(self, echo: Callable[..., None] = click.echo, quiet: bool = False) -> None:
        self.echo = echo
        self.quiet = quiet
        self._open = False

    def start(self, scenario: Scenario, url: str) -> None:
        if not self.quiet:
            self.echo(f"scenario {scenario.name!r} ({scenario.source}) on {url}")

    def step_started(self, index: int, total: int, title: str) -> None:
        if not self.quiet:
            width = len(str(total))
            where = "setup" if index == 0 else f"{index:>{width}}/{total}"
            self.echo(f"  {where} {title} ... ", nl=False)
            self._open = True

    def step_finished(self, result: StepResult) -> None:
        if self.quiet:
            return
        if not self._open:
            self.echo("  " + result.title + " ... ", nl=False)
        self._open = False
        text = {"ok": "ok", "failed": "FAILED", "error": "ERROR", "skipped": "skipped"}[result.status]
        note = f" {result.message}" if result.status == "ok" and result.message else ""
        self.echo(f"{text}{note} ({result.elapsed_ms:.0f} ms)" if result.status != "skipped" else text)
        if result.status in ("failed", "error"):
            self.echo(f"      {result.message}")

    def finished(self, result: ScenarioResult) -> None:
        failures = result.failures
        if failures:
            if not self.quiet:
                self.echo("")
            for failure in failures:
                self.echo(f"FAILED {failure.describe}")
        self.echo(result.summary())


class _Runner:
    def __init__(self, scenario: Scenario, client: ControlClient, reporter: Reporter, fail_fast: bool) -> None:
        self.scenario = scenario
        self.client = client
        self.reporter = reporter
        self.fail_fast = fail_fast
        self.run_id = secrets.token_hex(3)
        self.accounts: dict[str, int] = {}
        self.order_ids: dict[int, int] = {}  # order step index -> order id
        self.contract_ids: dict[str, str] = {}  # symbol (upper) -> contract id the simulator resolved
        self.mark_labels: dict[int, str] = {}  # step index -> label posted before it (0 = start)
        self.mark_times: dict[int, float] = {}  # step index -> simulator monotonic time of its mark
        self.mark_cursor = 0
        self.request_cursor: int | None = None
        self.requests: dict[int, dict[str, Any]] = {}

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> ScenarioResult:
        sc = self.scenario
        result = ScenarioResult(sc.name, sc.source, self.client.url, self.run_id)
        started = time.monotonic()
        self.reporter.start(sc, self.client.url)
        ok = self.run_setup(result)
        total = len(sc.steps)
        for step in sc.steps:
            if not ok:
                result.steps.append(
                    StepResult(step.index, step.kind, step.title, "skipped", name=step.name, label=step.label)
                )
                self.reporter.step_finished(result.steps[-1])
                continue
            self.reporter.step_started(step.index, total, step.title)
            step_result = self.run_step(step)
            result.steps.append(step_result)
            self.reporter.step_finished(step_result)
            if step_result.status == "error" or (step_result.status == "failed" and self.fail_fast):
                ok = False  # later steps build on this one: running them would only report noise
        result.duration_ms = (time.monotonic() - started) * 1000
        self.reporter.finished(result)
        return result

    def run_setup(self, result: ScenarioResult) -> bool:
        sc = self.scenario
        actions: list[tuple[str, Callable[[], str]]] = [("mark start", self.mark_start)]
        actions += [(f"account {spec.alias}", lambda spec=spec: self.setup_account(spec)) for spec in sc.accounts]
        actions += [(f"price {c} {_num(p)}", lambda c=c, p=p: self.set_price(c, p)) for c, p in sc.prices]
        for title, action in actions:
            t0 = time.monotonic()
            try:
                note = action()
            except (ControlError, _Failed) as exc:
                res = StepResult(0, "setup", title, "error", str(exc), (time.monotonic() - t0) * 1000)
                result.setup.append(res)
                self.reporter.step_finished(res)
                return False
            res = StepResult(0, "setup", title, "ok", note, (time.monotonic() - t0) * 1000)
            result.setup.append(res)
            if title != "mark start":
                self.reporter.step_started(0, len(sc.steps), title)
                self.reporter.step_finished(res)
        return True

    def mark_start(self) -> str:
        self.post_mark(0, f"scenario {self.scenario.name!r} run {self.run_id} start")
        return ""

    def setup_account(self, spec: AccountSpec) -> str:
        if spec.existing is not None:
            accounts = self.client.accounts()
            for acc in accounts:
                if acc.get("id") == spec.existing or (
                    isinstance(spec.existing, str) and acc.get("name") == spec.existing
                ):
                    self.accounts[spec.alias] = int(acc["id"])
                    return f"= existing #{acc['id']} {acc.get('name')!r}"
            have = ", ".join(f"#{a.get('id')} {a.get('name')!r}" for a in accounts) or "none"
            raise _Failed(f"no simulator account {spec.existing!r} (have: {have})")
        name = spec.name or f"{spec.alias}-{self.run_id}"
        account = self.client.create_account(name, spec.balance, spec.can_trade, spec.id)
        if "id" not in account:
            raise _Failed(f"POST /sim/accounts answered without an id: {account!r}")
        self.accounts[spec.alias] = int(account["id"])
        return f"= #{account['id']} {name!r}"

    def set_price(self, contract: str, price: float) -> str:
        answer = self.client.set_price(contract, price)
        contract_id = answer.get("contractId") if isinstance(answer, dict) else None
        if isinstance(contract_id, str):
            self.contract_ids[contract.upper()] = contract_id
            return f"({contract_id})" if contract_id != contract else ""
        return ""

    def run_step(self, step: Step) -> StepResult:
        t0 = time.monotonic()

        def done(status: str, message: str = "", detail: dict[str, Any] | None = None) -> StepResult:
            return StepResult(
                step.index,
                step.kind,
                step.title,
                status,
                message,
                (time.monotonic() - t0) * 1000,
                step.name,
                step.label,
                detail or {},
            )

        try:
            self.post_mark(
                step.index,
                f"scenario run {self.run_id} step {step.index}: {step.title}"
                + (f" [{step.label or step.name}]" if step.label or step.name else ""),
            )
        except ControlError as exc:
            return done("error", str(exc))
        try:
            note = getattr(self, f"do_{step.kind}")(step)
        except _Failed as exc:
            return done("failed" if step.kind == "expect" else "error", str(exc), exc.detail)
        except ControlUnavailable as exc:
            return done("error", str(exc))
        except ControlError as exc:
            if step.expect_error is True or (
                isinstance(step.expect_error, str) and step.expect_error.lower() in str(exc).lower()
            ):
                return done("ok", f"refused as expected: {exc.message}")
            if step.expect_error:
                return done("error", f"refused, but not with {step.expect_error!r}: {exc}")
            return done("error", str(exc))
        if step.expect_error:
            return done(
                "error",
                "the simulator accepted it, but the step expects an error"
                + (f" ({step.expect_error!r})" if isinstance(step.expect_error, str) else ""),
            )
        return done("ok", note or "")

    # -- marks and the log ---------------------------------------------------------------------

    def post_mark(self, index: int, label: str) -> None:
        self.mark_labels[index] = label
        answer = self.client.mark(label)
        # The contract does not promise the mark's record in the answer; use it when present and
        # fall back to reading the log (mark_time) otherwise.
        if isinstance(answer, dict):
            record = answer.get("record", answer)
            if isinstance(record, dict) and _is_number(record.get("t")):
                self.mark_times[index] = float(record["t"])
                if self.request_cursor is None and isinstance(record.get("n"), int):
                    self.request_cursor = record["n"]

    def mark_time(self, index: int) -> float:
        if index in self.mark_times:
            return self.mark_times[index]
        wanted = {label: i for i, label in self.mark_labels.items() if i not in self.mark_times}
        for attempt in range(20):
            for records in self.log_pages("mark", self.mark_cursor, "mark_cursor"):
                for record in records:
                    label = _record_label(record)
                    if isinstance(label, str) and label in wanted and _is_number(record.get("t")):
                        i = wanted.pop(label)
                        self.mark_times[i] = float(record["t"])
                        if i == 0 and self.request_cursor is None and isinstance(record.get("n"), int):
                            self.request_cursor = record["n"]
            if index in self.mark_times:
                return self.mark_times[index]
            time.sleep(0.02 * (attempt + 1))
        raise _Failed(
            f"the simulator log has no mark {self.mark_labels.get(index)!r}: cannot time requests against {_anchor_text(index)}"
        )

    def read_requests(self) -> list[dict[str, Any]]:
        if self.request_cursor is None:
            self.mark_time(0)  # learns where this run's records start
        start = self.request_cursor or 0
        # The server writes a request's record on arrival and its status when it answers: read a
        # record again until it has one, or `status:`/`success:` filters would never see it.
        in_flight = [n for n, r in self.requests.items() if r.get("status") is None]
        if in_flight:
            start = min(start, min(in_flight))
        for records in self.log_pages("request", start, "request_cursor"):
            for record in records:
                if record.get("kind", "request") == "request" and isinstance(record.get("n"), int):
                    self.requests[record["n"]] = record
        return [self.requests[n] for n in sorted(self.requests)]

    def log_pages(self, kind: str, since: int, cursor_attr: str) -> Iterable[list[dict[str, Any]]]:
        """Read the log from ``since`` to its end, page by page (the server may cap a page)."""
        for _ in range(1000):
            page = self.client.log(since=since, kind=kind)
            records = [r for r in page.get("records") or [] if isinstance(r, dict)]
            nxt = page.get("next")
            if isinstance(nxt, int) and nxt > since:
                since = nxt
                setattr(self, cursor_attr, nxt)
            yield records
            if not records or not isinstance(nxt, int):
                return

    def sim_now(self) -> float:
        value = self.client.clock().get("monotonic")
        if not _is_number(value):
            raise _Failed(f"GET /sim/clock answered without a monotonic time: {value!r}")
        return float(value)

    # -- helpers -------------------------------------------------------------------------------

    def account_id(self, ref: str | int) -> int:
        return ref if isinstance(ref, int) else self.accounts[ref]

    def contract_matches(self, spec: str, contract_id: Any) -> bool:
        """Does a contract named in the scenario (symbol or id) denote this gateway contract id?"""
        if not isinstance(contract_id, str):
            return False
        if spec.lower() == contract_id.lower():
            return True
        if spec.upper() in _symbols_of(contract_id):
            return True
        # The id the simulator itself resolved a symbol to (set_price answers) covers contracts
        # the local catalogue does not know.
        return self.contract_ids.get(spec.upper()) == contract_id

    # -- actions -------------------------------------------------------------------------------

    def do_create_account(self, step: Step) -> str:
        a = step.args
        spec = AccountSpec(a["alias"], a.get("name"), a.get("balance"), a.get("can_trade"), a.get("id"))
        return self.setup_account(spec)

    def do_set_price(self, step: Step) -> str:
        return self.set_price(step.args["contract"], step.args["price"])

    def do_price_path(self, step: Step) -> str:
        a = step.args
        interval = a["interval_ms"]
        self.client.price_path(a["contract"], a["prices"], int(interval) if interval.is_integer() else interval)
        if a["wait"]:
            # The first price is set at once, each later one an interval after the previous.
            time.sleep((len(a["prices"]) - 1) * a["interval_ms"] / 1000 + PATH_SETTLE_S)
        return ""

    def do_order(self, step: Step) -> str:
        a = step.args
        brackets = a.get("brackets", {})
        order_id = self.client.place_order(
            self.account_id(a["account"]),
            a["contract"],
            a["type"],
            a["side"],
            a["size"],
            limit_price=a.get("limit"),
            stop_price=a.get("stop"),
            trail_price=a.get("trail"),
            stop_loss_bracket=brackets.get("stop_loss"),
            take_profit_bracket=brackets.get("take_profit"),
        )
        self.order_ids[step.index] = order_id
        return f"order #{order_id}"

    def do_cancel(self, step: Step) -> str:
        a = step.args
        account = self.account_id(a["account"])
        if not a.get("all"):
            if "order_id" in a:
                order_id = a["order_id"]
            elif a["order_step"] in self.order_ids:
                order_id = self.order_ids[a["order_step"]]
            else:
                raise _Failed(f"step {a['order_step']} placed no order to cancel")
            self.client.cancel_order(account, order_id)
            return f"order #{order_id}"
        orders = [
            o
            for o in _open_orders(self.client.state(account))
            if "contract" not in a or self.contract_matches(a["contract"], o.get("contractId"))
        ]
        for order in orders:
            self.client.cancel_order(account, order["id"])
        return f"{len(orders)} order{'s' if len(orders) != 1 else ''}"

    def do_close(self, step: Step) -> str:
        a = step.args
        self.client.close_position(self.account_id(a["account"]), a["contract"], a.get("size"))
        return ""

    def do_can_trade(self, step: Step) -> str:
        self.client.set_can_trade(self.account_id(step.args["account"]), step.args["value"])
        return ""

    def do_advance_clock(self, step: Step) -> str:
        answer = self.client.advance_clock(step.args["seconds"])
        return f"now {answer['now']}" if isinstance(answer, dict) and "now" in answer else ""

    def do_set_clock(self, step: Step) -> str:
        answer = self.client.set_clock(step.args["at"])
        return f"now {answer['now']}" if isinstance(answer, dict) and "now" in answer else ""

    def do_wait(self, step: Step) -> str:
        time.sleep(step.args["ms"] / 1000)
        return ""

    def do_fault(self, step: Step) -> str:
        a = step.args
        self.client.add_fault(
            a["path"], a["kind"], a["count"], a.get("retry_after"), a.get("delay_ms"), a.get("status"), a.get("applied")
        )
        return ""

    def do_clear_faults(self, step: Step) -> str:
        self.client.clear_faults()
        return ""

    def do_drop(self, step: Step) -> str:
        answer = self.client.drop(step.args["hub"], step.args.get("mode"))
        return f"{answer['dropped']} socket(s)" if isinstance(answer, dict) and "dropped" in answer else ""

    def do_logout(self, step: Step) -> str:
        answer = self.client.logout(step.args["hub"], step.args.get("expire_tokens"))
        return f"{answer['loggedOut']} socket(s)" if isinstance(answer, dict) and "loggedOut" in answer else ""

    def do_tokens(self, step: Step) -> str:
        self.client.tokens(step.args.get("expires_in"), step.args.get("expire_all"))
        return ""

    def do_config(self, step: Step) -> str:
        self.client.config(**step.args)
        return ""

    def do_mark(self, step: Step) -> str:
        return ""  # run_step already posted this step's mark, label included

    # -- expectations --------------------------------------------------------------------------

    def do_expect(self, step: Step) -> str:
        a = step.args
        if a["what"] in ("request", "no_request"):
            return self.expect_request(a)
        check = {"position": self.check_position, "orders": self.check_orders, "account": self.check_account}[a["what"]]
        return self.poll(a, check)

    def poll(
        self,
        a: Mapping[str, Any],
        check: Callable[[Mapping[str, Any], dict[str, Any]], tuple[bool, str, dict[str, Any]]],
    ) -> str:
        """Check until true or ``within_ms`` has passed (at least once, and once after the deadline)."""
        account = self.account_id(a["account"])
        start = time.monotonic()
        deadline = start + a["within_ms"] / 1000
        while True:
            checked = time.monotonic()
            ok, seen, detail = check(a, self.client.state(account))
            if ok:
                return f"after {(checked - start) * 1000:.0f} ms" if checked - start > POLL_S else ""
            if checked >= deadline:
                raise _Failed(f"saw {seen} (last checked +{(checked - start) * 1000:.0f} ms)", detail)
            time.sleep(max(0.0, min(POLL_S, deadline - time.monotonic())))

    def check_position(self, a: Mapping[str, Any], state: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
        positions = [
            p
            for p in state.get("positions") or []
            if isinstance(p, dict) and self.contract_matches(a["contract"], p.get("contractId"))
        ]
        signed = sum(_signed_size(p) for p in positions)
        held = [p for p in positions if _signed_size(p)]
        avg = held[0].get("averagePrice") if len(held) == 1 else None
        ok = signed == a["size"]
        if ok and "average_price" in a:
            ok = _is_number(avg) and abs(float(avg) - a["average_price"]) < 1e-6
        seen = (
            "flat" if signed == 0 else f"size {_signed(signed)}" + (f" @{_num(float(avg))}" if _is_number(avg) else "")
        )
        others = sorted(
            {str(p.get("contractId")) for p in state.get("positions") or [] if isinstance(p, dict) and _signed_size(p)}
            - {str(p.get("contractId")) for p in held}
        )
        if not held and others:
            seen += f" (open elsewhere: {', '.join(others)})"
        return ok, seen, {"positions": positions}

    def check_orders(self, a: Mapping[str, Any], state: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
        orders = [o for o in _open_orders(state) if self.order_matches(a, o)]
        ok = len(orders) == a["count"]
        listed = ", ".join(_describe_order(o) for o in orders[:5]) + (" ..." if len(orders) > 5 else "")
        seen = f"{len(orders)} open order{'s' if len(orders) != 1 else ''}" + (f" ({listed})" if orders else "")
        return ok, seen, {"orders": orders}

    def order_matches(self, a: Mapping[str, Any], order: dict[str, Any]) -> bool:
        if "contract" in a and not self.contract_matches(a["contract"], order.get("contractId")):
            return False
        if "type" in a and order.get("type") != ORDER_TYPE_CODES[a["type"]]:
            return False
        if "side" in a and order.get("side") != SIDE_CODES[a["side"]]:
            return False
        if "size" in a and order.get("size") != a["size"]:
            return False
        for key, field in (("limit", "limitPrice"), ("stop", "stopPrice")):
            if key in a and not (_is_number(order.get(field)) and abs(float(order[field]) - a[key]) < 1e-6):
                return False
        return True

    def check_account(self, a: Mapping[str, Any], state: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
        account = state.get("account") or {}
        ok = True
        seen = []
        if "can_trade" in a:
            ok &= account.get("canTrade") is a["can_trade"]
            seen.append(f"can_trade {str(account.get('canTrade')).lower()}")
        if "balance" in a:
            balance = account.get("balance")
            ok &= _is_number(balance) and abs(float(balance) - a["balance"]) < 0.005
            shown = _num(float(balance)) if _is_number(balance) else repr(balance)
            seen.append(f"balance {shown}")
        return ok, " ".join(seen), {"account": account}

    def request_matches(self, a: Mapping[str, Any], record: dict[str, Any]) -> bool:
        path = record.get("path")
        if not isinstance(path, str) or not any(_path_matches(p, path) for p in a["paths"]):
            return False
        if "account" in a and str(record.get("accountId")) != str(self.account_id(a["account"])):
            return False
        if "contract" in a and not self.contract_matches(a["contract"], record.get("contractId")):
            return False
        if "status" in a and record.get("status") != a["status"]:
            return False
        # The gateway answers a refused call with HTTP 200 and success false: status alone cannot tell.
        if "success" in a and record.get("success") is not a["success"]:
            return False
        if "body" in a and not _subset(a["body"], record.get("body")):
            return False
        return True

    def expect_request(self, a: Mapping[str, Any]) -> str:
        """Judge the request log inside a window of simulator monotonic time after a step's mark.

        Waiting is on the simulator's own clock, not ours, so a slow runner cannot stretch or
        shrink riskd's time budget.
        """
        t0 = self.mark_time(a["after_step"])
        span = (a["for_ms"] if a["what"] == "no_request" else a["within_ms"]) / 1000
        end = t0 + span
        wait_for_all = a["what"] == "no_request" or "count" in a
        give_up = time.monotonic() + span + 10  # if the simulator's clock stalls, do not hang
        while True:
            now = self.sim_now()
            records = self.read_requests()
            hits = [r for r in records if _is_number(r.get("t")) and float(r["t"]) >= t0 and self.request_matches(a, r)]
            inside = [r for r in hits if float(r["t"]) <= end]
            closed = now > end + LOG_GRACE_S
            if a["what"] == "request" and not wait_for_all and inside:
                return f"+{(float(inside[0]['t']) - t0) * 1000:.0f} ms"
            if closed or time.monotonic() > give_up:
                break
            time.sleep(max(0.005, min(POLL_S, end + LOG_GRACE_S - now)))
        detail = {"window": [t0, end], "matched": inside, "after_window": [r for r in hits if float(r["t"]) > end][:5]}
        if a["what"] == "no_request":
            if not inside:
                return ""
            first = inside[0]
            raise _Failed(
                f"saw {len(inside)}: {_describe_request(first, t0)}" + (" ..." if len(inside) > 1 else ""), detail
            )
        if "count" in a:
            if len(inside) == a["count"]:
                return "at " + ", ".join(f"+{(float(r['t']) - t0) * 1000:.0f}" for r in inside) + " ms"
            listed = "; ".join(_describe_request(r, t0) for r in inside[:5])
            raise _Failed(f"saw {len(inside)}" + (f": {listed}" if inside else ""), detail)
        raise _Failed(self.explain_missing(a, records, t0, end), detail)

    def explain_missing(self, a: Mapping[str, Any], records: list[dict[str, Any]], t0: float, end: float) -> str:
        late = [r for r in records if _is_number(r.get("t")) and float(r["t"]) > end and self.request_matches(a, r)]
        if late:
            return f"none in time; first at +{(float(late[0]['t']) - t0) * 1000:.0f} ms"
        same_path = [
            r
            for r in records
            if _is_number(r.get("t"))
            and float(r["t"]) >= t0
            and isinstance(r.get("path"), str)
            and any(_path_matches(p, r["path"]) for p in a["paths"])
        ]
        if same_path:
            listed = "; ".join(_describe_request(r, t0) for r in same_path[:3])
            return f"none matching; saw {len(same_path)} to that path: {listed}"
        return f"saw none (the window closed at +{(end - t0) * 1000:.0f} ms)"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _record_label(record: Any) -> Any:
    if not isinstance(record, dict):
        return None
    if "label" in record:
        return record["label"]
    body = record.get("body")
    return body.get("label") if isinstance(body, dict) else None


def _signed_size(position: dict[str, Any]) -> int:
    size = position.get("size")
    if not _is_number(size):
        return 0
    return int(size) if position.get("type") != 2 else -int(size)


def _open_orders(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in state.get("orders") or [] if isinstance(o, dict) and o.get("status", 1) in OPEN_ORDER_STATUSES]


_TYPE_NAMES = {v: k for k, v in ORDER_TYPE_CODES.items()}


def _describe_order(order: dict[str, Any]) -> str:
    kind = _TYPE_NAMES.get(order.get("type"), f"type {order.get('type')}")
    side = {0: "buy", 1: "sell"}.get(order.get("side"), f"side {order.get('side')}")
    price = next((f" @{_num(float(order[f]))}" for f in ("stopPrice", "limitPrice") if _is_number(order.get(f))), "")
    return f"#{order.get('id')} {kind} {side} {order.get('size')}{price}"


def _describe_request(record: dict[str, Any], t0: float) -> str:
    parts = [f"{record.get('method', 'POST')} {record.get('path')}"]
    if record.get("contractId"):
        parts.append(str(record["contractId"]))
    if isinstance(record.get("body"), dict):
        extra = {k: v for k, v in record["body"].items() if k not in ("accountId", "contractId")}
        if extra:
            parts.append(json.dumps(extra, separators=(",", ":"), default=str)[:120])
    if record.get("status") is not None:
        parts.append(f"-> {record['status']}")
    if record.get("success") is False:
        parts.append(f"success false (errorCode {record.get('errorCode')})")
    return " ".join(parts) + f" at +{(float(record['t']) - t0) * 1000:.0f} ms"


def _path_matches(pattern: str, path: str) -> bool:
    # Gateway paths are case-insensitive in practice; riskd's exact casing is not what a scenario judges.
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(path.lower(), pattern.lower())
    return path.lower() == pattern.lower()


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_subset(e, x) for e, x in zip(expected, actual))
        )
    if _is_number(expected) and _is_number(actual):
        return abs(float(expected) - float(actual)) < 1e-9
    return type(expected) is type(actual) and bool(expected == actual)


# Exchange roots that differ from the symbol traders use (rules-spec section 0: ES = CON.F.US.EP.*),
# for ids the catalogue does not know.
_ROOT_ALIASES = {"EP": "ES", "ENQ": "NQ", "CLE": "CL", "GCE": "GC"}


def _symbols_of(contract_id: str) -> set[str]:
    """Symbols a gateway contract id answers to: every root the simulator's catalogue gives it
    (ES and EP for CON.F.US.EP.Z26), so a symbol in a scenario matches any month of that root."""
    try:
        from gateway_sim import contracts
    except ImportError:  # the runner must keep working against a simulator built elsewhere
        contracts = None  # type: ignore[assignment]
    found = contracts.find(contract_id) if contracts is not None else None
    if found is not None and found.id.upper() == contract_id.upper():
        return {r.upper() for r in found.roots}
    parts = contract_id.upper().split(".")
    if len(parts) >= 5 and parts[0] == "CON":
        root = parts[3]
        return {root, _ROOT_ALIASES.get(root, root)}
    return {contract_id.upper()}


# ================================================================================================
# Entry points
# ================================================================================================


def run_scenario(
    path: str | Path | Scenario,
    url: str,
    *,
    reporter: Reporter | None = None,
    fail_fast: bool = False,
    client: ControlClient | None = None,
) -> ScenarioResult:
    """Load (if given a path), validate and run one scenario against the simulator at ``url``.

    Raises `ScenarioError` for an invalid file; every runtime problem (a refused call, an
    unreachable simulator, a failed expectation) is reported in the result instead.
    """
    scenario_obj = path if isinstance(path, Scenario) else load_scenario(path)
    return _Runner(scenario_obj, client or ControlClient(url), reporter or Reporter(), fail_fast).run()


@click.command("scenario")
@click.argument("files", metavar="FILE...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--url",
    envvar="GATEWAY_SIM_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Simulator base URL (env GATEWAY_SIM_URL).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only failures and the summary line.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report on stdout instead of progress lines.")
@click.option("-x", "--fail-fast", is_flag=True, help="Stop a scenario at its first failed expectation.")
@click.option("--check", is_flag=True, help="Only validate the files; no simulator needed.")
def scenario(files: tuple[str, ...], url: str | None, quiet: bool, as_json: bool, fail_fast: bool, check: bool) -> None:
    """Run scenario FILEs against a running simulator and judge their expectations.

    Each step is performed through the simulator's /sim control API (preceded by a mark in the
    simulator log); each `expect` polls until it holds or its deadline passes. Exit status: 0 when
    every expectation held, 1 when one failed or a step errored, 2 when nothing could be run (an
    invalid file, no simulator at --url). The format is described in docs/scenarios.md.
    """
    try:
        loaded = [load_scenario(f) for f in files]
    except ScenarioError as exc:
        click.echo(f"invalid scenario: {exc}", err=True)
        sys.exit(2)
    if check:
        if not as_json:
            for sc in loaded:
                click.echo(f"ok {sc.source}: {sc.name!r}, {len(sc.steps)} steps")
        else:
            click.echo(
                json.dumps(
                    {
                        "valid": True,
                        "scenarios": [{"file": sc.source, "name": sc.name, "steps": len(sc.steps)} for sc in loaded],
                    }
                )
            )
        return
    try:
        client = ControlClient(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    try:
        client.clock()
    except ControlUnavailable as exc:
        click.echo(f"gateway-sim scenario: {exc.message}", err=True)
        sys.exit(2)
    except ControlError:
        pass  # answering at all is enough here; a broken clock shows up in the steps that need it
    reporter = Reporter() if as_json else ConsoleReporter(quiet=quiet)
    results = [run_scenario(sc, url, reporter=reporter, fail_fast=fail_fast, client=client) for sc in loaded]
    passed = all(r.passed for r in results)
    if as_json:
        click.echo(json.dumps({"passed": passed, "scenarios": [r.to_dict() for r in results]}, indent=2, default=str))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":  # `python -m gateway_sim.scenario` works before cli.py registers the command
    scenario()
