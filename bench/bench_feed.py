"""The feed under gunicorn: (a) the conditional GET a host's poll makes when nothing changed
(If-None-Match → 304) against a trivial Django view, goal: at least 0.8 times its throughput; (b) the full
feed of 10,000 versions, goal: median < 100 ms.

    .venv/bin/python bench/bench_feed.py [--versions N] [--workers W] [--clients C] [--seconds S]

A scratch SQLite database with ``--versions`` versions (100 plugins) and their feed entries,
written with ``bulk_create``: fixture data, not a workflow (no history rows, no audit events,
no artifacts on disk; approving and deploying are benchmarked elsewhere). Their statuses are
spread over approved, deployed, superseded, rolled back and revoked, each with the entries
that led there (about 2 a version). One gunicorn (``--workers`` sync workers, Warden's base
settings with DEBUG off) serves Warden's URLs plus ``/bench/trivial/``, a view that returns
``ok``; that URL exists only in this file's URLconf (``wsgi()`` below), never in the product.

(a) ``--clients`` processes each open a connection per request, as a host's poll does, and
count answers for ``--seconds``; the two URLs alternate over three rounds each and the median
round counts. The feed's requests carry a host platform's token and the ETag of the full feed.
(b) The full feed (``?limit=10000``) fetched 20 times in a row, body read; median and p90. Then
20 times more, each after an entry is appended: the first read after a change, which no
process has built yet (not a goal of its own; printed so the cost of building it is known).
Exits 1 when a goal is missed.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path

ROOT = Path(__file__).resolve().parents[1]
THROUGHPUT_GOAL = 0.8
FULL_FEED_GOAL_MS = 100.0
STATUSES = ("approved", "deployed", "superseded", "rolled_back", "revoked")
# The events that led to each status, in order.
EVENTS = {
    "approved": ["approved"],
    "deployed": ["approved", "deployed"],
    "superseded": ["approved", "deployed", "superseded"],
    "rolled_back": ["approved", "deployed", "rolled_back"],
    "revoked": ["approved", "revoked"],
}

# gunicorn's side: this module is the URLconf, filled in by ``wsgi()`` once Django is set up.
urlpatterns: list[URLPattern | URLResolver] = []


def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


def wsgi():  # gunicorn "bench_feed:wsgi()"
    """Warden's WSGI application whose URLconf adds ``/bench/trivial/`` before Warden's URLs."""
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    urlpatterns[:] = [path("bench/trivial/", trivial), path("", include("config.urls"))]
    settings.ROOT_URLCONF = __name__  # read per request: only this process's URLs change
    return application


def environment(scratch: Path, conn_max_age: int = 0) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_CONN_MAX_AGE": str(conn_max_age),
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
        "WARDEN_VAR_DIR": str(scratch),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
    }


def build(versions: int) -> tuple[str, int]:
    """The fixture database; returns a host platform's token and the feed's last seq."""
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from decisions.models import FeedEntry
    from submissions import services as sub
    from submissions.models import Plugin, PluginVersion
    from submissions.tokens import token_create

    call_command("migrate", verbosity=0)
    admin = User.objects.create_user("platform", is_staff=True)
    admin.groups.add(Group.objects.get(name="Platform admins"))
    organisation = sub.organisation_create(name="Bench", slug="bench", actor=admin)
    plugins = Plugin.objects.bulk_create(
        Plugin(organisation=organisation, name=f"plugin-{i}", category="data-connector") for i in range(100)
    )
    rows = PluginVersion.objects.bulk_create(
        PluginVersion(
            plugin=plugins[i % len(plugins)],
            version=f"1.{i // len(plugins)}.0",
            artifact=f"artifacts/bench/{i}.zip",
            artifact_name=f"plugin-{i % len(plugins)}-1.{i // len(plugins)}.0.zip",
            sha256=f"{i:064x}",
            size=40_000 + i,
            created_by=admin,
            status=STATUSES[i % len(STATUSES)],
        )
        for i in range(versions)
    )
    entries = [
        FeedEntry(version=version, event=event, state=fixture_state(version, plugins, event, step == len(events) - 1))
        for step in range(3)  # every version's first event, then the second ones, ...: latest entries interleave
        for version in rows
        if step < len(events := EVENTS[version.status])
        for event in [events[step]]
    ]
    FeedEntry.objects.bulk_create(entries, batch_size=2000)
    host = User.objects.create_user("host-platform")
    host.groups.add(Group.objects.get(name="Host platforms"))
    last = FeedEntry.objects.order_by("-seq").values_list("seq", flat=True)[0]
    # A rate no poll reaches: the bench measures the poll, not the limit.
    key = token_create(actor=admin, name="bench host", owner=host, scopes=["feed"], rate_per_minute=10**9)[1]
    return key, last


def fixture_state(version, plugins, event: str, final: bool) -> dict:
    """What ``feed_state`` stores, without its queries."""
    status = version.status if final else {"approved": "approved", "deployed": "deployed"}[event]
    running = {"deployed": ["staging", "production"]}.get(status, [])
    return {
        "version": version.pk,
        "plugin": version.plugin.name,
        "organisation": "bench",
        "number": version.version,
        "status": status,
        "allowed": status in ("approved", "deployed", "superseded"),
        "artifact": {"name": version.artifact_name, "sha256": version.sha256, "size": version.size},
        "environments": running,
        "attestation": {"url": f"/api/v1/versions/{version.pk}/attestation/", "sha256": f"{version.pk:064x}"},
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(scratch: Path, workers: int, conn_max_age: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "bench_feed:wsgi()",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--log-level=warning",
        ],
        env=environment(scratch, conn_max_age),
        cwd=ROOT,
        start_new_session=True,  # its own process group: the bench stops exactly what it started
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if get(port, "/bench/trivial/", {})[0] == 200:
                return server, port
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not answer within 30 s")


def get(port: int, url: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", url, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()


def hammer(args: tuple[int, str, dict[str, str], int, float]) -> int:
    """One client: a fresh connection per request until the deadline; answers of ``status``."""
    port, url, headers, status, seconds = args
    answered = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = get(port, url, headers)[0]
        if got != status:
            raise RuntimeError(f"{url} answered {got}, not {status}")
        answered += 1
    return answered


def server_cpu(server: subprocess.Popen) -> float:
    """CPU seconds the gunicorn processes (the master and its workers) have used."""
    ticks = 0
    for pid in [server.pid, *Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()]:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def throughput(server: subprocess.Popen, port: int, cases: dict, clients: int, seconds: float) -> dict:
    """Per case: the median round's requests a second, and the server's CPU time a request."""
    rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        for _ in range(3):
            for name, (url, headers, status) in cases.items():
                cpu = server_cpu(server)
                answered = sum(pool.map(hammer, [(port, url, headers, status, seconds)] * clients))
                rounds[name].append((answered / seconds, (server_cpu(server) - cpu) / answered))
    return {name: sorted(values)[1] for name, values in rounds.items()}


def full_feed(port: int, token: str, versions: int, *, grow: bool) -> list[float]:
    """20 fetches of the full feed; with ``grow``, an entry is appended before each (the
    first read after a change: nothing kept can answer it)."""
    from decisions.models import FeedEntry

    url, headers = "/api/v1/feed/?limit=10000", {"Authorization": f"Token {token}"}
    times = []
    for _ in range(20):
        if grow:
            last = FeedEntry.objects.order_by("-seq").first()
            FeedEntry.objects.create(version_id=last.version_id, event=last.event, state=last.state)
        started = time.perf_counter()
        status, body, _ = get(port, url, headers)
        times.append((time.perf_counter() - started) * 1e3)
        listed = json.loads(body)["entries"]
        assert status == 200 and len(listed) == min(versions, 10_000), (status, len(listed))
    assert len({entry["state"]["version"] for entry in listed}) == len(listed)
    return times


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    options.add_argument("--versions", type=int, default=10_000)
    options.add_argument("--workers", type=int, default=2)
    options.add_argument("--clients", type=int, default=4)
    options.add_argument("--seconds", type=float, default=3.0)
    options.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="DATABASE_CONN_MAX_AGE of the served settings (0: a connection a request)",
    )
    args = options.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="warden-bench-feed-"))
    os.environ.update({k: v for k, v in environment(scratch).items() if k != "PYTHONPATH"})
    sys.path[:0] = [str(ROOT)]
    started = time.perf_counter()
    token, last = build(args.versions)
    print(f"fixture: {args.versions:,} versions, feed at seq {last:,}, built in {time.perf_counter() - started:.1f} s")
    from django.db import connections

    connections.close_all()
    server, port = serve(scratch, args.workers, args.conn_max_age)
    try:
        auth = {"Authorization": f"Token {token}"}
        etag = get(port, "/api/v1/feed/", auth)[2]["ETag"]
        cases = {
            "trivial view": ("/bench/trivial/", {}, 200),
            "feed, If-None-Match": ("/api/v1/feed/", {**auth, "If-None-Match": etag}, 304),
        }
        rates = throughput(server, port, cases, args.clients, args.seconds)
        times = full_feed(port, token, args.versions, grow=False)
        cold = full_feed(port, token, args.versions, grow=True)
        size = len(get(port, "/api/v1/feed/?limit=10000", auth)[1])
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)
    ratio = rates["feed, If-None-Match"][0] / rates["trivial view"][0]
    median, cold_median = statistics.median(times), statistics.median(cold)
    print(
        f"gunicorn: {args.workers} sync workers, DATABASE_CONN_MAX_AGE={args.conn_max_age}; "
        f"{args.clients} clients, a connection per request"
    )
    for name, (rate, cpu) in rates.items():
        print(
            f"  {name:22} {rate:8.0f} requests/s (median of 3 rounds of {args.seconds:g} s), "
            f"server CPU {cpu * 1e6:5.0f} µs a request"
        )
    print(f"  304 / trivial: {ratio:.2f} (goal ≥ {THROUGHPUT_GOAL:g})")
    print(
        f"full feed, {min(args.versions, 10_000):,} versions, {size / 1e6:.1f} MB: median {median:.1f} ms, "
        f"p90 {statistics.quantiles(times, n=10)[-1]:.1f} ms, best {min(times):.1f} ms (goal: median < "
        f"{FULL_FEED_GOAL_MS:g} ms)"
    )
    print(
        f"  the first read after each change (an entry appended before each of 20 fetches): median "
        f"{cold_median:.1f} ms, p90 {statistics.quantiles(cold, n=10)[-1]:.1f} ms"
    )
    return 0 if ratio >= THROUGHPUT_GOAL and median < FULL_FEED_GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
