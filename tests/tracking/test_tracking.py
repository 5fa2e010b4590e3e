"""The tracking API on a real database and artifact store (no TensorFlow needed here)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import yaml
from PIL import Image

import mlreg
from mlreg.errors import AlreadyExists, ArtifactNotFound, InvalidInput
from mlreg.store import StoreSettings
from mlreg.tracking import RunStatus, TrackingClient, fluent
from mlreg.tracking.search import parse_filter

matplotlib.use("Agg")
from matplotlib import pyplot as plt


def search_list(*args, **kwargs):
    """mlreg.search_runs as a list of Runs (its default is MLflow's DataFrame)."""
    return mlreg.search_runs(*args, output_format="list", **kwargs)


pytestmark = pytest.mark.usefixtures("tracking_home")


def artifacts(run) -> Path:
    return Path(run.info.artifact_uri)


# --- experiments -------------------------------------------------------------------------


def test_set_experiment_creates_once_and_runs_go_there():
    exp = mlreg.set_experiment("mnist")
    assert mlreg.set_experiment("mnist").experiment_id == exp.experiment_id
    assert mlreg.get_experiment_by_name("mnist").name == "mnist"
    assert mlreg.get_experiment_by_name("nope") is None
    with mlreg.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id
    mlreg.set_experiment_tag("team", "cv")
    assert fluent.client().get_experiment(exp.experiment_id).tags == {"team": "cv"}


def test_default_experiment_and_duplicate_names():
    with mlreg.start_run() as run:
        pass
    assert fluent.client().get_experiment(run.info.experiment_id).name == "Default"
    mlreg.create_experiment("x", tags={"a": "b"})
    with pytest.raises(AlreadyExists, match="experiment 'x' already exists"):
        mlreg.create_experiment("x")


# --- run lifecycle -----------------------------------------------------------------------


def test_run_statuses_from_the_context_manager():
    with mlreg.start_run(run_name="ok") as ok:
        assert mlreg.active_run().info.run_id == ok.info.run_id
    with pytest.raises(RuntimeError), mlreg.start_run() as failed:
        raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt), mlreg.start_run() as killed:
        raise KeyboardInterrupt
    assert mlreg.active_run() is None
    statuses = [mlreg.get_run(r.info.run_id).info for r in (ok, failed, killed)]
    assert [s.status for s in statuses] == [RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED]
    assert statuses[0].run_name == "ok" and statuses[0].end_time >= statuses[0].start_time


def test_nested_runs_record_their_parent():
    with mlreg.start_run(run_name="parent") as parent:
        with pytest.raises(InvalidInput, match="is already active; end it"):
            mlreg.start_run()
        with mlreg.start_run(run_name="child", nested=True) as child:
            mlreg.log_metric("accuracy", 0.9)
        assert mlreg.active_run().info.run_id == parent.info.run_id
    info = mlreg.get_run(child.info.run_id)
    assert info.info.parent_run_id == parent.info.run_id
    assert info.data.tags["mlreg.parentRunId"] == parent.info.run_id
    assert info.data.tags["mlreg.user"] == "dora"


def test_resume_a_run_by_id():
    with mlreg.start_run() as run:
        mlreg.log_metric("m", 1.0, step=0)
    with mlreg.start_run(run_id=run.info.run_id):
        mlreg.log_metric("m", 2.0, step=1)
    history = fluent.client().get_metric_history(run.info.run_id, "m")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 2.0)]
    assert mlreg.get_run(run.info.run_id).info.status is RunStatus.FINISHED


def test_finished_run_takes_no_more_logs():
    with mlreg.start_run() as run:
        pass
    with pytest.raises(InvalidInput, match="is FINISHED; it no longer takes logs"):
        fluent.client().log_metric(run.info.run_id, "late", 1.0)


def test_logging_without_a_run_starts_one():
    mlreg.log_param("lr", 0.1)
    run = mlreg.active_run()
    assert run is not None and mlreg.get_run(run.info.run_id).data.params == {"lr": "0.1"}
    mlreg.end_run()
    assert mlreg.get_run(run.info.run_id).info.status is RunStatus.FINISHED


# --- params, metrics, tags ---------------------------------------------------------------


def test_params_cannot_change():
    with mlreg.start_run() as run:
        mlreg.log_params({"batch_size": 32, "optimizer": "adam"})
        mlreg.log_param("batch_size", 32)  # same value: fine
        with pytest.raises(InvalidInput) as e:
            mlreg.log_param("batch_size", 64)
        assert e.value.message == (
            "param 'batch_size' was already logged as '32'; a param cannot change (got '64'). "
            "Log a new key or start a new run"
        )
    assert mlreg.get_run(run.info.run_id).data.params == {"batch_size": "32", "optimizer": "adam"}


def test_metric_history_latest_value_and_special_values():
    with mlreg.start_run() as run:
        for step in range(5):
            mlreg.log_metric("loss", 1.0 / (step + 1), step=step)
        mlreg.log_metrics({"acc": 0.5, "nan": float("nan"), "inf": float("inf")}, step=3)
    data = mlreg.get_run(run.info.run_id).data
    assert data.metrics["loss"] == pytest.approx(0.2)
    assert math.isnan(data.metrics["nan"])
    assert data.metrics["inf"] == pytest.approx(1.7976931348623157e308)
    history = fluent.client().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mlreg.log_metric("loss", "high"), "metric 'loss': expected a number, got str"),
        (lambda: mlreg.log_metric("loss", None), "metric 'loss': expected a number, got NoneType"),
        (lambda: mlreg.log_metric("loss", 1.0, step=1.5), "step must be an integer"),
        (lambda: mlreg.log_metric("bad key!", 1.0), "invalid metric key 'bad key!'"),
        (lambda: mlreg.log_param("../escape", 1), "must not look like a path escape"),
        (lambda: mlreg.log_param("", 1), "invalid param key ''"),
        (lambda: mlreg.log_param("long", "x" * 6001), "param 'long': value is 6001 characters"),
        (lambda: mlreg.set_tag("k" * 251, "v"), "invalid tag key"),
    ],
    ids=[
        "string",
        "none",
        "float-step",
        "bad-key",
        "path-key",
        "empty-key",
        "long-value",
        "long-tag",
    ],
)
def test_invalid_logs_are_refused_and_nothing_is_written(call, message):
    with mlreg.start_run() as run, pytest.raises(InvalidInput, match=message):
        call()
    data = mlreg.get_run(run.info.run_id).data
    assert data.params == {} and data.metrics == {}


def test_batch_writes_many_metrics_in_one_call():
    with mlreg.start_run() as run:
        fluent.client().log_batch(
            run.info.run_id,
            metrics=[("step_loss", 1.0 / (i + 1), i, None) for i in range(2500)],
            params={"p": 1},
            tags={"t": "x"},
        )
    assert len(fluent.client().get_metric_history(run.info.run_id, "step_loss")) == 2500
    assert mlreg.get_run(run.info.run_id).data.metrics["step_loss"] == pytest.approx(1 / 2500)


# --- artifacts ---------------------------------------------------------------------------


def test_text_dict_artifacts_and_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.txt").write_text("a")
    with mlreg.start_run() as run:
        mlreg.log_text("some output", "out/test.txt")
        mlreg.log_dict({"a": 1, "b": [1, 2]}, "config.json")
        mlreg.log_dict({"a": 1}, "config.yaml")
        mlreg.log_artifact(str(tmp_path / "notes.txt"))
        mlreg.log_artifact(str(tmp_path / "notes.txt"), artifact_path="docs")
        mlreg.log_artifacts(str(tmp_path / "dir"), artifact_path="model")
    root = artifacts(run)
    assert (root / "out" / "test.txt").read_text() == "some output"
    assert json.loads((root / "config.json").read_text()) == {"a": 1, "b": [1, 2]}
    assert yaml.safe_load((root / "config.yaml").read_text()) == {"a": 1}
    assert (root / "notes.txt").read_text() == "hello"
    assert (root / "docs" / "notes.txt").read_text() == "hello"
    assert (root / "model" / "a.txt").read_text() == "a"


def test_artifact_paths_cannot_escape_the_run(tmp_path):
    with mlreg.start_run():
        for bad in ("../../evil.txt", "/etc/x", "a/../../b", "%2e%2e/x"):
            with pytest.raises(InvalidInput, match="unsafe path"):
                mlreg.log_text("x", bad)
        with pytest.raises(ArtifactNotFound, match="no such file"):
            mlreg.log_artifact(str(tmp_path / "missing.txt"))


def test_images_and_figures():
    with mlreg.start_run() as run:
        mlreg.log_image(np.zeros((8, 8, 3), np.uint8), "black.png")
        mlreg.log_image(np.full((4, 4), 0.5), "gray.png")
        mlreg.log_image(Image.new("RGB", (3, 3), "red"), "red.png")
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        mlreg.log_figure(fig, "plot.png")
        plt.close(fig)
        with pytest.raises(InvalidInput, match=r"float image values must lie in \[0, 1\]"):
            mlreg.log_image(np.full((2, 2), 3.0), "bad.png")
        with pytest.raises(InvalidInput, match="image must be HxW"):
            mlreg.log_image(np.zeros((2, 2, 2, 2)), "bad.png")
        with pytest.raises(InvalidInput, match="expected a matplotlib figure"):
            mlreg.log_figure("not a figure", "bad.png")
    root = artifacts(run)
    with Image.open(root / "black.png") as black, Image.open(root / "gray.png") as gray:
        assert black.size == (8, 8) and gray.getpixel((0, 0)) == 128
    with Image.open(root / "red.png") as red:
        assert red.getpixel((1, 1)) == (255, 0, 0)
    assert (root / "plot.png").stat().st_size > 1000


# --- search ------------------------------------------------------------------------------


def _runs_with_losses():
    mlreg.set_experiment("search")
    ids = {}
    for name, loss, opt in [("a", 0.5, "adam"), ("b", 0.2, "sgd"), ("c", 0.9, "adam")]:
        with mlreg.start_run(run_name=name, tags={"team": "cv" if name != "c" else "nlp"}) as run:
            mlreg.log_param("optimizer", opt)
            mlreg.log_metric("val_loss", loss)
        ids[name] = run.info.run_id
    return ids


def _names(runs):
    return [r.info.run_name for r in runs]


def test_search_filters_and_ordering():
    _runs_with_losses()
    assert _names(search_list(order_by=["metrics.val_loss ASC"])) == ["b", "a", "c"]
    assert _names(search_list(order_by="metrics.val_loss DESC")) == ["c", "a", "b"]
    assert _names(
        search_list(filter_string="metrics.val_loss < 0.6", order_by="attributes.run_name")
    ) == ["a", "b"]
    assert _names(
        search_list(filter_string="params.optimizer = 'adam' and tags.team = \"cv\"")
    ) == ["a"]
    finished = search_list(
        filter_string="attributes.status = 'FINISHED'",
        order_by=["params.optimizer DESC", "attributes.run_name ASC"],
    )
    assert _names(finished) == ["b", "a", "c"]
    assert _names(search_list(filter_string="tags.team LIKE 'n%'")) == ["c"]
    assert _names(search_list(order_by="metrics.val_loss", max_results=2)) == ["b", "a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.loss < 'a'", "compares with a number"),
        ("params.lr = 0.1", "values are strings; quote 0.1"),
        ("loss < 1", "cannot parse filter clause 'loss < 1'"),
        ("foo.bar = 'x'", "unknown entity 'foo'"),
        ("attributes.color = 'red'", "unknown attribute 'color'"),
        ("metrics.loss LIKE 1", "LIKE works on strings only"),
    ],
    ids=["metric-string", "param-number", "no-entity", "entity", "attribute", "like-number"],
)
def test_bad_filters(text, message):
    with pytest.raises(InvalidInput, match=message):
        parse_filter(text)


def test_bad_order_by():
    with pytest.raises(InvalidInput, match="cannot parse order_by"):
        search_list(order_by="metrics.loss sideways")


# --- the same on PostgreSQL --------------------------------------------------------------


def test_tracking_on_each_database(migrated_backend, tmp_path):
    with TrackingClient(StoreSettings(migrated_backend, tmp_path / "art", "eve")) as client:
        exp = client.create_experiment("db")
        run = client.create_run(exp, run_name="r")
        client.log_batch(
            run.info.run_id,
            metrics=[("loss", 0.5, 0, None), ("loss", 0.25, 1, None)],
            params={"a": 1},
        )
        client.log_metric(run.info.run_id, "loss", 0.75, step=0)  # an older step: not the latest
        client.set_terminated(run.info.run_id)
        found = client.search_runs([exp], "metrics.loss <= 0.25 and params.a = '1'")
        assert [r.info.run_id for r in found] == [run.info.run_id]
        assert found[0].data.metrics == {"loss": 0.25}
        assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [
            0.5,
            0.75,
            0.25,
        ]
