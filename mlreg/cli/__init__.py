"""The ``mlreg`` command line: thin click commands over the packages."""

from mlreg.cli.main import main

__all__ = ["main"]
