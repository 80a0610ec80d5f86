"""The Content-Security-Policy (config/settings/base.py, django-csp): scripts and styles only
from Warden's static files or with the request's nonce, on every page but the API's Redoc."""

import re
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db
ROOT = Path(settings.BASE_DIR)
# The one page whose renderer writes <style> elements as it draws (config/urls.py).
INLINE_STYLES_ALLOWED = {"governance/templates/api/redoc.html"}


def policy(response) -> dict[str, list[str]]:
    directives = (part.split() for part in response["Content-Security-Policy"].split(";") if part.strip())
    return {name: values for name, *values in directives}


def test_admin_pages_allow_no_inline_script_or_style_but_the_nonce(client, platform_admin):
    client.force_login(platform_admin)
    csp = policy(client.get("/admin/"))
    assert csp["script-src"][0] == "'self'" and csp["style-src"][0] == "'self'"
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & {*csp["script-src"], *csp["style-src"]}
    assert (csp["default-src"], csp["object-src"], csp["base-uri"], csp["frame-ancestors"]) == (
        ["'self'"],
        ["'none'"],
        ["'none'"],
        ["'none'"],
    )


def test_a_page_with_an_inline_style_gets_a_fresh_nonce_that_names_it(client, platform_admin):
    client.force_login(platform_admin)
    nonces = []
    for _ in range(2):
        response = client.get("/api/docs/")  # Swagger UI's page: one <style> element
        nonce = next(v for v in policy(response)["style-src"] if v.startswith("'nonce-"))[7:-1]
        assert f'<style nonce="{nonce}">' in response.content.decode()
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def test_only_redoc_may_use_inline_styles_and_blob_workers(client, platform_admin):
    client.force_login(platform_admin)
    redoc = policy(client.get("/api/redoc/"))
    assert "'unsafe-inline'" in redoc["style-src"] and "blob:" in redoc["worker-src"]
    assert "'unsafe-inline'" not in redoc["script-src"]
    swagger = client.get("/api/docs/")
    assert "'unsafe-inline'" not in policy(swagger)["style-src"]
    assert b"<script>" not in swagger.content  # its script is a request of its own
    assert client.get("/api/docs/?script").status_code == 200


def templates() -> list[Path]:
    return [
        path
        for app in ("governance", "submissions", "reviews", "compliance", "decisions", "config")
        for path in (ROOT / app).rglob("*.html")
    ]


@pytest.mark.parametrize("path", templates(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_an_inline_script_style_or_handler_without_the_nonce(path):
    """What the browser would block, found before a browser runs: a ``style=""`` attribute, an
    ``on...=`` handler, a ``<script>`` without ``src`` or a ``<style>`` without the nonce."""
    text = re.sub(r"\{% comment %\}.*?\{% endcomment %\}", "", path.read_text(), flags=re.S)
    relative = str(path.relative_to(ROOT))
    assert not re.search(r"\sstyle\s*=", text), relative
    assert not re.search(r"\son[a-z]+\s*=", text), relative
    assert not re.search(r'href\s*=\s*"javascript:', text), relative
    for tag in re.findall(r"<script\b[^>]*>", text):
        assert "src=" in tag or "csp_nonce" in tag, (relative, tag)
    if relative not in INLINE_STYLES_ALLOWED:
        for tag in re.findall(r"<style\b[^>]*>", text):
            assert "csp_nonce" in tag, (relative, tag)
