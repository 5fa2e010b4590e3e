"""Reading this machine's pip index settings, as pip itself reports them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlreg.builder import pipconfig
from mlreg.builder.pipconfig import IndexSettings
from mlreg.errors import BuildError

LOCAL = "a path on this machine"


@pytest.mark.parametrize(
    ("listing", "expected"),
    [
        (
            "global.index-url='https://mirror.example/simple'\n",
            IndexSettings(index_url="https://mirror.example/simple"),
        ),
        (
            # the environment overrides [install], which overrides [global], as in pip
            "global.index-url='https://a.example/simple'\n"
            "install.index-url='https://b.example/simple'\n"
            ":env:.index-url='https://c.example/simple'\n"
            "global.trusted-host='a.example b.example'\n",
            IndexSettings(
                index_url="https://c.example/simple", trusted_hosts=("a.example", "b.example")
            ),
        ),
        (
            # this machine's own layout: a file:// mirror and local find-links
            "global.extra-index-url='file:///opt/pypi/simple https://extra.example/simple'\n"
            "global.find-links='/opt/wheels'\n"
            "download.index-url='https://ignored.example/simple'\n",
            IndexSettings(
                extra_index_urls=("https://extra.example/simple",),
                skipped=(
                    f"extra-index-url file:///opt/pypi/simple ({LOCAL})",
                    "find-links /opt/wheels (use --wheelhouse for wheels of your own)",
                ),
            ),
        ),
        (
            ":env:.index-url='/srv/mirror'\n:env:.cert='/nonexistent/ca.pem'\n",
            IndexSettings(
                skipped=(
                    f"index-url /srv/mirror ({LOCAL})",
                    "cert /nonexistent/ca.pem (not a file)",
                )
            ),
        ),
        ("", IndexSettings()),
    ],
    ids=["global", "precedence", "local-paths-skipped", "unusable", "nothing"],
)
def test_parse_pip_config_list(listing, expected):
    assert pipconfig.from_config(pipconfig.parse(listing)) == expected


def test_host_settings_come_from_pip_itself(tmp_path, monkeypatch):
    """The real `pip config list`: a pip.conf named by PIP_CONFIG_FILE, and PIP_* variables."""
    cert = tmp_path / "ca.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://mirror.example/simple\n"
        "extra-index-url = file:///srv/local/simple\n"
        f"cert = {cert}\n[install]\ntrusted-host = mirror.example\n"
    )
    for name in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "https://extra.example/simple")
    assert pipconfig.host_settings() == IndexSettings(
        index_url="https://mirror.example/simple",
        extra_index_urls=("https://extra.example/simple",),
        trusted_hosts=("mirror.example",),
        cert=Path(cert),
    )


def test_unreadable_pip_config_is_a_build_error(tmp_path, monkeypatch):
    conf = tmp_path / "pip.conf"
    conf.write_text("this is not an ini file\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    with pytest.raises(BuildError, match=r"cannot read this machine's pip configuration"):
        pipconfig.host_settings()
