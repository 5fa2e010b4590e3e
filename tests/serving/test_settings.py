"""ServingSettings: MLREG_* variables read once, flags override, bad values name the variable."""

from __future__ import annotations

import pytest

from mlreg.errors import InvalidInput
from mlreg.serving.backends import LOADERS
from mlreg.serving.gunicorn_app import gunicorn_options
from mlreg.serving.settings import BACKENDS, ServingSettings


def test_defaults() -> None:
    s = ServingSettings.from_env({})
    assert (s.host, s.port, s.workers, s.threads) == ("127.0.0.1", 8080, 1, 4)
    assert (s.timeout, s.graceful_timeout, s.inline_ms, s.xla_max_batch) == (60.0, 30.0, 0.0, 0)
    assert s.max_request_bytes is None  # derived from the signature
    assert (s.log_format, s.log_level) == ("text", "info")
    assert (s.batch_max_size, s.batch_timeout_ms, s.batching) == (0, 2.0, False)
    assert s.model_uri is None and s.backend == "local"


def test_every_variable() -> None:
    env = {
        "MLREG_MODEL_URI": "models:/mnist/Production",
        "MLREG_HOST": "0.0.0.0",
        "MLREG_PORT": "9000",
        "MLREG_WORKERS": "3",
        "MLREG_THREADS": "8",
        "MLREG_TIMEOUT": "2.5",
        "MLREG_INLINE_MS": "2",
        "MLREG_GRACEFUL_TIMEOUT": "10",
        "MLREG_MAX_REQUEST_BYTES": "1000",
        "MLREG_LOG_FORMAT": "JSON",
        "MLREG_LOG_LEVEL": "debug",
        "MLREG_BATCH_MAX_SIZE": "16",
        "MLREG_BATCH_TIMEOUT_MS": "5",
        "MLREG_BACKEND": "tfserving",
        "MLREG_TFSERVING_TARGET": "localhost:8500",
        "MLREG_TFSERVING_MODEL_NAME": "mnist",
        "MLREG_TFSERVING_VERSION_LABEL": "stable",
        "MLREG_TFSERVING_SIGNATURE": "predict",
        "MLREG_TFSERVING_TIMEOUT_MS": "250",
        "OTHER": "ignored",
    }
    s = ServingSettings.from_env(env)
    assert s == ServingSettings(
        model_uri="models:/mnist/Production",
        host="0.0.0.0",
        port=9000,
        workers=3,
        threads=8,
        timeout=2.5,
        inline_ms=2,
        graceful_timeout=10,
        max_request_bytes=1000,
        log_format="json",
        log_level="debug",
        batch_max_size=16,
        batch_timeout_ms=5,
        backend="tfserving",
        tfserving_target="localhost:8500",
        tfserving_model_name="mnist",
        tfserving_version_label="stable",
        tfserving_signature="predict",
        tfserving_timeout_ms=250,
    )
    assert s.batching and s.bind == "0.0.0.0:9000"


def test_flags_override_the_environment_and_none_does_not() -> None:
    s = ServingSettings.from_env(
        {"MLREG_PORT": "9000", "MLREG_WORKERS": "2"}, port=7000, workers=None
    )
    assert (s.port, s.workers) == (7000, 2)


def test_xla_max_batch_from_the_variable_or_the_flag() -> None:
    assert ServingSettings.from_env({"MLREG_XLA_MAX_BATCH": "4"}).xla_max_batch == 4
    flagged = ServingSettings.from_env({"MLREG_XLA_MAX_BATCH": "4"}, xla_max_batch=1)
    assert flagged.xla_max_batch == 1


def test_empty_variables_mean_default() -> None:
    assert ServingSettings.from_env({"MLREG_PORT": " "}).port == 8080


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLREG_PORT": "http"}, "MLREG_PORT: expected an integer, got 'http'"),
        ({"MLREG_PORT": "70000"}, "MLREG_PORT: expected a port number 0-65535, got 70000"),
        ({"MLREG_WORKERS": "0"}, "MLREG_WORKERS: expected an integer >= 1, got 0"),
        ({"MLREG_THREADS": "1.5"}, "MLREG_THREADS: expected an integer, got '1.5'"),
        ({"MLREG_TIMEOUT": "soon"}, "MLREG_TIMEOUT: expected a number, got 'soon'"),
        ({"MLREG_TIMEOUT": "0"}, "MLREG_TIMEOUT: expected a number of seconds > 0, got 0.0"),
        ({"MLREG_INLINE_MS": "-1"}, "MLREG_INLINE_MS: expected >= 0 (0 = off), got -1.0"),
        (
            {"MLREG_XLA_MAX_BATCH": "65"},
            "MLREG_XLA_MAX_BATCH: expected an integer 0-64 (0 = off), got 65",
        ),
        (
            {
                "MLREG_XLA_MAX_BATCH": "1",
                "MLREG_BACKEND": "tfserving",
                "MLREG_TFSERVING_TARGET": "localhost:8500",
            },
            "MLREG_XLA_MAX_BATCH: XLA compiles models computed in mlreg; with the tfserving "
            "backend, TF Serving computes them (its --xla_cpu_compilation_enabled)",
        ),
        ({"MLREG_MAX_REQUEST_BYTES": "-1"}, "MLREG_MAX_REQUEST_BYTES: expected > 0, got -1"),
        ({"MLREG_LOG_FORMAT": "xml"}, "MLREG_LOG_FORMAT: expected one of text, json, got 'xml'"),
        (
            {"MLREG_LOG_LEVEL": "loud"},
            "MLREG_LOG_LEVEL: expected one of debug, info, warning, error, critical, got 'loud'",
        ),
        ({"MLREG_BATCH_MAX_SIZE": "-2"}, "MLREG_BATCH_MAX_SIZE: expected >= 0 (0 = off), got -2"),
        ({"MLREG_BACKEND": "tf"}, "MLREG_BACKEND: expected one of local, tfserving, got 'tf'"),
        (
            {"MLREG_BACKEND": "tfserving"},
            "MLREG_TFSERVING_TARGET: expected HOST:PORT of TensorFlow Serving's gRPC port "
            "when the backend is tfserving",
        ),
        (
            {"MLREG_TFSERVING_MODEL_VERSION": "0"},
            "MLREG_TFSERVING_MODEL_VERSION: expected >= 1, got 0",
        ),
        (
            {"MLREG_TFSERVING_MODEL_VERSION": "2", "MLREG_TFSERVING_VERSION_LABEL": "stable"},
            "MLREG_TFSERVING_MODEL_VERSION and MLREG_TFSERVING_VERSION_LABEL are exclusive: "
            "set one",
        ),
        ({"MLREG_TFSERVING_TIMEOUT_MS": "0"}, "MLREG_TFSERVING_TIMEOUT_MS: expected > 0, got 0.0"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_invalid_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput) as e:
        ServingSettings.from_env(env)
    assert e.value.message == message


def test_gunicorn_options() -> None:
    opts = gunicorn_options(ServingSettings(workers=2, threads=3, timeout=5, graceful_timeout=2.5))
    assert opts["bind"] == ["127.0.0.1:8080"]
    assert (opts["workers"], opts["threads"], opts["graceful_timeout"]) == (2, 3, 3)
    assert opts["worker_class"] == "mlreg.web.worker.AsyncWorker"
    assert opts["timeout"] == 35  # the last-resort guard stays above the request timeout
    assert opts["preload_app"] is False  # never TensorFlow in the master
    assert ServingSettings(host="::1").bind == "[::1]:8080"


def test_every_backend_setting_has_a_loader() -> None:
    assert sorted(LOADERS) == sorted(BACKENDS)
