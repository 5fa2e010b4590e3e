"""Model versions in S3: mlreg's store next to plain boto3 transfers, on the same endpoint.

Usage: python bench/s3.py [--mb 50] [--runs 3]

Starts moto's S3 server on loopback (as the tests do: SigV4 checked) and moves one model
directory holding an ``--mb`` MB file:

- put: ``S3ArtifactStore.put_version`` (uploads, multipart, and the digest computed on the
  way) next to boto3's ``upload_file`` of the same file (no digest).
- get, cold: ``get_version`` into an empty cache (download, digest check, rename) next to
  boto3's ``download_file``; get, warm: ``get_version`` in a fresh process with the copy
  cached (no download; the copy is re-hashed).
- stream: ``open_file`` read chunk by chunk (what a server hands out).

Each operation runs in its own process; the figures are the median time of ``--runs`` and
the process's peak RSS, and how far above the RSS it held when the operation started.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlreg.registry.entities import ModelVersion, Stage, VersionStatus  # noqa: E402


def status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Make the peak RSS (VmHWM) start again from the current RSS (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def version(location: str, digest: str) -> ModelVersion:
    now = datetime.now(timezone.utc)
    return ModelVersion(
        "bench", 1, Stage.NONE, VersionStatus.READY, "src", None, None, {}, [], None,
        digest, location, None, now, now,
    )  # fmt: skip


def _store(endpoint: str, root: str, cache: str):
    from mlreg.registry.s3_artifacts import S3ArtifactStore
    from mlreg.store.s3 import S3Config

    return S3ArtifactStore(root, cache, S3Config(endpoint_url=endpoint))


def _client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint)


def op(name: str, endpoint: str, root: str, work: str, state: dict, out) -> None:
    """One measured operation (in a child process): put its seconds and peak RSS on ``out``."""
    store = _store(endpoint, root, f"{work}/cache")
    client = _client(endpoint)
    store.s3.client  # noqa: B018 -- make the clients before measuring
    bucket, _, prefix = root[len("s3://") :].partition("/")
    big = Path(work, "src", "data", "big.bin")
    reset_peak()
    before = status_mb("VmRSS")
    start = time.perf_counter()
    if name == "mlreg put":
        stored = store.put_version(Path(work, "src"), "bench", 1)
        state = {"location": stored.location, "digest": stored.digest}
    elif name == "boto3 upload_file":
        client.upload_file(str(big), bucket, f"{prefix}/peer/big.bin")
    elif name in ("mlreg get, cold", "mlreg get, warm"):
        store.get_version(version(state["location"], state["digest"]))
    elif name == "boto3 download_file":
        client.download_file(bucket, f"{prefix}/peer/big.bin", f"{work}/peer.bin")
    elif name == "mlreg stream":
        stream = store.open_file(version(state["location"], state["digest"]), "data/big.bin")
        for _ in stream.chunks:
            pass
    seconds = time.perf_counter() - start
    peak = status_mb("VmHWM")
    out.send((seconds, peak - before, peak, state))
    store.close()
    client.close()


def measure(
    name: str, endpoint: str, root: str, work: str, state: dict
) -> tuple[float, float, dict]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=op, args=(name, endpoint, root, work, state, child))
    proc.start()
    result = parent.recv()
    proc.join(120)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    # Imported here, not at the top: the measuring processes start lean (spawn re-imports us).
    from tests.conftest import make_model_dir
    from tests.s3 import MotoS3

    with tempfile.TemporaryDirectory(prefix="mlreg-bench-s3-") as tmp:
        work = Path(tmp)
        moto = MotoS3.start(work / "moto.log")
        try:
            os.environ.update(moto.env())
            src = make_model_dir(work / "src")
            (src / "data" / "big.bin").write_bytes(os.urandom(args.mb << 20))
            rows: dict[str, list[tuple[float, float, float]]] = {}
            for i in range(args.runs):
                root = f"s3://{moto.bucket}/bench-{i}"
                state: dict = {}
                (work / "cache").mkdir(exist_ok=True)
                for name in (
                    "mlreg put",
                    "boto3 upload_file",
                    "mlreg get, cold",
                    "mlreg get, warm",
                    "boto3 download_file",
                    "mlreg stream",
                ):
                    seconds, grew, peak, new = measure(name, moto.endpoint, root, str(work), state)
                    state = new or state
                    rows.setdefault(name, []).append((seconds, grew, peak))
                shutil.rmtree(work / "cache")  # the next run's cold get is cold again
        finally:
            moto.stop()
    mb = args.mb
    med = {n: statistics.median(s for s, _, _ in r) for n, r in rows.items()}
    print(f"{mb} MB model file on moto's S3 server (loopback), median of {args.runs}")
    print(f"{'operation':<22} {'seconds':>8} {'MB/s':>7} {'peak RSS MB':>12} {'(+ for it)':>10}")
    for name, r in rows.items():
        grew = max(x for _, x, _ in r)
        peak = max(x for _, _, x in r)
        print(f"{name:<22} {med[name]:>8.2f} {mb / med[name]:>7.0f} {peak:>12.0f} {grew:>10.0f}")
    print(f"put / upload_file:      {med['mlreg put'] / med['boto3 upload_file']:.2f}x")
    print(f"cold get / download_file: {med['mlreg get, cold'] / med['boto3 download_file']:.2f}x")


if __name__ == "__main__":
    main()
