"""Latency of mlreg's pyfunc predict next to a raw traced TensorFlow call (and MLflow's pyfunc).

Usage: python bench/pyfunc_overhead.py [--repeats N]

All three run the reference docs' Keras CNN (28x28x3 -> 2) on the same inputs in one
process, for batch sizes 1, 32 and 256, and the table prints median latencies and the
ratio of each to the raw call.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf
from reference import reference_cnn  # bench/ is on sys.path

from mlreg import pyfunc
from mlreg.tensorflow import save_model

BATCHES = (1, 32, 256)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(max(5, repeats // 10)):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()

    model = reference_cnn()
    raw = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, 28, 28, 3], tf.float32)],
    ).get_concrete_function()

    with tempfile.TemporaryDirectory() as tmp:
        example = np.zeros((1, 28, 28, 3), np.float32)
        save_model(model, Path(tmp) / "mlreg", input_example=example)
        ours = pyfunc.load_model(Path(tmp) / "mlreg")
        peers: dict[str, Callable[[np.ndarray], object]] = {
            "raw tf.function": lambda x: raw(tf.constant(x)).numpy(),
            "mlreg pyfunc": ours.predict,
        }
        try:
            import mlflow.pyfunc
            import mlflow.tensorflow

            mlflow.tensorflow.save_model(model, str(Path(tmp) / "mlflow"), input_example=example)
            theirs = mlflow.pyfunc.load_model(str(Path(tmp) / "mlflow"))
            peers["mlflow pyfunc"] = theirs.predict
        except ImportError:
            print("(mlflow not installed: its column is skipped)")

        rng = np.random.default_rng(0)
        results: dict[str, dict[int, float]] = {name: {} for name in peers}
        for batch in BATCHES:
            x = rng.uniform(size=(batch, 28, 28, 3)).astype(np.float32)
            reference = raw(tf.constant(x)).numpy()
            for name, predict in peers.items():
                out = np.asarray(predict(x))
                np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-6)
                repeats = args.repeats if name != "mlflow pyfunc" else max(20, args.repeats // 10)
                results[name][batch] = median_ms(lambda p=predict, x=x: p(x), repeats)

    print(f"\nmedian latency per predict call (ms), {args.repeats} calls each\n")
    header = f"{'':18}" + "".join(f"{f'batch {b}':>14}{'x raw':>8}" for b in BATCHES)
    print(header)
    for name, by_batch in results.items():
        row = f"{name:18}"
        for b in BATCHES:
            ms = by_batch[b]
            row += f"{ms:14.3f}{ms / results['raw tf.function'][b]:8.2f}"
        print(row)
    if "mlflow pyfunc" in results:
        speedup = results["mlflow pyfunc"][1] / results["mlreg pyfunc"][1]
        print(f"\nbatch 1: mlreg pyfunc is {speedup:.1f}x faster than MLflow's pyfunc")


if __name__ == "__main__":
    main()
