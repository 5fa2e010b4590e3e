"""HTTP serving throughput and latency: ``mlreg serve`` next to ``mlflow models serve``.

Usage: python bench/serve.py [--duration S] [--no-mlflow] [--no-batching] [--no-tfserving]

Both servers run the reference docs' Keras CNN (28x28x3 -> 2, the same weights) with one
worker on 127.0.0.1. The load comes from a second process (``wrk`` with a Lua script for
the POST body, or a bounded Python client when wrk is missing) at concurrency 1 and 16,
one 28x28x3 image per request. The table prints requests/s and p50/p99 latency side by
side and mlreg's ratio to MLflow, then mlreg's p50 at concurrency 1 against the raw traced
TensorFlow call on the same input (how close the server is to the limit).

``mlreg->tfserving`` is the same server with ``--backend tfserving`` in front of the TF
Serving test peer (tests/serving/tfserving_peer.py: real gRPC, TF Serving's protos, the
same SavedModel in real TensorFlow), so the cost of the extra gRPC hop is a number. The
peer is Python, not TF Serving's C++ server, so treat its side of the hop as an upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
import tensorflow as tf
from reference import reference_cnn  # bench/ is on sys.path

from mlreg.tensorflow import save_model

CONCURRENCY = (1, 16)
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    out = open(log, "wb")  # noqa: SIM115  (the child owns it)
    return subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url + "/ping", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- load ---------------------------------------------------------------------------------

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %f %f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def run_wrk(url: str, body: Path, concurrency: int, duration: float, work: Path) -> Result:
    script = work / "post.lua"
    script.write_text(LUA.replace("{body}", str(body)))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{duration:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url + "/invocations",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    )
    match = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+)", out.stdout)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if not match or not rps:
        raise SystemExit(f"cannot read wrk's output:\n{out.stdout}\n{out.stderr}")
    return Result(
        float(rps.group(1)), float(match.group(3)), float(match.group(4)), int(match.group(2))
    )


PY_CLIENT = """
import json, sys, threading, time, http.client
from urllib.parse import urlparse
url, body_path, conc, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
body = open(body_path, "rb").read()
u = urlparse(url)
lat, errors, lock = [], [0], threading.Lock()
end = time.monotonic() + duration
def client():
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    while time.monotonic() < end:
        t = time.perf_counter()
        try:
            conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            r = conn.getresponse(); r.read(); ok = r.status == 200
        except OSError:
            ok = False; conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        with lock:
            (lat.append(time.perf_counter() - t) if ok else errors.__setitem__(0, errors[0] + 1))
ts = [threading.Thread(target=client) for _ in range(conc)]
start = time.monotonic(); [t.start() for t in ts]; [t.join() for t in ts]
lat.sort()
print(json.dumps({"n": len(lat), "errors": errors[0], "secs": time.monotonic() - start,
  "p50": lat[len(lat) // 2] * 1000, "p99": lat[int(len(lat) * 0.99)] * 1000}))
"""


def run_python_client(url: str, body: Path, concurrency: int, duration: float) -> Result:
    out = subprocess.run(
        [sys.executable, "-c", PY_CLIENT, url, str(body), str(concurrency), str(duration)],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    )
    r = json.loads(out.stdout)
    return Result(r["n"] / r["secs"], r["p50"], r["p99"], r["errors"])


def drive(url: str, body: Path, concurrency: int, duration: float, work: Path) -> Result:
    if shutil.which("wrk"):
        run_wrk(url, body, concurrency, min(1.0, duration), work)  # warm-up, not counted
        return run_wrk(url, body, concurrency, duration, work)
    run_python_client(url, body, concurrency, min(1.0, duration))
    return run_python_client(url, body, concurrency, duration)


# --- the raw TensorFlow call --------------------------------------------------------------


def raw_tf_p50_ms(model_dir: Path, x: np.ndarray, repeats: int = 2000) -> float:
    """Median latency of the SavedModel's serving signature called with one image."""
    fn = tf.saved_model.load(str(model_dir / "tfserving" / "1")).signatures["serving_default"]
    name = next(iter(fn.structured_input_signature[1]))
    for _ in range(200):
        fn(**{name: tf.constant(x)})
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(**{name: tf.constant(x)})
        next(iter(out.values())).numpy()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow peer")
    parser.add_argument("--no-batching", action="store_true", help="skip mlreg with batching")
    parser.add_argument("--no-tfserving", action="store_true", help="skip the tfserving backend")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlreg-bench-"))
    model = reference_cnn()
    x = np.random.default_rng(0).uniform(size=(1, 28, 28, 3)).astype(np.float32)
    mlreg_dir = work / "mlreg_model"
    save_model(model, mlreg_dir, input_example=x)
    body = work / "body.json"
    body.write_text(json.dumps({"inputs": x.tolist()}))

    raw_ms = raw_tf_p50_ms(mlreg_dir, x)
    env = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    servers: dict[str, dict[int, Result]] = {}
    answers: dict[str, list] = {}

    def bench(name: str, cmd: list[str], url: str, srv_env: dict[str, str]) -> None:
        log = work / f"{name}.log"
        proc = start(cmd, log, srv_env)
        try:
            wait_ready(url, proc, log)
            r = requests.post(
                url + "/invocations",
                data=body.read_bytes(),
                headers={"Content-Type": "application/json"},
            )
            r.raise_for_status()
            answers[name] = r.json()["predictions"]
            servers[name] = {c: drive(url, body, c, args.duration, work) for c in CONCURRENCY}
        finally:
            stop(proc)

    port = free_port()
    bench(
        "mlreg",
        [str(BIN / "mlreg"), "serve", "-m", str(mlreg_dir), "--port", str(port), "--workers", "1"],
        f"http://127.0.0.1:{port}",
        env,
    )
    if not args.no_batching:
        port = free_port()
        bench(
            "mlreg+batching",
            [
                str(BIN / "mlreg"),
                "serve",
                "-m",
                str(mlreg_dir),
                "--port",
                str(port),
                "--threads",
                "16",
                "--batch-max-size",
                "16",
                "--batch-timeout-ms",
                "2",
            ],
            f"http://127.0.0.1:{port}",
            env,
        )
    if not args.no_tfserving:
        base = work / "tfs" / "cnn"
        shutil.copytree(mlreg_dir / "tfserving" / "1", base / "1")
        peer_port, port = free_port(), free_port()
        peer = start(
            [
                sys.executable,
                "-m",
                "tests.serving.tfserving_peer",
                "--port",
                str(peer_port),
                "--model_name",
                "cnn",
                "--model_base_path",
                str(base),
            ],
            work / "peer.log",
            {**env, "PYTHONPATH": str(ROOT)},
        )
        try:
            bench(
                "mlreg->tfserving",
                [
                    str(BIN / "mlreg"),
                    "serve",
                    "-m",
                    str(mlreg_dir),
                    "--port",
                    str(port),
                    "--backend",
                    "tfserving",
                    "--tfserving-target",
                    f"127.0.0.1:{peer_port}",
                    "--tfserving-model-name",
                    "cnn",
                ],
                f"http://127.0.0.1:{port}",
                env,
            )
        finally:
            stop(peer)
    mlflow_bin = BIN / "mlflow"
    if not args.no_mlflow and mlflow_bin.exists():
        # MLflow's server loads models saved by MLflow; save the same weights its way.
        import mlflow.tensorflow

        mlflow_dir = work / "mlflow_model"
        mlflow.tensorflow.save_model(model, str(mlflow_dir), input_example=x)
        port = free_port()
        bench(
            "mlflow",
            [
                str(mlflow_bin),
                "models",
                "serve",
                "-m",
                str(mlflow_dir),
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ],
            f"http://127.0.0.1:{port}",
            # MLflow starts uvicorn by name, so the venv's bin must be on PATH.
            {
                **env,
                "MLFLOW_TRACKING_URI": f"file:{work / 'mlruns'}",
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            },
        )

    report(servers, answers, raw_ms, args.duration)
    shutil.rmtree(work, ignore_errors=True)


def report(
    servers: dict[str, dict[int, Result]], answers: dict[str, list], raw_ms: float, duration: float
) -> None:
    loader = "wrk" if shutil.which("wrk") else "python client"
    print(f"\nreference CNN 28x28x3, 1 image per request, {duration:g} s per run, load: {loader}")
    names = list(servers)
    head = f"{'concurrency':>11} | " + " | ".join(f"{n:>30}" for n in names)
    print(head)
    print(f"{'':>11} | " + " | ".join(f"{'req/s   p50 ms   p99 ms  err':>30}" for _ in names))
    for c in CONCURRENCY:
        cells = []
        for n in names:
            r = servers[n][c]
            cells.append(f"{r.rps:8.1f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.errors:4d}")
        print(f"{c:>11} | " + " | ".join(f"{cell:>30}" for cell in cells))
    if "mlflow" in servers:
        for n in names:
            if n == "mlflow":
                continue
            for c in CONCURRENCY:
                a, b = servers[n][c], servers["mlflow"][c]
                print(
                    f"{n} / mlflow at concurrency {c}: {a.rps / b.rps:6.1f}x requests/s, "
                    f"p50 {b.p50_ms / a.p50_ms:6.1f}x lower"
                )
        same = np.allclose(answers["mlreg"], answers["mlflow"], rtol=1e-5)
        print(f"same predictions from mlreg and mlflow: {same}")
    if "mlreg->tfserving" in servers:
        for c in CONCURRENCY:
            a, b = servers["mlreg->tfserving"][c], servers["mlreg"][c]
            print(
                f"tfserving backend / local backend at concurrency {c}: {a.rps / b.rps:5.2f}x "
                f"requests/s, p50 {a.p50_ms - b.p50_ms:+.2f} ms, p99 {a.p99_ms - b.p99_ms:+.2f} ms"
            )
        same = np.allclose(answers["mlreg"], answers["mlreg->tfserving"], rtol=1e-5)
        print(f"same predictions from the local and tfserving backends: {same}")
    p50 = servers["mlreg"][1].p50_ms
    print(
        f"raw traced TF call p50: {raw_ms:.3f} ms; mlreg p50 at concurrency 1: {p50:.2f} ms "
        f"= {p50 / raw_ms:.1f}x the raw call (HTTP + JSON + enforcement: {p50 - raw_ms:.2f} ms)"
    )


if __name__ == "__main__":
    main()
