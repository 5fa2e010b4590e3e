"""The team server under its four common calls: `mlreg server` next to `mlflow server`, same run.

Usage: python bench/server.py [--count N] [--runs N] [--postgres]

Both servers run on this machine with two workers, on the same kind of database (SQLite by
default; PostgreSQL too with --postgres and MLREG_TEST_POSTGRES_URI), MLflow with
--serve-artifacts so files go through it as they go through mlreg. Each call is made by the
project's own Python client, one at a time, and timed end to end (requests/s, p50, p99):

- log_batch: 100 metrics to a run (mlreg TrackingClient.log_batch; MlflowClient.log_batch).
- register 300 kB: a new version with a 300 kB model. mlreg: register_model (create the
  version, stream the files as a tar, the server checks the digest and marks it READY).
  MLflow: log_artifacts of the model directory into a run through the server (file by
  file), then create_model_version with that artifact URI (the two calls a client needs;
  the run is made once, beforehand).
- search_runs: the first 100 of RUNS runs (one experiment, each with metric `acc` and
  param `p`) matching `metrics.acc > 0.5`, ordered by `metrics.acc DESC`.
- download: the registered model's files into a fresh directory (mlreg's digest cache is
  emptied before each call; MLflow: download_artifacts of models:/name/1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import requests

BIN = Path(sys.executable).parent
WORKERS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {timeout} s")


def start(command: list[str], env: dict[str, str], probe: str, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    wait(probe, proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def make_model(path: Path) -> Path:
    import numpy as np

    from mlreg.models import ModelSignature, Schema, TensorSpec
    from mlreg.models.model import Model

    path.mkdir(parents=True)
    (path / "data").mkdir()
    (path / "data" / "weights.bin").write_bytes(os.urandom(300_000))
    Model(signature=ModelSignature(Schema([TensorSpec(np.float32, (-1, 28, 28, 3))]))).add_flavor(
        "python_function", loader_module="mlreg.tensorflow"
    ).save(path)
    return path


def timed(call: Callable[[int], object], count: int, warmup: int = 3) -> dict[str, float]:
    for i in range(warmup):
        call(-1 - i)
    times = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    times.sort()
    print(f"  {len(times)} calls: p50 {statistics.median(times) * 1000:.1f} ms", flush=True)
    return {
        "rps": count / sum(times),
        "p50": statistics.median(times) * 1000,
        "p99": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000,
    }


# --- mlreg ------------------------------------------------------------------------------------


def bench_mlreg(db_uri: str | None, work: Path, model: Path, count: int, runs: int) -> dict:
    from mlreg.registry import MlregClient
    from mlreg.store import StoreSettings
    from mlreg.tracking.client import TrackingClient

    home = work / "mlreg-home"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLREG_")}
    env.update({"MLREG_HOME": str(home), "MLREG_LOG_LEVEL": "warning"})
    command = [str(BIN / "mlreg"), "server", "-p", str(port), "--workers", str(WORKERS)]
    if db_uri:
        command += ["--registry-uri", db_uri]
    proc = start(command, env, f"http://127.0.0.1:{port}/ready", work / "mlreg-server.log")
    url = f"http://127.0.0.1:{port}"
    results = {}
    try:
        settings = StoreSettings(url, work / "unused", "bench", home=work / "mlreg-client")
        with TrackingClient(settings) as tracking, MlregClient(settings) as registry:
            run_id = tracking.create_run(None).info.run_id
            metrics = [(f"m{k}", float(k), 0, None) for k in range(100)]

            def log_batch(i: int) -> None:
                tracking.log_batch(run_id, [(k, v, i + 10, t) for k, v, _, t in metrics])

            results["log_batch"] = timed(log_batch, count)
            name = f"bench-{uuid.uuid4().hex[:6]}"
            results["register 300 kB"] = timed(
                lambda i: registry.register_model(str(model), name), count // 2
            )

            # 10,000 runs: seeded straight into the server's database (the same store code),
            # then searched through the server.
            experiment_id = tracking.create_experiment(f"search-{uuid.uuid4().hex[:6]}")
            seed_mlreg(db_uri or f"sqlite:///{home / 'registry.db'}", experiment_id, runs)
            results["search_runs"] = timed(
                lambda i: tracking.search_runs(
                    [experiment_id],
                    "metrics.acc > 0.5",
                    order_by=["metrics.acc DESC"],
                    max_results=100,
                ),
                max(10, count // 4),
            )
            cache = settings.cache_dir

            def download(i: int) -> None:
                shutil.rmtree(cache, ignore_errors=True)
                dest = work / f"mlreg-dl-{i}"
                registry.download(f"models:/{name}/1", dest)
                shutil.rmtree(dest)

            results["download"] = timed(download, count // 2)
    finally:
        stop(proc)
    return results


def seed_mlreg(db_uri: str, experiment_id: str, runs: int) -> None:
    from mlreg.tracking.artifacts import LocalRunArtifacts
    from mlreg.tracking.service import TrackingService
    from mlreg.tracking.sql_store import SqlTrackingStore

    store = SqlTrackingStore(db_uri)
    service = TrackingService(store, LocalRunArtifacts(), "seed", "/tmp/unused")
    try:
        for i in range(runs):
            run_id = service.create_run(experiment_id).info.run_id
            service.log_batch(run_id, [("acc", (i * 7919 % 1000) / 1000, 0, None)], {"p": str(i)})
    finally:
        store.close()


# --- MLflow -------------------------------------------------------------------------------------


def bench_mlflow(db_uri: str | None, work: Path, model: Path, count: int, runs: int) -> dict:
    import mlflow
    import mlflow.artifacts
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    port = free_port()
    backend = db_uri or f"sqlite:///{work / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    command = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        backend,
        "--serve-artifacts",
        "--artifacts-destination",
        str(work / "mlflow-artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
    ]
    url = f"http://127.0.0.1:{port}"
    proc = start(command, env, f"{url}/health", work / "mlflow-server.log")
    results = {}
    try:
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        mlflow.set_tracking_uri(url)  # models:/ downloads resolve through these
        mlflow.set_registry_uri(url)
        experiment_id = client.create_experiment(f"bench-{uuid.uuid4().hex[:6]}")
        run_id = client.create_run(experiment_id).info.run_id

        def log_batch(i: int) -> None:
            now = int(time.time() * 1000)
            client.log_batch(
                run_id, metrics=[Metric(f"m{k}", float(k), now, i + 10) for k in range(100)]
            )

        results["log_batch"] = timed(log_batch, count)
        name = f"bench-{uuid.uuid4().hex[:6]}"
        client.create_registered_model(name)

        model_run = client.create_run(experiment_id).info

        def register(i: int) -> None:
            path = f"model-{i}"
            client.log_artifacts(model_run.run_id, str(model), path)
            client.create_model_version(name, f"{model_run.artifact_uri}/{path}", model_run.run_id)

        results["register 300 kB"] = timed(register, count // 2)
        search_experiment = client.create_experiment(f"search-{uuid.uuid4().hex[:6]}")
        seed_mlflow(backend, search_experiment, runs, Metric, Param)
        results["search_runs"] = timed(
            lambda i: client.search_runs(
                [search_experiment],
                "metrics.acc > 0.5",
                order_by=["metrics.acc DESC"],
                max_results=100,
            ),
            max(10, count // 4),
        )

        def download(i: int) -> None:
            dest = work / f"mlflow-dl-{i}"
            dest.mkdir()
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/1", dst_path=str(dest)
            )
            shutil.rmtree(dest)

        results["download"] = timed(download, count // 2)
    finally:
        stop(proc)
    return results


def seed_mlflow(backend: str, experiment_id: str, runs: int, metric: type, param: type) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=backend)
    now = int(time.time() * 1000)
    for i in range(runs):
        run_id = client.create_run(experiment_id).info.run_id
        client.log_batch(
            run_id,
            metrics=[metric("acc", (i * 7919 % 1000) / 1000, now, 0)],
            params=[param("p", str(i))],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="calls per measurement")
    parser.add_argument("--runs", type=int, default=10_000, help="runs to search over")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL too")
    parser.add_argument("--only", choices=["mlreg", "mlflow"], help="one server (profiling)")
    args = parser.parse_args()
    databases: dict[str, str | None] = {"SQLite": None}
    if args.postgres:
        databases["PostgreSQL"] = os.environ["MLREG_TEST_POSTGRES_URI"]
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        work = Path(tmp)
        model = make_model(work / "model")
        for label, uri in databases.items():
            rows = {}
            for who, bench in (("mlreg", bench_mlreg), ("mlflow", bench_mlflow)):
                if args.only and who != args.only:
                    continue
                db = fresh_database(uri, who) if uri else None
                where = work / f"{who}-{label}"
                where.mkdir()
                try:
                    rows[who] = bench(db, where, model, args.count, args.runs)
                finally:
                    if uri and db:
                        drop_database(uri, db)
            report(label, rows, args)


def fresh_database(admin_uri: str, who: str) -> str:
    from sqlalchemy import create_engine, text

    admin = create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    name = f"bench_{who}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    uri = admin.url.set(database=name).render_as_string(hide_password=False)
    admin.dispose()
    return uri


def drop_database(admin_uri: str, uri: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(uri).database}" WITH (FORCE)'))
    admin.dispose()


def report(label: str, rows: dict[str, dict], args: argparse.Namespace) -> None:
    print(f"\n{label}: {args.count} calls per line ({args.count // 2} for register and download,")
    print(
        f"{max(10, args.count // 4)} for search), search over {args.runs} runs, {WORKERS} workers\n"
    )
    print(f"{'':18}{'server':8}{'req/s':>9}{'p50 ms':>10}{'p99 ms':>10}{'ratio':>9}")
    for op in ["log_batch", "register 300 kB", "search_runs", "download"]:
        for who in ("mlreg", "mlflow"):
            if who not in rows:
                continue
            r = rows[who][op]
            ratio = ""
            if who == "mlreg" and "mlflow" in rows:
                ratio = f"{r['rps'] / rows['mlflow'][op]['rps']:.1f}x"
            label = op if who == "mlreg" else ""
            print(f"{label:18}{who:8}{r['rps']:9.1f}{r['p50']:10.1f}{r['p99']:10.1f}{ratio:>9}")


if __name__ == "__main__":
    main()
