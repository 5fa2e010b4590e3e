"""Overhead of autologging on a 10-epoch Keras fit: with vs without, in the same run.

Usage: python bench/autolog_overhead.py [--repeats N]

The reference CNN trains on 512 random 28x28x3 images (batch 32, 16 steps per epoch),
alternating plain fits and autologged fits; medians are compared. The autologged fit
is measured twice: logging per epoch only, and per epoch plus every step.
MLflow's autolog is measured the same way when mlflow is installed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import keras
import numpy as np
from reference import reference_cnn  # bench/ is on sys.path

import mlreg
import mlreg.tensorflow
from mlreg.registry import reset_default_client
from mlreg.tracking import fluent


def make_model() -> keras.Model:
    model = reference_cnn()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def timed(fit: Callable[[], object]) -> float:
    start = time.perf_counter()
    fit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=[512, 28, 28, 3]).astype(np.float32)
    y = rng.integers(2, size=512)

    with tempfile.TemporaryDirectory() as home:
        os.environ["MLREG_HOME"] = home
        fluent.reset()
        reset_default_client()

        def plain() -> None:
            make_model().fit(x, y, batch_size=32, epochs=10, verbose=0)

        def autologged(every_step: bool) -> Callable[[], None]:
            def run() -> None:
                mlreg.tensorflow.autolog(log_every_n_steps=1 if every_step else None)
                try:
                    make_model().fit(x, y, batch_size=32, epochs=10, verbose=0)
                finally:
                    mlreg.tensorflow.autolog(disable=True)

            return run

        cases: dict[str, Callable[[], None]] = {
            "plain fit": plain,
            "mlreg autolog (epochs)": autologged(False),
            "mlreg autolog (every step)": autologged(True),
        }
        try:
            import mlflow

            mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")

            def mlflow_autologged() -> None:
                mlflow.tensorflow.autolog(silent=True)
                try:
                    make_model().fit(x, y, batch_size=32, epochs=10, verbose=0)
                finally:
                    mlflow.tensorflow.autolog(disable=True)
                    mlflow.end_run()

            cases["mlflow autolog (epochs)"] = mlflow_autologged
        except ImportError:
            print("(mlflow not installed: its row is skipped)")

        plain()  # warm up TensorFlow
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, fit in cases.items():
                times[name].append(timed(fit))

    base = statistics.median(times["plain fit"])
    print(f"\n10-epoch fit of the reference CNN, 512 samples, median of {args.repeats}\n")
    for name, samples in times.items():
        median = statistics.median(samples)
        extra = median - base
        print(f"{name:28}{median:8.2f} s   overhead {extra:+6.2f} s ({extra / base * 100:+5.1f}%)")


if __name__ == "__main__":
    main()
