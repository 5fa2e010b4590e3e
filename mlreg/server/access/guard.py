"""The one check before every route: the Host and Origin of the request, who is calling
(``--auth``), and whether they hold the permission the route declares.

It reads the route's declaration (:func:`mlreg.server.api.declared_route`) and never the
handler, so a route is enforced by being declared, whichever module mounts it. A resource is
found where the declaration says the request names it: a view argument, a JSON body field or
a query parameter (:class:`mlreg.server.permissions.Ref`).

- Host: IP addresses and ``localhost`` always; other names only when listed (``--allowed-hosts``):
  a page of an attacker's domain that rebinds its name to this server's address (DNS
  rebinding) arrives with the attacker's name in Host, and is refused.
- Origin: a browser's cross-origin request is refused unless its origin is listed
  (``--cors-origins``); listed origins get CORS headers and answered preflights.
- 401 carries ``WWW-Authenticate`` (Basic and Bearer); 403 names the permission missing; 429
  carries ``Retry-After``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, request

from mlreg.errors import InvalidInput, PermissionDenied, RateLimited, Unauthenticated
from mlreg.server.access import sessions
from mlreg.server.access.entities import Caller
from mlreg.server.access.service import AccessService
from mlreg.server.api import Route, declared_route, message_body, route_body
from mlreg.server.permissions import Level, Permission, Ref, Resource
from mlreg.server.settings import ServerSettings

REALM = "mlreg"
PREFLIGHT_HEADERS = (
    "Authorization, Content-Type, Idempotency-Key, Range, X-Mlreg-Digest, X-Mlreg-User, "
    "X-Request-ID"
)
METHODS = "GET, POST, PUT, PATCH, DELETE"
SIGN_IN = (
    "send a token (Authorization: Bearer …; MLREG_TRACKING_TOKEN) or a user name and password "
    "(HTTP Basic; MLREG_TRACKING_USERNAME and MLREG_TRACKING_PASSWORD)"
)


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """Whether a Host header (with or without a port) names this server."""
    name = urlsplit(f"//{host}").hostname or ""
    if not name:
        return False
    if name == "localhost" or "*" in patterns:
        return True
    try:
        ipaddress.ip_address(name)
        return True  # an address cannot be rebound: it is not a name an attacker controls
    except ValueError:
        pass
    return any(
        name == p or (p.startswith("*.") and name.endswith(p[1:]) and name != p[2:])
        for p in patterns
    )


def origin_allowed(origin: str, host: str, origins: tuple[str, ...]) -> bool:
    """Same origin (the browser's page came from this server), or a listed one."""
    if "*" in origins or origin.rstrip("/").lower() in origins:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def install_guard(app: Flask, settings: ServerSettings, access: AccessService) -> None:
    hosts, origins = settings.host_patterns, settings.origins

    @app.before_request
    def _guard() -> Response | None:
        host = request.host
        if not host_allowed(host, hosts):
            raise InvalidInput(
                f"Host {host!r} is not a name this server answers to; add it to "
                "MLREG_ALLOWED_HOSTS (--allowed-hosts)"
            )
        origin = request.headers.get("Origin")
        if origin is not None:
            if not origin_allowed(origin, host, origins):
                raise PermissionDenied(
                    f"origin {origin!r} may not call this server; add it to MLREG_CORS_ORIGINS "
                    "(--cors-origins)"
                )
            g.cors_origin = origin
            if request.method == "OPTIONS":
                return Response(status=204)
        if request.method == "OPTIONS":
            return None  # Flask answers with Allow; no data, no check
        route = declared_route()
        if route is None or not settings.auth:
            return None
        if route.permission.level is Level.NONE:
            return None
        caller = authenticate(access, route.sessions)
        g.caller, g.user, g.authenticated = caller, caller.name, True
        authorize(route, caller, access)
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        if response.status_code == 401 and not _takes_sessions():
            # (The web UI's pages send a browser to their sign-in form instead of its dialog.)
            response.headers.add("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')
            response.headers.add("WWW-Authenticate", f'Bearer realm="{REALM}"')
        retry = g.pop("retry_after", None)
        if retry is not None:
            response.headers["Retry-After"] = str(retry)
        origin = g.get("cors_origin")
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers.add("Vary", "Origin")
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = METHODS
                response.headers["Access-Control-Allow-Headers"] = PREFLIGHT_HEADERS
                response.headers["Access-Control-Max-Age"] = "600"
            else:
                response.headers["Access-Control-Expose-Headers"] = "X-Request-ID, Content-Range"
        return response


def _takes_sessions() -> bool:
    route = declared_route()
    return route is not None and route.sessions


def authenticate(access: AccessService, cookie: bool = False) -> Caller:
    """The caller the request's credentials name (with ``cookie``, a browser's sign-in
    session too); Unauthenticated or RateLimited."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    address = request.remote_addr
    try:
        if scheme.lower() == "bearer" and value.strip():
            return access.authenticate_token(value.strip(), address)
        if scheme.lower() == "basic":
            auth = request.authorization
            if auth is None or auth.username is None:
                raise Unauthenticated("malformed Basic credentials; " + SIGN_IN)
            return access.authenticate_password(auth.username, auth.password or "", address)
    except RateLimited as e:
        g.retry_after = e.retry_after
        raise
    if header:
        raise Unauthenticated(f"unsupported Authorization scheme {scheme!r}; " + SIGN_IN)
    if cookie:
        signed_in = sessions.current(access)
        if signed_in is not None:
            return signed_in
        raise Unauthenticated("You are not signed in, or your session has ended")
    raise Unauthenticated("authentication required: " + SIGN_IN)


def authorize(route: Route, caller: Caller, access: AccessService) -> None:
    """PermissionDenied naming the permission the caller lacks for ``route``."""
    needed = route.permission
    if needed.level is Level.ADMIN and not caller.is_admin:
        raise PermissionDenied(f"{caller.name} needs ADMIN for this (they are not an admin)")
    if caller.is_admin or needed.resource is Resource.SERVER:
        return
    ref = needed.ref
    if ref is not None and ref.admin_when_absent and _named(route, ref) is None:
        raise PermissionDenied(
            f"{caller.name} needs ADMIN for this without {ref.place} parameter "
            f"'{ref.field}' (with it, {needed.level.name} on that {needed.resource.value})"
        )
    for resource, key in named_resources(route):
        if access.can(caller, needed.level, resource, key):
            continue  # held, or no such resource: the handler says so (or creates it)
        have = access.level(caller, resource, key) or Level.NONE
        raise PermissionDenied(_denied(caller, needed, resource, key, have))


def _named(route: Route, ref: Ref) -> Any:
    """The raw value the request gives where ``ref`` says (None when it gives none)."""
    if ref.place == "path":
        raw = (request.view_args or {}).get(ref.field)
    elif ref.place == "query":
        raw = request.args.get(ref.field)
    else:
        if ref.place == "message" and request.method == "GET":
            doc: Any = request.args
        else:
            doc = message_body() if ref.place == "message" else route_body(route)
        if not isinstance(doc, Mapping):
            return None  # not an object: the handler refuses the body
        raw = doc.get(ref.field)
        if raw in (None, "") and ref.alias is not None:
            raw = doc.get(ref.alias)
    return None if raw == "" else raw


def named_resources(route: Route) -> Iterator[tuple[Resource, str]]:
    """The resources the request names where the route's declaration says (a body field may
    name several, in a list)."""
    permission = route.permission
    ref = permission.ref
    assert ref is not None
    raw = _named(route, ref)
    for value in raw if isinstance(raw, list) else [raw]:
        if value is None or value == "":
            if ref.absent is not None:
                yield ref.absent_resource or permission.resource, ref.absent
            continue
        key = ref.parse(str(value)) if ref.parse is not None else str(value)
        if key is not None:
            yield permission.resource, key


def _denied(caller: Caller, needed: Permission, resource: Resource, key: str, have: Level) -> str:
    held = "no permission" if have is Level.NONE else have.name
    if resource is Resource.USER:
        return (
            f"{caller.name} needs ADMIN to manage user {key!r} (a user manages only their own "
            "tokens and password)"
        )
    if resource is Resource.WEBHOOK:
        return (
            f"{caller.name} needs MANAGE on the model of webhook {key} (ADMIN for a webhook of "
            f"every model); they have {held}"
        )
    kind = {
        Resource.MODEL: "model",
        Resource.RUN: "the experiment of run",
        Resource.EXPERIMENT: "experiment",
        Resource.EXPERIMENT_NAME: "experiment",
        Resource.LOGGED_MODEL: "the experiment of logged model",
        Resource.ARTIFACT_PATH: "the experiment or model of artifact path",
    }[resource]
    return f"{caller.name} needs {needed.level.name} on {kind} {key!r}; they have {held}"
