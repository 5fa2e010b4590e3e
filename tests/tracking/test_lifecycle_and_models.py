"""Deleting and restoring experiments and runs, renames, inputs and outputs, and logged models
(MLflow 3), on SQLite, PostgreSQL and through an mlreg server."""

from __future__ import annotations

import pytest

from mlreg.errors import (
    AlreadyExists,
    ExperimentNotFound,
    InvalidInput,
    ModelNotFound,
    NotFound,
    TagNotFound,
)
from mlreg.tracking import TrackingClient
from mlreg.tracking.entities import (
    Dataset,
    DatasetInput,
    Lifecycle,
    LoggedModelStatus,
    Metric,
    ModelOutput,
    RunStatus,
)
from mlreg.tracking.search import logged_model_order


@pytest.fixture
def tracking(settings):
    with TrackingClient(settings) as client:
        yield client


def _names(runs) -> list[str]:
    return [r.info.run_name for r in runs]


# --- experiments ----------------------------------------------------------------------------


def test_the_default_experiment_is_id_0(tracking):
    assert tracking.default_experiment_id() == "0"
    assert tracking.get_experiment("0").name == "Default"
    assert tracking.default_experiment_id() == "0"
    assert tracking.create_experiment("other") != "0"
    with pytest.raises(AlreadyExists, match="experiment 'Default' already exists"):
        tracking.create_experiment("Default")
    run = tracking.create_run()
    assert run.info.experiment_id == "0"


def test_rename_delete_and_restore_an_experiment(tracking):
    exp = tracking.create_experiment("cnn")
    tracking.create_experiment("taken")
    created = tracking.get_experiment(exp)
    assert created.lifecycle_stage is Lifecycle.ACTIVE
    assert created.last_update_time == created.creation_time

    renamed = tracking.rename_experiment(exp, "cnn-v2")
    assert renamed.name == "cnn-v2" and renamed.last_update_time >= created.creation_time
    assert tracking.get_experiment_by_name("cnn") is None
    with pytest.raises(AlreadyExists, match="experiment 'taken' already exists"):
        tracking.rename_experiment(exp, "taken")
    with pytest.raises(InvalidInput, match="invalid experiment name ''"):
        tracking.rename_experiment(exp, "")

    run = tracking.create_run(exp, run_name="r")
    deleted = tracking.delete_experiment(exp)
    assert deleted.lifecycle_stage is Lifecycle.DELETED
    assert tracking.get_experiment(exp).lifecycle_stage is Lifecycle.DELETED
    assert tracking.get_experiment_by_name("cnn-v2").experiment_id == exp
    active = [e.name for e in tracking.search_experiments().items]
    assert "cnn-v2" not in active and "taken" in active
    assert [e.name for e in tracking.search_experiments(view="DELETED_ONLY").items] == ["cnn-v2"]
    assert "cnn-v2" in [e.name for e in tracking.search_experiments(view="ALL").items]
    with pytest.raises(InvalidInput) as refused:
        tracking.create_run(exp)
    assert refused.value.message == f"experiment {exp} ('cnn-v2') is deleted; restore it first"
    assert tracking.get_run(run.info.run_id).info.run_name == "r"  # its runs stay

    tracking.restore_experiment(exp)
    assert tracking.get_experiment(exp).lifecycle_stage is Lifecycle.ACTIVE
    assert tracking.create_run(exp).info.experiment_id == exp


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda t: t.delete_experiment(t.default_experiment_id()),
            InvalidInput,
            "the default experiment (id 0) cannot be deleted",
        ),
        (lambda t: t.delete_experiment("404"), ExperimentNotFound, "experiment 404 does not exist"),
        (
            lambda t: t.restore_experiment("404"),
            ExperimentNotFound,
            "experiment 404 does not exist",
        ),
        (
            lambda t: t.search_experiments(view="SOME"),
            InvalidInput,
            "invalid view type 'SOME'; expected one of ACTIVE_ONLY, DELETED_ONLY, ALL",
        ),
        (
            lambda t: t.search_experiments(filter_string="params.x = 'y'"),
            InvalidInput,
            "in \"params.x = 'y'\": experiments are searched by name, experiment_id, "
            "creation_time, last_update_time and tags.",
        ),
        (
            lambda t: t.search_experiments(order_by=["size DESC"]),
            InvalidInput,
            "in order_by 'size DESC': cannot order by 'size'; use creation_time, experiment_id, "
            "last_update_time, name",
        ),
    ],
    ids=["default", "delete-missing", "restore-missing", "view", "filter", "order"],
)
def test_experiment_errors(tracking, call, error, message):
    with pytest.raises(error) as e:
        call(tracking)
    assert e.value.message == message


def test_experiment_tags_and_search(tracking):
    a = tracking.create_experiment("alpha", tags={"team": "cv"})
    b = tracking.create_experiment("beta", tags={"team": "nlp"})
    tracking.create_experiment("gamma")
    tracking.delete_experiment_tag(b, "team")
    assert tracking.get_experiment(b).tags == {}
    with pytest.raises(TagNotFound, match=f"experiment {b} has no tag 'team'"):
        tracking.delete_experiment_tag(b, "team")

    def names(**kwargs) -> list[str]:
        return [e.name for e in tracking.search_experiments(**kwargs).items]

    assert names(filter_string="tags.team = 'cv'") == ["alpha"]
    assert names(filter_string="name LIKE '%a' and name != 'gamma'") == ["alpha", "beta"]
    assert names(filter_string="name ILIKE 'ALPHA'") == ["alpha"]
    assert names(filter_string=f"attributes.experiment_id IN ('{a}', '{b}')") == ["alpha", "beta"]
    assert names(filter_string="name != 'Default'", order_by=["name DESC"]) == [
        "gamma",
        "beta",
        "alpha",
    ]
    # From alpha's creation on: the Default experiment (made earlier, by a server at its
    # start) stays out.
    since = tracking.get_experiment(a).creation_time
    newest_first = names(filter_string=f"creation_time >= {since}", order_by="creation_time DESC")
    assert newest_first[0] == "gamma" and set(newest_first) == {"alpha", "beta", "gamma"}
    first = tracking.search_experiments(filter_string="name LIKE '%a%'", max_results=2)
    assert len(first.items) == 2 and first.next_offset == 2


# --- runs -----------------------------------------------------------------------------------


def test_delete_restore_rename_and_end_a_run(tracking):
    exp = tracking.create_experiment("runs")
    keep = tracking.create_run(exp, run_name="keep", start_time=1_700_000_000_000)
    gone = tracking.create_run(exp, run_name="gone")
    assert keep.info.start_time == 1_700_000_000_000

    tracking.delete_run(gone.info.run_id)
    assert tracking.get_run(gone.info.run_id).info.lifecycle_stage is Lifecycle.DELETED
    assert _names(tracking.search_runs([exp])) == ["keep"]
    assert _names(tracking.search_runs([exp], view="DELETED_ONLY")) == ["gone"]
    assert sorted(_names(tracking.search_runs([exp], view="ALL"))) == ["gone", "keep"]
    with pytest.raises(InvalidInput) as refused:
        tracking.log_metric(gone.info.run_id, "loss", 1.0)
    assert refused.value.message == (
        f"run {gone.info.run_id} is deleted; restore it before logging to it"
    )
    tracking.restore_run(gone.info.run_id)
    tracking.log_metric(gone.info.run_id, "loss", 1.0)

    ended = tracking.update_run(
        keep.info.run_id, status="FINISHED", end_time=1_700_000_060_000, run_name="kept"
    )
    assert (ended.info.status, ended.info.end_time, ended.info.run_name) == (
        RunStatus.FINISHED,
        1_700_000_060_000,
        "kept",
    )
    again = tracking.update_run(keep.info.run_id, status="RUNNING")
    assert (again.info.status, again.info.end_time) == (RunStatus.RUNNING, None)
    with pytest.raises(InvalidInput, match="invalid run status 'DONE'; expected one of"):
        tracking.update_run(keep.info.run_id, status="DONE")
    with pytest.raises(InvalidInput, match="start_time: expected milliseconds since the epoch"):
        tracking.create_run(exp, start_time=-5)


def test_an_ended_run_takes_logs_only_when_allowed(tracking):
    run = tracking.create_run(tracking.create_experiment("ended")).info.run_id
    tracking.set_terminated(run, "FINISHED")
    with pytest.raises(InvalidInput) as refused:
        tracking.log_batch(run, [Metric("late", 1.0, 1, 0)])
    assert refused.value.message == f"run {run} is FINISHED; it no longer takes logs"
    # MLflow's clients may log after the end (MLflow allows it); its API says so.
    tracking.log_batch(run, [Metric("late", 1.0, 1, 0)], {"p": "1"}, allow_ended=True)
    assert tracking.get_run(run).data.metrics == {"late": 1.0}
    tracking.delete_run(run)
    with pytest.raises(InvalidInput, match="is deleted; restore it before logging to it"):
        tracking.log_batch(run, [Metric("late", 2.0, 2, 1)], allow_ended=True)


def test_delete_a_run_tag(tracking):
    run = tracking.create_run(tracking.create_experiment("tags"), tags={"a": "1", "b": "2"})
    tracking.delete_tag(run.info.run_id, "a")
    assert set(tracking.get_run(run.info.run_id).data.tags) == {"b", "mlreg.user"}
    with pytest.raises(TagNotFound) as e:
        tracking.delete_tag(run.info.run_id, "a")
    assert e.value.message == f"run {run.info.run_id} has no tag 'a'"


def test_more_of_mlflows_filter_syntax(tracking):
    exp = tracking.create_experiment("syntax")
    ids = {}
    for name, team in [("a", "cv"), ("b", "CV"), ("c", "nlp")]:
        run = tracking.create_run(exp, run_name=name, tags={"team": team})
        ids[name] = run.info.run_id
    assert _names(tracking.search_runs([exp], "tags.team ILIKE 'cv'", "run_name")) == ["a", "b"]
    assert _names(tracking.search_runs([exp], "tags.team LIKE 'n%'")) == ["c"]
    assert _names(tracking.search_runs([exp], "tags.team IN ('nlp', 'CV')", "run_name")) == [
        "b",
        "c",
    ]
    assert _names(
        tracking.search_runs([exp], f"attributes.run_id NOT IN ('{ids['a']}')", "run_name")
    ) == ["b", "c"]
    assert _names(tracking.search_runs([exp], f"attributes.run_id = '{ids['c']}'")) == ["c"]
    user = tracking.get_run(ids["a"]).data.tags["mlreg.user"]
    assert len(tracking.search_runs([exp], f"attributes.user_id = '{user}'")) == 3
    assert tracking.search_runs([exp], "attributes.user_id = 'nobody'") == []
    assert _names(tracking.search_runs([exp], order_by="attributes.created DESC"))[0] == "c"


# --- inputs and outputs ---------------------------------------------------------------------


def _dataset(name: str = "train", digest: str = "d1") -> Dataset:
    return Dataset(name, digest, "code", '{"path": "x.csv"}', '{"mlflow_tensorspec": {}}', "{}")


def test_inputs_and_outputs_of_a_run(tracking):
    exp = tracking.create_experiment("io")
    run = tracking.create_run(exp)
    rid = run.info.run_id
    model = tracking.create_logged_model(exp, "model", source_run_id=rid)
    tracking.log_inputs(rid, [DatasetInput(_dataset(), {"mlflow.data.context": "train"})])
    tracking.log_inputs(
        rid,
        [
            DatasetInput(_dataset(), {"extra": "1"}),  # the same dataset: tags are merged
            DatasetInput(_dataset("eval", "d2"), {"mlflow.data.context": "eval"}),
        ],
        [model.model_id],
    )
    tracking.log_outputs(rid, [ModelOutput(model.model_id, 3)])
    got = tracking.get_run(rid)
    assert [(d.dataset.name, d.tags) for d in got.inputs.datasets] == [
        ("train", {"mlflow.data.context": "train", "extra": "1"}),
        ("eval", {"mlflow.data.context": "eval"}),
    ]
    assert got.inputs.datasets[0].dataset == _dataset()
    assert got.inputs.models == [model.model_id]
    assert got.outputs == [ModelOutput(model.model_id, 3)]
    # A second run of the experiment using the same dataset shares it.
    other = tracking.create_run(exp).info.run_id
    tracking.log_inputs(other, [DatasetInput(_dataset())])
    assert tracking.get_run(other).inputs.datasets == [DatasetInput(_dataset(), {})]
    [found] = tracking.search_runs([exp], f"attributes.run_id = '{rid}'")
    assert found.outputs == got.outputs


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda t, rid: t.log_outputs(rid, [ModelOutput("m-missing")]),
            NotFound,  # ModelNotFound; through a server, by its code and message
            "logged model 'm-missing' does not exist",
        ),
        (
            lambda t, rid: t.log_inputs(rid, [DatasetInput(Dataset("", "d", "code", "s"))]),
            InvalidInput,
            "dataset '': name must be text of 1-500 characters",
        ),
        (
            lambda t, rid: t.log_inputs(rid, [DatasetInput(Dataset("n", "d" * 65, "code", "s"))]),
            InvalidInput,
            "dataset 'n': digest must be text of 1-64 characters",
        ),
        (
            lambda t, rid: t.log_inputs(
                rid, [DatasetInput(Dataset("n", "d", "code", "s"), {"bad key!": "x"})]
            ),
            InvalidInput,
            "invalid tag key 'bad key!': use 1-250 letters, digits, '_', '-', '.', ' ' or '/'",
        ),
    ],
    ids=["unknown-model", "empty-name", "long-digest", "bad-tag"],
)
def test_bad_inputs_and_outputs_write_nothing(tracking, call, error, message):
    rid = tracking.create_run(tracking.create_experiment("bad-io")).info.run_id
    with pytest.raises(error) as e:
        call(tracking, rid)
    assert e.value.message == message
    got = tracking.get_run(rid)
    assert got.inputs.datasets == [] and got.outputs == []


# --- logged models --------------------------------------------------------------------------


def test_logged_model_lifecycle(tracking, tmp_path):
    exp = tracking.create_experiment("lm")
    run = tracking.create_run(exp).info.run_id
    model = tracking.create_logged_model(
        exp, "model", source_run_id=run, model_type="keras", params={"units": 8}, tags={"a": "1"}
    )
    assert model.model_id.startswith("m-") and len(model.model_id) == 34
    assert (model.status, model.name, model.source_run_id, model.model_type) == (
        LoggedModelStatus.PENDING,
        "model",
        run,
        "keras",
    )
    assert (model.params, model.tags) == ({"units": "8"}, {"a": "1"})
    assert model.artifact_uri.endswith(f"/{model.model_id}/artifacts")

    weights = tmp_path / "MLmodel"
    weights.write_text("flavors: {}\n")
    tracking.log_owner_file(model, weights)
    tracking.log_owner_file(model, weights, "data")
    listed = [(f.path, f.is_dir) for f in tracking.list_owner_artifacts(model)]
    assert listed == [("MLmodel", False), ("data", True)]

    tracking.log_batch(run, [Metric("acc", 0.5, 1, 0, model.model_id, "eval", "d2")])
    tracking.log_batch(run, [Metric("acc", 0.75, 2, 1, model.model_id)])
    tracking.log_logged_model_params(model.model_id, {"units": "8", "depth": 2})
    with pytest.raises(InvalidInput) as changed:
        tracking.log_logged_model_params(model.model_id, {"units": "9"})
    assert changed.value.message == (
        f"param 'units' of logged model {model.model_id!r} was already logged as '8'; a param "
        "cannot change (got '9')"
    )
    tracking.set_logged_model_tags(model.model_id, {"b": "2"})
    tracking.delete_logged_model_tag(model.model_id, "a")
    with pytest.raises(TagNotFound, match=f"logged model '{model.model_id}' has no tag 'a'"):
        tracking.delete_logged_model_tag(model.model_id, "a")

    ready = tracking.finalize_logged_model(model.model_id, "READY")
    assert ready.status is LoggedModelStatus.READY
    assert (ready.params, ready.tags) == ({"depth": "2", "units": "8"}, {"b": "2"})
    assert [(m.key, m.value, m.step, m.dataset_name) for m in ready.metrics] == [
        ("acc", 0.5, 0, "eval"),
        ("acc", 0.75, 1, None),
    ]
    assert tracking.get_run(run).data.metrics == {"acc": 0.75}

    # runs:/<run>/<name> finds a run's logged model when the run has no such artifacts.
    resolved = tracking.resolve(f"runs:/{run}/model")
    assert (resolved.path / "MLmodel").read_text() == "flavors: {}\n"

    tracking.delete_logged_model(model.model_id)
    with pytest.raises(ModelNotFound, match=f"logged model '{model.model_id}' was deleted"):
        tracking.get_logged_model(model.model_id)
    kept = tracking.get_logged_model(model.model_id, allow_deleted=True)
    assert kept.lifecycle_stage is Lifecycle.DELETED
    assert tracking.search_logged_models([exp]).items == []


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda t, e: t.finalize_logged_model("m-404", "READY"),
            ModelNotFound,
            "logged model 'm-404' does not exist",
        ),
        (
            lambda t, e: t.create_logged_model("404"),
            ExperimentNotFound,
            "experiment 404 does not exist",
        ),
        (
            lambda t, e: t.create_logged_model(e, "x" * 501),
            InvalidInput,
            f"invalid logged model name {'x' * 501!r}: 1-500 characters on one line",
        ),
        (
            lambda t, e: t.finalize_logged_model(t.create_logged_model(e).model_id, "PENDING"),
            InvalidInput,
            "invalid logged model status 'PENDING'; expected READY or FAILED",
        ),
        (
            lambda t, e: t.search_logged_models([e], "weight > 1"),
            InvalidInput,
            "in 'weight > 1': unknown attribute 'weight'; use creation_time, "
            "creation_timestamp, last_update_time, last_updated_timestamp, model_id, "
            "model_type, name, source_run_id, status",
        ),
    ],
    ids=["finalize-missing", "no-experiment", "long-name", "pending", "filter"],
)
def test_logged_model_errors(tracking, call, error, message):
    exp = tracking.create_experiment("lm-errors")
    with pytest.raises(error) as e:
        call(tracking, exp)
    assert e.value.message == message


def test_search_logged_models(tracking):
    exp = tracking.create_experiment("lm-search")
    run = tracking.create_run(exp).info.run_id
    made = {}
    for name, units in [("a", "8"), ("b", "16"), ("c", "8")]:
        made[name] = tracking.create_logged_model(
            exp, name, source_run_id=run if name != "c" else None, params={"units": units}
        )
    tracking.log_batch(run, [Metric("acc", 0.9, 1, 0, made["b"].model_id)])
    tracking.finalize_logged_model(made["a"].model_id, "READY")

    def names(filter_string=None, order=None, **kwargs) -> list[str]:
        page = tracking.search_logged_models([exp], filter_string, order, **kwargs)
        return [m.name for m in page.items]

    assert names() == ["c", "b", "a"]  # newest first
    assert names(order=[logged_model_order("name")]) == ["a", "b", "c"]
    assert names(order=[logged_model_order("creation_timestamp", True)]) == ["a", "b", "c"]
    assert names(f"source_run_id = '{run}'", [logged_model_order("name")]) == ["a", "b"]
    assert names(f"source_run_id = '{run}' AND name = 'b'") == ["b"]
    assert names("params.units = '8'", [logged_model_order("name")]) == ["a", "c"]
    assert names("metrics.acc > 0.5") == ["b"]
    assert names("status = 'READY'") == ["a"]
    page = tracking.search_logged_models([exp], max_results=2)
    assert len(page.items) == 2 and page.next_offset == 2
    assert tracking.logged_model_for_run(run, "b").model_id == made["b"].model_id
    assert tracking.logged_model_for_run(run, "c") is None
