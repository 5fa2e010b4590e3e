"""Request bounds from the signature, numeric tensors straight to numpy, and the memory a large
body costs a worker (issue: 140 MB of ``[],[],...`` once took a worker from 0.7 to 4.4 GB)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mlreg.errors import InvalidInput, SchemaError
from mlreg.models.enforce import enforce_schema
from mlreg.models.signature import ColSpec, ModelSignature, Schema, TensorSpec
from mlreg.serving import tensor_json
from mlreg.serving.limits import MAX_LIMIT, MIN_LIMIT, UNSIZED_LIMIT, Limits, limits_for
from tests.serving.server import Server


def tensor(shape: tuple[int, ...], dtype: str = "float32", name: str | None = None) -> TensorSpec:
    return TensorSpec(np.dtype(dtype), shape, name)


def sig(*specs: TensorSpec | ColSpec) -> ModelSignature:
    return ModelSignature(Schema(list(specs)))


# --- the limits a signature gives ------------------------------------------------------------


@pytest.mark.parametrize(
    ("signature", "body_bytes", "per_value"),
    [
        # 256 images of 2352 floats (26 bytes each at most) and 813 lists: 15.7 MB.
        (sig(tensor((-1, 28, 28, 3))), 256 * (2352 * 26 + 2 * 813) + 65536, 814 / 2352),
        # Small rows: the 1 MiB floor (about 13,000 rows of three doubles).
        (
            sig(ColSpec("double", "a"), ColSpec("double", "b"), ColSpec("long", "c")),
            MIN_LIMIT,
            1 / 3,
        ),
        (sig(tensor((-1, 2))), MIN_LIMIT, 1.0),
        # Rows without a fixed size: 16 MiB (they are parsed into Python objects).
        (sig(tensor((-1, -1))), UNSIZED_LIMIT, 1.0),
        (sig(tensor((-1,), "str")), UNSIZED_LIMIT, 1.0),
        (sig(ColSpec("string", "text")), UNSIZED_LIMIT, 1.0),
        (None, UNSIZED_LIMIT, 1.0),
        # 256 rows of 50,000 floats would take 333 MB: capped at 100 MiB.
        (sig(tensor((-1, 50_000))), MAX_LIMIT, 1 / 64),
    ],
    ids=["image", "columns", "pairs", "variable", "strings", "text-column", "none", "wide"],
)
def test_limits_from_the_signature(
    signature: ModelSignature | None, body_bytes: int, per_value: float
) -> None:
    limits = limits_for(signature)
    assert limits.body_bytes == body_bytes
    assert limits.containers_per_value == pytest.approx(per_value)


IMAGE = limits_for(sig(tensor((-1, 28, 28, 3))))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"inputs": [' + b"[]," * 1000 + b"[]]}",
            "the JSON body has 1001 empty lists or objects; a request to this model needs at "
            "most 64",
        ),
        (
            b'{"inputs": [' + b"[0]," * 1000 + b"[0]]}",
            "the JSON body has 1003 lists and objects for no more than 1001 values; this "
            "model's inputs need at most 498 for that many: send each tensor as one nested "
            "list shaped like the signature",
        ),
    ],
    ids=["empty-lists", "a-list-per-number"],
)
def test_bodies_that_would_blow_up_are_refused_before_parsing(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as e:
        IMAGE.check_json(body)
    assert e.value.message == message


@pytest.mark.parametrize(("empties", "refused"), [(62, False), (64, False), (65, True)])
def test_the_empty_container_bound_holds_on_both_sides_of_the_short_count(
    empties: int, refused: bool
) -> None:
    """62 empty lists make 64 containers, where the count stops early; 64 and 65 take the
    whole count. The bound is the same either way."""
    body = b'{"inputs": [' + b",".join([b"[]"] * empties) + b"]}"
    if not refused:
        IMAGE.check_json(body)
        return
    with pytest.raises(InvalidInput, match=f"has {empties} empty lists or objects"):
        IMAGE.check_json(body)


def test_real_requests_pass_the_count() -> None:
    images = np.random.default_rng(0).uniform(size=(3, 28, 28, 3))
    IMAGE.check_json(json.dumps({"inputs": images.tolist()}).encode())
    IMAGE.check_json(json.dumps({"instances": [{"x": images[0].tolist()}]}).encode())
    columns = limits_for(sig(ColSpec("double", "a"), ColSpec("double", "b")))
    columns.check_json(json.dumps({"dataframe_records": [{"a": 1.0, "b": 2.0}] * 100}).encode())
    columns.check_json(json.dumps({"dataframe_split": {"data": [[1.0, 2.0]] * 100}}).encode())
    Limits(MAX_LIMIT, 1.0).check_json(json.dumps({"inputs": [[1], [2], [3]]}).encode())
    v2 = {"inputs": [{"name": "x", "shape": [3, 28, 28, 3], "datatype": "FP64"}]}
    v2["inputs"][0]["data"] = images.reshape(-1).tolist()
    IMAGE.check_json(json.dumps(v2).encode())


# --- numeric tensors straight to numpy ----------------------------------------------------


def doc(value: object, key: str = "inputs", indent: int | None = None) -> bytes:
    return json.dumps({key: value}, indent=indent).encode()


IMAGE_SPEC = tensor((-1, 28, 28, 3))


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "indented"])
@pytest.mark.parametrize("key", ["inputs", "instances"])
def test_a_lone_tensor_is_read_exactly(key: str, indent: int | None) -> None:
    x = np.random.default_rng(1).uniform(size=(4, 28, 28, 3)).astype(np.float32)
    got = tensor_json.tensor_document(doc(x.tolist(), key, indent), key, IMAGE_SPEC)
    assert got is not None and got.dtype == np.float64
    np.testing.assert_array_equal(got.astype(np.float32), x)


def test_large_tensors_are_read_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tensor_json, "CHUNK_BYTES", 100_000)
    x = np.random.default_rng(2).uniform(size=(30, 28, 28, 3))
    got = tensor_json.tensor_document(doc(x.tolist(), indent=1), "inputs", IMAGE_SPEC)
    assert got is not None
    np.testing.assert_array_equal(got, x)
    ints = np.arange(3000).reshape(1000, 3)
    got = tensor_json.tensor_document(doc(ints.tolist()), "inputs", tensor((-1, 3), "int32"))
    assert got is not None and got.dtype == np.int64
    np.testing.assert_array_equal(got, ints)


@pytest.mark.parametrize(
    ("body", "spec"),
    [
        (b'{"inputs": [[1, 2], [3]]}', tensor((-1, 2))),  # ragged
        (b'{"inputs": [[1, 2, 3], [4]]}', tensor((-1, 2), name="x")),  # ragged, four numbers
        (b'{"inputs": [[1, 2], [[3, 4]]]}', tensor((-1, 2))),  # ragged in depth
        (b'{"inputs": [1, 2, 3, 4]}', tensor((-1, 2))),  # flat
        (b'{"inputs": [[[1, 2]]]}', tensor((-1, 2))),  # too deep
        (b'{"inputs": [[1, 2, 3]]}', tensor((-1, 2))),  # too wide
        (b'{"instances": [[1, 2]]}', tensor((3, 2))),  # the batch dimension is fixed at 3
        (b'{"inputs": [' + b"[0.5]," * 3000 + b"[0.5]]}", tensor((-1, 28, 28, 3))),
    ],
)
def test_a_misshapen_tensor_of_numbers_is_refused_as_enforcement_would(
    body: bytes, spec: TensorSpec
) -> None:
    key = "instances" if body.startswith(b'{"instances"') else "inputs"
    with pytest.raises(SchemaError) as fast:
        tensor_json.tensor_document(body, key, spec)
    with pytest.raises(SchemaError) as general:  # what the parsed document gets
        enforce_schema(json.loads(body)[key], Schema([spec]))
    assert fast.value.message == general.value.message


@pytest.mark.parametrize(
    ("body", "spec"),
    [
        (b'{"inputs": [[1, 2]], "params": {}}', tensor((-1, 2))),  # more than the tensor
        (b'{"inputs": []}', tensor((-1, 2))),  # empty: the general path says so
        (b'{"inputs": [[1, NaN]]}', tensor((-1, 2))),
        (b'{"inputs": [[1, "2"]]}', tensor((-1, 2))),
        (b'{"inputs": [[1, true]]}', tensor((-1, 2))),
        (b'{"inputs": [[1 2]]}', tensor((-1, 2))),  # numbers run together
        (b'{"inputs": [[1, ]]}', tensor((-1, 2))),
        (b'{"inputs": [[1, 1e400]]}', tensor((-1, 2))),
        (b'{"inputs": [[1, 2]]}', tensor((-1, -1))),  # variable rows: not ours to check
        (b'{"inputs": [["a", "b"]]}', tensor((-1, 2), "str")),
        (b'{"other": [[1, 2]]}', tensor((-1, 2))),
    ],
)
def test_anything_but_a_clean_tensor_takes_the_general_path(body: bytes, spec: TensorSpec) -> None:
    # The general path then parses it and says precisely what is wrong.
    assert tensor_json.tensor_document(body, "inputs", spec) is None


def test_integers_stay_exact_and_floats_among_them_are_floats() -> None:
    big = 2**53 + 1  # not a float64
    got = tensor_json.tensor_document(doc([[big, 1]]), "inputs", tensor((-1, 2), "int64"))
    assert got is not None and got.tolist() == [[big, 1]]
    got = tensor_json.tensor_document(doc([[1, 2.5]]), "inputs", tensor((-1, 2), "int32"))
    assert got is not None and got.dtype == np.float64  # enforcement says 2.5 is no int32


# --- what a large body costs a worker -------------------------------------------------------


@pytest.fixture(scope="module")
def cnn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The limit is set above the bodies sent, as the 140 MB body was under 100 MiB.
    tmp = tmp_path_factory.mktemp("limits")
    env = {"MLREG_MAX_REQUEST_BYTES": str(200 << 20), "MLREG_THREADS": "2"}
    server = Server.fake("cnn", tmp / "cnn", tmp / "server.log", env=env).wait_ready()
    yield server
    server.stop()


def worker_pid(server: Server) -> int:
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text()
    [pid] = children.split()
    return int(pid)


def peak_rss_growth(server: Server, body: bytes) -> tuple[int, int]:
    """POST ``body``; return the status and how far the worker's peak RSS rose above its
    resident size before the request."""
    pid = worker_pid(server)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current
    before = _status_kb(pid, "VmRSS")
    r = server.post(
        "/invocations", data=body, headers={"Content-Type": "application/json"}, timeout=120
    )
    time.sleep(0.1)
    return r.status_code, (_status_kb(pid, "VmHWM") - before) * 1024


def _status_kb(pid: int, key: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1))


#: The stated bound: a request's body costs a worker at most this many times its size.
FACTOR = 4


def images(n: int) -> bytes:
    rows = np.random.default_rng(3).uniform(size=(n, 28, 28, 3)).astype(np.float32)
    return doc(rows.tolist())


# Each about 60 MB; built when the test runs, not when it is collected.
BODIES = {
    "empty-lists": (lambda: b'{"inputs": [' + b"[]," * 20_000_000 + b"[]]}", 400),
    "a-list-per-number": (lambda: b'{"inputs": [' + b"[0.5]," * 10_000_000 + b"[0.5]]}", 400),
    "flat-numbers": (lambda: b'{"inputs": [' + b"0.5," * 15_000_000 + b"0.5]}", 400),
    "1200-images": (lambda: images(1200), 200),
}


@pytest.mark.slow  # 60 MB bodies: about 20 s
@pytest.mark.parametrize("name", list(BODIES))
def test_a_large_body_costs_at_most_a_few_times_its_size(cnn_server: Server, name: str) -> None:
    make, status = BODIES[name]
    body = make()
    got, growth = peak_rss_growth(cnn_server, body)
    assert got == status
    print(f"{name}: {len(body) / 1e6:.0f} MB body, peak RSS +{growth / len(body):.2f}x")
    assert growth < FACTOR * len(body), f"{name}: {growth / len(body):.1f}x the body"
