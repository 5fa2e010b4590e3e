"""LazyBuildRule builds exactly the URLs werkzeug's own rules build, and compiles nothing until
a URL is built."""

from __future__ import annotations

from typing import Any

import pytest
from flask import url_for
from werkzeug.routing import BuildError, Map, Rule

from mlreg.server.app import create_app
from mlreg.server.settings import ServerSettings
from mlreg.store import StoreSettings
from mlreg.web.routing import App, LazyBuildRule

RULES = [
    ("/static/<path:filename>", "static", {}),
    ("/models/<name>/versions/<int:version>", "version", {}),
    ("/runs/<run_id>/artifacts/<path:path>", "artifact", {}),
    ("/plain", "plain", {}),
    ("/page/<int:number>", "page", {"number": 1}),
    ("/page", "page", {"number": 1}),
    ("/v2/models/<name>/versions/<version>/infer", "infer", {}),
]
VALUES: list[tuple[str, dict[str, Any]]] = [
    ("static", {"filename": "js/app.js"}),
    ("version", {"name": "mnist", "version": 3}),
    ("version", {"name": "a b/c?d#e", "version": 12, "q": "x y", "many": ["1", "2"]}),
    ("artifact", {"run_id": "abc", "path": "dir/ü/file name.txt"}),
    ("plain", {}),
    ("plain", {"next": "/models?x=1"}),
    ("page", {"number": 1}),
    ("page", {"number": 7}),
    ("infer", {"name": "m", "version": "2"}),
]


def _map(rule_class: type[Rule]) -> Map:
    return Map([rule_class(path, endpoint=ep, defaults=d or None) for path, ep, d in RULES])


def _build(url_map: Map, endpoint: str, values: dict[str, Any], append_unknown: bool) -> Any:
    adapter = url_map.bind("example.org", "/")
    try:
        return adapter.build(endpoint, values, append_unknown=append_unknown)
    except BuildError as e:
        return ("BuildError", str(e))


@pytest.mark.parametrize("append_unknown", [True, False])
@pytest.mark.parametrize(("endpoint", "values"), VALUES)
def test_urls_are_built_as_werkzeug_builds_them(endpoint, values, append_unknown):
    expected = _build(_map(Rule), endpoint, values, append_unknown)
    assert _build(_map(LazyBuildRule), endpoint, values, append_unknown) == expected


def test_a_missing_value_is_the_same_build_error():
    expected = _build(_map(Rule), "version", {"name": "m"}, True)
    assert expected[0] == "BuildError"
    assert _build(_map(LazyBuildRule), "version", {"name": "m"}, True) == expected


def test_the_server_compiles_no_builder_until_a_url_is_built(tmp_path, monkeypatch):
    compiled: list[str] = []
    original = Rule._compile_builder

    def counting(rule: Rule, append_unknown: bool = True) -> Any:
        compiled.append(rule.rule)
        return original(rule, append_unknown)

    monkeypatch.setattr(Rule, "_compile_builder", counting)
    store = StoreSettings(f"sqlite:///{tmp_path / 'r.db'}", str(tmp_path / "a"), "t", home=tmp_path)
    app = create_app(ServerSettings(store=store))
    try:
        assert isinstance(app, App)
        rules = list(app.url_map.iter_rules())
        assert len(rules) > 200 and all(isinstance(r, LazyBuildRule) for r in rules)
        assert compiled == []
        with app.test_request_context():
            first = url_for("ui.get_static", filename="app.js", v="1")
            assert first.endswith("/app.js?v=1")
            assert url_for("ui.get_static", filename="app.js", v="1") == first
        [static] = app.url_map.iter_rules("ui.get_static")
        assert compiled == [static.rule]  # once, for the query-string builder
    finally:
        app.extensions["mlreg.server"].close()
