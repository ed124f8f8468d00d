"""Admin password hashing and the HMAC proofs of mutating admin requests (pure, fake clock)."""

from __future__ import annotations

import os
import stat

import pytest

from risk_actors import security as sec

PW = "correct horse battery"


@pytest.fixture(scope="module")
def stored():
    return sec.hash_password(PW)


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _signed(verifier, stored, password=PW, command="rules_set", args=None, ts=None):
    args = {"rule": "max_contracts", "key": "limit", "value": 3} if args is None else args
    nonce = verifier.challenge()
    key = sec.key_from_password(password, sec.public_params(stored))
    ts = int(verifier.now()) if ts is None else ts
    return nonce, sec.make_proof(key, command, args, nonce, ts), args


def test_hash_when_verified_then_only_the_right_password_matches(stored):
    assert stored.startswith("$argon2id$")
    assert sec.verify_password(stored, PW) and not sec.verify_password(stored, PW + "x")


def test_short_password_when_hashed_then_refused_naming_the_minimum():
    with pytest.raises(sec.SecurityError, match="at least 8 characters"):
        sec.hash_password("short")


def test_public_params_when_revealed_then_hold_no_digest(stored):
    public = sec.public_params(stored)
    assert stored.rsplit("$", 1)[1] not in public["params"] and public["hash_len"] == 32


def test_key_from_password_when_right_then_equals_key_from_hash(stored):
    public = sec.public_params(stored)
    assert sec.key_from_password(PW, public) == sec.key_from_hash(stored)
    assert sec.key_from_password("wrong password", public) != sec.key_from_hash(stored)


def test_valid_proof_when_verified_then_accepted(stored):
    v = sec.ProofVerifier(Clock())
    nonce, proof, args = _signed(v, stored)
    assert v.verify(stored, "rules_set", args, nonce, proof).ok


def test_proof_when_replayed_then_refused(stored):
    v = sec.ProofVerifier(Clock())
    nonce, proof, args = _signed(v, stored)
    assert v.verify(stored, "rules_set", args, nonce, proof).ok
    again = v.verify(stored, "rules_set", args, nonce, proof)
    assert not again.ok and "already used" in again.reason


@pytest.mark.parametrize("change, reason", [
    (dict(args={"rule": "max_contracts", "key": "limit", "value": 50}), "wrong admin password"),
    (dict(command="passwd"), "wrong admin password"),
    (dict(password="not the password"), "wrong admin password"),
])
def test_proof_when_args_command_or_password_differ_then_refused(stored, change, reason):
    v = sec.ProofVerifier(Clock())
    nonce, proof, args = _signed(v, stored, password=change.get("password", PW))
    verdict = v.verify(stored, change.get("command", "rules_set"), change.get("args", args),
                       nonce, proof)
    assert not verdict.ok and reason in verdict.reason and verdict.failures == 1


def test_proof_when_challenge_older_than_60s_then_refused(stored):
    clock = Clock()
    v = sec.ProofVerifier(clock)
    nonce, proof, args = _signed(v, stored)
    clock.t += 61
    assert "expired" in v.verify(stored, "rules_set", args, nonce, proof).reason


def test_proof_when_timestamp_skewed_then_refused(stored):
    clock = Clock()
    v = sec.ProofVerifier(clock)
    nonce, proof, args = _signed(v, stored, ts=int(clock.t) - 120)
    assert "timestamp" in v.verify(stored, "rules_set", args, nonce, proof).reason


@pytest.mark.parametrize("proof", ["", "garbage", "v1.x.00", "v2.1.00"])
def test_missing_or_malformed_proof_when_verified_then_refused(stored, proof):
    v = sec.ProofVerifier(Clock())
    nonce = v.challenge()
    assert not v.verify(stored, "reload", {}, nonce, proof).ok


def test_unknown_nonce_when_verified_then_refused(stored):
    v = sec.ProofVerifier(Clock())
    key = sec.key_from_hash(stored)
    proof = sec.make_proof(key, "reload", {}, "made-up", int(v.now()))
    assert "unknown" in v.verify(stored, "reload", {}, "made-up", proof).reason


def test_five_failures_when_counted_then_admin_locked_for_300s_even_with_right_password(stored):
    clock = Clock()
    v = sec.ProofVerifier(clock)
    for _ in range(sec.MAX_FAILURES):
        nonce, proof, args = _signed(v, stored, password="wrong password")
        last = v.verify(stored, "rules_set", args, nonce, proof)
    assert "refused for 300 s" in last.reason
    nonce, proof, args = _signed(v, stored)
    assert not v.verify(stored, "rules_set", args, nonce, proof).ok
    clock.t += sec.LOCKOUT_SECONDS + 1
    nonce, proof, args = _signed(v, stored)
    assert v.verify(stored, "rules_set", args, nonce, proof).ok


def test_no_password_set_when_verified_then_refused_saying_how_to_set_it():
    v = sec.ProofVerifier(Clock())
    assert "riskd passwd" in v.verify(None, "reload", {}, v.challenge(), "v1.1.00").reason


def test_password_file_when_written_then_mode_0600_and_reads_back(tmp_path, stored):
    path = sec.write_password_hash(tmp_path, stored)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sec.read_password_hash(tmp_path) == stored
    with pytest.raises(sec.SecurityError):
        sec.write_password_hash(tmp_path, "not a hash")
