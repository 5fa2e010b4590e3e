"""Registrations per second: mlreg's registry next to MLflow's, in the same run.

Usage: python bench/registry.py [--count N]

- "metadata only" times the database part of a registration (allocate a number, insert
  the version, mark it READY) — what MlflowClient.create_model_version does.
- "with artifacts" is a full mlreg registration: copy the model directory into the
  artifact store and SHA-256 it before the version turns READY.
- "8 processes" runs eight registering processes against one model at once.
SQLite always; PostgreSQL too when MLREG_TEST_POSTGRES_URI is set.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from mlreg.models import ModelSignature, Schema, TensorSpec
from mlreg.models.model import Model
from mlreg.registry import MlregClient, VersionStatus
from mlreg.registry.sql_store import SqlRegistryStore
from mlreg.store import StoreSettings


def make_model(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "data").mkdir()
    (path / "data" / "weights.bin").write_bytes(os.urandom(300_000))  # the reference CNN's size
    Model(signature=ModelSignature(Schema([TensorSpec(np.float32, (-1, 28, 28, 3))]))).add_flavor(
        "python_function", loader_module="mlreg.tensorflow"
    ).save(path)
    return path


def metadata_only(store: SqlRegistryStore, name: str, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        v = store.create_model_version(name, "bench", None, None, {}, None)
        store.finish_model_version(name, v.version, VersionStatus.READY, digest="0" * 64)
    return count / (time.perf_counter() - start)


def full(client: MlregClient, src: Path, name: str, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        client.register_model(str(src), name)
    return count / (time.perf_counter() - start)


def _worker(uri: str, root: str, src: str, name: str, count: int) -> None:
    with MlregClient(StoreSettings(uri, Path(root), "bench")) as client:
        for _ in range(count):
            client.register_model(src, name)


def concurrent(uri: str, root: Path, src: Path, count: int) -> float:
    name = f"conc-{uuid.uuid4().hex[:6]}"
    per = max(1, count // 8)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(uri, str(root), str(src), name, per)) for _ in range(8)
    ]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    if any(p.exitcode for p in procs):
        raise SystemExit("a registering process failed")
    return 8 * per / elapsed


def mlflow_rate(tmp: Path, count: int) -> float | None:
    try:
        from mlflow import MlflowClient
    except ImportError:
        return None
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("bench")
    client.create_model_version("bench", "file:///tmp/model")  # warm up, migrations done
    start = time.perf_counter()
    for _ in range(count):
        client.create_model_version("bench", "file:///tmp/model")
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        src = make_model(tmp / "model")
        backends = {"sqlite": f"sqlite:///{tmp / 'mlreg.db'}"}
        if os.environ.get("MLREG_TEST_POSTGRES_URI"):
            backends["postgresql"] = os.environ["MLREG_TEST_POSTGRES_URI"]
        theirs = mlflow_rate(tmp, args.count)
        print(f"\nregistrations per second ({args.count} each, 300 kB model)\n")
        print(f"{'':40}{'metadata only':>15}{'with artifacts':>16}{'8 processes':>13}")
        meta_rates = {}
        for label, uri in backends.items():
            root = tmp / f"artifacts-{label}"
            with MlregClient(StoreSettings(uri, root, "bench")) as client:
                tag = uuid.uuid4().hex[:6]
                meta_rates[label] = metadata_only(client.store, f"meta-{tag}", args.count)
                whole = full(client, src, f"full-{tag}", args.count)
            conc = concurrent(uri, root, src, args.count)
            print(f"{'mlreg ' + label:40}{meta_rates[label]:15.0f}{whole:16.0f}{conc:13.0f}")
        if theirs is None:
            print("(mlflow not installed: no peer figures)")
            return
        print(f"{'mlflow sqlite (create_model_version)':40}{theirs:15.0f}")
        print(f"\nmlreg / mlflow on SQLite, metadata only: {meta_rates['sqlite'] / theirs:.1f}x")


if __name__ == "__main__":
    main()
