"""MLflow's payload forms and TF Serving's REST API against a real gunicorn server."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlreg.pyfunc import PyFuncModel, load_model
from tests.serving import models
from tests.serving.server import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cnn(cnn_dir: Path) -> PyFuncModel:
    return load_model(cnn_dir)


@pytest.fixture(scope="module")
def columns(columns_dir: Path) -> PyFuncModel:
    return load_model(columns_dir)


@pytest.fixture(scope="module")
def multi(multi_dir: Path) -> PyFuncModel:
    return load_model(multi_dir)


X = models.images(3, seed=7)
FRAME = pd.DataFrame({"a": [0.5, -1.25, 3.0], "b": [2.0, 0.0, -4.5], "c": [1, 7, -2]})


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


# --- tensors ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["inputs", "instances"])
def test_cnn_tensor_forms(cnn_server: Server, cnn: PyFuncModel, key: str) -> None:
    got = _ok(cnn_server.post("/invocations", {key: X.tolist()}))
    np.testing.assert_allclose(np.asarray(got["predictions"]), cnn.predict(X), rtol=1e-6)
    assert np.asarray(got["predictions"]).shape == (3, 2)


def test_cnn_dataframe_split_of_a_tensor_model(cnn_server: Server) -> None:
    # MLflow's split form works for tensor models too; a 4-d tensor does not fit in a table.
    r = cnn_server.post("/invocations", {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}})
    assert r.status_code == 400
    assert r.json()["error_code"] == "SCHEMA_MISMATCH"
    assert "expected shape (-1, 28, 28, 3)" in r.json()["message"]


def test_cnn_serves_the_saved_serving_example(cnn_server: Server, cnn_dir: Path) -> None:
    body = (cnn_dir / "serving_input_example.json").read_bytes()
    got = _ok(
        cnn_server.post("/invocations", data=body, headers={"Content-Type": "application/json"})
    )
    assert np.asarray(got["predictions"]).shape == (2, 2)


def test_nan_is_accepted_where_the_dtype_holds_it(cnn_server: Server) -> None:
    body = X[:1].tolist()
    body[0][0][0][0] = "NaN"
    text = str({"inputs": body}).replace("'NaN'", "NaN").replace("'", '"')
    r = cnn_server.post("/invocations", data=text, headers={"Content-Type": "application/json"})
    got = _ok(r)
    assert len(got["predictions"]) == 1  # NaN flows through (MLflow accepts it too)


# --- columns ------------------------------------------------------------------------------


def _column_forms() -> dict[str, tuple[str, bytes | dict]]:
    split = FRAME.to_dict(orient="split")
    split = {k: split[k] for k in ("columns", "data")}
    return {
        "dataframe_split": ("json", {"dataframe_split": split}),
        "dataframe_records": ("json", {"dataframe_records": FRAME.to_dict(orient="records")}),
        "inputs-columns": ("json", {"inputs": FRAME.to_dict(orient="list")}),
        "instances-rows": ("json", {"instances": FRAME.to_dict(orient="records")}),
        "csv": ("csv", FRAME.to_csv(index=False).encode()),
    }


@pytest.mark.parametrize("form", list(_column_forms()))
def test_columns_forms(columns_server: Server, columns: PyFuncModel, form: str) -> None:
    kind, body = _column_forms()[form]
    if kind == "csv":
        r = columns_server.post("/invocations", data=body, headers={"Content-Type": "text/csv"})
    else:
        r = columns_server.post("/invocations", body)
    got = _ok(r)["predictions"]
    expected = columns.predict(FRAME)
    # A DataFrame result is written as records, as MLflow does.
    assert [list(row) for row in got] == [["0"]] * 3
    np.testing.assert_allclose([row["0"] for row in got], expected[0].to_numpy(), rtol=1e-6)


def test_csv_reads_the_same_as_json(columns_server: Server) -> None:
    csv = io.BytesIO()
    FRAME.to_csv(csv, index=False)
    a = _ok(
        columns_server.post(
            "/invocations", data=csv.getvalue(), headers={"Content-Type": "text/csv; charset=utf-8"}
        )
    )
    b = _ok(columns_server.post("/invocations", {"dataframe_records": FRAME.to_dict("records")}))
    assert a == b


# --- several inputs and outputs -----------------------------------------------------------


def test_multi_named_outputs(multi_server: Server, multi: PyFuncModel) -> None:
    x = models.multi_example(4, seed=9)
    got = _ok(multi_server.post("/invocations", {"inputs": {k: v.tolist() for k, v in x.items()}}))
    expected = multi.predict(x)
    assert set(got["predictions"]) == {"score", "probs"}
    for name, value in expected.items():
        np.testing.assert_allclose(np.asarray(got["predictions"][name]), value, rtol=1e-6)


def test_multi_instances_rows_to_named_tensors(multi_server: Server, multi: PyFuncModel) -> None:
    x = models.multi_example(2, seed=10)
    rows = [{"a": x["a"][i].tolist(), "b": x["b"][i].tolist()} for i in range(2)]
    got = _ok(multi_server.post("/invocations", {"instances": rows}))
    np.testing.assert_allclose(
        np.asarray(got["predictions"]["probs"]), multi.predict(x)["probs"], rtol=1e-6
    )


# --- TensorFlow Serving's REST API --------------------------------------------------------


def test_tfserving_row_form(cnn_server: Server, cnn: PyFuncModel) -> None:
    r = cnn_server.post("/v1/models/cnn:predict", {"instances": X.tolist()})
    np.testing.assert_allclose(np.asarray(_ok(r)["predictions"]), cnn.predict(X), rtol=1e-6)


def test_tfserving_columnar_form_with_signature_name(cnn_server: Server, cnn: PyFuncModel) -> None:
    body = {"signature_name": "serving_default", "inputs": X.tolist()}
    r = cnn_server.post("/v1/models/cnn/versions/1:predict", body)
    np.testing.assert_allclose(np.asarray(_ok(r)["outputs"]), cnn.predict(X), rtol=1e-6)


def test_tfserving_multi_output_rows_and_columns(multi_server: Server, multi: PyFuncModel) -> None:
    x = models.multi_example(2, seed=11)
    expected = multi.predict(x)
    rows = [{"a": x["a"][i].tolist(), "b": x["b"][i].tolist()} for i in range(2)]
    got_rows = _ok(multi_server.post("/v1/models/m:predict", {"instances": rows}))["predictions"]
    assert [sorted(r) for r in got_rows] == [["probs", "score"]] * 2
    np.testing.assert_allclose(got_rows[1]["score"], expected["score"][1], rtol=1e-6)
    cols = {k: v.tolist() for k, v in x.items()}
    got = _ok(multi_server.post("/v1/models/m:predict", {"inputs": cols}))["outputs"]
    np.testing.assert_allclose(np.asarray(got["probs"]), expected["probs"], rtol=1e-6)


def test_tfserving_status(cnn_server: Server) -> None:
    got = _ok(cnn_server.get("/v1/models/cnn"))
    assert got["model_version_status"][0]["state"] == "AVAILABLE"


def test_tfserving_unknown_signature_name(cnn_server: Server) -> None:
    r = cnn_server.post("/v1/models/cnn:predict", {"signature_name": "nope", "inputs": [[1]]})
    assert r.status_code == 400
    body = r.json()
    assert body["message"] == "signature_name 'nope' not found; this model serves 'serving_default'"
    assert body["error"] == body["message"]  # TF Serving clients read "error"


# --- the other endpoints ------------------------------------------------------------------


def test_ping_health_version(cnn_server: Server) -> None:
    assert _ok(cnn_server.get("/ping")) == {"status": "ready"}
    assert _ok(cnn_server.get("/health"))["status"] == "alive"
    from mlreg.version import __version__

    assert _ok(cnn_server.get("/version"))["mlreg"] == __version__


def test_metadata(cnn_server: Server, cnn_dir: Path) -> None:
    got = _ok(cnn_server.get("/metadata"))
    assert got["signature"]["inputs"] == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28, 3]}}
    ]
    assert np.asarray(got["input_example"]["inputs"]).shape == (2, 28, 28, 3)
    assert got["uri"] == str(cnn_dir)
    assert got["flavors"] == ["python_function", "tensorflow"]
    assert {"name", "version", "digest", "model_uuid"} <= set(got)


def test_metrics(cnn_server: Server) -> None:
    _ok(cnn_server.post("/invocations", {"inputs": X[:1].tolist()}))
    cnn_server.post("/invocations", {"inputs": [1]})
    text = cnn_server.get("/metrics").text
    assert 'mlreg_requests_total{endpoint="/invocations",method="POST",status="200"}' in text
    assert 'mlreg_requests_total{endpoint="/invocations",method="POST",status="400"}' in text
    assert 'mlreg_request_duration_seconds_bucket{endpoint="/invocations",le="0.005"}' in text
    assert "mlreg_requests_in_flight 1.0" in text  # this very request
    assert "mlreg_batch_size_count" in text
    assert "mlreg_model_ready 1.0" in text
    load = [line for line in text.splitlines() if line.startswith("mlreg_model_load_seconds ")]
    assert load and float(load[0].split()[1]) > 0


def test_request_id_is_echoed_or_made(cnn_server: Server) -> None:
    r = cnn_server.get("/ping", headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    made = cnn_server.get("/ping").headers["X-Request-ID"]
    assert len(made) == 32
    bad = cnn_server.get("/ping", headers={"X-Request-ID": "x" * 500}).headers["X-Request-ID"]
    assert bad != "x" * 500 and len(bad) == 32


def test_unknown_endpoint_and_method_are_json(cnn_server: Server) -> None:
    r = cnn_server.get("/nope")
    assert (r.status_code, r.json()) == (
        404,
        {"error_code": "ENDPOINT_NOT_FOUND", "message": "no endpoint /nope"},
    )
    r = cnn_server.get("/invocations")
    assert r.status_code == 405
    assert r.json()["error_code"] == "METHOD_NOT_ALLOWED"
    assert r.json()["message"].startswith("method GET is not allowed on /invocations; allowed:")
