"""The start page (what this server holds, how to use it) and the static files."""

from __future__ import annotations

from flask import Response, request, send_from_directory

from mlreg.server import permissions as perm
from mlreg.server.permissions import Level
from mlreg.server.routes.registry import registry
from mlreg.server.routes.tracking import tracking
from mlreg.server.ui.pages import STATIC, page, render
from mlreg.store.pages import Page

RECENT = 6
#: Static files change with mlreg's version, which their URLs carry (``?v=``).
STATIC_MAX_AGE = 3600


def server_url() -> str:
    """This server's URL as the browser reached it (what clients should use too)."""
    return request.host_url.rstrip("/")


@page(
    "/",
    permission=perm.server(Level.READ),
    summary="Start page: the latest models and runs, and how to point clients at this server.",
)
def home() -> Response:
    models = registry().search_registered_models(order_by="updated DESC", max_results=RECENT)
    service = tracking()
    experiments = service.search_experiments(max_results=100)
    ids = [e.experiment_id for e in experiments.items]
    runs = (
        service.search_runs_page(ids, None, ["attributes.start_time DESC"], RECENT)
        if ids
        else Page([], None)
    )
    names = {e.experiment_id: e.name for e in experiments.items}
    return render(
        "home.html",
        section="home",
        models=models.items,
        experiments=experiments.items,
        more_experiments=experiments.next_offset is not None,
        runs=runs.items,
        experiment_names=names,
        server_url=server_url(),
    )


@page(
    "/static/<path:filename>",
    permission=perm.PUBLIC,
    summary="The UI's styles and scripts, and the vendored chart library (uPlot) with its licence.",
)
def static(filename: str) -> Response:
    # send_from_directory refuses paths that leave STATIC (404), and answers If-None-Match.
    return send_from_directory(STATIC, filename, max_age=STATIC_MAX_AGE)
