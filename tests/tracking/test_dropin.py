"""The tracking API as MLflow's drop-in: search_runs' DataFrame, experiment names, the tracking
URI, last_active_run, search_experiments, deleting runs, a model's schemas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import mlreg
from mlreg.errors import ExperimentNotFound, InvalidInput, StoreError
from mlreg.models.model import Model
from mlreg.registry import default_client
from mlreg.store import settings as store_settings
from mlreg.tracking import Lifecycle, RunStatus, fluent
from tests.conftest import make_model_dir

pytestmark = pytest.mark.usefixtures("tracking_home")

INFO = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]


@pytest.fixture
def uri_reset():
    yield
    store_settings.set_tracking_uri(None)


def _log_three() -> dict[str, str]:
    mlreg.set_experiment("cli")
    ids = {}
    for name, loss, opt in [("a", 0.5, "adam"), ("b", 0.2, "sgd"), ("c", 0.9, None)]:
        with mlreg.start_run(run_name=name) as run:
            mlreg.log_metric("val_loss", loss)
            if opt:
                mlreg.log_param("opt", opt)
        ids[name] = run.info.run_id
    return ids


def test_search_runs_returns_mlflows_dataframe_by_default():
    ids = _log_three()
    df = mlreg.search_runs(order_by=["metrics.val_loss ASC"])
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns[:6]) == INFO
    assert list(df["run_id"]) == [ids["b"], ids["a"], ids["c"]]
    assert list(df["metrics.val_loss"]) == [0.2, 0.5, 0.9]
    assert list(df["params.opt"][:2]) == ["sgd", "adam"] and df["params.opt"].isna()[2]
    assert set(df["status"]) == {"FINISHED"}
    assert str(df["start_time"].dtype).endswith(", UTC]")
    assert (df["end_time"] >= df["start_time"]).all()
    assert set(df["tags.mlreg.user"]) == {"dora"}
    as_list = mlreg.search_runs(order_by=["metrics.val_loss ASC"], output_format="list")
    assert [r.info.run_id for r in as_list] == list(df["run_id"])
    with pytest.raises(InvalidInput, match="unsupported output_format 'csv'"):
        mlreg.search_runs(output_format="csv")


def test_an_empty_search_has_mlflows_info_columns():
    mlreg.set_experiment("empty")
    df = mlreg.search_runs()
    assert list(df.columns) == INFO and len(df) == 0


def test_search_by_experiment_names_or_everywhere():
    ids = _log_three()
    mlreg.set_experiment("other")
    with mlreg.start_run(run_name="d") as d:
        mlreg.log_metric("val_loss", math.nan)
    by_name = mlreg.search_runs(experiment_names=["cli"], output_format="list")
    assert {r.info.run_id for r in by_name} == set(ids.values())
    everywhere = mlreg.search_runs(search_all_experiments=True)
    assert set(everywhere["run_id"]) == {*ids.values(), d.info.run_id}
    assert mlreg.search_runs()["run_id"].tolist() == [d.info.run_id]  # the current experiment
    with pytest.raises(ExperimentNotFound, match="no experiment named 'nope'; experiments: "):
        mlreg.search_runs(experiment_names=["nope"])
    with pytest.raises(InvalidInput, match="experiment_ids or experiment_names, not both"):
        mlreg.search_runs(experiment_ids=["1"], experiment_names=["cli"])


def test_deleted_runs_leave_searches_and_come_back(tracking_home):
    if fluent.client().settings.remote:
        pytest.skip("the server's delete and restore routes come with its MLflow-compatible API")
    ids = _log_three()
    mlreg.delete_run(ids["a"])
    assert set(mlreg.search_runs()["run_id"]) == {ids["b"], ids["c"]}
    deleted = mlreg.search_runs(run_view_type="DELETED_ONLY", output_format="list")
    assert [r.info.run_id for r in deleted] == [ids["a"]]
    assert len(mlreg.search_runs(run_view_type=3)) == 3  # MLflow's ViewType.ALL
    assert mlreg.get_run(ids["a"]).info.lifecycle_stage is Lifecycle.DELETED
    with pytest.raises(InvalidInput, match="is deleted; restore it before logging"):
        fluent.client().log_batch(ids["a"], tags={"x": "1"})
    mlreg.restore_run(ids["a"])
    assert len(mlreg.search_runs()) == 3
    with pytest.raises(InvalidInput, match="invalid view type 'some'; expected one of ACTIVE_ONLY"):
        mlreg.search_runs(run_view_type="some")


def test_last_active_run():
    assert mlreg.last_active_run() is None
    with mlreg.start_run() as run:
        assert mlreg.last_active_run().info.status is RunStatus.RUNNING
    last = mlreg.last_active_run()
    assert last.info.run_id == run.info.run_id and last.info.status is RunStatus.FINISHED


def test_search_experiments_filters_and_orders():
    for name, team in [("mnist-a", "cv"), ("mnist-b", "nlp"), ("iris", "cv")]:
        mlreg.create_experiment(name, tags={"team": team})
    names = [e.name for e in mlreg.search_experiments()]
    assert names == ["mnist-a", "mnist-b", "iris"]  # oldest first
    found = mlreg.search_experiments(filter_string="name LIKE 'mnist%' AND tags.team = 'cv'")
    assert [e.name for e in found] == ["mnist-a"]
    assert [e.name for e in mlreg.search_experiments(filter_string="name ILIKE 'IRIS'")] == ["iris"]
    assert [e.name for e in mlreg.search_experiments(order_by=["name DESC"], max_results=2)] == [
        "mnist-b",
        "mnist-a",
    ]
    assert mlreg.search_experiments(view_type="DELETED_ONLY") == []
    with pytest.raises(InvalidInput, match="cannot parse experiment filter 'name > 3'"):
        mlreg.search_experiments(filter_string="name > 3")
    with pytest.raises(InvalidInput, match="cannot parse order_by 'size'"):
        mlreg.search_experiments(order_by="size")


def test_a_models_schemas(tmp_path):
    meta = Model.load(make_model_dir(tmp_path / "m"))
    assert meta.get_input_schema().to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}
    ]
    assert meta.get_output_schema() is None and meta.get_params_schema() is None
    assert Model().get_input_schema() is None


@pytest.mark.parametrize("form", ["path", "file-uri", "sqlite"])
def test_set_tracking_uri_moves_tracking_and_the_registry(tmp_path, uri_reset, form):
    with mlreg.start_run():
        mlreg.log_metric("before", 1)
    place = tmp_path / "elsewhere"
    uri = {
        "path": str(place),
        "file-uri": place.as_uri(),
        "sqlite": f"sqlite:///{place / 'registry.db'}",
    }[form]
    mlreg.set_tracking_uri(uri)
    assert mlreg.get_tracking_uri() == f"sqlite:///{place / 'registry.db'}"
    assert mlreg.search_runs(search_all_experiments=True).empty  # a new store
    with mlreg.start_run() as run:
        mlreg.log_metric("after", 2)
    version = mlreg.register_model(str(make_model_dir(tmp_path / "m")), "moved")
    assert (place / "registry.db").is_file()
    assert default_client().settings.uri == f"sqlite:///{place / 'registry.db'}"
    assert version.version == 1
    mlreg.set_tracking_uri(None)  # back to the environment: the first store again
    assert run.info.run_id not in set(mlreg.search_runs(search_all_experiments=True)["run_id"])


def test_set_tracking_uri_to_a_server(live_server, uri_reset, tmp_path):
    mlreg.set_tracking_uri(live_server.url)
    assert mlreg.get_tracking_uri() == live_server.url
    with mlreg.start_run() as run:
        mlreg.log_param("where", "server")
    assert live_server.services.tracking.get_run(run.info.run_id).data.params == {"where": "server"}


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("", "set_tracking_uri: the URI is empty"),
        ("ftp://host/x", "set_tracking_uri: 'ftp://host/x' is not a store URI; expected sqlite"),
        ("file://host/x", "set_tracking_uri: 'file://host/x' names a remote host"),
    ],
    ids=["empty", "scheme", "remote-file"],
)
def test_bad_tracking_uris(uri, message, uri_reset):
    with pytest.raises(StoreError) as e:
        mlreg.set_tracking_uri(uri)
    assert e.value.message.startswith(message)


def test_a_file_is_not_a_tracking_directory(tmp_path, uri_reset):
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="is a file; expected a directory"):
        mlreg.set_tracking_uri(tmp_path / "f")


@pytest.mark.mlflow
def test_the_dataframe_has_the_columns_mlflow_gives(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the quickest store MLflow has
    rows = [("a", 0.5, "adam"), ("b", 0.25, "sgd")]
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    try:
        for name, loss, opt in rows:
            with mlflow.start_run(run_name=name):
                mlflow.log_metric("val_loss", loss)
                mlflow.log_param("opt", opt)
        theirs = mlflow.search_runs(order_by=["metrics.val_loss ASC"])
    finally:
        mlflow.set_tracking_uri(None)
    for name, loss, opt in rows:
        with mlreg.start_run(run_name=name):
            mlreg.log_metric("val_loss", loss)
            mlreg.log_param("opt", opt)
    ours = mlreg.search_runs(order_by=["metrics.val_loss ASC"])

    def own(df: pd.DataFrame) -> list[str]:
        return [c for c in df.columns if not c.startswith(("tags.mlflow.", "tags.mlreg."))]

    assert own(ours) == own(theirs)
    assert [str(t) for t in ours[own(ours)].dtypes] == [str(t) for t in theirs[own(theirs)].dtypes]
    np.testing.assert_array_equal(ours["metrics.val_loss"], theirs["metrics.val_loss"])
