from django.contrib import admin


class WardenAdminSite(admin.AdminSite):
    site_header = "Warden"
    site_title = "Warden"
    index_title = "Plugin approval"
    index_template = "admin/warden/index.html"

    def index(self, request, extra_context=None):
        from reviews.selectors import open_reviews_assigned_to, overdue_reviews_visible_to

        context = {
            "my_reviews": list(open_reviews_assigned_to(user=request.user)[:20]),
            "overdue_reviews": list(overdue_reviews_visible_to(user=request.user)[:20]),
            **(extra_context or {}),
        }
        return super().index(request, context)
