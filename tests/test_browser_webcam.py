"""The webcam page in a real browser: Chromium's fake camera plays the astronaut photo, the server
annotates it, and the annotated video comes back to the page.

Needs Debian's chromium and chromium-driver and ffmpeg (apt-get install -y chromium chromium-driver
ffmpeg); skipped, saying which is missing, otherwise. Saves docs/screenshots/webcam.png.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotion.config import PROJECT_ROOT
from emotion.labels import COLOURS
from emotion.live import STATS_ENV

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = PROJECT_ROOT / "docs" / "screenshots" / "webcam.png"
WEBCAM_PAGE = PROJECT_ROOT / "pages" / "2_Webcam.py"


def _missing_tools() -> list[str]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if shutil.which("ffmpeg") is None:
        missing.append("ffmpeg")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    return missing


pytestmark = pytest.mark.skipif(
    bool(_missing_tools()),
    reason=f"real-browser test needs {', '.join(_missing_tools())}"
           " (apt-get install -y chromium chromium-driver ffmpeg)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_camera(tmp_path, astronaut_bgr) -> tuple[Path, np.ndarray]:
    """A 640x480 y4m of the astronaut for Chromium's fake camera, and the frame it shows."""
    frame = cv2.resize(astronaut_bgr, (640, 480), interpolation=cv2.INTER_AREA)
    png, y4m = tmp_path / "astronaut.png", tmp_path / "astronaut.y4m"
    cv2.imwrite(str(png), frame)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", str(png), "-t", "1",
                    "-r", "15", "-pix_fmt", "yuv420p", str(y4m)], check=True, timeout=60)
    return y4m, frame


@pytest.fixture
def server(tmp_path, model_path):
    """`streamlit run app.py` headless on a free port; yields (webcam page URL, stats file)."""
    port = _free_port()
    stats = tmp_path / "live-stats.json"
    app = PROJECT_ROOT / "app.py"
    # The multipage app when it exists; the page on its own otherwise.
    script, path = (app, "/Webcam") if app.is_file() else (WEBCAM_PAGE, "/")
    env = {**os.environ, STATS_ENV: str(stats), "EMOTION_MODEL": str(model_path),
           "EMOTION_TTS_OFFLINE": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{(tmp_path / 'streamlit.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://localhost:{port}{path}", stats
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def browser(tmp_path, fake_camera):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    y4m, _ = fake_camera
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={y4m}",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 "--autoplay-policy=no-user-gesture-required",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _read_stats(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


GRAB_FRAME_JS = """
const v = document.querySelector('video');
if (!v || v.readyState < 2 || !v.videoWidth) return null;
const c = document.createElement('canvas');
c.width = v.videoWidth; c.height = v.videoHeight;
c.getContext('2d').drawImage(v, 0, 0);
return c.toDataURL('image/png');
"""


def _colour_share(image: np.ndarray, bgr: tuple[int, int, int], tolerance: int = 45) -> float:
    """Share of pixels within `tolerance` of a colour (video coding shifts colours a little)."""
    distance = np.abs(image.astype(np.int16) - np.array(bgr, np.int16)).max(axis=2)
    return float((distance <= tolerance).mean())


def test_webcam_page_returns_annotated_frames(server, browser, fake_camera):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    url, stats_path = server
    _, source_frame = fake_camera
    browser.get(url)
    # Loading TensorFlow and the model on the first visit takes a while on a small CPU.
    iframe = WebDriverWait(browser, 120).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, 'iframe[title*="webrtc"]')))
    browser.switch_to.frame(iframe)
    start = WebDriverWait(browser, 60).until(EC.element_to_be_clickable(
        (By.XPATH, "//button[translate(normalize-space(.), 'start', 'START')='START']")))
    start.click()

    # Server side: the processor counts frames in which it found and labelled a face.
    deadline, stats = time.monotonic() + 120, {}
    while time.monotonic() < deadline:
        stats = _read_stats(stats_path)
        if stats.get("frames_with_faces", 0) >= 20:
            break
        time.sleep(0.5)
    assert stats.get("frames_with_faces", 0) >= 20, f"server stats: {stats}"
    assert stats["main_label"] in COLOURS

    # Browser side: the video the page shows is the annotated one coming back over WebRTC.
    frame = None
    deadline = time.monotonic() + 30
    while frame is None and time.monotonic() < deadline:
        data_url = browser.execute_script(GRAB_FRAME_JS)
        if data_url:
            raw = base64.b64decode(data_url.split(",", 1)[1])
            frame = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        else:
            time.sleep(0.5)
    assert frame is not None, "the page's video never played"
    assert frame.shape[:2] == (480, 640)
    # The label's colour (box and label background) is in the returned frame, far more than in
    # the camera's own picture; and the FPS patch (dark, top-left) is there.
    labels = [label for label in stats["labels"] if label in COLOURS]
    gains = {label: _colour_share(frame, COLOURS[label]) - _colour_share(source_frame, COLOURS[label])
             for label in labels}
    best = max(gains, key=gains.get)
    assert gains[best] > 0.002, f"no label colour in the returned video: {gains}"
    assert frame[2:12, 2:40].mean() < 90 < source_frame[2:12, 2:40].mean() or \
        np.abs(frame[2:12, 2:40].astype(int) - source_frame[2:12, 2:40]).mean() > 20

    # Spoken feedback: switch it on; once the main face's emotion has held, the page plays a clip.
    browser.switch_to.default_content()
    browser.find_element(By.XPATH, "//label[.//p[normalize-space()='Speak the emotion']]").click()
    audio = WebDriverWait(browser, 30).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "audio[src]")))
    src = audio.get_attribute("src")
    with urllib.request.urlopen(src if src.startswith("http") else url.rsplit("/", 1)[0] + src,
                                timeout=10) as response:
        clip = response.read()
    assert clip[:4] == b"RIFF" and clip[8:12] == b"WAVE" and len(clip) > 10_000
    # Nobody presses play: it autoplays to its end, once (the panel's reruns keep the element).
    played = WebDriverWait(browser, 15).until(lambda d: d.execute_script(
        "const a = document.querySelector('audio[src]');"
        "return a && a.ended && a.duration > 0.5 ? a.duration : null;"))
    time.sleep(2)
    assert browser.execute_script("return document.querySelector('audio[src]').ended")

    time.sleep(2.5)  # the live panel refreshes every second: let it show FPS and the timeline
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))
    final = _read_stats(stats_path)

    # Stopped: the page offers the session's timeline as CSV.
    browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, 'iframe[title*="webrtc"]'))
    browser.find_element(By.XPATH, "//button[translate(normalize-space(.), 'stop', 'STOP')='STOP']").click()
    browser.switch_to.default_content()
    WebDriverWait(browser, 30).until(EC.presence_of_element_located(
        (By.XPATH, "//button[.//p[normalize-space()='Timeline (CSV)']]")))
    print(f"browser test: spoke a {played:.2f} s clip; {final['frames']} frames processed, "
          f"{final['frames_with_faces']} with a face, {final['fps']:.1f} fps, "
          f"{final['mean_process_ms']:.0f} ms per frame, "
          f"labels {final['labels']}")
