from django.contrib import admin
from django.urls import reverse_lazy
from django.utils import timezone

from compliance.models import ReReviewStatus
from compliance.selectors import re_reviews_visible_to, versions_waiting_on_author
from decisions.models import FlagStatus
from decisions.selectors import retro_flags_visible_to, versions_awaiting_decision_rated
from governance import roles
from governance.admin_base import VisibleAutocompleteJsonView, with_visibility
from governance.notifications import unread_for
from reviews.selectors import (
    breached_reviews_visible_to,
    errored_runs_visible_to,
    open_reviews_of,
    unassigned_counts_by_stage,
    unassigned_reviews_visible_to,
)

HOME_ROWS = 20  # each list of the home shows this many, then links to the filtered list
NOTIFICATION_ROWS = 8  # the newest unread; the header's count and the list have the rest
REVIEWER_ROLES = {roles.SECURITY_REVIEWERS, roles.PERFORMANCE_REVIEWERS, roles.COMPLIANCE_OFFICERS}


def _first(queryset, limit: int | None = None) -> tuple[list, bool]:
    """The first ``limit`` rows (HOME_ROWS), and whether there are more: one query, one row more."""
    limit = limit or HOME_ROWS
    rows = list(queryset[: limit + 1])
    return rows[:limit], len(rows) > limit


class WardenAdminSite(admin.AdminSite):
    site_header = "Warden"
    site_title = "Warden"
    index_title = "Plugin approval"
    index_template = "admin/warden/index.html"
    site_url = reverse_lazy("api-docs")  # type: ignore[assignment]  # "View site": the API docs; there is no public site

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every admin offers only what its user may see (governance.admin_base, "what each user may see")."""
        super().register(model_or_iterable, with_visibility(admin_class or admin.ModelAdmin), **options)

    def autocomplete_view(self, request):
        return VisibleAutocompleteJsonView.as_view(admin_site=self)(request)

    def index(self, request, extra_context=None):
        """Each role's home: what waits on it, every version linking to its dossier; a user in
        several roles sees each of their sections. A constant number of queries."""
        user = request.user
        memberships = list(user.groups.values_list("name", "organisation"))
        groups = {name for name, _organisation in memberships}
        overdue_re_reviews = (
            re_reviews_visible_to(user=user)
            .filter(status=ReReviewStatus.OPEN, due_on__lt=timezone.localdate())
            .select_related("version__plugin")
        )
        my_reviews, more_my_reviews = _first(open_reviews_of(user=user))
        retro_flags, more_retro_flags = _first(
            retro_flags_visible_to(user=user).filter(status=FlagStatus.OPEN).select_related("version__plugin")
        )
        unread, more_unread = _first(unread_for(user=user), NOTIFICATION_ROWS)
        context = {
            "is_reviewer": bool(groups & REVIEWER_ROLES),
            "my_reviews": my_reviews,
            "more_my_reviews": more_my_reviews,
            "unassigned_in_my_groups": unassigned_counts_by_stage(user=user, own_groups=True)
            if groups & REVIEWER_ROLES
            else [],
            "awaiting_decision": [],
            "waiting_on_me": [],
            "is_platform_admin": user.is_superuser or roles.PLATFORM_ADMINS in groups,
            "overdue_re_reviews": list(overdue_re_reviews[:HOME_ROWS]),
            "retro_flags": retro_flags,
            "more_retro_flags": more_retro_flags,
            "today": timezone.localdate(),
            "unread_notifications": unread,
            "more_unread_notifications": more_unread,
        }
        if user.has_perm("submissions.decide_pluginversion"):
            context["awaiting_decision"], context["more_awaiting_decision"] = _first(
                versions_awaiting_decision_rated(user=user)
            )
        if any(organisation for _name, organisation in memberships):  # an author: a member of an organisation
            context["is_author"] = True
            context["waiting_on_me"], context["more_waiting_on_me"] = _first(versions_waiting_on_author(user=user))
        if context["is_platform_admin"]:
            context.update(self._stuck(user))
        return super().index(request, {**context, **(extra_context or {})})

    def _stuck(self, user) -> dict:
        """The platform admins' section: reviews nobody holds, checks that could not run, SLAs breached."""
        unassigned_counts = unassigned_counts_by_stage(user=user)
        unassigned, _more = _first(unassigned_reviews_visible_to(user=user))
        errored_runs, more_errored_runs = _first(errored_runs_visible_to(user=user))
        overdue_reviews, more_overdue_reviews = _first(breached_reviews_visible_to(user=user))
        return {
            "unassigned_reviews": unassigned,
            "unassigned_total": sum(row["count"] for row in unassigned_counts),
            "unassigned_stage_ids": ",".join(str(row["stage_id"]) for row in unassigned_counts),
            "errored_runs": errored_runs,
            "more_errored_runs": more_errored_runs,
            "overdue_reviews": overdue_reviews,
            "more_overdue_reviews": more_overdue_reviews,
        }
