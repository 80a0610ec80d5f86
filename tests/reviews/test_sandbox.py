"""The sandbox and behaviour capture, with plugins the tests write.

Plugins that misbehave only ever run inside bubblewrap: those tests skip where bwrap is missing
(CI installs it, see the Makefile's `sandbox` target).
"""

import io
import os
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from reviews.checks import CheckContext
from reviews.checks.behaviour import behaviour, network_declared, path_declared
from reviews.sandbox import command, records, runner
from reviews.sandbox.runner import SandboxError, isolation_available

needs_bwrap = pytest.mark.skipif(not isolation_available(), reason="bubblewrap (bwrap) is not installed")

PERMISSIONS = {"network": [], "filesystem": ["write:/tmp"], "subprocess": False, "environment": []}
TEST_LIMITS = {
    "cpu_seconds": 2,
    "memory_mb": 512,
    "processes": 32,
    "open_files": 64,
    "file_size_mb": 8,
    "tmp_mb": 32,
    "output_kb": 64,
    "wall_seconds": 15,
}


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.WARDEN_SANDBOX_LIMITS = TEST_LIMITS


def sandbox_uid(uid: int) -> bool:
    """One of the users plugin code runs as (never the worker's root)."""
    return settings.WARDEN_SANDBOX_UID <= uid < settings.WARDEN_SANDBOX_UID + settings.WARDEN_SANDBOX_UIDS


def manifest(*, permissions=None, requirements=(), benchmark=""):
    data = {
        "plugin": {"entrypoint": "probe:Plugin", "category": "data-connector"},
        "permissions": {**PERMISSIONS, **(permissions or {})},
        "dependencies": {"requirements": list(requirements)},
    }
    if benchmark:
        data["performance"] = {"benchmark": benchmark}
    return data


def run_plugin(tmp_path: Path, body: str, runs: list | None = None, **manifest_options):
    """Write ``probe.py`` whose Plugin() runs ``body``, and run the behaviour check on it; the
    sandbox's run is appended to ``runs`` when given."""
    root = tmp_path / "plugin"
    root.mkdir()
    code = "import os, socket, subprocess, sys, base64, ctypes\n\nclass Plugin:\n    def __init__(self):\n"
    code += "".join(f"        {line}\n" for line in body.strip().splitlines())
    (root / "probe.py").write_text(code)
    context = CheckContext(version_id=0, plugin_id=0, manifest=manifest(**manifest_options), root=root)
    if runs is None:
        return behaviour(context)

    def keep(**options):
        runs.append(runner.sandbox_run(**options))
        return runs[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("reviews.checks.behaviour.sandbox_run", keep)
        return behaviour(context)


def rules(outcome) -> set[str]:
    return {f.rule_id for f in outcome.findings}


WELL_BEHAVED = """
try:
    socket.create_connection(("api.acme.example", 443), timeout=1)
except OSError:
    pass  # the sandbox has no network: the attempt is what counts
self.token = os.environ.get("ACME_TOKEN")
with open("/tmp/cache.json", "w") as cache:
    cache.write("{}")
"""


@needs_bwrap
def test_a_well_behaved_plugin_passes_with_its_declared_permissions_honoured(tmp_path):
    outcome = run_plugin(
        tmp_path, WELL_BEHAVED, permissions={"network": ["*.acme.example:443"], "environment": ["ACME_TOKEN"]}
    )

    assert outcome.passed, [f.title for f in outcome.findings]
    assert list(outcome.findings) == []
    assert outcome.summary["isolation"] == "bubblewrap"
    assert outcome.summary["events"] == 3  # the look-up, the variable and the cache file, all declared
    assert outcome.summary["limit"] == ""


@needs_bwrap
def test_declared_variables_are_set_to_a_placeholder_as_a_host_would_set_them(tmp_path):
    outcome = run_plugin(
        tmp_path,
        'assert os.environ["ACME_TOKEN"] == "warden-sandbox-placeholder"',
        permissions={"environment": ["ACME_TOKEN"]},
    )

    assert outcome.passed and list(outcome.findings) == []


@needs_bwrap
def test_the_same_plugin_without_the_declarations_gets_a_finding_per_behaviour(tmp_path):
    outcome = run_plugin(tmp_path, WELL_BEHAVED, permissions={"filesystem": []})

    assert not outcome.passed
    assert rules(outcome) == {
        "behaviour.undeclared-network",
        "behaviour.undeclared-environment",
        "behaviour.undeclared-file-write",
    }


@needs_bwrap
@pytest.mark.parametrize(
    ("body", "rule", "severity", "evidence"),
    [
        (
            'try:\n    socket.create_connection(("10.9.8.7", 4444), timeout=1)\nexcept OSError:\n    pass',
            "behaviour.undeclared-network",
            "high",
            "10.9.8.7:4444",
        ),
        (
            'try:\n    open(os.path.expanduser("~/.ssh/id_rsa")).read()\nexcept OSError:\n    pass',
            "behaviour.credential-access",
            "critical",
            "/home/sandbox/.ssh/id_rsa",
        ),
        ('subprocess.run(["/bin/sh", "-c", "echo owned"])', "behaviour.undeclared-subprocess", "high", "/bin/sh"),
        ('os.system("id")', "behaviour.undeclared-subprocess", "high", "id"),
        ('self.key = os.getenv("AWS_SECRET_ACCESS_KEY")', "behaviour.undeclared-environment", "medium", "AWS_SECRET"),
        ("self.all = dict(os.environ)", "behaviour.environment-enumeration", "high", "*"),
        ('exec(base64.b64decode(b"aW1wb3J0IG9z"))', "behaviour.dynamic-code", "high", "import os"),
        ('ctypes.CDLL("libc.so.6")', "behaviour.dynamic-code", "high", "libc.so.6"),
    ],
    ids=["socket", "ssh-key", "shell", "os-system", "environment", "whole-environment", "exec-base64", "ctypes"],
)
def test_each_undeclared_behaviour_is_a_finding_with_its_evidence(tmp_path, body, rule, severity, evidence):
    outcome = run_plugin(tmp_path, body)

    matching = [f for f in outcome.findings if f.rule_id == rule]
    assert matching, [(f.rule_id, f.title, f.message[:300]) for f in outcome.findings]
    finding = matching[0]
    assert finding.severity == severity
    assert finding.kind == "behaviour"
    assert evidence in finding.data["target"]
    assert finding.path == "probe.py"  # the stack frame inside the plugin
    assert finding.line is not None and finding.line >= 5
    assert finding.data["where"]["function"] == "__init__"
    assert outcome.passed is (severity == "medium")  # the check fails at high and critical


@needs_bwrap
@pytest.mark.parametrize(
    ("body", "limit"),
    [
        ("while True:\n    pass", "cpu"),
        ("self.block = bytearray(10 * 1024 ** 3)", "memory"),
        ("while True:\n    os.fork()", "processes"),
        ('for _ in range(1024 ** 2):\n    sys.stdout.write("x" * 1024)', "output"),
        ("import time\ntime.sleep(3600)", "wall-clock"),
        ('open("/tmp/big", "wb").write(b"x" * (64 * 1024 ** 2))', "file-size"),
        ('self.files = [open("/dev/null") for _ in range(1000)]', "open-files"),
    ],
    ids=["infinite-loop", "10-GiB", "fork-bomb", "1-GiB-print", "hang", "big-file", "file-descriptors"],
)
def test_a_plugin_that_runs_away_is_stopped_by_the_limit_it_hit(tmp_path, settings, body, limit):
    if limit == "wall-clock":
        settings.WARDEN_SANDBOX_LIMITS = {**TEST_LIMITS, "wall_seconds": 3}

    runs: list = []
    outcome = run_plugin(tmp_path, body, runs)

    stopped = [f for f in outcome.findings if f.rule_id == "behaviour.resource-limit"]
    assert len(stopped) == 1, [f.title for f in outcome.findings]
    assert stopped[0].data["limit"] == limit
    assert records.LIMIT_TEXT[limit] in stopped[0].title
    assert outcome.summary["limit"] == limit
    assert not outcome.passed
    (run,) = runs
    assert run.pid_namespace.startswith("pid:[")  # known while it ran
    assert sandbox_processes(run) == []  # nothing of the plugin outlived its run


def sandbox_processes(run) -> list[str]:
    """Processes of ``run`` still alive: in its PID namespace (bubblewrap), or in its session.
    Only this run's: another sandbox on the machine (another checkout's demo) is not counted."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            namespace = os.readlink(proc / "ns" / "pid")
            stat = (proc / "stat").read_text()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        state, _parent, _group, session = stat.rsplit(")", 1)[1].split()[:4]
        if state not in "ZX" and (namespace == run.pid_namespace or int(session) == run.pid):
            found.append(f"{proc.name} {stat.split(' ', 3)[1:3]}")  # a zombie runs nothing: it is dead
    return found


FORGE = """
import json
fd = json.loads(sys.argv[1])["report_fd"]
os.write(fd, b'{"type": "event", "kind": "file", "target": "x", "where": "nope"}\\n')
"""


@needs_bwrap
@pytest.mark.parametrize(
    ("body", "rule", "evidence"),
    [
        (FORGE, "behaviour.tampered-report", None),
        (
            "import threading\n"
            't = threading.Thread(target=open, args=(os.path.expanduser("~/.aws/credentials"),))\n'
            "t.start()\nt.join()",
            "behaviour.credential-access",
            "/home/sandbox/.aws/credentials",
        ),
        (
            'for n in range(300):\n    os.makedirs(f"/tmp/d{n}")\n    open(f"/tmp/d{n}/f", "w").close()\n'
            'open("/etc/ld.so.cache", "rb").close()',
            "behaviour.truncated",
            None,
        ),
        (
            'os.symlink("/etc/ld.so.cache", "/tmp/innocent")\nopen("/tmp/innocent", "rb").close()',
            "behaviour.undeclared-file-read",
            "/etc/ld.so.cache",
        ),
    ],
    ids=["forged-record", "thread-target", "flood", "symlink"],
)
def test_ways_around_the_capture_are_findings_too(tmp_path, body, rule, evidence):
    outcome = run_plugin(tmp_path, body)

    matching = [f for f in outcome.findings if f.rule_id == rule]
    assert matching, [(f.rule_id, f.title, f.message[:300]) for f in outcome.findings]
    if evidence:
        assert matching[0].data["target"] == evidence
    assert not outcome.passed


@needs_bwrap
def test_nothing_of_the_host_is_visible_inside(tmp_path):
    outcome = run_plugin(
        tmp_path,
        'self.seen = sorted(os.listdir("/"))\nprint(self.seen)\nprint(sorted(os.environ))\nprint(os.getuid())',
        permissions={"environment": []},
    )

    import json

    report = json.loads(outcome.report)
    printed = report["output"]
    assert "'work'" not in printed and "'etc'" in printed  # /etc holds only the loader cache
    assert "DATABASE_URL" not in printed and "DJANGO_SETTINGS_MODULE" not in printed
    if os.getuid() == 0:  # dropped to one of the sandbox users
        assert sandbox_uid(int(printed.strip().rsplit(maxsplit=1)[-1]))


@needs_bwrap
def test_a_crash_at_import_is_a_finding_with_the_plugin_frame(tmp_path):
    outcome = run_plugin(tmp_path, 'raise RuntimeError("no config")')

    (finding,) = outcome.findings
    assert finding.rule_id == "behaviour.crash"
    assert "RuntimeError" in finding.title and finding.message == "no config"
    assert finding.path == "probe.py"


def make_wheel(wheelhouse: Path, name: str, version: str, code: str, extra: dict | None = None) -> None:
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": code,
        **(extra or {}),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{dist}/RECORD"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)
    (wheelhouse / f"{name}-{version}-py3-none-any.whl").write_bytes(buffer.getvalue())


@needs_bwrap
def test_pinned_dependencies_come_from_the_wheelhouse_and_are_readable_inside(tmp_path, settings):
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    make_wheel(wheelhouse, "tinydep", "1.0", "VALUE = 42\n")
    settings.WARDEN_SANDBOX_WHEELHOUSE = str(wheelhouse)

    outcome = run_plugin(tmp_path, "import tinydep\nassert tinydep.VALUE == 42", requirements=["tinydep==1.0"])

    assert outcome.passed, [f.title for f in outcome.findings]
    assert list(outcome.findings) == []


@needs_bwrap
def test_a_dependencys_pth_file_runs_only_under_the_limits_the_sandbox_user_and_the_hook(tmp_path, settings):
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    startup_code = (
        'import os; print("pth uid", os.getuid(), flush=True)\n'
        'import socket; socket.socket().connect_ex(("10.1.2.3", 9))\n'
    )
    make_wheel(wheelhouse, "pthdep", "1.0", "VALUE = 1\n", extra={"pthdep_boot.pth": startup_code})
    settings.WARDEN_SANDBOX_WHEELHOUSE = str(wheelhouse)

    outcome = run_plugin(tmp_path, "import pthdep", requirements=["pthdep==1.0"])

    (finding,) = [f for f in outcome.findings if f.rule_id == "behaviour.undeclared-network"]
    assert finding.data["target"] == "10.1.2.3:9"
    import json

    output = json.loads(outcome.report)["output"]
    assert "pth uid" in output
    if os.getuid() == 0:  # never as the worker's root
        assert sandbox_uid(int(output.split("pth uid ", 1)[1].split()[0]))


def test_a_dependency_missing_from_the_wheelhouse_errors_the_run_and_leaves_no_environment(tmp_path, settings):
    settings.WARDEN_SANDBOX_WHEELHOUSE = str(tmp_path)
    settings.WARDEN_WORK_DIR = tmp_path / "work"

    with pytest.raises(SandboxError, match="could not be installed"):
        run_plugin(tmp_path, "pass", requirements=["nosuchpackage==9.9"])

    assert list((tmp_path / "work" / "envs").iterdir()) == []


@pytest.fixture
def no_bwrap(settings):
    settings.WARDEN_SANDBOX_BWRAP = "/nonexistent/bwrap"
    isolation_available.cache_clear()
    yield
    isolation_available.cache_clear()


@pytest.mark.parametrize("module", ["base", "test", "production"])
def test_without_bwrap_no_settings_module_runs_plugin_code_by_default(
    tmp_path, settings, no_bwrap, module, monkeypatch
):
    import importlib

    monkeypatch.setenv("DJANGO_SECRET_KEY", "x" * 50)
    monkeypatch.delenv("WARDEN_SANDBOX_ALLOW_UNISOLATED", raising=False)
    configured = importlib.reload(importlib.import_module(f"config.settings.{module}"))
    settings.WARDEN_SANDBOX_ALLOW_UNISOLATED = configured.WARDEN_SANDBOX_ALLOW_UNISOLATED
    marker = tmp_path / "ran"

    with pytest.raises(SandboxError, match=r"bubblewrap .* not available.*plugin code was not run"):
        run_plugin(tmp_path, f'open("{marker}", "w").close()')

    assert not marker.exists()


def test_production_never_allows_an_unisolated_run_whatever_the_environment(monkeypatch):
    import importlib

    monkeypatch.setenv("DJANGO_SECRET_KEY", "x" * 50)
    monkeypatch.setenv("WARDEN_SANDBOX_ALLOW_UNISOLATED", "true")
    production = importlib.reload(importlib.import_module("config.settings.production"))

    assert production.WARDEN_SANDBOX_ALLOW_UNISOLATED is False


@pytest.mark.parametrize(
    ("target", "patterns", "declared"),
    [
        ("api.acme.example:443", ["*.acme.example:443"], True),
        ("api.acme.example:80", ["*.acme.example:443"], False),
        ("API.ACME.EXAMPLE:443", ["api.acme.example:*"], True),
        ("api.acme.example:*", ["api.acme.example:443"], True),
        ("evil.example:443", ["*.acme.example:443"], False),
        ("10.0.0.1:22", [], False),
    ],
)
def test_network_patterns(target, patterns, declared):
    assert network_declared(target, patterns) is declared


@pytest.mark.parametrize(
    ("path", "access", "entries", "declared"),
    [
        ("/data/exports/a.csv", "read", ["read:/data/exports"], True),
        ("/data/exports/a.csv", "write", ["read:/data/exports"], False),
        ("/data/exports/a.csv", "read", ["write:/data/exports"], True),
        ("/data/exportsX/a.csv", "read", ["read:/data/exports"], False),
        ("/tmp/x", "write", ["write:/tmp/"], True),
    ],
)
def test_path_patterns(path, access, entries, declared):
    assert path_declared(path, access, entries) is declared


def test_a_sandbox_that_fails_to_start_errors_the_run_instead_of_blaming_the_plugin(tmp_path, settings, no_bwrap):
    broken = tmp_path / "harness.py"
    broken.write_text('print("harness: cannot start")\nraise SystemExit(3)\n')
    settings.WARDEN_SANDBOX_ALLOW_UNISOLATED = True

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(command, "HARNESS", broken)
        # a worker that may run it: the broken harness fails before it would drop to the sandbox user
        patch.setattr(runner, "_user", lambda: {"uid": os.getuid(), "gid": os.getgid()})
        patch.setattr(command, "_reachable", lambda path: True)
        with pytest.raises(SandboxError, match=r"did not start \(exit status 3\): harness: cannot start"):
            run_plugin(tmp_path, "pass")


# The system-call tracer's trace, read without strace: bubblewrap's set-up is not the plugin's,
# a call split by another process's is joined, and nothing a plugin names poses as syntax.

TRACE = r"""100 execve("/usr/bin/bwrap", ["bwrap", "--unshare-pid"], 0x7ffc /* 6 vars */) = 0
101 creat("/newroot/dev/null", 0444)  = 6</newroot/dev/null>
102 execve("/sandbox/env/bin/python", ["/sandbox/env/bin/python", "-I", "-S", "-B", "/sandbox/harness.pyc", "{}"], 0x5597 /* 7 vars */ <unfinished ...>
102 <... execve resumed>)             = 0
102 clone3({flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, stack=0x7f, stack_size=0x9000}, 88 <unfinished ...>
103 execve("/bin/sh", ["sh", "-c", "id"], 0x7ffc /* 7 vars */) = 0
102 <... clone3 resumed>)             = 3 /* 103 in strace's PID NS */
103 vfork()                           = 4 /* 104 in strace's PID NS */
104 execve("/usr/bin/id", ["id"], 0x55 /* 7 vars */) = 0
102 sendto(3<socket:[7]>, "{sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr(\"1.2.3.4\")}", 70, 0, NULL, 0) = -1 EDESTADDRREQ (Destination address required)
102 sendmsg(3<socket:[7]>, {msg_name={sa_family=AF_INET, sin_port=htons(9), sin_addr=inet_addr("10.1.2.3")}, msg_namelen=16, msg_iov=[{iov_base=") = 0", iov_len=5}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = -1 ENETUNREACH (Network is unreachable)
102 openat(AT_FDCWD</tmp/work>, "../../etc/x) = 3</tmp/y>", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = -1 EROFS (Read-only file system)
102  openat(AT_FDCWD</tmp>, "scratch.json", O_WRONLY|O_CREAT, 0666) = 3</tmp/scratch.json>
102 openat(AT_FDCWD</tmp>, "/usr/lib/x.py", O_RDONLY|O_CLOEXEC) = 3</usr/lib/x.py>
102 bind(5<socket:[9]>, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
102 listen(5<socket:[9]>, 128)         = 0
102 connect(6<socket:[10]>, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file or directory)
102 clone(child_stack=NULL, flags=CLONE_UNTRACED|SIGCHLD) = 5 /* 105 in strace's PID NS */
102 openat(AT_FDCWD</tmp>, "/proc/warden-canary-abc", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)
"""  # noqa: E501 - strace's lines as it writes them


def _trace(tmp_path):
    from reviews.sandbox.tracer import parse

    path = tmp_path / "trace"
    path.write_text(TRACE)
    return parse(path, harness_argv=("-I", "-S", "-B", "/sandbox/harness.pyc"))


def test_the_trace_is_read_from_the_harness_start_for_its_process_tree(tmp_path):
    trace = _trace(tmp_path)

    assert trace.started and trace.harness_pid == 102 and trace.parents == {103: 102, 104: 103, 105: 102}
    effects = [(e.kind, e.pid, e.syscall, e.target) for e in trace.effects]
    assert effects == [
        ("exec", 103, "execve", "sh -c id"),
        ("exec", 104, "execve", "id"),
        ("network", 102, "sendmsg", "10.1.2.3:9"),  # the sendto's "address" was its datagram
        ("write", 102, "openat", "/etc/x) = 3</tmp/y>"),
        ("write", 102, "openat", "/tmp/scratch.json"),
        ("bind", 102, "bind", "127.0.0.1:8080"),
        ("listen", 102, "listen", "127.0.0.1:8080"),
        ("network", 102, "connect", "/var/run/nscd/socket"),
        ("evasion", 102, "clone", "clone(CLONE_UNTRACED): a child hidden from the tracer"),
        ("canary", 102, "openat", "/proc/warden-canary-abc"),
    ]


def test_what_the_hook_reported_explains_the_trace_and_the_rest_is_named(tmp_path):
    from reviews.sandbox.tracer import reconcile

    trace = _trace(tmp_path)
    reported = [
        {"type": "event", "kind": "subprocess", "target": "id"},  # os.system("id"): sh -c id, and what it ran
        {"type": "event", "kind": "network", "target": "127.0.0.1:8080", "operation": "bind"},
        {"type": "canary", "nonce": "abc"},
        {"type": "result", "cpu_ms": 1, "peak_rss_kb": 1},
    ]

    unexplained = reconcile(trace, reported, declared=lambda kind, target: False, canary="abc")

    assert unexplained == [
        "clone(CLONE_UNTRACED): a child hidden from the tracer, a way around the tracer",
        "openat /etc/x) = 3</tmp/y> (failed), a write the audit hook did not report",
        "sendmsg 10.1.2.3:9 (failed), network traffic the audit hook did not report",
    ]
    silenced = reconcile(trace, reported[:2] + reported[3:], declared=lambda kind, target: True, canary="abc")
    assert silenced == [
        "clone(CLONE_UNTRACED): a child hidden from the tracer, a way around the tracer",
        "the audit hook stopped reporting: the harness's end-of-run check went unrecorded",
    ]


HOST_WRITES = r"""102 execve("/sandbox/env/bin/python", ["/sandbox/env/bin/python", "-I", "-S", "-B", "/sandbox/harness.pyc", "{}"], 0x5597 /* 7 vars */) = 0
102 openat(AT_FDCWD</tmp>, "/tmp/planted.py", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3</tmp/planted.py>
102 openat(AT_FDCWD</tmp>, "/dev/shm/x", O_RDWR|O_CREAT, 0600) = 4</dev/shm/x>
102 openat(AT_FDCWD</tmp>, "/dev/null", O_RDWR|O_CLOEXEC) = 5</dev/null>
"""  # noqa: E501 - strace's lines as it writes them


@pytest.mark.parametrize("isolated", [True, False], ids=["bubblewrap", "none"])
def test_without_isolation_tmp_and_dev_are_the_hosts_and_their_writes_are_judged(tmp_path, isolated):
    from reviews.sandbox.tracer import parse, reconcile

    path = tmp_path / "trace"
    path.write_text(HOST_WRITES)
    trace = parse(path, harness_argv=("-I", "-S", "-B", "/sandbox/harness.pyc"), isolated=isolated)

    unexplained = reconcile(trace, [], declared=lambda kind, target: False, canary="")

    if isolated:  # bubblewrap's private tmpfs and /dev: nothing leaves the sandbox
        assert unexplained == []
    else:
        assert unexplained == [
            "openat /tmp/planted.py, a write the audit hook did not report",
            "openat /dev/shm/x, a write the audit hook did not report",
        ]


def test_reported_figures_are_compared_with_the_harness_process_and_its_reaped_children_apart():
    def forged(**reported):
        run = runner.SandboxRun(isolation="none", harness_cpu_ms=200.0, harness_reaped_cpu_ms=300.0)
        run.harness_rss_kb, run.cpu_ms, run.peak_rss_kb = 120_000, 540.0, 150_000  # the tree: more than the harness
        run.records = [
            {"type": "result", "cpu_ms": 200.0, "peak_rss_kb": 119_000, "children_cpu_ms": 300.0, **reported}
        ]
        return records._reported_contradicts_kernel(run)

    assert forged() == []  # SELF and CHILDREN each match: the live rest of the tree is the kernel's alone
    # ru_maxrss keeps the worker's peak when the harness was exec'd straight from it: not a forgery
    assert forged(peak_rss_kb=381_500) == []
    assert forged(cpu_ms=50.0) == ["CPU time reported 50.0 ms, measured by the kernel 200.0 ms"]
    assert forged(children_cpu_ms=0.0) == [
        "CPU time of finished subprocesses reported 0.0 ms, measured by the kernel 300.0 ms"
    ]
    assert forged(peak_rss_kb=9000) == ["peak RSS reported 8.8 MB, measured by the kernel 117.2 MB"]
