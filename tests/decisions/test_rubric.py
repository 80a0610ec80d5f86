"""The risk rubric and ratings: reproducible, versioned, every factor and cap as documented."""

import copy
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.urls import reverse

from decisions.facts import version_facts
from decisions.models import RiskRating, RiskRubric
from decisions.rubric import DEFAULT_RUBRIC, FACTOR_KEYS, canonical_json, rate, validated_rubric
from decisions.rubric_versions import rubric_current, rubric_document, rubric_revise, rubric_what_if
from decisions.services import assess_version, version_reassess
from governance.errors import PermissionRefused, ValidationFailed
from governance.models import AuditEvent
from reviews.models import CheckRun, Finding, PerformanceMetric
from tests.conftest import last_audit, run_concurrently

pytestmark = pytest.mark.django_db
RUBRIC = validated_rubric(DEFAULT_RUBRIC)


def blank_facts() -> dict:
    """The fact document of a version with nothing against it."""
    severities = dict.fromkeys(("critical", "high", "medium", "low", "info"), 0)
    kinds = ("eligibility", "security", "capability", "behaviour", "dependency", "quality", "performance")
    return {
        "checks": {"security.bandit": "succeeded"},
        "findings": {
            "open": dict(severities),
            "by_kind": {k: dict(severities) for k in kinds},
            "exempted": 0,
            "exempted_by_kind": {k: dict(severities) for k in kinds},
        },
        "capabilities": {"undeclared": []},
        "performance": {
            "measured": False,
            "kpis": {},
            "budget_breaches": 0,
            "regressed": [],
            "max_regression_percent": 0.0,
        },
        "compliance": {
            "reviewed": True,
            "signed_off": True,
            "residual_risk": "low",
            "controls": {},
            "not_met": {"high": 0, "medium": 0, "low": 0},
            "partially_met": {"high": 0, "medium": 0, "low": 0},
        },
        "escalation": {"flags": [], "acknowledged": False},
        "exemptions": {"policies": {}, "findings": {}, "compensating_controls": []},
        "policies": {"violated": {"critical": [], "high": [], "medium": [], "low": []}, "exempted": []},
    }


def kpi(within_budget: bool, change: float | None = None, regressed: bool = False) -> dict:
    return {
        "value": 1.0,
        "unit": "ms",
        "budget": 1.0,
        "within_budget": within_budget,
        "change_percent": change,
        "regressed": regressed,
    }


def set_units(facts: dict, factor: str, units: int) -> None:
    """Give ``factor`` exactly ``units`` units in ``facts``, the way real facts carry them."""
    group, _, detail = factor.partition(".")
    if group.endswith("_findings"):
        facts["findings"]["by_kind"][group.removesuffix("_findings")][detail] = units
    elif factor == "undeclared_capabilities":
        facts["capabilities"]["undeclared"] = [f"capability-{n}" for n in range(units)]
    elif factor == "performance.budget_breaches":
        facts["performance"]["kpis"] = {f"kpi-{n}": kpi(False) for n in range(units)}
    elif factor == "performance.regression_percent":
        facts["performance"]["max_regression_percent"] = float(units)
    elif group == "policy_violations":
        facts["policies"]["violated"][detail] = [f"policy-{n}" for n in range(units)]
    elif group == "compliance_not_met":
        facts["compliance"]["not_met"][detail] = units
    elif factor == "residual_risk":
        facts["compliance"]["residual_risk"] = {0: "low", 1: "medium", 2: "high"}[units]
    elif factor == "compensating_controls":
        facts["exemptions"]["compensating_controls"] = [f"control {n}" for n in range(units)]
    else:
        raise AssertionError(f"no way to set {factor}")


def contribution(rating, factor: str) -> Decimal:
    return Decimal(next(r["contribution"] for r in rating.breakdown if r["factor"] == factor))


def test_a_version_with_nothing_against_it_is_low_with_zero():
    rating = rate(facts=blank_facts(), rubric=RUBRIC, rubric_label="default v1")
    assert (rating.total, rating.band) == (Decimal("0.00"), "low")
    assert [r["factor"] for r in rating.breakdown] == list(FACTOR_KEYS)
    assert rating.summary.splitlines()[1] == "No concerns: no factor adds to the score."


@pytest.mark.parametrize("factor", FACTOR_KEYS)
def test_each_factor_moves_the_score_by_units_times_weight(factor):
    units = 1 if factor in ("residual_risk",) else 2
    facts = blank_facts()
    set_units(facts, factor, units)
    rubric = copy.deepcopy(RUBRIC)
    rubric["factors"][factor]["cap"] = "100.00"  # no cap in the way here
    if factor == "compensating_controls":  # a credit only shows against something to reduce
        set_units(facts, "security_findings.high", 3)
    rating = rate(facts=facts, rubric=rubric, rubric_label="test")
    weight = Decimal(RUBRIC["factors"][factor]["weight"])
    assert contribution(rating, factor) == units * weight
    others = sum(contribution(rating, f) for f in FACTOR_KEYS if f != factor)
    assert rating.total == max(Decimal(0), others + units * weight)
    row = next(r for r in rating.breakdown if r["factor"] == factor)
    assert (Decimal(row["units"]), row["cap_hit"]) == (units, False)


@pytest.mark.parametrize("factor", [f for f in FACTOR_KEYS if f != "residual_risk"])
def test_caps_hold(factor):
    facts = blank_facts()
    set_units(facts, factor, 50)
    rating = rate(facts=facts, rubric=RUBRIC, rubric_label="test")
    cap = Decimal(RUBRIC["factors"][factor]["cap"])
    row = next(r for r in rating.breakdown if r["factor"] == factor)
    assert abs(contribution(rating, factor)) == cap
    assert row["cap_hit"] is True
    assert abs(Decimal(row["raw"])) > cap


def test_the_total_stays_within_0_and_100_and_bands_follow_the_thresholds():
    facts = blank_facts()
    for factor in FACTOR_KEYS:
        if factor not in ("residual_risk", "compensating_controls"):
            set_units(facts, factor, 50)
    worst = rate(facts=facts, rubric=RUBRIC, rubric_label="test")
    assert (worst.total, worst.band) == (Decimal("100.00"), "critical")

    credits_only = blank_facts()
    set_units(credits_only, "compensating_controls", 5)
    assert rate(facts=credits_only, rubric=RUBRIC, rubric_label="test").total == Decimal("0.00")

    uncapped = copy.deepcopy(RUBRIC)
    uncapped["factors"]["security_findings.high"]["cap"] = "100.00"
    bands = {}
    for findings in range(0, 9):
        facts = blank_facts()
        set_units(facts, "security_findings.high", findings)  # 10 points each
        rating = rate(facts=facts, rubric=uncapped, rubric_label="test")
        bands[int(rating.total)] = rating.band
    assert bands == {
        0: "low",
        10: "low",
        20: "medium",
        30: "medium",
        40: "high",
        50: "high",
        60: "high",
        70: "critical",
        80: "critical",
    }


def test_the_summary_lists_the_top_concerns_in_order_with_their_mitigations():
    facts = blank_facts()
    set_units(facts, "security_findings.critical", 1)  # 25
    set_units(facts, "undeclared_capabilities", 1)  # 10
    set_units(facts, "compliance_not_met.medium", 1)  # 4
    set_units(facts, "compensating_controls", 1)  # -2
    rating = rate(facts=facts, rubric=RUBRIC, rubric_label="default v1")
    lines = rating.summary.splitlines()
    assert lines[0] == "Risk 37.00 of 100: medium (rubric default v1)."
    assert lines[1].startswith("1. Open security findings: critical: 1 finding(s), +25.00. Mitigation: Fix it")
    assert lines[2].startswith("2. Undeclared capabilities: 1 capability(s), +10.00. Mitigation: Declare")
    assert lines[3].startswith("3. Compliance controls not met: medium criticality")
    assert lines[4] == "Credit: Documented compensating controls (credit): 1 control(s), -2.00."


def test_the_rubric_document_is_validated():
    with pytest.raises(ValidationFailed) as refused:
        validated_rubric(
            {
                "factors": {"nonsense": {"weight": 1, "cap": 1}, "residual_risk": {"weight": "x", "cap": 500}},
                "bands": {"medium": 50, "high": 40, "critical": 90},
            }
        )
    fields = {e["field"] for e in refused.value.errors}
    assert fields == {"factors.nonsense", "factors.residual_risk.weight", "factors.residual_risk.cap", "bands"}


def add_findings(version, *specs, check_key="security.bandit"):
    """Findings on a fresh succeeded run: ``(kind, severity, fingerprint)``."""
    run = CheckRun.objects.create(version=version, check_key=check_key, tool=check_key, status="succeeded")
    for kind, severity, fingerprint in specs:
        Finding.objects.create(
            check_run=run,
            version=version,
            kind=kind,
            severity=severity,
            rule_id=f"R-{fingerprint}",
            title=f"Problem {fingerprint}",
            fingerprint=fingerprint,
            data={"capability": "network"},
        )
    return run


def test_the_facts_come_from_the_latest_runs_findings_metrics_and_sign_off(make_awaiting):
    version = make_awaiting("1.0.0", residual_risk="medium")
    old = add_findings(version, ("security", "critical", "a"))
    add_findings(version, ("security", "high", "b"), ("capability", "high", "c"), ("dependency", "low", "d"))
    harness = CheckRun.objects.create(version=version, check_key="performance.harness", status="succeeded")
    for name, value, budget, change in (("startup_ms", 900.0, 500.0, 35.5), ("peak_rss_mb", 100.0, 256.0, -3.0)):
        PerformanceMetric.objects.create(
            check_run=harness,
            version=version,
            kpi=name,
            value=value,
            unit="ms",
            budget=budget,
            within_budget=value <= budget,
            change_percent=change,
            regressed=change > 10,
        )
    facts = version_facts(version=version)
    assert old.check_key == "security.bandit"  # replaced by the newer bandit run: its critical is gone
    by_kind = facts["findings"]["by_kind"]
    assert (by_kind["security"]["critical"], by_kind["security"]["high"]) == (0, 1)
    assert (by_kind["capability"]["high"], by_kind["dependency"]["low"]) == (1, 1)
    assert facts["findings"]["open"]["critical"] == 0
    assert facts["capabilities"]["undeclared"] == ["network"]
    assert facts["performance"]["budget_breaches"] == 1
    assert facts["performance"]["regressed"] == ["startup_ms"]
    assert facts["performance"]["max_regression_percent"] == 35.5
    assert facts["compliance"]["residual_risk"] == "medium"

    assessment, _rubric = assess_version(version=version)
    by_factor = {r["factor"]: Decimal(r["contribution"]) for r in assessment.rating.breakdown}
    assert by_factor["security_findings.high"] == 10
    assert by_factor["undeclared_capabilities"] == 10
    assert by_factor["dependency_findings.low"] == Decimal("0.50")
    assert by_factor["performance.budget_breaches"] == 5
    assert by_factor["performance.regression_percent"] == Decimal("8.88")  # 35.5 % x 0.25, half-even
    assert by_factor["residual_risk"] == 6
    assert assessment.rating.total == Decimal("40.38")


def test_without_performance_data_the_factors_contribute_nothing_and_the_facts_say_so(make_awaiting):
    version = make_awaiting("1.0.0")
    CheckRun.objects.filter(version=version, check_key="performance.harness").delete()
    facts = version_facts(version=version)
    assert facts["performance"] == {
        "measured": False,
        "kpis": {},
        "budget_breaches": 0,
        "regressed": [],
        "max_regression_percent": 0.0,
    }
    assessment, _rubric = assess_version(version=version)
    rows = {r["factor"]: r for r in assessment.rating.breakdown}
    assert rows["performance.budget_breaches"]["contribution"] == "0.00"
    assert rows["performance.regression_percent"]["inputs"]["measured"] is False


def test_the_same_version_rated_twice_gives_identical_ratings(make_awaiting, board):
    version = make_awaiting("1.0.0", residual_risk="high")
    add_findings(version, ("security", "high", "b"), ("behaviour", "medium", "e"))
    first, _ = assess_version(version=version)
    second, _ = assess_version(version=version)
    assert canonical_json(first.rating.payload) == canonical_json(second.rating.payload)
    assert first.rating.digest == second.rating.digest
    assert first.rating.total == Decimal("26.00")  # high finding 10 + medium behaviour 4 + high residual 2 x 6

    stored = version_reassess(version=version, actor=board).rating
    again = version_reassess(version=version, actor=board).rating
    assert stored.pk == again.pk  # same payload: the stored rating is reused, not duplicated
    stored.refresh_from_db()
    read_back = {
        "breakdown": stored.breakdown,
        "total": str(stored.total),
        "band": stored.band,
        "summary": stored.summary,
    }
    assert canonical_json(read_back) == canonical_json(first.rating.payload)  # byte for byte from the database
    assert stored.digest == first.rating.digest


def test_a_rubric_edit_creates_a_new_version_and_leaves_old_ratings_untouched(make_awaiting, platform_admin, board):
    version = make_awaiting("1.0.0")
    add_findings(version, ("security", "high", "b"))
    v1 = rubric_current()
    rating_v1 = version_reassess(version=version, actor=board).rating
    assert (rating_v1.rubric, rating_v1.total) == (v1, Decimal("10.00"))
    v1_factors = copy.deepcopy(v1.factors)

    document = rubric_document(v1)
    document["factors"]["security_findings.high"] = {"weight": 20, "cap": 40}
    v2 = rubric_revise(rubric=v1, actor=platform_admin, document=document, name="Stricter", reason="Test.")
    assert (v2.key, v2.version, v2.name) != (v1.key, v1.version, v1.name)
    assert v2.version == 2 and rubric_current() == v2
    v1.refresh_from_db()
    assert v1.factors == v1_factors  # the used version is frozen
    rating_v1.refresh_from_db()
    assert (rating_v1.rubric_id, rating_v1.total) == (v1.pk, Decimal("10.00"))
    event = last_audit(v2)
    assert event.action == "rubric.new_version"
    assert event.data["changes"] == [
        {
            "what": "factors.security_findings.high",
            "before": {"weight": "10.00", "cap": "30.00"},
            "after": {"weight": "20.00", "cap": "40.00"},
        }
    ]

    rating_v2 = version_reassess(version=version, actor=board).rating
    assert (rating_v2.rubric, rating_v2.total) == (v2, Decimal("20.00"))
    assert RiskRating.objects.filter(version=version).count() == 3  # on awaiting decision, then the two above

    # v2 is unused until that rating: from now on it is frozen too; an unused version is edited in place
    v3 = rubric_revise(rubric=v2, actor=platform_admin, document=document, name="Stricter, renamed", reason="Test.")
    v4 = rubric_revise(rubric=v3, actor=platform_admin, document=document, name="Typo fixed", reason="Test.")
    assert v3.version == 3 and v4.pk == v3.pk and last_audit(v4).action == "rubric.edit"


def test_only_platform_admins_change_rubrics_and_bad_documents_change_nothing(platform_admin, board):
    rubric = rubric_current()
    with pytest.raises(PermissionRefused):
        rubric_revise(rubric=rubric, actor=board, document=DEFAULT_RUBRIC, name="x", reason="Test.")
    with pytest.raises(ValidationFailed):
        rubric_revise(
            rubric=rubric, actor=platform_admin, document={"factors": {}, "bands": {}}, name="x", reason="Test."
        )
    assert RiskRubric.objects.count() == 1
    assert not AuditEvent.objects.filter(action__startswith="rubric.", action__endswith="edit").exists()


def test_what_if_rates_current_versions_under_a_draft_without_saving(make_awaiting, board):
    version = make_awaiting("1.0.0")
    add_findings(version, ("security", "high", "b"))
    version_reassess(version=version, actor=board)
    document = rubric_document(rubric_current())
    document["factors"]["security_findings.high"] = {"weight": 30, "cap": 30}
    counts = (RiskRubric.objects.count(), RiskRating.objects.count(), AuditEvent.objects.count())
    rows = rubric_what_if(document=document)
    current = next(r for r in rows if r["version"] == version)
    assert (current["total"], current["draft_total"], current["draft_band"]) == (
        Decimal("10.00"),
        Decimal("30.00"),
        "medium",
    )
    assert (RiskRubric.objects.count(), RiskRating.objects.count(), AuditEvent.objects.count()) == counts


def test_the_admin_edits_a_used_rubric_into_a_new_version_and_shows_the_diff(
    client, make_awaiting, platform_admin, board
):
    version = make_awaiting("1.0.0")
    version_reassess(version=version, actor=board)
    v1 = rubric_current()
    client.force_login(platform_admin)
    url = reverse("admin:decisions_riskrubric_change", args=[v1.pk])
    page = client.get(url)
    assert page.status_code == 200 and "saving creates version 2" in page.content.decode()
    document = (
        page.context["adminform"]
        .form.fields["document"]
        .initial.replace(
            "security_findings.high:\n    cap: 30\n    weight: 10",
            "security_findings.high:\n    cap: 30\n    weight: 12",
        )
    )
    response = client.post(
        url, {"name": "Default rubric", "description": "", "document": document, "reason": "CVE wave"}
    )
    v2 = RiskRubric.objects.get(version=2)
    assert response.status_code == 302 and response["Location"].endswith(f"/{v2.pk}/change/")
    assert v2.factors["security_findings.high"] == {"weight": "12.00", "cap": "30.00"}
    diff_page = client.get(reverse("admin:decisions_riskrubric_change", args=[v2.pk])).content.decode()
    assert "factors.security_findings.high" in diff_page and "12.00" in diff_page

    what_if = client.post(reverse("admin:decisions_riskrubric_what_if", args=[v2.pk]), {"document": document})
    assert what_if.status_code == 200 and str(version) in what_if.content.decode()

    bad = client.post(url, {"name": "x", "description": "", "document": "factors: [", "reason": ""})
    assert bad.status_code == 200 and "Not valid YAML" in bad.content.decode()
    assert RiskRubric.objects.count() == 2


def test_the_decision_stage_shows_the_rating_chart_and_summary(client, make_awaiting, board):
    version = make_awaiting("1.0.0")
    add_findings(version, ("security", "critical", "a"))
    version_reassess(version=version, actor=board)
    decision = version.stage_reviews.get(stage__key="decision", round=version.review_round)
    client.force_login(board)
    page = client.get(reverse("admin:reviews_stagereview_change", args=[decision.pk])).content.decode()
    assert "<h2>Risk rating</h2>" in page and "25.00 of 100" in page
    assert "Open security findings: critical" in page and 'aria-label="25.00 points"' in page
    assert "Mitigation: Fix it" in page
    security = version.stage_reviews.get(stage__key="security", round=version.review_round)
    assert (
        "<h2>Risk rating</h2>"
        not in client.get(reverse("admin:reviews_stagereview_change", args=[security.pk])).content.decode()
    )


def test_the_version_api_shows_the_latest_rating(client, make_awaiting, author):
    version = make_awaiting("1.0.0")
    client.force_login(author)
    body = client.get(f"/api/v1/versions/{version.pk}/").json()
    assert body["rating"]["band"] == "low" and body["rating"]["rubric"] == "Default rubric v1"
    assert body["rating"]["summary"].startswith("Risk 0.00 of 100: low")


def test_the_board_reads_rubrics_and_asks_for_a_fresh_rating_in_the_admin(client, make_awaiting, board, outsider):
    version = make_awaiting("1.0.0")
    rating = version.risk_ratings.get()
    client.force_login(board)
    page = client.get(reverse("admin:decisions_riskrubric_change", args=[rating.rubric_id])).content.decode()
    assert "Factors and bands" in page and "security_findings.critical" in page and 'name="document"' not in page

    add_findings(version, ("security", "high", "b"))
    act = reverse("admin:decisions_riskrating_act", args=[rating.pk, "reassess"])
    assert client.post(act, {}).status_code == 302
    latest = version.risk_ratings.order_by("-pk").first()
    assert (latest.total, latest.trigger, latest.created_by) == (Decimal("10.00"), "on_demand", board)
    assert last_audit(latest).action == "rating.compute"

    client.force_login(outsider)  # may not see the rating: as if it did not exist
    assert client.post(act, {}).status_code == 404
    assert version.risk_ratings.count() == 2


def test_only_who_may_change_rubrics_sees_the_what_if_listing_of_every_version(
    client, make_awaiting, platform_admin, board, security, outsider
):
    version = make_awaiting("1.0.0")
    rubric = rubric_current()
    url = reverse("admin:decisions_riskrubric_what_if", args=[rubric.pk])
    document = "bands: {critical: 70, high: 40, medium: 15}\nfactors: {}\n"
    for user in (board, security, outsider):  # the board and reviewers may read the rubric, not every rating
        client.force_login(user)
        assert client.get(url).status_code == 403
        response = client.post(url, {"document": document})
        assert response.status_code == 403 and str(version) not in response.content.decode()
    client.force_login(board)
    assert client.get(reverse("admin:decisions_riskrubric_change", args=[rubric.pk])).status_code == 200

    client.force_login(platform_admin)
    response = client.post(url, {"document": document})
    assert response.status_code == 200 and str(version) in response.content.decode()
    assert client.get(reverse("admin:decisions_riskrubric_what_if", args=[999999])).status_code == 404


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ({"weight": "1e24", "cap": 50}, "weight"),
        ({"weight": 101, "cap": 50}, "weight"),
        ({"weight": -100.01, "cap": 10}, "weight"),
        ({"weight": 5, "cap": 100.01}, "cap"),
        ({"weight": 5, "cap": -1}, "cap"),
    ],
)
def test_weights_and_caps_out_of_range_are_refused_and_change_nothing(platform_admin, setting, field):
    rubric = rubric_current()
    document = copy.deepcopy(DEFAULT_RUBRIC)
    document["factors"]["security_findings.critical"] = setting
    with pytest.raises(ValidationFailed) as refused:
        rubric_revise(rubric=rubric, actor=platform_admin, document=document, name="Huge", reason="Test.")
    assert [e["field"] for e in refused.value.errors] == [f"factors.security_findings.critical.{field}"]
    rubric.refresh_from_db()
    assert rubric.factors == RUBRIC["factors"] and RiskRubric.objects.count() == 1


def test_weights_and_caps_at_their_bounds_are_accepted():
    document = copy.deepcopy(DEFAULT_RUBRIC)
    document["factors"]["security_findings.critical"] = {"weight": 100, "cap": 100}
    document["factors"]["compensating_controls"] = {"weight": -100, "cap": 0}
    clean = validated_rubric(document)
    assert clean["factors"]["security_findings.critical"] == {"weight": "100.00", "cap": "100.00"}
    assert clean["factors"]["compensating_controls"] == {"weight": "-100.00", "cap": "0.00"}


postgres_only = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs DATABASE_URL pointing at PostgreSQL"),
]


def _marked(test):
    for mark in reversed(postgres_only):
        test = mark(test)
    return test


@_marked
def test_a_rating_during_a_rubric_edit_waits_and_rates_under_the_edited_weights(make_awaiting, platform_admin, board):
    version = make_awaiting("1.0.0")  # rated under v1, which is frozen from now on
    add_findings(version, ("security", "high", "b"))
    document = rubric_document(rubric_current())
    v2 = rubric_revise(
        rubric=rubric_current(), actor=platform_admin, document=document, name="Not used yet", reason="Test."
    )
    stricter = copy.deepcopy(document)
    stricter["factors"]["security_findings.high"] = {"weight": 20, "cap": 40}

    outcome: dict = {}

    def rate_now():
        try:
            outcome["rating"] = version_reassess(version=version, actor=board).rating
        except Exception as exc:  # returned to the test to assert on
            outcome["error"] = exc
        finally:
            connections.close_all()

    with transaction.atomic():
        edited = rubric_revise(rubric=v2, actor=platform_admin, document=stricter, name="Stricter", reason="Test.")
        thread = threading.Thread(target=rate_now)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive()  # the rating waits for the edit to commit
    thread.join(timeout=30)
    assert "error" not in outcome and not thread.is_alive()
    rating = outcome["rating"]
    assert edited.pk == v2.pk  # unused, so edited in place
    v2.refresh_from_db()
    row = next(r for r in rating.breakdown if r["factor"] == "security_findings.high")
    assert (rating.rubric_id, row["weight"], rating.total) == (v2.pk, "20.00", Decimal("20.00"))
    assert v2.factors["security_findings.high"]["weight"] == row["weight"]  # the weights it names


@_marked
def test_first_requests_at_once_install_one_default_rubric():
    assert not RiskRubric.objects.exists()
    outcomes = run_concurrently([rubric_current] * 8)
    assert [type(o) for o in outcomes] == [RiskRubric] * 8, outcomes
    assert {o.pk for o in outcomes} == {RiskRubric.objects.get().pk}
    assert AuditEvent.objects.filter(action="rubric.install_default").count() == 1
