"""``mlreg serve``: run the scoring server (gunicorn) in the foreground."""

from __future__ import annotations

import importlib.util
import logging
import os

import click

from mlreg.cli.options import show_env_vars
from mlreg.cli.registry import with_name_hint
from mlreg.errors import InvalidInput, MissingDependency, MLmodelError, ModelNotFound
from mlreg.models.model import Model
from mlreg.serving.cpus import size_tensorflow_pools
from mlreg.serving.gunicorn_app import run
from mlreg.serving.settings import BACKENDS, LOG_FORMATS, LOG_LEVELS, ServingSettings
from mlreg.uris import ResolvedModel, movable, resolve_model_uri
from mlreg.version import __version__
from mlreg.web.gunicorn import check_bind
from mlreg.web.logs import configure_logging

logger = logging.getLogger("mlreg.serve")


@click.command("serve")
@click.option(
    "-m",
    "--model-uri",
    default=None,
    help="Model to serve: a path, file://, models:/name/N|stage|latest or models:/name@alias.",
)
@click.option(
    "--model-name",
    default=None,
    help="The name TF Serving and V2 clients use (default: the registered name, else the "
    "directory's name).",
)
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("-p", "--port", type=int, default=None, help="Port to bind (default 8080).")
@click.option(
    "--grpc-port",
    type=int,
    default=None,
    help="Also serve the Open Inference Protocol's gRPC service on this port.",
)
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@click.option("--threads", type=int, default=None, help="Request threads per worker (default 4).")
@click.option("--timeout", type=float, default=None, help="Request timeout in seconds (60).")
@click.option(
    "--read-timeout",
    type=float,
    default=None,
    help="Seconds a client has to send a whole request (30); then 408.",
)
@click.option("--graceful-timeout", type=float, default=None, help="Shutdown grace period (30).")
@click.option(
    "--max-request-bytes",
    type=int,
    default=None,
    help="Body size limit (default: what 256 rows of the signature take as JSON, 1-100 MiB).",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default=None,
    help="text, or json for one JSON line per request.",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default=None,
    help="Default: info.",
)
@click.option("--batch-max-size", type=int, default=None, help="Merge requests up to N rows.")
@click.option("--batch-timeout-ms", type=float, default=None, help="Wait for a batch (2 ms).")
@click.option(
    "--xla-max-batch",
    type=int,
    default=None,
    metavar="N",
    help="Compile batches of 1..N rows with XLA where that is as exact and faster (0, off).",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    help="local: run the model in this process (default); tfserving: forward to TF Serving.",
)
@click.option("--tfserving-target", default=None, help="TF Serving's gRPC HOST:PORT.")
@click.option(
    "--tfserving-model-name",
    default=None,
    help="The model's name in TF Serving (default: the registered name, else 'model').",
)
@click.option(
    "--tfserving-model-version", type=int, default=None, help="Pin a version (default: latest)."
)
@click.option("--tfserving-version-label", default=None, help="Or call a version label.")
@click.option("--tfserving-signature", default=None, help="Signature name (serving_default).")
@click.option(
    "--tfserving-timeout-ms", type=float, default=None, help="Deadline per call (5000 ms)."
)
@click.option(
    "--follow",
    is_flag=True,
    default=None,
    help="Serve whatever version the stage or alias names now: poll it, and swap in each new "
    "version once it is loaded and warmed up.",
)
@click.option(
    "--poll-interval", default=None, help="How often --follow looks (default 30s; 500ms, 2m)."
)
@click.option(
    "--allow-signature-change",
    is_flag=True,
    default=None,
    help="--follow: swap in a version even if its signature breaks the served one's clients.",
)
@click.option(
    "--log-predictions",
    default=None,
    metavar="DIR|URL",
    help="Log sampled requests and answers: JSON lines in DIR, or CloudEvents POSTed to URL.",
)
@click.option(
    "--log-sample-rate", type=float, default=None, help="Fraction of requests logged (1.0)."
)
def serve(model_uri: str | None, **flags: object) -> None:
    """Serve a model (MLflow, TF Serving and V2 APIs).

    MLflow's POST /invocations, TF Serving's REST predict and the Open Inference Protocol
    (V2) over REST and gRPC, with the model's signature enforced on every request; every flag
    is also an MLREG_* variable.

    \b
    Examples:
      mlreg serve -m models:/mnist/Production --port 8080 --workers 2
      mlreg serve -m models:/mnist@champion --follow --poll-interval 30s --grpc-port 8081
      mlreg serve -m ./mnist-cnn --backend tfserving --tfserving-target localhost:8500
    """
    settings = ServingSettings.from_env(os.environ, model_uri=model_uri, **flags)
    if not settings.model_uri:
        raise click.UsageError("no model to serve: pass -m URI or set MLREG_MODEL_URI")
    if settings.follow and not movable(settings.model_uri):
        raise InvalidInput(
            f"--follow needs a URI that can name another version later: models:/name@alias, "
            f"models:/name/<stage> or models:/name/latest, not {settings.model_uri!r}"
        )
    # Resolve once, here: every worker starts on the same version, and keeps it unless it
    # follows the URI (then each worker polls it and swaps when it moves).
    try:
        source = resolve_model_uri(settings.model_uri)
    except ModelNotFound as e:  # `-m iris` for a registered model: say which URI it needs
        raise with_name_hint(e, settings.model_uri) from None
    mlmodel = Model.load(source.path)
    if "python_function" not in mlmodel.flavors:
        raise MLmodelError(f"{source.path}: the model has no python_function flavor to serve")
    check_bind(settings.host, settings.port)
    if settings.grpc_port is not None:
        if importlib.util.find_spec("tritonclient") is None:
            raise MissingDependency(
                "--grpc-port needs the V2 gRPC protos from tritonclient: "
                "pip install 'mlreg[grpc]' (or 'tritonclient[grpc]')"
            )
        check_bind(settings.host, settings.grpc_port)
    # TensorFlow's C++ logging (oneDNN, CPU features, absl) is plain text on stderr, twice
    # per worker: quiet unless asked for with --log-level debug or TF_CPP_MIN_LOG_LEVEL.
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if settings.log_level == "debug" else "2"
    if settings.backend == "tfserving":
        computed = f"computed by TF Serving at {settings.tfserving_target}"
    else:
        # TensorFlow's pools, made in each worker when it starts: split the CPUs among them.
        computed = size_tensorflow_pools(os.environ, settings.workers)
    configure_logging(settings.log_format, settings.log_level)
    _banner(settings, source, computed)
    run(settings, source)


show_env_vars(serve, ServingSettings)


def _banner(settings: ServingSettings, source: ResolvedModel, computed: str) -> None:
    """One line (JSON in JSON mode) saying what is served: the URI, what it resolved to and
    what computes it."""
    resolved = "a model directory" if source.version is None else f"version {source.version}"
    if source.digest:
        resolved += f", sha256:{source.digest.split(':')[-1][:12]}"
    following = f"; following it every {settings.poll_interval:g} s" if settings.follow else ""
    grpc = f" and gRPC on port {settings.grpc_port}" if settings.grpc_port is not None else ""
    logger.info(
        f"mlreg {__version__} serving {settings.model_uri} -> {resolved} on "
        f"http://{settings.bind}{grpc} ({settings.workers} worker(s) x {settings.threads} "
        f"threads, {computed}{following})",
        extra={
            "mlreg_version": __version__,
            "model_uri": settings.model_uri,
            "model_name": source.name,
            "model_version": source.version,
            "model_digest": source.digest,
            "bind": settings.bind,
        },
    )
