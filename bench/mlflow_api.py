"""The stock MLflow client against ``mlflow server`` and against ``mlreg server``, same run.

Usage: python bench/mlflow_api.py [--repeats N] [--samples N]

The same client script runs in its own process against each server (alternating, median of
``--repeats``): the reference CNN's 10-epoch fit with ``mlflow.tensorflow.autolog(
registered_model_name=…)`` (params, metrics per epoch, the model logged through the artifact
proxy and registered), then ``mlflow.pyfunc.load_model("models:/…/latest")`` and a predict.
Measured: the client's wall time for the whole script and for each phase, and the CPU time the
server's processes (all workers) spent serving it. Both servers run 2 workers on SQLite with
their artifacts on local disk.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLIENT = """
import json, sys, time
t0 = time.perf_counter()
import mlflow, numpy as np
sys.path.insert(0, {bench!r})
from reference import reference_cnn
url, name, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
x = rng.uniform(size=[samples, 28, 28, 3]).astype(np.float32)
y = rng.integers(2, size=samples)
model = reference_cnn()
model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
t1 = time.perf_counter()
mlflow.set_tracking_uri(url)
mlflow.set_experiment("bench")
mlflow.tensorflow.autolog(registered_model_name=name, silent=True)
with mlflow.start_run():
    model.fit(x, y, batch_size=32, epochs=10, verbose=0)
t2 = time.perf_counter()
loaded = mlflow.pyfunc.load_model(f"models:/{{name}}/latest")
loaded.predict(x[:8])
t3 = time.perf_counter()
print(json.dumps({{"setup": t1 - t0, "fit_log_register": t2 - t1, "load": t3 - t2}}))
"""


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def run_client(script: Path, url: str, name: str, samples: int, server) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLREG_"))}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "TF_CPP_MIN_LOG_LEVEL": "3"})
    pids = server.pids()
    cpu_before = cpu_seconds(pids)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(script), url, name, str(samples)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"the client failed against {url}:\n{result.stderr[-3000:]}")
    phases = json.loads(result.stdout.strip().splitlines()[-1])
    return {**phases, "wall": wall, "server_cpu": cpu_seconds(server.pids()) - cpu_before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=512)
    args = parser.parse_args()
    import mlflow

    from tests.server.mlflow.peers import start_mlflow, start_mlreg

    with tempfile.TemporaryDirectory(prefix="mlreg-bench-mlflow-") as tmp:
        work = Path(tmp)
        script = work / "client.py"
        script.write_text(CLIENT.format(bench=str(ROOT / "bench")))
        servers = {
            f"MLflow {mlflow.__version__} server": start_mlflow(work / "mlflow"),
            "mlreg server": start_mlreg(work / "mlreg"),
        }
        try:
            results: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
            for repeat in range(args.repeats):
                order = list(servers) if repeat % 2 == 0 else list(reversed(servers))
                for name in order:
                    model = f"bench-{repeat}"
                    results[name].append(
                        run_client(script, servers[name].url, model, args.samples, servers[name])
                    )
        finally:
            for server in servers.values():
                server.stop()
    print(
        f"\n{args.samples} samples, 10 epochs, batch 32; median of {args.repeats} "
        "(seconds; the client script is the same for both)\n"
    )
    print("| server | client wall | fit + log + register | load + predict | server CPU |")
    print("|---|---|---|---|---|")
    medians = {}
    for name, rows in results.items():
        m = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        medians[name] = m
        print(
            f"| {name} | {m['wall']:.2f} | {m['fit_log_register']:.2f} | {m['load']:.2f} | "
            f"{m['server_cpu']:.2f} |"
        )
    theirs, ours = (medians[n] for n in servers)
    print(
        f"\nmlreg / MLflow: client wall {ours['wall'] / theirs['wall']:.2f}x, fit+log+register "
        f"{ours['fit_log_register'] / theirs['fit_log_register']:.2f}x, load "
        f"{ours['load'] / theirs['load']:.2f}x, server CPU "
        f"{ours['server_cpu'] / max(theirs['server_cpu'], 1e-9):.2f}x"
    )


if __name__ == "__main__":
    main()
