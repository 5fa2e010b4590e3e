"""The progress bar (rows, rows/s, ETA) on a terminal, and the summary line at the end."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from tqdm import tqdm


class Progress:
    """tqdm over rows; when the row count is not known up front, it is estimated from bytes."""

    def __init__(self, enabled: bool, total: int | None) -> None:
        self._bar = tqdm(
            total=total,
            unit=" rows",
            unit_scale=True,
            dynamic_ncols=True,
            file=sys.stderr,
            disable=not (enabled and sys.stderr.isatty()),
            mininterval=0.5,
            leave=False,
        )
        self._known = total is not None

    def update(self, rows: int, fraction: float | None) -> None:
        if self._bar.disable:
            return
        if not self._known and fraction:
            self._bar.total = max(int((self._bar.n + rows) / fraction), self._bar.n + rows)
        self._bar.update(rows)

    def close(self) -> None:
        self._bar.close()


@dataclass
class Summary:
    """What a run did, for the last line and for callers."""

    rows: int = 0
    written: int = 0
    errors: int = 0
    seconds: float = 0.0
    first_error: str | None = None
    output: str = ""

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        text = (
            f"scored {self.written} of {self.rows} rows, {self.errors} "
            f"error{'' if self.errors == 1 else 's'}, in {self.seconds:.2f} s "
            f"({self.rows_per_second:,.0f} rows/s)"
        )
        if self.first_error:
            text += f"; first error: {self.first_error}"
        return text


__all__ = ["Progress", "Summary"]
