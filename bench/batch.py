"""Batch scoring throughput: `mlreg predict` and `spark_udf` next to raw TensorFlow and MLflow.

Usage: python bench/batch.py [--rows N] [--batch-size B] [--mlflow-rows M] [--spark-rows S]

One run, one model (the reference docs' 28x28x3 CNN), one batch size:

- raw: the traced TensorFlow function called on in-memory numpy batches (the floor), and a
  Python loop over Keras ``model.predict`` on the same batches;
- ``mlreg predict`` on a Parquet file of N images (a fixed-size list column of 2352 float32)
  into Parquet, as a subprocess: rows/s of its scoring loop (its summary line) and of the
  whole command (with Python, TensorFlow and model start-up), and its peak RSS;
- ``mlflow models predict --env-manager local`` on M of the same images as a JSON
  ``{"inputs": ...}`` file (its only input form that carries a tensor), whole command;
- ``spark_udf`` on S images read from the Parquet file: mlreg on local[1] and local[2],
  MLflow's ``spark_udf`` on local[2], each forced with the ``noop`` sink.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf
from reference import reference_cnn  # bench/ is on sys.path

from mlreg.batch.features import tensor_array
from mlreg.tensorflow import save_model

SHAPE = (28, 28, 3)
ROW_GROUP = 16_384
MLREG = [sys.executable, "-c", "from mlreg.cli import main; main()"]


SIZE = int(np.prod(SHAPE))
LAYOUTS = {
    # A row's image as a fixed-size list of 2352 float32 (nested lists read the same way)...
    "list": pa.list_(pa.float32(), SIZE),
    # ...or as its 9408 raw bytes, which Parquet decodes without per-value levels.
    "bytes": pa.binary(SIZE * 4),
}


def make_parquet(path: Path, rows: int, layout: str) -> None:
    rng = np.random.default_rng(0)
    schema = pa.schema([("id", pa.int64()), ("image", LAYOUTS[layout])])
    with pq.ParquetWriter(path, schema, compression="none") as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            x = rng.uniform(size=(n, SIZE)).astype(np.float32)
            if layout == "list":
                image = tensor_array(x)
            else:
                image = pa.FixedSizeBinaryArray.from_buffers(
                    LAYOUTS["bytes"], n, [None, pa.py_buffer(x.tobytes())]
                )
            writer.write_table(
                pa.table({"id": np.arange(start, start + n), "image": image}, schema)
            )


def head(path: Path, rows: int) -> pa.Table:
    """The first ``rows`` rows, reading no more of the file than that."""
    parts, count = [], 0
    for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=ROW_GROUP):
        parts.append(batch.slice(0, rows - count))
        count += parts[-1].num_rows
        if count >= rows:
            break
    return pa.Table.from_batches(parts)


def batches(path: Path, rows: int, size: int) -> list[np.ndarray]:
    flat = head(path, rows).column("image").combine_chunks().flatten().to_numpy()
    x = flat.reshape(-1, *SHAPE)
    return [x[i : i + size] for i in range(0, len(x), size)]


def run_timed(command: list[str]) -> tuple[float, int | None, str]:
    """Wall seconds, peak RSS (MiB, from GNU time when installed) and stderr of a command.

    The RSS comes from a small wrapper process: the rusage of a child forked from this
    (large) process would count the parent's pages it held before exec.
    """
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    wrapped = [timer, "-f", "MAXRSS_KB %M", *command] if timer else command
    start = time.perf_counter()
    proc = subprocess.run(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode:
        raise SystemExit(f"{command[:4]} failed ({proc.returncode}):\n{stderr[-3000:]}")
    found = re.search(r"MAXRSS_KB (\d+)", stderr)
    stderr = re.sub(r"MAXRSS_KB \d+\n?", "", stderr)
    return seconds, int(found.group(1)) // 1024 if found else None, stderr


def spark_session(master: str):
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    return (
        SparkSession.builder.master(master)
        .appName(f"mlreg-bench-{master}")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "4096")
        .getOrCreate()
    )


def spark_rows_per_s(master: str, parquet: Path, rows: int, make_udf) -> float:
    spark = spark_session(master)
    try:
        df = spark.read.parquet(str(parquet)).limit(rows).repartition(8).cache()
        df.count()
        udf = make_udf(spark)
        # The first run also starts the workers and loads the model; the best of three.
        best = 0.0
        for _ in range(3):
            start = time.perf_counter()
            df.select(udf("image").alias("p")).write.format("noop").mode("overwrite").save()
            best = max(best, rows / (time.perf_counter() - start))
        return best
    finally:
        spark.stop()


def noop_udf(spark):
    """A pandas UDF that only answers: what Spark's JVM-to-Python data path costs alone."""
    from pyspark.sql.functions import pandas_udf

    def answer(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for batch in batches:
            yield pd.Series([np.zeros(2, np.float32)] * len(batch))

    return pandas_udf(answer, "array<float>")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--mlflow-rows", type=int, default=5_000)
    parser.add_argument("--spark-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=["mlflow", "spark", "keras"])
    parser.add_argument("--workdir", default=None, help="Keep the files here (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mlreg-bench-batch-"))
    work.mkdir(parents=True, exist_ok=True)
    rows, size = args.rows, args.batch_size
    results: dict[str, float] = {}
    notes: dict[str, str] = {}

    model = reference_cnn()
    ours_dir = work / "mlreg-model"
    if not ours_dir.exists():
        save_model(model, ours_dir, input_example=np.zeros((1, *SHAPE), np.float32))
    files = {layout: work / f"images-{rows}-{layout}.parquet" for layout in LAYOUTS}
    for layout, path in files.items():
        if not path.exists():
            print(f"writing {rows:,} images to {path} ...", flush=True)
            make_parquet(path, rows, layout)
    parquet = files["list"]
    size_gb = parquet.stat().st_size / 1e9
    print(f"{parquet.name}: {size_gb:.2f} GB, batch size {size}", flush=True)

    # --- raw TensorFlow on in-memory batches (at most 200k rows held in memory) -------------
    raw_rows = min(rows, 100_000)
    data = batches(parquet, raw_rows, size)
    fn = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, *SHAPE], tf.float32)],
    ).get_concrete_function()
    fn(tf.constant(data[0]))

    def raw_run() -> float:
        start = time.perf_counter()
        for x in data:
            fn(tf.constant(x)).numpy()
        return raw_rows / (time.perf_counter() - start)

    # The machine is shared and its load moves by the minute, so each run is paired with raw
    # runs just before and after it: "x raw" is against those, and the best pair is kept.
    ratios: dict[str, float] = {}

    def paired(name: str, run) -> float:
        before = raw_run()
        rate = run()
        reference = (before + raw_run()) / 2
        if name not in ratios or reference / rate < ratios[name]:
            ratios[name] = reference / rate
            results[name] = rate
        return rate

    results["raw batched tf.function (in memory)"] = max(raw_run() for _ in range(args.repeats))
    if "keras" not in args.skip:
        keras_rows = min(raw_rows, 50_000)
        keras_data = [x for x in data if True][: max(1, keras_rows // size)]
        model.predict(keras_data[0], verbose=0)
        done = sum(len(x) for x in keras_data)

        def keras_run() -> float:
            start = time.perf_counter()
            for x in keras_data:
                model.predict(x, batch_size=size, verbose=0)
            return done / (time.perf_counter() - start)

        paired("python loop over keras model.predict", keras_run)

    # --- mlreg predict ----------------------------------------------------------------------
    out = work / "predictions.parquet"
    for layout, path in files.items():
        command = [*MLREG, "predict", "-m", str(ours_dir), "-i", str(path), "-o", str(out)]
        for _ in range(args.repeats):
            timing: dict[str, float] = {}

            def mlreg_run(command: list[str] = command, timing: dict = timing) -> float:
                seconds, rss, stderr = run_timed([*command, "--batch-size", str(size)])
                line = stderr.strip().splitlines()[-1]
                scored = re.search(r"in ([\d.]+) s", line)
                assert scored and pq.ParquetFile(out).metadata.num_rows == rows, line
                timing.update(whole=rows / seconds, rss=rss or 0)
                return rows / float(scored.group(1))

            paired(f"mlreg predict, {layout} (scoring loop)", mlreg_run)
            name = f"mlreg predict, {layout} (whole command)"
            if timing["whole"] > results.get(name, 0.0):
                results[name] = timing["whole"]
                notes[name] = f"peak RSS {timing['rss']:.0f} MiB"
        if layout == "bytes" and rows > 100_000:
            # The same command on a tenth of the rows: peak RSS follows the batch, not the file.
            small = work / "images-tenth-bytes.parquet"
            if not small.exists():
                pq.write_table(head(path, rows // 10), small, compression="none")
            _, small_rss, _ = run_timed(
                [
                    *MLREG,
                    "predict",
                    "-m",
                    str(ours_dir),
                    "-i",
                    str(small),
                    "-o",
                    str(out),
                    "--batch-size",
                    str(size),
                    "-q",
                ]
            )
            notes[f"mlreg predict, {layout} (whole command)"] += (
                f" ({small_rss} MiB on {rows // 10:,} rows)"
            )
        out.unlink()

    data.clear()

    # --- MLflow models predict --------------------------------------------------------------
    theirs = work / "mlflow-model"
    if "mlflow" not in args.skip:
        import mlflow.tensorflow

        if not theirs.exists():
            mlflow.tensorflow.save_model(
                model, str(theirs), input_example=np.zeros((1, *SHAPE), np.float32)
            )
        m = min(args.mlflow_rows, rows)
        x = np.concatenate(batches(parquet, m, size))
        doc = work / f"images-{m}.json"
        doc.write_text(json.dumps({"inputs": x.tolist()}))
        seconds, rss, _ = run_timed(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "predict",
                "-m",
                str(theirs),
                "-i",
                str(doc),
                "-o",
                str(work / "mlflow-out.json"),
                "--content-type",
                "json",
                "--env-manager",
                "local",
            ]
        )
        results["mlflow models predict (whole command)"] = m / seconds
        notes["mlflow models predict (whole command)"] = f"{m:,} rows, peak RSS {rss} MiB"
        seconds, _, _ = run_timed(
            [
                *MLREG,
                "predict",
                "-m",
                str(ours_dir),
                "-i",
                str(doc),
                "-o",
                str(work / "mlreg-out.json"),
                "--batch-size",
                str(size),
            ]
        )
        results["mlreg predict, same JSON (whole command)"] = m / seconds
        notes["mlreg predict, same JSON (whole command)"] = f"{m:,} rows"

    # --- Spark ------------------------------------------------------------------------------
    if "spark" not in args.skip:
        from mlreg import pyfunc

        s = min(args.spark_rows, rows)
        for master in ("local[1]", "local[2]"):
            results[f"no-op pandas UDF {master}"] = spark_rows_per_s(master, parquet, s, noop_udf)
            notes[f"no-op pandas UDF {master}"] = "Spark's data path alone"
            results[f"mlreg spark_udf {master}"] = spark_rows_per_s(
                master, parquet, s, lambda spark: pyfunc.spark_udf(spark, str(ours_dir))
            )
            notes[f"mlreg spark_udf {master}"] = f"{s:,} rows"
        if "mlflow" not in args.skip:
            import mlflow.pyfunc

            results["mlflow spark_udf local[2]"] = spark_rows_per_s(
                "local[2]",
                parquet,
                s,
                lambda spark: mlflow.pyfunc.spark_udf(
                    spark,
                    str(theirs),
                    result_type="array<float>",
                    env_manager="local",
                ),
            )
            notes["mlflow spark_udf local[2]"] = f"{s:,} rows"

    raw = results["raw batched tf.function (in memory)"]
    print(f"\n{rows:,} rows of {SHAPE} float32 ({size_gb:.2f} GB Parquet), batch size {size}\n")
    print(f"{'':44}{'rows/s':>12}{'x raw':>8}  notes (x raw: against raw runs around it)")
    for name, value in results.items():
        ratio = f"{ratios[name]:8.2f}" if name in ratios else f"{raw / value:8.2f}"
        print(f"{name:44}{value:12,.0f}{ratio}  {notes.get(name, '')}")
    if "mlreg spark_udf local[1]" in results:
        ratio = results["mlreg spark_udf local[2]"] / results["mlreg spark_udf local[1]"]
        print(f"\nspark_udf local[2] / local[1]: {ratio:.2f}x")
    if "mlflow spark_udf local[2]" in results:
        ratio = results["mlreg spark_udf local[2]"] / results["mlflow spark_udf local[2]"]
        print(f"mlreg spark_udf / MLflow spark_udf on local[2]: {ratio:.2f}x")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
