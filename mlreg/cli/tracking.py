"""Tracking commands: ``mlreg runs``, ``mlreg experiments``, ``mlreg artifacts``.

Commands that only read never create a store: where none exists yet they say so, naming
where they looked.
"""

from __future__ import annotations

import shutil
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path

import click

from mlreg.cli.options import emit, json_option, paging
from mlreg.cli.output import listing, table, when
from mlreg.cli.stores import Opened, open_store
from mlreg.errors import ExperimentNotFound, InvalidInput, RunNotFound
from mlreg.models.files import copy_model_files
from mlreg.store.pages import offset_of
from mlreg.store.pages import page_token as token_for
from mlreg.tracking import Experiment, TrackingClient, ViewType
from mlreg.tracking.store import DEFAULT_EXPERIMENT

_VIEWS = [v.value for v in ViewType]


def _reader() -> AbstractContextManager[Opened[TrackingClient]]:
    return open_store(TrackingClient, read_only=True)


def _writer() -> AbstractContextManager[Opened[TrackingClient]]:
    return open_store(TrackingClient, read_only=False)


def _experiment_names(client: TrackingClient) -> list[str]:
    names: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = client.search_experiments(max_results=1000, offset=offset)
        names += [e.name for e in page.items]
        offset = page.next_offset
    return names


def _experiment(opened: Opened[TrackingClient], name: str, given: bool) -> Experiment:
    """The experiment called ``name``; ExperimentNotFound lists the ones that exist."""
    found = opened.client.get_experiment_by_name(name) if opened.client is not None else None
    if found is not None:
        return found
    names = _experiment_names(opened.client) if opened.client is not None else []
    if not names:
        raise ExperimentNotFound(
            f"experiment {name!r} does not exist; there are no experiments in {opened.where}"
        )
    how = "" if given else " (pass --experiment NAME)"
    raise ExperimentNotFound(
        f"experiment {name!r} does not exist; experiments: {', '.join(names)}{how}"
    )


def _has_experiments(opened: Opened[TrackingClient]) -> bool:
    return opened.client is not None and bool(opened.client.search_experiments(max_results=1).items)


def _run_not_found(opened: Opened[TrackingClient], run_id: str) -> RunNotFound:
    return RunNotFound(f"run {run_id!r} does not exist; there are no runs in {opened.where}")


@click.group()
def runs() -> None:
    """Tracked runs: list, show, delete, restore.

    \b
    Examples:
      mlreg runs list --experiment mnist --order-by "metrics.val_loss ASC"
      mlreg runs show 4f1c2a…
      mlreg runs delete 4f1c2a…
    """


@runs.command("list")
@click.option(
    "--experiment",
    "-e",
    default=None,
    help=f"Experiment name (default: {DEFAULT_EXPERIMENT}; an unknown one lists those there are).",
)
@click.option("--filter", "filter_string", default=None, help='e.g. "metrics.val_loss < 0.5"')
@click.option("--order-by", multiple=True, help="e.g. 'metrics.val_loss ASC' (repeatable).")
@click.option(
    "--view",
    type=click.Choice(_VIEWS, case_sensitive=False),
    default="ACTIVE_ONLY",
    show_default=True,
    help="Deleted runs are left out unless asked for.",
)
@paging()
@json_option
def runs_list(
    experiment: str | None,
    filter_string: str | None,
    order_by: tuple[str, ...],
    view: str,
    max_results: int,
    page_token: str | None,
    as_json: bool,
) -> None:
    """List an experiment's runs, filtered and ordered.

    \b
    Examples:
      mlreg runs list
      mlreg runs list -e mnist --filter "params.opt_name = 'Adam'" --order-by "metrics.val_loss ASC"
      mlreg runs list -e mnist --view DELETED_ONLY --json
    """
    with _reader() as opened:
        if experiment is None and not _has_experiments(opened):
            listing(as_json, [], None, str, f"No runs in {opened.where}")
            return
        exp = _experiment(opened, experiment or DEFAULT_EXPERIMENT, experiment is not None)
        assert opened.client is not None
        page = opened.client.search_runs_page(
            [exp.experiment_id],
            filter_string,
            list(order_by),
            max_results,
            offset_of(page_token),
            view,
        )
    found = page.items
    metric_keys = sorted({k for r in found for k in r.data.metrics})[:6]
    listing(
        as_json,
        [r.to_dict() for r in found],
        token_for(page.next_offset),
        lambda: table(
            ["RUN ID", "NAME", "STATUS", "STARTED (UTC)", *metric_keys],
            [
                [
                    r.info.run_id,
                    r.info.run_name,
                    r.info.status.value,
                    when(r.info.start_time),
                    *[
                        f"{r.data.metrics[k]:.4g}" if k in r.data.metrics else "-"
                        for k in metric_keys
                    ],
                ]
                for r in found
            ],
        ),
        f"No runs in experiment {exp.name!r}" + (" matching the filter" if filter_string else ""),
    )


@runs.command("show")
@click.argument("run_id")
@json_option
def runs_show(run_id: str, as_json: bool) -> None:
    """Show one run: params, latest metrics, tags, artifacts.

    \b
    Examples:
      mlreg runs show 4f1c2a…
      mlreg runs show 4f1c2a… --json
    """
    with _reader() as opened:
        if opened.client is None:
            raise _run_not_found(opened, run_id)
        run = opened.client.get_run(run_id)

    def human() -> str:
        deleted = " (deleted)" if run.info.lifecycle_stage.value == "deleted" else ""
        lines = [
            f"{run.info.run_name}  ({run.info.run_id}){deleted}",
            f"  status:    {run.info.status.value}",
            f"  started:   {when(run.info.start_time)} UTC   ended: {when(run.info.end_time)}",
            f"  artifacts: {run.info.artifact_uri}",
        ]
        for title, values in (
            ("params", run.data.params),
            ("metrics", run.data.metrics),
            ("tags", run.data.tags),
        ):
            lines.append(f"  {title}:")
            lines += [f"    {k} = {v}" for k, v in sorted(values.items())] or ["    -"]
        return "\n".join(lines)

    emit(as_json, run.to_dict(), human)


@runs.command("delete")
@click.argument("run_ids", metavar="RUN_ID...", nargs=-1, required=True)
def runs_delete(run_ids: tuple[str, ...]) -> None:
    """Mark runs deleted (kept; `mlreg runs restore` undoes it).

    As in MLflow: a deleted run is left out of searches and listings (--view DELETED_ONLY
    shows it), takes no more logs, and keeps its params, metrics and artifacts.

    \b
    Examples:
      mlreg runs delete 4f1c2a… 9be07d…
    """
    with _writer() as opened:
        assert opened.client is not None
        for run_id in run_ids:
            opened.client.get_run(run_id)  # all of them exist before any is deleted
        for run_id in run_ids:
            opened.client.delete_run(run_id)
            click.echo(f"Deleted run {run_id}")


@runs.command("restore")
@click.argument("run_ids", metavar="RUN_ID...", nargs=-1, required=True)
def runs_restore(run_ids: tuple[str, ...]) -> None:
    """Bring deleted runs back.

    \b
    Examples:
      mlreg runs restore 4f1c2a…
    """
    with _writer() as opened:
        assert opened.client is not None
        for run_id in run_ids:
            opened.client.get_run(run_id)
        for run_id in run_ids:
            opened.client.restore_run(run_id)
            click.echo(f"Restored run {run_id}")


@click.group()
def experiments() -> None:
    """Experiments: list, create.

    \b
    Examples:
      mlreg experiments list
      mlreg experiments create mnist
    """


@experiments.command("list")
@click.option("--filter", "name_like", default=None, help="SQL LIKE pattern, e.g. 'mnist%'.")
@paging()
@json_option
def experiments_list(
    name_like: str | None, max_results: int, page_token: str | None, as_json: bool
) -> None:
    """List experiments, oldest first.

    \b
    Examples:
      mlreg experiments list
      mlreg experiments list --filter 'mnist%' --json
    """
    items: list[Experiment] = []
    next_offset = None
    with _reader() as opened:
        if opened.client is not None:
            page = opened.client.search_experiments(
                name_like=name_like, max_results=max_results, offset=offset_of(page_token)
            )
            items, next_offset = page.items, page.next_offset
    listing(
        as_json,
        [e.to_dict() for e in items],
        token_for(next_offset),
        lambda: table(
            ["ID", "NAME", "CREATED (UTC)", "ARTIFACTS"],
            [[e.experiment_id, e.name, when(e.creation_time), e.artifact_location] for e in items],
        ),
        f"No experiments in {opened.where}",
    )


@experiments.command("create")
@click.argument("name")
def experiments_create(name: str) -> None:
    """Create an experiment.

    \b
    Examples:
      mlreg experiments create mnist
    """
    with _writer() as opened:
        assert opened.client is not None
        experiment_id = opened.client.create_experiment(name)
    click.echo(f"Created experiment {name} (id {experiment_id})")


@click.group()
def artifacts() -> None:
    """A run's artifacts: list, download.

    \b
    Examples:
      mlreg artifacts list --run-id 4f1c2a…
      mlreg artifacts download --run-id 4f1c2a… --artifact-path model -d ./model
    """


@artifacts.command("list")
@click.option("--run-id", "-r", required=True, help="The run whose artifacts to list.")
@click.option("--artifact-path", "-a", default=None, help="A directory inside them (default: top).")
@json_option
def artifacts_list(run_id: str, artifact_path: str | None, as_json: bool) -> None:
    """List the artifacts of a run, one directory level.

    \b
    Examples:
      mlreg artifacts list --run-id 4f1c2a…
      mlreg artifacts list -r 4f1c2a… -a model --json
    """
    with _reader() as opened:
        if opened.client is None:
            raise _run_not_found(opened, run_id)
        entries = opened.client.list_artifacts(run_id, artifact_path)
    listing(
        as_json,
        [asdict(e) for e in entries],
        None,
        lambda: table(
            ["PATH", "SIZE"],
            [[e.path + ("/" if e.is_dir else ""), "-" if e.is_dir else e.size] for e in entries],
        ),
        f"No artifacts in run {run_id}" + (f" under {artifact_path}" if artifact_path else ""),
    )


@artifacts.command("download")
@click.option("--run-id", "-r", required=True, help="The run whose artifacts to copy.")
@click.option(
    "--artifact-path", "-a", default=None, help="A file or directory inside them (default: all)."
)
@click.option(
    "--dst-path",
    "-d",
    "dest",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to put the copy (a new path, or an empty directory).",
)
@json_option
def artifacts_download(run_id: str, artifact_path: str | None, dest: Path, as_json: bool) -> None:
    """Copy a run's artifacts (or one of them) to DST_PATH.

    \b
    Examples:
      mlreg artifacts download -r 4f1c2a… -d ./run-files
      mlreg artifacts download -r 4f1c2a… -a model_summary.txt -d ./summary.txt
    """
    with _reader() as opened:
        if opened.client is None:
            raise _run_not_found(opened, run_id)
        source = opened.client.artifact_path(run_id, artifact_path)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise InvalidInput(f"destination {dest} exists and is not empty")
        if source.is_dir():
            copy_model_files(source, dest)  # the safe walker: no links out of the run
        else:
            if dest.is_dir():
                dest.rmdir()
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
    emit(
        as_json,
        {"run_id": run_id, "artifact_path": artifact_path, "path": str(dest.absolute())},
        lambda: f"Downloaded {artifact_path or 'the artifacts'} of run {run_id} to {dest}",
    )
