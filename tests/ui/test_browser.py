"""The web UI in a real browser: Debian's Chromium driven by Selenium against a real
`mlreg server` (gunicorn) whose data the quickstart and the test made.

One server and one browser for the module. Every page is opened, screenshotted into
.ci/screenshots/ (a CI artifact, not committed) and checked for console errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from mlreg.store.settings import StoreSettings
from tests.ui.browser import (
    ROOT,
    Server,
    browser_missing,
    console_errors,
    open_browser,
    screenshot,
    start_server,
    without_mlreg_settings,
)
from tests.ui.data import SCRIPT, Seeded, seed

pytestmark = pytest.mark.slow

WAIT = 20


@dataclass
class World:
    server: Server
    seeded: Seeded
    quickstart_run: str
    wide_run: str


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    missing = browser_missing()
    if missing is not None:
        # Only where the browser cannot be had: CI installs it (.ci/test runs .ci/chromium.sh,
        # .ci/run sets CI=true), so there a missing browser fails the run.
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests, but this machine lacks {missing}")
        pytest.skip(f"the browser tests need {missing}")
    work = tmp_path_factory.mktemp("browser")
    env = without_mlreg_settings()
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        cwd=work,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    home = work / ".mlreg"
    seeded = seed(StoreSettings.for_home(home, "alice"), work)
    from mlreg.tracking.client import TrackingClient

    with TrackingClient(StoreSettings.for_home(home, "alice")) as tracking:
        wide = tracking.create_run(tracking.create_experiment("wide"), "wide").info.run_id
        tracking.log_batch(
            wide,
            [
                (f"m{k:02d}", float(k * s), s, 1_700_000_000_000 + s)
                for k in range(60)
                for s in range(50)
            ],
        )
    server = start_server(home)

    with TrackingClient(StoreSettings.for_home(home)) as tracking:
        quickstart = tracking.get_experiment_by_name("quickstart")
        assert quickstart is not None
        run = tracking.search_runs([quickstart.experiment_id])[0].info.run_id
    try:
        yield World(server, seeded, run, wide)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(world) -> Iterator:
    driver = open_browser()
    yield driver
    driver.quit()


def wait(driver, condition, timeout: float = WAIT, ignoring: tuple = ()):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=ignoring).until(condition)


def by_css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def all_css(driver, selector: str) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def dark_mode(browser, on: bool) -> None:
    """Tell the page the system prefers dark colours (or nothing)."""
    scheme = [{"name": "prefers-color-scheme", "value": "dark"}] if on else []
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": scheme})


def charts_drawn(browser) -> None:
    wait(browser, lambda d: d.execute_script("return document.documentElement.dataset.chartsDrawn"))


def open_page(browser, world: World, path: str, shot: str | None = None) -> None:
    console_errors(browser)  # drain what earlier pages logged
    browser.get(world.server.url + path)
    wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    if all_css(browser, "figure.chart"):
        charts_drawn(browser)
    if shot:
        screenshot(browser, shot)
    errors = console_errors(browser)
    assert not errors, f"{path}: {errors}"


def test_every_page_opens_without_console_errors(world, browser):
    s = world.seeded
    run = world.quickstart_run
    pages = {
        "01-home": "/",
        "02-models": "/models",
        "03-model": "/models/mnist-cnn",
        "04-version": "/models/mnist-cnn/versions/1",
        "05-experiments": "/experiments",
        "06-runs": f"/experiments/{s.experiment_id}",
        "07-run": f"/runs/{run}",
        "08-artifacts-mlmodel": f"/runs/{run}/artifacts?path=model/MLmodel",
        "09-register": f"/runs/{run}/register",
        "10-compare": f"/experiments/{s.experiment_id}/compare?run={s.runs[0]}&run={s.runs[1]}"
        f"&run={s.runs[2]}",
        "11-escaping": "/models/cnn",
        "12-not-found": "/models/no-such-model",
    }
    for name, path in pages.items():
        if name == "12-not-found":
            browser.get(world.server.url + path)
            assert "Not found" in browser.title or "404" in browser.title
            screenshot(browser, name)
            errors = console_errors(browser)
            assert all("404" in e for e in errors), errors  # only the page's own status
            continue
        open_page(browser, world, path, name)


def test_the_quickstarts_model_and_version_are_found(world, browser):
    from selenium.webdriver.common.by import By

    open_page(browser, world, "/")
    browser.find_element(By.LINK_TEXT, "Models").click()
    browser.find_element(By.LINK_TEXT, "mnist-cnn").click()
    wait(browser, lambda d: d.current_url.endswith("/models/mnist-cnn"))
    row = by_css(browser, "#versions tbody tr")
    assert "v1" in row.text and "Production" in row.text and "READY" in row.text
    row.find_element(By.LINK_TEXT, "v1").click()
    wait(browser, lambda d: d.current_url.endswith("/models/mnist-cnn/versions/1"))
    text = by_css(browser, "main").text
    assert "(-1, 28, 28, 3)" in text and "float32" in text
    assert 'pyfunc.load_model("models:/mnist-cnn/1")' in text
    assert "mlreg build-docker -m models:/mnist-cnn/1 -n mnist-cnn:1" in text
    assert "serving_input_example.json" in text  # the curl command posts the saved example
    assert "tensorflow" in by_css(browser, "pre[aria-label='requirements.txt']").text


def timeline(browser) -> list[str]:
    return [li.text for li in all_css(browser, "#timeline li")]


def test_register_transition_to_production_and_the_timeline_updates(world, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, world, f"/runs/{world.quickstart_run}")
    browser.find_element(By.LINK_TEXT, "Register a model from this run").click()
    by_css(browser, "input[name=artifact][value=model]").click()
    name = by_css(browser, "input[name=name]")
    name.clear()
    name.send_keys("mnist-cnn")
    by_css(browser, "form.stack button[type=submit]").click()
    wait(browser, lambda d: "becomes version 2" in by_css(d, ".confirm").text)
    by_css(browser, ".confirm button[type=submit]").click()
    # A POST answered by a 303: wait for the page it leads to (a click may return before).
    wait(browser, lambda d: d.current_url.endswith("/models/mnist-cnn/versions/2"))
    assert "Registered runs:/" in by_css(browser, ".flash").text

    open_page(browser, world, "/models/mnist-cnn")
    before = timeline(browser)
    form = by_css(browser, "#transition-form")
    Select(form.find_element(By.NAME, "version")).select_by_value("2")
    Select(form.find_element(By.NAME, "stage")).select_by_visible_text("Production")
    assert form.find_element(By.NAME, "archive_existing").is_selected()
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, lambda d: d.switch_to.alert).accept()  # "Move the version ...?"
    wait(browser, lambda d: len(timeline(d)) == len(before) + 2)
    newest = timeline(browser)[:2]
    assert any("v2" in t and "None → Production" in t for t in newest)
    assert any("v1" in t and "Production → Archived" in t for t in newest)
    stages = [r.text for r in all_css(browser, "#versions tbody tr")]
    assert "Production" in stages[0] and "Archived" in stages[1]
    assert not console_errors(browser)
    screenshot(browser, "13-model-after-transition")


def test_set_an_alias(world, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, world, "/models/mnist-cnn")
    form = by_css(browser, "#alias-form")
    form.find_element(By.NAME, "alias").send_keys("champion")
    Select(form.find_element(By.NAME, "version")).select_by_value("1")
    form.submit()
    wait(browser, lambda d: "@champion" in by_css(d, ".aliases").text)
    assert "v1" in by_css(browser, ".aliases").text
    assert "Alias @champion now points at version 1" in by_css(browser, ".flash").text
    open_page(browser, world, "/models/mnist-cnn/versions/1")
    assert "@champion" in by_css(browser, ".facts-line").text


def test_compare_two_runs_draws_one_series_per_run(world, browser):

    s = world.seeded
    open_page(browser, world, f"/experiments/{s.experiment_id}")
    boxes = all_css(browser, "input[name=run]")
    assert len(boxes) == 3
    assert by_css(browser, "#compare-button").get_attribute("disabled")
    boxes[0].click()
    boxes[1].click()
    assert by_css(browser, "#selected-count").text == "2 selected"
    by_css(browser, "#compare-button").click()
    charts_drawn(browser)
    assert "Compare 2 runs" in browser.title
    series = browser.execute_script(
        "return Object.fromEntries(Object.entries(window.mlregCharts.plots)"
        ".map(([k, p]) => [k, p.series.slice(1).map(s => s.label)]))"
    )
    assert set(series) == {"accuracy", "loss"}
    assert all(len(labels) == 2 for labels in series.values()), series
    assert by_css(browser, "#params-table tr.differs").text.startswith("lr")
    # Log scale and time on x redraw at once and the URL follows (a shareable view).
    by_css(browser, "#chart-options input[name=log]").click()
    wait(browser, lambda d: "log=1" in d.current_url)
    assert browser.execute_script("return window.mlregCharts.plots.loss.scales.y.distr") == 3
    from selenium.webdriver.support.ui import Select

    Select(by_css(browser, "#chart-options select[name=x]")).select_by_value("relative")
    wait(browser, lambda d: "x=relative" in d.current_url)
    assert not console_errors(browser)
    screenshot(browser, "14-compare-log-relative")
    browser.refresh()  # the URL alone restores the view
    charts_drawn(browser)
    assert by_css(browser, "#chart-options input[name=log]").is_selected()
    assert by_css(browser, "figure.chart").get_attribute("data-x") == "relative"


def test_html_in_names_is_text_in_the_browser(world, browser):
    open_page(browser, world, "/models/cnn")
    assert browser.title == "cnn · mlreg"  # no injected script renamed the page
    assert SCRIPT in by_css(browser, ".description").text
    assert SCRIPT in by_css(browser, "table.kv").text
    open_page(browser, world, f"/runs/{world.seeded.run_with_model}")
    assert browser.title.startswith("run-0")
    assert '<img src=x onerror="document.title=1">' in by_css(browser, "main").text


def test_keyboard_skip_link_and_chart_legend(world, browser):
    from selenium.webdriver.common.keys import Keys

    s = world.seeded
    open_page(browser, world, f"/runs/{s.runs[1]}")
    body = by_css(browser, "body")
    body.send_keys(Keys.TAB)
    active = browser.switch_to.active_element
    assert active.text == "Skip to content"
    active.send_keys(Keys.ENTER)
    assert browser.execute_script("return location.hash") == "#main"
    legend = by_css(browser, ".u-legend tr.u-series[tabindex='0']")
    legend.send_keys(Keys.ENTER)  # hides the run's line from the keyboard
    assert legend.get_attribute("aria-pressed") == "false"
    legend.send_keys(Keys.SPACE)
    assert legend.get_attribute("aria-pressed") == "true"


def test_phone_width_and_dark_mode(world, browser):
    s = world.seeded
    phone = browser
    phone.set_window_size(390, 844)
    dark_mode(phone, True)
    try:
        for name, path in {
            "15-phone-dark-model": "/models/mnist-cnn",
            "16-phone-dark-runs": f"/experiments/{s.experiment_id}",
            "17-phone-dark-compare": f"/experiments/{s.experiment_id}/compare?run={s.runs[0]}"
            f"&run={s.runs[2]}",
            "20-phone-dark-version": "/models/mnist-cnn/versions/1",
            "21-phone-dark-run": f"/runs/{world.quickstart_run}",
            "22-phone-dark-home": "/",
        }.items():
            open_page(phone, world, path, name)
            # Nothing but the tables' own scroll boxes is wider than the phone.
            overflow = phone.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, (path, overflow)
            background = phone.execute_script(
                "return getComputedStyle(document.documentElement).backgroundColor"
            )
            assert background == "rgb(15, 19, 23)"  # the dark palette
    finally:
        dark_mode(phone, False)
        phone.set_window_size(1280, 900)


def test_readme_screenshots_are_taken_by_this_run(world, browser):
    """The two pictures in the README come from here (docs/ holds committed copies)."""
    s = world.seeded
    browser.set_window_size(1280, 900)
    open_page(browser, world, "/models/mnist-cnn")
    model = screenshot(browser, "readme-model", full_page=False)
    open_page(
        browser,
        world,
        f"/experiments/{s.experiment_id}/compare?run={s.runs[0]}&run={s.runs[1]}&run={s.runs[2]}",
    )
    compare = screenshot(browser, "readme-compare", full_page=False)
    for path in (model, compare):
        assert Path(path).stat().st_size > 10_000


READER_PASSWORD = "rita reads everything"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory) -> Iterator[Server]:
    """The seeded data behind a real `mlreg server --auth` (gunicorn, two workers sharing the
    session secret) where rita, made with the command an admin would use, may only READ (the
    default on what was made before authentication)."""
    work = tmp_path_factory.mktemp("auth")
    home = work / "home"
    seed(StoreSettings.for_home(home, "alice"), work)
    env = without_mlreg_settings()
    made = subprocess.run(
        [
            str(Path(sys.executable).with_name("mlreg")),
            "server",
            "users",
            "create",
            "rita",
            "--password-stdin",
        ],
        input=READER_PASSWORD + "\n",
        env={**env, "MLREG_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    server = start_server(home, extra_args=["--auth"])
    yield server
    server.stop()


def sign_in_form(browser, user: str, password: str) -> None:
    """Fill the sign-in form the browser is on and send it, as a person would."""
    wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    by_css(browser, "input[name=username]").send_keys(user)
    by_css(browser, "input[name=password]").send_keys(password)
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.expected_conditions import staleness_of

    button = by_css(browser, "form.signin button[type=submit]")
    button.click()
    # The next page, not the form still on screen. While the old document is being replaced,
    # Chrome may answer "Node with given id does not belong to the document" (a plain
    # WebDriverException, not a stale-element one): ask again until the button is stale.
    wait(browser, staleness_of(button), ignoring=(WebDriverException,))
    wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")


def test_signing_in_through_the_form_then_a_reader_sees_no_action(auth_server, browser):
    """A page sends a browser that is not signed in to the form; a wrong password is said so;
    signed in, rita is back on the page she asked for, with no action but signing out, and a
    form she builds by hand is refused with 403 and changes nothing; signing out ends it."""
    url = auth_server.url
    console_errors(browser)
    browser.delete_all_cookies()
    browser.get(url + "/models/cnn")
    wait(browser, lambda d: "/login?next=" in d.current_url)
    assert browser.title.startswith("Sign in")
    screenshot(browser, "17-sign-in")
    sign_in_form(browser, "rita", "not her password")
    error = wait(browser, lambda d: all_css(d, ".flash.error"))
    assert "/login" in browser.current_url
    assert error[0].text == "wrong user name or password"
    sign_in_form(browser, "rita", READER_PASSWORD)
    wait(browser, lambda d: d.current_url == url + "/models/cnn")
    assert browser.title.startswith("cnn")
    assert by_css(browser, ".account .who").text == "rita"
    # Two gunicorn workers answer in turn: the session holds on every page, on either one.
    for path in ("/models/cnn", "/models/cnn/versions/2", "/models", "/models/cnn"):
        browser.get(url + path)
        assert all_css(browser, "form[method=post]:not(.signout)") == [], path
        assert len(all_css(browser, "form.signout")) == 1, path
        assert not console_errors(browser)
    screenshot(browser, "18-reader-model")
    # What a page without the button cannot do: build the transition form by hand and post it.
    browser.execute_script(
        """const form = document.createElement("form");
        form.method = "post";
        form.action = "/models/cnn/transition";
        for (const [name, value] of [["version", "2"], ["stage", "Archived"], ["csrf_token", ""]]) {
          const input = document.createElement("input");
          input.type = "hidden"; input.name = name; input.value = value;
          form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();"""
    )
    wait(browser, lambda d: d.current_url.endswith("/models/cnn/transition"))
    wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    text = by_css(browser, "main").text
    assert "403" in browser.title
    assert "rita needs PROMOTE on model 'cnn'" in text
    errors = console_errors(browser)
    assert all("403" in e for e in errors), errors  # only the page's own status
    screenshot(browser, "19-reader-403")
    version = requests.get(
        url + "/api/v1/models/cnn/versions/2", auth=("rita", READER_PASSWORD), timeout=30
    )
    assert version.json()["model_version"]["stage"] == "Production"
    by_css(browser, "form.signout button").click()
    wait(browser, lambda d: "/login" in d.current_url)
    assert wait(browser, lambda d: all_css(d, ".flash.ok"))[0].text == "Signed out."
    browser.get(url + "/models")
    wait(browser, lambda d: "/login?next=" in d.current_url)


def test_a_run_with_many_metrics_draws_the_charts_near_the_screen_first(world, browser):
    """60 charts: those far below the screen wait until scrolled to (the page is not blocked
    drawing what nobody sees), and each is drawn when it comes near."""
    open_page(browser, world, f"/runs/{world.wide_run}")
    figures = all_css(browser, "figure.chart")
    assert len(figures) == 60
    drawn = browser.execute_script("return Object.keys(window.mlregCharts.plots).length")
    assert drawn < 60
    browser.execute_script("arguments[0].scrollIntoView()", figures[-1])
    wait(browser, lambda d: d.execute_script("return 'm59' in window.mlregCharts.plots"))
    assert browser.execute_script("return window.mlregCharts.plots.m59.data[1].length") == 50
    assert not console_errors(browser)
