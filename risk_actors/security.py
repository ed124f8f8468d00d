"""The admin password and the proofs that authenticate mutating admin requests.

The password is stored only as an argon2id hash, in ``<state_dir>/admin.argon2`` (mode 0600,
owned by riskd's user). A mutating :class:`~risk_actors.messages.AdminRequest` never carries the
password. It carries a proof:

1. the CLI asks the Supervisor for a challenge (``AdminRequest("challenge")``, no proof needed):
   a fresh random nonce (single use, valid :data:`NONCE_TTL` seconds) and the *public* half of
   the stored hash (``$argon2id$v=19$m=...,t=...,p=...$<salt>``: algorithm, cost, salt);
2. the CLI recomputes the argon2id digest of the typed password with those parameters. Only the
   right password gives the stored digest; the proof key is ``HMAC(digest, "riskd-admin-proof-v1")``;
3. proof = ``v1.<unix time>.<hex HMAC-SHA256(key, canonical JSON of command, args, nonce, time)>``;
4. the Supervisor derives the same key from the stored hash (no argon2 run on its side), checks
   the nonce is one it issued, unused and fresh, the time is within :data:`MAX_SKEW` seconds, and
   compares the HMAC in constant time. The nonce is spent whatever the outcome.

So a replayed, altered or forged message is refused, and the args (rule, key, value ...) cannot
be changed in transit. The stored hash is password-equivalent *for proofs* (not for learning the
password): it must stay readable by riskd's user only. Failed proofs are counted; after
:data:`MAX_FAILURES` in :data:`FAILURE_WINDOW` seconds every mutating request is refused for
:data:`LOCKOUT_SECONDS` (see docs/security.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import attrs
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import hash_secret_raw

PASSWORD_FILE = "admin.argon2"
MIN_PASSWORD_LENGTH = 8
NONCE_TTL = 60.0
MAX_SKEW = 60.0
MAX_FAILURES = 5
FAILURE_WINDOW = 600.0
LOCKOUT_SECONDS = 300.0
PROOF_VERSION = "v1"
_DOMAIN = b"riskd-admin-proof-v1"


class SecurityError(Exception):
    """A password or proof problem to show the user as one line."""


# ---------------------------------------------------------------------------------------------
# password hashing and the password file
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)


def check_strength(password: str) -> str | None:
    """Why ``password`` is not acceptable as the admin password, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters (got {len(password)})"
    if password.strip() != password:
        return "must not start or end with spaces"
    return None


def hash_password(password: str) -> str:
    """The argon2id encoded hash (``$argon2id$v=19$m=...$salt$digest``) of ``password``."""
    problem = check_strength(password)
    if problem:
        raise SecurityError(f"admin password {problem}")
    return _hasher().hash(password)


def verify_password(encoded: str, password: str) -> bool:
    try:
        return _hasher().verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def is_argon2_hash(encoded: Any) -> bool:
    """True for a well-formed argon2id encoded hash (what ``passwd`` may store)."""
    if not isinstance(encoded, str) or not encoded.startswith("$argon2id$"):
        return False
    try:
        extract_parameters(encoded)
        _split(encoded)
    except (InvalidHashError, ValueError):
        return False
    return True


def password_file(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / PASSWORD_FILE


def read_password_hash(state_dir: str | os.PathLike) -> str | None:
    """The stored admin hash, or None when no admin password is set yet."""
    try:
        text = password_file(state_dir).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    return text or None


def write_password_hash(state_dir: str | os.PathLike, encoded: str) -> Path:
    """Store ``encoded`` atomically with mode 0600 (created so, never widened afterwards)."""
    if not is_argon2_hash(encoded):
        raise SecurityError("not an argon2id hash")
    target = password_file(state_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{PASSWORD_FILE}.", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(encoded + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


# ---------------------------------------------------------------------------------------------
# proof keys
def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _split(encoded: str) -> tuple[str, bytes]:
    """(public part ``$argon2id$v=..$m=..,t=..,p=..$salt``, raw digest) of an encoded hash."""
    public, sep, digest = encoded.rpartition("$")
    if not sep or not digest or public.count("$") != 4:
        raise ValueError("malformed argon2 hash")
    return public, _b64decode(digest)


def public_params(encoded: str) -> dict:
    """What the Supervisor may reveal to anyone: algorithm, cost, salt and digest length (not
    the digest itself)."""
    public, digest = _split(encoded)
    return {"params": public, "hash_len": len(digest)}


def _key(digest: bytes) -> bytes:
    return hmac.new(digest, _DOMAIN, hashlib.sha256).digest()


def key_from_hash(encoded: str) -> bytes:
    """The proof key, on the Supervisor's side (from the stored hash)."""
    return _key(_split(encoded)[1])


def key_from_password(password: str, public: Mapping[str, Any]) -> bytes:
    """The proof key, on the CLI's side: argon2id of the typed password with the stored
    parameters and salt (``public`` from the challenge). A wrong password gives a wrong key."""
    try:
        _, kind, version, costs, salt = str(public["params"]).split("$")
        cost = dict(item.split("=", 1) for item in costs.split(","))
        version_n = int(version.removeprefix("v="))
        hash_len = int(public["hash_len"])
        m_cost, t_cost, p_cost = int(cost["m"]), int(cost["t"]), int(cost["p"])
    except (KeyError, ValueError, TypeError):
        raise SecurityError("the daemon sent malformed password parameters") from None
    if kind != "argon2id" or not (16 <= hash_len <= 128) or m_cost > 4 * 1024 * 1024 \
            or t_cost > 64 or p_cost > 64:
        raise SecurityError("the daemon sent unexpected password parameters")
    digest = hash_secret_raw(password.encode("utf-8"), _b64decode(salt), time_cost=t_cost,
                             memory_cost=m_cost, parallelism=p_cost, hash_len=hash_len,
                             type=Type.ID, version=version_n)
    return _key(digest)


# ---------------------------------------------------------------------------------------------
# proofs
def canonical(command: str, args: Mapping[str, Any], nonce: str, ts: int) -> bytes:
    """The exact bytes a proof signs (sorted keys, no spaces: the same on both sides)."""
    return json.dumps({"v": PROOF_VERSION, "command": command, "args": dict(args),
                       "nonce": nonce, "ts": int(ts)},
                      sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def make_proof(key: bytes, command: str, args: Mapping[str, Any], nonce: str,
               ts: int | None = None) -> str:
    ts = int(time.time()) if ts is None else int(ts)
    mac = hmac.new(key, canonical(command, args, nonce, ts), hashlib.sha256).hexdigest()
    return f"{PROOF_VERSION}.{ts}.{mac}"


@attrs.frozen
class Verdict:
    """Outcome of a proof check: ``ok``, and when not, why (shown to the caller and audited)."""

    ok: bool
    reason: str = ""
    failures: int = 0


class ProofVerifier:
    """The Supervisor's side: issues nonces, checks proofs, counts failures.

    Pure bookkeeping with an injected clock (``now()`` -> unix seconds), so tests move time.
    Nonces and failure counts live in memory: a daemon restart forgets them (a restart needs the
    service manager, i.e. root), and outstanding nonces die with it, so nothing can be replayed
    across it.
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.nonces: dict[str, float] = {}      # nonce -> issued at
        self.failure_times: list[float] = []
        self.locked_until = 0.0

    def challenge(self) -> str:
        t = self.now()
        self.nonces = {n: at for n, at in self.nonces.items() if t - at <= NONCE_TTL}
        if len(self.nonces) > 1000:  # a flood of challenges must not grow memory without bound
            oldest = sorted(self.nonces, key=self.nonces.get)[:len(self.nonces) - 1000]
            for n in oldest:
                del self.nonces[n]
        nonce = secrets.token_hex(16)
        self.nonces[nonce] = t
        return nonce

    def locked(self) -> float:
        """Seconds left of the lockout after too many failures (0 = not locked)."""
        return max(0.0, self.locked_until - self.now())

    def verify(self, stored_hash: str | None, command: str, args: Mapping[str, Any],
               nonce: str, proof: str) -> Verdict:
        t = self.now()
        issued = self.nonces.pop(nonce, None) if isinstance(nonce, str) else None  # spent anyway
        left = self.locked()
        if left:
            return Verdict(False, f"admin commands refused for {left:.0f} s more after "
                                  f"{MAX_FAILURES} failed proofs", len(self.failure_times))
        if stored_hash is None:
            return Verdict(False, "no admin password is set: run `riskd passwd` as riskd's "
                                  "service user (or root) first")
        reason = self._check(stored_hash, command, args, nonce, proof, issued, t)
        if reason is None:
            return Verdict(True)
        self.failure_times = [f for f in self.failure_times if t - f <= FAILURE_WINDOW] + [t]
        if len(self.failure_times) >= MAX_FAILURES:
            self.locked_until = t + LOCKOUT_SECONDS
            reason += (f"; {len(self.failure_times)} failures in {FAILURE_WINDOW / 60:.0f} min: "
                       f"admin commands refused for {LOCKOUT_SECONDS:.0f} s")
        return Verdict(False, reason, len(self.failure_times))

    def _check(self, stored_hash: str, command: str, args: Mapping[str, Any], nonce: str,
               proof: str, issued: float | None, t: float) -> str | None:
        if not isinstance(proof, str) or not proof:
            return "no proof of the admin password"
        parts = proof.split(".")
        if len(parts) != 3 or parts[0] != PROOF_VERSION or not parts[1].isdigit():
            return "malformed proof"
        if issued is None:
            return "unknown or already used nonce (ask for a new challenge)"
        if t - issued > NONCE_TTL:
            return "challenge expired (older than 60 s)"
        ts = int(parts[1])
        if abs(t - ts) > MAX_SKEW:
            return "proof timestamp outside the allowed 60 s"
        try:
            key = key_from_hash(stored_hash)
        except ValueError:
            return "the stored admin hash is malformed"
        expected = hmac.new(key, canonical(command, args, nonce, ts), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts[2]):
            return "wrong admin password (proof does not match)"
        return None

    def reset_failures(self) -> None:
        self.failure_times, self.locked_until = [], 0.0
