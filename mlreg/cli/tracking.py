"""Tracking commands: ``mlreg runs list|show``, ``mlreg experiments list``."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

from mlreg.cli.options import json_option
from mlreg.cli.output import table
from mlreg.errors import ModelNotFound
from mlreg.tracking import TrackingClient


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def runs() -> None:
    """Tracked runs."""


@runs.command("list")
@click.option("--experiment", "-e", default="Default", show_default=True, help="Experiment name.")
@click.option("--filter", "filter_string", default=None, help='e.g. "metrics.val_loss < 0.5"')
@click.option("--order-by", multiple=True, help="e.g. 'metrics.val_loss ASC' (repeatable).")
@click.option("--max-results", default=100, show_default=True)
@json_option
def runs_list(
    experiment: str,
    filter_string: str | None,
    order_by: tuple[str, ...],
    max_results: int,
    as_json: bool,
) -> None:
    """List the runs of an experiment, filtered and ordered."""
    with TrackingClient() as client:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise ModelNotFound(f"experiment {experiment!r} does not exist")
        found = client.search_runs([exp.experiment_id], filter_string, list(order_by), max_results)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in found], indent=2, default=str))
        return
    metric_keys = sorted({k for r in found for k in r.data.metrics})[:6]
    click.echo(
        table(
            ["RUN ID", "NAME", "STATUS", "STARTED", *metric_keys],
            [
                [
                    r.info.run_id,
                    r.info.run_name,
                    r.info.status.value,
                    _when(r.info.start_time),
                    *[
                        f"{r.data.metrics[k]:.4g}" if k in r.data.metrics else "-"
                        for k in metric_keys
                    ],
                ]
                for r in found
            ],
        )
    )


@runs.command("show")
@click.argument("run_id")
@json_option
def runs_show(run_id: str, as_json: bool) -> None:
    """Show one run: params, latest metrics, tags and where its artifacts are."""
    with TrackingClient() as client:
        run = client.get_run(run_id)
    if as_json:
        click.echo(json.dumps(run.to_dict(), indent=2, default=str))
        return
    lines = [
        f"{run.info.run_name}  ({run.info.run_id})",
        f"  status:    {run.info.status.value}",
        f"  started:   {_when(run.info.start_time)}   ended: {_when(run.info.end_time)}",
        f"  artifacts: {run.info.artifact_uri}",
    ]
    for title, values in (
        ("params", run.data.params),
        ("metrics", run.data.metrics),
        ("tags", run.data.tags),
    ):
        lines.append(f"  {title}:")
        lines += [f"    {k} = {v}" for k, v in sorted(values.items())] or ["    -"]
    click.echo("\n".join(lines))


@click.group()
def experiments() -> None:
    """Experiments."""


@experiments.command("create")
@click.argument("name")
def experiments_create(name: str) -> None:
    """Create an experiment."""
    with TrackingClient() as client:
        experiment_id = client.create_experiment(name)
    click.echo(f"Created experiment {name} (id {experiment_id})")
