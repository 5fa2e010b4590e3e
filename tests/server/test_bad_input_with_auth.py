"""The bad-input promises hold on a server with ``--auth`` too (test_bad_input.py runs the
server as it starts by default, without authentication).

For every JSON route, generated from the route table: a signed-in admin's unknown field is
the same 400 naming the field, and a caller without credentials gets the 401 before any of
its body is read (so a stranger learns nothing of a route's schema); either way nothing is
written and the server stays healthy.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from mlreg.server.api import Route
from tests.server.process import ServerProcess, start_server
from tests.server.test_bad_input import API, JSON_ROUTES, VALID_BODIES, route_id

pytestmark = pytest.mark.process  # a real `mlreg server` with --auth

PASSWORD = "an admin password for the bad-input tests"
ADMIN = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
#: Values for path arguments: the body is refused before anything is looked up.
ARGS = {
    "name": "m",
    "version": "1",
    "alias": "champion",
    "key": "k",
    "path": "a.txt",
    "run_id": "0" * 32,
    "experiment_id": "1",
    "user": "u",
    "group": "g",
    "principal": "u",
    "token_id": "1",
    "webhook_id": "1",
}


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("bad-input-auth") / "home"
    server = start_server(home, env={"MLREG_AUTH": "1", "MLREG_ADMIN_PASSWORD": PASSWORD})
    try:
        yield server
    finally:
        server.stop()


def path_of(route: Route) -> str:
    rule = route.rule
    for name, value in ARGS.items():
        rule = rule.replace(f"<{name}>", value).replace(f"<path:{name}>", value)
        rule = rule.replace(f"<int:{name}>", value)
    return API + rule


def unknown_field(route: Route) -> bytes:
    return json.dumps({**VALID_BODIES[route.handler.__name__], "zz_unknown": 1}).encode()


@pytest.mark.parametrize("route", JSON_ROUTES, ids=route_id)
def test_a_signed_in_admin_gets_the_same_400(auth_server, route):
    before = auth_server.snapshot()
    answer = auth_server.send(
        route.method,
        path_of(route),
        unknown_field(route),
        {"Content-Type": "application/json", **ADMIN},
    )
    allowed = ", ".join(sorted(route.body.get("properties", {})))
    assert (answer.status, answer.json()) == (
        400,
        {
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": f"unknown field 'zz_unknown'; expected: {allowed}",
        },
    )
    assert auth_server.snapshot() == before and auth_server.healthy()


@pytest.mark.parametrize("route", JSON_ROUTES, ids=route_id)
def test_no_credentials_is_a_401_before_the_body_is_read(auth_server, route):
    before = auth_server.snapshot()
    answer = auth_server.send(
        route.method, path_of(route), b'{"malformed', {"Content-Type": "application/json"}
    )
    assert answer.status == 401, answer.body[:300]
    assert answer.json()["error_code"] == "UNAUTHENTICATED"
    assert 'Basic realm="mlreg"' in answer.headers.get("WWW-Authenticate", "")
    assert auth_server.snapshot() == before and auth_server.healthy()
