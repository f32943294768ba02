"""What the browser tests share: the app started as the README says, on a free port, and headless
Chromium with the flags this machine needs (its own calls home silenced, a profile of its own)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from emotion.app.webrtc_probe import PEER_CONNECTION_HOOK_JS, camera_flags
from emotion.config import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def missing_tools() -> list[str]:
    """What a real-browser test needs and this machine lacks."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    return missing


# pytestmark for a module of browser tests.
MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(missing_tools()),
                       reason=f"real-browser test needs {', '.join(missing_tools())} "
                              "(apt-get install -y chromium chromium-driver)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(log_dir: Path, env: dict[str, str] | None = None,
                args: tuple[str, ...] = ()) -> Iterator[tuple[int, subprocess.Popen, Path]]:
    """`streamlit run app.py` headless on a free port, the shipped config otherwise untouched;
    yields (port, process, log file) once /_stcore/health answers, and stops it after."""
    port = free_port()
    log_path = Path(log_dir) / "streamlit.log"
    # No STREAMLIT_ variables of the caller's: the app runs with the shipped settings.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    full_env = {**inherited, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", *args],
            cwd=PROJECT_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc, log_path, timeout=90,
                      body=b"ok")
            yield port, proc, log_path
        finally:
            stop(proc)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180,
              body: bytes | None = None) -> None:
    """Until `url` answers 200 (with `body`, when given); the test fails with the end of `log`
    when `proc` dies or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200 and (body is None or r.read() == body):
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} did not come up:\n{Path(log).read_text()[-3000:]}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    """Terminate, and kill what does not end within 15 s."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def chromium(profile: Path, width: int = 1400, height: int = 1000, flags: tuple[str, ...] = (),
             capabilities: dict | None = None):
    """Headless Chromium `width` px wide (below Chromium's 500 px floor through device
    emulation, as a phone is); yields the Selenium driver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # Without the background-networking flags Chromium calls home (updates, sync), which this
    # machine's closed network refuses; every request a page makes still goes out.
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", f"--window-size={max(width, 500)},{height}",
                 f"--user-data-dir={profile}", *flags]:
        options.add_argument(flag)
    for name, value in (capabilities or {}).items():
        options.set_capability(name, value)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        if width < 500:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def camera_chromium(profile: Path, y4m: Path):
    """Headless Chromium whose camera plays the clip `y4m`, keeping every RTCPeerConnection its
    pages make (PEER_CONNECTION_HOOK_JS); yields the Selenium driver."""
    with chromium(profile, flags=camera_flags(y4m)) as driver:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                               {"source": PEER_CONNECTION_HOOK_JS})
        yield driver
