"""Searching models and versions with MLflow's filter syntax, on every store."""

from __future__ import annotations

import pytest

from mlreg.errors import InvalidInput


@pytest.fixture
def filled(client, model_dir):
    client.create_registered_model("alpha", tags={"team": "cv"})
    client.create_registered_model("Beta", tags={"team": "nlp"})
    client.create_registered_model("gamma")
    client.begin_version("alpha", "runs:/r1/model", "r1", None, {"data": "v1"}, None)
    client.begin_version("alpha", "runs:/r2/model", "r2", None, {}, None)
    client.begin_version("Beta", "mlflow-artifacts:/1/r3/artifacts/m", "r3", None, {}, None)
    return client


def _models(client, text, order="name ASC") -> list[str]:
    page = client.search_registered_models(filter_string=text, order_by=order)
    return [m.name for m in page.items]


def _versions(client, text, order="name ASC, version ASC") -> list[tuple[str, int]]:
    page = client.search_model_versions(filter_string=text, order_by=order)
    return [(v.name, v.version) for v in page.items]


def test_registered_models(filled):
    assert _models(filled, "name = 'alpha'") == ["alpha"]
    assert _models(filled, "name LIKE '%a'") == ["Beta", "alpha", "gamma"]
    assert _models(filled, "name ILIKE 'beta'") == ["Beta"]
    assert _models(filled, "name IN ('gamma', 'alpha')") == ["alpha", "gamma"]
    assert _models(filled, "name NOT IN ('gamma')") == ["Beta", "alpha"]
    assert _models(filled, "tags.team = 'cv'") == ["alpha"]
    assert _models(filled, "tags.team != 'cv'") == ["Beta"]  # needs the tag
    assert _models(filled, "tags.team LIKE '%'", order="name DESC") == ["alpha", "Beta"]


def test_model_versions(filled):
    assert _versions(filled, "name = 'alpha'") == [("alpha", 1), ("alpha", 2)]
    assert _versions(filled, "run_id = 'r2'") == [("alpha", 2)]
    assert _versions(filled, "run_id IN ('r1', 'r3')") == [("Beta", 1), ("alpha", 1)]
    assert _versions(filled, "source_path LIKE 'mlflow-artifacts:%'") == [("Beta", 1)]
    assert _versions(filled, "version_number > 1") == [("alpha", 2)]
    assert _versions(filled, "tags.data = 'v1' and name = 'alpha'") == [("alpha", 1)]
    assert _versions(filled, None, order="version DESC, name ASC")[0] == ("alpha", 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda c: c.search_registered_models(filter_string="run_id = 'x'"),
            "in \"run_id = 'x'\": unknown attribute 'run_id'; use name",
        ),
        (
            lambda c: c.search_registered_models(filter_string="tags.a < 'x'"),
            "in \"tags.a < 'x'\": operator < does not apply to tags.a; use =, !=, LIKE, ILIKE",
        ),
        (
            lambda c: c.search_model_versions(filter_string="version_number = 'one'"),
            "in \"version_number = 'one'\": attributes.version compares with a number",
        ),
        (
            lambda c: c.search_model_versions(filter_string="metrics.acc > 1"),
            "in 'metrics.acc > 1': model versions are searched by name, run_id, source, "
            "source_path, version, version_number and tags.",
        ),
        (
            lambda c: c.search_model_versions(filter_string="name = 'a' or name = 'b'"),
            "cannot parse filter \"name = 'a' or name = 'b'\" after \"name = 'a'\": clauses are "
            "joined by AND (OR is not supported)",
        ),
    ],
    ids=["model-attribute", "tag-operator", "version-number", "metrics", "or"],
)
def test_bad_filters(client, call, message):
    with pytest.raises(InvalidInput) as e:
        call(client)
    assert e.value.message == message
