"""Credentials in URLs: found, refused and never printed.

A requirement like ``pkg @ https://user:SECRET@host/p.whl``, an ``--extra-index-url`` with a
password, or an index URL with ``?private_token=…`` would end up in requirements.txt,
conda.yaml, an image layer or its history, and in error messages. Everything that takes such
text checks it with :func:`has_credentials` and shows it through :func:`redact`.
"""

from __future__ import annotations

import re

# user[:password]@ right after a URL's scheme.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
# Query parameters that carry secrets (GitLab's private_token, generic token/key/password...).
_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;](?:[\w-]*token|[\w-]*password|passwd|secret|api[_-]?key|key|sig|signature"
    r"|access[_-]?key[\w-]*))=(?P<value>[^&;#\s]+)",
    re.IGNORECASE,
)


def has_credentials(text: str) -> bool:
    """True when a URL in ``text`` carries a user, password or secret query parameter."""
    return bool(_USERINFO.search(text) or _SECRET_PARAM.search(text))


def redact(text: str) -> str:
    """``text`` with every URL credential replaced by ``***`` (safe to print)."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}***@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m['name']}=***", text)


# user:password@ right after a URL's scheme (the user is kept, the password is not).
_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/:@\s]*):(?P<password>[^/@\s]+)@")


def mask_password(url: str) -> str:
    """``url`` with its password shown as ``***`` and its user kept (``user:***@host``), and
    secret query parameters masked as :func:`redact` does."""
    url = _PASSWORD.sub(lambda m: f"{m['head']}:***@", url)
    return _SECRET_PARAM.sub(lambda m: f"{m['name']}=***", url)
