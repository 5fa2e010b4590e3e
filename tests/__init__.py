"""The test suite. Imported before any test module, plugin or conftest of it.

Some machines set PYTHONDONTWRITEBYTECODE. Every test process, and every server and CLI that
the tests start, would then compile mlreg and the tests from source again: pytest's assertion
rewriting alone took 3.2 of the 5.8 s that each xdist worker spends collecting. The suite keeps
its bytecode in ``__pycache__`` (git-ignored), as Python does by default.
"""

import os
import sys

sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
