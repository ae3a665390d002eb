"""Who is calling: bearer tokens (compared in constant time) and loopback. One helper for ingest, the
dashboard's write API and the read gate; no web framework, so the ingest function can use it too."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Mapping

from .errors import InputError

# NOTE: the identities a write is recorded under. A token's name, never what the caller says.
TOKEN = "token"
LOOPBACK = "loopback"
ANYONE = "anyone"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name from any mapping (a dict copy of the request's headers)."""
    value = headers.get(name)
    if value is None:
        lname = name.lower()
        for k, v in headers.items():
            if k.lower() == lname:
                return v
    return value


def bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, given = (header(headers, "authorization") or "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" and given.strip() else None


def basic_password(headers: Mapping[str, str]) -> str | None:
    """The password of `Authorization: Basic` (what a browser sends after a Basic challenge)."""
    scheme, _, given = (header(headers, "authorization") or "").partition(" ")
    if scheme.lower() != "basic" or not given.strip():
        return None
    try:
        decoded = base64.b64decode(given.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def same(given: str, secret: str) -> bool:
    return hmac.compare_digest(given.encode(), secret.encode())


def is_loopback(addr: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((addr or "").split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def token_name(given: str | None, secrets: Mapping[str, str | None]) -> str | None:
    """The name of the configured secret `given` equals, if any."""
    if given is None:
        return None
    for name, secret in secrets.items():
        if secret and same(given, secret):
            return name
    return None


def authorize(
    headers: Mapping[str, str],
    remote_addr: str | None,
    token: str | None,
    *,
    also: Mapping[str, str | None] | None = None,
    open_without_token: bool = False,
) -> str:
    """Who may write. With `token` configured the caller must present it (or one of `also`, by
    name) as a bearer token; without one, loopback callers may (or anyone, for `open_without_token`:
    webhook senders). Returns the identity the write is recorded under; raises a 401 otherwise."""
    if token:
        given = bearer(headers)
        if given is None:
            raise InputError("missing bearer token: send `Authorization: Bearer <token>`", "Authorization", 401)
        name = token_name(given, {TOKEN: token, **(also or {})})
        if name is None:
            raise InputError("invalid bearer token", "Authorization", 401)
        return name
    if is_loopback(remote_addr):
        return LOOPBACK
    if open_without_token:
        return ANYONE
    raise InputError("no token configured: writes are accepted from loopback only", "Authorization", 401)


def may_read(headers: Mapping[str, str], secrets: Mapping[str, str | None]) -> str | None:
    """The name of the token a reader presented (bearer, or the password of HTTP Basic), or None."""
    return token_name(bearer(headers), secrets) or token_name(basic_password(headers), secrets)
