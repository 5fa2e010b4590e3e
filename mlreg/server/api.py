"""The route table: each route declares its method, path, permission, summary and schemas.

Handlers stay thin: the declared JSON Schema checks the body before the handler runs (an
error names the field and what was expected), query parameters are read with the helpers
below, and the OpenAPI document and the permission tests are generated from this table.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from mlreg.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from mlreg.server.permissions import Permission
from mlreg.web.http import JSON, json_response

Handler = Callable[..., Response]
ROUTES_KEY = "mlreg.server.routes"


@dataclass(frozen=True)
class Route:
    method: str
    #: Flask rule relative to the API prefix, e.g. ``/models/<name>``.
    rule: str
    handler: Handler
    permission: Permission
    summary: str
    #: OpenAPI tag (the group the route is listed under).
    tag: str
    #: JSON Schema of the request body; None when the route takes no JSON body.
    body: dict[str, Any] | None = None
    #: Query parameters: name -> JSON Schema.
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: JSON Schema (or ``$ref``) of a successful answer.
    response: dict[str, Any] | None = None
    #: The body is a raw byte stream (uploads), of this media type.
    raw_body: str | None = None
    #: The answer is a raw byte stream (downloads).
    raw_response: bool = False
    #: Status of a successful answer.
    status: int = 200
    #: The compiled ``body`` schema.
    validator: Draft202012Validator | None = field(default=None, compare=False, repr=False)
    #: A browser's sign-in cookie is accepted (the web UI's routes, whose forms carry CSRF
    #: tokens; never the JSON API's).
    sessions: bool = False


class Api:
    """Collects routes with their declarations, then registers them on a blueprint."""

    def __init__(
        self, prefix: str, max_json_bytes: Callable[[], int], *, sessions: bool = False
    ) -> None:
        self.prefix = prefix
        self.routes: list[Route] = []
        self._max_json_bytes = max_json_bytes
        self.sessions = sessions

    def route(
        self,
        method: str,
        rule: str,
        *,
        permission: Permission,
        summary: str,
        tag: str,
        body: dict[str, Any] | None = None,
        query: dict[str, dict[str, Any]] | None = None,
        response: dict[str, Any] | None = None,
        raw_body: str | None = None,
        raw_response: bool = False,
        status: int = 200,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            validator = Draft202012Validator(body) if body is not None else None
            wrapped = self._with_body(handler, validator) if validator is not None else handler
            self.routes.append(
                Route(
                    method,
                    rule,
                    wrapped,
                    permission,
                    summary,
                    tag,
                    body,
                    query or {},
                    response,
                    raw_body,
                    raw_response,
                    status,
                    validator,
                    self.sessions,
                )
            )
            return handler

        return register

    def _with_body(self, handler: Handler, validator: Draft202012Validator) -> Handler:
        @functools.wraps(handler)
        def parse_then_handle(**kwargs: Any) -> Response:
            return handler(body=parsed_body(validator, self._max_json_bytes()), **kwargs)

        return parse_then_handle

    @staticmethod
    def endpoint(route: Route) -> str:
        return f"{route.method.lower()}_{route.handler.__name__}"

    def blueprint(self, name: str) -> Blueprint:
        bp = Blueprint(name, __name__, url_prefix=self.prefix or None)
        bp.before_request(refuse_nul_in_path_and_query)
        for r in self.routes:
            bp.add_url_rule(r.rule, self.endpoint(r), r.handler, methods=[r.method])
        return bp

    def mount(self, app: Flask, name: str) -> None:
        """Register the routes on ``app`` and record each endpoint's declaration, so a
        request's permission is found by its endpoint (see :func:`declared_route`)."""
        app.register_blueprint(self.blueprint(name))
        table: dict[str, Route] = app.extensions.setdefault(ROUTES_KEY, {})
        for r in self.routes:
            table[f"{name}.{self.endpoint(r)}"] = r

    def find(self, method: str, rule: str) -> Route:
        """The route declared for ``method`` and the Flask ``rule`` (with the prefix)."""
        for r in self.routes:
            if r.method == method and self.prefix + r.rule == rule:
                return r
        raise KeyError(f"{method} {rule}")


# --- request bodies -------------------------------------------------------------------------


def parsed_body(validator: Draft202012Validator, limit: int) -> Any:
    """The request's JSON body checked against the route's schema, parsed once per request
    (the permission check may need it before the handler does)."""
    if "mlreg_body" not in g:
        g.mlreg_body = json_body(validator, limit)
    return g.mlreg_body


def route_body(route: Route) -> Any:
    """The JSON body of the request ``route`` answers (None if it declares none)."""
    if route.validator is None:
        return None
    return parsed_body(route.validator, current_app.config["MLREG_MAX_REQUEST_BYTES"])


def require_media_type(expected: str) -> None:
    """UnsupportedMediaType unless the request's body is of media type ``expected``."""
    if request.mimetype != expected:
        got = f"'{request.mimetype}'" if request.mimetype else "none"
        raise UnsupportedMediaType(f"expected Content-Type {expected}, got {got}")


def json_body(validator: Draft202012Validator, limit: int) -> Any:
    """The request's JSON body, checked against the route's schema."""
    require_media_type(JSON)
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge.body(length, limit, "MLREG_MAX_REQUEST_BYTES")
    # At most one byte past the limit is read: a chunked body (no Content-Length) may be
    # any size, and must not be held in memory whole to find out.
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge.body(length, limit, "MLREG_MAX_REQUEST_BYTES")
    if not raw.strip():
        raise InvalidInput("empty request body; expected a JSON object")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"malformed JSON: {e}") from None
    error = best_match(validator.iter_errors(doc))
    if error is not None:
        raise InvalidInput(describe(error))
    refuse_nul(doc)
    return doc


def message_body() -> Any:
    """The request's JSON body as MLflow's server reads it (no body is ``{}``; a JSON
    Content-Type or none), parsed once per request: the permission check before the handler
    reads the field that names the resource, the handler then reads the same document."""
    if "message_body" in g:
        return g.message_body
    limit = current_app.config["MLREG_MAX_REQUEST_BYTES"]
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge.body(length, limit, "MLREG_MAX_REQUEST_BYTES")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge.body(len(raw), limit, "MLREG_MAX_REQUEST_BYTES")
    if not raw.strip():
        doc: Any = {}  # MLflow's clients send no body where every field is optional
    elif request.mimetype not in (JSON, "", None) and not request.mimetype.endswith("+json"):
        raise InvalidInput(f"expected Content-Type {JSON}, got '{request.mimetype}'")
    else:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise InvalidInput(f"malformed JSON: {e}") from None
    g.message_body = doc
    return doc


NUL_MESSAGE = "contains a NUL character, which no name or text may hold"


def refuse_nul(doc: Any, where: str = "") -> None:
    """InvalidInput naming the first field whose text (or key) holds a NUL character.

    JSON allows ``\\u0000`` in strings; PostgreSQL's text columns refuse it with a driver
    error, so it is refused here for every store alike.
    """
    if isinstance(doc, str):
        if "\x00" in doc:
            raise InvalidInput(f"field '{where}': {NUL_MESSAGE}")
    elif isinstance(doc, dict):
        for key, value in doc.items():
            if "\x00" in key:
                subject = f"a key of field '{where}'" if where else "a field name"
                raise InvalidInput(f"{subject}: {NUL_MESSAGE}")
            refuse_nul(value, f"{where}.{key}" if where else key)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            refuse_nul(value, f"{where}.{i}" if where else str(i))


def refuse_nul_in_path_and_query() -> None:
    """The path and query parameters of an /api/v1 request, checked as bodies are."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(f"path parameter '{name}': {NUL_MESSAGE}")
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise InvalidInput(f"query parameter '{name.replace(chr(0), '')}': {NUL_MESSAGE}")


def describe(error: ValidationError) -> str:
    """A schema violation as "field 'a.b': expected ..., got ..." (the field, then what)."""
    where = ".".join(str(p) for p in error.absolute_path)
    subject = f"field '{where}'" if where else "the body"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        field_prefix = f"{where}." if where else ""
        names = ", ".join(f"'{field_prefix}{name}'" for name in extra)
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown field {names}; expected: {allowed}"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        field_prefix = f"{where}." if where else ""
        return f"missing field '{field_prefix}{missing}'"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{subject}: expected {_article(expected)}, got {_json_type(error.instance)}"
    if error.validator in ("oneOf", "anyOf"):
        options = " or ".join(_expected(s) for s in error.validator_value)
        return f"{subject}: expected {options}, got {_shown(error.instance)}"
    if error.validator == "enum":
        choices = ", ".join(repr(c) for c in error.validator_value)
        return f"{subject}: expected one of {choices}, got {error.instance!r}"
    if error.validator == "pattern":
        wanted = error.schema.get("description") or f"text matching {error.validator_value}"
        return f"{subject}: expected {wanted}, got {error.instance!r}"
    if error.validator in ("maxLength", "minLength"):
        bound = "at most" if error.validator == "maxLength" else "at least"
        got = len(error.instance)
        return f"{subject}: expected {bound} {error.validator_value} characters, got {got}"
    return f"{subject}: {error.message}"


def _expected(schema: dict[str, Any]) -> str:
    """What a (sub)schema accepts, in words: "a number", "one of 'a', 'b'"."""
    if "enum" in schema:
        return "one of " + ", ".join(repr(c) for c in schema["enum"])
    kind = schema.get("type", "value")
    return " or ".join(_article(k) for k in (kind if isinstance(kind, list) else [kind]))


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else _json_type(value)


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --- query parameters -----------------------------------------------------------------------


def query_str(name: str, default: str | None = None) -> str | None:
    value = request.args.get(name)
    return default if value is None or value == "" else value


def query_int(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"query parameter '{name}': expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise InvalidInput(f"query parameter '{name}': expected {low}-{high}, got {value}")
    return value


def query_bool(name: str) -> bool:
    raw = (request.args.get(name) or "").lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise InvalidInput(f"query parameter '{name}': expected true or false, got {raw!r}")


def query_tags(name: str = "tag") -> dict[str, str]:
    """Repeated ``tag=key=value`` parameters."""
    tags = {}
    for pair in request.args.getlist(name):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"query parameter '{name}': expected KEY=VALUE, got {pair!r}")
        tags[key] = value
    return tags


def declared_route() -> Route | None:
    """The declaration of the route answering this request (None: no route matched)."""
    if request.endpoint is None:
        return None
    return current_app.extensions[ROUTES_KEY].get(request.endpoint)


def ok(doc: Any, status: int = 200) -> Response:
    return json_response(orjson.dumps(doc), status)
