"""The scale-out recipe in deploy/, without Docker: the same parts run directly.

Two `streamlit run app.py` replicas on two ports, nginx in front of them with the configuration
made from deploy/nginx.conf.template (sticky by cookie, WebSocket upgrade), and coturn as the TURN
server, with headless Chromium forced to relay its media through it (`iceTransportPolicy: "relay"`
in EMOTION_ICE_SERVERS). A browser per replica: annotated frames come back through the proxy and
the relay, and each replica served the session that was sent to it.

Needs nginx and coturn (apt-get install -y nginx coturn) besides what the browser tests need;
skipped, saying which is missing, otherwise. Loopback peers are allowed in coturn for this test
only (`--allow-loopback-peers`): the replicas listen on 127.0.0.1 here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browser import camera_chromium, free_port, running_app, stop, wait_http
from emotion.config import ICE_SERVERS_ENV, LIVE_STATS_ENV
from emotion.config import PROJECT_ROOT
from emotion.labels import COLOURS
from test_browser_webcam import (  # noqa: F401 - fake_camera is a fixture used by name
    FakeCamera, _grab_frame,
    _label_colour_gains, _missing_tools, _open_and_start, fake_camera)
from test_deploy_recipe import render_template

TEMPLATE = PROJECT_ROOT / "deploy" / "nginx.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
COOKIE = "emotion_replica"
TURN_USER, TURN_PASSWORD = "emotion", "test-only-secret"


def _missing() -> list[str]:
    missing = _missing_tools()
    missing += [p for p in (NGINX, TURNSERVER) if not Path(p).is_file()]
    return missing


pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(bool(_missing()), reason=f"the deployment test needs {', '.join(_missing())}"
                       " (apt-get install -y nginx coturn chromium chromium-driver ffmpeg)"),
]


@pytest.fixture
def turn(tmp_path: Path):
    """coturn on 127.0.0.1, one user; yields its port."""
    port = free_port()
    log = tmp_path / "turnserver.log"
    proc = subprocess.Popen(
        [TURNSERVER, "-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
         "--listening-port", str(port), "--min-port", "49160", "--max-port", "49200",
         "--realm", "emotion", "--fingerprint", "--lt-cred-mech",
         "--user", f"{TURN_USER}:{TURN_PASSWORD}", "--no-cli", "--no-tls", "--no-dtls",
         "--allow-loopback-peers", "--log-file", "stdout", "--simple-log",
         "--pidfile", str(tmp_path / "turnserver.pid")],
        stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while "listener opened on" not in log.read_text() and "Total General servers" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"turnserver did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield port, log
    finally:
        stop(proc)


@pytest.fixture
def replicas(tmp_path: Path, model_path: Path, turn):
    """Two `streamlit run app.py` replicas, as deploy/ runs them, each with its own stats folder."""
    turn_port, _ = turn
    ice = {"iceServers": [{"urls": [f"turn:127.0.0.1:{turn_port}?transport=udp"],
                           "username": TURN_USER, "credential": TURN_PASSWORD}],
           "iceTransportPolicy": "relay"}
    started = []
    try:
        for i in range(2):
            port = free_port()
            stats = tmp_path / f"stats-{i}"
            stats.mkdir()
            log = tmp_path / f"replica-{i}.log"
            env = {**os.environ, ICE_SERVERS_ENV: json.dumps(ice), LIVE_STATS_ENV: str(stats),
                   "EMOTION_MODEL": str(model_path), "EMOTION_TTS_OFFLINE": "1",
                   "EMOTION_DISABLE_TRAINING": "1", "PYTHONPATH": str(PROJECT_ROOT)}
            proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                 "--server.port", str(port), "--server.address", "127.0.0.1"],
                cwd=PROJECT_ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
            started.append((proc, port, stats, log))
        for proc, port, _, log in started:
            wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc, log)
        yield [(port, stats) for _, port, stats, _ in started]
    finally:
        for proc, *_ in started:
            stop(proc)


@pytest.fixture
def proxy(tmp_path: Path, replicas):
    """nginx in the foreground with the recipe's configuration; yields (base URL, access log)."""
    port = free_port()
    root = tmp_path / "nginx"
    root.mkdir()
    site = render_template(TEMPLATE.read_text(), {
        "LISTEN_PORT": f"127.0.0.1:{port}",
        "UPSTREAM_SERVERS": "\n    ".join(f"server 127.0.0.1:{p};" for p, _ in replicas)})
    (root / "site.conf").write_text(site)
    # The image's main configuration, reduced to what an unprivileged nginx needs: every path in
    # tmp_path, and an access log that names the replica each request went to.
    temp = "\n".join(f"    {name}_temp_path {root / name};"
                     for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # As root, nginx's workers would run as nobody, who cannot enter tmp_path.
    user = "user root;" if os.geteuid() == 0 else ""
    (root / "nginx.conf").write_text(f"""
{user}
pid {root / 'nginx.pid'};
error_log {root / 'error.log'} info;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    log_format replica '$request_uri $status $upstream_addr $cookie_{COOKIE}';
    access_log {root / 'access.log'} replica;
{temp}
    include {root / 'site.conf'};
}}
""")
    log = root / "nginx.out"
    proc = subprocess.Popen([NGINX, "-p", str(root), "-c", str(root / "nginx.conf"),
                             "-g", "daemon off;"], stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc, root / "error.log", timeout=30)
        yield f"http://localhost:{port}", root / "access.log"
    finally:
        stop(proc)


def _cookie_per_replica(base: str, access_log: Path, replicas: list) -> dict[int, str]:
    """A cookie value that nginx sends to each replica, found by asking with a few values."""
    wanted = {f"127.0.0.1:{p}": p for p, _ in replicas}
    found: dict[int, str] = {}
    for n in range(64):
        value = f"probe{n}"
        request = urllib.request.Request(f"{base}/_stcore/health?probe={value}",
                                         headers={"Cookie": f"{COOKIE}={value}"})
        with urllib.request.urlopen(request, timeout=5) as r:
            # Sticky: nginx keeps the viewer's key, it does not hand out a new one.
            assert f"{COOKIE}={value};" in " ".join(r.headers.get_all("Set-Cookie") or [])
        time.sleep(0.05)
        for line in access_log.read_text().splitlines():
            uri, _, upstream, cookie = (line.split(" ") + ["", "", "", ""])[:4]
            if uri.endswith(f"probe={value}") and upstream in wanted:
                found.setdefault(wanted[upstream], value)
        if len(found) == len(wanted):
            return found
    pytest.fail(f"nginx sent 64 different cookies to {sorted(found)} only; access log:\n"
                f"{access_log.read_text()[-2000:]}")


SELECTED_PAIR_JS = """
const done = arguments[arguments.length - 1];
const pcs = window.__peerConnections || [];
if (!pcs.length) { done(null); return; }
pcs[pcs.length - 1].getStats().then(report => {
  let pair = null; const candidates = {};
  report.forEach(s => {
    if (s.type === 'local-candidate') candidates[s.id] = s.candidateType;
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
  });
  done(pair ? candidates[pair.localCandidateId] : null);
}).catch(() => done(null));
"""


def _session_stats(folder: Path) -> dict:
    best: dict = {}
    for path in folder.glob("session-*.json"):
        try:
            stats = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if stats.get("frames_with_faces", 0) >= best.get("frames_with_faces", -1):
            best = stats
    return best


@pytest.mark.parametrize("fake_camera", ["still"], indirect=True)
def test_replicas_behind_nginx_with_media_relayed_through_turn(
        proxy, replicas, turn, fake_camera: FakeCamera, tmp_path: Path):
    base, access_log = proxy
    cookies = _cookie_per_replica(base, access_log, replicas)
    with contextlib.ExitStack() as browsers:
        for i, (port, stats_dir) in enumerate(replicas):
            driver = browsers.enter_context(
                camera_chromium(tmp_path / f"profile-{i}", fake_camera.y4m))
            # Before the first request, as the cookie nginx itself would have set (host-only).
            driver.execute_cdp_cmd("Network.setCookie", {"name": COOKIE, "value": cookies[port],
                                                         "url": f"{base}/", "path": "/"})
            _open_and_start(driver, f"{base}/Webcam")
            deadline, stats = time.monotonic() + 120, {}
            while time.monotonic() < deadline:
                stats = _session_stats(stats_dir)
                if stats.get("frames_with_faces", 0) >= 20:
                    break
                time.sleep(0.5)
            assert stats.get("frames_with_faces", 0) >= 20, \
                f"replica {i} (port {port}) processed too little: {stats}"
            # The media went through coturn: the browser's chosen candidate is a relay one.
            assert driver.execute_async_script(SELECTED_PAIR_JS) == "relay"
            frame = _grab_frame(driver)
            assert frame is not None, "the page's video never played"
            labels = [label for label in stats["labels"] if label in COLOURS]
            gains = _label_colour_gains(frame, fake_camera.frames, labels)
            assert max(gains.values()) > 0.002, f"no label colour in the returned video: {gains}"
            driver.switch_to.default_content()
            driver.save_screenshot(str(tmp_path / f"webcam-via-nginx-{i}.png"))
    # Each replica served its own browser's session, chosen by nginx's sticky cookie: every
    # WebSocket of a browser went to its replica (nginx logs a WebSocket once it closes).
    served = {port: _session_stats(stats_dir).get("frames", 0) for port, stats_dir in replicas}
    assert all(n > 0 for n in served.values()), served
    deadline = time.monotonic() + 10
    while True:
        streams = [line for line in access_log.read_text().splitlines()
                   if line.startswith("/_stcore/stream")]
        if all(any(line.endswith(f" {value}") for line in streams) for value in cookies.values()):
            break
        assert time.monotonic() < deadline, f"no WebSocket per browser in nginx's log: {streams}"
        time.sleep(0.5)
    for port, value in cookies.items():
        mine = [line for line in streams if line.endswith(f" {value}")]
        assert all(f"127.0.0.1:{port}" in line for line in mine), streams


@pytest.mark.parametrize("fake_camera", ["still"], indirect=True)
def test_a_start_that_cannot_connect_says_what_to_try(tmp_path: Path, model_path: Path,
                                                      fake_camera: FakeCamera):
    """Relay only, through a TURN server that is not there: no frame can come back, and 5 s after
    Start the page says so and what to try, instead of a black video and nothing else."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    dead_turn = free_port()  # nothing listens there
    ice = {"iceServers": [{"urls": [f"turn:127.0.0.1:{dead_turn}?transport=udp"],
                           "username": TURN_USER, "credential": TURN_PASSWORD}],
           "iceTransportPolicy": "relay"}
    env = {ICE_SERVERS_ENV: json.dumps(ice), "EMOTION_MODEL": str(model_path), "EMOTION_TTS_OFFLINE": "1"}
    with running_app(tmp_path, env) as (port, _, _), \
            camera_chromium(tmp_path / "profile", fake_camera.y4m) as driver:
        driver.set_window_size(420, 1000)  # a phone first: the sidebar starts folded away
        _open_and_start(driver, f"http://localhost:{port}/Webcam")
        started = time.monotonic()
        driver.switch_to.default_content()
        hint = WebDriverWait(driver, 60).until(lambda d: next(
            (e for e in d.find_elements(By.CSS_SELECTOR, '[data-testid="stAlert"]')
             if "No annotated video" in e.text), None))
        waited = time.monotonic() - started
        assert waited >= 4.5, f"the hint came {waited:.1f} s after Start, before the 5 s"
        assert "STOP and START again" in hint.text and "TURN" in hint.text
        driver.execute_script("arguments[0].scrollIntoView();", hint)
        driver.save_screenshot(str(tmp_path / "webcam-no-frame-phone.png"))
        driver.set_window_size(1400, 1000)
        driver.execute_script("window.scrollTo(0, 0);")
        time.sleep(1)
        driver.save_screenshot(str(tmp_path / "webcam-no-frame.png"))
