"""The API fuzzed against its own OpenAPI schema (schemathesis): no input gives a 5xx.

Every operation of the live schema, as a platform admin (every scope) and as an author (submit
and report), with the schema's boundary cases (schemathesis's coverage phase) and
``WARDEN_FUZZ_EXAMPLES`` generated examples each (derandomized: a CI failure replays locally).
Half the examples name objects that exist, so they get past the 404. Each example runs in a
savepoint rolled back after it, with the on-commit work its request queued run as a commit
would run it; a 5xx fails the operation with the server's traceback.
"""

import os
import sys
import tempfile
import traceback
import zlib
from contextlib import contextmanager

import hypothesis.configuration
import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import DEFAULT_DB_ALIAS, close_old_connections, transaction
from hypothesis import HealthCheck, Phase, settings

from reviews.models import CheckRun, Finding
from tests.conftest import token_key

pytestmark = pytest.mark.django_db
hypothesis.configuration.set_hypothesis_home_dir(tempfile.mkdtemp(prefix="warden-hypothesis-"))
EXAMPLES = int(os.environ.get("WARDEN_FUZZ_EXAMPLES", "25"))
# config/wsgi.py would pick the production settings; pytest-django has configured the test ones.
APP = get_wsgi_application()
CONFIG = schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": True}, "stateful": {"enabled": False}}})
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", APP, config=CONFIG)
PATH_OBJECTS = {  # which object a path parameter names; any other names a version
    "/api/v1/findings/{id}/": "finding",
    "/api/v1/findings/{id}/triage/": "finding",
    "/api/v1/plugins/{id}/": "plugin",
    "/api/v1/plugins/{plugin}/versions/": "plugin",
}


@pytest.fixture
def in_process():
    """The WSGI handler's request signals would close the test's connection inside its
    transaction (fatal on PostgreSQL); Django's test client disconnects them the same way.
    Yields the exceptions Django turned into 500s."""
    raised = []

    def keep(sender, request=None, **kwargs):
        raised.append("".join(traceback.format_exception(sys.exc_info()[1])))

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    signals.got_request_exception.connect(keep, weak=False)
    yield raised
    signals.got_request_exception.disconnect(keep)
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def objects(plugin, draft, pipeline):
    run = CheckRun.objects.create(version=draft, check_key="security.bandit", status="failed")
    finding = Finding.objects.create(
        check_run=run, version=draft, kind="security", severity="critical", rule_id="B602",
        title="subprocess with shell=True", fingerprint="f" * 64,
    )  # fmt: skip
    return {"plugin": plugin.pk, "version": draft.pk, "finding": finding.pk}


@pytest.fixture(params=["platform admin", "author"])
def headers(request, platform_admin, author):
    user, scopes = (platform_admin, ()) if request.param == "platform admin" else (author, ("submit", "report"))
    return {"Authorization": f"Token {token_key(user, *scopes, rate_per_minute=1_000_000)}"}


@contextmanager
def rolled_back():
    """A savepoint undone after the example, marked as Django's TestCase marks its own blocks so
    that the services' ``atomic(durable=True)`` still nests in it."""
    block = transaction.Atomic(DEFAULT_DB_ALIAS, savepoint=True, durable=False)
    block._from_testcase = True
    with block:
        yield
        transaction.set_rollback(True)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
def test_no_input_gives_a_server_error(case, headers, objects, in_process, django_capture_on_commit_callbacks):
    parameters = case.path_parameters or {}
    if parameters and zlib.crc32(repr(sorted(parameters.items())).encode()) % 2 == 0:
        for name in parameters:
            parameters[name] = objects[PATH_OBJECTS.get(case.path, "version")]
    before = len(in_process)
    with rolled_back(), django_capture_on_commit_callbacks(execute=True):
        response = case.call(headers=headers)
    assert response.status_code < 500, (case.as_curl_command(headers=headers), *in_process[before:])
