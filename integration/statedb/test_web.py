"""The dashboard in headless Chromium against a real cluster holding records written by the
real commands: the tree drawn as a tree, a live update seen without a reload, machine and
service pages reached by clicking, settings namespaces with their values and history,
hostile records shown as text (folded when long), the content security policy, a phone's
viewport, the metrics, and the dashboard serving what it can while its ZooKeeper or its
Redis is down. Screenshots are written to the test's
tmp dir (their path is printed) for a person to look at."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from integration.statedb.conftest import make_runner
from prodstate.settings.keys import namespace_key
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
    "--window-size=1400,1000",
]
#: An error message an attacker (or a broken service) might send: markup, a terminal
#: escape, a right-to-left override, several lines, and a very long last line.
HOSTILE = "<script>alert(1)</script> boom\nsecond line \x1b[31mred\x1b[0m \u202eevil\n" + "x" * 900
PHONE = (390, 844)
#: A setting's value as a careless or hostile writer might give it.
HOSTILE_VALUE = "<script>alert(1)</script> \x1b[31mred\u202eevil " + "y" * 900


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Headless Chromium driven by Debian's chromedriver, with an empty profile; it keeps
    the console's messages (CSP violations land there)."""
    driver_path = shutil.which("chromedriver")
    chromium = shutil.which("chromium")
    if driver_path is None or chromium is None:
        pytest.fail(
            "the dashboard test needs Debian's chromium and chromium-driver packages "
            "(scripts/bootstrap.sh installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``shot(browser, name)``: a PNG of the whole page in the test's tmp dir."""
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"dashboard screenshots: {folder}")

    def shot(driver: webdriver.Chrome, name: str) -> Path:
        width = driver.get_window_size()["width"]
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(max(height + 140, 600), 4000))
        path = folder / f"{name}.png"
        driver.save_screenshot(str(path))
        return path

    return shot


def _serve(infra, redis: str, zk: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PRODSTATE_ZK": zk or infra.zk_hosts, "PRODSTATE_CLUSTER": infra.cluster}
    argv = [sys.executable, "-m", "prodstate", "web", "--port", str(port), "--redis", redis]
    server = subprocess.Popen(
        [*argv, "--refresh", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: urllib.request.urlopen(f"{base}/static/dashboard.css", timeout=2).status == 200,
        timeout=30,
        what="the dashboard to serve",
        ignore=(OSError,),
    )
    return server, base


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=10)
    assert b"Traceback" not in (server.stderr.read() if server.stderr else b"")


@pytest.fixture(scope="module")
def dashboard(infra) -> Iterator[str]:
    """Records written through the commands, then ``prodstate web`` reading the leaf's Redis
    and refreshing every second; the dashboard's base URL."""
    run = make_runner(infra)
    steps = [
        ("machine", "report", "--host", "dash-0"),
        ("service", "started", "shop", "--host", "dash-0", "--version", "v7"),
        ("service", "started", "shop", "--host", "dash-1", "--version", "v6"),
        (
            "deploy",
            *("--service", "shop", "--version", "v7", "--target", "dash-0", "--who", "ann"),
            *("--", sys.executable, "-c", "print('<b>deployed</b>')"),
        ),
        ("deploy", "--service", "shop", "--version", "v8", "--", "false"),
        ("lock", "acquire", "shop-db", "--reason", "<i>migration</i> 42", "--holder", "ann"),
        ("error", "report", "billing", "card declined", "--host", "dash-1"),
        ("error", "report", "shop", HOSTILE, "--host", "dash-0"),
    ]
    for step in steps:
        done = run(*step)
        assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    leaf = infra.redis["leaf1"].client()
    wait_until(lambda: leaf.xlen(errors_key("shop")) >= 1, what="the last record on the leaf")
    server, base = _serve(infra, infra.redis["leaf1"].address)
    try:
        yield base
    finally:
        _stop(server)
        run("lock", "release", "shop-db", "--holder", "ann")


def _text(browser, selector: str) -> str:
    """The text of ``selector``, found again if the page's refresh replaced it meanwhile."""
    return wait_until(
        lambda: (browser.find_element(By.CSS_SELECTOR, selector).text,),
        what=f"the text of {selector}",
        ignore=(StaleElementReferenceException,),
    )[0]


def _click(browser, by: str, selector: str) -> None:
    """Click ``selector``, found again if the page's refresh replaced it meanwhile."""
    wait_until(
        lambda: browser.find_element(by, selector).click() or True,
        what=f"a click on {selector}",
        ignore=(StaleElementReferenceException,),
    )


def _attribute(browser, selector: str, name: str) -> str | None:
    """An attribute of ``selector``, found again if the page's refresh replaced it."""
    return wait_until(
        lambda: (browser.find_element(By.CSS_SELECTOR, selector).get_attribute(name),),
        what=f"{name} of {selector}",
        ignore=(StaleElementReferenceException,),
    )[0]


def _texts(browser, selector: str) -> list[str]:
    """The text of each element ``selector`` finds, found again if a refresh replaced it."""
    return wait_until(
        lambda: ([e.text for e in browser.find_elements(By.CSS_SELECTOR, selector)],),
        what=f"the texts of {selector}",
        ignore=(StaleElementReferenceException,),
    )[0]


def _no_overflow(browser) -> bool:
    return browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1"
    )


def test_overview_draws_the_tree_the_numbers_and_the_charts(infra, browser, dashboard, shots):
    browser.set_window_size(1400, 1000)
    browser.get(f"{dashboard}/")
    wait_until(
        lambda: _text(browser, "#health").startswith("healthy: root "), what="a healthy tree"
    )
    root = infra.root_name()
    root_card = _text(browser, f"#node-{root} > .card")
    assert root in root_card and "root" in root_card and "heartbeat" in root_card
    # Each node is drawn under the node it replicates from.
    leaf_parent = infra.redis["leaf1"].client().info("replication")["master_port"]
    parent = next(n for n, r in infra.redis.items() if r.address.endswith(f":{leaf_parent}"))
    assert browser.find_elements(By.CSS_SELECTOR, f"#node-{parent} #node-leaf1")
    assert browser.find_elements(By.CSS_SELECTOR, f"#node-{root} #node-{parent}")
    assert "locks held" in _text(browser, "#tile-locks")
    wait_until(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#errors-chart canvas"),
        what="the errors chart drawn",
    )
    legend = _text(browser, "#errors-chart .u-legend")
    assert "shop" in legend
    assert "Errors per hour" in _text(browser, "#errors-chart figcaption")
    assert browser.find_elements(By.CSS_SELECTOR, "#deploys-chart canvas")
    assert "deploy of shop v8 by" in _text(browser, "#feed")
    shots(browser, "overview")


def test_a_change_shows_without_a_reload(infra, browser, dashboard):
    browser.set_window_size(1400, 1000)
    browser.get(f"{dashboard}/")
    browser.execute_script("window.notReloaded = 42")
    run = make_runner(infra)
    done = run("error", "report", "billing", "payment timeout (live)", "--host", "dash-1")
    assert done.returncode == 0, done.stderr
    wait_until(
        lambda: "payment timeout (live)" in _text(browser, "#feed"),
        timeout=20,
        what="the new error in the feed",
    )
    assert browser.execute_script("return window.notReloaded") == 42
    assert _text(browser, "#connection") == "live"


def test_service_and_machine_pages_are_reached_by_clicking(browser, dashboard, shots):
    browser.set_window_size(1400, 1000)
    browser.get(f"{dashboard}/services")
    _click(browser, By.LINK_TEXT, "shop")
    wait_until(lambda: browser.current_url.endswith("/services/shop"), what="the service page")
    assert "dash-0" in _text(browser, "#instances") and "dash-1" in _text(browser, "#instances")
    versions = _text(browser, "#versions")
    assert "v7: 1 running" in versions and "v6: 1 running" in versions
    assert "shop-db" in _text(browser, "#locks")
    history = _text(browser, "#deploys")
    assert "failed (exit 1)" in history and "succeeded" in history
    assert "boom" in _text(browser, "#errors")
    shots(browser, "service")

    _click(browser, By.CSS_SELECTOR, "#instances a[href='/machines/dash-0']")
    wait_until(lambda: browser.current_url.endswith("/machines/dash-0"), what="the machine page")
    assert "reported" in _text(browser, "#freshness")
    assert "cpus" in _text(browser, "#facts")
    assert "shop" in _text(browser, "#services") and "v7" in _text(browser, "#services")
    assert "v7" in _text(browser, "#deploys")
    assert "boom" in _text(browser, "#errors")
    shots(browser, "machine")

    browser.get(f"{dashboard}/machines")
    browser.find_element(By.ID, "search-q").send_keys("DASH-0")
    browser.find_element(By.ID, "search-go").click()
    wait_until(lambda: "q=DASH-0" in browser.current_url, what="the machine search")
    assert "1 matches the search" in _text(browser, "#machines-count")
    _click(browser, By.CSS_SELECTOR, "#machines a[href='/machines/dash-0']")
    wait_until(lambda: browser.current_url.endswith("/machines/dash-0"), what="the machine page")

    browser.get(f"{dashboard}/machines/no-such-host")
    assert "No facts recorded for no-such-host" in _text(browser, "#machine-missing")


def test_hostile_records_are_text_and_long_ones_fold(browser, dashboard, shots):
    browser.set_window_size(1400, 1000)
    browser.get(f"{dashboard}/errors?service=shop")
    assert browser.find_elements(By.CSS_SELECTOR, "#errors-shop script") == []
    fold = "#errors-shop details.fold"
    assert _attribute(browser, fold, "open") is None
    head = _text(browser, fold)
    assert "<script>alert(1)</script> boom" in head and "x" * 900 not in head
    _click(browser, By.CSS_SELECTOR, f"{fold} summary")
    wait_until(lambda: _attribute(browser, fold, "open") is not None, what="it unfolded")
    full = _text(browser, f"{fold} .full")
    assert "second line" in full and "x" * 900 in full.replace("\n", "")
    marks = wait_until(
        lambda: [m.text for m in browser.find_elements(By.CSS_SELECTOR, f"{fold} .full .ctl")],
        what="the escapes",
        ignore=(StaleElementReferenceException,),
    )
    assert marks == ["\\e", "\\e", "U+202E"]
    # An unfolded field stays open across the page's refreshes.
    browser.execute_script(
        "window.swaps = 0;"
        "document.body.addEventListener('htmx:afterSwap', () => { window.swaps += 1; });"
    )
    wait_until(lambda: browser.execute_script("return window.swaps") >= 2, what="2 refreshes")
    assert _attribute(browser, fold, "open") is not None
    shots(browser, "errors")

    browser.get(f"{dashboard}/locks")
    assert "<i>migration</i> 42" in _text(browser, "#locks")
    assert browser.find_elements(By.CSS_SELECTOR, "#locks i") == []
    browser.get(f"{dashboard}/deploys")
    assert "<b>deployed</b>" in _text(browser, "#deploys")
    assert browser.find_elements(By.CSS_SELECTOR, "#deploys b") == []


def test_settings_namespaces_with_their_values_and_history(
    infra, browser, dashboard, shots, tmp_path
):
    run = make_runner(infra)
    schema = {
        "type": "object",
        "properties": {
            "page_threshold": {"type": "integer", "minimum": 1},
            "banner": {"type": "string"},
        },
        "additionalProperties": False,
    }
    path = tmp_path / "shop-web.schema.json"
    path.write_text(json.dumps(schema))
    steps = [
        ("schema", "set", "shop-web", str(path), "--reason", "the shop's settings"),
        ("set", "shop-web", "page_threshold", "5", "--reason", "start low"),
        ("set", "shop-web", "banner", HOSTILE_VALUE, "--string", "--reason", "<b>hi</b> there"),
        ("set", "shop-web", "page_threshold", "9", "--reason", "too noisy"),
        ("schema", "set", "scratch", "--free-form", "--reason", "experiments"),
    ]
    for step in steps:
        done = run("config", *step)
        assert done.returncode == 0, done.stderr
    leaf = infra.redis["leaf1"].client()
    wait_until(
        lambda: (
            leaf.hget(namespace_key("shop-web"), "revision") == "4"
            and leaf.exists(namespace_key("scratch"))
        ),
        what="the settings on the leaf",
    )
    browser.set_window_size(1400, 1000)
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(f"{dashboard}/settings")
    rows = _texts(browser, "#namespaces tbody tr")
    shop = next(r for r in rows if r.startswith("shop-web "))
    assert "schema 2 4 " in shop and "set page_threshold" in shop
    assert any(r.startswith("scratch free-form 0 1 ") for r in rows), rows
    shots(browser, "settings")

    _click(browser, By.LINK_TEXT, "shop-web")
    wait_until(lambda: browser.current_url.endswith("/settings/shop-web"), what="its page")
    assert _text(browser, "#namespace-version") == "version 4: 2 keys, checked by its schema"
    assert '"additionalProperties": false' in _text(browser, "#schema")  # folded
    _click(browser, By.CSS_SELECTOR, "#fold-schema summary")
    assert '"minimum": 1' in _text(browser, "#fold-schema .full")
    values = _texts(browser, "#settings tbody tr")
    assert values[1].startswith("page_threshold 9 4 ") and "too noisy" in values[1]
    # The hostile value: JSON text, folded, its markup inert, its bidi override marked.
    fold = "#fold-value-banner"
    assert '"<script>alert(1)</script> \\u001b[31mred' in _text(browser, fold)
    assert _texts(browser, f"{fold} summary .ctl") == ["U+202E"]
    assert browser.find_elements(By.CSS_SELECTOR, "#live script, #live b") == []
    assert _texts(browser, "#history td[data-label=version]") == ["4", "3", "2", "1"]
    newest = _texts(browser, "#history tbody tr")[0]
    assert "too noisy" in newest and "set page_threshold" in newest
    assert newest.endswith(" 5 9")
    assert "<b>hi</b> there" in _texts(browser, "#history tbody tr")[1]
    shots(browser, "namespace")

    link = "/settings/shop-web?key=page_threshold#history-section"
    _click(browser, By.CSS_SELECTOR, f"#settings a[href='{link}']")
    wait_until(lambda: "?key=page_threshold" in browser.current_url, what="the key's history")
    assert _texts(browser, "#history td[data-label=version]") == ["4", "2"]
    assert "2 changes of page_threshold kept" in _text(browser, "#history-count")
    _click(browser, By.ID, "history-all")
    wait_until(lambda: "key=" not in browser.current_url, what="every key's history")
    assert len(_texts(browser, "#history tbody tr")) == 4

    try:
        for page, name in [
            ("/settings", "phone-settings"),
            ("/settings/shop-web", "phone-namespace"),
        ]:
            browser.set_window_size(*PHONE)
            browser.get(f"{dashboard}{page}")
            assert _texts(browser, "#live table tbody tr"), page
            assert _no_overflow(browser), page
            shots(browser, name)
    finally:
        browser.set_window_size(1400, 1000)
    messages = [e["message"] for e in browser.get_log("browser")]
    assert [m for m in messages if "Content Security Policy" in m or "Refused" in m] == []

    browser.get(f"{dashboard}/settings/no-such-namespace")
    assert "there is no settings namespace" in _text(browser, "#page-error")


def test_the_policy_forbids_inline_script_and_nothing_breaks_it(browser, dashboard):
    with urllib.request.urlopen(f"{dashboard}/", timeout=5) as reply:
        policy = reply.headers["Content-Security-Policy"]
        html = reply.read().decode()
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert not re.search(r"\sstyle=|\son[a-z]+=", html)
    browser.get_log("browser")  # drop what earlier pages logged
    for path in ("/", "/services/shop", "/errors"):
        browser.get(f"{dashboard}{path}")
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".chart canvas"), what="a chart")
    messages = [e["message"] for e in browser.get_log("browser")]
    assert [m for m in messages if "Content Security Policy" in m or "Refused" in m] == []


def test_pages_fit_a_phone(browser, dashboard, shots):
    try:
        for path, name in [("/", "phone-overview"), ("/services/shop", "phone-service")]:
            browser.set_window_size(*PHONE)
            browser.get(f"{dashboard}{path}")
            wait_until(
                lambda: browser.find_elements(By.CSS_SELECTOR, ".chart canvas"), what="a chart"
            )
            assert _no_overflow(browser), path
            shots(browser, name)
    finally:
        browser.set_window_size(1400, 1000)


def test_error_search(browser, dashboard, shots):
    browser.get(f"{dashboard}/errors")
    browser.find_element(By.ID, "search-q").send_keys("ALERT(1)")
    browser.find_element(By.ID, "search-go").click()
    wait_until(lambda: "q=ALERT" in browser.current_url, what="the search to load")
    assert "boom" in _text(browser, "#errors-shop")
    assert browser.find_elements(By.ID, "errors-billing") == []
    browser.get(f"{dashboard}/errors?host=dash-1&since=1h")
    assert "card declined" in _text(browser, "#errors-billing")
    assert browser.find_elements(By.ID, "errors-shop") == []
    browser.get(f"{dashboard}/errors?since=forever")
    assert "forever" in _text(browser, "#search-error")


def test_deploy_log_search(browser, dashboard, shots):
    browser.get(f"{dashboard}/deploys")
    browser.find_element(By.ID, "search-version").send_keys("v7")
    browser.find_element(By.ID, "search-go").click()
    wait_until(lambda: "version=v7" in browser.current_url, what="the search to load")
    rows = _text(browser, "#deploys tbody").splitlines()
    assert len(rows) == 1 and "succeeded" in rows[0] and "ann" in rows[0]
    shots(browser, "deploys")
    browser.get(f"{dashboard}/deploys?service=shop&machine=nosuch")
    assert browser.find_elements(By.ID, "deploys-empty")
    browser.get(f"{dashboard}/deploys?since=yesterday")
    assert "neither a duration" in _text(browser, "#search-error")


def test_metrics(dashboard):
    with urllib.request.urlopen(f"{dashboard}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    assert 'prodstate_statedb_locks{state="held"}' in text
    assert re.search(r'prodstate_statedb_machines\{freshness="fresh"\} [1-9]', text)
    assert re.search(r'prodstate_statedb_errors_last_hour\{service="shop"\} [1-9]', text)
    assert re.search(r'prodstate_statedb_deploys_last_day\{outcome="failed"\} [1-9]', text)
    assert 'prodstate_statedb_read_ok{part="machines"} 1.0' in text


def test_served_in_part_while_zookeeper_or_redis_is_down(infra, browser, dashboard):
    dead = f"127.0.0.1:{free_port()}"
    server, base = _serve(infra, infra.redis["leaf1"].address, zk=dead)
    try:
        browser.get(f"{base}/")
        assert "not connected to ZooKeeper" in _text(browser, "#health")
        assert "locks held" in _text(browser, "#tile-locks")
        assert _text(browser, "#tile-locks .value") != "?"
        browser.get(f"{base}/services/shop")
        assert "dash-0" in _text(browser, "#instances")
    finally:
        _stop(server)
    server, base = _serve(infra, dead)
    try:
        browser.get(f"{base}/")
        assert _text(browser, "#health").startswith("healthy: root ")
        assert "cannot read the local Redis" in _text(browser, ".unavailable")
        assert _text(browser, "#tile-locks .value") == "?"
        browser.get(f"{base}/settings/shop-web")
        assert "cannot read namespace shop-web" in _text(browser, ".unavailable")
        browser.get(f"{base}/settings")
        assert "cannot read the settings" in _text(browser, ".unavailable")
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as reply:
            assert 'prodstate_statedb_read_ok{part="locks"} 0.0' in reply.read().decode()
    finally:
        _stop(server)
