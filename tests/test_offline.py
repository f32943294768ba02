"""The app as shipped stays offline and private: started as the README says (`streamlit run
app.py`, only with the flags a test needs: headless and a free port), neither the server nor the
pages a visitor opens ask any host but the app's own, no usage statistics are collected, and the
visitor gets no developer toolbar."""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from browser import MARKS, chromium, running_app
from emotion.config import PROJECT_ROOT

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Schemes that never leave the browser.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-extension", "devtools"}


def _remote_hosts(pid: int) -> set[str]:
    """The remote addresses of the server's open internet sockets, loopback included."""
    import psutil

    hosts = set()
    for conn in psutil.Process(pid).net_connections(kind="inet"):
        if conn.raddr:
            hosts.add(conn.raddr.ip)
    return hosts


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host in LOCAL_HOSTS


@pytest.fixture
def shipped_app(tmp_path: Path, model_path: Path):
    """`streamlit run app.py` with the shipped .streamlit/config.toml and nothing overridden."""
    with running_app(tmp_path, {"EMOTION_MODEL": str(model_path)}) as (port, proc, log_path):
        yield f"http://127.0.0.1:{port}", proc, log_path


@pytest.fixture
def logging_browser(tmp_path: Path):
    """Headless Chromium that logs every request its pages make (Chrome's performance log)."""
    with chromium(tmp_path / "profile",
                  capabilities={"goog:loggingPrefs": {"performance": "ALL"}}) as driver:
        yield driver


def _requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(params["request"]["url"])
        elif message.get("method") == "Network.webSocketCreated":
            urls.append(params["url"])
    return urls


def _wait_for_app(driver, timeout: float = 60) -> None:
    """Until the page has rendered its title (the app's script ran)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script("return document.querySelectorAll('h1').length"):
            return
        time.sleep(0.5)
    pytest.fail(f"{driver.current_url}: the page did not render")


@MARKS[0]
@MARKS[1]
def test_the_shipped_app_asks_no_host_but_its_own(shipped_app, logging_browser, tmp_path):
    base, proc, log_path = shipped_app
    urls, server_hosts = [], set()
    for path in ("/", "/Photo", "/Webcam", "/Training", "/Dataset"):
        logging_browser.get(base + path)
        _wait_for_app(logging_browser)
        time.sleep(3)  # let late requests (fonts, components, telemetry if it were on) go out
        urls += _requested_urls(logging_browser)
        server_hosts |= _remote_hosts(proc.pid)
    logging_browser.save_screenshot(str(tmp_path / "home-as-shipped.png"))

    assert urls, "the browser logged no requests: the check would prove nothing"
    foreign = sorted({u for u in urls if urlparse(u).scheme not in LOCAL_SCHEMES
                      and urlparse(u).hostname not in LOCAL_HOSTS})
    assert not foreign, f"the pages asked other hosts: {foreign[:10]}"
    assert all(_is_loopback(h) for h in server_hosts), f"the server connected to {server_hosts}"
    log = log_path.read_text()
    assert "Collecting usage statistics" not in log, log[-2000:]
    # No developer toolbar for a visitor: no "Deploy" button, no main menu.
    page = logging_browser.page_source
    assert 'data-testid="stAppDeployButton"' not in page
    assert 'data-testid="stMainMenu"' not in page


def test_shipped_config_is_offline_and_has_no_toolbar():
    """The settings themselves, read as Streamlit reads them (no browser needed)."""
    import tomllib

    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["toolbarMode"] == "minimal"
