"""Experiments and their runs: the runs table (chosen columns, sorting, MLflow's filter syntax,
paging) and the comparison of selected runs (charts of metric histories, params side by side)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import Response, request

from mlreg.errors import InvalidInput, NotFound
from mlreg.server import permissions as perm
from mlreg.server.api import ok
from mlreg.server.permissions import Level
from mlreg.server.routes.tracking import tracking
from mlreg.server.ui import format as fmt
from mlreg.server.ui.pages import link, page, render, start_param
from mlreg.tracking.entities import Lifecycle, Metric, Run, ViewType, thinned
from mlreg.tracking.service import USER_TAG, TrackingService

RUNS_PER_PAGE = 100
EXPERIMENTS_PER_PAGE = 100
#: Columns shown when the user has chosen none: the first metrics and params (by name).
DEFAULT_METRICS = 8
DEFAULT_PARAMS = 6
KINDS = ("metrics", "params", "tags")
ATTRIBUTES = {"run_name": "Run", "start_time": "Started", "status": "Status"}
MAX_COMPARE = 100
#: Points per series sent to a chart: longer histories are thinned evenly (the last kept).
MAX_POINTS = 2000
X_AXES = ("step", "relative", "wall")
#: Which runs the table lists (``?view=``): deleted ones only when asked, as in MLflow.
VIEWS = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY}
#: Metrics one chart-data request may ask for (the page asks a few at a time, to draw early).
MAX_KEYS = 50
#: What a run id may look like in a URL (mlreg's are 32 hex digits; imported ones vary).
RUN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def find_runs(
    service: TrackingService,
    experiment_id: str,
    ids: Iterable[str],
    view: ViewType = ViewType.ACTIVE_ONLY,
) -> dict[str, Run]:
    """The runs of ``experiment_id`` among ``ids``, by id, in one search (ids of other
    experiments, of no run, or of runs ``view`` leaves out, are absent)."""
    wanted = list(dict.fromkeys(ids))
    for run_id in wanted:
        if not RUN_ID.fullmatch(run_id):
            raise InvalidInput(f"run id {run_id!r}: expected letters, digits, '_' or '-'")
    if not wanted:
        return {}
    listed = ", ".join(f"'{run_id}'" for run_id in wanted)
    page = service.search_runs_page(
        [experiment_id], f"attributes.run_id IN ({listed})", None, len(wanted), view=view
    )
    return {r.info.run_id: r for r in page.items}


def runs_anywhere(service: TrackingService, ids: Iterable[str]) -> dict[str, Run]:
    """Runs by id, whatever their experiments and lifecycle (a version's lineage still names a
    deleted run): one lookup finds a run's experiment, one search finds every other wanted run
    of it (a model's versions come from few experiments)."""
    remaining = {i for i in ids if RUN_ID.fullmatch(i)}  # anything else names no run we have
    found: dict[str, Run] = {}
    while remaining:
        probe = remaining.pop()
        try:
            run = service.get_run(probe)
        except NotFound:
            continue
        found[probe] = run
        batch = find_runs(service, run.info.experiment_id, sorted(remaining), ViewType.ALL)
        found.update(batch)
        remaining -= batch.keys()
    return found


@dataclass(frozen=True)
class Column:
    """A chosen column of the runs table: ``metrics.loss``, ``params.lr``, ``tags.team``."""

    kind: str
    key: str

    @property
    def spec(self) -> str:
        return f"{self.kind}.{self.key}"

    def order(self, descending: bool) -> str:
        return f"{self.kind}.`{self.key}` {'DESC' if descending else 'ASC'}"

    def value(self, run: Run) -> object:
        data = getattr(run.data, self.kind)
        return data.get(self.key)


@dataclass(frozen=True)
class TableRow:
    """One run of the runs table, formatted here once (a template's per-cell filters and
    macros cost more than the database does for a page of 100 runs)."""

    run_id: str
    name: str
    href: str
    status: str
    started_iso: str
    started: str
    started_ago: str
    duration: str
    user: str
    #: (css class, text or None) per chosen column.
    cells: list[tuple[str, str | None]]


def table_rows(runs: list[Run], columns: list[Column]) -> list[TableRow]:
    now = datetime.now(timezone.utc)
    rows = []
    for run in runs:
        info = run.info
        cells: list[tuple[str, str | None]] = []
        for column in columns:
            value = column.value(run)
            if column.kind == "metrics":
                cells.append(("num", None if value is None else fmt.number(value)))  # type: ignore[arg-type]
            else:
                cells.append(("wrap", None if value is None else str(value)))
        rows.append(
            TableRow(
                info.run_id,
                info.run_name,
                link("run", run_id=info.run_id),
                info.status.value,
                fmt.iso(info.start_time),
                fmt.when(info.start_time),
                fmt.ago(info.start_time, now),
                fmt.duration(info.start_time, info.end_time),
                run.data.tags.get(USER_TAG, ""),
                cells,
            )
        )
    return rows


def parse_column(spec: str) -> Column:
    kind, sep, key = spec.partition(".")
    if not sep or kind not in KINDS or not key:
        raise InvalidInput(f"column {spec!r}: expected metrics.KEY, params.KEY or tags.KEY")
    return Column(kind, key)


def parse_order(text: str) -> tuple[str, bool]:
    """``metrics.`loss` DESC`` -> (``metrics.loss``, True), to mark the sorted column."""
    words = text.rsplit(" ", 1)
    descending = len(words) == 2 and words[1].upper() == "DESC"
    spec = words[0] if len(words) == 2 and words[1].upper() in ("ASC", "DESC") else text
    kind, _, key = spec.partition(".")
    return f"{kind}.{key.strip('`')}" if key else spec, descending


@page(
    "/experiments",
    permission=perm.server(Level.READ),
    summary="Experiments, with their tags (filter by name).",
)
def experiments() -> Response:
    query = (request.args.get("q") or "").strip()
    offset = start_param()
    found = tracking().search_experiments(
        f"%{query}%" if query else None, EXPERIMENTS_PER_PAGE, offset
    )
    return render(
        "experiments.html",
        section="experiments",
        experiments=found.items,
        query=query,
        start=offset,
        next_start=found.next_offset,
        prev_start=max(offset - EXPERIMENTS_PER_PAGE, 0) if offset else None,
    )


@page(
    "/experiments/<experiment_id>",
    permission=perm.experiment(Level.READ),
    summary="The runs of an experiment: chosen param/metric/tag columns, sorting, MLflow's "
    "filter syntax, 100 runs a page; select runs to compare them.",
)
def experiment(experiment_id: str) -> Response:
    service = tracking()
    exp = service.get_experiment(experiment_id)
    filter_text = (request.args.get("filter") or "").strip()
    order = (request.args.get("order_by") or "").strip()
    chosen = request.args.getlist("col")
    view = request.args.get("view") or "active"
    custom = request.args.get("cols") == "1" or bool(chosen)
    error = None
    runs: list[Run] = []
    next_start = None
    offset = 0
    columns: list[Column] = []
    try:
        offset = start_param()
        if view not in VIEWS:
            raise InvalidInput(
                f"query parameter 'view': expected one of {', '.join(VIEWS)}, got {view!r}"
            )
        columns = [parse_column(c) for c in dict.fromkeys(chosen)]
        found = service.search_runs_page(
            [experiment_id],
            filter_text or None,
            [order] if order else None,
            RUNS_PER_PAGE,
            offset,
            view=VIEWS[view],
        )
        runs, next_start = found.items, found.next_offset
    except InvalidInput as e:
        error = e.message
    available = {kind: sorted({k for r in runs for k in getattr(r.data, kind)}) for kind in KINDS}
    if not custom:
        columns = [Column("metrics", k) for k in available["metrics"][:DEFAULT_METRICS]]
        columns += [Column("params", k) for k in available["params"][:DEFAULT_PARAMS]]
    for column in columns:  # a chosen column stays offered even when this page lacks it
        if column.key not in available[column.kind]:
            available[column.kind] = sorted([*available[column.kind], column.key])
    sorted_by, descending = parse_order(order) if order else ("attributes.start_time", True)
    return render(
        "experiment.html",
        400 if error else 200,
        section="experiments",
        experiment=exp,
        runs=runs,
        rows=table_rows(runs, columns),
        columns=columns,
        chosen={c.spec for c in columns},
        available=available,
        filter_text=filter_text,
        order=order,
        sorted_by=sorted_by,
        descending=descending,
        error=error,
        start=offset,
        next_start=next_start,
        prev_start=max(offset - RUNS_PER_PAGE, 0) if offset else None,
        attributes=ATTRIBUTES,
        user_tag=USER_TAG,
        view=view,
    )


# --- compare ---------------------------------------------------------------------------------


def selected_runs(experiment_id: str) -> list[Run]:
    """The runs named by ``?run=`` (in that order, each once), all of this experiment."""
    ids = list(dict.fromkeys(r for r in request.args.getlist("run") if r))
    if not ids:
        raise InvalidInput("select the runs to compare (query parameter 'run', repeatable)")
    if len(ids) > MAX_COMPARE:
        raise InvalidInput(f"compare at most {MAX_COMPARE} runs at once, got {len(ids)}")
    service = tracking()
    found = find_runs(service, experiment_id, ids)
    for run_id in ids:
        if run_id not in found:
            other = service.get_run(run_id)  # RunNotFound when there is no such run
            if other.info.lifecycle_stage is Lifecycle.DELETED:
                raise InvalidInput(
                    f"run {run_id} is deleted; restore it (mlreg runs restore {run_id}) to "
                    "compare it"
                )
            raise InvalidInput(
                f"run {run_id} belongs to experiment {other.info.experiment_id}, not "
                f"{experiment_id}; compare runs of one experiment at a time"
            )
    return [found[run_id] for run_id in ids]


@dataclass(frozen=True)
class Row:
    key: str
    values: list[str | None]

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1


def side_by_side(runs: list[Run], kind: str) -> list[Row]:
    keys = sorted({k for r in runs for k in getattr(r.data, kind)})
    return [Row(k, [getattr(r.data, kind).get(k) for r in runs]) for k in keys]


@page(
    "/experiments/<experiment_id>/compare",
    permission=perm.experiment(Level.READ),
    summary="Compare runs: metric histories overlaid (one chart per metric; step or time on x; "
    "log scale), params and latest metrics side by side with differences highlighted.",
)
def compare(experiment_id: str) -> Response:
    exp = tracking().get_experiment(experiment_id)
    x = request.args.get("x", "step")
    if x not in X_AXES:
        raise InvalidInput(f"query parameter 'x': expected one of {', '.join(X_AXES)}, got {x!r}")
    runs = selected_runs(experiment_id)
    params = side_by_side(runs, "params")
    only_differences = request.args.get("diff") == "1"
    logged = sorted({k for r in runs for k in r.data.metrics})
    chosen = [k for k in dict.fromkeys(request.args.getlist("metric")) if k in logged]
    return render(
        "compare.html",
        section="experiments",
        experiment=exp,
        runs=runs,
        params=[p for p in params if p.differs] if only_differences else params,
        differing=sum(p.differs for p in params),
        only_differences=only_differences,
        metric_keys=chosen or logged,
        logged=logged,
        chosen=chosen,
        metrics={k: [r.data.metrics.get(k) for r in runs] for k in logged},
        x=x,
        log=request.args.get("log") == "1",
        x_axes=X_AXES,
    )


def series(history: list[Metric]) -> dict[str, list]:
    """A metric history (thinned by the store to MAX_POINTS) as columns for a chart (NaN as
    null: a gap in the line)."""
    points = thinned(history, MAX_POINTS)
    return {
        "step": [m.step for m in points],
        "time": [m.timestamp for m in points],
        "value": [None if math.isnan(m.value) else m.value for m in points],
    }


@page(
    "/experiments/<experiment_id>/compare/metrics.json",
    permission=perm.experiment(Level.READ),
    summary="JSON: the histories of some metrics (key=, repeatable) for each selected run (what "
    "the compare charts draw).",
)
def compare_metrics(experiment_id: str) -> Response:
    keys = list(dict.fromkeys(k for k in request.args.getlist("key") if k))
    if not keys:
        raise InvalidInput("query parameter 'key': expected a metric key (repeatable)")
    if len(keys) > MAX_KEYS:
        raise InvalidInput(f"query parameter 'key': at most {MAX_KEYS} at once, got {len(keys)}")
    runs = selected_runs(experiment_id)
    ids = [r.info.run_id for r in runs]
    service = tracking()
    metrics = {}
    for key in keys:
        histories = service.get_metric_histories(ids, key, MAX_POINTS)
        metrics[key] = [series(histories.get(run_id, [])) for run_id in ids]
    return ok({"runs": chart_runs(runs), "metrics": metrics})


def chart_runs(runs: list[Run]) -> list[dict[str, object]]:
    """What a chart needs to know of each run: its id, its name (the series' label), its
    start (x axis: time since the run started)."""
    return [
        {"run_id": r.info.run_id, "name": r.info.run_name, "start_time": r.info.start_time}
        for r in runs
    ]
