"""Every kind of bad request answers 4xx JSON naming what was wrong; the server keeps serving.

Each case runs in this process against the numpy stand-ins, and against real servers of the
TensorFlow models in the slow selection.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np
import orjson
import pytest

from mlreg.serving.backends import tensor_names
from tests.serving.conftest import COLUMNS_LIMIT
from tests.serving.data import images
from tests.serving.targets import Target

JSON = {"Content-Type": "application/json"}
IMAGE = images(1).tolist()
GOOD = {
    "cnn": {"inputs": IMAGE},
    "columns": {"dataframe_records": [{"a": 1.0, "b": 2.0, "c": 3}]},
}


@dataclass(frozen=True)
class Case:
    server: str
    body: bytes
    status: int
    error_code: str
    message: str  # the exact message, or its start when it ends with "..."
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    path: str = "/invocations"


def js(text: str) -> bytes:
    return text.encode()


def nested(depth: int) -> bytes:
    return b'{"inputs": ' + b"[" * depth + b"1" + b"]" * depth + b"}"


BIG = b'{"inputs": [' + b"1.0," * (COLUMNS_LIMIT // 4) + b"1.0]}"
SPLIT = '{"dataframe_split": {"columns": %s, "data": %s}}'

CASES = {
    "malformed-json": Case(
        "cnn",
        js('{"inputs": [1, 2'),
        400,
        "INVALID_PARAMETER_VALUE",
        "malformed JSON: ...",
    ),
    "top-level-list": Case(
        "cnn",
        js("[[1, 2, 3]]"),
        400,
        "INVALID_PARAMETER_VALUE",
        "expected a JSON object with one of 'dataframe_split', 'dataframe_records', "
        "'instances', 'inputs', got a JSON list",
    ),
    "no-payload-key": Case(
        "cnn",
        js('{"params": {}}'),
        400,
        "INVALID_PARAMETER_VALUE",
        "expected exactly one of 'dataframe_split', 'dataframe_records', 'instances', "
        "'inputs', got none",
    ),
    "two-payload-keys": Case(
        "cnn",
        js('{"inputs": [[1]], "instances": [[1]]}'),
        400,
        "INVALID_PARAMETER_VALUE",
        "expected exactly one of 'dataframe_split', 'dataframe_records', 'instances', "
        "'inputs', got 'instances', 'inputs'",
    ),
    "unknown-top-level-key": Case(
        "cnn",
        js('{"inputs": [[1]], "input": 1}'),
        400,
        "INVALID_PARAMETER_VALUE",
        "unknown field 'input'; expected exactly one of 'dataframe_split', "
        "'dataframe_records', 'instances', 'inputs', and optionally 'params'",
    ),
    "wrong-content-type": Case(
        "cnn",
        js('{"inputs": [[1]]}'),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "unsupported Content-Type 'text/plain'; expected application/json or text/csv",
        headers={"Content-Type": "text/plain"},
    ),
    "missing-content-type": Case(
        "cnn",
        js('{"inputs": [[1]]}'),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "missing Content-Type header; expected application/json or text/csv",
        headers={"Content-Type": ""},
    ),
    "charset-not-utf8": Case(
        "cnn",
        '{"inputs": [["é"]]}'.encode("latin-1"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "unsupported charset 'latin-1' in Content-Type; send the body as UTF-8",
        headers={"Content-Type": "application/json; charset=latin-1"},
    ),
    "invalid-utf8-bytes": Case(
        "cnn",
        '{"inputs": [["é"]]}'.encode("latin-1"),
        400,
        "INVALID_PARAMETER_VALUE",
        "malformed JSON: the body is not valid UTF-8 ...",
    ),
    "body-over-limit": Case(
        "columns",
        BIG,
        413,
        "PAYLOAD_TOO_LARGE",
        f"request body is {len(BIG)} bytes; the limit is {COLUMNS_LIMIT} bytes "
        "(MLREG_MAX_REQUEST_BYTES)",
    ),
    "missing-column": Case(
        "columns",
        js(SPLIT % ('["a", "b"]', "[[1.0, 2.0]]")),
        400,
        "SCHEMA_MISMATCH",
        "missing required column 'c'; expected columns: 'a', 'b', 'c'",
    ),
    "extra-column": Case(
        "columns",
        js(SPLIT % ('["a", "b", "c", "d"]', "[[1.0, 2.0, 3, 4]]")),
        400,
        "SCHEMA_MISMATCH",
        "unexpected column 'd' in 'dataframe_split'; expected columns: 'a', 'b', 'c'",
    ),
    "wrong-dtype-column": Case(
        "columns",
        js(SPLIT % ('["a", "b", "c"]', "[[1.0, 2.0, 1.5]]")),
        400,
        "SCHEMA_MISMATCH",
        "column 'c': expected int64, got float64 values that are not whole numbers (e.g. 1.5)",
    ),
    "string-in-double-column": Case(
        "columns",
        js('{"dataframe_records": [{"a": "x", "b": 2.0, "c": 1}]}'),
        400,
        "SCHEMA_MISMATCH",
        "column 'a': expected float64, got strings",
    ),
    "wrong-shape": Case(
        "cnn",
        js('{"inputs": [[1.0, 2.0, 3.0]]}'),
        400,
        "SCHEMA_MISMATCH",
        "input: expected shape (-1, 28, 28, 3), got (1, 3)",
    ),
    "ragged-list": Case(
        "cnn",
        js('{"inputs": [[[[1.0, 2.0, 3.0]], [[1.0, 2.0]]]]}'),
        400,
        "SCHEMA_MISMATCH",
        "input: ragged nested list (rows of different lengths); expected a rectangular tensor",
    ),
    "row-width-mismatch": Case(
        "columns",
        js(SPLIT % ('["a", "b", "c"]', "[[1.0, 2.0, 3], [1.0, 2.0]]")),
        400,
        "SCHEMA_MISMATCH",
        "'dataframe_split.data'[1]: expected 3 values (one per column), got 2",
    ),
    "nan-in-long-column": Case(
        "columns",
        js(SPLIT % ('["a", "b", "c"]', "[[1.0, 2.0, NaN]]")),
        400,
        "SCHEMA_MISMATCH",
        "column 'c': expected int64, got NaN or Infinity",
    ),
    "infinity-in-long-column": Case(
        "columns",
        js(SPLIT % ('["a", "b", "c"]', "[[1.0, 2.0, -Infinity]]")),
        400,
        "SCHEMA_MISMATCH",
        "column 'c': expected int64, got NaN or Infinity",
    ),
    "string-in-numeric-tensor": Case(
        "cnn",
        js('{"inputs": [[[[1.0, "x", 3.0]]]]}'),
        400,
        "SCHEMA_MISMATCH",
        "input: expected float32, got strings",
    ),
    "null-in-numeric-tensor": Case(
        "cnn",
        js('{"inputs": [[[[1.0, null, 3.0]]]]}'),
        400,
        "SCHEMA_MISMATCH",
        "input: expected float32, got null values",
    ),
    "empty-batch-inputs": Case(
        "cnn",
        js('{"inputs": []}'),
        400,
        "SCHEMA_MISMATCH",
        "empty batch: 'inputs' has no rows; send at least one",
    ),
    "empty-batch-records": Case(
        "columns",
        js('{"dataframe_records": []}'),
        400,
        "SCHEMA_MISMATCH",
        "empty batch: 'dataframe_records' has no rows; send at least one",
    ),
    "empty-batch-csv": Case(
        "columns",
        b"a,b,c\n",
        400,
        "SCHEMA_MISMATCH",
        "empty batch: the CSV body has a header but no rows",
        headers={"Content-Type": "text/csv"},
    ),
    "csv-without-a-header": Case(
        "columns",
        b"1.0,2.0,3\n",
        400,
        "SCHEMA_MISMATCH",
        "the CSV body has no header row: its first line (1.0,2.0,3) holds values; send a header "
        "line naming the columns, then the rows",
        headers={"Content-Type": "text/csv"},
    ),
    "records-with-array-cells-of-different-shapes": Case(
        "cnn",
        orjson.dumps({"dataframe_records": [{"image": IMAGE[0]}, {"image": [[0.0]]}]}),
        400,
        "SCHEMA_MISMATCH",
        "input 'image': each row's cell must be an array of the same shape, got shapes (1, 1), "
        "(28, 28, 3)",
    ),
    "deeply-nested-json": Case(
        "cnn",
        nested(5000),
        400,
        "INVALID_PARAMETER_VALUE",
        # Refused from counting its brackets, before the parser would go 5000 levels down.
        "the JSON body has 5001 lists and objects for no more than 1 values; this model's "
        "inputs need at most 65 for that many: send each tensor as one nested list shaped "
        "like the signature",
    ),
    "too-many-dimensions": Case(
        "cnn",
        nested(40),
        400,
        "SCHEMA_MISMATCH",
        "inputs: nested more than 32 levels deep; expected a tensor of at most 32 dimensions",
    ),
    "unknown-param": Case(
        "cnn",
        orjson.dumps({"inputs": IMAGE, "params": {"temperature": 0.5}}),
        400,
        "SCHEMA_MISMATCH",
        "unknown param 'temperature': this model takes no params",
    ),
    "params-not-an-object": Case(
        "cnn",
        js('{"inputs": [[1]], "params": [1]}'),
        400,
        "INVALID_PARAMETER_VALUE",
        "'params': expected a JSON object, got a JSON list",
    ),
    "tfserving-neither-key": Case(
        "cnn",
        js('{"signature_name": "serving_default"}'),
        400,
        "INVALID_PARAMETER_VALUE",
        "expected exactly one of 'instances' or 'inputs' (and optionally 'signature_name'); "
        "got neither",
        path="/v1/models/cnn:predict",
    ),
}


@pytest.fixture
def servers(cnn_target: Target, columns_target: Target) -> dict[str, Target]:
    return {"cnn": cnn_target, "columns": columns_target}


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_bad_input(servers: dict[str, Target], name: str) -> None:
    case = CASES[name]
    server = servers[case.server]
    request_id = f"bad-{name}-{uuid.uuid4().hex[:8]}"
    r = server.post(case.path, data=case.body, headers={**case.headers, "X-Request-ID": request_id})
    assert r.status_code == case.status, r.text
    body = r.json()
    assert body["error_code"] == case.error_code
    if case.message.endswith("..."):
        assert body["message"].startswith(case.message[:-3]), body["message"]
    else:
        assert body["message"] == case.message
    assert "Traceback" not in r.text
    assert r.headers["X-Request-ID"] == request_id
    # One log line for the request, carrying the message.
    lines = [line for line in server.log().splitlines() if request_id in line]
    assert len(lines) == 1, lines
    assert case.error_code in lines[0]
    # The worker keeps serving.
    assert server.post("/invocations", GOOD[case.server]).status_code == 200


# --- a misspelt input name on a model with one unnamed input -----------------------------------

NAMED_FORMS = {
    "invocations-inputs": ("/invocations", lambda name: {"inputs": {name: IMAGE}}),
    "invocations-instances": ("/invocations", lambda name: {"instances": [{name: IMAGE[0]}]}),
    "tfserving-inputs": ("/v1/models/{model}:predict", lambda name: {"inputs": {name: IMAGE}}),
    "tfserving-instances": (
        "/v1/models/{model}:predict",
        lambda name: {"instances": [{name: IMAGE[0]}]},
    ),
}


@pytest.mark.parametrize("form", list(NAMED_FORMS))
def test_a_misspelt_input_name_is_refused_naming_the_input_the_model_has(
    cnn_target: Target, form: str
) -> None:
    # The cnn's signature has one unnamed tensor; its SavedModel names it (the name V2 clients
    # send). Any other name used to be taken for it without a word.
    [name] = tensor_names(cnn_target.model)
    route, body = NAMED_FORMS[form]
    path = route.format(model=cnn_target.model.source.name or "cnn")
    r = cnn_target.post(path, body("any_name"))
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "SCHEMA_MISMATCH"
    assert r.json()["message"] == f"unexpected input 'any_name'; expected inputs: '{name}'"
    assert cnn_target.post(path, body(name)).status_code == 200


def test_dataframe_records_with_array_cells_are_rows_of_a_tensor(
    servers: dict[str, Target],
) -> None:
    cnn = servers["cnn"]
    records = {"dataframe_records": [{"image": IMAGE[0]}, {"image": IMAGE[0]}]}
    r = cnn.post("/invocations", data=orjson.dumps(records), headers=JSON)
    assert r.status_code == 200, r.text
    alone = cnn.post("/invocations", data=orjson.dumps(GOOD["cnn"]), headers=JSON).json()
    # Two rows in one call may round differently from one (oneDNN): equal to float32 precision.
    np.testing.assert_allclose(r.json()["predictions"], alone["predictions"] * 2, rtol=1e-5)
