"""JWT-shaped session tokens: base64url(header).base64url(payload).base64url(HMAC-SHA256).

project-x-py decodes the payload without checking the signature and reads only ``exp``; the
simulator checks the signature, the expiry (real wall clock), a generation counter (``expireAll``
bumps it) and a revocation list (``Auth/logout``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

from gateway_sim import assumptions


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Issues and checks session tokens for the one simulated gateway user base."""

    def __init__(self, secret: bytes | None = None, lifetime_s: float = assumptions.TOKEN_LIFETIME_S_DEFAULT,
                 generation: int = 0, now=time.time):
        self.secret = secret or secrets.token_bytes(32)
        self.lifetime_s = float(lifetime_s)
        self.generation = generation
        self._now = now
        self._revoked: set[str] = set()

    def issue(self, user: str) -> str:
        now = self._now()
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {
            "sub": user,
            "name": user,
            "jti": uuid.uuid4().hex,
            "gen": self.generation,
            "iat": int(now),
            # exp is fractional on purpose: a lifetime shorter than a second must still expire.
            "exp": round(now + self.lifetime_s, 3),
            "iss": "gateway-sim",
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        signature = hmac.new(self.secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"

    def claims(self, token: str | None) -> dict[str, Any] | None:
        """The token's claims when it is valid now, else None."""
        if not token or token.count(".") != 2:
            return None
        head, body, sig = token.split(".")
        try:
            expected = hmac.new(self.secret, f"{head}.{body}".encode("ascii"), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(sig)):
                return None
            claims = json.loads(_unb64(body))
        except (ValueError, UnicodeEncodeError):
            return None
        if not isinstance(claims, dict):
            return None
        if claims.get("gen") != self.generation or claims.get("jti") in self._revoked:
            return None
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp <= self._now():
            return None
        return claims

    def revoke(self, token: str) -> None:
        claims = self.claims(token)
        if claims:
            self._revoked.add(claims["jti"])

    def expire_all(self) -> None:
        """Invalidate every token issued so far; new logins work as before."""
        self.generation += 1
        self._revoked.clear()

    def to_dict(self) -> dict[str, Any]:
        return {"secret": _b64(self.secret), "lifetimeS": self.lifetime_s, "generation": self.generation}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TokenIssuer":
        return cls(secret=_unb64(data["secret"]), lifetime_s=data.get("lifetimeS", assumptions.TOKEN_LIFETIME_S_DEFAULT),
                   generation=int(data.get("generation", 0)))


def bearer(header_value: str | None) -> str | None:
    """The token in an ``Authorization: Bearer <token>`` header value."""
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
