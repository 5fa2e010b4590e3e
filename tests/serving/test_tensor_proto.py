"""numpy ↔ TensorProto without TensorFlow's runtime, cross-checked against TensorFlow itself."""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import pytest

# Cross-checked against TensorFlow, whose protobuf modules tensor_proto uses: both come from
# fixtures, so collecting this module imports neither.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tf() -> ModuleType:
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def tp(tf: ModuleType) -> ModuleType:
    """mlreg.serving.tensor_proto, with ``tensor_pb2`` and ``types_pb2`` (TensorFlow's)."""
    return importlib.import_module("mlreg.serving.tensor_proto")


ARRAYS = [
    np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7,
    np.linspace(-1, 1, 6).reshape(3, 2),
    np.array([[1, -2], [3, 2**31 - 1]], np.int32),
    np.array([2**40, -5], np.int64),
    np.array([0, 255, 7], np.uint8),
    np.array([-128, 127], np.int8),
    np.array([1, -3], np.int16),
    np.array([65535, 1], np.uint16),
    np.array([2**32 - 1], np.uint32),
    np.array([2**64 - 1], np.uint64),
    np.array([0.5, -2.25], np.float16),
    np.array([[True, False, True]]),
    np.zeros((0, 3), np.float32),
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_what_we_send_is_what_tensorflow_reads(tf, tp, array: np.ndarray) -> None:
    proto = tp.to_proto(array)
    assert proto.tensor_content or array.size == 0  # raw bytes, not one field per element
    back = tf.make_ndarray(proto)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_we_read_what_tensorflow_writes_in_either_form(tf, tp, array: np.ndarray) -> None:
    content = tf.make_tensor_proto(array)  # tensor_content
    np.testing.assert_array_equal(tp.from_proto(content), array)
    fields = tp.tensor_pb2.TensorProto(dtype=content.dtype, tensor_shape=content.tensor_shape)
    # TF Serving's default answer form (AsProtoField): the typed *_val field
    values = array.ravel()
    if array.dtype == np.float16:
        fields.half_val.extend(values.view(np.uint16).tolist())
    else:
        field = {
            np.dtype(np.float32): "float_val",
            np.dtype(np.float64): "double_val",
            np.dtype(np.int64): "int64_val",
            np.dtype(np.bool_): "bool_val",
            np.dtype(np.uint32): "uint32_val",
            np.dtype(np.uint64): "uint64_val",
        }.get(array.dtype, "int_val")
        getattr(fields, field).extend(values.tolist())
    got = tp.from_proto(fields)
    assert got.dtype == array.dtype and got.shape == array.shape
    np.testing.assert_array_equal(got, array)


def test_one_value_fills_the_tensor(tf, tp) -> None:
    proto = tf.make_tensor_proto(np.float32(2.5), shape=[2, 3])
    assert len(proto.float_val) == 1  # TensorFlow's own shorthand
    np.testing.assert_array_equal(tp.from_proto(proto), np.full((2, 3), 2.5, np.float32))


def test_strings(tf, tp) -> None:
    words = np.array([["a", "bé"], ["", "longer text"]])
    proto = tp.to_proto(words)
    assert proto.dtype == tp.types_pb2.DT_STRING
    assert tf.make_ndarray(proto).tolist() == [[b"a", "bé".encode()], [b"", b"longer text"]]
    assert tp.from_proto(tf.make_tensor_proto([b"x", b"yz"])).tolist() == [b"x", b"yz"]


def test_unsupported_types_say_so(tp) -> None:
    with pytest.raises(ValueError, match="cannot send a complex64 tensor"):
        tp.to_proto(np.zeros(2, np.complex64))
    with pytest.raises(ValueError, match="unsupported tensor dtype DT_RESOURCE"):
        tp.numpy_dtype(tp.types_pb2.DT_RESOURCE)
    with pytest.raises(ValueError, match="unsupported tensor dtype DT_VARIANT in the answer"):
        tp.from_proto(tp.tensor_pb2.TensorProto(dtype=tp.types_pb2.DT_VARIANT))
