"""A run: params, metrics (latest, min, max, charts), tags, artifacts with previews, the
versions it produced — and registering one of its models from the browser."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from flask import Response, request

from mlreg.errors import InvalidInput, NotFound, PermissionDenied
from mlreg.models.model import Model
from mlreg.registry.entities import RegisteredModel
from mlreg.server import permissions as perm
from mlreg.server.permissions import Level
from mlreg.server.routes import acting_user
from mlreg.server.routes.registry import registry
from mlreg.server.routes.tracking import tracking
from mlreg.server.streams import send_stream
from mlreg.server.ui.access import can, denied
from mlreg.server.ui.experiments import MAX_POINTS, chart_runs, series
from mlreg.server.ui.pages import action, done, field, link, page, render
from mlreg.server.ui.previews import MLMODEL, image_type, preview
from mlreg.store.files import FileInfo
from mlreg.store.validation import safe_relpath, validate_name
from mlreg.tracking.service import RUNS_SCHEME, USER_TAG

#: How far below the artifact root a model directory is looked for, and how many directories
#: are listed at most while looking (a run with thousands of artifacts stays quick).
MODEL_SEARCH_DEPTH = 3
MODEL_SEARCH_LISTINGS = 200


@dataclass(frozen=True)
class MetricRow:
    """A row of a run's metrics table: the latest value next to the history's summary."""

    key: str
    latest: float
    minimum: float | None
    maximum: float | None
    steps: int
    last_step: int | None


def listing(run_id: str, path: str | None) -> list[FileInfo]:
    """The artifacts directly under ``path`` ([] when the run has none yet)."""
    try:
        return tracking().list_artifacts(run_id, path)
    except NotFound:
        if path:
            raise
        return []


@page(
    "/runs/<run_id>",
    permission=perm.run(Level.READ),
    summary="A run: params, latest metrics with min and max, metric charts, tags, artifacts and "
    "the model versions it produced.",
)
def run(run_id: str) -> Response:
    service = tracking()
    found = service.get_run(run_id)
    experiment = service.get_experiment(found.info.experiment_id)
    # Min, max and counts from the database; the charts get at most MAX_POINTS a metric.
    summaries = [
        MetricRow(s.key, found.data.metrics[s.key], s.minimum, s.maximum, s.count, s.last_step)
        for s in service.get_metric_summaries(run_id)
        if s.key in found.data.metrics
    ]
    histories = {
        s.key: service.get_metric_histories([run_id], s.key, MAX_POINTS).get(run_id, [])
        for s in summaries
    }
    produced = registry().search_model_versions(run_id=run_id, max_results=100).items
    return render(
        "run.html",
        section="experiments",
        run=found,
        experiment=experiment,
        summaries=summaries,
        charts={
            "runs": chart_runs([found]),
            "metrics": {k: [series(h)] for k, h in histories.items()},
        },
        artifacts=listing(run_id, None),
        produced=produced,
        user_tag=USER_TAG,
    )


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


@page(
    "/runs/<run_id>/artifacts",
    permission=perm.run(Level.READ),
    summary="Browse a run's artifacts (?path=): a directory's entries, or a file's preview "
    "(text, JSON, YAML, images, the MLmodel file).",
)
def artifacts(run_id: str) -> Response:
    service = tracking()
    found = service.get_run(run_id)
    path = (request.args.get("path") or "").strip("/")
    if path:
        safe_relpath(path)
    entries = listing(run_id, _parent(path) or None) if path else listing(run_id, None)
    entry = next((e for e in entries if e.path == path), None)
    if path and entry is None:
        raise NotFound(f"no artifact {path!r} in run {run_id}")
    shown = None
    if entry is not None and not entry.is_dir:
        info = found.info
        shown = preview(path, lambda a, b: service.artifacts.open(info, path, a, b))
    elif entry is not None:
        entries = listing(run_id, path)
    crumbs = []
    if path:
        parts = path.split("/")
        crumbs = [("/".join(parts[: i + 1]), part) for i, part in enumerate(parts)]
    return render(
        "artifacts.html",
        section="experiments",
        run=found,
        path=path,
        entries=entries,
        directory=path if entry is None or entry.is_dir else _parent(path),
        shown=shown,
        crumbs=crumbs,
    )


@page(
    "/runs/<run_id>/images/<path:path>",
    permission=perm.run(Level.READ),
    summary="An image artifact (PNG, JPEG, GIF, WebP) as an image, for previews.",
)
def image(run_id: str, path: str) -> Response:
    kind = image_type(safe_relpath(path))
    if kind is None:
        raise InvalidInput(f"{path!r} is not a PNG, JPEG, GIF or WebP image")
    service = tracking()
    info = service.get_run(run_id).info
    response = send_stream(lambda a, b: service.artifacts.open(info, path, a, b), path)
    response.mimetype = kind
    response.headers["Content-Disposition"] = "inline"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- register a model the run logged -----------------------------------------------------------


def model_dirs(run_id: str, limit: int = 50) -> list[str]:
    """Artifact directories of the run that hold an MLmodel file (breadth first, bounded)."""
    found: list[str] = []
    queue: deque[tuple[str | None, int]] = deque([(None, 0)])
    listings = 0
    while queue and len(found) < limit and listings < MODEL_SEARCH_LISTINGS:
        path, depth = queue.popleft()
        try:
            entries = listing(run_id, path)
        except NotFound:
            continue
        listings += 1
        names = {e.path.rpartition("/")[2] for e in entries if not e.is_dir}
        if path and MLMODEL in names:
            found.append(path)
            continue
        if depth < MODEL_SEARCH_DEPTH:
            queue.extend((e.path, depth + 1) for e in entries if e.is_dir)
    return found


@page(
    "/runs/<run_id>/register",
    permission=perm.run(Level.READ),
    summary="Register a model the run logged: choose the artifact (a directory with an MLmodel "
    "file) and a new or existing model, then confirm.",
)
def register_form(run_id: str) -> Response:
    found = tracking().get_run(run_id)
    candidates = model_dirs(run_id)
    artifact = request.args.get("artifact") or (candidates[0] if len(candidates) == 1 else "")
    name = (request.args.get("name") or "").strip()
    models = registry().search_registered_models(order_by="name ASC", max_results=500).items
    error = None
    target: RegisteredModel | None = None
    model: Model | None = None
    ready = False
    if request.args.get("artifact") is not None or name:
        try:
            if artifact not in candidates:
                raise InvalidInput(
                    f"artifact {artifact!r}: expected one of the run's model directories "
                    f"({', '.join(candidates) or 'it has none'})"
                )
            validate_name(name)
            model = Model.load(tracking().artifact_path(run_id, artifact))
            try:
                target = registry().get_registered_model(name)
            except NotFound:
                target = None
            ready = True
        except InvalidInput as e:
            error = e.message
    return render(
        "register.html",
        400 if error else 200,
        section="experiments",
        run=found,
        candidates=candidates,
        artifact=artifact,
        name=name,
        models=models,
        error=error,
        ready=ready,
        target=target,
        model=model,
        source=f"{RUNS_SCHEME}{run_id}/{artifact}" if artifact else None,
    )


@action(
    "/models/<name>/register",
    permission=perm.model(Level.EDIT),
    summary="Register a run's model directory as the next version of a model (created if new).",
)
def register(name: str) -> Response:
    run_id = field("run_id")
    artifact = safe_relpath(field("artifact"))
    # The route's declaration covers the model; reading the run's files needs READ on it too.
    user, reading = acting_user(), perm.run(Level.READ)
    if not can(user, reading, run_id):
        raise PermissionDenied(
            f"registering from run {run_id}: {denied(user, reading, run_id)} (to read its files)"
        )
    validate_name(name)
    local = tracking().artifact_path(run_id, artifact)
    model = Model.load(local)
    service = registry()
    pending = service.begin_version(
        name,
        f"{RUNS_SCHEME}{run_id}/{artifact}",
        run_id,
        None,
        None,
        model.signature.to_json_dict() if model.signature else None,
    )
    made = service.store_files(pending, local)
    return done(
        f"Registered {RUNS_SCHEME}{run_id}/{artifact} as version {made.version} of {name}.",
        link("version", name=name, version=made.version),
    )
