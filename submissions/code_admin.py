"""The admin pages of a version's code: its diff, the file browser and the download.

``code_urls(model_admin)`` wires them into the version's admin (decisions/version_admin.py).
Whoever may see the version may browse and diff it; the download is for reviewers, the
board, platform admins and the version's own authors. A version the user may not see, a
path that is not a file of the archive and a revision of another plugin are 404s; every
page shown and every download is an audit event on the version, naming what was read.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.admin import ModelAdmin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode

from governance import roles
from governance.admin_base import attachment
from governance.ids import is_id

from .artifact_files import ArtifactUnavailable, artifact_access_record, read_member
from .diff import (
    Changes,
    FileChange,
    FileDiff,
    base_revision_for,
    file_diffs,
    head_revision_for,
    revision_changes,
)
from .highlight import code_css, highlighted_lines, numbered_table
from .models import PluginVersion, VersionRevision
from .selectors import versions_visible_to

# What one page may hold, whatever the archive holds (a hostile one: thousands of files).
MAX_LISTED_FILES = 1_000
MAX_RENDERED_DIFFS = 50
MAX_PAGE_DIFF_LINES = 5_000
MAX_SHOWN_BYTES = 512 * 1024
MAX_SHOWN_LINES = 20_000
MAX_REVISION_CHOICES = 100


def code_urls(model_admin: ModelAdmin) -> list[URLPattern]:
    """The pages' URLs, to put before the admin's own (``<path:object_id>/`` would take them)."""

    def bound(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        return model_admin.admin_site.admin_view(lambda request, **kwargs: view(model_admin, request, **kwargs))

    return [
        path("<int:object_id>/diff/", bound(diff_view), name="submissions_pluginversion_diff"),
        path("<int:object_id>/code/", bound(code_tree_view), name="submissions_pluginversion_code"),
        path("<int:object_id>/code/<path:path>", bound(code_file_view), name="submissions_pluginversion_code_file"),
        path("<int:object_id>/download/", bound(download_view), name="submissions_pluginversion_download"),
    ]


def may_download(user: User, version: PluginVersion) -> bool:
    """Reviewers, the board and platform admins (every stage role), and the version's authors."""
    if user.is_superuser:
        return True
    group = Q(name__in=roles.STAGE_ROLES) | Q(pk=version.plugin.organisation.group_id)
    return user.groups.filter(group).exists()


# -- the diff ---------------------------------------------------------------------------


class _BadChoice(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


def diff_view(model_admin: ModelAdmin, request: HttpRequest, object_id: int) -> HttpResponse:
    """``?base=<revision id>&head=<revision id>`` choose other revisions of the plugin."""
    version = _visible_version(request, object_id)
    visible = _visible_plugin_versions(request, version)
    try:
        head = _chosen(request, version, visible, "head") or head_revision_for(version)
        base = _chosen(request, version, visible, "base") if "base" in request.GET else base_revision_for(version)
    except _BadChoice as exc:
        return _error_page(model_admin, request, version, exc.message, exc.status)
    if base is not None and base.version_id not in visible:
        base = None  # the last approved version is not the reader's to see: nothing to compare with
    if head is None:
        raise Http404("This version has no revision.")
    changes = revision_changes(base, head) if base is not None else None
    diffs, unrendered = _rendered_diffs(changes)
    anchors = {diff.change.path: f"file-{n}" for n, diff in enumerate(diffs, 1)}
    listed = changes.files[:MAX_LISTED_FILES] if changes else ()
    artifact_access_record(
        version=head.version,  # ?head= may name another version of the plugin: the one whose code was read
        actor=_user(request),
        action="version.diff",
        data={
            "base_revision": base.pk if base else None,
            "head_revision": head.pk,
            "paths": [d.change.path for d in diffs],
        },
    )
    context = {
        "title": f"Changes in {version}",
        "base": base,
        "head": head,
        "base_reason": _base_reason(request, version, base),
        "changes": changes,
        "listed": [(change, anchors.get(change.path)) for change in listed],
        "unlisted": max(0, len(changes.files) - MAX_LISTED_FILES) if changes else 0,
        "diffs": diffs,
        "unrendered": unrendered,
        "max_diffs": MAX_RENDERED_DIFFS,
        "max_diff_lines": MAX_PAGE_DIFF_LINES,
        "revisions": _revision_choices(visible),
        "crumbs": [("Changes", "")],
    }
    return _page(model_admin, request, version, "diff.html", context)


def _visible_plugin_versions(request: HttpRequest, version: PluginVersion) -> list[int]:
    """The ids of the plugin's versions the user may see (the selector runs once a page)."""
    visible = versions_visible_to(user=_user(request)).filter(plugin_id=version.plugin_id)
    return list(visible.values_list("pk", flat=True))


def _chosen(request: HttpRequest, version: PluginVersion, visible: list[int], key: str) -> VersionRevision | None:
    value = request.GET.get(key)
    if value is None:
        return None
    if not is_id(value):
        raise _BadChoice(f"?{key}= names a revision by its id (a number), not {value[:40]!r}.", 400)
    revision = (
        VersionRevision.objects.select_related("version__plugin").filter(pk=value, version_id__in=visible).first()
    )
    if revision is None:
        raise _BadChoice(f"?{key}={value}: there is no revision {value} of {version.plugin} that you may see.", 404)
    return revision


def _base_reason(request: HttpRequest, version: PluginVersion, base: VersionRevision | None) -> str:
    if base is None:
        return f"{version.plugin} has no earlier approved version, and this version has no earlier revision."
    if "base" in request.GET:
        return "the revision you chose"
    if base.version_id == version.pk:
        return "the previous revision of this version (no earlier version of the plugin is approved)"
    return f"the last approved version of {version.plugin} ({base.version.get_status_display().lower()})"


def _rendered_diffs(changes: Changes | None) -> tuple[list[FileDiff], int]:
    """The diffs the page shows, changed files first, and how many it leaves out."""
    if changes is None:
        return [], 0
    ordered: list[FileChange] = [*changes.changed, *changes.added, *changes.removed]
    shown = ordered[:MAX_RENDERED_DIFFS]
    return file_diffs(changes.base, changes.head, shown, max_lines=MAX_PAGE_DIFF_LINES), len(ordered) - len(shown)


def _revision_choices(visible: list[int]) -> list[VersionRevision]:
    return list(
        VersionRevision.objects.filter(version_id__in=visible)
        .select_related("version")
        .only("pk", "number", "version__version", "version__plugin_id")
        .order_by("-version__created_at", "-version_id", "-number")[:MAX_REVISION_CHOICES]
    )


# -- the code ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _TreeRow:
    directory: str
    name: str
    path: str
    size: int
    text: bool
    sha256: str


def code_tree_view(model_admin: ModelAdmin, request: HttpRequest, object_id: int) -> HttpResponse:
    version = _visible_version(request, object_id)
    revision = _revision_of(request, version)
    entries = list(revision.files.items())
    rows = [
        _TreeRow(
            directory=p.rpartition("/")[0] + "/" if "/" in p else "",
            name=p.rpartition("/")[2],
            path=p,
            size=e["size"],
            text=e["text"],
            sha256=e["sha256"],
        )
        for p, e in entries[:MAX_LISTED_FILES]
    ]
    _record_browse(request, version, revision, "")
    context = {
        "title": f"Code of {revision}",
        "revision": revision,
        "rows": rows,
        "unlisted": max(0, len(entries) - MAX_LISTED_FILES),
        "total_bytes": sum(e["size"] for _, e in entries),
        "query": _revision_query(version, revision),
        "revisions": list(version.revisions.order_by("-number").only("pk", "number", "version_id")),
        "crumbs": [("Code", "")],
    }
    return _page(model_admin, request, version, "code_tree.html", context)


def code_file_view(model_admin: ModelAdmin, request: HttpRequest, object_id: int, path: str) -> HttpResponse:
    """One file, highlighted by its name, each line anchored ``#L<n>``; binary files and
    files too large to show are described (size, SHA-256), not rendered."""
    version = _visible_version(request, object_id)
    revision = _revision_of(request, version)
    entry = revision.files.get(path)
    if entry is None:
        raise Http404(f"No file {path!r} in {revision}.")
    table, note = None, ""
    if not entry["text"]:
        note = "A binary file: not shown."
    elif entry["size"] > MAX_SHOWN_BYTES:
        note = f"Larger than {MAX_SHOWN_BYTES:,} bytes: not shown here; download the artifact to read it."
    else:
        try:
            lines = highlighted_lines(path, read_member(revision, path).decode("utf-8", errors="replace"))
        except ArtifactUnavailable as exc:
            note = exc.detail
        else:
            if len(lines) > MAX_SHOWN_LINES:
                note = f"Only the first {MAX_SHOWN_LINES:,} of {len(lines):,} lines are shown."
            table = numbered_table(lines[:MAX_SHOWN_LINES])
    _record_browse(request, version, revision, path)
    tree_url = reverse("admin:submissions_pluginversion_code", args=[version.pk]) + _revision_query(version, revision)
    context = {
        "title": path,
        "revision": revision,
        "path": path,
        "entry": entry,
        "table": table,
        "note": note,
        "crumbs": [("Code", tree_url), (path, "")],
    }
    return _page(model_admin, request, version, "code_file.html", context)


def download_view(model_admin: ModelAdmin, request: HttpRequest, object_id: int) -> HttpResponseBase:
    """The revision's archive as it was uploaded, always as an attachment."""
    version = _visible_version(request, object_id)
    if not may_download(_user(request), version):
        raise PermissionDenied
    revision = _revision_of(request, version)
    try:
        response = attachment(revision.artifact, revision.artifact_name)
    except OSError:
        raise Http404("The archive is missing from storage.") from None
    artifact_access_record(
        version=version,
        actor=_user(request),
        action="version.download",
        data={"revision": revision.number, "sha256": revision.sha256},
    )
    return response


# -- shared -----------------------------------------------------------------------------


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)  # the admin lets only active staff in (admin_view)


def _visible_version(request: HttpRequest, object_id: int) -> PluginVersion:
    if not is_id(object_id):
        raise Http404("No such plugin version.")
    version = (
        versions_visible_to(user=_user(request)).select_related("plugin__organisation").filter(pk=object_id).first()
    )
    if version is None:
        raise Http404("No such plugin version.")
    return version


def _revision_of(request: HttpRequest, version: PluginVersion) -> VersionRevision:
    """``?revision=<number>``, else the version's current revision."""
    number = request.GET.get("revision", version.revision)
    revision = VersionRevision.objects.filter(version=version, number=number).first() if is_id(number) else None
    if revision is None:
        raise Http404(f"{version} has no revision {str(number)[:20]}.")
    revision.version = version  # for its name, without a query
    return revision


def _revision_query(version: PluginVersion, revision: VersionRevision) -> str:
    return "" if revision.number == version.revision else "?" + urlencode({"revision": revision.number})


def _record_browse(request: HttpRequest, version: PluginVersion, revision: VersionRevision, path: str) -> None:
    artifact_access_record(
        version=version,
        actor=_user(request),
        action="version.browse",
        data={"revision": revision.number, "path": path or "/"},
    )


def _page(
    model_admin: ModelAdmin, request: HttpRequest, version: PluginVersion, template: str, context: dict[str, Any]
) -> TemplateResponse:
    full = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": version,
        "code_css": code_css(),
        "may_download": may_download(_user(request), version),
        **context,
    }
    return TemplateResponse(request, f"admin/submissions/pluginversion/{template}", full)


def _error_page(
    model_admin: ModelAdmin, request: HttpRequest, version: PluginVersion, message: str, status: int
) -> TemplateResponse:
    response = _page(
        model_admin,
        request,
        version,
        "code_error.html",
        {"title": "Cannot compare these revisions", "message": message, "crumbs": [("Changes", "")]},
    )
    response.status_code = status
    return response
