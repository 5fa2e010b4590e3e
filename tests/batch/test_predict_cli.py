"""`mlreg predict` end to end on real models: every format, stdin/stdout, bad rows, bad files."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mlreg.batch.features import tensor_array
from mlreg.cli import main

pytestmark = pytest.mark.slow

ROWS = pd.DataFrame(
    {
        "id": [10, 11, 12, 13, 14],
        "a": [0.5, 1.5, -2.0, 3.25, 0.0],
        "b": [-1.0, 2.0, 0.5, 1.0, 4.0],
        "c": [1, 2, 3, 4, 5],
    }
)


def invoke(*args: str, code: int = 0, stdin: bytes | None = None, env=None):
    result = CliRunner().invoke(main, ["predict", *args], input=stdin, env=env)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0].removeprefix("Error: ")


def write(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    elif fmt == "jsonl":
        path.write_text(frame.to_json(orient="records", lines=True))
    else:
        doc = {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}
        path.write_text(json.dumps(doc))
    return path


def read(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(path)
    if fmt == "parquet":
        return pq.read_table(path).to_pandas()
    if fmt == "jsonl":
        return pd.read_json(path, lines=True)
    return pd.DataFrame(json.loads(path.read_text())["predictions"])


@pytest.fixture(scope="module")
def columns_model(columns_dir):
    from mlreg import pyfunc

    return pyfunc.load_model(columns_dir)


@pytest.fixture(scope="module")
def cnn_model(cnn_dir):
    from mlreg import pyfunc

    return pyfunc.load_model(cnn_dir)


FORMATS = ["csv", "json", "jsonl", "parquet"]
MLREG = [sys.executable, "-c", "from mlreg.cli import main; main()"]


@pytest.mark.parametrize("out_fmt", FORMATS)
@pytest.mark.parametrize("in_fmt", FORMATS)
def test_every_format_in_and_out(tmp_path, columns_dir, columns_model, in_fmt, out_fmt):
    # The JSON payload goes through the server's decoder, which refuses unknown columns.
    frame = ROWS if in_fmt != "json" else ROWS.drop(columns="id")
    src = write(frame, tmp_path / f"in.{in_fmt}", in_fmt)
    out = tmp_path / f"out.{out_fmt}"
    keep = ["--keep-columns", "c"]
    result = invoke("-m", str(columns_dir), "-i", str(src), "-o", str(out), *keep)
    assert result.stderr.startswith("scored 5 of 5 rows, 0 errors, in ")
    got = read(out, out_fmt)
    expected = np.asarray(columns_model.predict(ROWS[["a", "b", "c"]])).ravel()
    assert list(got.columns) == ["c", "prediction"]
    assert got["c"].tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(got["prediction"].to_numpy(float), expected, rtol=1e-6)


def test_parquet_keeps_dtypes_and_tensor_outputs_as_list_columns(tmp_path, cnn_dir, cnn_model):
    from tests.serving.models import images

    x = images(7)
    src = tmp_path / "images.parquet"
    pq.write_table(pa.table({"key": [f"k{i}" for i in range(7)], "image": tensor_array(x)}), src)
    out = tmp_path / "out.parquet"
    # No --columns: the one list column feeds the one tensor input.
    invoke("-m", str(cnn_dir), "-i", str(src), "-o", str(out), "--keep-columns", "key",
           "--batch-size", "3")  # fmt: skip
    table = pq.read_table(out)
    assert table.schema.field("key").type == pa.string()
    assert table.schema.field("prediction").type == pa.list_(pa.float32(), 2)
    assert pq.ParquetFile(out).metadata.num_row_groups == 3  # one per batch
    got = np.stack(table.column("prediction").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(got, cnn_model.predict(x), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "layout",
    [
        "parquet-flat",
        "parquet-nested",
        "parquet-bytes",
        "jsonl-nested",
        "jsonl-flat",
        "csv-json-cell",
        "json",
    ],
)
def test_a_row_can_hold_an_image_in_every_format(tmp_path, cnn_dir, cnn_model, layout):
    from tests.serving.models import images

    x = images(4, seed=5)
    fmt = layout.split("-")[0]
    src = tmp_path / f"in.{fmt}"
    if layout == "parquet-flat":
        flat = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 28 * 28 * 3)
        pq.write_table(pa.table({"image": flat}), src)
    elif layout == "parquet-nested":
        pq.write_table(pa.table({"image": pa.array(x.tolist())}), src)
    elif layout == "parquet-bytes":
        pq.write_table(
            pa.table({"image": pa.array([r.tobytes() for r in x], pa.binary(9408))}), src
        )
    elif layout.startswith("jsonl"):
        rows = x.tolist() if layout == "jsonl-nested" else x.reshape(4, -1).tolist()
        src.write_bytes(b"\n".join(orjson.dumps({"image": r}) for r in rows))
    elif layout == "csv-json-cell":
        pacsv.write_csv(pa.table({"image": [json.dumps(r) for r in x.tolist()]}), src)
    else:
        src.write_text(json.dumps({"instances": x.tolist()}))
    out = tmp_path / "out.jsonl"
    invoke("-m", str(cnn_dir), "-i", str(src), "-o", str(out))
    got = np.array([json.loads(line)["prediction"] for line in out.read_text().splitlines()])
    np.testing.assert_allclose(got, cnn_model.predict(x), rtol=1e-5, atol=1e-6)


def test_named_inputs_and_outputs(tmp_path, multi_dir):
    from mlreg import pyfunc
    from tests.serving.models import multi_example

    data = multi_example(n=5)
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b"\n".join(
            orjson.dumps({"a": a, "b": b}, option=orjson.OPT_SERIALIZE_NUMPY)
            for a, b in zip(data["a"], data["b"], strict=True)
        )
    )
    out = tmp_path / "out.parquet"
    invoke("-m", str(multi_dir), "-i", str(src), "-o", str(out))
    table = pq.read_table(out)
    expected = pyfunc.load_model(multi_dir).predict(data)
    assert sorted(table.column_names) == sorted(expected)
    for name, values in expected.items():
        got = table.column(name).to_numpy(zero_copy_only=False)
        got = np.stack(got) if got.dtype == object else got
        np.testing.assert_allclose(got, np.asarray(values).reshape(got.shape), rtol=1e-5)


def test_a_file_many_batches_long_keeps_order(tmp_path, columns_dir, columns_model):
    n = 10_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"id": np.arange(n), "a": rng.normal(size=n), "b": rng.normal(size=n), "c": np.arange(n)}
    )
    src = write(frame, tmp_path / "big.csv", "csv")
    out = tmp_path / "out.parquet"
    invoke("-m", str(columns_dir), "-i", str(src), "-o", str(out), "--batch-size", "1000",
           "--keep-columns", "id")  # fmt: skip
    assert pq.ParquetFile(out).metadata.num_row_groups == 10
    got = pq.read_table(out).to_pandas()
    assert got["id"].tolist() == list(range(n))
    expected = np.asarray(columns_model.predict(frame[["a", "b", "c"]])).ravel()
    np.testing.assert_allclose(got["prediction"], expected, rtol=1e-5, atol=1e-6)


def test_stdin_to_stdout_through_the_real_script(tmp_path, columns_dir, columns_model):
    src = write(ROWS, tmp_path / "in.csv", "csv")
    result = subprocess.run(
        [*MLREG, "predict", "-m", str(columns_dir), "-i", "-",
         "-o", "-", "--format", "csv", "--output-format", "jsonl", "--keep-columns", "id"],
        input=src.read_bytes(), capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["id"] for r in rows] == ROWS["id"].tolist()
    expected = np.asarray(columns_model.predict(ROWS[["a", "b", "c"]])).ravel()
    np.testing.assert_allclose([r["prediction"] for r in rows], expected, rtol=1e-6)
    assert b"scored 5 of 5 rows" in result.stderr


def test_parquet_on_stdin_and_json_on_stdout(tmp_path, columns_dir):
    src = write(ROWS, tmp_path / "in.parquet", "parquet")
    result = invoke("-m", str(columns_dir), "-i", "-", "-o", "-", "--format", "parquet",
                    "--output-format", "json", stdin=src.read_bytes())  # fmt: skip
    doc = json.loads(result.stdout)
    assert len(doc["predictions"]) == 5 and all(isinstance(v, float) for v in doc["predictions"])


def test_progress_bar_on_a_terminal_only(tmp_path, columns_dir):
    src = write(ROWS, tmp_path / "in.parquet", "parquet")  # its row count is known up front
    command = [*MLREG, "predict", "-m", str(columns_dir),
               "-i", str(src), "-o", str(tmp_path / "o.csv")]  # fmt: skip
    primary, secondary = pty.openpty()
    # A new pseudo-terminal is 0 columns wide; give it a real terminal's size.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.run(command, stderr=secondary, stdout=subprocess.DEVNULL, timeout=120)
        os.close(secondary)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(primary)
    assert proc.returncode == 0
    assert b"/5.00 [" in seen and b"rows/s]" in seen  # tqdm: rows of total, time, ETA, rate
    piped = subprocess.run(command, capture_output=True, timeout=120, check=True)
    assert piped.stderr.decode().splitlines()[-1].startswith("scored 5 of 5 rows")
    assert b"\r" not in piped.stderr  # no bar when stderr is not a terminal
    quiet = subprocess.run([*command, "--quiet"], capture_output=True, timeout=120, check=True)
    assert b"scored" not in quiet.stderr


# --- bad rows --------------------------------------------------------------------------------

BAD_CSV = "id,a,b,c\n1,0.5,1.0,1\n2,0.5,1.0,1.5\n3,0.5,1.0,x\n4,0.5,1.0\n5,0.5,1.0,5\n"


def test_a_bad_row_fails_the_run_naming_row_and_field(tmp_path, columns_dir):
    src = tmp_path / "in.csv"
    src.write_text(BAD_CSV)
    out = tmp_path / "out.csv"
    result = invoke("-m", str(columns_dir), "-i", str(src), "-o", str(out), code=2)
    assert one_error_line(result) == (
        "row 2: column 'c': expected int64, got float64 values that are not whole numbers "
        "(e.g. 1.5)"
    )
    assert not out.exists() and list(tmp_path.iterdir()) == [src]  # nothing half-written


def test_skipped_rows_go_to_the_errors_output_with_the_reason(tmp_path, columns_dir):
    src = tmp_path / "in.csv"
    src.write_text(BAD_CSV)
    out, errors = tmp_path / "out.csv", tmp_path / "errors.jsonl"
    result = invoke("-m", str(columns_dir), "-i", str(src), "-o", str(out), "--on-error",
                    "skip", "--errors-output", str(errors), "--keep-columns", "id")  # fmt: skip
    assert result.stderr.startswith("scored 2 of 5 rows, 3 errors, in ")
    assert pd.read_csv(out)["id"].tolist() == [1, 5]
    got = [json.loads(line) for line in errors.read_text().splitlines()]
    assert got == [
        {
            "_row": 2,
            "_error": "column 'c': expected int64, got float64 values that are not whole "
            "numbers (e.g. 1.5)",
            "_input": {"id": 2, "a": 0.5, "b": 1.0, "c": 1.5},
        },
        {
            "_row": 3,
            "_error": "column 'c': expected int64, got strings",
            "_input": {"id": 3, "a": 0.5, "b": 1.0, "c": "x"},
        },
        {
            "_row": 4,
            "_error": "expected 4 fields (one per column), got 3",
            "_input": {"line": "4,0.5,1.0"},
        },
    ]


def test_a_failure_inside_the_model_names_the_row(tmp_path, trouble_dir):
    src = tmp_path / "in.jsonl"
    src.write_text('{"x": [0, 1]}\n{"x": [0, 150]}\n{"x": [0, 2]}\n')
    out = tmp_path / "out.jsonl"
    failed = invoke("-m", str(trouble_dir), "-i", str(src), "-o", str(out), code=8)
    assert one_error_line(failed).startswith("row 2: the model failed: InvalidArgumentError")
    errors = tmp_path / "errors.csv"
    invoke("-m", str(trouble_dir), "-i", str(src), "-o", str(out), "--on-error", "skip",
           "--errors-output", str(errors))  # fmt: skip
    assert [json.loads(line)["prediction"] for line in out.read_text().splitlines()] == [
        [1.0, 2.0],
        [1.0, 3.0],
    ]
    bad = pd.read_csv(errors)
    assert bad["_row"].tolist() == [2] and "input too large" in bad["_error"][0]
    assert json.loads(bad["_input"][0]) == {"x": [0, 150]}


def test_when_no_row_fits_the_run_fails_and_keeps_the_errors(tmp_path, columns_dir):
    src = tmp_path / "in.csv"
    src.write_text("a,b,c\nx,1,1\ny,2,2\n")
    out, errors = tmp_path / "out.csv", tmp_path / "errors.jsonl"
    result = invoke("-m", str(columns_dir), "-i", str(src), "-o", str(out), "--on-error",
                    "skip", "--errors-output", str(errors), code=2)  # fmt: skip
    assert one_error_line(result) == (
        "no row could be scored (2 errors); first: row 1: column 'a': expected float64, got strings"
    )
    assert not out.exists() and len(errors.read_text().splitlines()) == 2


# --- bad files and flags ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "extra", "code", "message"),
    [
        ("in.json", b'{"instances": [1, 2', [], 2, "{p}: malformed JSON: "),
        ("in.json", b'{"rows": []}', [], 2, "{p}: unknown field 'rows'; expected exactly one of"),
        ("in.parquet", b"PAR1garbage", [], 2, "{p} is not a readable Parquet file: "),
        ("in.csv", b"", [], 2, "{p}: empty CSV; expected a header row and rows"),
        ("in.csv", b"a,b,c\n", [], 2, "no rows to score in {p}"),
        ("in.txt", b"a\n1\n", [], 2, "cannot tell the input format of {p}; pass --format"),
        ("in.csv", b"a,b,c\n1,2,3\n", ["--params", '{"k": 1}'], 2,
         "unknown param 'k': this model takes no params"),
        ("in.csv", b"a,b,c\n1,2,3\n", ["--params", "[1]"], 2,
         "--params: expected a JSON object of param names and values"),
        ("in.csv", b"a,b\n1,2\n", [], 2,
         "missing required column 'c'; expected columns: 'a', 'b', 'c'"),
        ("in.csv", b"a,b,c\n1,2,3\n", ["--keep-columns", "zz"], 2,
         "--keep-columns names 'zz', which the input does not have; its columns: 'a', 'b', 'c'"),
        ("in.csv", b"a,b,c\n1,2,3\n", ["--keep-columns", "a", "--output-column", "a"], 2,
         "output column 'a' is also a kept input column; pass --output-column NAME"),
        ("in.csv", b"a,b,c\n1,2,3\n", ["--batch-size", "0"], 2,
         "--batch-size must be at least 1, got 0"),
        ("in.csv", b"a,b,c\n1,2,3\n", ["--errors-output", "e.jsonl"], 2,
         "--errors-output needs --on-error skip (with fail, none are kept)"),
    ],
    ids=["malformed-json", "not-a-payload", "not-parquet", "empty-csv", "header-only",
         "unknown-extension", "unknown-param", "params-not-object", "missing-column",
         "keep-unknown", "output-clash", "batch-size", "errors-without-skip"],
)  # fmt: skip
def test_bad_input_is_one_line_and_the_error_class_exit_code(
    tmp_path, columns_dir, name, content, extra, code, message
):
    src = tmp_path / name
    src.write_bytes(content)
    out = tmp_path / "out.csv"
    result = invoke("-m", str(columns_dir), "-i", str(src), "-o", str(out), *extra, code=code)
    assert one_error_line(result).startswith(message.format(p=src))
    assert not out.exists()


def test_missing_input_and_missing_model_are_not_found(tmp_path, columns_dir):
    result = invoke("-m", str(columns_dir), "-i", str(tmp_path / "no.csv"), "-o", "x.csv", code=4)
    assert one_error_line(result) == f"input {tmp_path / 'no.csv'} does not exist"
    src = write(ROWS, tmp_path / "in.csv", "csv")
    result = invoke("-m", str(tmp_path / "nomodel"), "-i", str(src), "-o", "x.csv", code=4)
    assert one_error_line(result).startswith("no model at ")


def test_output_into_a_missing_directory(tmp_path, columns_dir):
    src = write(ROWS, tmp_path / "in.csv", "csv")
    out = tmp_path / "nope" / "out.csv"
    result = invoke("-m", str(columns_dir), "-i", str(src), "-o", str(out), code=2)
    assert one_error_line(result) == (
        f"cannot write {out}: the directory {out.parent} does not exist"
    )


# --- model URIs ------------------------------------------------------------------------------


def test_registry_and_run_uris(tmp_path, columns_dir, columns_model, tracking_home):
    import mlreg

    mlreg.register_model(str(columns_dir), "cols")
    with mlreg.start_run() as run:
        mlreg.log_artifacts(str(columns_dir), "model")
    src = write(ROWS, tmp_path / "in.csv", "csv")
    expected = np.asarray(columns_model.predict(ROWS[["a", "b", "c"]])).ravel()
    env = {"MLREG_HOME": str(tracking_home)}
    for uri in ("models:/cols/1", "models:/cols/latest", f"runs:/{run.info.run_id}/model"):
        out = tmp_path / "out.csv"
        invoke("-m", uri, "-i", str(src), "-o", str(out), env=env)
        np.testing.assert_allclose(pd.read_csv(out)["prediction"], expected, rtol=1e-6)
    result = invoke("-m", "models:/cols/Production", "-i", str(src), "-o", "x.csv", env=env, code=4)
    assert one_error_line(result) == "no version of 'cols' is in stage Production; None: 1"
