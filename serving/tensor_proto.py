"""numpy arrays to and from TensorFlow's ``TensorProto``, without TensorFlow's runtime.

Numeric arrays travel as ``tensor_content`` (one little-endian byte string, no Python loop
over elements); answers are read from ``tensor_content`` or from the typed ``*_val``
fields, which TF Serving uses by default, including its one-value-fills-all shorthand.
"""

from __future__ import annotations

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

#: numpy dtype → (TensorFlow DataType, the TensorProto field that holds its values)
_BY_NUMPY: dict[np.dtype, tuple[int, str]] = {
    np.dtype(np.float32): (types_pb2.DT_FLOAT, "float_val"),
    np.dtype(np.float64): (types_pb2.DT_DOUBLE, "double_val"),
    np.dtype(np.float16): (types_pb2.DT_HALF, "half_val"),
    np.dtype(np.int8): (types_pb2.DT_INT8, "int_val"),
    np.dtype(np.int16): (types_pb2.DT_INT16, "int_val"),
    np.dtype(np.int32): (types_pb2.DT_INT32, "int_val"),
    np.dtype(np.int64): (types_pb2.DT_INT64, "int64_val"),
    np.dtype(np.uint8): (types_pb2.DT_UINT8, "int_val"),
    np.dtype(np.uint16): (types_pb2.DT_UINT16, "int_val"),
    np.dtype(np.uint32): (types_pb2.DT_UINT32, "uint32_val"),
    np.dtype(np.uint64): (types_pb2.DT_UINT64, "uint64_val"),
    np.dtype(np.bool_): (types_pb2.DT_BOOL, "bool_val"),
}
_BY_ENUM: dict[int, tuple[np.dtype, str]] = {
    enum: (dtype, field) for dtype, (enum, field) in _BY_NUMPY.items()
}
_BY_ENUM[types_pb2.DT_STRING] = (np.dtype(object), "string_val")


def numpy_dtype(enum: int) -> np.dtype:
    """The numpy dtype for a TensorFlow DataType; ValueError for types a request cannot carry."""
    try:
        return _BY_ENUM[enum][0]
    except KeyError:
        raise ValueError(f"unsupported tensor dtype {dtype_name(enum)}") from None


def dtype_name(enum: int) -> str:
    """``DT_FLOAT`` → ``float32``-style names for messages; TF's own name otherwise."""
    entry = _BY_ENUM.get(enum)
    if entry is not None:
        return "string" if entry[1] == "string_val" else entry[0].name
    return types_pb2.DataType.Name(enum) if enum in types_pb2.DataType.values() else str(enum)


def to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A TensorProto holding ``array`` (numbers as raw bytes, strings as ``string_val``)."""
    proto = tensor_pb2.TensorProto()
    proto.tensor_shape.dim.extend(
        tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape
    )
    if array.dtype.kind in "OSU":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in array.ravel().tolist()
        )
        return proto
    entry = _BY_NUMPY.get(array.dtype.newbyteorder("="))
    if entry is None:
        raise ValueError(f"cannot send a {array.dtype} tensor to TensorFlow Serving")
    proto.dtype = entry[0]
    proto.tensor_content = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    return proto


def from_proto(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """The array a TensorProto holds."""
    dtype, field = _BY_ENUM.get(proto.dtype, (None, ""))
    if dtype is None:
        raise ValueError(f"unsupported tensor dtype {dtype_name(proto.dtype)} in the answer")
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    count = int(np.prod(shape, dtype=np.int64))
    if proto.tensor_content and field != "string_val":
        flat = np.frombuffer(proto.tensor_content, dtype.newbyteorder("<")).astype(dtype)
        return flat.reshape(shape)
    if field == "string_val":
        values = np.empty(len(proto.string_val), dtype=object)
        values[:] = list(proto.string_val)
    elif field == "half_val":
        values = np.asarray(proto.half_val, np.uint16).view(np.float16)
    else:
        values = np.asarray(getattr(proto, field), dtype)
    if values.size == count:
        return values.reshape(shape)
    # TensorFlow's shorthand: fewer values than elements repeats the last one.
    filled = np.empty(count, dtype=dtype)
    filled[: values.size] = values
    filled[values.size :] = values[-1] if values.size else (b"" if field == "string_val" else 0)
    return filled.reshape(shape)


__all__ = ["dtype_name", "from_proto", "numpy_dtype", "to_proto"]
