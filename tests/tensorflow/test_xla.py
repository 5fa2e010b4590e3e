"""Opt-in XLA for small batches (mlreg.tensorflow.xla): which sizes are kept, why the others
are not, and that a kept size answers as the plain function does.

Whether XLA is faster depends on the machine, so the tests that need a decision set the
threshold (always keep when the outputs agree, or never) instead of trusting the timing.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.serving.server import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def xla() -> ModuleType:
    from mlreg.tensorflow import xla

    return xla


def _predictor(model_dir: Path, **kwargs: Any) -> Any:
    from mlreg.models.model import Model
    from mlreg.tensorflow.flavor import load_predictor

    return load_predictor(model_dir, Model.load(model_dir), **kwargs)


@pytest.fixture(scope="module")
def plain(cnn_dir: Path) -> Any:
    return _predictor(cnn_dir)


def test_the_flat_call_answers_as_the_structured_call(
    cnn_dir: Path, plain: Any, images: np.ndarray
) -> None:
    """The predictor calls the SavedModel's signature by its flat inputs (mlreg.tensorflow.calls):
    bit for bit what calling it by keyword gives."""
    import tensorflow as tf

    from mlreg.models.model import Model
    from mlreg.models.serving_export import ServingExport

    export = ServingExport.from_flavor(Model.load(cnn_dir).flavor("tensorflow"))
    loaded = tf.saved_model.load(str(cnn_dir / export.saved_model_dir))
    fn = loaded.signatures[export.signature_name]
    (tf_name,) = fn.structured_input_signature[1]
    (output,) = fn.structured_outputs
    for n in (1, 3):
        want = fn(**{tf_name: tf.constant(images[:n])})[output].numpy()
        np.testing.assert_array_equal(plain.predict(images[:n]), want)


def test_inputs_of_the_same_shape_reach_the_function_by_name(
    tmp_path: Path,
    mlreg_tf: ModuleType,
    keras: ModuleType,
    xla: ModuleType,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Called by its flat inputs, a function must still get each tensor under its own name:
    two inputs of one shape, declared out of alphabetical order, and a result that tells
    them apart (zeta - alpha), through a saved tf.Module, its XLA functions and a Keras model
    traced at load."""
    import tensorflow as tf

    from mlreg import pyfunc
    from mlreg.tensorflow.flavor import _traced_keras

    class Difference(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 2], tf.float32, name="zeta"),
                tf.TensorSpec([None, 2], tf.float32, name="alpha"),
            ]
        )
        def __call__(self, zeta: Any, alpha: Any) -> Any:
            return {"d": zeta - alpha}

    rng = np.random.default_rng(5)
    zeta, alpha = (rng.standard_normal((3, 2)).astype(np.float32) for _ in range(2))
    feed = {"zeta": zeta, "alpha": alpha}
    mlreg_tf.save_model(Difference(), tmp_path / "m")
    model = pyfunc.load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(feed), zeta - alpha)

    with pytest.MonkeyPatch.context() as patch, caplog.at_level("INFO", "mlreg.tensorflow"):
        patch.setattr(xla, "KEEP_BELOW", float("inf"))
        compiled = pyfunc.load_model(tmp_path / "m", xla_max_batch=1)
    assert "XLA for batch size(s) 1 (batch 1: XLA, " in caplog.text
    one = {"zeta": zeta[:1], "alpha": alpha[:1]}
    np.testing.assert_allclose(compiled.predict(one), zeta[:1] - alpha[:1], rtol=1e-6)

    z = keras.Input((2,), name="zeta")
    a = keras.Input((2,), name="alpha")
    layers = keras.layers.Subtract()([z, a])
    traced = _traced_keras(keras.Model({"zeta": z, "alpha": a}, layers), None)
    np.testing.assert_allclose(traced.predict(feed), zeta - alpha, rtol=1e-6)


def test_kept_sizes_answer_as_the_plain_function_and_others_run_plain(
    cnn_dir: Path, plain: Any, xla: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xla, "KEEP_BELOW", float("inf"))  # keep every size whose outputs agree
    predictor = _predictor(cnn_dir)
    line = predictor.compile_small_batches(2)
    assert line.startswith("XLA for batch size(s) 1, 2 (batch 1: XLA, "), line
    assert "; batch 2: XLA, " in line and " us against " in line
    assert predictor.compiled_batch_sizes == (1, 2)
    x = np.random.default_rng(3).uniform(size=(3, 28, 28, 3)).astype(np.float32)
    for n in (1, 2):
        np.testing.assert_allclose(
            predictor.predict(x[:n]), plain.predict(x[:n]), rtol=xla.RTOL, atol=xla.ATOL
        )
    # Three rows were not compiled: the plain function, bit for bit.
    np.testing.assert_array_equal(predictor.predict(x), plain.predict(x))


def test_a_size_that_is_not_faster_stays_plain(
    cnn_dir: Path, plain: Any, xla: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xla, "KEEP_BELOW", 0.0)  # nothing is infinitely faster
    predictor = _predictor(cnn_dir)
    line = predictor.compile_small_batches(1)
    assert line.startswith("XLA not used (batch 1: plain, not faster ("), line
    assert predictor.compiled_batch_sizes == ()
    x = np.random.default_rng(4).uniform(size=(1, 28, 28, 3)).astype(np.float32)
    np.testing.assert_array_equal(predictor.predict(x), plain.predict(x))


def _module_fn(body: Any) -> Any:
    import tensorflow as tf

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def __call__(self, x: Any) -> Any:
            return {"y": body(x)}

    module = Module()
    return module, module.__call__.get_concrete_function()


def _port(xla: ModuleType, dtype: Any = np.float32, shape: tuple[int, ...] = (-1, 2)) -> Any:
    from mlreg.models.tensors import TensorPort

    return TensorPort("x", "x", np.dtype(dtype), shape)


def test_an_op_xla_cannot_compile_keeps_the_plain_function(xla: ModuleType) -> None:
    import tensorflow as tf

    _module, fn = _module_fn(
        lambda x: tf.cast(tf.strings.length(tf.strings.as_string(x)), "float32")
    )
    kept, outcomes = xla.compile_small_batches(fn, [_port(xla)], 1)
    assert kept == {}
    assert [(o.batch, o.kept) for o in outcomes] == [(1, False)]
    assert outcomes[0].reason.startswith("XLA cannot compile it: "), outcomes[0].reason
    assert "AsString" in outcomes[0].reason or "string" in outcomes[0].reason.lower()


def test_outputs_that_differ_keep_the_plain_function(xla: ModuleType) -> None:
    import tensorflow as tf

    _module, fn = _module_fn(lambda x: x + tf.random.uniform(tf.shape(x)))
    kept, outcomes = xla.compile_small_batches(fn, [_port(xla)], 2)
    assert kept == {}
    assert [o.reason for o in outcomes] == ["output 'y' differs from the plain function"] * 2
    assert xla.describe(outcomes) == (
        "XLA not used (batch 1: plain, output 'y' differs from the plain function; "
        "batch 2: plain, output 'y' differs from the plain function)"
    )


@pytest.mark.parametrize(
    ("dtype", "shape", "reason"),
    [
        (np.str_, (-1, 2), "input 'x' is <U0, not numeric"),
        (np.float32, (-1, -1), "input 'x' has a variable dimension besides the batch's"),
        (np.float32, (2, 2), "input 'x' has no batch dimension (shape [2, 2])"),
        (np.float32, (), "input 'x' has no batch dimension (shape [])"),
    ],
)
def test_inputs_that_cannot_be_compiled_for_a_batch_size(
    xla: ModuleType, dtype: Any, shape: tuple[int, ...], reason: str
) -> None:
    port = _port(xla, dtype, shape)
    assert xla.unsupported([port]) == reason
    kept, outcomes = xla.compile_small_batches(None, [port], 4)  # nothing is called
    assert kept == {} and xla.describe(outcomes) == f"XLA not used: {reason}"


def test_integer_and_boolean_inputs_can_be_compiled(xla: ModuleType) -> None:
    assert xla.unsupported([_port(xla, np.int64), _port(xla, np.bool_)]) is None


def test_served_with_xla_answers_as_without(
    cnn_dir: Path, plain: Any, tmp_path: Path, images: np.ndarray
) -> None:
    """``mlreg serve --xla-max-batch 2``: the worker logs what it compiled and answers one,
    two and three images as the plain function does."""
    server = Server(cnn_dir, tmp_path / "server.log", args=("--xla-max-batch", "2"))
    try:
        server.wait_ready()
        line = next(ln for ln in server.log().splitlines() if "batch 1: " in ln)
        assert " mlreg.tensorflow.flavor: " in line and f"{cnn_dir}: XLA " in line
        for n in (1, 2, 3):
            r = server.post("/invocations", {"inputs": images[:n].tolist()})
            assert r.status_code == 200, r.text
            np.testing.assert_allclose(
                np.asarray(r.json()["predictions"]), plain.predict(images[:n]), rtol=1e-3, atol=1e-5
            )
    finally:
        server.stop()
