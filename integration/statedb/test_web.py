"""The dashboard in headless Chromium against a real cluster holding records written by the
real commands: every page, the deploy search form, and records containing HTML shown as
text."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from integration.statedb.conftest import make_runner
from prodstate.statedb.keys import errors as errors_key
from prodstate.testing import free_port, wait_until

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Headless Chromium driven by Debian's chromedriver, with an empty profile."""
    driver_path = shutil.which("chromedriver")
    chromium = shutil.which("chromium")
    if driver_path is None or chromium is None:
        pytest.fail(
            "the dashboard test needs Debian's chromium and chromium-driver packages "
            "(scripts/bootstrap.sh installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def dashboard(infra) -> Iterator[str]:
    """Records written through the commands, then ``prodstate web`` reading the leaf's Redis;
    the dashboard's base URL."""
    run = make_runner(infra)
    script = "print('<b>deployed</b>')"
    steps = [
        ("machine", "report", "--host", "web-0"),
        ("service", "started", "shop", "--host", "web-0", "--version", "v7"),
        (
            "deploy",
            "--service",
            "shop",
            "--version",
            "v7",
            "--target",
            "web-0",
            "--who",
            "ann",
            "--",
            sys.executable,
            "-c",
            script,
        ),
        ("deploy", "--service", "shop", "--version", "v8", "--", "false"),
        ("lock", "acquire", "shop-db", "--reason", "<i>migration</i> 42", "--holder", "ann"),
        ("error", "report", "shop", "<script>alert(1)</script> boom", "--host", "web-0"),
    ]
    for step in steps:
        done = run(*step)
        assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    leaf = infra.redis["leaf1"].client()
    wait_until(lambda: leaf.xlen(errors_key("shop")) == 1, what="the last record on the leaf")
    port = free_port()
    env = {**os.environ, "PRODSTATE_ZK": infra.zk_hosts, "PRODSTATE_CLUSTER": infra.cluster}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prodstate",
            "web",
            "--port",
            str(port),
            "--redis",
            infra.redis["leaf1"].address,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: urllib.request.urlopen(f"{base}/locks", timeout=2).status == 200,
            timeout=30,
            what="the dashboard to serve",
            ignore=(OSError,),
        )
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)
        run("lock", "release", "shop-db", "--holder", "ann")


def _text(browser, selector):
    return browser.find_element(By.CSS_SELECTOR, selector).text


def test_dashboard_pages_in_chromium(infra, browser, dashboard):
    browser.get(f"{dashboard}/")
    assert _text(browser, "#health").startswith("healthy: root ")
    nodes = _text(browser, "#nodes")
    assert f"{infra.root_name()} (root)" in nodes
    assert all(name in nodes for name in ("branch1", "branch2", "leaf1"))

    browser.get(f"{dashboard}/machines")
    assert "web-0" in _text(browser, "#machines")

    browser.get(f"{dashboard}/services")
    services = _text(browser, "#services")
    assert "shop" in services and "v7" in services and "web-0 (v7)" in services

    browser.get(f"{dashboard}/locks")
    locks = _text(browser, "#locks")
    assert "shop-db" in locks and "<i>migration</i> 42" in locks  # shown as text
    assert browser.find_elements(By.CSS_SELECTOR, "#locks i") == []

    browser.get(f"{dashboard}/errors")
    errors = _text(browser, "#errors-shop")
    assert "<script>alert(1)</script> boom" in errors
    assert browser.find_elements(By.CSS_SELECTOR, "#errors-shop script") == []


def test_deploy_log_search_in_chromium(browser, dashboard):
    browser.get(f"{dashboard}/deploys")
    log = _text(browser, "#deploys")
    assert "<b>deployed</b>" in log and "failed (exit 1)" in log
    assert browser.find_elements(By.CSS_SELECTOR, "#deploys b") == []

    browser.find_element(By.ID, "search-version").send_keys("v7")
    browser.find_element(By.ID, "search-go").click()
    wait_until(lambda: "version=v7" in browser.current_url, what="the search to load")
    rows = browser.find_elements(By.CSS_SELECTOR, "#deploys tbody tr")
    assert len(rows) == 1 and "succeeded" in rows[0].text and "ann" in rows[0].text

    browser.get(f"{dashboard}/deploys?service=shop&machine=nosuch")
    assert browser.find_elements(By.ID, "deploys-empty")
    browser.get(f"{dashboard}/deploys?since=yesterday")
    assert "neither a duration" in _text(browser, "#search-error")
