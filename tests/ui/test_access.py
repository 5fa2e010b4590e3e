"""Who sees which action: every button comes from the permission its route declares, asked of
the one hook :func:`mlreg.server.ui.access.can`; the UI never asks less than the API does."""

from __future__ import annotations

import dataclasses
import re

import pytest

from mlreg.server.api import ROUTES_KEY
from mlreg.server.permissions import Level, Permission, Resource
from mlreg.server.settings import ServerSettings
from mlreg.server.ui.access import set_policy

FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')

#: Each form of the UI and the API route that does the same thing: the UI must declare the
#: same permission (a form is never easier to use than the API it stands for).
SAME_AS_API = {
    "ui.post_transition": "api_v1.post_transition",
    "ui.post_set_alias": "api_v1.put_set_alias",
    "ui.post_delete_alias": "api_v1.delete_delete_alias",
    "ui.post_describe_model": "api_v1.patch_update_model",
    "ui.post_set_model_tag": "api_v1.put_set_model_tag",
    "ui.post_delete_model_tag": "api_v1.delete_delete_model_tag",
    "ui.post_delete_model": "api_v1.delete_delete_model",
    "ui.post_describe_version": "api_v1.patch_update_version",
    "ui.post_set_version_tag": "api_v1.put_set_version_tag",
    "ui.post_delete_version_tag": "api_v1.delete_delete_version_tag",
    "ui.post_delete_version": "api_v1.delete_delete_version",
    "ui.post_register": "api_v1.post_create_version",
}


def declarations(app) -> dict:
    return app.extensions[ROUTES_KEY]


#: The forms that act on the browser's own session, not on the registry: open to everyone.
SESSION_FORMS = {"ui.post_sign_in", "ui.post_sign_out"}


def test_every_form_declares_what_the_api_declares_for_the_same_action(site):
    table = declarations(site.app)
    forms = {e for e, r in table.items() if e.startswith("ui.") and r.method == "POST"}
    assert forms - SESSION_FORMS == set(SAME_AS_API), (
        "a new form needs its API counterpart in SAME_AS_API"
    )
    for endpoint in SESSION_FORMS:
        assert table[endpoint].permission.level is Level.NONE, endpoint
    for ui, api in SAME_AS_API.items():
        assert table[ui].permission == table[api].permission, ui


def test_every_page_needs_read_except_sign_in_and_static_files(site):
    table = declarations(site.app)
    ui = {e: r for e, r in table.items() if e.startswith("ui.")}
    public = {e for e, r in ui.items() if r.permission.level is Level.NONE}
    assert public == {"ui.get_login", "ui.get_static", *SESSION_FORMS}
    for endpoint, route in table.items():
        if endpoint.startswith("ui.get_") and endpoint not in public:
            assert route.permission.level is Level.READ, endpoint


class Recorder:
    """A policy that grants ``levels`` and records what it was asked (user, level, resource
    kind, resource name)."""

    def __init__(self, levels: set[Level]) -> None:
        self.levels = levels
        self.asked: set[tuple[str, Level, Resource, str | None]] = set()

    def __call__(self, user: str, permission: Permission, resource: str | None) -> bool:
        self.asked.add((user, permission.level, permission.resource, resource))
        return permission.level in self.levels


@pytest.fixture
def policy(site):
    def install(levels: set[Level]) -> Recorder:
        recorder = Recorder(levels)
        set_policy(site.app, recorder)
        return recorder

    yield install
    set_policy(site.app, None)


def forms_on(site, path: str) -> set[str]:
    status, html = site.get(path)
    assert status == 200
    return set(FORM_ACTION.findall(html))


MODEL_FORMS = {
    Level.EDIT: {"/models/cnn/description", "/models/cnn/tags", "/models/cnn/tags/delete"},
    Level.PROMOTE: {
        "/models/cnn/transition",
        "/models/cnn/aliases",
        "/models/cnn/aliases/champion/delete",
    },
    Level.MANAGE: {"/models/cnn/delete"},
}
VERSION_FORMS = {
    Level.EDIT: {
        "/models/cnn/versions/2/description",
        "/models/cnn/versions/2/tags",
        "/models/cnn/versions/2/tags/delete",
    },
    Level.PROMOTE: {"/models/cnn/transition", "/models/cnn/aliases"},
    Level.MANAGE: {"/models/cnn/versions/2/delete"},
}


@pytest.mark.parametrize(
    "granted",
    [
        set(),
        {Level.READ},
        {Level.READ, Level.EDIT},
        {Level.READ, Level.EDIT, Level.PROMOTE},
        {Level.READ, Level.EDIT, Level.PROMOTE, Level.MANAGE},
        {Level.READ, Level.PROMOTE},
    ],
    ids=["nothing", "read", "edit", "promote", "manage", "promote-only"],
)
@pytest.mark.parametrize(
    ("path", "expected"),
    [("/models/cnn", MODEL_FORMS), ("/models/cnn/versions/2", VERSION_FORMS)],
    ids=["model", "version"],
)
def test_a_page_shows_exactly_the_actions_the_user_may_take(site, policy, granted, path, expected):
    recorder = policy(granted)
    if Level.READ not in granted:
        status, html = site.get(path)
        assert status == 403
        assert "anonymous needs READ on model &#39;cnn&#39;" in html
        return
    shown = forms_on(site, path)
    assert shown == set().union(*(forms for level, forms in expected.items() if level in granted))
    # Every question named the acting user and the model by its name.
    assert {(u, r, n) for u, _, r, n in recorder.asked} == {("anonymous", Resource.MODEL, "cnn")}


def test_register_is_offered_only_with_edit_on_the_target_model(site, policy):
    run = site.seeded.run_with_model
    path = f"/runs/{run}/register?artifact=model&name=cnn"
    policy({Level.READ})
    assert forms_on(site, path) == set()
    assert "You may not register versions of cnn." in site.get(path)[1]
    recorder = policy({Level.READ, Level.EDIT})
    assert forms_on(site, path) == {"/models/cnn/register"}
    assert ("anonymous", Level.EDIT, Resource.MODEL, "cnn") in recorder.asked


def test_registering_from_a_run_the_user_may_not_read_is_refused(fresh):
    """The form's route declares EDIT on the model; reading the run is asked of can() too."""
    run = fresh.seeded.run_with_model
    page = f"/runs/{run}/register?artifact=model&name=cnn"
    token_form = {"csrf_token": fresh.token(page), "run_id": run, "artifact": "model"}
    set_policy(fresh.app, lambda user, permission, resource: permission.resource != Resource.RUN)
    response = fresh.client.post("/models/cnn/register", data=token_form)
    assert response.status_code == 403
    assert (
        f"registering from run {run}: anonymous needs READ on the experiment of run "
        f"&#39;{run}&#39; (to read its files)"
    ) in response.get_data(as_text=True)
    names = [v.version for v in fresh.app.extensions["mlreg.server"].registry.search_model_versions(
        name="cnn").items]  # fmt: skip
    assert names == [3, 2, 1]


def test_without_a_policy_everyone_may_do_everything(site):
    assert forms_on(site, "/models/cnn") == set().union(*MODEL_FORMS.values())


#: Each form of the model and version pages, with a body the handler would accept.
POSTS = [
    ("/models/cnn/transition", {"version": "2", "stage": "Production"}, "PROMOTE"),
    ("/models/cnn/aliases", {"alias": "x", "version": "2"}, "PROMOTE"),
    ("/models/cnn/aliases/champion/delete", {}, "PROMOTE"),
    ("/models/cnn/description", {"description": "changed"}, "EDIT"),
    ("/models/cnn/tags", {"key": "k", "value": "v"}, "EDIT"),
    ("/models/cnn/tags/delete", {"key": "team"}, "EDIT"),
    ("/models/cnn/delete", {"confirm": "cnn"}, "MANAGE"),
    ("/models/cnn/versions/2/description", {"description": "changed"}, "EDIT"),
    ("/models/cnn/versions/2/tags", {"key": "k", "value": "v"}, "EDIT"),
    ("/models/cnn/versions/2/delete", {"confirm": "2"}, "MANAGE"),
]


@pytest.mark.parametrize(("path", "data", "level"), POSTS, ids=[p for p, _, _ in POSTS])
@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
def test_a_form_posted_by_a_user_not_offered_it_is_403_and_changes_nothing(
    fresh, path, data, level, with_token
):
    """A READ-only user is shown no form; posting one anyway (with a CSRF token of their own
    session, or none) is refused before the form runs, naming the permission missing."""
    services = fresh.app.extensions["mlreg.server"]
    before = services.registry.get_registered_model("cnn")
    versions = services.registry.search_model_versions(name="cnn").items
    token = fresh.token("/models/cnn") if with_token else ""  # taken while allowed
    set_policy(fresh.app, lambda user, permission, resource: permission.level <= Level.READ)
    try:
        assert forms_on(fresh, "/models/cnn") == set()
        response = fresh.client.post(
            path, data={"csrf_token": token, **data}, headers={"Accept": "text/html"}
        )
        assert response.status_code == 403
        assert f"anonymous needs {level} on model &#39;cnn&#39;" in response.get_data(as_text=True)
    finally:
        set_policy(fresh.app, None)
    assert services.registry.get_registered_model("cnn") == before
    assert services.registry.search_model_versions(name="cnn").items == versions


def auth_available() -> bool:
    return any(f.name == "auth" for f in dataclasses.fields(ServerSettings))


@pytest.mark.skipif(
    not auth_available(),
    reason="needs `mlreg server --auth` (issue 20, branch teams): users, grants and the "
    "permission check that answers 403 are the authentication work's",
)
@pytest.mark.process  # a real `mlreg server --auth`
def test_a_user_without_promote_sees_no_button_and_gets_403_posting_the_form(tmp_path):
    """With --auth: a READ-only user's model page has no transition form, and posting it anyway
    (with a valid CSRF token from a page they may see) is refused by the server's one
    permission check, before the form's handler runs."""
    import requests

    from tests.ui.browser import start_server

    server = start_server(
        tmp_path, extra_args=["--auth"], env={"MLREG_ADMIN_PASSWORD": "admin-password-1"}
    )
    try:
        admin = ("admin", "admin-password-1")
        http = requests.Session()
        api = server.url + "/api/v1"
        assert http.post(f"{api}/models", json={"name": "cnn"}, auth=admin).status_code == 201
        reader = ("reader", "reader-password-1")
        made = http.post(
            f"{api}/users", json={"name": reader[0], "password": reader[1]}, auth=admin
        )
        assert made.status_code == 201
        grant = http.put(f"{api}/models/cnn/grants/reader", json={"permission": "READ"}, auth=admin)
        assert grant.status_code in (200, 201), grant.text
        page = http.get(server.url + "/models/cnn", auth=reader)
        assert page.status_code == 200
        assert "/models/cnn/transition" not in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        form = {"csrf_token": token.group(1) if token else "", "version": "1", "stage": "Staging"}
        refused = http.post(server.url + "/models/cnn/transition", data=form, auth=reader)
        assert refused.status_code == 403
        assert "PROMOTE" in refused.text
    finally:
        server.stop()
