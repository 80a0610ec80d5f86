from django.contrib import admin
from django.urls import reverse_lazy
from django.utils import timezone

from compliance.models import ReReviewStatus
from compliance.selectors import re_reviews_visible_to
from governance.admin_base import VisibleAutocompleteJsonView, with_visibility
from governance.notifications import unread_for
from reviews.selectors import open_reviews_assigned_to, overdue_reviews_visible_to, versions_awaiting_decision_of


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
        overdue_re_reviews = (
            re_reviews_visible_to(user=request.user)
            .filter(status=ReReviewStatus.OPEN, due_on__lt=timezone.localdate())
            .select_related("version__plugin")
        )
        context = {
            "my_reviews": list(open_reviews_assigned_to(user=request.user)[:20]),
            "overdue_reviews": list(overdue_reviews_visible_to(user=request.user)[:20]),
            "overdue_re_reviews": list(overdue_re_reviews[:20]),
            "awaiting_decision": list(versions_awaiting_decision_of(user=request.user)[:20]),
            "unread_notifications": list(unread_for(user=request.user)[:20]),
            **(extra_context or {}),
        }
        return super().index(request, context)
