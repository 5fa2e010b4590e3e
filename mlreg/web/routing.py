"""The Flask class of both servers: URL rules that compile their URL builders when a URL is
first built for them, instead of when they are added.

Werkzeug generates and compiles two Python functions per rule as the rule is added (one to
build its URL, one that also appends unknown arguments as a query string). For the registry
server's 270 rules that was 62 of ``create_app``'s 81 ms, paid by every gunicorn worker as it
boots and by every test that builds an app, while almost no rule ever has a URL built for it
(``url_for`` is used by a few UI pages). Matching does not use the builders. Deferred, the
app is built in 19 ms (``bench/startup.py``). Two threads building the first URL of a rule at
once both compile it, and get the same function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.routing import Rule

Builder = Callable[..., tuple[str, str]]


class LazyBuildRule(Rule):
    """A rule whose URL builders are compiled on first use (then kept, as werkzeug's are)."""

    def _compile_builder(self, append_unknown: bool = True) -> Builder:
        compile_now = super()._compile_builder
        compiled: list[Builder] = []

        # Rule.compile binds what this returns to the rule, as it does werkzeug's builders.
        def build(rule: Rule, *args: Any, **kwargs: Any) -> tuple[str, str]:
            if not compiled:
                compiled.append(compile_now(append_unknown))
            return compiled[0](rule, *args, **kwargs)

        return build


class App(Flask):
    """Flask, with :class:`LazyBuildRule` for every route."""

    url_rule_class = LazyBuildRule
