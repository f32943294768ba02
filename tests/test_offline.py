"""The app as shipped stays offline and private: started as the README says (`streamlit run
app.py`, only with the flags a test needs: headless and a free port), neither the server nor the
pages a visitor opens ask any host but the app's own, no usage statistics are collected, and the
visitor gets no developer toolbar."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from emotion.config import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Schemes that never leave the browser.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-extension", "devtools"}


def _missing() -> list[str]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    return missing


needs_browser = pytest.mark.skipif(bool(_missing()), reason=f"needs {', '.join(_missing())} "
                                   "(apt-get install -y chromium chromium-driver)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = _free_port()
    log_path = tmp_path / "streamlit.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env["EMOTION_MODEL"] = str(model_path)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                                timeout=2) as r:
                        if r.read() == b"ok":
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
            yield f"http://127.0.0.1:{port}", proc, log_path
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def logging_browser(tmp_path: Path):
    """Headless Chromium that logs every request its pages make (Chrome's performance log)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # The background-networking flags silence Chromium's own calls home (updates, sync), which
    # are the browser's, not the app's; every request a page makes is still logged.
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


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


@pytest.mark.browser
@needs_browser
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
