"""Symbol roots with the configured alias table (``daemon.symbol_aliases``)."""

from __future__ import annotations

import pytest

from risk_actors import symbols
from risk_actors.messages import ContractInfo
from risk_actors.state import AccountState


@pytest.fixture(autouse=True)
def _defaults():
    yield
    symbols.configure({})


def test_configured_alias_then_rules_see_the_trading_symbol():
    state = AccountState(1, contracts={"CON.F.US.XYZ.Z26": ContractInfo(
        "CON.F.US.XYZ.Z26", "", 0.25, 0.5, "F.US.XYZ")})
    assert state.root("CON.F.US.XYZ.Z26") == "XYZ"      # unknown exchange root: as is
    symbols.configure({"xyz": "mes"})
    assert state.root("CON.F.US.XYZ.Z26") == "MES"      # the admin's alias, case-insensitive
    assert symbols.active_aliases()["EP"] == "ES"        # the defaults stay


def test_configure_empty_then_back_to_defaults():
    symbols.configure({"EP": "SP"})
    assert symbols.root_of("c", symbol_id="F.US.EP") == "SP"   # configured wins over default
    symbols.configure({})
    assert symbols.root_of("c", symbol_id="F.US.EP") == "ES"
