from django.contrib import admin
from django.utils import timezone


class WardenAdminSite(admin.AdminSite):
    site_header = "Warden"
    site_title = "Warden"
    index_title = "Plugin approval"
    index_template = "admin/warden/index.html"

    def index(self, request, extra_context=None):
        from compliance.models import ReReview
        from reviews.selectors import open_reviews_assigned_to, overdue_reviews_visible_to
        from submissions.selectors import versions_visible_to

        overdue_re_reviews = ReReview.objects.filter(
            status="open", due_on__lt=timezone.localdate(), version__in=versions_visible_to(user=request.user)
        ).select_related("version__plugin")
        context = {
            "my_reviews": list(open_reviews_assigned_to(user=request.user)[:20]),
            "overdue_reviews": list(overdue_reviews_visible_to(user=request.user)[:20]),
            "overdue_re_reviews": list(overdue_re_reviews[:20]),
            **(extra_context or {}),
        }
        return super().index(request, context)
