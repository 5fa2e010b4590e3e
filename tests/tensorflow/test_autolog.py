"""Keras autologging, MlregCallback and log_model, training small real models."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mlreg
from mlreg import pyfunc
from mlreg.errors import InvalidInput
from mlreg.registry import default_client
from mlreg.tracking import RunStatus, fluent

# TensorFlow, Keras, mlreg.tensorflow and the zoo come from fixtures (see conftest.py).


def search_list(*args, **kwargs):
    """mlreg.search_runs as a list of Runs (its default is MLflow's DataFrame)."""
    return mlreg.search_runs(*args, output_format="list", **kwargs)


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("tracking_home")]


@pytest.fixture
def autolog(mlreg_tf):
    yield mlreg_tf.autolog
    mlreg_tf.autolog(disable=True)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.uniform(size=[20, 28, 28, 3]).astype(np.float32), rng.integers(2, size=20)


@pytest.fixture
def compiled(keras, zoo) -> Callable[..., Any]:
    """A fresh reference CNN, compiled to train."""

    def make(lr: float = 0.001) -> Any:
        model = zoo.reference_cnn()
        model.compile(
            loss=keras.losses.SparseCategoricalCrossentropy(),
            optimizer=keras.optimizers.Adam(lr),
            metrics=[keras.metrics.SparseCategoricalAccuracy()],
        )
        return model

    return make


def history(run_id: str, key: str) -> list[float]:
    return [m.value for m in fluent.client().get_metric_history(run_id, key)]


def test_reference_docs_example_is_logged_completely(autolog, data, compiled):
    x, y = data
    autolog()
    with mlreg.start_run() as run:
        fitted = compiled().fit(x, y, batch_size=5, epochs=2, validation_split=0.2, verbose=0)
    r = mlreg.get_run(run.info.run_id)
    p = r.data.params
    assert (p["batch_size"], p["epochs"], p["validation_split"]) == ("5", "2", "0.2")
    assert p["opt_name"] == "Adam"
    assert float(p["opt_learning_rate"]) == pytest.approx(0.001)
    assert (p["opt_beta_1"], p["opt_beta_2"], p["opt_epsilon"]) == ("0.9", "0.999", "1e-07")
    assert p["dataset_x_shape"] == "(20, 28, 28, 3)" and p["dataset_x_samples"] == "20"
    assert p["class_weight"] == "False" and p["sample_weight"] == "False"
    assert p["trainable_params"] == p["total_params"] == str(compiled().count_params())
    for key in (
        "loss",
        "val_loss",
        "sparse_categorical_accuracy",
        "val_sparse_categorical_accuracy",
    ):
        assert history(run.info.run_id, key) == pytest.approx(fitted.history[key])
    root = Path(r.info.artifact_uri)
    assert "Total params" in (root / "model_summary.txt").read_text()
    assert any((root / "tensorboard_logs").iterdir())
    loaded = pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.metadata.run_id == run.info.run_id
    assert loaded.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == [-1, 28, 28, 3]
    assert loaded.predict(x[:3]).shape == (3, 2)
    assert mlreg.get_run(run.info.run_id).info.status is RunStatus.FINISHED


def test_without_an_active_run_one_is_started_and_ended(autolog, data, compiled):
    x, y = data
    autolog(registered_model_name="auto-mnist", log_input_examples=True)
    compiled().fit(x, y, epochs=1, verbose=0)
    assert mlreg.active_run() is None
    runs = search_list()
    assert len(runs) == 1 and runs[0].info.status is RunStatus.FINISHED
    version = default_client().get_model_version("auto-mnist", 1)
    assert version.run_id == runs[0].info.run_id
    model = pyfunc.load_model("models:/auto-mnist/1")
    assert model.input_example.shape == (5, 28, 28, 3)
    assert model.predict(model.input_example).shape == (5, 2)


def test_early_stopping_is_logged_and_still_stops_training(autolog, data, keras, compiled):
    x, y = data
    autolog(log_models=False)
    stop = keras.callbacks.EarlyStopping(
        monitor="loss", patience=0, min_delta=10.0, restore_best_weights=True
    )
    with mlreg.start_run() as run:
        fitted = compiled().fit(x, y, epochs=10, callbacks=[stop], verbose=0)
    assert len(fitted.history["loss"]) < 10  # the user's callback still works
    r = mlreg.get_run(run.info.run_id)
    assert r.data.params["es_monitor"] == "loss" and r.data.params["es_patience"] == "0"
    assert r.data.params["es_restore_best_weights"] == "True"
    assert r.data.metrics["stopped_epoch"] == stop.stopped_epoch
    assert r.data.metrics["restored_epoch"] == stop.best_epoch
    assert not (Path(r.info.artifact_uri) / "model").exists()


def test_every_n_steps(autolog, data, compiled):
    x, y = data
    autolog(log_models=False, log_every_n_steps=2)
    with mlreg.start_run() as run:
        compiled().fit(x, y, batch_size=5, epochs=2, verbose=0)  # 4 steps per epoch
    steps = fluent.client().get_metric_history(run.info.run_id, "step_loss")
    assert [m.step for m in steps] == [2, 4, 6, 8]
    assert len(history(run.info.run_id, "loss")) == 2


def test_tf_data_input(autolog, data, tf, compiled):
    x, y = data
    autolog(log_models=True)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(5)
    with mlreg.start_run() as run:
        compiled().fit(dataset, epochs=1, verbose=0, shuffle=False)
    p = mlreg.get_run(run.info.run_id).data.params
    assert p["dataset_x_batches"] == "4"
    assert "TensorSpec(shape=(None, 28, 28, 3)" in p["dataset_x_element_spec"]
    sig = pyfunc.load_model(f"runs:/{run.info.run_id}/model").signature
    assert sig.inputs.to_dict()[0]["tensor-spec"]["shape"] == [-1, 28, 28, 3]


def test_a_failing_fit_marks_the_run_failed(autolog, compiled):
    autolog()
    model = compiled()
    with pytest.raises(ValueError):
        model.fit(np.zeros((4, 5)), np.zeros(4), verbose=0)
    runs = search_list()
    assert [r.info.status for r in runs] == [RunStatus.FAILED]


def test_logging_errors_never_break_training(autolog, data, caplog, compiled):
    x, y = data
    autolog(log_models=False)
    with mlreg.start_run() as run:
        mlreg.log_param("epochs", "999")  # autolog's own 'epochs' param will now conflict
        with caplog.at_level(logging.WARNING, logger="mlreg.tensorflow.autolog"):
            fitted = compiled().fit(x, y, epochs=2, verbose=0)
    assert len(fitted.history["loss"]) == 2
    assert "mlreg autolog: could not log params" in caplog.text
    assert len(history(run.info.run_id, "loss")) == 2  # metrics still logged


def test_disable_restores_fit(autolog, data, keras, compiled):
    x, y = data
    autolog()
    autolog(disable=True)
    assert not getattr(keras.Model.fit, "_mlreg_autolog", False)
    compiled().fit(x, y, epochs=1, verbose=0)
    assert search_list() == []


def test_autolog_argument_errors(autolog):
    with pytest.raises(InvalidInput, match="log_every_n_steps must be >= 1"):
        autolog(log_every_n_steps=0)


def test_mlreg_autolog_is_the_same(data, mlreg_tf, compiled):
    x, y = data
    mlreg.autolog(log_models=False)
    try:
        with mlreg.start_run() as run:
            compiled().fit(x, y, epochs=1, verbose=0)
    finally:
        mlreg_tf.autolog(disable=True)
    assert "loss" in mlreg.get_run(run.info.run_id).data.metrics


def test_explicit_callback(data, mlreg_tf, compiled):
    x, y = data
    with mlreg.start_run() as run:
        compiled().fit(
            x,
            y,
            batch_size=10,
            epochs=3,
            verbose=0,
            callbacks=[mlreg_tf.MlregCallback(run)],
        )
    assert len(history(run.info.run_id, "loss")) == 3
    assert mlreg.get_run(run.info.run_id).data.params == {}  # the callback logs metrics only


def test_log_model_registers_in_one_step(data, keras, mlreg_tf, compiled):
    x, _ = data
    model = compiled()
    with mlreg.start_run() as run:
        info = mlreg_tf.log_model(
            model, name="cnn", input_example=x[:2], registered_model_name="mnist"
        )
    assert info.model_uri == f"runs:/{run.info.run_id}/cnn"
    assert info.registered_model_version.version == 1
    assert info.registered_model_version.run_id == run.info.run_id
    np.testing.assert_allclose(
        pyfunc.load_model("models:/mnist/1").predict(x[:4]), model(x[:4]).numpy(), rtol=1e-5
    )
    native = mlreg_tf.load_model(info.model_uri)
    assert isinstance(native, keras.Model)
    with pytest.raises(InvalidInput, match="expected runs:/<run_id>/<artifact path>"):
        pyfunc.load_model(f"runs:/{run.info.run_id}")


# --- inputs of every shape fit takes: autolog never breaks fit ------------------------------


def _structured_model(keras, structure: str) -> Any:
    """A small regression model whose inputs are a dict, a tuple or a nested dict."""
    keras.utils.set_random_seed(2)
    a, b, c = keras.Input((3,), name="a"), keras.Input((2,), name="b"), keras.Input((1,), name="c")
    h = keras.layers.Dense(1)(keras.layers.Concatenate()([a, b, c]))
    inputs: Any = {
        "dict": {"a": a, "b": b, "c": c},
        "tuple": [a, b, c],
        "nested": {"a": a, "rest": {"b": b, "c": c}},
    }[structure]
    model = keras.Model(inputs, h)
    model.compile(loss="mse", optimizer="sgd")
    return model


def _structured_data(structure: str, n: int = 12) -> tuple[Any, np.ndarray]:
    rng = np.random.default_rng(3)
    a, b, c = (rng.uniform(size=(n, k)).astype(np.float32) for k in (3, 2, 1))
    x = {
        "dict": {"a": a, "b": b, "c": c},
        "tuple": (a, b, c),
        "nested": {"a": a, "rest": {"b": b, "c": c}},
    }[structure]
    return x, rng.uniform(size=(n, 1)).astype(np.float32)


@pytest.mark.parametrize("structure", ["dict", "tuple", "nested"])
@pytest.mark.parametrize("weighted", [False, True], ids=["xy", "xyw"])
def test_structured_tf_data_inputs_never_break_fit(autolog, tf, keras, structure, weighted, caplog):
    x, y = _structured_data(structure)
    element = (x, y, np.ones(len(y), np.float32)) if weighted else (x, y)
    dataset = tf.data.Dataset.from_tensor_slices(element).batch(4)
    autolog(log_input_examples=True)
    model = _structured_model(keras, structure)
    with caplog.at_level(logging.WARNING, logger="mlreg.tensorflow.autolog"):
        fitted = model.fit(dataset, epochs=2, verbose=0, shuffle=False)  # autolog starts a run
    assert len(fitted.history["loss"]) == 2
    [run] = search_list()
    assert run.info.status is RunStatus.FINISHED
    assert len(history(run.info.run_id, "loss")) == 2
    assert run.data.params["dataset_x_batches"] == "3"
    if structure == "nested":
        return  # whatever the export makes of nested inputs, fit and the run are whole
    assert "could not" not in caplog.text
    loaded = pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.signature.inputs.input_names() == ["a", "b", "c"]
    feed = x if isinstance(x, dict) else dict(zip("abc", x, strict=True))
    np.testing.assert_allclose(
        loaded.predict(feed).reshape(-1),
        np.asarray(model.predict(x, verbose=0)).reshape(-1),
        rtol=1e-5,
    )


def test_every_logging_step_that_fails_is_a_warning(autolog, data, compiled, monkeypatch, caplog):
    """Each step of autolog breaks in turn; fit still trains and the run still ends."""
    autolog_module = importlib.import_module("mlreg.tensorflow.autolog")

    def boom(*_: Any, **__: Any) -> Any:
        raise IndexError("too many indices for array")

    x, y = data
    autolog()
    for step in ("_fit_params", "_sample", "_parameter_counts", "_training_logger", "_after_fit"):
        with monkeypatch.context() as patch:
            patch.setattr(autolog_module, step, boom)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="mlreg.tensorflow.autolog"):
                fitted = compiled().fit(x, y, epochs=1, verbose=0)
        assert len(fitted.history["loss"]) == 1, step
        assert "IndexError: too many indices for array" in caplog.text, step
    assert {r.info.status for r in search_list()} == {RunStatus.FINISHED}
