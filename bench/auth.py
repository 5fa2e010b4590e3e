"""What authentication costs a request: mlreg's server without authentication, with a token
and with a password, next to MLflow's server without and with its basic-auth app, in one run.

Each server runs on loopback with 2 workers and a SQLite database, all at once; one client
with keep-alive reads one registered model from each in turn, ten rounds of N/10 requests
(MLflow with a password: a fifth as many), so load from elsewhere on the machine falls on
every case alike; the table shows the median and p90 in ms and the ratio to the same server
without authentication. "first" is the slowest of the first four
requests with a password: mlreg verifies an argon2id hash once per worker process and then
remembers the verified password (until it changes); MLflow verifies its hash on every request.

Usage: python bench/auth.py [--requests N]     (needs mlflow and flask-wtf for the peer)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

BIN = Path(sys.executable).parent
PASSWORD = "bench-admin-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], env: dict[str, str], ready: str, log: Path) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLREG_", "MLFLOW_"))}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env={**clean, **env}, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(ready, timeout=5).status_code < 500:
                return proc
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    stop(proc)
    raise SystemExit(f"{cmd[:2]} did not start:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def timed(session: requests.Session, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        response = session.get(url, timeout=30)
        out.append((time.perf_counter() - t) * 1000)
        response.raise_for_status()
    return out


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.9) - 1]


#: label -> (session, url, share of the requests): the cases measured, round after round.
Cases = dict[str, tuple[requests.Session, str, float]]


def mlreg(home: Path, procs: list[subprocess.Popen[bytes]]) -> tuple[Cases, dict[str, float]]:
    """Two mlreg servers, without and with --auth; the first requests with a password."""
    port = free_port()
    plain_base = f"http://127.0.0.1:{port}"
    env = {"MLREG_HOME": str(home / "plain"), "MLREG_LOG_LEVEL": "warning"}
    cmd = [str(BIN / "mlreg"), "server", "-p", str(port), "--workers", "2"]
    procs.append(start(cmd, env, f"{plain_base}/ready", home / "mlreg-plain.log"))
    plain = requests.Session()
    plain.post(f"{plain_base}/api/v1/models", json={"name": "bench"}).raise_for_status()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "MLREG_HOME": str(home / "auth"),
        "MLREG_LOG_LEVEL": "warning",
        "MLREG_ADMIN_PASSWORD": PASSWORD,
    }
    cmd = [str(BIN / "mlreg"), "server", "--auth", "-p", str(port), "--workers", "2"]
    procs.append(start(cmd, env, f"{base}/ready", home / "mlreg-auth.log"))
    basic = requests.Session()
    basic.auth = ("admin", PASSWORD)
    first = timed(basic, f"{base}/api/v1/models", 4)
    basic.post(f"{base}/api/v1/models", json={"name": "bench"}).raise_for_status()
    made = basic.post(f"{base}/api/v1/users/admin/tokens", json={"name": "bench"})
    token = requests.Session()
    token.headers["Authorization"] = f"Bearer {made.json()['secret']}"
    cases: Cases = {
        "mlreg, no authentication": (plain, f"{plain_base}/api/v1/models/bench", 1.0),
        "mlreg, token": (token, f"{base}/api/v1/models/bench", 1.0),
        "mlreg, password": (basic, f"{base}/api/v1/models/bench", 1.0),
    }
    return cases, {"mlreg, password, first": max(first)}


def mlflow(home: Path, procs: list[subprocess.Popen[bytes]]) -> tuple[Cases, dict[str, float]]:
    mlflow_bin = BIN / "mlflow"
    if not mlflow_bin.exists():
        print("(mlflow is not installed: no peer)")
        return {}, {}
    cases: Cases = {}
    firsts: dict[str, float] = {}
    apps: list[tuple[str | None, str]] = [(None, "MLflow, no authentication")]
    if importlib.util.find_spec("flask_wtf") is not None:  # MLflow's auth app needs it
        apps.append(("basic-auth", "MLflow, password"))
    else:
        print("(flask-wtf is not installed: no MLflow basic-auth peer)")
    for app, label in apps:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        db = home / f"mlflow-{app or 'plain'}.db"
        cmd = [str(mlflow_bin), "server", "--backend-store-uri", f"sqlite:///{db}"]
        cmd += ["--port", str(port), "--workers", "2"]
        env = {"MLFLOW_FLASK_SERVER_SECRET_KEY": "bench"}
        if app:
            cmd += ["--app-name", app]
            env |= {
                "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
                "MLFLOW_AUTH_CONFIG_PATH": str(auth_config(home)),
            }
        procs.append(start(cmd, env, f"{base}/health", home / f"mlflow-{app or 'plain'}.log"))
        session = requests.Session()
        if app:
            session.auth = ("admin", PASSWORD)
        first = timed(session, f"{base}/api/2.0/mlflow/registered-models/search", 4)
        session.post(
            f"{base}/api/2.0/mlflow/registered-models/create", json={"name": "bench"}
        ).raise_for_status()
        url = f"{base}/api/2.0/mlflow/registered-models/get?name=bench"
        # MLflow checks a password hash on every request: a fifth as many keep the run short.
        cases[label] = (session, url, 0.2 if app else 1.0)
        if app:
            firsts[f"{label}, first"] = max(first)
    return cases, firsts


def measure(cases: Cases, n: int, rounds: int = 10) -> dict[str, list[float]]:
    """Every case in turn, ``rounds`` times (the machine's other load drifts; taking turns
    spreads it over every case alike), after a warm-up of each."""
    for session, url, _ in cases.values():
        timed(session, url, 10)
    samples: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(rounds):
        for label, (session, url, share) in cases.items():
            samples[label] += timed(session, url, max(1, round(n * share / rounds)))
    return samples


def auth_config(home: Path) -> Path:
    """MLflow's basic-auth configuration, with its own database beside the others."""
    path = home / "basic_auth.ini"
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{home / 'mlflow-auth.db'}\n"
        "admin_username = admin\n"
        f"admin_password = {PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mlreg-bench-auth-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ours, our_firsts = mlreg(home, procs)
        theirs, their_firsts = mlflow(home, procs)
        results: dict[str, list[float]] = {}
        for label, samples in measure(ours | theirs, args.requests).items():
            results[label] = samples
        for label, first in (our_firsts | their_firsts).items():
            results[label] = [first]
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(home, ignore_errors=True)
    bases: dict[str, Callable[[str], str]] = {
        "mlreg": lambda label: "mlreg, no authentication",
        "MLflow": lambda label: "MLflow, no authentication",
    }
    print(f"\nGET one registered model, {args.requests} requests, keep-alive (ms):")
    print(f"{'server':<34}{'median':>8}{'p90':>8}{'x no auth':>11}")
    for label, samples in results.items():
        median, p90 = summary(samples)
        base = bases[label.split(",")[0]](label)
        ratio = median / summary(results[base])[0] if base in results else float("nan")
        p90_text = f"{p90:8.2f}" if len(samples) > 1 else f"{'':>8}"
        print(f"{label:<34}{median:8.2f}{p90_text}{ratio:10.2f}x")


if __name__ == "__main__":
    main()
