"""A real `mlreg server` (gunicorn, in a subprocess) and a real headless Chromium driven by
Selenium, for the browser tests and bench/ui.py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.s3 import free_port

MLREG = Path(sys.executable).with_name("mlreg")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".ci" / "screenshots"
#: ../shared/ENVIRONMENT.md: how Chromium runs on these machines.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    # Containers (CI) often have a small /dev/shm; Chromium's renderers then crash without it.
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@dataclass
class Server:
    url: str
    home: Path
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def without_mlreg_settings() -> dict[str, str]:
    """This process's environment minus every MLREG_ variable (a new user's shell)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLREG_")}


def start_server(
    home: Path,
    *,
    workers: int = 2,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Server:
    """``mlreg server`` on a free loopback port with ``home`` as its MLREG_HOME, once ready."""
    port = free_port()
    log = home.parent / f"server-{port}.log"
    clean = without_mlreg_settings()
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [str(MLREG), "server", "--port", str(port), "--workers", str(workers)]
            + (extra_args or []),
            env={**clean, "MLREG_HOME": str(home), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", home, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlreg server exited: {server.log_text()[-3000:]}")
        try:
            if requests.get(server.url + "/ready", timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"mlreg server was not ready in {timeout} s: {server.log_text()[-3000:]}")


def chromium_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver), or None when they are not installed (.ci/chromium.sh)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def browser_missing() -> str | None:
    """What the browser tests lack on this machine (None: Chromium, chromedriver and Selenium
    are all here)."""
    missing = []
    if chromium_paths() is None:
        missing.append("Chromium and chromedriver (bash .ci/chromium.sh installs them)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append('Selenium (pip install -e ".[dev]")')
    return " and ".join(missing) or None


def open_browser(width: int = 1280, height: int = 900) -> Any:
    """A fresh headless Chromium (its own profile) with its console log kept for reading."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        raise RuntimeError("Chromium is not installed: bash .ci/chromium.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='mlreg-chromium-')}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(paths[1]), options=options)


def console_errors(driver: Any) -> list[str]:
    """What the page logged at error level since the last call (the log is drained)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(driver: Any, name: str, full_page: bool = True) -> Path:
    """Save ``.ci/screenshots/<name>.png`` (the whole page's height when ``full_page``)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    if full_page:
        size = driver.get_window_size()
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(size["width"], min(max(height, 400), 6000))
        driver.save_screenshot(str(target))
        driver.set_window_size(size["width"], size["height"])
    else:
        driver.save_screenshot(str(target))
    return target
