"""HTTP and gRPC serving throughput and latency: ``mlreg serve`` next to MLServer and MLflow.

Usage: python bench/serve.py [--duration S] [--rounds N] [--no-mlserver] [--no-mlflow]
                             [--batching] [--tfserving] [--mlserver PATH]

Every server runs the reference docs' Keras CNN (28x28x3 -> 2, the same weights) with one
worker (one process) on 127.0.0.1, started, measured and stopped in turn:

- ``mlreg``: ``mlreg serve`` (its /invocations, V2 REST in JSON and with binary tensor data,
  and V2 gRPC on --grpc-port); ``mlreg 2 workers``: the same with ``--workers 2``; ``mlreg
  inline``: with MLREG_INLINE_MS=2 (quick predictions computed on the worker's loop);
  ``mlreg XLA``: with MLREG_XLA_MAX_BATCH=1 (one-image batches compiled by XLA); ``mlreg XLA
  inline``: both;
- ``mlserver``: MLServer (``parallel_workers: 0``) with a custom runtime that calls the
  SavedModel's serving_default signature, as mlreg does (bench/mlserver_runtime.py): the fair
  peer, over V2 REST (JSON; MLServer has no binary extension) and V2 gRPC;
- ``mlserver-mlflow``: MLServer's MLflow runtime on the same model saved by MLflow (Keras
  ``predict()``), over V2 REST and its /invocations;
- ``mlflow``: ``mlflow models serve --env-manager local``;
- with ``--batching``, mlreg with --batch-max-size 16; with ``--tfserving``, mlreg in front of
  the TF Serving test peer (tests/serving/tfserving_peer.py).

The load comes from a second process: ``wrk`` for HTTP (a Lua script sets the body and
headers), ``h2load`` for gRPC (``apt install nghttp2-client``; unary ModelInfer calls as
HTTP/2 POSTs, each checked to carry the answer a real gRPC call gets), else a grpc.aio client
(which needs half a core at 1,600 calls/s). One connection per concurrent client, so that two
workers' shared gRPC port gets both some. Workloads: one image per request at
concurrency 1 and 16, and a batch of 256 images per request at concurrency 1. MLServer is
installed in its own virtualenv by ``bash .ci/mlserver.sh`` (or give ``--mlserver
PATH/TO/mlserver``).

Where the time of one request goes (py-spy, ``py-spy record -r 500 --nonblocking -f raw`` on
the worker of ``mlreg serve`` while wrk sends V2 REST JSON, one image, concurrency 1, 12 s;
shares of the samples in which a thread was running, not waiting):

- 35% the TensorFlow call (``Predictor.predict``; 27% inside the eager executor itself);
- 23% handing the request from the event loop to a pool thread and back
  (``ThreadPoolExecutor.submit`` 11%, ``loop.call_soon_threadsafe``'s wake-up write 12%):
  mostly waiting for the GIL the other thread holds. It is the price of answering probes
  while the model runs (issue 21: stalled clients must not take /ping down), so it stays;
- 22% the event loop: reading and parsing HTTP (h11), writing the answer (6%);
- 13% decoding the V2 JSON into arrays: a new simdjson parser per request (4%, now reused
  per thread), the byte-count guard against memory amplification (5%; since then it stops
  counting once a body is within both bounds: 125 -> 27 us for a V2 body), dtype casts (4%);
- the rest: enforcement, metrics, encoding the answer.

Profiled again with both opt-ins on (XLA for one image, inline), the TensorFlow call was
25.5% of the samples and a third of that was ``ConcreteFunction.__call__`` binding the
arguments to the structured signature (45-85 us for a new input tensor); the predictor now
calls the function by its flat inputs (mlreg.tensorflow.calls).

Computing a fast model's request on the loop itself (saving the hand-off) is an option,
``MLREG_INLINE_MS``, off by default: a model whose time depends on its input (the tests'
sleepy model: fast, then 1.5 s for one request) holds /ping for that one request, and the
timeout cannot answer it. The "mlreg inline" rows measure it with a 2 ms budget.

TensorFlow's XLA (``jit_compile``) on the whole serving function loses: one image 0.30 vs
0.40 ms, but 256 images 6.0 vs 1.5 ms, and 80-160 ms to compile each new batch size. So it is
the opt-in ``MLREG_XLA_MAX_BATCH=N`` (mlreg.tensorflow.xla): batch sizes 1..N compiled at
load, each kept only where it agrees with the plain function and is faster; the "mlreg XLA"
rows measure N=1.

For ``/invocations`` the pieces are timed one by one by ``bench/serve_breakdown.py``.
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
import struct
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

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
BATCH = 256


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class Load:
    """One kind of request: HTTP (path, headers, body file) or gRPC (a serialized request)."""

    label: str
    path: str = ""
    body: Path | None = None
    headers: tuple[tuple[str, str], ...] = ()
    grpc: Path | None = None  # a serialized ModelInferRequest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None):
    out = open(log, "wb")  # noqa: SIM115  (the child owns it)
    return subprocess.Popen(
        cmd,
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        start_new_session=True,
    )


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers (its own session)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- load ---------------------------------------------------------------------------------

LUA = """
wrk.method = "POST"
{headers}
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


def run_wrk(url: str, load: Load, concurrency: int, duration: float, work: Path) -> Result:
    script = work / "post.lua"
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in load.headers)
    script.write_text(LUA.replace("{headers}", headers).replace("{body}", str(load.body)))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{duration:g}s",
            "--timeout",
            "20s",
            "-s",
            str(script),
            url + load.path,
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


GRPC_CLIENT = """
import asyncio, json, sys, time
import grpc
target, request_path = sys.argv[1], sys.argv[2]
conc, duration = int(sys.argv[3]), float(sys.argv[4])
body = open(request_path, "rb").read()
lat, errors = [], [0]
async def main():
    # One connection per client, as wrk has: several workers sharing the port each get some.
    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1),
               ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(conc)]
    end = time.monotonic() + duration
    async def client(channel):
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                   request_serializer=None, response_deserializer=None)
        while time.monotonic() < end:
            t = time.perf_counter()
            try:
                await call(body, timeout=20)
                lat.append(time.perf_counter() - t)
            except grpc.aio.AioRpcError:
                errors[0] += 1
    start = time.monotonic()
    await asyncio.gather(*(client(c) for c in channels))
    secs = time.monotonic() - start
    for c in channels:
        await c.close()
    return secs
secs = asyncio.run(main())
lat.sort()
print(json.dumps({"n": len(lat), "errors": errors[0], "secs": secs,
  "p50": lat[len(lat) // 2] * 1000, "p99": lat[int(len(lat) * 0.99)] * 1000}))
"""


GRPC_METHOD = "/inference.GRPCInferenceService/ModelInfer"


def run_grpc(target: str, load: Load, concurrency: int, duration: float) -> Result:
    """gRPC load from h2load (C, one HTTP/2 connection per client) when it is installed,
    else from the grpc.aio client above. The Python client needs about half a core of this
    2-core machine for 1,600 calls/s: with two server workers it was the limit (h2load drove
    the same two workers 33% faster), so h2load is the one to use (``apt install
    nghttp2-client``)."""
    if shutil.which("h2load"):
        return run_h2load(target, load, concurrency, duration)
    run_grpc_aio(target, load, concurrency, min(1.0, duration))  # warm up
    return run_grpc_aio(target, load, concurrency, duration)


def run_h2load(target: str, load: Load, concurrency: int, duration: float) -> Result:
    """Unary ModelInfer calls as h2load's POSTs: the gRPC message framing (a zero flag and the
    length) before the request, gRPC's headers. h2load sees HTTP statuses, not grpc-status,
    so a call counts as answered only if its response carried the message a real call gets:
    the response bytes must add up to one such message per call (a failed call has none)."""
    assert load.grpc is not None
    message = load.grpc.read_bytes()
    framed = load.grpc.with_suffix(".h2")
    framed.write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)
    answer = len(grpc_call(target, message)) + 5
    log = load.grpc.with_suffix(".h2log")
    h2load(target, framed, concurrency, min(1.0, duration))  # warm up (a run of its own)
    log.unlink(missing_ok=True)  # h2load appends
    out = h2load(target, framed, concurrency, duration, "--log-file", str(log))
    done = re.search(r"finished in ([\d.]+)s", out)
    data = re.search(r"traffic: .*\((\d+)\) data", out)
    if done is None or data is None:
        raise SystemExit(f"cannot read h2load's output:\n{out}")
    lines = log.read_text().splitlines()
    lat = sorted(
        int(fields[2]) / 1000
        for fields in (line.split("\t") for line in lines)
        if len(fields) == 3 and fields[1] == "200"
    )
    calls = len(lines)
    answered = min(len(lat), round(int(data.group(1)) / answer))
    return Result(
        answered / float(done.group(1)),
        lat[len(lat) // 2] if lat else 0.0,
        lat[int(len(lat) * 0.99)] if lat else 0.0,
        calls - answered,
    )


def h2load(target: str, framed: Path, concurrency: int, duration: float, *extra: str) -> str:
    out = subprocess.run(
        [
            "h2load",
            *("-c", str(concurrency), "-m", "1", "-D", f"{duration:g}", *extra),
            *("-d", str(framed), "-H", "content-type: application/grpc", "-H", "te: trailers"),
            f"http://{target}{GRPC_METHOD}",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    if out.returncode != 0:
        raise SystemExit(f"h2load failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def grpc_call(target: str, message: bytes) -> bytes:
    """One ModelInfer call with gRPC's own client; the serialized response."""
    import grpc

    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(GRPC_METHOD)
        return call(message, timeout=60)


def run_grpc_aio(target: str, load: Load, concurrency: int, duration: float) -> Result:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            GRPC_CLIENT,
            target,
            str(load.grpc),
            str(concurrency),
            str(duration),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    )
    r = json.loads(out.stdout)
    return Result(r["n"] / r["secs"], r["p50"], r["p99"], r["errors"])


def measure(http: str, grpc: str, load: Load, concurrency: int, duration: float, work: Path):
    warm = min(1.0, duration)
    if load.grpc is not None:
        return run_grpc(grpc, load, concurrency, duration)  # warms up first
    run_wrk(http, load, concurrency, warm, work)
    return run_wrk(http, load, concurrency, duration, work)


# --- request bodies -----------------------------------------------------------------------


def loads(work: Path, x: np.ndarray, tag: str, model: str, name: str) -> dict[str, Load]:
    """The ways of sending ``x`` to a server serving ``model`` whose input is ``name``."""
    json_h = (("Content-Type", "application/json"),)
    invocations = work / f"invocations-{tag}.json"
    invocations.write_text(json.dumps({"inputs": x.tolist()}))
    v2 = work / f"v2-{tag}-{model}.json"
    tensor = {"name": name, "shape": list(x.shape), "datatype": "FP32"}
    v2.write_text(json.dumps({"inputs": [{**tensor, "data": x.reshape(-1).tolist()}]}))
    header = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": x.nbytes}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    binary = work / f"v2-{tag}-{model}.bin"
    binary.write_bytes(header + x.tobytes())
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest(model_name=model)
    request.inputs.add(name=name, datatype="FP32", shape=list(x.shape))
    request.raw_input_contents.append(x.tobytes())
    grpc = work / f"grpc-{tag}-{model}.pb"
    grpc.write_bytes(request.SerializeToString())
    infer = f"/v2/models/{model}/infer"
    return {
        "/invocations JSON": Load("/invocations JSON", "/invocations", invocations, json_h),
        "V2 REST JSON": Load("V2 REST JSON", infer, v2, json_h),
        "V2 REST binary": Load(
            "V2 REST binary",
            infer,
            binary,
            (
                ("Inference-Header-Content-Length", str(len(header))),
                ("Content-Type", "application/octet-stream"),
            ),
        ),
        "V2 gRPC": Load("V2 gRPC", grpc=grpc),
    }


# --- the raw TensorFlow call --------------------------------------------------------------


def raw_tf_p50_ms(model_dir: Path, x: np.ndarray, repeats: int = 2000) -> float:
    """Median latency of the SavedModel's serving signature called with ``x``."""
    fn = tf.saved_model.load(str(model_dir / "tfserving" / "1")).signatures["serving_default"]
    name = next(iter(fn.structured_input_signature[1]))
    for _ in range(200):
        fn(**{name: tf.constant(x)})
    samples = []
    for _ in range(repeats):
        start_t = time.perf_counter()
        out = fn(**{name: tf.constant(x)})
        next(iter(out.values())).numpy()
        samples.append(time.perf_counter() - start_t)
    return statistics.median(samples) * 1000


# --- servers ------------------------------------------------------------------------------


def mlserver_folder(work: Path, name: str, settings: dict, model_settings: dict) -> Path:
    folder = work / f"mlserver-{name}"
    (folder / name).mkdir(parents=True)
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / name / "model-settings.json").write_text(json.dumps({"name": name, **model_settings}))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--no-mlflow", action="store_true", help="skip mlflow models serve")
    parser.add_argument("--no-mlserver", action="store_true", help="skip MLServer")
    parser.add_argument("--mlserver", help="MLServer's command (default: .ci/mlserver.sh's)")
    parser.add_argument("--batching", action="store_true", help="add mlreg with batching")
    parser.add_argument("--tfserving", action="store_true", help="add the tfserving backend")
    parser.add_argument(
        "--rounds", type=int, default=2, help="run mlreg and MLServer N times, keep the best"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlreg-bench-"))
    model = reference_cnn()
    rng = np.random.default_rng(0)
    x1 = rng.uniform(size=(1, 28, 28, 3)).astype(np.float32)
    x256 = rng.uniform(size=(BATCH, 28, 28, 3)).astype(np.float32)
    mlreg_dir = work / "mlreg_model"
    save_model(model, mlreg_dir, input_example=x1)
    input_name = next(iter(_serving_inputs(mlreg_dir)))
    raw_ms = raw_tf_p50_ms(mlreg_dir, x1)
    env = {"TF_CPP_MIN_LOG_LEVEL": "2"}

    # (server, workload, concurrency) -> Result; the answers, to compare predictions.
    results: dict[tuple[str, str, int], Result] = {}
    answers: dict[str, np.ndarray] = {}
    plan = [(1, "one image"), (16, "one image"), (1, f"{BATCH} images")]

    def bench(
        name: str,
        proc: subprocess.Popen,
        log: Path,
        http: str,
        grpc: str,
        ready: str,
        model_name: str,
        workloads: dict[str, list[str]],
    ) -> None:
        try:
            wait_ready(http + ready, proc, log)
            for size, x in (("one image", x1), (f"{BATCH} images", x256)):
                kinds = loads(work, x, size.split()[0], model_name, input_name)
                for label in workloads.get(size, []):
                    load = kinds[label]
                    for c, what in plan:
                        if what != size:
                            continue
                        r = measure(http, grpc, load, c, args.duration, work)
                        key = (name, label, c if size == "one image" else -BATCH)
                        if key not in results or r.rps > results[key].rps:
                            results[key] = r  # the best round
                        print(
                            f"{name:>16} {label:<18} {size:<11} c={c:<3} {r.rps:9.1f} req/s "
                            f"p50 {r.p50_ms:8.2f} ms p99 {r.p99_ms:8.2f} ms err {r.errors}",
                            flush=True,
                        )
            answers[name] = _answer(http, model_name, input_name, x1)
        finally:
            stop(proc)

    one, batch = "one image", f"{BATCH} images"
    every = ["/invocations JSON", "V2 REST JSON", "V2 REST binary", "V2 gRPC"]
    # mlreg and MLServer in rounds: this machine is shared and its load moves by the minute,
    # so each gets several chances at different times and keeps its best (MLflow, 30x
    # slower, runs once after).
    for _round in range(args.rounds):
        # mlreg: one worker, two, one that computes quick predictions on its loop, one with
        # batches of one image compiled by XLA, and one with both.
        inline, xla = {"MLREG_INLINE_MS": "2"}, {"MLREG_XLA_MAX_BATCH": "1"}
        for name, workers, extra, workloads in (
            ("mlreg", 1, {}, {one: every, batch: every}),
            ("mlreg 2 workers", 2, {}, {one: every}),
            ("mlreg inline", 1, inline, {one: every[:2]}),
            ("mlreg XLA", 1, xla, {one: every}),
            ("mlreg XLA inline", 1, {**xla, **inline}, {one: every[:2]}),
        ):
            port, grpc_port = free_port(), free_port()
            cmd = [
                str(BIN / "mlreg"),
                "serve",
                "-m",
                str(mlreg_dir),
                "--port",
                str(port),
                "--grpc-port",
                str(grpc_port),
                "--workers",
                str(workers),
                "--model-name",
                "cnn",
            ]
            log = work / f"{name}.log"
            bench(
                name,
                start(cmd, log, {**env, **extra}),
                log,
                f"http://127.0.0.1:{port}",
                f"127.0.0.1:{grpc_port}",
                "/ping",
                "cnn",
                workloads,
            )
        if args.batching:
            port = free_port()
            cmd = [
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
                "--model-name",
                "cnn",
            ]
            log = work / "batching.log"
            bench(
                "mlreg+batching",
                start(cmd, log, env),
                log,
                f"http://127.0.0.1:{port}",
                "",
                "/ping",
                "cnn",
                {one: ["/invocations JSON"]},
            )
        if args.tfserving:
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
                cmd = [
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
                    "--model-name",
                    "cnn",
                ]
                log = work / "tfserving.log"
                bench(
                    "mlreg->tfserving",
                    start(cmd, log, env),
                    log,
                    f"http://127.0.0.1:{port}",
                    "",
                    "/ping",
                    "cnn",
                    {one: ["/invocations JSON"]},
                )
            finally:
                stop(peer)
        if not args.no_mlserver:
            mlserver = (
                args.mlserver
                or subprocess.run(
                    ["bash", str(ROOT / ".ci" / "mlserver.sh")],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
            )
            import mlflow.tensorflow  # the MLflow runtime serves what MLflow saved

            mlflow_dir = work / f"mlflow_model_r{_round}"
            mlflow.tensorflow.save_model(model, str(mlflow_dir), input_example=x1)
            for name, model_settings, workloads in [
                (
                    "mlserver",
                    {
                        "implementation": "runtime.SavedModelRuntime",
                        "parameters": {"uri": "./savedmodel"},
                    },
                    {one: ["V2 REST JSON", "V2 gRPC"], batch: ["V2 REST JSON", "V2 gRPC"]},
                ),
                (
                    "mlserver-mlflow",
                    {
                        "implementation": "mlserver_mlflow.MLflowRuntime",
                        "parameters": {"uri": str(mlflow_dir)},
                    },
                    {one: ["V2 REST JSON", "/invocations JSON"], batch: ["V2 REST JSON"]},
                ),
            ]:
                if name == "mlserver-mlflow" and _round:
                    continue  # 100x slower than the rest: one round says enough
                port, grpc_port, metrics_port = free_port(), free_port(), free_port()
                settings = {
                    "parallel_workers": 0,
                    "http_port": port,
                    "grpc_port": grpc_port,
                    "metrics_port": metrics_port,
                    "host": "127.0.0.1",
                }
                folder = mlserver_folder(work, "cnn", settings, model_settings)
                if name == "mlserver":
                    shutil.copy(
                        ROOT / "bench" / "mlserver_runtime.py", folder / "cnn" / "runtime.py"
                    )
                    shutil.copytree(mlreg_dir / "tfserving" / "1", folder / "cnn" / "savedmodel")
                log = work / f"{name}.log"
                proc = start([mlserver, "start", str(folder)], log, env, cwd=folder)
                bench(
                    name,
                    proc,
                    log,
                    f"http://127.0.0.1:{port}",
                    f"127.0.0.1:{grpc_port}",
                    "/v2/models/cnn/ready",
                    "cnn",
                    workloads,
                )
                shutil.rmtree(folder)
    mlflow_bin = BIN / "mlflow"
    if not args.no_mlflow and mlflow_bin.exists():
        import mlflow.tensorflow

        mlflow_dir = work / "mlflow_model_2"
        mlflow.tensorflow.save_model(model, str(mlflow_dir), input_example=x1)
        port = free_port()
        cmd = [
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
        ]
        log = work / "mlflow.log"
        # MLflow starts uvicorn by name, so the venv's bin must be on PATH.
        mlflow_env = {
            **env,
            "MLFLOW_TRACKING_URI": f"file:{work / 'mlruns'}",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        bench(
            "mlflow",
            start(cmd, log, mlflow_env),
            log,
            f"http://127.0.0.1:{port}",
            "",
            "/ping",
            "cnn",
            {one: ["/invocations JSON"], batch: ["/invocations JSON"]},
        )

    report(results, answers, raw_ms, args.duration)
    shutil.rmtree(work, ignore_errors=True)


def _serving_inputs(model_dir: Path) -> dict[str, str]:
    import yaml

    flavor = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]["tensorflow"]
    return flavor["serving"]["inputs"]


def _answer(url: str, model_name: str, input_name: str, x: np.ndarray) -> np.ndarray | None:
    """One prediction through V2 REST JSON (or /invocations), to check the servers agree."""
    tensor = {"name": input_name, "shape": list(x.shape), "datatype": "FP32"}
    r = requests.post(
        f"{url}/v2/models/{model_name}/infer",
        json={"inputs": [{**tensor, "data": x.reshape(-1).tolist()}]},
        timeout=30,
    )
    if r.status_code == 200:
        return np.asarray(r.json()["outputs"][0]["data"])
    r = requests.post(f"{url}/invocations", json={"inputs": x.tolist()}, timeout=30)
    return np.asarray(r.json()["predictions"]).reshape(-1) if r.status_code == 200 else None


def report(
    results: dict[tuple[str, str, int], Result],
    answers: dict[str, np.ndarray | None],
    raw_ms: float,
    duration: float,
) -> None:
    print(
        f"\nreference CNN 28x28x3, {duration:g} s per run, one worker unless said; wrk / "
        + ("h2load" if shutil.which("h2load") else "grpc.aio")
    )
    print(
        f"{'server':<18} {'protocol':<18} {'request':<12} {'conc':>4} {'req/s':>9} "
        f"{'p50 ms':>8} {'p99 ms':>8}"
    )
    for (server, label, c), r in results.items():
        request = f"{BATCH} images" if c < 0 else "one image"
        print(
            f"{server:<18} {label:<18} {request:<12} {abs(c) if c > 0 else 1:>4} "
            f"{r.rps:9.1f} {r.p50_ms:8.2f} {r.p99_ms:8.2f}"
            + (f"  ({r.errors} errors)" if r.errors else "")
        )

    def ratio(a: tuple[str, str, int], b: tuple[str, str, int]) -> str:
        if a not in results or b not in results:
            return "n/a"
        ra, rb = results[a], results[b]
        return f"{ra.rps / rb.rps:5.2f}x req/s, p99 {ra.p99_ms:.2f} vs {rb.p99_ms:.2f} ms"

    peer = "mlserver"
    print("\nmlreg against MLServer (the custom runtime calling serving_default):")
    for c in (1, 16):
        for name in ("mlreg", "mlreg inline", "mlreg XLA", "mlreg XLA inline"):
            for label in ("/invocations JSON", "V2 REST JSON"):
                print(
                    f"  {name:<16} {label:<18} c={c:<2} vs MLServer V2 REST JSON: "
                    f"{ratio((name, label, c), (peer, 'V2 REST JSON', c))}"
                )
        for name in ("mlreg", "mlreg XLA"):
            print(
                f"  {name:<16} {'V2 gRPC':<18} c={c:<2} vs MLServer V2 gRPC:      "
                f"{ratio((name, 'V2 gRPC', c), (peer, 'V2 gRPC', c))}"
            )
    for label, other in (("V2 REST binary", "V2 REST JSON"), ("V2 gRPC", "V2 gRPC")):
        print(
            f"  {label:<18} {BATCH} images vs MLServer {other}: "
            f"{ratio(('mlreg', label, -BATCH), (peer, other, -BATCH))}"
        )
    print("\nmlreg, two workers against one (2 cores, the load generator on them too):")
    for label in ("/invocations JSON", "V2 REST binary", "V2 gRPC"):
        print(f"  {label:<18} c=16: {ratio(('mlreg 2 workers', label, 16), ('mlreg', label, 16))}")
    if ("mlflow", "/invocations JSON", 1) in results:
        for c in (1, 16):
            print(
                f"mlreg / mlflow /invocations c={c}: "
                f"{ratio(('mlreg', '/invocations JSON', c), ('mlflow', '/invocations JSON', c))}"
            )
    base = answers.get("mlreg")
    same = {
        n: bool(a is not None and base is not None and np.allclose(a, base, rtol=1e-5))
        for n, a in answers.items()
    }
    print(f"same predictions as mlreg: {same}")
    if ("mlreg", "/invocations JSON", 1) in results:
        p50 = results[("mlreg", "/invocations JSON", 1)].p50_ms
        print(
            f"raw traced TF call p50: {raw_ms:.3f} ms; mlreg /invocations p50 at c=1: "
            f"{p50:.2f} ms (HTTP, JSON and enforcement: {p50 - raw_ms:.2f} ms)"
        )


if __name__ == "__main__":
    main()
