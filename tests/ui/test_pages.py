"""The web UI through Flask's test client on a real SQLite store: every page, the forms and what
they change, CSRF, escaping, error pages, and the headers pages carry."""

from __future__ import annotations

import re

import pytest

from mlreg.registry import MlregClient
from mlreg.server.ui.site import CSP
from tests.ui.data import IMG, SCRIPT


def pages(site) -> list[str]:
    s = site.seeded
    run = s.run_with_model
    exp = s.experiment_id
    return [
        "/",
        "/models",
        "/models?q=cn&tag=owner%3D" + SCRIPT,
        "/models/cnn",
        "/models/cnn/versions/2",
        "/experiments",
        f"/experiments/{exp}",
        f"/experiments/{exp}?filter=metrics.loss+%3C+0.5&order_by=metrics.loss+ASC"
        "&cols=1&col=metrics.loss&col=params.lr&col=tags.note",
        f"/experiments/{exp}/compare?run={s.runs[0]}&run={s.runs[1]}",
        f"/runs/{run}",
        f"/runs/{run}/artifacts",
        f"/runs/{run}/artifacts?path=notes.txt",
        f"/runs/{run}/artifacts?path=model/MLmodel",
        f"/runs/{run}/register",
        f"/runs/{run}/register?artifact=model&name=new-model",
        "/login",
    ]


def test_every_page_renders_with_its_headers(site):
    for path in pages(site):
        response = site.client.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[-500:])
        assert response.mimetype == "text/html", path
        assert response.headers["Content-Security-Policy"] == CSP, path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Cache-Control"] == "no-store", path


def test_html_in_names_tags_and_values_is_shown_as_text(site):
    escaped_script = "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"
    seen = 0
    for path in pages(site):
        html = site.get(path)[1]
        assert SCRIPT not in html, path
        assert IMG not in html, path
        assert "<img src=x" not in html, path
        seen += escaped_script in html
    assert seen >= 6  # the model's description and tag, params, the experiment's tag ...
    assert "&lt;img src=x onerror=" in site.get("/models/cnn/versions/2")[1]


def test_the_start_page_says_what_the_server_is_and_how_to_use_it(site):
    html = site.get("/")[1]
    assert "model registry" in html and "experiment tracking" in html
    assert "export MLREG_TRACKING_URI=http://localhost" in html
    assert 'href="/models/cnn"' in html
    for run_id in site.seeded.runs:
        assert f'href="/runs/{run_id}"' in html


def test_the_start_page_of_an_empty_server_guides_a_newcomer(tmp_path):
    from mlreg.server.app import create_app
    from mlreg.server.settings import ServerSettings
    from mlreg.store.settings import StoreSettings

    app = create_app(ServerSettings(store=StoreSettings.for_home(tmp_path)))
    try:
        html = app.test_client().get("/").get_data(as_text=True)
    finally:
        app.extensions["mlreg.server"].close()
    assert "No model is registered yet" in html
    assert "No run has been logged yet" in html
    assert "mlreg.tensorflow.autolog(registered_model_name=" in html


def test_models_list_shows_stages_aliases_and_tags(site):
    html = site.get("/models")[1]
    row = html[html.index('href="/models/cnn"') :]
    row = row[: row.index("</tr>")]
    production = re.findall(r"<td>(.*?)</td>", row, re.S)[1]
    assert 'href="/models/cnn/versions/2">v2' in production
    assert "@champion → v2" in row
    assert "owner=&lt;script&gt;" in row


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("q=cn", True),
        ("q=nothing", False),
        ("tag=owner%3D" + SCRIPT.replace("'", "%27"), True),
        ("tag=owner%3Dother", False),
    ],
    ids=["name", "name-miss", "tag", "tag-miss"],
)
def test_models_search_by_name_and_tag(site, query, found):
    status, html = site.get("/models?" + query)
    assert status == 200
    assert ('href="/models/cnn"' in html) is found
    if not found:
        assert "No model matches." in html


def test_a_bad_tag_filter_is_a_400_page_naming_it(site):
    status, html = site.get("/models?tag=owner")
    assert status == 400
    assert "tag filter &#39;owner&#39;: expected KEY=VALUE, e.g. team=vision" in html


def moves(html: str) -> list[tuple[str, str, str]]:
    """The model page's timeline, newest first: (version, from, to)."""
    timeline = html[html.index('id="timeline"') :]
    timeline = timeline[: timeline.index("</ol>")]
    stage = r'<span class="stage stage-\w+">(\w+)</span>'
    return re.findall(r"v(\d+)</a>\s*" + stage + " → " + stage, timeline)


def test_model_page_lists_versions_timeline_and_creators(site):
    html = site.get("/models/cnn")[1]
    for n in (1, 2, 3):
        assert f'href="/models/cnn/versions/{n}">v{n}</a>' in html
    assert moves(html) == [
        ("1", "Production", "Archived"),
        ("2", "None", "Production"),
        ("1", "None", "Production"),
    ]
    assert "<strong>alice</strong> moved" in html
    assert "<td>alice</td>" in html  # created by: the user of the source run


def test_version_page_shows_signature_lineage_files_and_commands(site):
    html = site.get("/models/cnn/versions/2")[1]
    assert "<code>float32</code></td><td><code>(-1, 3)</code>" in html
    assert "pyfunc.load_model(&#34;models:/cnn/2&#34;)" in html
    assert "mlreg serve -m models:/cnn/2 --port 8080" in html
    assert "mlreg build-docker -m models:/cnn/2 -n cnn:2" in html
    assert "saved no serving example" in html
    assert f'href="/runs/{site.seeded.runs[1]}"' in html  # lineage: version 2 came from run 1
    assert '<th scope="row">lr</th><td class="wrap">0.002</td>' in html
    assert "/api/v1/models/cnn/versions/2/files/data/weights.bin" in html
    assert re.search(r"sha256:[0-9a-f]{64}", html)


def test_curl_command_inlines_a_small_serving_example(fresh, tmp_path):
    from tests.conftest import make_model_dir

    src = make_model_dir(tmp_path / "with-example")
    (src / "serving_input_example.json").write_text('{"inputs": [[1.0, 2.0, 3.0]]}')
    with MlregClient(fresh.app.extensions["mlreg.server"].registry.settings) as client:
        client.register_model(str(src), "served")
    html = fresh.get("/models/served/versions/1")[1]
    assert (
        "curl -s -X POST http://127.0.0.1:8080/invocations -H &#39;Content-Type: "
        "application/json&#39; -d &#39;{&#34;inputs&#34;: [[1.0, 2.0, 3.0]]}&#39;"
    ) in html


def test_runs_table_columns_sorting_and_filter(site):
    exp = site.seeded.experiment_id
    html = site.get(f"/experiments/{exp}?order_by=params.%60lr%60+DESC&cols=1&col=params.lr")[1]
    names = re.findall(r'<th scope="row"><a href="/runs/\w+">(run-\d)</a>', html)
    assert names == ["run-2", "run-1", "run-0"]
    assert 'aria-sort="descending"' in html
    header = html[html.index("<thead>") : html.index("</thead>")]
    assert "lr" in header and "loss" not in header  # only the chosen column
    html = site.get(f"/experiments/{exp}?filter=params.lr+%3D+%270.002%27")[1]
    assert re.findall(r'<th scope="row"><a href="/runs/\w+">(run-\d)</a>', html) == ["run-1"]


def test_runs_table_default_columns_are_the_pages_metrics_and_params(site):
    html = site.get(f"/experiments/{site.seeded.experiment_id}")[1]
    header = html[html.index("<thead>") : html.index("</thead>")]
    for key in ("accuracy", "loss", "layers", "lr", "optimizer"):
        assert key in header


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("filter=metrics.loss+%3C%3C+1", "cannot parse filter clause"),
        ("filter=foo.bar+%3D+1", "unknown entity &#39;foo&#39;"),
        ("cols=1&col=loss", "column &#39;loss&#39;: expected metrics.KEY, params.KEY or tags.KEY"),
        ("start=x", "query parameter &#39;start&#39;: expected 0-"),
    ],
    ids=["syntax", "entity", "column", "start"],
)
def test_runs_table_bad_queries_say_what_is_wrong(site, query, message):
    status, html = site.get(f"/experiments/{site.seeded.experiment_id}?{query}")
    assert status == 400
    assert message in html
    assert 'name="filter"' in html  # the form stays, to fix the query


def test_runs_table_pages(site, monkeypatch):
    from mlreg.server.ui import experiments

    monkeypatch.setattr(experiments, "RUNS_PER_PAGE", 2)
    exp = site.seeded.experiment_id
    first = site.get(f"/experiments/{exp}")[1]
    assert len(re.findall(r'name="run" value=', first)) == 2
    assert 'rel="next" href="/experiments/' in first and "start=2" in first
    second = site.get(f"/experiments/{exp}?start=2")[1]
    assert len(re.findall(r'name="run" value=', second)) == 1
    assert 'rel="prev"' in second


def test_compare_highlights_differing_params_and_lists_charts(site):
    s = site.seeded
    html = site.get(f"/experiments/{s.experiment_id}/compare?run={s.runs[0]}&run={s.runs[2]}")[1]
    differing = re.findall(r'<tr class="differs"><th scope="row">(\w+)', html)
    assert differing == ["lr"]
    assert "1 of the params differ" in html
    assert re.findall(r'<figure class="chart" data-key="(\w+)"', html) == ["accuracy", "loss"]
    only = site.get(
        f"/experiments/{s.experiment_id}/compare?run={s.runs[0]}&run={s.runs[2]}&diff=1"
    )[1]
    assert re.findall(r'<tr[^>]*><th scope="row">(\w+)', only[only.index("params-table") :]) == [
        "lr"
    ]


def test_compare_data_has_one_series_per_run_for_each_metric(site):
    s = site.seeded
    response = site.client.get(
        f"/experiments/{s.experiment_id}/compare/metrics.json?key=loss&key=accuracy"
        f"&key=never-logged&run={s.runs[1]}&run={s.runs[0]}"
    )
    assert response.status_code == 200
    doc = response.get_json()
    assert [r["run_id"] for r in doc["runs"]] == [s.runs[1], s.runs[0]]
    assert [r["name"] for r in doc["runs"]] == ["run-1", "run-0"]
    assert list(doc["metrics"]) == ["loss", "accuracy", "never-logged"]
    loss = doc["metrics"]["loss"]
    assert len(loss) == 2  # one series per run, in the runs' order
    assert loss[1]["step"] == list(range(20)) and len(loss[1]["time"]) == 20
    assert loss[1]["value"][0] == 1.0 and loss[0]["value"][0] == 0.5  # run-0, then run-1
    assert doc["metrics"]["never-logged"] == [{"step": [], "time": [], "value": []}] * 2


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("key=loss", 400, "select the runs to compare (query parameter 'run', repeatable)"),
        ("key=loss&run=nope", 404, "run 'nope' does not exist"),
        ("run={run}", 400, "query parameter 'key': expected a metric key (repeatable)"),
        ("run={run}&" + "&".join(f"key=k{i}" for i in range(51)), 400, "at most 50 at once"),
    ],
    ids=["no-runs", "unknown-run", "no-key", "too-many-keys"],
)
def test_compare_data_errors_are_json(site, query, status, message):
    s = site.seeded
    response = site.client.get(
        f"/experiments/{s.experiment_id}/compare/metrics.json?" + query.format(run=s.runs[0])
    )
    assert response.status_code == status
    assert message in response.get_json()["message"]


def test_compare_refuses_runs_of_another_experiment(fresh):
    tracking = fresh.app.extensions["mlreg.server"].tracking
    other = tracking.create_experiment("other")
    stray = tracking.create_run(other).info.run_id
    s = fresh.seeded
    status, html = fresh.get(f"/experiments/{s.experiment_id}/compare?run={s.runs[0]}&run={stray}")
    assert status == 400
    assert f"run {stray} belongs to experiment {other}, not {s.experiment_id}" in html


def test_run_page_shows_min_max_charts_artifacts_and_versions(site):
    run = site.seeded.run_with_model
    html = site.get(f"/runs/{run}")[1]
    row = re.search(r'<th scope="row">loss</th>(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells == ["0.05", "0.05", "1", "20", "19"]  # latest, min, max, values, last step
    assert 'id="chart-data"' in html and '"loss"' in html
    assert 'href="/models/cnn/versions/1">cnn v1</a>' in html
    assert f'href="/runs/{run}/artifacts?path=notes.txt"' in html


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("notes.txt", "hello &lt;b&gt;world&lt;/b&gt;"),
        ("config.json", "{\n  &#34;a&#34;: 1,\n  &#34;b&#34;: [\n    1,\n    2\n  ]\n}"),
        ("config.yaml", "a: 1"),
        ("model/MLmodel", "<dt>Flavors</dt><dd>python_function</dd>"),
        ("model/data/weights.bin", "<code>weights</code>"),
    ],
    ids=["text", "json", "yaml", "mlmodel", "small-text-file"],
)
def test_artifact_previews(site, path, expected):
    status, html = site.get(f"/runs/{site.seeded.run_with_model}/artifacts?path={path}")
    assert status == 200
    assert expected in html


@pytest.mark.parametrize(
    ("path", "status"),
    [("../../etc/passwd", 400), ("nope.txt", 404), ("model/nope", 404)],
    ids=["traversal", "missing", "missing-in-dir"],
)
def test_artifact_browser_refuses_bad_paths(site, path, status):
    assert site.get(f"/runs/{site.seeded.run_with_model}/artifacts?path={path}")[0] == status


def test_images_are_served_as_images_in_a_sandbox(fresh, tmp_path):
    from PIL import Image

    tracking = fresh.app.extensions["mlreg.server"].tracking
    run = fresh.seeded.run_with_model
    tracking.reopen(run)
    Image.new("RGB", (4, 4), "red").save(tmp_path / "red.png")
    tracking.log_artifact(run, tmp_path / "red.png", "plots")
    (tmp_path / "x.svg").write_text("<svg onload=alert(1)></svg>")
    tracking.log_artifact(run, tmp_path / "x.svg", "plots")
    html = fresh.get(f"/runs/{run}/artifacts?path=plots/red.png")[1]
    assert f'<img class="preview" src="/runs/{run}/images/plots/red.png"' in html
    image = fresh.client.get(f"/runs/{run}/images/plots/red.png")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert image.data.startswith(b"\x89PNG")
    svg = fresh.client.get(f"/runs/{run}/images/plots/x.svg", headers={"Accept": "text/html"})
    assert svg.status_code == 400  # never served as an image: an SVG can carry script
    assert "&lt;svg onload=alert(1)&gt;" in fresh.get(f"/runs/{run}/artifacts?path=plots/x.svg")[1]


# --- forms -------------------------------------------------------------------------------------


def registry_of(site):
    return site.app.extensions["mlreg.server"].registry


def test_transition_archives_the_version_in_production_and_the_timeline_shows_it(fresh):
    response = fresh.post(
        "/models/cnn/transition",
        {"version": "3", "stage": "Production", "archive_existing": "1"},
        page="/models/cnn",
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/models/cnn"
    registry = registry_of(fresh)
    assert registry.get_model_version("cnn", 3).stage.value == "Production"
    assert registry.get_model_version("cnn", 2).stage.value == "Archived"
    html = fresh.get("/models/cnn")[1]
    assert "Moved version 3 of cnn to Production, archiving the versions that were in " in html
    assert set(moves(html)[:2]) == {("3", "None", "Production"), ("2", "Production", "Archived")}
    assert "<strong>anonymous</strong> moved" in html  # no auth: who the browser is


def test_alias_set_and_removed(fresh):
    assert (
        fresh.post(
            "/models/cnn/aliases", {"alias": "candidate", "version": "3"}, page="/models/cnn"
        ).status_code
        == 303
    )
    assert registry_of(fresh).get_version_by_alias("cnn", "candidate").version == 3
    assert "@candidate" in fresh.get("/models/cnn")[1]
    fresh.post("/models/cnn/aliases/candidate/delete", {}, page="/models/cnn")
    assert "candidate" not in registry_of(fresh).get_registered_model("cnn").aliases


def test_a_fixable_mistake_goes_back_to_the_page_with_the_message(fresh):
    response = fresh.post(
        "/models/cnn/aliases", {"alias": "no way!", "version": "3"}, page="/models/cnn",
        follow=True,
    )  # fmt: skip
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'class="flash error" role="alert"' in html
    assert "alias" in html[html.index("flash error") :][:300]
    assert registry_of(fresh).get_registered_model("cnn").aliases == {"champion": 2}


def test_description_and_tags_are_edited(fresh):
    fresh.post("/models/cnn/description", {"description": "new words"}, page="/models/cnn")
    fresh.post("/models/cnn/tags", {"key": "team", "value": "vision"}, page="/models/cnn")
    fresh.post("/models/cnn/tags/delete", {"key": "owner"}, page="/models/cnn")
    model = registry_of(fresh).get_registered_model("cnn")
    assert model.description == "new words"
    assert model.tags == {"team": "vision"}
    page = "/models/cnn/versions/3"
    fresh.post("/models/cnn/versions/3/description", {"description": "v3!"}, page=page)
    fresh.post("/models/cnn/versions/3/tags", {"key": "k", "value": "v"}, page=page)
    version = registry_of(fresh).get_model_version("cnn", 3)
    assert version.description == "v3!" and version.tags == {"k": "v"}
    fresh.post("/models/cnn/versions/3/tags/delete", {"key": "k"}, page=page)
    assert registry_of(fresh).get_model_version("cnn", 3).tags == {}


@pytest.mark.parametrize(
    ("path", "confirm", "survives"),
    [
        ("/models/cnn/delete", "cnn2", True),
        ("/models/cnn/delete", "", True),
        ("/models/cnn/delete", "cnn", False),
        ("/models/cnn/versions/3/delete", "2", True),
        ("/models/cnn/versions/3/delete", "3", False),
    ],
    ids=["model-wrong-name", "model-empty", "model", "version-wrong-number", "version"],
)
def test_deleting_asks_for_the_name_or_number(fresh, path, confirm, survives):
    page = "/models/cnn/versions/3" if "versions" in path else "/models/cnn"
    response = fresh.post(path, {"confirm": confirm}, page=page, follow=True)
    html = response.get_data(as_text=True)
    registry = registry_of(fresh)
    if "versions" in path:
        exists = any(v.version == 3 for v in registry.search_model_versions(name="cnn").items)
    else:
        exists = bool(registry.search_registered_models(name_like="cnn").items)
    assert exists is survives
    if survives:
        assert "nothing was deleted" in html
    else:
        assert "Deleted" in html


def test_register_from_a_run_makes_a_new_model_and_a_new_version(fresh):
    run = fresh.seeded.run_with_model
    page = f"/runs/{run}/register?artifact=model&name=fresh-model"
    html = fresh.get(page)[1]
    assert "version 1 of a new model <strong>fresh-model</strong>" in html
    response = fresh.post(
        "/models/fresh-model/register", {"run_id": run, "artifact": "model"}, page=page
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/models/fresh-model/versions/1"
    made = registry_of(fresh).get_model_version("fresh-model", 1)
    assert made.source == f"runs:/{run}/model" and made.run_id == run
    assert made.status.value == "READY" and made.signature is not None
    fresh.post("/models/cnn/register", {"run_id": run, "artifact": "model"}, page=page)
    assert registry_of(fresh).get_model_version("cnn", 4).run_id == run


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("artifact=nope&name=x", "artifact &#39;nope&#39;: expected one of the run&#39;s model "
         "directories (model)"),
        ("artifact=model&name=bad%20name", "model name"),
    ],
    ids=["artifact", "name"],
)  # fmt: skip
def test_register_form_says_what_is_wrong(site, query, message):
    status, html = site.get(f"/runs/{site.seeded.run_with_model}/register?{query}")
    assert status == 400
    assert message in html


@pytest.mark.parametrize(
    ("form", "session", "reason"),
    [
        ({}, True, "The CSRF token is missing."),
        ({"csrf_token": "forged"}, True, "The CSRF token is invalid."),
        ({"csrf_token": "forged"}, False, "The CSRF session token is missing."),
    ],
    ids=["no-token", "forged", "no-session"],
)
def test_a_form_without_its_csrf_token_changes_nothing(fresh, form, session, reason):
    if session:
        fresh.token("/models/cnn")  # the browser has loaded a page: it has a session
    response = fresh.client.post(
        "/models/cnn/transition",
        data={"version": "3", "stage": "Production", **form},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f"this form cannot be accepted: {reason} Reload the page" in html
    assert registry_of(fresh).get_model_version("cnn", 3).stage.value == "None"


def test_a_csrf_token_from_another_browser_session_is_refused(fresh):
    token = fresh.token("/models/cnn")
    other = fresh.app.test_client()  # no session cookie: another browser
    response = other.post(
        "/models/cnn/transition", data={"csrf_token": token, "version": "3", "stage": "Staging"}
    )
    assert response.status_code == 400
    assert registry_of(fresh).get_model_version("cnn", 3).stage.value == "None"


def test_the_api_takes_no_csrf_token(fresh):
    response = fresh.client.post("/api/v1/models/cnn/versions/3/stage", json={"stage": "Staging"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
)
def test_a_form_never_sends_the_browser_to_another_site(fresh, target):
    form = {"csrf_token": fresh.token("/models/cnn"), "next": target, "description": "x"}
    response = fresh.client.post("/models/cnn/description", data=form)
    assert response.status_code == 303
    assert response.headers["Location"] == "/models/cnn"


# --- error pages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/models/nope", 404, "registered model &#39;nope&#39; does not exist"),
        ("/models/cnn/versions/9", 404, "version 9"),
        ("/runs/nope", 404, "run &#39;nope&#39; does not exist"),
        ("/experiments/999", 404, "experiment 999 does not exist"),
        ("/no/such/page", 404, "no endpoint /no/such/page"),
    ],
    ids=["model", "version", "run", "experiment", "no-route"],
)
def test_error_pages_are_pages_for_browsers(site, path, status, message):
    got, html = site.get(path)
    assert got == status
    assert html.startswith("<!doctype html>")
    assert message in html


def test_api_errors_stay_json(site):
    response = site.client.get("/api/v1/models/nope", headers={"Accept": "text/html"})
    assert response.status_code == 404 and response.mimetype == "application/json"
    response = site.client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404 and response.mimetype == "application/json"


def test_static_files_and_the_vendored_chart_library(site):
    for path, kind in (
        ("/static/app.css", "text/css"),
        ("/static/charts.js", "text/javascript"),
        ("/static/vendor/uplot/uPlot.iife.min.js", "text/javascript"),
        ("/static/vendor/uplot/LICENSE", None),
    ):
        response = site.client.get(path)
        assert response.status_code == 200, path
        if kind:
            assert response.mimetype == kind
        response.close()
    assert site.client.get("/static/../app.py").status_code == 404


def test_every_form_route_checks_its_csrf_token(fresh):
    """Whatever form is added later: its route refuses a post without the token."""
    from mlreg.server.api import ROUTES_KEY

    fresh.token("/models/cnn")  # a browser session exists
    values = {"name": "cnn", "version": "3", "alias": "champion"}
    posts = [r for e, r in fresh.app.extensions[ROUTES_KEY].items() if e.startswith("ui.post_")]
    assert len(posts) >= 12
    for route in posts:
        path = re.sub(r"<(\w+)>", lambda m: values[m.group(1)], route.rule)
        response = fresh.client.post(path, data={"confirm": "cnn", "key": "owner"})
        assert response.status_code == 400, path
        assert "The CSRF token is missing." in response.get_data(as_text=True), path
    assert registry_of(fresh).get_registered_model("cnn").tags == {"owner": SCRIPT}


def test_a_version_whose_run_is_gone_or_odd_still_shows(fresh, tmp_path):
    from tests.conftest import make_model_dir

    src = make_model_dir(tmp_path / "odd")
    registry = registry_of(fresh)
    registry.register_model(str(src), "cnn", run_id="gone-run")
    registry.register_model(str(src), "cnn", run_id="odd id with 'quotes'")
    status, html = fresh.get("/models/cnn")
    assert status == 200
    assert 'href="/models/cnn/versions/5">v5</a>' in html
    status, html = fresh.get("/models/cnn/versions/4")
    assert status == 200
    assert "run gone-run no longer exists" in html


def runs_listed(html: str) -> set[str]:
    return set(re.findall(r'name="run" value="([0-9a-f]{32})"', html))


def test_deleted_runs_are_left_out_and_said_to_be_deleted_where_they_are_named(fresh):
    """Main's run lifecycle: a deleted run is out of the runs table, the start page and
    comparisons; its own page, and the model and version it produced, say it is deleted."""
    s = fresh.seeded
    gone, kept = s.runs[1], {s.runs[0], s.runs[2]}  # v2 of cnn came from runs[1]
    fresh.app.extensions["mlreg.server"].tracking.delete_run(gone)
    status, html = fresh.get(f"/experiments/{s.experiment_id}")
    assert status == 200 and runs_listed(html) == kept
    assert f'href="/experiments/{s.experiment_id}?view=deleted"' in html
    status, html = fresh.get(f"/experiments/{s.experiment_id}?view=deleted")
    assert status == 200 and runs_listed(html) == {gone}
    assert "<strong>Deleted runs</strong>" in html
    assert f'href="/runs/{gone}"' not in fresh.get("/")[1]
    status, html = fresh.get(f"/experiments/{s.experiment_id}/compare?run={s.runs[0]}&run={gone}")
    assert status == 400
    assert f"run {gone} is deleted; restore it (mlreg runs restore {gone}) to compare it" in html
    charts = fresh.client.get(
        f"/experiments/{s.experiment_id}/compare/metrics.json?key=loss&run={gone}"
    )
    assert charts.status_code == 400
    assert charts.get_json()["message"].startswith(f"run {gone} is deleted")
    status, html = fresh.get(f"/runs/{gone}")
    assert status == 200 and 'id="deleted-run"' in html
    assert f"<code>mlreg runs restore {gone}</code> brings it back" in html
    assert 'id="deleted-run"' not in fresh.get(f"/runs/{s.runs[0]}")[1]
    html = fresh.get("/models/cnn")[1]
    row = re.search(r'href="/models/cnn/versions/2">v2</a>.*?</tr>', html, re.S).group(0)
    assert "(deleted)" in row and "alice" in row  # its creator is still known
    assert html.count("(deleted)") == 1
    assert "The run is deleted" in fresh.get("/models/cnn/versions/2")[1]
    assert "The run is deleted" not in fresh.get("/models/cnn/versions/1")[1]
    fresh.app.extensions["mlreg.server"].tracking.restore_run(gone)
    assert runs_listed(fresh.get(f"/experiments/{s.experiment_id}")[1]) == kept | {gone}


def test_a_runs_table_view_that_does_not_exist_is_named(site):
    status, html = site.get(f"/experiments/{site.seeded.experiment_id}?view=all")
    assert status == 400
    assert (
        "query parameter &#39;view&#39;: expected one of active, deleted, got &#39;all&#39;" in html
    )


@pytest.mark.parametrize(
    ("path", "data", "status", "message"),
    [
        (
            "/models/cnn/description",
            {"description": "x" * (2 << 20)},
            413,
            "the limit is 1048576 bytes (the web UI&#39;s form limit)",
        ),
        (
            "/models/cnn/description",
            {"description": "a\x00b"},
            200,
            "field &#39;description&#39;: contains a NUL character, which no name or text may hold",
        ),
        (
            "/models/cnn/versions/2/tags",
            {"key": "k", "value": "v\x00"},
            200,
            "field &#39;value&#39;: contains a NUL character, which no name or text may hold",
        ),
        (
            "/models/cnn/description",
            {"description": "x" * 5001},
            200,
            "description longer than 5000 characters",
        ),
    ],
    ids=["huge-body", "nul-description", "nul-tag-value", "long-description"],
)
def test_oversized_or_nul_form_input_is_refused_and_changes_nothing(
    fresh, path, data, status, message
):
    before = registry_of(fresh).get_registered_model("cnn")
    tags = registry_of(fresh).get_model_version("cnn", 2).tags
    response = fresh.post(path, data, page="/models/cnn", follow=True)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert registry_of(fresh).get_registered_model("cnn") == before
    assert registry_of(fresh).get_model_version("cnn", 2).tags == tags
