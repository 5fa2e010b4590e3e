"""Where the time of one ``/invocations`` request goes: each piece timed alone, in one process.

Usage: python bench/serve_breakdown.py [--repeats N]

The reference CNN, one 28x28x3 image per request (a 49 KB JSON body). Pieces, median of
``--repeats`` calls each:

- JSON to numpy, the general way: ``orjson.loads`` then ``np.asarray`` (what every request
  paid before mlreg.serving.tensor_json), and the way a lone tensor is read now;
- signature enforcement of the decoded array; the TensorFlow call (the SavedModel's serving
  signature through mlreg's predictor); writing the answer;
- the Flask app around them: the whole WSGI call for the request, minus the pieces above
  (routing, request context, hooks, metrics, access log, the hand-off to the model thread);
- end to end: p50 at concurrency 1 through a real ``mlreg serve`` (wrk, or a Python client)
  minus the WSGI call is what the HTTP worker, the network and the client add.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
from reference import reference_cnn  # bench/ is on sys.path
from serve import BIN, Load, free_port, measure, start, stop, wait_ready

from mlreg.pyfunc import load_model
from mlreg.serving import ServingSettings, codecs, create_app
from mlreg.serving.backends import input_schema
from mlreg.serving.tensor_json import tensor_document
from mlreg.tensorflow import save_model
from mlreg.web.worker import BODY_KEY

JSON = "application/json"


def median_us(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(max(50, repeats // 10)):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def wsgi_call(app: Callable, body: bytes) -> Callable[[], bytes]:
    """One POST /invocations through the app as the HTTP worker hands it over."""

    def call() -> bytes:
        environ = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": "/invocations",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8080",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            BODY_KEY: body,
        }
        status = []
        out = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        assert status[0].startswith("200"), (status, out)
        return out

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of load")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlreg-breakdown-"))
    x = np.random.default_rng(0).uniform(size=(1, 28, 28, 3)).astype(np.float32)
    model_dir = work / "cnn"
    save_model(reference_cnn(), model_dir, input_example=x)
    body = json.dumps({"inputs": x.tolist()}).encode()
    (work / "body.json").write_bytes(body)

    model = load_model(model_dir)
    spec = input_schema(model).inputs[0]
    decoded = tensor_document(body, "inputs", spec)
    enforced, params = model.enforce(decoded)
    result = model.predict_unchecked(enforced, params)

    access = logging.getLogger("mlreg.serving.access")
    access.setLevel(logging.INFO)  # as served: every request is logged (here, to nowhere)
    access.addHandler(logging.NullHandler())
    access.propagate = False
    app = create_app(ServingSettings(), model=model)

    n = args.repeats
    pieces = {
        "JSON to numpy, general (orjson + np.asarray)": median_us(
            lambda: np.asarray(orjson.loads(body)["inputs"], np.float32), n
        ),
        "JSON to numpy, lone tensor (tensor_json)": median_us(
            lambda: tensor_document(body, "inputs", spec), n
        ),
        "signature enforcement": median_us(lambda: model.enforce(decoded), n),
        "TensorFlow call": median_us(lambda: model.predict_unchecked(enforced, params), n),
        "writing the answer": median_us(lambda: codecs.encode_predictions(result), n),
    }
    app_us = median_us(wsgi_call(app, body), n)
    app.extensions["mlreg"].close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = work / "serve.log"
    proc = start(
        [str(BIN / "mlreg"), "serve", "-m", str(model_dir), "--port", str(port)],
        log,
        {"TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    try:
        wait_ready(url + "/ping", proc, log)
        load = Load("/invocations", "/invocations", work / "body.json", (("Content-Type", JSON),))
        e2e = measure(url, "", load, 1, args.duration, work)
    finally:
        stop(proc)
    shutil.rmtree(work, ignore_errors=True)

    inside = sum(v for k, v in pieces.items() if "general" not in k)
    flask = app_us - inside
    e2e_us = e2e.p50_ms * 1000
    rows = [
        *pieces.items(),
        ("Flask app around them (routing, hooks, metrics, log, model thread)", flask),
        ("HTTP worker, loopback and client (end to end minus the app)", e2e_us - app_us),
    ]
    print(f"\none 28x28x3 image, {len(body)} byte body; median of {n} calls; e2e p50 at c=1")
    print(f"{'piece':<68} {'us':>8} {'of e2e':>7}")
    for name, us in rows:
        share = "" if "general" in name else f"{us / e2e_us:6.0%}"
        print(f"{name:<68} {us:8.0f} {share:>7}")
    print(
        f"{'end to end (p50, concurrency 1, ' + str(round(e2e.rps)) + ' req/s)':<68} {e2e_us:8.0f}"
    )


if __name__ == "__main__":
    main()
