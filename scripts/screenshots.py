"""Regenerate the README's admin screenshots from a fresh demo database.

Needs Debian's chromium and `pip install playwright` (the browser is never downloaded):
    .venv/bin/python scripts/screenshots.py
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"


def manage(*args: str, env: dict, **kwargs) -> subprocess.Popen | None:
    command = [sys.executable, str(ROOT / "manage.py"), *args]
    if kwargs.pop("background", False):
        return subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    subprocess.run(
        command,
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return None


def login(page, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{BASE}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "warden-demo")
    page.click("input[type=submit]")


def main() -> None:
    env = {**os.environ, "WARDEN_VAR_DIR": tempfile.mkdtemp(prefix="warden-shots-")}
    manage("migrate", "-v0", env=env)
    manage("load_demo", env=env)
    server = manage("runserver", "--noreload", f"127.0.0.1:{PORT}", env=env, background=True)
    try:
        time.sleep(3)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            login(page, "security")
            page.goto(f"{BASE}/admin/reviews/stagereview/")
            page.screenshot(path=str(ROOT / "docs/img/stage-review-queue.png"))
            login(page, "board")
            page.goto(f"{BASE}/admin/submissions/pluginversion/?status__exact=awaiting_decision")
            page.click("#result_list tbody tr:first-child th a")
            page.set_viewport_size({"width": 1280, "height": 1400})
            page.screenshot(path=str(ROOT / "docs/img/version-page.png"))
            login(page, "security")
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(f"{BASE}/admin/reviews/stagereview/?state=in_progress")
            page.click("#result_list tbody tr:first-child th a")
            page.screenshot(path=str(ROOT / "docs/img/stage-review-checks.png"), full_page=True)
            login(page, "compliance")
            page.set_viewport_size({"width": 1400, "height": 900})
            page.goto(f"{BASE}/admin/reviews/stagereview/?state=in_progress")
            page.click("#result_list tbody tr:first-child th a")
            page.locator("#assessments-group").scroll_into_view_if_needed()
            page.screenshot(path=str(ROOT / "docs/img/compliance-review.png"))
            login(page, "performance")
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(f"{BASE}/admin/reviews/stagereview/?state=in_progress")
            page.click("#result_list tbody tr:first-child th a")
            page.locator("table.warden-performance").scroll_into_view_if_needed()
            page.evaluate("window.scrollBy(0, 300)")
            page.screenshot(path=str(ROOT / "docs/img/performance-table.png"))
            login(page, "board")  # the board's home: what awaits its decision, then the version's page
            page.set_viewport_size({"width": 1280, "height": 900})
            page.screenshot(path=str(ROOT / "docs/img/board-home.png"))
            page.click("#awaiting-decision tbody tr:first-child th a, #awaiting-decision tr:first-child th a")
            page.set_viewport_size({"width": 1280, "height": 1250})
            page.locator("h2:text-is('Risk rating')").scroll_into_view_if_needed()
            page.evaluate("window.scrollBy(0, 330)")
            page.screenshot(path=str(ROOT / "docs/img/decision-rating.png"))
            browser.close()
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
