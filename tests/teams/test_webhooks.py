"""Webhooks against a real receiver on loopback: signed events in order per model, retries
after 500s, giving up, a slow receiver that never slows the API, two deliverers sharing one
outbox, the README's verifier, the CLI — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlreg.cli import main
from mlreg.server.audit import AuditQuery
from mlreg.server.permissions import Level, Resource
from mlreg.store.journal import EVENTS
from tests.teams.conftest import ADMIN_ACTOR, Team, make_team, start_live_team
from tests.teams.receiver import Receiver

README = Path(__file__).resolve().parents[2] / "README.md"
FAST = {
    "deliver_webhooks": True,
    "webhook_poll_seconds": 0.05,
    "webhook_backoff_seconds": 0.05,
}


def readme_verifier() -> Any:
    """The verification snippet of the README, run as a receiver would run it."""
    text = README.read_text()
    block = re.search(r"<!-- webhook-verifier -->\n```python\n(.*?)```", text, re.S)
    assert block is not None, "the README lost its webhook verifier snippet"
    namespace: dict[str, Any] = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    return namespace["verify"]


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.stop()


@pytest.fixture
def hooked(migrated_backend, tmp_path):
    """A server that delivers webhooks (fast polls and backoffs for the tests)."""
    made = make_team(migrated_backend, tmp_path / "server", **FAST)
    yield made
    made.close()


def _hook(team: Team, url: str, model: str | None = None, **body: Any) -> tuple[int, str]:
    path = f"/api/v1/models/{model}/webhooks" if model else "/api/v1/webhooks"
    response = team.call("admin", "POST", path, json={"url": url, **body})
    assert response.status_code == 201, response.json
    return response.json["webhook"]["id"], response.json["secret"]


def _deliveries(team: Team, hook: int) -> list[dict[str, Any]]:
    return team.call("admin", "GET", f"/api/v1/webhooks/{hook}/deliveries").json["deliveries"]


def _settled(team: Team, hook: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The webhook's deliveries once none is in flight (a receiver may have answered before
    the deliverer recorded the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        found = _deliveries(team, hook)
        if all(d["state"] in ("delivered", "failed") for d in found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def test_events_arrive_signed_with_the_documented_headers(hooked, receiver, model_dir):
    verify = readme_verifier()
    registry = hooked.services.registry_as(ADMIN_ACTOR)
    registry.create_registered_model("mnist")
    hook, secret = _hook(hooked, receiver.url, "mnist")
    registry.register_model(str(model_dir), "mnist")
    registry.transition_model_version_stage("mnist", 1, "Production")
    registry.set_alias("mnist", "champion", 1)
    registry.delete_alias("mnist", "champion")
    registry.delete_registered_model("mnist")
    receiver.wait(lambda: len(receiver.ok()) == 6)
    got = receiver.ok()
    assert [r.headers["X-Mlreg-Event"] for r in got] == [
        "model_version.created",
        "model_version.ready",
        "model_version.stage_changed",
        "model_alias.set",
        "model_alias.deleted",
        "registered_model.deleted",
    ]
    for r in got:
        assert verify(secret, r.headers, r.body)
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["User-Agent"].startswith("mlreg-webhooks/")
        assert r.payload["event"] == r.headers["X-Mlreg-Event"]
        assert r.payload["id"] == r.headers["X-Mlreg-Event-Id"]
        assert (r.payload["actor"], r.payload["model"]) == ("admin", "mnist")
    stage = got[2].payload
    assert (stage["version"], stage["old"], stage["new"]) == (
        1,
        {"stage": "None"},
        {"stage": "Production"},
    )
    assert got[3].payload["new"] == {"alias": "champion", "version": 1}
    assert got[5].payload["old"] == {"aliases": {}, "versions": [1]}
    assert {d["state"] for d in _settled(hooked, hook)} == {"delivered"}


def test_a_bad_signature_is_rejected_by_the_readme_verifier(hooked, receiver):
    verify = readme_verifier()
    hook, secret = _hook(hooked, receiver.url)
    assert hooked.call("admin", "POST", f"/api/v1/webhooks/{hook}/test").status_code == 202
    receiver.wait(lambda: len(receiver.ok()) == 1)
    ping = receiver.ok()[0]
    assert ping.payload["event"] == "ping" and verify(secret, ping.headers, ping.body)
    stale = {**ping.headers, "X-Mlreg-Timestamp": str(int(time.time()) - 3600)}
    forged = {**ping.headers, "X-Mlreg-Signature": "sha256=" + "0" * 64}
    assert not verify(secret, ping.headers, ping.body.replace(b"ping", b"pong"))
    assert not verify("another-secret-entirely", ping.headers, ping.body)
    assert not verify(secret, forged, ping.body)
    assert not verify(secret, stale, ping.body)  # a replay with the old signature
    assert not verify(secret, {}, ping.body)


def test_each_models_events_arrive_in_order_through_retries(hooked, receiver):
    """Every other event is refused with a 500 on its first attempt; four senders deliver in
    parallel; still each model's events arrive in the order they happened."""
    receiver.answer = lambda request, seen: 500 if seen == 0 and hash(request.event_id) % 2 else 200
    hook, _ = _hook(hooked, receiver.url)
    registry = hooked.services.registry_as(ADMIN_ACTOR)
    models = ["a", "b", "c"]
    for name in models:
        registry.begin_version(name, "s", None, None, None, None)
    for i in range(6):
        for name in models:
            registry.set_alias(name, "moving", 1)
            registry.set_registered_model_tag(name, "i", str(i))  # not an event
            registry.delete_alias(name, "moving")
    expected = {
        m: ["model_version.created"] + ["model_alias.set", "model_alias.deleted"] * 6
        for m in models
    }
    receiver.wait(lambda: len(receiver.ok()) == 39)
    arrived: dict[str, list[str]] = {m: [] for m in models}
    for r in receiver.ok():
        arrived[r.payload["model"]].append(r.payload["event"])
    assert arrived == expected
    # Event by event in the order of the audit trail (the payload carries the time recorded).
    for name in models:
        trail = hooked.services.audit.search(AuditQuery(model=name), 100).items
        recorded = [e.timestamp for e in reversed(trail) if e.action in EVENTS]
        sent = [
            datetime.fromisoformat(r.payload["timestamp"].replace("Z", "+00:00"))
            for r in receiver.ok()
            if r.payload["model"] == name
        ]
        assert sent == recorded
    retried = [d for d in _settled(hooked, hook) if d["attempts"] == 2]
    assert retried, "some deliveries were refused once"
    for d in retried:
        assert [a["status"] for a in d["history"]] == [500, 200]
        assert d["state"] == "delivered"


def test_a_delivery_is_given_up_after_its_attempts_and_the_next_one_goes(
    migrated_backend, tmp_path, receiver
):
    team = make_team(migrated_backend, tmp_path / "s", webhook_max_attempts=3, **FAST)
    try:
        receiver.answer = lambda request, seen: 503 if request.payload.get("version") == 1 else 200
        hook, _ = _hook(team, receiver.url)
        registry = team.services.registry_as(ADMIN_ACTOR)
        registry.begin_version("m", "s", None, None, None, None)  # version 1: always refused
        registry.begin_version("m", "s", None, None, None, None)  # version 2: waits its turn
        receiver.wait(lambda: len(receiver.ok()) == 1)
        first, second = sorted(_settled(team, hook), key=lambda d: d["id"])
        assert (first["state"], first["attempts"], first["last_status"]) == ("failed", 3, 503)
        assert [a["status"] for a in first["history"]] == [503, 503, 503]
        assert second["state"] == "delivered"
        assert receiver.ok()[0].payload["version"] == 2
    finally:
        team.close()


def test_an_unreachable_receiver_is_recorded_and_retried(hooked):
    hook, _ = _hook(hooked, "http://127.0.0.1:9/nobody-listens")
    hooked.services.registry_as(ADMIN_ACTOR).begin_version("m", "s", None, None, None, None)
    deadline = time.monotonic() + 20
    while True:
        [delivery] = _deliveries(hooked, hook)
        if delivery["attempts"] >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert delivery["state"] in ("pending", "sending") and delivery["attempts"] >= 2
    assert delivery["last_status"] is None
    assert delivery["last_error"].startswith("ConnectionError: ")


def test_a_slow_receiver_never_slows_the_api(hooked, receiver):
    """The receiver holds every delivery until released; the API answers all the while."""
    receiver.gate.clear()
    _hook(hooked, receiver.url)
    answers = []
    for i in range(12):
        response = hooked.call(
            "admin", "POST", "/api/v1/models/m/versions", json={"source": f"s{i}"}
        )
        answers.append(response.status_code)
    # Every write answered while the receiver still held its first delivery (never released).
    assert receiver.held.acquire(timeout=10), "the deliverer did not reach the receiver"
    assert answers == [201] * 12
    assert not receiver.gate.is_set() and receiver.ok() == []
    assert hooked.call("admin", "GET", "/api/v1/models/m").status_code == 200
    receiver.gate.set()
    receiver.wait(lambda: len(receiver.ok()) == 12)
    assert [r.payload["version"] for r in receiver.ok()] == list(range(1, 13))


def test_two_deliverers_share_the_outbox_and_deliver_each_event_once(
    migrated_backend, tmp_path, receiver
):
    """Two apps on one database stand for two workers: each delivery goes to one of them."""
    from mlreg.server.app import create_app
    from mlreg.server.settings import ServerSettings
    from mlreg.store import StoreSettings

    team = make_team(migrated_backend, tmp_path / "one", **FAST)
    other = create_app(
        ServerSettings(
            auth=True,
            store=StoreSettings(migrated_backend, str(tmp_path / "a2"), "s", home=tmp_path / "two"),
            **FAST,
        )
    )
    try:
        _hook(team, receiver.url)
        registry = team.services.registry_as(ADMIN_ACTOR)
        for i in range(10):
            registry.begin_version(f"m{i % 3}", "s", None, None, None, None)
        receiver.wait(lambda: len(receiver.ok()) == 10)
        time.sleep(0.5)  # a duplicate would have arrived by now
        deliveries = [r.headers["X-Mlreg-Delivery"] for r in receiver.received]
        assert len(deliveries) == len(set(deliveries)) == 10
    finally:
        other.extensions["mlreg.server"].close()
        team.close()


def test_deleting_a_webhook_drops_what_it_has_not_delivered(hooked, receiver):
    receiver.gate.clear()
    hook, _ = _hook(hooked, receiver.url)
    registry = hooked.services.registry_as(ADMIN_ACTOR)
    for _ in range(3):
        registry.begin_version("m", "s", None, None, None, None)
    assert receiver.held.acquire(timeout=10)
    assert hooked.call("admin", "DELETE", f"/api/v1/webhooks/{hook}").status_code == 200
    receiver.gate.set()
    time.sleep(0.5)
    assert len(receiver.received) == 1  # the one in flight; the two queued were dropped
    assert hooked.call("admin", "GET", f"/api/v1/webhooks/{hook}").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "ftp://x"}, "url: expected an http:// or https:// URL, got 'ftp://x'"),
        ({"url": "http://"}, "url: expected an http:// or https:// URL, got 'http://'"),
        (
            {"url": "http://x", "events": ["model_version.exploded"]},
            "field 'events.0': expected one of "
            + ", ".join(repr(e) for e in [*EVENTS, "*"])
            + ", got 'model_version.exploded'",
        ),
        (
            {"url": "http://x", "secret": "short"},
            "field 'secret': expected at least 16 characters, got 5",
        ),
    ],
    ids=["scheme", "no-host", "unknown-event", "short-secret"],
)
def test_bad_webhooks_are_refused(team, body, message):
    response = team.call("admin", "POST", "/api/v1/webhooks", json=body)
    assert (response.status_code, response.json["message"]) == (400, message)


def test_managers_see_and_make_webhooks_of_their_models_only(team):
    for name in ("mine", "theirs"):
        team.call("admin", "POST", "/api/v1/models", json={"name": name})
    team.services.access.grant(ADMIN_ACTOR, Resource.MODEL, "mine", "manager", Level.MANAGE)
    mine, _ = _hook(team, "http://127.0.0.1:9/a", "mine")
    _hook(team, "http://127.0.0.1:9/b", "theirs")
    _hook(team, "http://127.0.0.1:9/c")
    listed = team.call("manager", "GET", "/api/v1/webhooks").json["webhooks"]
    assert [(h["id"], h["model"]) for h in listed] == [(mine, "mine")]
    assert len(team.call("admin", "GET", "/api/v1/webhooks").json["webhooks"]) == 3
    got = team.call("manager", "GET", f"/api/v1/webhooks/{mine}").get_data(as_text=True)
    assert "secret" not in got


def test_the_webhooks_cli(tmp_path, migrated_backend, receiver):
    live = start_live_team(migrated_backend, tmp_path / "server", **FAST)
    try:
        team = live.team
        team.call("admin", "POST", "/api/v1/models", json={"name": "cli-model"})
        env = {
            "MLREG_TRACKING_URI": live.url,
            "MLREG_TRACKING_TOKEN": team.tokens["admin"],
            "MLREG_HOME": str(tmp_path / "client"),
        }
        runner = CliRunner()
        created = runner.invoke(
            main,
            [
                "webhooks",
                "create",
                receiver.url,
                "--model",
                "cli-model",
                "--event",
                "model_version.stage_changed",
                "--json",
            ],
            env=env,
        )
        assert created.exit_code == 0, created.output
        doc = json.loads(created.output)
        hook = doc["webhook"]["id"]
        assert doc["webhook"]["events"] == ["model_version.stage_changed"] and doc["secret"]
        listed = runner.invoke(main, ["webhooks", "list"], env=env)
        assert listed.output.splitlines()[1].split()[:4] == [
            str(hook),
            receiver.url,
            "cli-model",
            "model_version.stage_changed",
        ]
        tested = runner.invoke(main, ["webhooks", "test", str(hook)], env=env)
        assert tested.output.startswith("Queued ping delivery ")
        receiver.wait(lambda: len(receiver.ok()) == 1)
        deadline = time.monotonic() + 10
        while True:
            shown = runner.invoke(main, ["webhooks", "deliveries", str(hook), "--json"], env=env)
            [delivery] = json.loads(shown.output)["items"]
            if delivery["state"] == "delivered" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert (delivery["event"], delivery["state"], delivery["last_status"]) == (
            "ping",
            "delivered",
            200,
        )
        deleted = runner.invoke(main, ["webhooks", "delete", str(hook)], env=env)
        assert deleted.output == f"Deleted webhook {hook}\n"
        missing = runner.invoke(main, ["webhooks", "deliveries", str(hook)], env=env)
        assert (missing.exit_code, missing.output) == (4, f"Error: webhook {hook} does not exist\n")
    finally:
        live.stop()


def test_the_api_keeps_answering_while_deliveries_wait(hooked, receiver):
    """Many writes racing the deliverer from several threads: every event arrives once."""
    _hook(hooked, receiver.url)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            registry = hooked.services.registry_as(ADMIN_ACTOR)
            registry.begin_version(f"t{i}", "s", None, None, None, None)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    receiver.wait(lambda: len(receiver.ok()) == 8)
    assert sorted(r.payload["model"] for r in receiver.ok()) == [f"t{i}" for i in range(8)]
