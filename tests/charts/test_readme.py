"""The chart README's values table is generated from values.yaml and must stay in sync."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import yaml

from .conftest import CHART, SERVER_CHART

CHARTS = pytest.mark.parametrize("chart", [CHART, SERVER_CHART], ids=lambda c: c.name)


@pytest.fixture(scope="module")
def gen_readme():
    spec = importlib.util.spec_from_file_location("gen_readme", CHART.parent / "gen_readme.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


@CHARTS
def test_readme_table_is_up_to_date(gen_readme, chart):
    readme = (chart / "README.md").read_text()
    values = (chart / "values.yaml").read_text()
    assert gen_readme.render(readme, values) == readme, (
        f"charts/{chart.name}/README.md is stale: run python charts/gen_readme.py"
    )


def leaves(tree, prefix=""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{path}.")
        else:
            yield path, value


@CHARTS
def test_every_value_is_in_the_table_with_its_default(gen_readme, chart):
    values = yaml.safe_load((chart / "values.yaml").read_text())
    readme = (chart / "README.md").read_text()
    documented = {row.key: row for row in gen_readme.rows((chart / "values.yaml").read_text())}
    for path, value in leaves(values):
        # The row is the key itself or a documented map that contains it.
        owner = next((key for key in documented if path == key or path.startswith(key + ".")), None)
        assert owner is not None, f"{path} is not in the README's values table"
        row = documented[owner]
        assert row.description, path
        shown = row.default
        for part in path.removeprefix(owner).split(".")[1:]:
            shown = shown[part]
        assert shown == value, path
        default = json.dumps(row.default, separators=(",", ":"))
        assert f"| `{owner}` | {row.type} | `{default.replace('|', chr(92) + '|')}` |" in readme


def test_undocumented_value_is_refused(gen_readme):
    with pytest.raises(ValueError, match=r"image\.tag has no '# --' comment"):
        gen_readme.rows("image:\n  # -- Repository.\n  repository: x\n  tag: y\n")
    rows = gen_readme.rows("# -- Resources.\nresources:\n  limits:\n    memory: 1Gi\n")
    assert [(r.key, r.default) for r in rows] == [("resources", {"limits": {"memory": "1Gi"}})]


@CHARTS
def test_schema_knows_every_value(chart):
    """values.yaml and values.schema.json describe the same keys (the schema refuses others)."""
    schema = json.loads((chart / "values.schema.json").read_text())
    values = yaml.safe_load((chart / "values.yaml").read_text())

    def walk(node, tree, prefix):
        props = node.get("properties", {})
        assert node.get("additionalProperties") is False or not props, prefix
        for key, value in tree.items():
            assert key in props, f"{prefix}{key} is missing from values.schema.json"
            if isinstance(value, dict) and props[key].get("properties"):
                walk(props[key], value, f"{prefix}{key}.")
        if not prefix:  # nested maps may allow optional keys (probes, resources)
            extra = set(props) - set(tree) - {"global"}
            assert not extra, f"values.schema.json has keys values.yaml lacks: {extra}"

    walk(schema, values, "")
