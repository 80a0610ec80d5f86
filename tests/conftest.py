from datetime import date

import pytest
from django.contrib.auth.models import Group

from governance import roles
from governance.models import AuditEvent
from governance.services import pipeline_install_defaults
from reviews.models import ReviewerQualification, ReviewStatus
from submissions import services as sub
from submissions.models import IntegrationToken, TokenScope
from submissions.samples import plugin_archive

QUALIFICATION_OF = {
    roles.SECURITY_REVIEWERS: "security",
    roles.PERFORMANCE_REVIEWERS: "performance",
    roles.COMPLIANCE_OFFICERS: "compliance",
}


def token_key(user, *scopes: str, organisation=None, **fields) -> str:
    """A key of a new integration token of ``user`` (every scope when none is named): fixture
    data, not the service (tests/submissions/test_tokens.py covers ``token_create``)."""
    key, prefix, hashed_key = IntegrationToken.key_generator.generate()
    IntegrationToken.objects.create(
        name=f"{user.username} test token",
        prefix=prefix,
        hashed_key=hashed_key,
        owner=user,
        organisation=organisation,
        scopes=list(scopes or TokenScope.values),
        created_by=user,
        **fields,
    )
    return key


def token_client(user, *scopes: str, **fields):
    """An API client that sends a new integration token of ``user``."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_key(user, *scopes, **fields)}")
    return client


def make_user(django_user_model, username: str, role: str | None = None, *, qualified: bool = True):
    """A staff user in ``role``; reviewers also get a current qualification for their stage."""
    user = django_user_model.objects.create_user(username, f"{username}@example.com", "pw", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    if qualified and role in QUALIFICATION_OF:
        ReviewerQualification.objects.create(
            reviewer=user, stage_kind=QUALIFICATION_OF[role], granted_by=user, earned_on=date(2026, 1, 1)
        )
    return user


@pytest.fixture
def platform_admin(django_user_model):
    return make_user(django_user_model, "platform", roles.PLATFORM_ADMINS)


@pytest.fixture
def security(django_user_model):
    return make_user(django_user_model, "security", roles.SECURITY_REVIEWERS)


@pytest.fixture
def security2(django_user_model):
    return make_user(django_user_model, "security2", roles.SECURITY_REVIEWERS)


@pytest.fixture
def performance(django_user_model):
    return make_user(django_user_model, "performance", roles.PERFORMANCE_REVIEWERS)


@pytest.fixture
def compliance(django_user_model):
    return make_user(django_user_model, "compliance", roles.COMPLIANCE_OFFICERS)


@pytest.fixture
def board(django_user_model):
    return make_user(django_user_model, "board", roles.APPROVAL_BOARD)


@pytest.fixture
def outsider(django_user_model):
    """Staff, but in no role and no organisation."""
    return make_user(django_user_model, "outsider")


@pytest.fixture
def full_pipeline(platform_admin):
    """The default pipeline exactly as installed."""
    return {stage.key: stage for stage in pipeline_install_defaults(actor=platform_admin)}


@pytest.fixture
def pipeline(full_pipeline):
    """The default pipeline without the scanners and the sandbox: most tests are about the
    workflow, and bandit, GuardDog and the harness take seconds each (test_security_checks.py,
    test_sandbox.py and test_performance.py run them)."""
    for key in ("security", "performance"):
        stage = full_pipeline[key]
        stage.checks = []
        stage.save()
    return full_pipeline


@pytest.fixture
def acme(platform_admin):
    return sub.organisation_create(name="Acme Corp", slug="acme", actor=platform_admin)


@pytest.fixture
def globex(platform_admin):
    return sub.organisation_create(name="Globex", slug="globex", actor=platform_admin)


@pytest.fixture
def author(django_user_model, acme, platform_admin):
    user = make_user(django_user_model, "acme-author")
    sub.organisation_add_member(organisation=acme, user=user, actor=platform_admin)
    return user


@pytest.fixture
def other_author(django_user_model, globex, platform_admin):
    user = make_user(django_user_model, "globex-author")
    sub.organisation_add_member(organisation=globex, user=user, actor=platform_admin)
    return user


@pytest.fixture
def plugin(acme, author):
    return sub.plugin_create(organisation=acme, name="acme-exporter", category="data-connector", actor=author)


@pytest.fixture
def draft(plugin, author):
    return sub.version_create(plugin=plugin, artifact=plugin_archive("acme-exporter", "1.4.0"), actor=author)


@pytest.fixture
def in_review(draft, author, pipeline, django_capture_on_commit_callbacks):
    """A submitted version whose review round has started (the task ran on commit)."""
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=draft, actor=author)
    draft.refresh_from_db()
    assert draft.status == "in_review"
    return draft


def current_review(version, key: str):
    version.refresh_from_db()
    return version.stage_reviews.select_related("stage").get(stage__key=key, round=version.review_round)


def open_review(version, key: str):
    review = current_review(version, key)
    assert review.status == ReviewStatus.IN_PROGRESS, f"{key} is {review.status}"
    return review


def approve(*, version, actor, reason: str = ""):
    """The board approves what the version's decision page shows it (the latest rating and
    evaluation); if the facts changed since, the refusal stored the new ones and the board,
    having compared them, approves again once on those."""
    from decisions import approval
    from decisions.services import decision_basis
    from governance.errors import FactsChanged

    try:
        return approval.version_approve(
            version=version, actor=actor, reason=reason, **decision_basis(version=version).ids
        )
    except FactsChanged:
        return approval.version_approve(
            version=version, actor=actor, reason=reason, **decision_basis(version=version).ids
        )


def last_audit(obj) -> AuditEvent:
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).order_by("-seq").first()


@pytest.fixture
def make_approved(
    plugin,
    author,
    pipeline,
    platform_admin,
    security,
    performance,
    compliance,
    board,
    django_capture_on_commit_callbacks,
):
    """A factory: ``make_approved("1.0.0")`` takes a new version of ``plugin`` to approved."""
    from reviews import services as review

    def make(number: str, **archive):
        version = sub.version_create(
            plugin=plugin, artifact=plugin_archive(plugin.name, number, **archive), actor=author
        )
        with django_capture_on_commit_callbacks(execute=True):
            sub.version_submit(version=version, actor=author)
        review.stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)
        for key, who in (("security", security), ("performance", performance)):
            review.stage_pass(review=open_review(version, key), actor=who)
        sign_off(version, compliance)
        approve(version=version, actor=board)
        version.refresh_from_db()
        return version

    return make


def run_concurrently(calls: list) -> list:
    """Start every call at once, each in its own thread and database connection; return
    what each returned or raised."""
    import threading

    from django.db import connections

    barrier = threading.Barrier(len(calls))
    outcomes: list = []
    lock = threading.Lock()

    def run(call):
        try:
            barrier.wait()
            result = call()
        except Exception as exc:  # every outcome is returned to the test to assert on
            result = exc
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def sign_off(version, officer, residual_risk: str = "low"):
    """The compliance stage passes by its officer's sign-off (nothing open: no checklist here)."""
    from compliance.evidence import compliance_sign_off

    return compliance_sign_off(
        review=open_review(version, "compliance"),
        actor=officer,
        residual_risk=residual_risk,
        statement="No open controls.",
    )


@pytest.fixture
def make_awaiting(plugin, author, pipeline, security, performance, compliance, django_capture_on_commit_callbacks):
    """A factory: ``make_awaiting("1.0.0")`` takes a new version of ``plugin`` through eligibility
    (which passes on its own) and the reviews to awaiting decision, where it is rated and its
    policies evaluated (and, where auto-approval is on, perhaps approved)."""
    from governance.models import AllowedLicence, HostPlatform
    from reviews import services as review

    HostPlatform.objects.get_or_create(name="Test host", defaults={"api_version": "2.4", "is_default": True})
    AllowedLicence.objects.get_or_create(spdx_id="MIT")

    def make(number: str, *, residual_risk: str = "low", **archive):
        version = sub.version_create(
            plugin=plugin, artifact=plugin_archive(plugin.name, number, **archive), actor=author
        )
        with django_capture_on_commit_callbacks(execute=True):
            sub.version_submit(version=version, actor=author)
        assert current_review(version, "eligibility").status == ReviewStatus.PASSED
        for key, who in (("security", security), ("performance", performance)):
            review.stage_pass(review=open_review(version, key), actor=who)
        with django_capture_on_commit_callbacks(execute=True):
            sign_off(version, compliance, residual_risk=residual_risk)
        version.refresh_from_db()
        return version

    return make


@pytest.fixture
def board2(django_user_model):
    """A second board member: exemptions are approved by one who did not ask."""
    return make_user(django_user_model, "board2", roles.APPROVAL_BOARD)


def zipped(directory, name: str):
    """A .zip upload of every file under ``directory`` (a fixture plugin's tree)."""
    import io
    import zipfile

    from django.core.files.uploadedfile import SimpleUploadedFile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return SimpleUploadedFile(f"{name}.zip", buffer.getvalue())


def make_environment(actor, key: str, *, order: int = 1, requires_previous: bool = False, api_version: str = "2.4"):
    """An environment on the default host platform (created with ``api_version`` if there is none)."""
    from decisions.deployment import environment_save
    from decisions.models import Environment
    from governance.models import HostPlatform

    host = HostPlatform.objects.filter(is_default=True).first() or HostPlatform.objects.create(
        name="Test host", api_version=api_version, is_default=True
    )
    environment = Environment(
        key=key, name=key.capitalize(), host_platform=host, order=order, requires_previous=requires_previous
    )
    return environment_save(environment=environment, actor=actor, changed=["key", "name", "host_platform", "order"])


@pytest.fixture
def environment(platform_admin):
    """One environment to deploy to, nothing required before it (tests/decisions/test_deployments.py
    has staging before production)."""
    return make_environment(platform_admin, "production")
