"""What a browser can be made to send, refused before any route runs (docs/security.md).

A browser on the machine is loopback, so "writes from loopback" would let any web page write. Every
request must name a Host we answer to (DNS rebinding); every write must come from our own origin, in
JSON (a cross-site form or a no-cors fetch can only send form types and text/plain); the dashboard's
own writes carry its CSRF token; reads can require a token; every answer carries frame and content
security headers."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, request
from werkzeug.datastructures import EnvironHeaders
from werkzeug.wsgi import get_host

from .. import auth
from ..errors import InputError
from ..settings import ALLOWED_HOSTS, ALLOWED_ORIGINS, READ_TOKEN, Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# NOTE: the content types a cross-site <form> or a no-cors fetch may send without a preflight.
SIMPLE_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "*"})
OPEN_PATHS = ("/healthz", "/readyz", "/static/")  # NOTE: probes and the dashboard's CSS/JS need no token
CSRF_HEADER = "X-CSRF-Token"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def hostname(host: str) -> str:
    """The name or address of a Host header, without port and brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, sep, port = host.rpartition(":")
    return (name if sep and port.isdigit() else host).rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Asked:
    """What the guard reads of a request, whether Flask serves it or the ingest route ahead of it."""

    method: str
    path: str
    host: str
    mimetype: str  # NOTE: lower case, without parameters
    headers: dict[str, str]

    @classmethod
    def of_flask(cls) -> Asked:
        return cls(request.method, request.path, request.host, (request.mimetype or "").lower(), dict(request.headers))

    @classmethod
    def of_environ(cls, environ: dict[str, Any]) -> Asked:
        """As Flask would read it (werkzeug's own readers, so both paths see one Host and one set of
        headers)."""
        ctype = str(environ.get("CONTENT_TYPE") or "")
        return cls(
            str(environ.get("REQUEST_METHOD", "")),
            str(environ.get("PATH_INFO", "")),
            get_host(environ),
            ctype.split(";", 1)[0].strip().lower(),
            dict(EnvironHeaders(environ)),
        )


@dataclass(frozen=True)
class Guard:
    settings: Settings
    bound_host: str | None = None
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def host_allowed(self, host: str) -> bool:
        """IP literals (rebinding needs a name), loopback names, the bound name, and the list."""
        name = hostname(host)
        if _is_ip(name) or name in LOOPBACK_NAMES or name.endswith(".localhost"):
            return True
        if self.bound_host and self.bound_host.lower() not in WILDCARD_BINDS and name == self.bound_host.lower():
            return True
        for allowed in self.settings.allowed_hosts:
            allowed = allowed.lower()
            if allowed == "*" or name == allowed or (allowed.startswith(".") and name.endswith(allowed)):
                return True
        return False

    def token_holder(self, headers: Mapping[str, str]) -> str | None:
        s = self.settings
        tokens = {auth.TOKEN: s.ingest_token, "backfill": s.backfill_token, "read": s.read_token}
        return auth.token_name(auth.bearer(headers), tokens)

    def check_host(self, asked: Asked) -> None:
        if self.host_allowed(asked.host) or self.token_holder(asked.headers):
            return
        raise InputError(
            f"Host {asked.host[:100]!r} is not a name this server answers to (DNS rebinding); "
            f"add it to {ALLOWED_HOSTS} or send the bearer token",
            "Host",
            421,
        )

    def check_read(self, asked: Asked) -> None:
        s = self.settings
        if not s.read_token or asked.path.startswith(OPEN_PATHS):
            return
        if auth.may_read(asked.headers, {"read": s.read_token, auth.TOKEN: s.ingest_token}) is None:
            raise InputError(
                f"reads need a token here ({READ_TOKEN}): send `Authorization: Bearer <token>` or sign in",
                "Authorization",
                401,
            )

    def check_origin(self, asked: Asked) -> None:
        """A write from a browser must come from a page of this server (or an allowed origin)."""
        headers = asked.headers
        origin = auth.header(headers, "origin")
        if origin is None and auth.header(headers, "referer"):
            parts = urlsplit(auth.header(headers, "referer") or "")
            origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "null"
        if origin is None:
            site = (auth.header(headers, "sec-fetch-site") or "").lower()
            if site in ("cross-site", "same-site"):
                raise InputError(f"a {site} request may not write here", "Sec-Fetch-Site", 403)
            return
        if origin in self.settings.allowed_origins:
            return
        if origin == "null" or urlsplit(origin).netloc.lower() != asked.host.lower():
            raise InputError(
                f"a page of {origin[:100]!r} may not write here; add the origin to {ALLOWED_ORIGINS} if it is your own",
                "Origin",
                403,
            )

    def check_content_type(self, asked: Asked) -> None:
        ctype = asked.mimetype
        # NOTE: a binary-mode CloudEvent's body is its data, in any media type (text/plain too). A
        # page of another site cannot send it: a `ce-specversion` header needs a CORS preflight,
        # which is never approved here.
        binary_cloudevent = asked.path.startswith("/ingest") and auth.header(asked.headers, "ce-specversion")
        if ctype in SIMPLE_TYPES and not binary_cloudevent:
            raise InputError(f"writes take JSON, not {ctype}; send application/json", "Content-Type", 415)
        if asked.path.startswith("/api/") and ctype != "application/json":
            raise InputError("the API takes JSON: send `Content-Type: application/json`", "Content-Type", 415)

    def check_csrf(self, asked: Asked) -> None:
        """A browser writing without a token (loopback) must show the token the pages carry."""
        headers = asked.headers
        if not asked.path.startswith("/api/") or auth.bearer(headers) is not None:
            return
        browser = any(auth.header(headers, h) for h in ("origin", "referer", "sec-fetch-site", "cookie"))
        if browser and not auth.same(auth.header(headers, CSRF_HEADER) or "", self.csrf_token):
            raise InputError("missing or stale CSRF token: reload the page and try again", CSRF_HEADER, 403)

    def check(self, asked: Asked, routed: bool = True) -> None:
        """Every check, in order; InputError naming the first the request fails. `routed`: a route
        takes the request (a write no route takes is answered 404 or 405, and needs no more checks)."""
        self.check_host(asked)
        if asked.method in SAFE_METHODS:
            self.check_read(asked)
            return
        self.check_origin(asked)
        if not routed:
            return
        self.check_content_type(asked)
        self.check_csrf(asked)

    def before(self) -> None:
        self.check(Asked.of_flask(), routed=request.routing_exception is None)

    def after(self, resp: Any) -> Any:
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        if resp.status_code == 401 and self.settings.read_token and request.method in SAFE_METHODS:
            # NOTE: a browser asks for the read token with its own sign-in prompt (user name ignored).
            resp.headers.add("WWW-Authenticate", 'Basic realm="eventmgmt", charset="UTF-8"')
        return resp


def install(app: Flask, settings: Settings, bound_host: str | None = None) -> Guard:
    guard = Guard(settings, bound_host)
    app.before_request(guard.before)
    app.after_request(guard.after)
    app.context_processor(lambda: {"csrf_token": guard.csrf_token})
    return guard
