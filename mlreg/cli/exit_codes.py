"""The exit codes of ``mlreg``, as a table made from :mod:`mlreg.errors` (the README's is this).

``python -m mlreg.cli.exit_codes`` prints it; a test keeps the README's copy equal to it.
"""

from __future__ import annotations

from mlreg.errors import MlregError

#: The codes no error class carries: how a command ends without one of them.
OTHER_CODES = [
    (0, "-", "Success."),
    (
        1,
        "-",
        "An unexpected failure (a bug, printed with its traceback), a file the operating "
        "system refused, or a declined confirmation prompt.",
    ),
    (2, "-", "A command-line usage error: an unknown option, a missing argument."),
]


def _classes() -> list[type[MlregError]]:
    """Every concrete error class, parents before children (MlregError is never raised)."""
    out: list[type[MlregError]] = []
    pending = list(MlregError.__subclasses__())
    while pending:
        cls = pending.pop(0)
        if not cls.__name__.startswith("_"):  # a module's private marker, raised as its parent
            out.append(cls)
        pending[:0] = cls.__subclasses__()
    return out


def exit_code_table() -> str:
    """A Markdown table: exit code, error class (error code in JSON), and when."""
    rows = [(code, name, what) for code, name, what in OTHER_CODES]
    for cls in _classes():
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        rows.append((cls.exit_code, f"`{cls.__name__}` ({cls.error_code})", doc))
    rows.sort(key=lambda r: r[0])
    lines = ["| exit code | error (`error_code` in JSON) | when |", "|---|---|---|"]
    lines += [f"| {code} | {name} | {what} |" for code, name, what in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(exit_code_table())
