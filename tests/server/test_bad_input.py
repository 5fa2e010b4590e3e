"""Every endpoint's bad input against a real gunicorn server, on SQLite and on PostgreSQL.

Each case asserts the same four things: a 4xx, a body that is exactly ``{"error_code",
"message"}`` whose message names the field (or parameter, header, path) and what was
expected, nothing written (every row of every table, the artifact root and the staging area
are as before), and a server that still answers /health.

The generic cases are generated from the route table (``mlreg.server.routes.api``), so a new
route gets them without anyone writing a line; the tables below add the exact messages for
names, keys and paths, the MLflow path-traversal CVEs (as a checklist) and tar uploads.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from mlreg.registry import MlregClient
from mlreg.registry.artifacts import dir_digest
from mlreg.server.api import Route
from mlreg.server.routes import api
from mlreg.store import StoreSettings
from mlreg.store.tarstream import iter_tar
from mlreg.tracking.client import TrackingClient
from tests.conftest import make_model_dir
from tests.server.process import Answer, ServerProcess, start_server

MAX_REQUEST = 64 * 1024
MAX_UPLOAD = 1 << 20
LIMITS = {"MLREG_MAX_REQUEST_BYTES": str(MAX_REQUEST), "MLREG_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)}
API = "/api/v1"
TAR = "application/x-tar"
DIGEST = "X-Mlreg-Digest"


@dataclass
class Target:
    """A server with a little of everything in it: model ``m`` (version 1 READY with alias
    ``champion`` and tag ``k``; version 2 PENDING), experiment ``exp`` and a run in it with
    param ``p``, metric ``loss`` and artifact ``a/b.txt``, and a logged model the run made
    (tag ``k``); user ``u`` in group ``g`` (the server runs without --auth, so the team routes
    answer anyone on loopback)."""

    server: ServerProcess
    experiment_id: str
    run_id: str
    model_dir: Path
    logged_model_id: str

    def args(self, route: Route) -> dict[str, str]:
        """Valid values for every path argument of ``route``."""
        path = "MLmodel" if "/versions/" in route.rule else "a/b.txt"
        return {
            "name": "m",
            "version": "2"
            if route.handler.__name__ in ("upload_version", "finish_version")
            else "1",
            "alias": "champion",
            "key": "k",
            "path": path,
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "model_id": self.logged_model_id,
            "user": "u",
            "group": "g",
            "principal": "u",
            "token_id": "1",
            "webhook_id": "1",
        }


@pytest.fixture(
    scope="module",
    # A real `mlreg server` process for each.
    params=[
        pytest.param("sqlite", marks=pytest.mark.process),
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ],
)
def target(request, tmp_path_factory) -> Iterator[Target]:
    base = tmp_path_factory.mktemp(f"bad-input-{request.param}")
    uri = request.getfixturevalue("pg_database").uri if request.param == "postgresql" else None
    server = start_server(base / "home", registry_uri=uri, env=LIMITS)
    try:
        settings = StoreSettings(server.url, base / "unused", "alice", home=base / "client")
        model_dir = make_model_dir(base / "model")
        with MlregClient(settings) as registry:
            registry.register_model(str(model_dir), "m")
            registry.set_alias("m", "champion", 1)
            registry.set_registered_model_tag("m", "k", "v")
            registry.set_model_version_tag("m", 1, "k", "v")
            registry.begin_version("m", "pending-source", None, None, None, None)
        with TrackingClient(settings) as tracking:
            experiment_id = tracking.create_experiment("exp")
            run = tracking.create_run(experiment_id)
            tracking.log_batch(run.info.run_id, [("loss", 0.5, 0, None)], {"p": "1"}, {"k": "v"})
            (base / "b.txt").write_text("hello")
            tracking.log_artifact(run.info.run_id, base / "b.txt", "a")
            logged = tracking.create_logged_model(
                experiment_id, "model", source_run_id=run.info.run_id, tags={"k": "v"}
            )
        for method, path, body in [
            ("POST", "/users", {"name": "u"}),
            ("POST", "/groups", {"name": "g"}),
            ("PUT", "/groups/g/members/u", None),
        ]:
            assert server.send(method, API + path, json=body).status in (200, 201)
        yield Target(server, experiment_id, run.info.run_id, model_dir, logged.model_id)
    finally:
        server.stop()


def refused(
    target: Target,
    method: str,
    path: str,
    *,
    status: int | tuple[int, ...],
    message: str | None = None,
    starts: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
) -> Answer:
    """Send one bad request and check the four promises (see the module's docstring)."""
    server = target.server
    before = server.snapshot()
    answer = server.send(method, path, body, headers, json=json_body)
    allowed = status if isinstance(status, tuple) else (status,)
    assert answer.status in allowed, (answer.status, answer.body[:500])
    doc = answer.json()
    assert set(doc) == {"error_code", "message"}, doc
    if message is not None:
        assert doc["message"] == message
    if starts is not None:
        assert doc["message"].startswith(starts), doc["message"]
    assert "Traceback" not in doc["message"] and str(server.home) not in doc["message"]
    assert server.snapshot() == before, "a refused request changed the store"
    assert server.healthy()
    return answer


# --- generated from the route table -----------------------------------------------------------

JSON_ROUTES = [r for r in api.routes if r.body is not None]
PATH_ROUTES = [r for r in api.routes if "<" in r.rule]

#: A valid body for each JSON route (the generated cases break one thing at a time).
VALID_BODIES: dict[str, dict[str, Any]] = {
    "create_model": {"name": "fresh"},
    "update_model": {"description": "d"},
    "rename_model": {"new_name": "renamed"},
    "set_model_tag": {"value": "v"},
    "set_alias": {"version": 1},
    "create_version": {"source": "s"},
    "finish_version": {"status": "FAILED_REGISTRATION"},
    "update_version": {"description": "d"},
    "set_version_tag": {"value": "v"},
    "transition": {"stage": "Staging"},
    "discard_leftover": {"location": "nowhere"},
    "create_experiment": {"name": "fresh"},
    "set_experiment_tag": {"value": "v"},
    "create_run": {},
    "update_run": {"status": "FINISHED"},
    "log_batch": {"metrics": [{"key": "x", "value": 1}]},
    "search_runs": {"experiment_ids": ["1"]},
    "rename_experiment": {"name": "renamed"},
    "log_inputs": {"datasets": []},
    "log_outputs": {"models": []},
    "create_logged_model": {"experiment_id": "1"},
    "finalize_logged_model": {"status": "READY"},
    "set_logged_model_tag": {"value": "v"},
    "log_logged_model_params": {"params": {"q": "2"}},
    "search_logged_models": {"experiment_ids": ["1"]},
    "create_user": {"name": "fresh"},
    "update_user": {"admin": False},
    "set_password": {"password": "a long new password"},
    "create_token": {"name": "ci"},
    "create_group": {"name": "fresh"},
    "grant_model": {"permission": "READ"},
    "grant_experiment": {"permission": "READ"},
    "create_webhook": {"url": "http://127.0.0.1:9/hook"},
    "create_model_webhook": {"url": "http://127.0.0.1:9/hook"},
}


def route_id(route: Route) -> str:
    return f"{route.method} {route.rule}"


def url(target: Target, route: Route, **override: str) -> str:
    args = {**target.args(route), **override}
    rule = route.rule
    for name, value in args.items():
        rule = rule.replace(f"<{name}>", value).replace(f"<path:{name}>", value)
    return API + rule


def test_every_json_route_has_a_valid_body():
    assert sorted(VALID_BODIES) == sorted(r.handler.__name__ for r in JSON_ROUTES)


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


#: One value of each JSON type, with the name the server's messages give that type.
SAMPLES = [(12345, "a number", {"integer", "number"}), ("text", "a string", {"string"})]
SAMPLES += [(True, "a boolean", {"boolean"}), ([1], "an array", {"array"})]
SAMPLES += [({"a": 1}, "an object", {"object"}), (None, "null", {"null"})]


def wrong_values(schema: dict[str, Any], field: str) -> Iterator[tuple[Any, str]]:
    """Values ``schema`` refuses, with the exact message the server gives for each."""
    if "enum" in schema:
        choices = ", ".join(repr(c) for c in schema["enum"])
        yield "bogus", f"field '{field}': expected one of {choices}, got 'bogus'"
        return
    if "type" not in schema:
        return
    allowed = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    expected = " or ".join(allowed)
    for value, got, kinds in SAMPLES:
        if not kinds & set(allowed):
            yield value, f"field '{field}': expected {_article(expected)}, got {got}"


def json_cases() -> Iterator[Any]:
    for route in JSON_ROUTES:
        valid = VALID_BODIES[route.handler.__name__]
        props = route.body.get("properties", {})
        allowed = ", ".join(sorted(props))
        cases: list[tuple[str, bytes, str, int, str]] = [
            ("malformed", b'{"a": ', "application/json", 400, "malformed JSON: "),
            ("array", b"[]", "application/json", 400, "the body: expected an object, got an array"),
            ("empty", b"", "application/json", 400, "empty request body; expected a JSON object"),
            (
                "text-plain",
                json.dumps(valid).encode(),
                "text/plain",
                415,
                "expected Content-Type application/json, got 'text/plain'",
            ),
            (
                "no-content-type",
                json.dumps(valid).encode(),
                "",
                415,
                "expected Content-Type application/json, got none",
            ),
            (
                "unknown-field",
                json.dumps({**valid, "zz_unknown": 1}).encode(),
                "application/json",
                400,
                f"unknown field 'zz_unknown'; expected: {allowed}",
            ),
            (
                "oversize",
                json.dumps({**valid, "pad": "x" * MAX_REQUEST}).encode(),
                "application/json",
                413,
                f"request body is {{size}} bytes; the limit is {MAX_REQUEST} bytes "
                "(MLREG_MAX_REQUEST_BYTES)",
            ),
        ]
        for field_name in route.body.get("required", []):
            body = {k: v for k, v in valid.items() if k != field_name}
            message = f"missing field '{field_name}'"
            cases.append(
                (
                    f"missing-{field_name}",
                    json.dumps(body).encode(),
                    "application/json",
                    400,
                    message,
                )
            )
        for field_name, schema in props.items():
            for i, (value, message) in enumerate(wrong_values(schema, field_name)):
                body = json.dumps({**valid, field_name: value}).encode()
                cases.append((f"type-{field_name}-{i}", body, "application/json", 400, message))
        for name, body, mimetype, status, message in cases:
            yield pytest.param(
                route, body, mimetype, status, message, id=f"{route_id(route)} {name}"
            )


@pytest.mark.parametrize(("route", "body", "mimetype", "status", "message"), list(json_cases()))
def test_json_body_refused(target, route, body, mimetype, status, message):
    headers = {"Content-Type": mimetype} if mimetype else {}
    message = message.replace("{size}", str(len(body)))
    if message.endswith(": "):
        refused(
            target,
            route.method,
            url(target, route),
            body=body,
            headers=headers,
            status=status,
            starts=message,
        )
    else:
        refused(
            target,
            route.method,
            url(target, route),
            body=body,
            headers=headers,
            status=status,
            message=message,
        )


def send_chunked(
    server: ServerProcess, method: str, path: str, content_type: str, chunks: Iterator[bytes]
) -> tuple[int, dict[str, Any]]:
    """Send a body in chunked transfer encoding (no Content-Length), as far as the server
    reads it: a server that refuses it early closes the connection, then answers."""
    where = urlsplit(server.url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    try:
        conn.putrequest(method, path)
        conn.putheader("Content-Type", content_type)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for chunk in chunks:
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the end: the answer is waiting
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def test_chunked_json_body_past_the_limit_is_refused_without_reading_it_all(target):
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "x", "pad": "'
        for _ in range(64):
            yield b"x" * MAX_REQUEST
        yield b'"}'

    server = target.server
    before = server.snapshot()
    status, doc = send_chunked(server, "POST", f"{API}/models", "application/json", chunks())
    assert (status, doc) == (
        413,
        {
            "error_code": "PAYLOAD_TOO_LARGE",
            "message": f"request body is larger than the limit of {MAX_REQUEST} bytes "
            "(MLREG_MAX_REQUEST_BYTES)",
        },
    )
    assert server.snapshot() == before and server.healthy()


#: Path segments that must never reach a file system or a 500: as sent, percent-encoded.
BAD_SEGMENTS = {
    "dotdot": "..",
    "encoded-dotdot": "%2e%2e",
    "double-encoded-dotdot": "%252e%252e",
    "encoded-slash": "a%2fb",
    "traversal": "..%2f..%2fetc%2fpasswd",
    "absolute": "%2fetc%2fpasswd",
    "nul": "a%00b",
    "backslash": "..%5c..%5cetc",
    "control": "a%0ab",
}


def path_cases() -> Iterator[Any]:
    for route in PATH_ROUTES:
        for arg in target_arg_names(route):
            for label, segment in BAD_SEGMENTS.items():
                if label == "encoded-slash" and f"<path:{arg}>" in route.rule:
                    continue  # '/' belongs in keys and artifact paths
                yield pytest.param(route, arg, segment, id=f"{route_id(route)} {arg}={label}")


def target_arg_names(route: Route) -> list[str]:
    return re.findall(r"<(?:\w+:)?(\w+)>", route.rule)


def request_body(target: Target, route: Route) -> tuple[bytes | None, dict[str, str]]:
    name = route.handler.__name__
    if name in VALID_BODIES:
        return json.dumps(VALID_BODIES[name]).encode(), {"Content-Type": "application/json"}
    if name == "upload_version":
        tar = b"".join(iter_tar(target.model_dir))
        return tar, {"Content-Type": TAR, DIGEST: dir_digest(target.model_dir)}
    if name == "upload_artifact":
        return b"bytes", {"Content-Type": "application/octet-stream"}
    return None, {}


@pytest.mark.parametrize(("route", "arg", "segment"), list(path_cases()))
def test_bad_path_argument_refused(target, route, arg, segment):
    """Every path argument of every route, with each hostile segment: a 400 for a value that
    is malformed where it is used, a 404 for a lookup that finds nothing (names are only
    looked up, never joined to a file path); either way the message names what was sent."""
    body, headers = request_body(target, route)
    answer = refused(
        target,
        route.method,
        url(target, route, **{arg: segment}),
        body=body,
        headers=headers,
        status=(400, 404),
    )
    message = answer.json()["message"]
    if message.startswith("no endpoint"):
        return  # the segment changed which route the path names, and none does
    decoded = unquote(segment)
    assert repr(decoded) in message or f"path parameter '{arg}'" in message, message


# --- names, keys and paths in bodies and queries: exact messages -------------------------------

KEY_CHARS = "use 1-250 letters, digits, '_', '-', '.', ' ' or '/'"
UNSAFE_SEGMENTS = "no empty, '.', '..' or encoded segments allowed"
UNSAFE_ROOT = "must be relative, with '/' separators"
HOSTILE = ["..", "a/b", "/etc/passwd", "a\\b", "a\x00b", "%2e%2e", "file:///etc"]


def bad_name(name: str, field: str) -> str:
    if "\x00" in name:
        return nul(field)
    return (
        f"invalid model name {name!r}: use 1-128 letters, digits, '_', '.' or '-', starting "
        "with a letter or digit"
    )


def nul(field: str, where: str = "field") -> str:
    return f"{where} '{field}': contains a NUL character, which no name or text may hold"


def bad_key(key: str, kind: str = "tag") -> str:
    if key.startswith("/") or ".." in key.split("/"):
        return f"invalid {kind} key {key!r}: it must not look like a path escape"
    return f"invalid {kind} key {key!r}: {KEY_CHARS}"


def body_cases(target_run: str = "{run}") -> Iterator[Any]:
    for name in HOSTILE:
        yield "POST", "/models", {"name": name}, bad_name(name, "name")
        yield "POST", "/models/m/rename", {"new_name": name}, bad_name(name, "new_name")
    for key in ["../x", "/etc", "a\\b", "%2e%2e", "a/../b"]:
        yield "POST", "/models", {"name": "t", "tags": {key: "v"}}, bad_key(key)
        yield "POST", "/experiments", {"name": "t", "tags": {key: "v"}}, bad_key(key)
        yield "POST", "/runs", {"tags": {key: "v"}}, bad_key(key)
        batch = {"metrics": [{"key": key, "value": 1}]}
        yield "POST", f"/runs/{target_run}/batch", batch, bad_key(key, "metric")
        batch = {"params": {key: "1"}}
        yield "POST", f"/runs/{target_run}/batch", batch, bad_key(key, "param")
    # NUL: SQLite stores it, PostgreSQL refuses it with a driver error; both must say 400.
    yield "POST", "/models", {"name": "t", "tags": {"a\x00": "v"}}, nul("tags", "a key of field")
    yield "POST", "/models", {"name": "t", "description": "a\x00b"}, nul("description")
    yield "POST", "/models", {"name": "t", "tags": {"k": "a\x00b"}}, nul("tags.k")
    yield "POST", "/models/m/versions", {"source": "a\x00b"}, nul("source")
    yield "POST", "/runs", {"run_name": "r", "tags": {"k": "\x00"}}, nul("tags.k")
    yield "POST", f"/runs/{target_run}/batch", {"params": {"p2": "\x00"}}, nul("params.p2")
    search = {"experiment_ids": ["1"], "filter": "params.p = '\x00'"}
    yield "POST", "/runs/search", search, nul("filter")
    stage = {"stage": "Staging", "user": "eve\x00"}
    yield "POST", "/models/m/versions/1/stage", stage, nul("user")
    finish = {"status": "FAILED_REGISTRATION", "message": "\x00"}
    yield "POST", "/models/m/versions/2/finish", finish, nul("message")
    # Numbers the database cannot hold (64-bit integer columns).
    big = 2**63
    yield (
        "POST",
        f"/runs/{target_run}/batch",
        {"metrics": [{"key": "x", "value": 1, "step": big}]},
        f"field 'metrics.0.step': {big} is greater than the maximum of {big - 1}",
    )
    yield (
        "POST",
        f"/runs/{target_run}/batch",
        {"metrics": [{"key": "x", "value": 1, "timestamp": big}]},
        f"field 'metrics.0.timestamp': {big} is greater than the maximum of {big - 1}",
    )
    yield (
        "POST",
        f"/runs/{target_run}/batch",
        {"metrics": [{"key": "x", "value": "nan"}]},
        "field 'metrics.0.value': expected a number or one of 'NaN', 'Infinity', '-Infinity', "
        "got 'nan'",
    )
    yield (
        "POST",
        "/runs",
        {"experiment_id": str(big)},
        f"invalid experiment id {str(big)!r}",
    )
    yield (
        "POST",
        "/experiments",
        {"name": "e", "artifact_location": "file:///etc"},
        "unknown field 'artifact_location'; expected: name, tags",
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [pytest.param(*case, id=f"{case[1]} {case[2]!r}"[:120]) for case in body_cases()],
)
def test_names_keys_and_values_refused(target, method, path, body, message):
    path = path.replace("{run}", target.run_id)
    refused(target, method, API + path, json_body=body, status=400, message=message)


def query_cases() -> Iterator[Any]:
    yield "/models?max_results=abc", "query parameter 'max_results': expected an integer, got 'abc'"
    yield "/models?max_results=0", "query parameter 'max_results': expected 1-1000, got 0"
    yield (
        "/models?page_token=zzz",
        "invalid page_token 'zzz': pass the next_page_token of a previous page",
    )
    yield (
        "/models?order_by=name%3B%20DROP%20TABLE%20x",
        "invalid order_by 'name; DROP TABLE x'; expected one of name, created, updated "
        "optionally followed by ASC or DESC",
    )
    yield "/models?tag=novalue", "query parameter 'tag': expected KEY=VALUE, got 'novalue'"
    yield "/models?name_like=a%00", nul("name_like", "query parameter")
    yield "/versions?name=a%00", nul("name", "query parameter")
    yield "/experiments?name=a%00", nul("name", "query parameter")
    yield "/models?tag=a%3D%00", nul("tag", "query parameter")
    yield (
        "/versions?status=DONE",
        "query parameter 'status': expected one of PENDING_REGISTRATION, READY, "
        "FAILED_REGISTRATION, got 'DONE'",
    )
    yield (
        "/versions?stage=Bogus",
        "unknown stage 'Bogus'; expected one of: None, Staging, Production, Archived",
    )
    yield "/models/m/history?version=..", "invalid version '..': expected a positive integer"
    yield (
        "/resolve?uri=file:///etc/passwd",
        "query parameter 'uri': expected a models:/ URI, got 'file:///etc/passwd'",
    )
    yield (
        "/resolve?uri=models:/m/../../x",
        "invalid model URI 'models:/m/../../x': expected "
        "models:/<name>/<version|stage|latest> or models:/<name>@<alias>",
    )
    yield "/runs/{run}/artifacts?path=../..", f"unsafe path '../..': {UNSAFE_SEGMENTS}"
    yield "/runs/{run}/artifacts?path=/etc", f"unsafe path '/etc': {UNSAFE_ROOT}"
    yield "/runs/{run}/artifacts?path=%252e%252e", f"unsafe path '%2e%2e': {UNSAFE_SEGMENTS}"
    yield "/runs/{run}/artifacts?path=a%5Cb", f"unsafe path 'a\\\\b': {UNSAFE_ROOT}"
    yield "/runs/{run}/metrics/..", bad_key("..", "metric")
    yield "/runs/{run}/metrics/a%2F..%2F..", bad_key("a/../..", "metric")


@pytest.mark.parametrize(("path", "message"), list(query_cases()))
def test_query_parameters_refused(target, path, message):
    refused(target, "GET", API + path.replace("{run}", target.run_id), status=400, message=message)


# --- the MLflow path-traversal CVEs, as a checklist --------------------------------------------


def test_cve_2023_1177_a_version_source_is_a_label_never_a_place_to_read(target):
    """MLflow <2.2.1 read a model version's files from its ``source`` on the server's disk
    (``source=/etc`` or ``file:///etc``, then get-artifact ``path=passwd``). Here a source is
    only what the client says the model came from: the files of a version are the ones
    uploaded to it, so a version with such a source has none to hand out, and cannot be
    confirmed READY without an upload."""
    server = target.server
    for source in ["/etc", "file:///etc", "//proc/self/root/etc", "http://host/#/../../etc"]:
        created = server.send("POST", f"{API}/models/m/versions", json={"source": source})
        assert created.status == 201
        number = created.json()["model_version"]["version"]
        files = f"{API}/models/m/versions/{number}/files"
        expected = (
            f"version {number} of 'm' is PENDING_REGISTRATION; only READY versions have files "
            "to hand out"
        )
        refused(target, "GET", f"{files}/passwd", status=409, message=expected)
        refused(target, "GET", files, status=409, message=expected)
        refused(
            target,
            "POST",
            f"{API}/models/m/versions/{number}/finish",
            json_body={"status": "READY", "digest": "0" * 64},
            status=409,
            message=f"version {number} of 'm' is PENDING_REGISTRATION; upload its files "
            "(PUT .../content) before confirming it READY with their digest",
        )
        resolved = server.send("GET", f"{API}/resolve?uri=models:/m/{number}")
        assert resolved.status == 409
        server.send("DELETE", f"{API}/models/m/versions/{number}")


@pytest.mark.parametrize(
    ("cve", "method", "path", "message"),
    [
        # MLflow <2.0: get-artifact with path=../../../etc/passwd (CVE-2023-30172 shape).
        ("CVE-2023-30172", "GET", "/runs/{run}/artifacts?path=../../../../etc", UNSAFE_SEGMENTS),
        # Backslash escapes ("\\..\\filename") of CVE-2023-6909 and CVE-2023-2780.
        ("CVE-2023-6909", "GET", "/runs/{run}/artifacts/..%5C..%5Cetc%5Cpasswd", UNSAFE_ROOT),
        ("CVE-2023-6909", "GET", "/models/m/versions/1/files/..%5CMLmodel", UNSAFE_ROOT),
        # "#" in place of "?" to smuggle a traversal past the path check (CVE-2024-1483).
        ("CVE-2024-1483", "GET", "/runs/{run}/artifacts/x%23%2F..%2F..%2Fetc", UNSAFE_SEGMENTS),
        # Double-encoded dots (CVE-2023-6730, CVE-2024-1560: delete any directory).
        (
            "CVE-2024-1560",
            "DELETE",
            "/runs/{run}/artifacts/%252e%252e%252f%252e%252e",
            UNSAFE_SEGMENTS,
        ),
        (
            "CVE-2023-6730",
            "GET",
            "/runs/{run}/artifacts/%252e%252e%252fregistry.db",
            UNSAFE_SEGMENTS,
        ),
        # ";" path parameters carrying a traversal (CVE-2024-1593).
        ("CVE-2024-1593", "GET", "/runs/{run}/artifacts/a;/../../../etc/passwd", UNSAFE_SEGMENTS),
        ("CVE-2024-1593", "PUT", "/runs/{run}/artifacts/a;/../../../../x", UNSAFE_SEGMENTS),
        ("CVE-2024-1593", "GET", "/models/m/versions/1/files/a;/../../../../x", UNSAFE_SEGMENTS),
    ],
)
def test_mlflow_path_traversal_checklist(target, cve, method, path, message):
    path = API + path.replace("{run}", target.run_id)
    headers = {"Content-Type": "application/octet-stream"} if method == "PUT" else {}
    body = b"payload" if method == "PUT" else None
    answer = refused(target, method, path, body=body, headers=headers, status=400)
    assert answer.json()["message"].endswith(message), answer.json()


# --- uploads -------------------------------------------------------------------------------------


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = b"x", **kw) -> Any:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in kw.items():
        setattr(info, key, value)
    return info, data if kind == tarfile.REGTYPE else None


def upload_cases() -> Iterator[Any]:
    ok = member("MLmodel")
    yield (
        "symlink",
        tar_of(ok, member("link", tarfile.SYMTYPE, linkname="/etc/passwd")),
        400,
        ("link in the upload is not a regular file"),
    )
    yield (
        "hard link",
        tar_of(ok, member("hard", tarfile.LNKTYPE, linkname="MLmodel")),
        400,
        ("hard in the upload is not a regular file"),
    )
    yield (
        "device",
        tar_of(ok, member("dev", tarfile.CHRTYPE, devmajor=1, devminor=3)),
        400,
        ("dev in the upload is not a regular file"),
    )
    yield (
        "fifo",
        tar_of(ok, member("fifo", tarfile.FIFOTYPE)),
        400,
        ("fifo in the upload is not a regular file"),
    )
    yield "dotdot", tar_of(ok, member("../x")), 400, f"unsafe path '../x': {UNSAFE_SEGMENTS}"
    yield (
        "nested dotdot",
        tar_of(ok, member("a/../../x")),
        400,
        (f"unsafe path 'a/../../x': {UNSAFE_SEGMENTS}"),
    )
    yield (
        "absolute",
        tar_of(ok, member("/etc/cron.d/x")),
        400,
        (f"unsafe path '/etc/cron.d/x': {UNSAFE_ROOT}"),
    )
    yield "backslash", tar_of(ok, member("..\\x")), 400, f"unsafe path '..\\\\x': {UNSAFE_ROOT}"
    yield "twice", tar_of(ok, member("MLmodel")), 400, "the upload holds MLmodel twice"
    yield (
        "file then dir",
        tar_of(ok, member("MLmodel/x")),
        400,
        ("the upload holds MLmodel both as a file and as a directory"),
    )
    yield (
        "too big",
        tar_of(ok, member("big", data=b"\0" * (MAX_UPLOAD + 1))),
        413,
        (f"the upload is larger than the limit of {MAX_UPLOAD} bytes (MLREG_MAX_UPLOAD_BYTES)"),
    )
    yield (
        "not a tar",
        b"this is not a tar stream" * 100,
        400,
        ("the upload is not a valid tar stream: "),
    )
    yield (
        "truncated",
        tar_of(ok, member("data", data=b"y" * 5000))[:3000],
        400,
        ("the upload is not a valid tar stream: "),
    )


@pytest.mark.parametrize(
    ("body", "status", "message"), [pytest.param(*case[1:], id=case[0]) for case in upload_cases()]
)
def test_bad_tar_upload_refused_and_version_stays_pending(target, body, status, message):
    headers = {"Content-Type": TAR, DIGEST: "0" * 64}
    path = f"{API}/models/m/versions/2/content"
    answer = refused(target, "PUT", path, body=body, headers=headers, status=status)
    assert answer.json()["message"].startswith(message), answer.json()
    version = target.server.send("GET", f"{API}/models/m/versions/2").json()["model_version"]
    assert version["status"] == "PENDING_REGISTRATION"


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        pytest.param(
            {"Content-Type": "application/octet-stream", DIGEST: "0" * 64},
            415,
            f"expected Content-Type {TAR}, got 'application/octet-stream'",
            id="content-type",
        ),
        pytest.param(
            {"Content-Type": TAR},
            400,
            f"header {DIGEST}: expected the files' sha256 (64 hex digits)",
            id="no digest",
        ),
        pytest.param(
            {"Content-Type": TAR, DIGEST: "../../etc"},
            400,
            f"header {DIGEST}: expected the files' sha256 (64 hex digits)",
            id="bad digest",
        ),
        pytest.param(
            {"Content-Type": TAR, DIGEST: "f" * 64},
            400,
            f"header {DIGEST}: the files arrived with sha256 {{actual}}, not the "
            + "f" * 64
            + " it names; nothing was stored (send them again)",
            id="digest mismatch",
        ),
    ],
)
def test_upload_headers_refused(target, headers, status, message):
    body = b"".join(iter_tar(target.model_dir))
    message = message.replace("{actual}", dir_digest(target.model_dir))
    path = f"{API}/models/m/versions/2/content"
    refused(target, "PUT", path, body=body, headers=headers, status=status, message=message)


def test_upload_to_a_ready_version_refused(target):
    body = b"".join(iter_tar(target.model_dir))
    headers = {"Content-Type": TAR, DIGEST: dir_digest(target.model_dir)}
    refused(
        target,
        "PUT",
        f"{API}/models/m/versions/1/content",
        body=body,
        headers=headers,
        status=409,
        message="version 1 of 'm' is READY; files are uploaded once, to a PENDING_REGISTRATION "
        "version",
    )


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "message"),
    [
        pytest.param(
            "a/c.txt",
            {"Content-Type": "text/plain"},
            b"x",
            415,
            "expected Content-Type application/octet-stream, got 'text/plain'",
            id="content-type",
        ),
        pytest.param(
            "big.bin",
            {"Content-Type": "application/octet-stream"},
            b"\0" * (MAX_UPLOAD + 1),
            413,
            f"request body is {MAX_UPLOAD + 1} bytes; the limit is {MAX_UPLOAD} bytes "
            "(MLREG_MAX_UPLOAD_BYTES)",
            id="too big",
        ),
        pytest.param(
            "a",
            {"Content-Type": "application/octet-stream"},
            b"x",
            409,
            "artifact 'a' is a directory; a file cannot replace it",
            id="over a directory",
        ),
        pytest.param(
            "a/b.txt/c",
            {"Content-Type": "application/octet-stream"},
            b"x",
            409,
            "artifact 'a/b.txt' is a file; it cannot hold 'a/b.txt/c'",
            id="under a file",
        ),
    ],
)
def test_artifact_upload_refused(target, path, headers, body, status, message):
    url_path = f"{API}/runs/{target.run_id}/artifacts/{path}"
    refused(target, "PUT", url_path, body=body, headers=headers, status=status, message=message)


def test_chunked_artifact_upload_past_the_limit_is_refused_and_leaves_nothing(target):
    server = target.server
    before = server.snapshot()
    status, doc = send_chunked(
        server,
        "PUT",
        f"{API}/runs/{target.run_id}/artifacts/chunked.bin",
        "application/octet-stream",
        iter([b"\0" * (256 * 1024)] * 16),
    )
    assert (status, doc["message"]) == (
        413,
        f"request body is larger than the limit of {MAX_UPLOAD} bytes (MLREG_MAX_UPLOAD_BYTES)",
    )
    assert server.snapshot() == before and server.healthy()


def test_good_upload_after_the_bad_ones_makes_the_version_ready(target):
    """The refusals left version 2 as it was: the real files still register it."""
    server = target.server
    body = b"".join(iter_tar(target.model_dir))
    digest = dir_digest(target.model_dir)
    answer = server.send(
        "PUT",
        f"{API}/models/m/versions/2/content",
        body,
        {"Content-Type": TAR, DIGEST: digest},
    )
    assert answer.status == 200, answer.body
    assert answer.json()["model_version"]["status"] == "READY"
    assert answer.json()["model_version"]["digest"] == digest
    assert list(server.staging.iterdir()) == []


def test_unknown_endpoints_and_methods(target):
    refused(target, "GET", "/api/v2/models", status=404, message="no endpoint /api/v2/models")
    refused(
        target,
        "POST",
        f"{API}/models/m",
        status=405,
        message=f"method POST is not allowed on {API}/models/m; allowed: DELETE, GET, HEAD, "
        "OPTIONS, PATCH",
    )
    refused(
        target,
        "POST",
        f"{API}/models/m/versions",
        headers={"Content-Type": "application/json", "Idempotency-Key": "../../x"},
        body=b'{"source": "s"}',
        status=400,
        message="header Idempotency-Key: expected 1-48 letters, digits, '.', '_' or '-' "
        "(a UUID will do)",
    )
