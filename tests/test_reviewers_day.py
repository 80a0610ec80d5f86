"""The reviewer's day on the demo, in a real browser (Debian's chromium through Playwright).

The security reviewer opens its home, opens a version, reads the diff and a finding in the
code, triages it and passes the stage; the compliance officer assesses the open controls and
the evidence on one page and signs off; the board approves from the dossier; an author reads
the request for changes and answers it. Each task's page loads are counted against its budget.

Screenshots go to ``WARDEN_SCREENSHOT_DIR`` (``docs/img`` regenerates the README's), else to
the test's temporary directory.
"""

import os
import shutil
from pathlib import Path
from unittest.mock import patch

import pytest
from django.core.management import call_command
from django_q.conf import Conf

from reviews.sandbox.runner import isolation_available

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "warden-demo"

pytestmark = [
    # the live server reads what this test commits; the migrations' groups survive earlier flushes
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test-tools installs it)"),
    pytest.mark.skipif(not isolation_available(), reason="the demo runs its plugins in bubblewrap"),
    pytest.mark.skipif(shutil.which("strace") is None, reason="the demo's sandbox runs are traced"),
]


# Every Content-Security-Policy violation a page reports, kept where the test can read it.
REPORT_VIOLATIONS = """window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(
  `${e.violatedDirective} ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`));"""


class Browser:
    """One signed-in user's tab, counting the pages it loads (navigations and form posts). Any
    error the page logs, a failed request or a Content-Security-Policy violation is kept in
    ``errors`` (the browser logs each violation as an error)."""

    def __init__(self, browser, base: str, username: str, shots: Path):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.add_init_script(REPORT_VIOLATIONS)
        self.base, self.username, self.shots = base, username, shots
        self.loads: list[str] = []
        self.page.on("load", lambda: self.loads.append(self.page.url))
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(f"{r.status} {r.url}"))
        self.page.goto(f"{base}/admin/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        self.page.click("input[type=submit]")
        assert self.page.locator("#user-tools").is_visible(), f"{username} could not sign in"

    def follow(self, target) -> None:
        """Click a link or a submit button and wait until the page it leads to has loaded
        (a form post and its redirect end in one load)."""
        with self.page.expect_navigation(wait_until="load"):
            target.click()

    def violations(self) -> list[str]:
        """The Content-Security-Policy violations of the page now shown."""
        return self.page.evaluate("window.__cspViolations")

    def count(self) -> int:
        """Page loads since the last call."""
        n = len(self.loads)
        self.loads.clear()
        return n

    def shot(self, name: str, section: str = "") -> None:
        """The window, or one section of the page (``#findings``)."""
        target = self.page.locator(section) if section else self.page
        target.screenshot(path=str(self.shots / f"{name}.png"))


@pytest.fixture
def demo():
    """The demo as ``make run`` loads it: its tasks queue for a worker (none runs here), as
    load_demo runs what the demo needs itself."""
    with patch.object(Conf, "SYNC", False):
        call_command("load_demo", verbosity=0)


@pytest.fixture
def shots(tmp_path) -> Path:
    where = Path(os.environ.get("WARDEN_SCREENSHOT_DIR") or tmp_path / "shots")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def chromium(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are plain ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_the_reviewers_day_within_its_page_budgets(demo, live_server, chromium, shots):
    base = live_server.url

    # -- the security reviewer -------------------------------------------------------------
    security = Browser(chromium, base, "security", shots)
    security.page.goto(f"{base}/admin/")
    security.shot("home-security")
    security.count()
    security.follow(security.page.get_by_role("link", name="Security review: acme-exporter 1.4.0"))
    page = security.page
    assert page.title().startswith("Dossier: acme-exporter 1.4.0")
    assert "What changed since acme-exporter 1.3.0 (last approved)" in page.content()
    security.shot("dossier-security")
    security.shot("dossier-findings", "#findings")
    security.shot("performance-table", "#performance")
    dossier_url = page.url.split("#")[0]

    security.follow(page.get_by_role("link", name="Read the diff"))
    assert page.locator("text=acme_exporter/naming.py").first.is_visible()
    security.shot("diff")
    page.goto(dossier_url)
    finding = page.locator("tr[id^=finding-]", has_text="B311")
    security.follow(finding.get_by_role("link", name="acme_exporter/naming.py"))
    assert "/code/acme_exporter/naming.py" in page.url
    line = page.url.split("#L")[1]
    assert page.locator(f"#L{line}").is_visible()
    security.shot("code")
    page.goto(dossier_url)
    security.count()

    finding = page.locator("tr[id^=finding-]", has_text="B311")
    finding.locator("select[name=to_state]").select_option("false_positive")
    finding.locator("textarea[name=reason]").fill("The random suffix names an export file; it guards nothing.")
    security.follow(finding.get_by_role("button", name="Triage"))
    loads = {"triage": security.count()}
    assert loads["triage"] <= 2, "triaging a finding takes at most 2 page loads from the dossier"
    assert "False positive" in page.locator("tr[id^=finding-]", has_text="B311").inner_text()

    stage = page.locator("tr[id^=stage-]", has_text="Security review")
    stage.locator("textarea[name=reason]").fill("Code, scans and sandbox read; the one finding is triaged.")
    security.follow(stage.get_by_role("button", name="Pass"))
    assert "Passed" in page.locator("tr[id^=stage-]", has_text="Security review").inner_text()
    assert not security.errors, security.errors

    # -- the compliance officer ------------------------------------------------------------
    officer = Browser(chromium, base, "compliance", shots)
    officer.page.goto(dossier_url + "#compliance")
    officer.count()
    page = officer.page
    form = page.locator("#assess-form")
    results = form.locator("select[name^=result-]")
    open_controls = [
        results.nth(i)
        for i in range(results.count())
        if results.nth(i).locator("option").first.inner_text() == "—"  # "keep" marks the decided ones
    ]
    assert open_controls, "the demo leaves controls open for the officer"
    for select in open_controls:
        pk = select.get_attribute("name").removeprefix("result-")
        select.select_option("met")
        form.locator(f"textarea[name=reason-{pk}]").fill("Seen in the evidence and the manifest.")
    for select in form.locator("select[name^=evidence-]").all():
        pk = select.get_attribute("name").removeprefix("evidence-")
        select.select_option("accept")
        form.locator(f"input[name=evidence-reason-{pk}]").fill("Current and signed.")
    officer.shot("dossier-compliance", "#compliance")
    officer.follow(form.get_by_role("button", name="Save assessments and evidence decisions"))
    assert "assessed" in page.locator(".messagelist").inner_text()
    stage = page.locator("tr[id^=stage-]", has_text="Compliance validation")
    stage.locator("textarea[name=reason]").fill("Every control met; evidence accepted.")
    officer.follow(stage.get_by_role("button", name="Sign off (low residual risk)"))
    loads["assess and sign off"] = officer.count()
    assert loads["assess and sign off"] <= 3, "assessing every open control and signing off takes at most 3 loads"
    assert "Passed" in page.locator("tr[id^=stage-]", has_text="Compliance validation").inner_text()
    assert not officer.errors, officer.errors

    # -- the board ---------------------------------------------------------------------------
    board = Browser(chromium, base, "board", shots)
    board.page.goto(f"{base}/admin/")
    board.shot("home-board")
    board.count()
    page = board.page
    board.follow(page.locator("#awaiting-decision").get_by_role("link", name="acme-notifier 2.0.0"))
    board.shot("dossier-board", "#decision")
    board.follow(page.locator("#decision").get_by_role("button", name="Approve"))
    loads["approve"] = board.count()
    assert loads["approve"] <= 3, "the board approves within 3 page loads of its home"
    assert "was approved" in page.locator(".messagelist").inner_text()
    assert not board.errors, board.errors

    # -- the author --------------------------------------------------------------------------
    author = Browser(chromium, base, "globex-author", shots)
    author.page.goto(f"{base}/admin/")
    page = author.page
    author.follow(page.locator("#waiting-on-me").get_by_role("link", name="globex-sync 0.8.0").first)
    status = page.locator("#status").inner_text()
    assert "Changes requested" in status
    assert "Privacy documentation is missing" in status  # the canned response the reviewer picked, with its text
    author.shot("dossier-author", "#status")
    author.follow(page.locator("#status").get_by_role("link", name="Resubmit"))
    page.fill("textarea[name=reason]", "Added the privacy documentation the reviewers asked for.")
    for answer in page.locator("textarea[name^=answer_]").all():
        answer.fill("Done: docs/PRIVACY.md describes what we keep and for how long.")
    author.follow(page.get_by_role("button", name="Resubmit"))
    assert "Resubmit: done" in page.locator(".messagelist").inner_text()
    assert not author.errors, author.errors
    print("page loads:", loads)  # shown with -s: the figures in the closing note


def test_every_page_works_under_the_content_security_policy(demo, live_server, chromium, shots):
    """The admin's pages, the dossier, the code pages, the home page, a token shown once and the
    API's documentation run under the policy (no inline script or style but the nonce's): not
    one violation is reported, and what their scripts draw is there."""
    base = live_server.url
    board = Browser(chromium, base, "board", shots)
    page = board.page
    page.goto(f"{base}/admin/")
    board.follow(page.locator("#awaiting-decision").get_by_role("link", name="acme-notifier 2.0.0"))
    assert page.locator(".warden-rating svg.bar rect").count() >= 1  # the rating's bars, drawn without style=""
    assert board.violations() == [], board.violations()
    for where in ("Read the diff", "Code"):
        page.goto(page.url.split("#")[0])
        board.follow(page.get_by_role("link", name=where, exact=True).first)
        assert page.locator("table.warden-code, #warden-files, #warden-file-changes").count() >= 1
        assert board.violations() == [], (where, board.violations())
    page.goto(f"{base}/admin/submissions/pluginversion/")
    board.follow(page.locator("#result_list tbody tr a").first)
    board.follow(page.locator(".object-tools").get_by_role("link", name="History"))  # django-simple-history's
    assert page.locator("#change-history").count() == 1
    assert board.violations() == [], board.violations()
    assert not board.errors, board.errors

    platform = Browser(chromium, base, "platform", shots)
    page = platform.page
    page.goto(f"{base}/admin/submissions/integrationtoken/add/")
    page.fill("#id_name", "host: prod-eu")
    page.check("input[name=scopes][value=feed]")
    platform.follow(page.locator("input[name=_save]"))
    assert page.locator("#token-key").inner_text().count(".") == 1
    assert platform.violations() == [], platform.violations()

    page.goto(f"{base}/api/docs/")
    page.locator(".opblock").first.wait_for()  # Swagger UI drew the operations from its own script
    assert platform.violations() == [], platform.violations()
    platform.shot("api-docs")
    page.goto(f"{base}/api/redoc/")
    page.get_by_text("Warden API").first.wait_for()
    # Redoc asks Redocly's CDN for its logo; the policy blocks it, and nothing else.
    assert [v for v in platform.violations() if "cdn.redoc.ly" not in v] == []
    platform.errors = [e for e in platform.errors if "cdn.redoc.ly" not in e]
    assert not platform.errors, platform.errors
