"""What only a real ``mlreg server`` process shows: webhook events survive a restart of the
server (the outbox is in the database), and the log output never holds a password, a token or
a webhook secret. Seconds each: marked slow."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests

from tests.s3 import free_port
from tests.server.process import start_server
from tests.teams.receiver import Receiver

pytestmark = pytest.mark.slow

ADMIN = ("admin", "Adm1n-secret-password")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    return request.getfixturevalue("postgres_uri")


def _env(database: str) -> dict[str, str]:
    return {
        "MLREG_TRACKING_URI": database,
        "MLREG_ADMIN_PASSWORD": ADMIN[1],
        "MLREG_WEBHOOK_POLL_SECONDS": "0.1",
        "MLREG_WEBHOOK_BACKOFF_SECONDS": "0.5",
        "MLREG_WEBHOOK_MAX_ATTEMPTS": "30",
    }


def test_no_event_is_lost_across_a_restart(database, tmp_path):
    """The receiver is down while the events happen; the server stops (SIGTERM) and starts
    again; when the receiver comes up, every event arrives, in order."""
    port = free_port()
    home = tmp_path / "home"
    server = start_server(home, env=_env(database), args=["--auth"])
    try:
        api = requests.Session()
        api.auth = ADMIN
        hook = api.post(
            f"{server.url}/api/v1/webhooks", json={"url": f"http://127.0.0.1:{port}/hook"}
        )
        assert hook.status_code == 201, hook.text
        hook_id = hook.json()["webhook"]["id"]
        for i in range(5):
            made = api.post(f"{server.url}/api/v1/models/m/versions", json={"source": f"s{i}"})
            assert made.status_code == 201, made.text
        assert api.put(f"{server.url}/api/v1/models/m/aliases/a", json={"version": 5}).ok
        deliveries = f"{server.url}/api/v1/webhooks/{hook_id}/deliveries"
        deadline = time.monotonic() + 30
        while not any(d["attempts"] for d in api.get(deliveries).json()["deliveries"]):
            assert time.monotonic() < deadline, "the deliverer never tried"
            time.sleep(0.1)
        first = min(api.get(deliveries).json()["deliveries"], key=lambda d: d["id"])
        assert first["last_error"].startswith("ConnectionError")
    finally:
        server.stop()

    receiver = Receiver(port=port)
    again = start_server(home, env=_env(database), args=["--auth"])
    try:
        receiver.wait(lambda: len(receiver.ok()) == 6, timeout=90)
        got = [(r.payload["event"], r.payload["version"]) for r in receiver.ok()]
        assert got == [("model_version.created", v) for v in range(1, 6)] + [("model_alias.set", 5)]
    finally:
        again.stop()
        receiver.stop()


def test_tokens_and_passwords_never_reach_the_logs(tmp_path):
    env = {**_env(f"sqlite:///{tmp_path / 'server.db'}"), "MLREG_LOG_FORMAT": "json"}
    server = start_server(tmp_path / "home", env=env, args=["--auth", "--log-level", "debug"])
    secrets = [ADMIN[1]]
    try:
        url = f"{server.url}/api/v1"
        admin = requests.Session()
        admin.auth = ADMIN
        assert admin.post(f"{url}/users", json={"name": "alice", "password": "alice-pw-1"}).ok
        token = admin.post(f"{url}/users/alice/tokens", json={"name": "ci"}).json()["secret"]
        webhook_secret = "webhook-shared-secret-123"
        made = admin.post(
            f"{url}/webhooks", json={"url": "http://127.0.0.1:9/", "secret": webhook_secret}
        )
        assert made.status_code == 201
        secrets += ["alice-pw-1", token, webhook_secret, "alice-pw-2", "mlreg_wrong-token-value"]
        assert requests.get(f"{url}/whoami", headers={"Authorization": f"Bearer {token}"}).ok
        assert requests.get(f"{url}/whoami", auth=("alice", "alice-pw-1")).ok
        assert requests.get(f"{url}/whoami", auth=("alice", "not-alice-pw")).status_code == 401
        secrets.append("not-alice-pw")
        wrong = {"Authorization": "Bearer mlreg_wrong-token-value"}
        assert requests.get(f"{url}/whoami", headers=wrong).status_code == 401
        changed = requests.put(
            f"{url}/users/alice/password",
            json={"password": "alice-pw-2"},
            auth=("alice", "alice-pw-1"),
        )
        assert changed.ok
    finally:
        server.stop()
    output = server.log_text()
    # The log is not empty: each request was logged, with who made it.
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    whoami = [line for line in lines if line.get("path") == "/api/v1/whoami"]
    assert len(whoami) == 4 and {line.get("user") for line in whoami} == {"alice", None}
    encoded = [
        base64.b64encode(f"alice:{p}".encode()).decode() for p in ("alice-pw-1", "alice-pw-2")
    ]
    leaked = [s for s in secrets + encoded if s in output]
    assert leaked == []
