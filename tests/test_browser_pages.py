"""Home, Photo and Dataset in a real browser, on a desktop (1400 px wide) and a phone (420 px).

What only a browser shows: nothing wider than the window (no sideways scrolling), page links
that are not cut off, and the Home page's "Try a sample photo" opening the Photo page with the
sample's numbered results. Screenshots go to pytest's tmp_path (`pytest -s` prints where); look at
them as a first-time user would.

Needs Debian's chromium and chromium-driver; skipped, saying which is missing, otherwise.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from browser import MARKS, chromium, running_app
from emotion.config import SHARED_FER2013

WIDTHS = {"desktop": 1400, "phone": 420}
# Tall windows, so one screenshot shows the whole page.
HEIGHT = 2200


pytestmark = MARKS


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, model_path: Path):
    """`streamlit run app.py` headless on a free port, as the README starts it; yields its URL."""
    logs = tmp_path_factory.mktemp("server")
    with running_app(logs, {"EMOTION_MODEL": str(model_path)}) as (port, _, _):
        yield f"http://localhost:{port}"


@pytest.fixture(params=list(WIDTHS))
def browser(request, tmp_path: Path):
    """Headless Chromium, as wide as a desktop or a phone; yields (driver, the width's name)."""
    width = WIDTHS[request.param]
    with chromium(tmp_path / "chromium-profile", width, HEIGHT, ("--hide-scrollbars",)) as driver:
        assert driver.execute_script("return window.innerWidth") == width
        yield driver, request.param


def _body_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _wait_for_text(driver, *texts: str, timeout: float = 180) -> str:
    """Wait until the page shows one of `texts` and Streamlit has finished running; which one."""
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d):
        body = _body_text(d)
        running = d.execute_script(
            "return !!document.querySelector('[data-testid=\"stStatusWidget\"]')")
        return next((t for t in texts if t in body), None) if not running else None

    found = WebDriverWait(driver, timeout, poll_frequency=0.5).until(shown)
    time.sleep(1.5)  # charts and images draw after the script's last message
    return found


# Everything in the page that is wider than the window, and every link whose text is cut: the
# element, its right edge and the window's width.
LAYOUT_PROBLEMS_JS = """
const width = window.innerWidth;
const problems = [];
if (document.documentElement.scrollWidth > width) {
  problems.push(`page ${document.documentElement.scrollWidth} px wide in a ${width} px window`);
}
for (const el of document.querySelectorAll('[data-testid="stMain"] *')) {
  const r = el.getBoundingClientRect();
  if (r.width > 0 && r.height > 0 && r.right > width + 1) {
    const scroller = el.closest('[data-testid="stDataFrameResizable"], .stDataFrame, canvas');
    if (!scroller) problems.push(`${el.tagName}.${el.className} ends at ${Math.round(r.right)} px`);
  }
}
for (const a of document.querySelectorAll('a')) {
  const r = a.getBoundingClientRect();
  // Hidden: a closed sidebar's links (the phone's sidebar opens over the page; checked open).
  if (r.width < 2 || r.height < 2) continue;  // hidden, such as "Skip to main content"
  if (r.right <= 0 && a.closest('[data-testid="stSidebar"]')) continue;  // a closed menu
  if (r.right > width + 1 || r.left < -1) problems.push(`link "${a.innerText}" is off screen`);
  for (const t of [a, ...a.querySelectorAll('*')]) {
    if (t.clientWidth > 0 && t.scrollWidth > t.clientWidth + 1) {
      problems.push(`link "${a.innerText}" is cut: ${t.scrollWidth} px of text in ${t.clientWidth}`);
    }
  }
}
return problems.slice(0, 20);
"""


def _layout_problems(driver) -> list[str]:
    return driver.execute_script(LAYOUT_PROBLEMS_JS)


def test_home_photo_and_dataset_fit_desktop_and_phone(app_url: str, browser, tmp_path: Path):
    from selenium.webdriver.common.by import By

    driver, size = browser
    problems: dict[str, list[str]] = {}

    driver.get(app_url)
    _wait_for_text(driver, "How good is it?")
    body = _body_text(driver)
    assert "on faces it has never seen" in body
    links = [a.text for a in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stPageLink"] a')]
    assert {"Photo", "Dataset"} <= {t.splitlines()[-1] for t in links if t}, links
    driver.save_screenshot(str(tmp_path / f"home-{size}.png"))
    problems["home"] = _layout_problems(driver)
    if size == "phone":  # the menu is folded away: open it, and its links must fit too
        driver.find_element(By.CSS_SELECTOR, '[data-testid="stExpandSidebarButton"]').click()
        time.sleep(1.5)
        menu = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a')
        assert [a.text.splitlines()[-1] for a in menu if a.text][:2] == ["Home", "Photo"]
        driver.save_screenshot(str(tmp_path / f"menu-{size}.png"))
        problems["menu"] = _layout_problems(driver)
        driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebarCollapseButton"] button').click()
        time.sleep(1)

    # The Home page's first button opens the Photo page with a sample's numbered results.
    driver.find_element(By.XPATH, "//button[.//p[normalize-space()='Try a sample photo']]").click()
    _wait_for_text(driver, "faces found", "face found")
    body = _body_text(driver)
    assert "numbered on the photo as in the table" in body
    assert "Results (CSV)" in body
    driver.save_screenshot(str(tmp_path / f"photo-{size}.png"))
    problems["photo"] = _layout_problems(driver)

    driver.get(f"{app_url}/Dataset")
    found = _wait_for_text(driver, "Duplicates and leakage", "Give the path", timeout=600)
    if SHARED_FER2013.is_dir():
        assert found == "Duplicates and leakage"
    driver.save_screenshot(str(tmp_path / f"dataset-{size}.png"))
    problems["dataset"] = _layout_problems(driver)

    print(f"\nscreenshots ({size}): {tmp_path}")
    assert not any(problems.values()), f"layout problems at {WIDTHS[size]} px: {problems}"
