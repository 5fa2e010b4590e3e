"""Keras autologging and ``MlregCallback``.

``autolog()`` wraps ``keras.Model.fit``: around each fit it logs params, dataset shapes,
per-epoch (or per-N-step) metrics, early-stopping results, the model summary, TensorBoard
logs and the trained model. Logging never breaks training: a failure is a logged
warning. Custom training loops do not call ``fit`` and are not logged; use
``MlregCallback`` or the fluent API there.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mlreg.errors import InvalidInput
from mlreg.models.infer import infer_signature
from mlreg.tensorflow.log import log_model
from mlreg.tracking import fluent
from mlreg.tracking.entities import Metric
from mlreg.tracking.service import now_ms

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AutologConfig:
    """What ``autolog()`` logs around each ``fit`` (its defaults are ``autolog()``'s)."""

    log_models: bool
    log_input_examples: bool
    log_model_signatures: bool
    log_every_n_steps: int | None
    log_tensorboard: bool
    registered_model_name: str | None

    def __post_init__(self) -> None:
        _check_every_n_steps(self.log_every_n_steps)


#: None while autologging is off.
_config: AutologConfig | None = None
_original_fit: Any = None
_patch_lock = threading.Lock()
FLUSH_EVERY = 500  # buffered step metrics written per transaction


def _check_every_n_steps(n: int | None) -> None:
    if n is not None and n < 1:
        raise InvalidInput(f"log_every_n_steps must be >= 1, got {n}")


def _safely(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # autologging must never break training
        logger.warning("mlreg autolog: could not %s: %s: %s", what, type(e).__name__, e)
        return None


class MlregCallback(keras.callbacks.Callback):
    """Log epoch metrics (and every N steps, if asked) to a run."""

    def __init__(
        self, run: Any = None, log_every_epoch: bool = True, log_every_n_steps: int | None = None
    ) -> None:
        super().__init__()
        _check_every_n_steps(log_every_n_steps)
        self._run_id = run.info.run_id if run is not None else None
        self.log_every_epoch = log_every_epoch
        self.log_every_n_steps = log_every_n_steps
        self._buffer: list[Metric] = []
        self._step = 0

    @property
    def run_id(self) -> str:
        if self._run_id is None:
            self._run_id = fluent.active_run_id()
        return self._run_id

    def _flush(self) -> None:
        if self._buffer:
            batch, self._buffer = self._buffer, []
            _safely("log metrics", fluent.client().log_batch, self.run_id, metrics=batch)

    def _add(self, logs: dict[str, Any] | None, step: int, prefix: str = "") -> None:
        ts = now_ms()
        for key, value in (logs or {}).items():
            try:
                self._buffer.append(Metric(f"{prefix}{key}", float(value), ts, step))
            except (TypeError, ValueError):
                continue

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._step = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._step += 1
        if self.log_every_n_steps and self._step % self.log_every_n_steps == 0:
            self._add(logs, self._step, prefix="step_")
            if len(self._buffer) >= FLUSH_EVERY:
                self._flush()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.log_every_epoch:
            self._add(logs, epoch)
        self._flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._flush()


def _optimizer_params(model: keras.Model) -> dict[str, Any]:
    opt = getattr(model, "optimizer", None)
    if opt is None:
        return {}
    params: dict[str, Any] = {"opt_name": type(opt).__name__}
    config = opt.get_config()
    for key, value in config.items():
        if key == "name":
            continue
        if isinstance(value, bool | int | float | str) or value is None:
            params[f"opt_{key}"] = value
        elif isinstance(value, dict) and "class_name" in value:  # a learning-rate schedule
            params[f"opt_{key}"] = value["class_name"]
    if "opt_learning_rate" not in params and hasattr(opt, "learning_rate"):
        params["opt_learning_rate"] = float(keras.ops.convert_to_numpy(opt.learning_rate))
    return params


def _describe_data(prefix: str, data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if isinstance(data, np.ndarray):
        return {f"{prefix}_shape": str(tuple(data.shape)), f"{prefix}_samples": data.shape[0]}
    if isinstance(data, dict):
        return {f"{prefix}_shape": str({k: tuple(np.shape(v)) for k, v in data.items()})}
    if isinstance(data, list | tuple):
        return {f"{prefix}_shape": str([tuple(np.shape(v)) for v in data])}
    if isinstance(data, tf.data.Dataset):
        out: dict[str, Any] = {f"{prefix}_element_spec": str(data.element_spec)}
        cardinality = int(data.cardinality())
        if cardinality >= 0:
            out[f"{prefix}_batches"] = cardinality
        return out
    return {f"{prefix}_type": type(data).__name__}


def _fit_params(model: keras.Model, args: inspect.BoundArguments) -> dict[str, Any]:
    a = args.arguments
    x = a.get("x")
    params: dict[str, Any] = {
        "batch_size": a.get("batch_size")
        or (32 if isinstance(x, np.ndarray | dict | list | tuple) else None),
        "epochs": a.get("epochs", 1),
        "steps_per_epoch": a.get("steps_per_epoch"),
        "validation_steps": a.get("validation_steps"),
        "validation_split": a.get("validation_split", 0.0),
        "initial_epoch": a.get("initial_epoch", 0),
        "shuffle": a.get("shuffle", True),
        "class_weight": a.get("class_weight") is not None,
        "sample_weight": a.get("sample_weight") is not None,
    }
    params.update(_optimizer_params(model))
    params.update(_describe_data("dataset_x", x))
    params.update(_describe_data("dataset_y", a.get("y")))
    for cb in a.get("callbacks") or []:
        if isinstance(cb, keras.callbacks.EarlyStopping):
            for key in (
                "monitor",
                "min_delta",
                "patience",
                "baseline",
                "restore_best_weights",
                "mode",
            ):
                params[f"es_{key}"] = getattr(cb, key, None)
    return {k: v for k, v in params.items() if v is not None}


def _features(element: Any) -> Any:
    """The model's input part of a dataset element: ``(x, y)`` and ``(x, y, w)`` are Keras's
    convention; anything else (an array, a dict) is the input itself."""
    if isinstance(element, tuple) and len(element) in (2, 3):
        return element[0]
    return element


def _sample(x: Any, model: keras.Model | None = None, n: int = 5) -> Any:
    """The first ``n`` rows of the training input, as numpy (nested like the input), or None.

    Arrays, dicts, lists and tuples of arrays (nested too), and ``tf.data`` datasets of any
    of these; a list or tuple becomes a dict keyed by the model's input names when it names
    them, so the signature and the example carry names.
    """
    if isinstance(x, tf.data.Dataset):
        x = _features(next(iter(x.take(1))))
    leaves = tf.nest.flatten(x)
    if not leaves or not all(
        isinstance(v, np.ndarray | tf.Tensor) and np.ndim(v) >= 1 for v in leaves
    ):
        return None
    sample = tf.nest.map_structure(lambda v: np.asarray(v)[:n], x)
    if isinstance(sample, list | tuple):
        names = [getattr(t, "name", None) for t in (getattr(model, "inputs", None) or [])]
        if len(sample) == 1:
            return sample[0]
        if len(names) == len(sample) and all(names) and len(set(names)) == len(names):
            return dict(zip(names, sample, strict=True))
    return sample


def _after_fit(
    config: AutologConfig,
    model: keras.Model,
    args: inspect.BoundArguments,
    run_id: str,
    tb_dir: str | None,
) -> None:
    """Log what a finished ``fit`` leaves: each step on its own, none can raise."""
    c = fluent.client()
    for cb in args.arguments.get("callbacks") or []:
        if isinstance(cb, keras.callbacks.EarlyStopping):
            _safely("log early stopping", c.log_batch, run_id, metrics=_early_stopping(cb))
    lines: list[str] = []
    _safely("summarise the model", model.summary, print_fn=lambda s, **_: lines.append(s))
    if lines:
        _safely("log the model summary", c.log_text, run_id, "\n".join(lines), "model_summary.txt")
    _safely("log parameter counts", c.log_batch, run_id, params=_parameter_counts(model))
    if tb_dir is not None:
        _safely("log TensorBoard logs", c.log_artifacts, run_id, tb_dir, "tensorboard_logs")
    if not config.log_models:
        return
    sample = _safely("take an input example", _sample, args.arguments.get("x"), model)
    signature = None
    if sample is not None and config.log_model_signatures:
        signature = _safely(
            "infer the signature",
            lambda: infer_signature(
                sample,
                keras.tree.map_structure(keras.ops.convert_to_numpy, model(sample, training=False)),
            ),
        )
    example = sample if config.log_input_examples else None
    _safely(
        "log the model",
        log_model,
        model,
        "model",
        signature=signature,
        input_example=example,
        registered_model_name=config.registered_model_name,
    )


def _early_stopping(cb: keras.callbacks.EarlyStopping) -> list[tuple[str, Any, None, None]]:
    metrics: list[tuple[str, Any, None, None]] = [("stopped_epoch", cb.stopped_epoch, None, None)]
    if cb.restore_best_weights and getattr(cb, "best_epoch", None) is not None:
        metrics.append(("restored_epoch", cb.best_epoch, None, None))
    return metrics


def _parameter_counts(model: keras.Model) -> dict[str, int]:
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    frozen = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {
        "trainable_params": trainable,
        "non_trainable_params": frozen,
        "total_params": trainable + frozen,
    }


def _training_logger(log_dir: str) -> keras.callbacks.Callback:
    """TensorBoard event files when TensorBoard is installed, else a CSV of the same metrics."""
    if importlib.util.find_spec("tensorboard") is not None:
        return keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False)
    return keras.callbacks.CSVLogger(str(Path(log_dir) / "training_log.csv"))


class _FitLogging:
    """What autolog does around one ``fit``. Every step is wrapped: whatever fails in
    logging is a warning, and ``fit`` runs (and fails) exactly as it would without it."""

    def __init__(self, config: AutologConfig, run: Any, started: bool) -> None:
        self.config = config
        self.run_id: str = run.info.run_id
        self.run = run
        self.started = started
        self.tb: tempfile.TemporaryDirectory[str] | None = None
        self.training_log: keras.callbacks.Callback | None = None

    def prepare(self, model: keras.Model, bound: inspect.BoundArguments) -> None:
        """Log the params and add mlreg's callbacks to ``bound``."""
        params = _safely("describe the fit", _fit_params, model, bound)
        if params:
            _safely("log params", lambda: fluent.client().log_batch(self.run_id, params=params))
        callbacks = list(bound.arguments.get("callbacks") or [])
        callbacks.append(
            MlregCallback(
                self.run, log_every_epoch=True, log_every_n_steps=self.config.log_every_n_steps
            )
        )
        if self.config.log_tensorboard and not any(
            isinstance(cb, keras.callbacks.TensorBoard) for cb in callbacks
        ):
            self.tb = tempfile.TemporaryDirectory(prefix="mlreg-tb-")
            self.training_log = _training_logger(self.tb.name)
            callbacks.append(self.training_log)
        bound.arguments["callbacks"] = callbacks

    def finished(self, model: keras.Model, bound: inspect.BoundArguments) -> None:
        tb_dir = self.tb.name if self.tb else None
        _safely("log after fit", _after_fit, self.config, model, bound, self.run_id, tb_dir)
        if self.started:
            _safely("end the run", fluent.end_run)

    def failed(self, error: BaseException) -> None:
        if self.started:
            status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
            _safely("end the run", fluent.end_run, status)

    def cleanup(self) -> None:
        # A fit that raised never reached on_train_end, which closes the CSV log.
        csv_file = getattr(self.training_log, "csv_file", None)
        if csv_file is not None and not csv_file.closed:
            _safely("close the training log", csv_file.close)
        if self.tb is not None:
            _safely("remove the TensorBoard logs", self.tb.cleanup)


def _begin(config: AutologConfig, sig: inspect.Signature, args: tuple, kwargs: dict) -> Any:
    """Bind ``fit``'s arguments and find or start the run: (logging, bound), or None."""
    # No apply_defaults(): passing every default explicitly makes Keras warn (shuffle).
    bound = sig.bind(*args, **kwargs)
    started = fluent.active_run() is None
    run = fluent.start_run() if started else fluent.active_run()
    return _FitLogging(config, run, started), bound


def _patched_fit(original: Any) -> Any:
    sig = inspect.signature(original)

    @functools.wraps(original)
    def fit(self: keras.Model, *args: Any, **kwargs: Any) -> Any:
        config = _config  # one fit runs with one configuration, whatever autolog() does meanwhile
        if config is None:
            return original(self, *args, **kwargs)
        begun = _safely("start logging", _begin, config, sig, (self, *args), kwargs)
        if begun is None:
            return original(self, *args, **kwargs)
        logging_, bound = begun
        try:
            _safely("prepare logging", logging_.prepare, self, bound)
            try:
                history = original(*bound.args, **bound.kwargs)
            except BaseException as e:
                logging_.failed(e)
                raise
            logging_.finished(self, bound)
            return history
        finally:
            logging_.cleanup()

    fit._mlreg_autolog = True  # type: ignore[attr-defined]
    return fit


def autolog(
    log_models: bool = True,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_every_n_steps: int | None = None,
    log_tensorboard: bool = True,
    registered_model_name: str | None = None,
    disable: bool = False,
) -> None:
    """Log every ``keras.Model.fit`` from now on (``disable=True`` undoes it)."""
    global _config, _original_fit
    with _patch_lock:
        if disable:
            if _original_fit is not None:
                keras.Model.fit = _original_fit
                _original_fit = None
            _config = None
            return
        _config = AutologConfig(
            log_models=log_models,
            log_input_examples=log_input_examples,
            log_model_signatures=log_model_signatures,
            log_every_n_steps=log_every_n_steps,
            log_tensorboard=log_tensorboard,
            registered_model_name=registered_model_name,
        )
        if _original_fit is None:
            _original_fit = keras.Model.fit
            keras.Model.fit = _patched_fit(_original_fit)
