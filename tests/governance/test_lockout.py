"""The sign-in lockout (governance/lockout.py, django-axes): failed passwords in the admin and
bad integration-token keys lock an address out for the cool-off, whatever it sends next."""

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from governance.lockout import client_ip
from tests.conftest import token_key

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture(autouse=True)
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def sign_in(username: str, password: str, *, address: str = "10.0.0.1"):
    return Client(REMOTE_ADDR=address).post(LOGIN, {"username": username, "password": password})


def test_failed_passwords_lock_the_username_out_from_that_address_even_with_the_right_one(platform_admin):
    for _ in range(2):
        assert sign_in("platform", "wrong").status_code == 200  # the form again, with its error
    locked = sign_in("platform", "wrong")
    assert locked.status_code == 429 and locked["Retry-After"] == "900"
    assert b"Too many failed sign-ins" in locked.content and b'id="warden-locked-out"' in locked.content
    assert sign_in("platform", "pw").status_code == 429  # the right password, refused while locked

    assert sign_in("platform", "pw", address="10.0.0.2").status_code == 302  # another address
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert sign_in("platform", "pw").status_code == 302  # the cool-off has passed


def test_a_platform_admin_lifts_a_lockout_by_deleting_its_access_attempt(platform_admin, security):
    for _ in range(3):
        sign_in("security", "wrong")
    attempt = AccessAttempt.objects.get(username="security")
    admin = Client()
    admin.force_login(platform_admin)
    assert admin.get("/admin/axes/accessattempt/").status_code == 200
    page = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert page.status_code == 302 and not AccessAttempt.objects.exists()
    assert sign_in("security", "pw").status_code == 302


def test_an_author_cannot_see_the_access_attempts(author):
    for _ in range(3):
        sign_in("someone", "wrong")
    client = Client()
    client.force_login(author)
    assert client.get("/admin/axes/accessattempt/").status_code == 403


def bearer(key: str, address: str = "10.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_bad_token_keys_lock_the_address_out_of_every_token_path(platform_admin):
    good = token_key(platform_admin)
    prefix = good.partition(".")[0]
    for guess in ("nope.nope", f"{prefix}.{'x' * 32}"):
        assert bearer(guess).get("/api/v1/versions/").status_code == 401
    third = bearer("nope.again").get("/api/v1/versions/")
    assert third.status_code == 429 and third.json()["code"] == "locked_out" and third["Retry-After"] == "900"

    for path in ("/api/v1/versions/", "/api/v1/feed/", "/tuf/timestamp.json"):
        refused = bearer(good).get(path)
        assert (path, refused.status_code, refused["Retry-After"]) == (path, 429, "900")
    assert bearer(good).get("/api/v1/feed/", HTTP_IF_NONE_MATCH='"feed-0-all-1000"').status_code == 429

    assert bearer(good, address="10.0.0.2").get("/api/v1/versions/").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert bearer(good).get("/api/v1/versions/").status_code == 200


def test_the_unchanged_feed_poll_is_not_an_oracle_for_a_locked_out_address(platform_admin):
    """Only a right key gets a 304: were it answered while the address is locked out, a
    guesser would still learn which key is right."""
    good = token_key(platform_admin, "feed")
    etag = bearer(good).get("/api/v1/feed/")["ETag"]
    assert bearer(good).get("/api/v1/feed/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    for _ in range(3):
        bearer("nope.nope").get("/api/v1/feed/", HTTP_IF_NONE_MATCH=etag)
    assert bearer(good).get("/api/v1/feed/", HTTP_IF_NONE_MATCH=etag).status_code == 429
    assert bearer(good, address="10.0.0.2").get("/api/v1/feed/", HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_a_scope_refused_is_not_a_failed_sign_in(platform_admin):
    key = token_key(platform_admin, "feed")
    for _ in range(5):
        assert bearer(key).get("/api/v1/versions/").status_code == 403
    assert not AccessAttempt.objects.exists()
    assert bearer(key).get("/api/v1/feed/").status_code == 200


def test_the_token_key_is_never_recorded(platform_admin):
    prefix = token_key(platform_admin).partition(".")[0]
    guess = f"{prefix}.{'s' * 32}"
    bearer(guess).post("/api/v1/versions/", {"secret": guess}, format="json")
    attempt = AccessAttempt.objects.get()
    assert attempt.username == "(integration token)"
    assert guess not in " ".join(map(str, vars(attempt).values()))


def test_behind_trusted_proxies_the_client_is_the_address_the_outermost_saw(rf, settings):
    request = rf.get("/", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5, 10.1.1.1")
    assert client_ip(request) == "10.9.9.9"  # no proxy trusted: the header is the client's to write
    settings.WARDEN_TRUSTED_PROXIES = 2
    assert client_ip(request) == "203.0.113.5"  # not the 6.6.6.6 the client wrote itself
    settings.WARDEN_TRUSTED_PROXIES = 5
    assert client_ip(request) == "10.9.9.9"  # fewer hops than proxies: the header is not trusted
    settings.WARDEN_TRUSTED_PROXIES = 1
    request.META["HTTP_X_FORWARDED_FOR"] = "not-an-address"
    assert client_ip(request) == "10.9.9.9"  # the lockout stores addresses only (an inet column)
    request.META["HTTP_X_FORWARDED_FOR"] = "2001:DB8::1"
    assert client_ip(request) == "2001:db8::1"  # one spelling an address
