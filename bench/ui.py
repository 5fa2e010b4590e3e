"""The web UI with many runs: mlreg server's pages next to MLflow's API on the same data.

Usage: python bench/ui.py [--runs 10000] [--metrics 20] [--steps 100] [--repeat 20]
                          [--keep DIR [--reuse]] [--no-mlflow]

Loads ``runs`` runs x ``metrics`` metrics x ``steps`` steps (10 params and a user tag each; a
model with 200 versions, 300 stage transitions and 100 source runs) straight into mlreg's
SQLite schema and into MLflow's with SQL bulk inserts, then starts both servers as users run
them (gunicorn, 2 workers each, on loopback) and times:

- the runs page (first 100 rows; sorted by a metric; filtered; 50 pages deep) and the model
  page: mlreg's server time (its access log's duration) and the client's round trip, median
  and p95 of ``repeat`` requests; MLflow: the API calls its UI makes for the same view;
- the data of one compare chart (one metric of 50 runs), in both;
- the compare page of 50 runs in headless Chromium: navigation start to every chart drawn
  (the page's performance mark), median of 5 loads (mlreg only: MLflow's compare view is
  a React app whose end of drawing no mark tells).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlreg.store.settings import StoreSettings  # noqa: E402
from mlreg.tracking.client import TrackingClient  # noqa: E402
from tests.s3 import free_port  # noqa: E402
from tests.ui.browser import open_browser  # noqa: E402

BIN = Path(sys.executable).parent
METRIC_NAMES = ["loss", "val_loss", "accuracy", "val_accuracy"]
PARAMS = ["lr", "batch_size", "optimizer", "layers", "dropout", "epochs", "seed", "units",
          "activation", "schedule"]  # fmt: skip
MODEL = "bench-model"
VERSIONS = 200
T0 = 1_700_000_000_000


def metric_keys(n: int) -> list[str]:
    return (METRIC_NAMES + [f"metric_{i:02d}" for i in range(n)])[:n]


def run_rows(runs: int, seed: int = 0) -> list[tuple[str, int, dict[str, str]]]:
    rng = random.Random(seed)
    ids = sorted(uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(runs))
    out = []
    for i, run_id in enumerate(ids):
        params = {
            "lr": str(rng.choice([0.1, 0.01, 0.001, 0.0001])),
            "batch_size": str(rng.choice([16, 32, 64, 128])),
            "optimizer": rng.choice(["adam", "sgd", "rmsprop"]),
            "layers": str(rng.randint(1, 8)),
            "dropout": str(rng.choice([0.0, 0.1, 0.2, 0.5])),
            "epochs": "100",
            "seed": str(i),
            "units": str(rng.choice([64, 128, 256])),
            "activation": rng.choice(["relu", "gelu", "tanh"]),
            "schedule": rng.choice(["constant", "cosine"]),
        }
        out.append((run_id, i, params))
    return out


def value(key_index: int, run_index: int, step: int) -> float:
    decay = 1.0 / (1 + step * (0.02 + (run_index % 97) / 2000))
    return decay * (1 + key_index / 10) if key_index % 2 == 0 else 1 - decay / 2


def histories(runs, keys, steps):
    """(run_id, key, value, timestamp, step) in (run, key, step) order."""
    for run_id, i, _ in runs:
        start = T0 + i * 60_000
        for k, key in enumerate(keys):
            for step in range(steps):
                yield run_id, key, value(k, i, step), start + step * 500, step


def fast(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")


def load_mlreg(home: Path, runs, keys, steps) -> str:
    settings = StoreSettings.for_home(home, "bench")
    with TrackingClient(settings) as tracking:
        experiment_id = tracking.create_experiment("bench")
        root = tracking.get_experiment(experiment_id).artifact_location
    conn = sqlite3.connect(home / "registry.db")
    fast(conn)
    with conn:
        conn.executemany(
            "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, end_time, "
            "artifact_uri) VALUES (?, ?, ?, 'FINISHED', ?, ?, ?)",
            (
                (r, int(experiment_id), f"run-{i:05d}", T0 + i * 60_000,
                 T0 + i * 60_000 + steps * 500, f"{root}/{r}/artifacts")
                for r, i, _ in runs
            ),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
            ((r, k, v) for r, _, p in runs for k, v in p.items()),
        )
        conn.executemany(
            "INSERT INTO run_tags (run_id, key, value) VALUES (?, 'mlreg.user', ?)",
            ((r, f"user{i % 7}") for r, i, _ in runs),
        )
        conn.executemany(
            "INSERT INTO metrics (run_id, key, value, timestamp, step) VALUES (?, ?, ?, ?, ?)",
            histories(runs, keys, steps),
        )
        conn.executemany(
            "INSERT INTO latest_metrics (run_id, key, value, timestamp, step) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                (r, key, value(k, i, steps - 1), T0 + i * 60_000 + (steps - 1) * 500, steps - 1)
                for r, i, _ in runs
                for k, key in enumerate(keys)
            ),
        )
        now = "2026-01-01 00:00:00.000000"
        conn.execute(
            "INSERT INTO registered_models (name, description, last_version, created_at, "
            "updated_at) VALUES (?, 'bench', ?, ?, ?)",
            (MODEL, VERSIONS, now, now),
        )
        model_id = conn.execute("SELECT id FROM registered_models").fetchone()[0]
        conn.executemany(
            "INSERT INTO model_versions (model_id, version, stage, status, source, run_id, "
            "digest, created_at, updated_at) VALUES (?, ?, ?, 'READY', ?, ?, ?, ?, ?)",
            (
                (model_id, v, "Archived" if v < VERSIONS else "Production",
                 f"runs:/{runs[v % 100][0]}/model", runs[v % 100][0], f"{v:064x}", now, now)
                for v in range(1, VERSIONS + 1)
            ),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO stage_transitions (model_id, version, from_stage, to_stage, user, "
            "timestamp) VALUES (?, ?, ?, ?, 'ci', ?)",
            (
                (model_id, 1 + t % VERSIONS, "None", "Production" if t % 2 else "Staging", now)
                for t in range(300)
            ),
        )
        conn.execute(
            "INSERT INTO registered_model_aliases (model_id, alias, version) VALUES (?, ?, ?)",
            (model_id, "champion", VERSIONS),
        )
    conn.execute("ANALYZE")
    conn.close()
    return experiment_id


def load_mlflow(db: Path, artifacts: Path, runs, keys, steps) -> str:
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{db}"
    store = SqlAlchemyStore(uri, str(artifacts))
    experiment_id = store.create_experiment("bench")
    Registry(uri)
    store.engine.dispose()
    conn = sqlite3.connect(db)
    fast(conn)
    with conn:
        conn.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
            "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
            "artifact_uri, experiment_id) VALUES (?, ?, 'LOCAL', '', '', ?, 'FINISHED', ?, ?, "
            "'', 'active', ?, ?)",
            (
                (r, f"run-{i:05d}", f"user{i % 7}", T0 + i * 60_000,
                 T0 + i * 60_000 + steps * 500, f"{artifacts}/{r}", int(experiment_id))
                for r, i, _ in runs
            ),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
            ((k, v, r) for r, _, p in runs for k, v in p.items()),
        )
        conn.executemany(
            "INSERT INTO tags (key, value, run_uuid) VALUES ('mlflow.user', ?, ?)",
            ((f"user{i % 7}", r) for r, i, _ in runs),
        )
        conn.executemany(
            "INSERT INTO metrics (run_uuid, key, value, timestamp, step, is_nan) "
            "VALUES (?, ?, ?, ?, ?, 0)",
            histories(runs, keys, steps),
        )
        conn.executemany(
            "INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, is_nan) "
            "VALUES (?, ?, ?, ?, ?, 0)",
            (
                (r, key, value(k, i, steps - 1), T0 + i * 60_000 + (steps - 1) * 500, steps - 1)
                for r, i, _ in runs
                for k, key in enumerate(keys)
            ),
        )
        conn.execute(
            "INSERT INTO registered_models (name, creation_time, last_updated_time, description, "
            "workspace) VALUES (?, ?, ?, 'bench', 'default')",
            (MODEL, T0, T0),
        )
        conn.executemany(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time, "
            "user_id, current_stage, source, run_id, status, workspace) "
            "VALUES (?, ?, ?, ?, 'ci', ?, ?, ?, 'READY', 'default')",
            (
                (MODEL, v, T0 + v, T0 + v, "Archived" if v < VERSIONS else "Production",
                 f"runs:/{runs[v % 100][0]}/model", runs[v % 100][0])
                for v in range(1, VERSIONS + 1)
            ),
        )  # fmt: skip
        conn.execute(
            "INSERT INTO registered_model_aliases (alias, version, name, workspace) "
            "VALUES ('champion', ?, ?, 'default')",
            (VERSIONS, MODEL),
        )
    conn.execute("ANALYZE")
    conn.close()
    return experiment_id


def bench_experiment(db: Path, column: str) -> str:
    """The id of the experiment an earlier run of this script loaded (--reuse)."""
    if not db.exists():
        raise SystemExit(f"--reuse: no database at {db}; run once with --keep first")
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(f"SELECT {column} FROM experiments WHERE name = 'bench'").fetchone()
    finally:
        conn.close()
    if row is None:
        raise SystemExit(f"--reuse: {db} holds no experiment 'bench'")
    return str(row[0])


def wait_for(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited ({process.returncode}) before answering {url}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"no answer from {url} in {timeout} s")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(samples):7.1f} ms (p95 {p95:7.1f})"


def server_times(log: Path, path_prefix: str, since: int) -> list[float]:
    """duration_ms of the access-log lines for paths starting with ``path_prefix``."""
    times = []
    with log.open() as f:
        for line in f.readlines()[since:]:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("path", "").startswith(path_prefix) and "duration_ms" in doc:
                times.append(float(doc["duration_ms"]))
    return times


def log_lines(log: Path) -> int:
    with log.open() as f:
        return sum(1 for _ in f)


def time_get(http: requests.Session, url: str, repeat: int) -> list[float]:
    http.get(url, timeout=120).raise_for_status()  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = http.get(url, timeout=120)
        samples.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return samples


def time_calls(calls, repeat: int) -> list[float]:
    """Wall time of a sequence of HTTP calls (what one view of MLflow's UI asks)."""
    for call in calls:
        call().raise_for_status()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for call in calls:
            call().raise_for_status()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def bench_mlreg(home: Path, experiment_id: str, runs, keys, repeat: int) -> dict[str, float]:
    port = free_port()
    log = home.parent / "mlreg-server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLREG_")}
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "mlreg"), "server", "--port", str(port), "--workers", "2",
             "--log-format", "json"],
            env={**env, "MLREG_HOME": str(home)},
            stdout=subprocess.DEVNULL,
            stderr=out,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    results = {}
    try:
        wait_for(base + "/ready", process)
        http = requests.Session()
        chosen = [r for r, _, _ in runs[-50:]]
        run_args = "&".join(f"run={r}" for r in chosen)
        pages = {
            "runs page, first 100": f"/experiments/{experiment_id}",
            "runs page, sorted by a metric": f"/experiments/{experiment_id}?order_by="
            + quote("metrics.`val_loss` ASC"),
            "runs page, filtered": f"/experiments/{experiment_id}?filter="
            + quote("metrics.val_loss < 0.5 and params.optimizer = 'adam'"),
            "runs page, 50 pages deep": f"/experiments/{experiment_id}?start=5000",
            "model page (200 versions)": f"/models/{MODEL}",
            "compare chart data (1 metric, 50 runs)": f"/experiments/{experiment_id}/compare/"
            f"metrics.json?key=loss&{run_args}",
            "compare page HTML (50 runs)": f"/experiments/{experiment_id}/compare?{run_args}",
        }
        for label, path in pages.items():
            since = log_lines(log)
            client = time_get(http, base + path, repeat)
            server = server_times(log, path.split("?")[0], since)[1:]  # without the warm-up
            results[label] = statistics.median(client)
            print(f"mlreg   {label:40s} server {stats(server)}  client {stats(client)}", flush=True)
        compare = base + pages["compare page HTML (50 runs)"]
        for label, url, charts in (
            ("1 metric", compare + "&metric=loss", 1),
            (f"all {len(keys)} metrics", compare, len(keys)),
        ):
            figures = browser_compare(url, charts)
            print(f"mlreg   compare of 50 runs, {label}, in Chromium: {figures}", flush=True)
    finally:
        stop(process)
    return results


def browser_compare(url: str, charts: int, loads: int = 5) -> str:
    driver = open_browser(1280, 900)
    try:
        drawn, first, ready = [], [], []
        for i in range(loads + 1):
            driver.get(url)
            deadline = time.monotonic() + 60
            while not driver.execute_script("return document.documentElement.dataset.chartsDrawn"):
                if time.monotonic() > deadline:
                    raise SystemExit("the compare charts were not drawn in 60 s")
                time.sleep(0.02)
            done, one = driver.execute_script(
                "return ['mlreg-charts-drawn', 'mlreg-first-chart']"
                ".map(n => performance.getEntriesByName(n)[0].startTime)"
            )
            dcl = driver.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return n.domContentLoadedEventEnd"
            )
            count = driver.execute_script("return window.mlregCharts.drawn")
            if count != charts:
                raise SystemExit(f"{count} charts drawn, expected {charts}")
            if i:  # the first load warms the cache of scripts and styles
                drawn.append(done)
                first.append(one)
                ready.append(dcl)
        return (
            f"page ready {statistics.median(ready):.0f} ms, first chart (50 series x 100 points) "
            f"{statistics.median(first):.0f} ms, all {charts} {statistics.median(drawn):.0f} ms "
            f"after navigation start; median of {loads}"
        )
    finally:
        driver.quit()


def bench_mlflow(
    db: Path, artifacts: Path, experiment_id: str, runs, repeat: int
) -> dict[str, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log = db.parent / "mlflow-server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{db}",
             "--default-artifact-root", str(artifacts), "--host", "127.0.0.1", "--port",
             str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow"
    results = {}
    try:
        wait_for(f"http://127.0.0.1:{port}/health", process, timeout=180)
        http = requests.Session()

        def search(**extra):
            body = {"experiment_ids": [experiment_id], "max_results": 100,
                    "order_by": ["attributes.start_time DESC"], **extra}  # fmt: skip
            return lambda: http.post(f"{base}/runs/search", json=body, timeout=300)

        def deep():
            def go():
                token = None
                for _ in range(50):
                    body = {"experiment_ids": [experiment_id], "max_results": 100,
                            "order_by": ["attributes.start_time DESC"]}  # fmt: skip
                    if token:
                        body["page_token"] = token
                    response = http.post(f"{base}/runs/search", json=body, timeout=300)
                    token = response.json().get("next_page_token")
                return response

            return go

        chosen = [r for r, _, _ in runs[-50:]]
        views = {
            "runs page, first 100": [search()],
            "runs page, sorted by a metric": [search(order_by=["metrics.`val_loss` ASC"])],
            "runs page, filtered": [
                search(filter="metrics.val_loss < 0.5 and params.optimizer = 'adam'")
            ],
            "runs page, 50 pages deep": [deep()],
            "model page (200 versions)": [
                lambda: http.get(f"{base}/registered-models/get", params={"name": MODEL}),
                lambda: http.get(
                    f"{base}/model-versions/search",
                    params={"filter": f"name='{MODEL}'", "max_results": 100},
                ),
            ],
            "compare chart data (1 metric, 50 runs)": [
                lambda: http.get(
                    f"{base}/metrics/get-history-bulk-interval",
                    params={"run_ids": chosen, "metric_key": "loss", "max_results": 320},
                    timeout=300,
                )
            ],
        }
        for label, calls in views.items():
            n = 3 if label == "runs page, 50 pages deep" else repeat
            samples = time_calls(calls, n)
            results[label] = statistics.median(samples)
            print(f"MLflow  {label:40s} client {stats(samples)}", flush=True)
    finally:
        stop(process)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="keep the databases in this directory")
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: time the databases loaded before"
    )
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="mlreg-bench-ui-"))
    work.mkdir(parents=True, exist_ok=True)
    runs = run_rows(args.runs)
    keys = metric_keys(args.metrics)
    points = args.runs * args.metrics * args.steps
    try:
        start = time.perf_counter()
        if args.reuse:
            experiment_id = bench_experiment(work / "mlreg" / "registry.db", "id")
        else:
            experiment_id = load_mlreg(work / "mlreg", runs, keys, args.steps)
        size = (work / "mlreg" / "registry.db").stat().st_size / 1e9
        how = "reused" if args.reuse else f"loaded in {time.perf_counter() - start:.0f} s"
        print(
            f"{args.runs} runs x {args.metrics} metrics x {args.steps} steps ({points:,} values) "
            f"in mlreg's SQLite: {how} ({size:.1f} GB)",
            flush=True,
        )
        ours = bench_mlreg(work / "mlreg", experiment_id, runs, keys, args.repeat)
        if not args.no_mlflow:
            start = time.perf_counter()
            (work / "mlflow").mkdir(exist_ok=True)
            db = work / "mlflow" / "mlflow.db"
            if args.reuse:
                mlflow_exp = bench_experiment(db, "experiment_id")
            else:
                mlflow_exp = load_mlflow(db, work / "mlflow" / "artifacts", runs, keys, args.steps)
            print(f"loaded the same into MLflow in {time.perf_counter() - start:.0f} s", flush=True)
            peer = bench_mlflow(db, work / "mlflow" / "artifacts", mlflow_exp, runs, args.repeat)
            print("\nround trip, median: MLflow / mlreg")
            for label, theirs in peer.items():
                mine = ours[label]
                print(f"  {label:40s} {theirs:9.1f} / {mine:7.1f} ms = {theirs / mine:6.1f}x")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
