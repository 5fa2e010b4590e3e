"""MLflow's payload forms and TF Serving's REST API, in this process against the numpy
stand-ins, and against a real gunicorn server of the TensorFlow models in the slow selection.

Each target carries the model whose predictions the server should answer with.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests.serving.data import FRAME, images, multi_example
from tests.serving.targets import Target

X = images(3, seed=7)


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


# --- tensors ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["inputs", "instances"])
def test_cnn_tensor_forms(cnn_target: Target, key: str) -> None:
    got = _ok(cnn_target.post("/invocations", {key: X.tolist()}))
    np.testing.assert_allclose(
        np.asarray(got["predictions"]), cnn_target.model.predict(X), rtol=1e-6
    )
    assert np.asarray(got["predictions"]).shape == (3, 2)


def test_cnn_dataframe_split_of_a_tensor_model(cnn_target: Target) -> None:
    # MLflow's split form works for tensor models too; a 4-d tensor does not fit in a table.
    r = cnn_target.post("/invocations", {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}})
    assert r.status_code == 400
    assert r.json()["error_code"] == "SCHEMA_MISMATCH"
    assert "expected shape (-1, 28, 28, 3)" in r.json()["message"]


def test_cnn_serves_the_saved_serving_example(cnn_target: Target) -> None:
    body = (cnn_target.model.source.path / "serving_input_example.json").read_bytes()
    got = _ok(
        cnn_target.post("/invocations", data=body, headers={"Content-Type": "application/json"})
    )
    assert np.asarray(got["predictions"]).shape == (2, 2)


def test_nan_is_accepted_where_the_dtype_holds_it(cnn_target: Target) -> None:
    body = X[:1].tolist()
    body[0][0][0][0] = "NaN"
    text = str({"inputs": body}).replace("'NaN'", "NaN").replace("'", '"')
    r = cnn_target.post("/invocations", data=text, headers={"Content-Type": "application/json"})
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
def test_columns_forms(columns_target: Target, form: str) -> None:
    kind, body = _column_forms()[form]
    if kind == "csv":
        r = columns_target.post("/invocations", data=body, headers={"Content-Type": "text/csv"})
    else:
        r = columns_target.post("/invocations", body)
    got = _ok(r)["predictions"]
    expected = columns_target.model.predict(FRAME)
    # A DataFrame result is written as records, as MLflow does, its column named after the
    # model's output rather than pandas' "0".
    [name] = expected.columns
    assert isinstance(name, str) and name != "0"
    assert [list(row) for row in got] == [[name]] * 3
    np.testing.assert_allclose([row[name] for row in got], expected[name].to_numpy(), rtol=1e-6)


def test_csv_reads_the_same_as_json(columns_target: Target) -> None:
    csv = io.BytesIO()
    FRAME.to_csv(csv, index=False)
    a = _ok(
        columns_target.post(
            "/invocations", data=csv.getvalue(), headers={"Content-Type": "text/csv; charset=utf-8"}
        )
    )
    b = _ok(columns_target.post("/invocations", {"dataframe_records": FRAME.to_dict("records")}))
    assert a == b


# --- several inputs and outputs -----------------------------------------------------------


def test_multi_named_outputs(multi_target: Target) -> None:
    x = multi_example(4, seed=9)
    got = _ok(multi_target.post("/invocations", {"inputs": {k: v.tolist() for k, v in x.items()}}))
    expected = multi_target.model.predict(x)
    assert set(got["predictions"]) == {"score", "probs"}
    for name, value in expected.items():
        np.testing.assert_allclose(np.asarray(got["predictions"][name]), value, rtol=1e-6)


def test_multi_instances_rows_to_named_tensors(multi_target: Target) -> None:
    x = multi_example(2, seed=10)
    rows = [{"a": x["a"][i].tolist(), "b": x["b"][i].tolist()} for i in range(2)]
    got = _ok(multi_target.post("/invocations", {"instances": rows}))
    np.testing.assert_allclose(
        np.asarray(got["predictions"]["probs"]), multi_target.model.predict(x)["probs"], rtol=1e-6
    )


# --- TensorFlow Serving's REST API --------------------------------------------------------


def test_tfserving_row_form(cnn_target: Target) -> None:
    r = cnn_target.post("/v1/models/cnn:predict", {"instances": X.tolist()})
    expected = cnn_target.model.predict(X)
    np.testing.assert_allclose(np.asarray(_ok(r)["predictions"]), expected, rtol=1e-6)


def test_tfserving_columnar_form_with_signature_name(cnn_target: Target) -> None:
    body = {"signature_name": "serving_default", "inputs": X.tolist()}
    r = cnn_target.post("/v1/models/cnn/versions/1:predict", body)
    expected = cnn_target.model.predict(X)
    np.testing.assert_allclose(np.asarray(_ok(r)["outputs"]), expected, rtol=1e-6)


def test_tfserving_multi_output_rows_and_columns(multi_target: Target) -> None:
    x = multi_example(2, seed=11)
    expected = multi_target.model.predict(x)
    rows = [{"a": x["a"][i].tolist(), "b": x["b"][i].tolist()} for i in range(2)]
    got_rows = _ok(multi_target.post("/v1/models/m:predict", {"instances": rows}))["predictions"]
    assert [sorted(r) for r in got_rows] == [["probs", "score"]] * 2
    np.testing.assert_allclose(got_rows[1]["score"], expected["score"][1], rtol=1e-6)
    cols = {k: v.tolist() for k, v in x.items()}
    got = _ok(multi_target.post("/v1/models/m:predict", {"inputs": cols}))["outputs"]
    np.testing.assert_allclose(np.asarray(got["probs"]), expected["probs"], rtol=1e-6)


def test_tfserving_status(cnn_target: Target) -> None:
    got = _ok(cnn_target.get("/v1/models/cnn"))
    assert got["model_version_status"][0]["state"] == "AVAILABLE"


def test_tfserving_unknown_signature_name(cnn_target: Target) -> None:
    r = cnn_target.post("/v1/models/cnn:predict", {"signature_name": "nope", "inputs": [[1]]})
    assert r.status_code == 400
    body = r.json()
    assert body["message"] == "signature_name 'nope' not found; this model serves 'serving_default'"
    assert body["error"] == body["message"]  # TF Serving clients read "error"


# --- the other endpoints ------------------------------------------------------------------


def test_ping_health_version(cnn_target: Target) -> None:
    assert _ok(cnn_target.get("/ping")) == {"status": "ready"}
    assert _ok(cnn_target.get("/health"))["status"] == "alive"
    from mlreg.version import __version__

    assert _ok(cnn_target.get("/version"))["mlreg"] == __version__


def test_metadata(cnn_target: Target) -> None:
    got = _ok(cnn_target.get("/metadata"))
    assert got["signature"]["inputs"] == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28, 3]}}
    ]
    assert np.asarray(got["input_example"]["inputs"]).shape == (2, 28, 28, 3)
    assert got["uri"] == cnn_target.model.source.path.name  # not where it is on the disk
    assert got["flavors"] == ["python_function", "tensorflow"]
    assert {"name", "version", "digest", "model_uuid"} <= set(got)


def test_metrics(cnn_target: Target) -> None:
    _ok(cnn_target.post("/invocations", {"inputs": X[:1].tolist()}))
    cnn_target.post("/invocations", {"inputs": [1]})
    text = cnn_target.get("/metrics").text
    # Every metric names the version that answered (none: the model is a directory).
    v = 'model_version=""'
    assert f'mlreg_requests_total{{endpoint="/invocations",method="POST",{v},status="200"}}' in text
    assert f'mlreg_requests_total{{endpoint="/invocations",method="POST",{v},status="400"}}' in text
    bucket = f'mlreg_request_duration_seconds_bucket{{endpoint="/invocations",le="0.005",{v}}}'
    assert bucket in text
    assert f"mlreg_requests_in_flight{{{v}}} 1.0" in text  # this very request
    assert f"mlreg_batch_size_count{{{v}}}" in text
    assert f"mlreg_model_ready{{{v}}} 1.0" in text
    load = [line for line in text.splitlines() if line.startswith("mlreg_model_load_seconds{")]
    assert load and float(load[0].split()[1]) > 0


def test_request_id_is_echoed_or_made(cnn_target: Target) -> None:
    r = cnn_target.get("/ping", headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    made = cnn_target.get("/ping").headers["X-Request-ID"]
    assert len(made) == 32
    bad = cnn_target.get("/ping", headers={"X-Request-ID": "x" * 500}).headers["X-Request-ID"]
    assert bad != "x" * 500 and len(bad) == 32


def test_unknown_endpoint_and_method_are_json(cnn_target: Target) -> None:
    r = cnn_target.get("/nope")
    assert (r.status_code, r.json()) == (
        404,
        {"error_code": "ENDPOINT_NOT_FOUND", "message": "no endpoint /nope"},
    )
    r = cnn_target.get("/invocations")
    assert r.status_code == 405
    assert r.json()["error_code"] == "METHOD_NOT_ALLOWED"
    assert r.json()["message"].startswith("method GET is not allowed on /invocations; allowed:")
