from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import mlreg
from mlreg.cli import main

pytestmark = pytest.mark.usefixtures("tracking_home")


def _runs():
    mlreg.set_experiment("cli")
    for name, loss in [("a", 0.5), ("b", 0.2), ("c", 0.9)]:
        with mlreg.start_run(run_name=name):
            mlreg.log_param("p", name)
            mlreg.log_metric("val_loss", loss)


def test_runs_list_orders_and_filters():
    _runs()
    runner = CliRunner()
    out = runner.invoke(main, ["runs", "list", "-e", "cli", "--order-by", "metrics.val_loss ASC"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split() == ["RUN", "ID", "NAME", "STATUS", "STARTED", "(UTC)", "val_loss"]
    assert [line.split()[1] for line in lines[1:]] == ["b", "a", "c"]
    data = json.loads(
        runner.invoke(
            main, ["runs", "list", "-e", "cli", "--filter", "metrics.val_loss > 0.4", "--json"]
        ).output
    )["items"]
    assert sorted(r["run_name"] for r in data) == ["a", "c"]
    shown = runner.invoke(main, ["runs", "show", data[0]["run_id"]]).output
    assert "val_loss = " in shown and "p = " in shown


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["runs", "list", "-e", "nope"], 4, "Error: experiment 'nope' does not exist"),
        (
            ["runs", "list", "-e", "cli", "--filter", "loss < 1"],
            2,
            "Error: cannot parse filter clause",
        ),
        (
            ["runs", "show", "0" * 32],
            4,
            "Error: run '00000000000000000000000000000000' does not exist",
        ),
    ],
    ids=["experiment", "filter", "run"],
)
def test_errors(args, code, message):
    _runs()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code
    assert result.stderr.startswith(message)
