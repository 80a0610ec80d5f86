"""The header's unread count (admin/base_site.html), on every admin page."""

from django import template

from governance.notifications import unread_for

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_notification_count(context) -> int:
    request = context.get("request")
    if request is None:
        return 0
    if not hasattr(request, "_warden_unread"):  # one query per request, however often it is shown
        request._warden_unread = unread_for(user=request.user).count()
    return request._warden_unread
