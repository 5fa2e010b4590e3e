"""Start-up cost: ``import mlreg.errors`` and ``mlreg --help`` next to ``mlflow --help``.

Usage: python bench/startup.py [--runs N]

Each figure is the median wall time of N fresh processes (the interpreter's own start
included, measured the same way for both tools). Targets: ``import mlreg.errors`` under
50 ms, ``mlreg --help`` under 300 ms. Also prints the ten slowest imports of ``mlreg --help``
(``python -X importtime``), so a regression names its cause, and how long the registry
server takes to build its app (what each gunicorn worker does as it boots, and every test that
builds a server), on a store that exists.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def median_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def slowest_imports(argv: list[str], count: int = 10) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the slowest top-level imports of ``argv``."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, check=True
    ).stderr
    rows = []
    for line in out.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        if name.startswith("  "):  # only direct imports; nested ones are in their parent
            continue
        rows.append((int(parts[1]), name.strip()))
    return sorted(rows, reverse=True)[:count]


def app_build_seconds(runs: int) -> tuple[float, int]:
    """Median time of the registry server's ``create_app`` on a migrated SQLite store, and
    the number of routes it declared."""
    from mlreg.server.app import create_app
    from mlreg.server.settings import ServerSettings
    from mlreg.store import StoreSettings

    with tempfile.TemporaryDirectory() as home:
        settings = ServerSettings(store=StoreSettings.for_home(Path(home), "bench"))
        create_app(settings).extensions["mlreg.server"].close()  # creates the schema
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            app = create_app(settings)
            times.append(time.perf_counter() - start)
            app.extensions["mlreg.server"].close()
    return statistics.median(times), len(list(app.url_map.iter_rules()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    python = sys.executable
    rows = [
        ("python -c pass (the interpreter alone)", [python, "-c", "pass"]),
        ("python -c 'import mlreg.errors'", [python, "-c", "import mlreg.errors"]),
        ("mlreg --help", [str(BIN / "mlreg"), "--help"]),
    ]
    mlflow = BIN / "mlflow" if (BIN / "mlflow").exists() else shutil.which("mlflow")
    if mlflow:
        rows.append(("mlflow --help", [str(mlflow), "--help"]))
    else:
        print("mlflow is not installed here: no peer figure")

    results = {label: median_seconds(argv, args.runs) for label, argv in rows}
    print(f"median of {args.runs} fresh processes\n")
    print(f"| {'command':<40} | {'ms':>8} |")
    print(f"|{'-' * 42}|{'-' * 10}|")
    for label, seconds in results.items():
        print(f"| {label:<40} | {seconds * 1000:8.1f} |")
    if "mlflow --help" in results:
        ratio = results["mlflow --help"] / results["mlreg --help"]
        print(f"\nmlreg --help is {ratio:.1f}x faster than mlflow --help")
    print("\nslowest imports of `mlreg --help` (cumulative ms):")
    help_argv = [
        "-c",
        "import sys; sys.argv = ['mlreg', '--help']; import mlreg.cli; mlreg.cli.main()",
    ]
    for micros, name in slowest_imports(help_argv):
        print(f"  {micros / 1000:7.1f}  {name}")
    seconds, routes = app_build_seconds(args.runs)
    print(f"\nthe registry server's create_app ({routes} routes): {seconds * 1000:.1f} ms")


if __name__ == "__main__":
    main()
