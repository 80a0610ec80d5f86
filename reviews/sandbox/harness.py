# One file on purpose: it is compiled to one .pyc that runs alone in the sandbox, where it can import no sibling.
"""Runs inside the sandbox: set the limits, drop to the sandbox user, then load the plugin.

This file is executed, compiled once per machine, by the sandboxed interpreter
(``python -I -S -B harness.pyc <config>``) and
imports nothing from Warden or Django. ``-S``: the ``site`` module, which runs the ``.pth`` files
and ``sitecustomize`` of the plugin's dependencies, runs only once the limits are set, the
privileges dropped and (for behaviour) the audit hook installed. It reports on the file descriptor named in its config,
one JSON object per line, as things happen, so a plugin that is killed half-way still leaves
what it did before on record.

Modes:
  behaviour  - install a PEP 578 audit hook and a recording ``os.environ``, then import the
               plugin, construct its entrypoint and call its benchmark once; report every
               file open, socket connect or DNS look-up, process start, environment read and
               dynamic code the plugin's code caused.
  startup    - import and construct, nothing else: a fresh process per measurement.
  load       - import, construct, warm up, then answer the runner's calls from as many threads
               as each concurrency level asks for: the runner times every call from outside.

The hook runs in the same process as the plugin, so a hostile plugin could forge or silence
what it reports: the system-call tracer (tracer.py) checks it from outside, its end-of-run
canary shows whether it still reports, and its end-of-run self-check (from a file under the
real plugin root, against state copied before the plugin's first line) whether it still sees
the plugin. Behaviour capture is evidence for a reviewer, the
sandbox is the boundary.
"""

import os
import resource
import sys
import threading
import time

LIMITS = {
    "cpu_seconds": resource.RLIMIT_CPU,
    "address_space_bytes": resource.RLIMIT_AS,
    "processes": resource.RLIMIT_NPROC,
    "open_files": resource.RLIMIT_NOFILE,
    "file_size_bytes": resource.RLIMIT_FSIZE,
}
MAX_EVENTS_PER_KIND = 200  # then one "truncated" record: flooding is itself a finding
HARNESS = sys._getframe().f_code.co_filename  # the name it was compiled under (command.compiled_harness)
# Bound before the plugin's first line: a plugin that replaces sys._getframe does not blind the hook.
_getframe = sys._getframe
CANARY = "/proc/warden-canary-"  # opened at the end of the run (tracer.py watches for it)


def main() -> None:
    import json

    config = json.loads(sys.argv[1])
    out = config["report_fd"]
    for fd in (out, config["request_fd"]):  # no program the plugin runs inherits the channels
        os.set_inheritable(fd, False)
    apply_limits(config["limits"])
    drop_privileges(config.get("uid"), config.get("gid"))
    source_only_imports(config["plugin_root"], native=bool(config.get("native")))
    emit(out, {"type": "started", "uid": os.getuid()})  # the sandbox is up: what follows is the plugin's
    mode = config["mode"]
    if mode == "startup":
        enable_site()
        startup(config, out)
    elif mode == "behaviour":
        Behaviour(config, out).run()
    elif mode == "load":
        enable_site()
        load(config, out)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


def source_only_imports(plugin_root: str, *, native: bool) -> None:
    """Nothing runs that was not read: outside the Python installation, modules load from their
    source only (``-B`` writes no bytecode; this reads none: no ``__pycache__``, no sourceless
    ``.pyc``, no zip archives), and the plugin's own extension modules load only when its
    manifest declares native code. Set before ``site`` runs and before the plugin's first line."""
    import zipimport
    from importlib import machinery

    trusted = tuple({sys.base_prefix + os.sep, os.path.realpath(sys.base_prefix) + os.sep})
    plugin = os.path.realpath(plugin_root) + os.sep

    def is_trusted(path: str) -> bool:
        return path.startswith(trusted) and ".." not in path

    class SourceOnly(machinery.SourceFileLoader):
        def get_code(self, fullname):
            path = self.get_filename(fullname)
            if is_trusted(path):
                return super().get_code(fullname)
            return self.source_to_code(self.get_data(path), path)

    class StandardLibraryBytecode(machinery.SourcelessFileLoader):
        def get_code(self, fullname):
            path = self.get_filename(fullname)
            if not is_trusted(path):
                raise ImportError(f"refused to load {path}: bytecode without its source is never run", path=path)
            return super().get_code(fullname)

    class Extension(machinery.ExtensionFileLoader):
        def create_module(self, spec):
            if not native and os.path.realpath(self.path).startswith(plugin):
                raise ImportError(f"refused to load {self.path}: native code the manifest does not declare")
            return super().create_module(spec)

    def zip_hook(path):
        if not is_trusted(path):
            raise ImportError("zip archives outside the Python installation are not imported")
        return zipimport.zipimporter(path)

    sys.path_hooks[:] = [
        zip_hook,
        machinery.FileFinder.path_hook(
            (Extension, machinery.EXTENSION_SUFFIXES),
            (SourceOnly, machinery.SOURCE_SUFFIXES),
            (StandardLibraryBytecode, machinery.BYTECODE_SUFFIXES),
        ),
    ]
    sys.path_importer_cache.clear()
    sys.dont_write_bytecode = True


def enable_site() -> None:
    """The environment's site-packages, and whatever its .pth files run: the plugin's code."""
    import site

    site.main()


def emit(out: int, record: dict) -> None:
    import json

    os.write(out, (json.dumps(record, default=repr) + "\n").encode())


def apply_limits(limits: dict) -> None:
    for name, value in limits.items():
        kind = LIMITS[name]
        hard = value + 1 if kind == resource.RLIMIT_CPU else value  # SIGXCPU first, SIGKILL a second later
        resource.setrlimit(kind, (value, hard))


def drop_privileges(uid: int | None, gid: int | None) -> None:
    """As root, become the unprivileged sandbox user: root ignores the process limit."""
    if os.getuid() != 0 or uid is None:
        return
    os.setgroups([])
    os.setgid(gid if gid is not None else uid)
    os.setuid(uid)


def load_entrypoint(config: dict):
    """Import the plugin's ``module:Object`` and construct it, as the host would."""
    sys.path.insert(0, config["plugin_root"])
    target = load_callable(config["entrypoint"])
    return target() if callable(target) else target


def load_callable(spec: str):
    module_name, _, attribute = spec.partition(":")
    target = __import__(module_name, fromlist=["_"])
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def usage() -> dict:
    """This process's own figures (SELF) and its reaped children's (CHILDREN), apart: the runner
    measures each from outside and compares like with like (records._reported_contradicts_kernel)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_ms": (own.ru_utime + own.ru_stime) * 1000,
        "peak_rss_kb": own.ru_maxrss,
        "children_cpu_ms": (children.ru_utime + children.ru_stime) * 1000,
        "children_peak_rss_kb": children.ru_maxrss,
    }


def end(config: dict, out: int, record: dict) -> None:
    """The end record, then wait for the runner's go-ahead: it measures this process from
    outside (CPU time, peak memory) while it is still there."""
    emit(out, record)
    os.read(config["request_fd"], 8)


def startup(config: dict, out: int) -> None:
    started = time.perf_counter()
    load_entrypoint(config)
    ready = (time.perf_counter() - started) * 1000
    end(config, out, {"type": "result", "phase": "done", "ready_ms": ready, **usage()})


def load(config: dict, out: int) -> None:
    """Warm up, then answer the runner's calls: for each concurrency level, that many threads
    each read a call id from the request pipe, call the benchmark and reply with the id. The
    runner, outside the sandbox, times every call from its request to its reply."""
    load_entrypoint(config)
    bench = load_callable(config["benchmark"])
    plan = config["load"]
    for _ in range(plan["warmup"]):
        bench()
    requests = config["request_fd"]

    def serve() -> None:
        while True:
            call = int(os.read(requests, 8) or b"0")
            if not call:
                return
            begun = time.perf_counter()
            bench()
            emit(out, {"type": "reply", "id": call, "ms": (time.perf_counter() - begun) * 1000})

    for _ in range(plan["rounds"]):
        for threads in plan["concurrency"]:
            workers = [threading.Thread(target=serve, daemon=True) for _ in range(threads)]
            for worker in workers:
                worker.start()
            emit(out, {"type": "level", "threads": threads})
            for worker in workers:
                worker.join()
    end(config, out, {"type": "result", "phase": "done", **usage()})


class Behaviour:
    """The audit hook and the recording environment, and the phases they watch."""

    def __init__(self, config: dict, out: int) -> None:
        self.out = out
        self.plugin_root = os.path.realpath(config["plugin_root"]) + os.sep
        self.benchmark = config.get("benchmark")
        # The virtual environment (python -S leaves sys.prefix at the base until site runs):
        # its files are the dependencies', readable without declaration.
        environment = os.path.dirname(os.path.dirname(sys.executable)) + os.sep
        self.third_party = (environment,)
        self.implicit = (self.plugin_root, environment, sys.base_prefix + os.sep)
        self.seen: set = set()
        self.per_kind: dict[str, int] = {}
        self.main_thread = threading.get_ident()
        self.local = threading.local()  # per thread: an event being recorded is not recorded again
        self.forked = False
        self.phase = "import"
        self.config = config
        self.canary = CANARY + str(config.get("canary", ""))
        # Dynamic code: the plugin's source files the scanners read (its *.py, listed now, before
        # its first line: the tree is read-only), and the installation's and the dependencies'.
        self.sources = plugin_sources(config["plugin_root"])
        self.installed = tuple(
            {sys.base_prefix + os.sep, os.path.realpath(sys.base_prefix) + os.sep, environment,
             os.path.realpath(environment) + os.sep}
        )  # fmt: skip
        self.generators = generator_code()
        self.compiled: tuple = ()  # the last compile of source: (frame, line, filename)
        self.unmarshallers = unmarshal_code()
        self.base = (sys.base_prefix + os.sep, os.path.realpath(sys.base_prefix) + os.sep)  # its bytecode
        # The end-of-run self-check: code whose file is under the real plugin root, compiled
        # before the hook is installed, run through the live handlers at the end (run()).
        nonce = str(config.get("canary", ""))
        self.self_check_file = self.plugin_root + SELF_CHECK_FILE + nonce
        self.self_check = compile(SELF_CHECK.replace("NONCE", nonce), self.self_check_file, "exec")

    # Where code comes from.
    def origin(self, filename: str) -> str:
        if filename == HARNESS:
            return "harness"
        if filename.startswith(self.plugin_root) or (filename.startswith("<") and not filename.startswith("<frozen")):
            return "plugin"
        if filename.startswith(self.third_party):
            return "dependency"
        return "stdlib"

    def plugin_frame(self, frame):
        """The innermost frame of the plugin's own code on the stack, or None. In a thread the
        plugin started (the harness starts none), everything is the plugin's: ``Thread(target=
        open, ...)`` leaves no plugin frame to find."""
        first = frame
        while frame is not None:
            if self.origin(frame.f_code.co_filename) == "plugin":
                return frame
            frame = frame.f_back
        return first if self.in_plugin_thread() else None

    def direct_caller(self, frame, skip: tuple[str, ...] = ()):
        """The first frame outside the harness (and ``skip`` files), if it is the plugin's."""
        while frame is not None and (frame.f_code.co_filename == HARNESS or frame.f_code.co_filename.endswith(skip)):
            frame = frame.f_back
        if frame is not None and (self.origin(frame.f_code.co_filename) == "plugin" or self.in_plugin_thread()):
            return frame
        return None

    def in_plugin_thread(self) -> bool:
        return threading.get_ident() != self.main_thread

    def where(self, frame) -> dict:
        filename = frame.f_code.co_filename
        return {
            "file": filename[len(self.plugin_root) :] if filename.startswith(self.plugin_root) else filename,
            "line": frame.f_lineno,
            "function": frame.f_code.co_name,
        }

    def record(self, kind: str, target: str, frame, *, key: str = "", **detail) -> None:
        """Once per (kind, key, access); ``key`` defaults to the target (files: their directory)."""
        seen = (kind, key or target, detail.get("access", ""))
        if seen in self.seen:
            return
        count = self.per_kind.get(kind, 0) + 1
        self.per_kind[kind] = count
        if count > MAX_EVENTS_PER_KIND:
            if count == MAX_EVENTS_PER_KIND + 1:
                emit(self.out, {"type": "truncated", "kind": kind})
            return
        self.seen.add(seen)
        emit(
            self.out,
            {
                "type": "event",
                "kind": kind,
                "target": target,
                "phase": self.phase,
                "where": self.where(frame),
                **detail,
            },
        )

    # The audit hook.
    def hook(self, event: str, args: tuple) -> None:
        handler = self.HANDLERS.get(event)
        if handler is None or getattr(self.local, "busy", False):
            return
        self.local.busy = True
        try:
            handler(self, args, _getframe(1))
        finally:
            self.local.busy = False

    def on_open(self, args, caller) -> None:
        path, mode, flags = args
        if path == self.canary and caller.f_code.co_filename == HARNESS:
            emit(self.out, {"type": "canary", "nonce": self.config.get("canary", "")})  # the hook still reports
            return
        if not isinstance(path, str | bytes) or (frame := self.plugin_frame(caller)) is None:
            return
        path = os.path.realpath(os.fsdecode(path))  # a link in a declared directory is judged by its target
        writes = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC)) or any(
            c in (mode or "") for c in "wax+"
        )
        if (path.startswith(self.implicit) and not writes) or path in ("/dev/null", "/dev/urandom", "/dev/random"):
            return
        access = "write" if writes else "read"
        self.record("file", path, frame, key=os.path.dirname(path), access=access)

    def on_connect(self, args, caller) -> None:
        address = args[1]
        if address is None or (frame := self.plugin_frame(caller)) is None:  # sendmsg on a connected socket
            return
        if isinstance(address, tuple) and len(address) >= 2:
            self.record("network", f"{address[0]}:{address[1]}", frame, operation="connect")
        else:
            self.record("network", str(address), frame, operation="connect")

    def on_bind(self, args, caller) -> None:
        address = args[1]
        if (frame := self.plugin_frame(caller)) is None:
            return
        if isinstance(address, tuple) and len(address) >= 2:
            self.record("network", f"{address[0]}:{address[1]}", frame, operation="bind")
        else:
            self.record("network", os.fsdecode(address) if isinstance(address, bytes) else str(address), frame,
                        operation="bind")  # fmt: skip

    def on_lookup(self, args, caller) -> None:
        if (frame := self.plugin_frame(caller)) is None:
            return
        host = os.fsdecode(args[0]) if isinstance(args[0], str | bytes) else str(args[0])
        port = args[1] if len(args) > 1 and args[1] is not None else "*"
        self.record("network", f"{host}:{port}", frame, operation="lookup")

    def on_process(self, args, caller) -> None:
        if (frame := self.plugin_frame(caller)) is None:
            return
        command = args[1] if len(args) > 1 and args[1] is not None else args[0]
        if isinstance(command, list | tuple):
            command = " ".join(os.fsdecode(part) if isinstance(part, str | bytes) else str(part) for part in command)
        self.record("subprocess", os.fsdecode(command) if isinstance(command, bytes) else str(command), frame)

    def on_system(self, args, caller) -> None:
        if (frame := self.plugin_frame(caller)) is not None:
            command = args[0]
            self.record("subprocess", os.fsdecode(command) if isinstance(command, bytes) else str(command), frame)

    def on_fork(self, args, caller) -> None:
        if (frame := self.plugin_frame(caller)) is not None:
            self.record("subprocess", "fork()", frame)

    def code_frame(self, caller):
        """Who to name for dynamic code, whoever compiled it: the plugin's innermost frame, or
        else the first frame outside the harness (timeit, runpy, importlib, zipimport ...)."""
        frame = self.plugin_frame(caller)
        if frame is not None:
            return frame
        while caller is not None and caller.f_code.co_filename == HARNESS:
            caller = caller.f_back
        return caller

    def read_source(self, filename) -> bool | None:
        """Is ``filename`` a file the scanners read (the plugin's *.py) or the Python
        installation's or the dependencies'? None when it is neither."""
        if not isinstance(filename, str | bytes):
            return None
        name = os.fsdecode(filename)
        if not name.startswith("/"):
            return None
        real = os.path.realpath(name)
        if real in self.sources:
            return True
        return True if real.startswith(self.installed) and ".." not in name else None

    def same_file(self, source, filename) -> bool:
        """The source compiled is that file's content (a plugin naming its string after a
        reviewed file does not pass for it)."""
        try:
            with open(os.fsdecode(filename), "rb") as handle:
                data = handle.read()
        except OSError:
            return False
        if isinstance(source, str):
            return source == data.decode("utf-8", "replace") or source.encode() == data
        return bytes(source) == data

    def on_compile(self, args, caller) -> None:
        """Any compile of source, whoever calls it, is dynamic code unless it is a file the
        scanners read (compiled from that file's content), or code the standard library
        generates from names it validates (dataclasses, namedtuple) or ``ast.parse``."""
        source, filename = args[0], args[1]
        tree = getattr(type(source), "_fields", None) is not None  # an ast tree: exec(compile(ast.parse(...)))
        if not (isinstance(source, str | bytes | bytearray | memoryview) or tree):
            return
        direct = self.outside_harness(caller)
        if direct is not None:  # exec/eval of a string: its exec event follows, judged here
            self.compiled = (direct, direct.f_lineno, filename)
        if direct is not None and self.generated(direct):
            return
        if not tree and self.read_source(filename) and self.same_file(source, filename):
            return
        if (frame := self.code_frame(caller)) is None:
            return
        if tree:
            ast = sys.modules.get("ast")
            text = "ast: " + (ast.unparse(source) if ast is not None else type(source).__name__)
        else:
            text = os.fsdecode(bytes(source)) if not isinstance(source, str) else source
        # A dependency compiling code it generated (attrs, pydantic) is told apart from the plugin
        # or the standard library's loaders doing it for the plugin: reviewers weigh it lower.
        by_dependency = direct is not None and self.origin(direct.f_code.co_filename) == "dependency"
        via = "dependency" if by_dependency else "compile/exec/eval"
        self.record("dynamic-code", text[:200], frame, via=via, filename=str(filename))

    @staticmethod
    def outside_harness(frame):
        while frame is not None and frame.f_code.co_filename == HARNESS:
            frame = frame.f_back
        return frame

    def generated(self, frame) -> bool:
        code = frame.f_code
        if code not in self.generators:
            return False
        if code.co_name == "_create_fn":  # dataclasses' own caller, not the plugin calling it
            return frame.f_back is not None and frame.f_back.f_code.co_filename == code.co_filename
        if code.co_name == "addpackage":  # a .pth file of the read-only environment, not one in /tmp
            directory = frame.f_locals.get("sitedir")
            return isinstance(directory, str) and (os.path.realpath(directory) + os.sep).startswith(self.installed)
        return True

    def on_exec(self, args, caller) -> None:
        """exec/eval of a code object: it must come from a file the scanners read."""
        code = args[0]
        filename = getattr(code, "co_filename", None)
        if code is self.self_check or filename == HARNESS or self.read_source(filename):
            return
        direct = self.outside_harness(caller)
        if direct is not None and (self.generated(direct) or self.compiled == (direct, direct.f_lineno, filename)):
            return  # the compile of a string just judged (exec("..."), eval("..."))
        if (
            isinstance(filename, str)
            and filename.startswith("<frozen ")
            and caller.f_code.co_filename.startswith("<frozen importlib")
        ):
            return  # a frozen module of the interpreter, imported
        if (frame := self.code_frame(caller)) is not None:
            self.record("dynamic-code", f"code object from {filename}"[:200], frame, via="exec", filename=str(filename))

    def on_code(self, args, caller) -> None:
        """A code object built or rewritten by the plugin's code (``CodeType(...)``,
        ``code.replace(co_code=...)``): bytecode no scanner read, or a relabelled file name."""
        if (frame := self.plugin_frame(caller)) is not None:
            filename, name = (str(args[1]), str(args[2])) if len(args) > 2 else ("?", "?")
            self.record("dynamic-code", f"code object {name} of {filename}"[:200], frame, via="code.__new__")

    def on_marshal(self, args, caller) -> None:
        """Code from bytes, whoever loads it: but the import system's reading of the Python
        installation's own bytecode (``__pycache__``, its zip), recognised by the importers'
        code objects and the file they read (``SourcelessFileLoader("x", "/tmp/x.pyc")`` is not)."""
        direct = self.outside_harness(caller)
        if direct is not None and direct.f_code in self.unmarshallers:
            path = direct.f_locals.get("bytecode_path", direct.f_locals.get("pathname"))
            if isinstance(path, str) and os.path.realpath(path).startswith(self.base):
                return
        if (frame := self.code_frame(caller)) is not None:
            self.record("dynamic-code", "marshal.loads", frame, via="marshal")

    def on_native(self, args, caller) -> None:
        # direct use only: importing ctypes loads the interpreter itself (dlopen(None))
        if (frame := self.direct_caller(caller, skip=("/ctypes/__init__.py",))) is not None:
            self.record("dynamic-code", f"ctypes: {args[0]!r}", frame, via="ctypes")

    def on_symbol(self, args, caller) -> None:
        # a function looked up in a loaded library (ctypes.pythonapi.X, libc.system): direct use only
        if (frame := self.direct_caller(caller, skip=("/ctypes/__init__.py",))) is not None:
            self.record("dynamic-code", f"ctypes: {args[1]}", frame, via="ctypes")

    HANDLERS = {
        "open": on_open,
        "socket.connect": on_connect,
        "socket.sendto": on_connect,
        "socket.sendmsg": on_connect,
        "socket.bind": on_bind,
        "socket.getaddrinfo": on_lookup,
        "socket.gethostbyname": on_lookup,
        "socket.gethostbyaddr": on_lookup,
        "subprocess.Popen": on_process,
        "os.exec": on_process,
        "os.posix_spawn": on_process,
        "os.spawn": on_process,
        "os.system": on_system,
        "os.fork": on_fork,
        "os.forkpty": on_fork,
        "compile": on_compile,
        "exec": on_exec,
        "code.__new__": on_code,
        "marshal.loads": on_marshal,
        "ctypes.dlopen": on_native,
        "ctypes.dlsym": on_symbol,
    }

    def environment_read(self, name: str, via: str = "") -> None:
        if getattr(self.local, "busy", False):
            return
        self.local.busy = True
        try:
            frame = self.direct_caller(_getframe(1), skip=ENVIRON_CODE)  # past the harness's wrappers
            if frame is not None:
                self.record("environment", name, frame, key=f"{via}:{name}", **({"via": via} if via else {}))
        finally:
            self.local.busy = False

    # What the hook's judgement rests on: a plugin that rewrites any of it (``plugin_root =
    # "/nowhere/"``, its handlers) blinds the hook to its own frames.
    STATE = ("plugin_root", "implicit", "third_party", "installed", "sources", "generators", "unmarshallers",
             "base", "canary", "self_check", "self_check_file", "main_thread", "out", "HANDLERS", "hook")  # fmt: skip

    def run(self) -> None:
        record_environment(self.environment_read)
        os.register_at_fork(after_in_child=self.in_child)
        names = self.STATE

        def state(names=names, getattr=getattr, dict=dict, tuple=tuple, isinstance=isinstance) -> tuple:
            values = (getattr(self, name, None) for name in names)
            return tuple(tuple(value.items()) if isinstance(value, dict) else value for value in values)

        expected = state()  # locals of this frame: out of the plugin's reach
        check, out, nonce = self.self_check, self.out, str(self.config.get("canary", ""))
        sys.addaudithook(self.hook)
        try:
            self.phase = "site"
            enable_site()
            self.phase = "import"
            entry = load_entrypoint(self.config)
            self.phase = "exercise"
            if self.benchmark:
                load_callable(self.benchmark)()
            del entry
        except BaseException as exc:  # whatever the plugin raised is the finding
            self.crashed(exc)
        if self.forked:  # a copy of the plugin made by os.fork(): the parent reports
            os._exit(0)
        changed = [name for name, now, then in zip(names, state(), expected, strict=True) if now != then]
        try:  # noqa: SIM105 - a missing record says it failed
            exec(check, {"__name__": "warden_self_check"})  # noqa: S102 - the harness's own code
        except BaseException:  # noqa: S110
            pass
        emit(out, {"type": "canary", "nonce": "state:" + nonce, "changed": changed})
        try:  # noqa: SIM105 - the end-of-run check: the hook reports this open, the tracer sees it (tracer.py)
            os.close(os.open(self.canary, os.O_RDONLY))
        except OSError:
            pass
        end(self.config, self.out, {"type": "result", "phase": "done", **usage()})
        self.finish()

    def in_child(self) -> None:
        self.forked = True

    def crashed(self, exc: BaseException) -> None:
        if self.forked:  # a forked copy of the plugin: the parent reports
            os._exit(0)
        tb = exc.__traceback__
        frame = None
        while tb is not None:
            if self.origin(tb.tb_frame.f_code.co_filename) == "plugin":
                frame = tb.tb_frame
                line = tb.tb_lineno
            tb = tb.tb_next
        where = {**self.where(frame), "line": line} if frame is not None else {}
        emit(
            self.out,
            {
                "type": "crash",
                "phase": self.phase,
                "exception": type(exc).__name__,
                "errno": getattr(exc, "errno", None),
                "message": str(exc)[:500],
                "where": where,
            },
        )

    def finish(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # no atexit handlers of the plugin's


def plugin_sources(plugin_root: str) -> frozenset[str]:
    """The plugin's ``*.py`` files, as eligibility and the scanners read them (real paths)."""
    found: set[str] = set()
    for directory, _, files in os.walk(plugin_root):
        found.update(os.path.realpath(os.path.join(directory, name)) for name in files if name.endswith(".py"))
    return frozenset(found)


def generator_code() -> frozenset:
    """The standard library's code that compiles source it builds from validated names, not
    from the plugin's strings: dataclasses' methods, namedtuple's ``__new__``, ``ast.parse``;
    and ``site`` running the ``import`` lines of the dependencies' ``.pth`` files (code of the
    installed environment, like its modules). Captured before the plugin's first line (its
    code objects, not their names; ``-S``: importing ``site`` runs nothing)."""
    import ast
    import collections
    import dataclasses
    import site

    generators = (dataclasses._create_fn, collections.namedtuple, ast.parse, site.addpackage)  # type: ignore[attr-defined]
    return frozenset(function.__code__ for function in generators)


def unmarshal_code() -> frozenset:
    """The import system's code that reads bytecode files (``marshal.loads``)."""
    import zipimport

    external = sys.modules["_frozen_importlib_external"]
    return frozenset((external._compile_bytecode.__code__, zipimport._unmarshal_code.__code__))  # type: ignore[attr-defined]


# Run at the end from a file under the real plugin root, through the live handlers: each must
# record its event (behaviour.py checks), or the hook was blinded (its state changed, its
# handlers removed, its busy flag set ...). sys.audit raises the events without doing anything.
SELF_CHECK_FILE = ".warden-self-check-"
SELF_CHECK = """
import os, sys
sys.audit("open", "/proc/warden-self-check-NONCE/file", "r", 0)
sys.audit("socket.connect", None, ("warden-self-check-NONCE.invalid", 9))
sys.audit("socket.getaddrinfo", "warden-self-check-NONCE.invalid", 10, 0, 0, 0)
sys.audit("subprocess.Popen", "warden-self-check", ["warden-self-check", "NONCE"], None, None)
sys.audit("compile", "warden-self-check NONCE", "<warden-self-check>")
os.environ.get("WARDEN_SELF_CHECK_NONCE")
"""


ENVIRON_CODE = ("/os.py", "_collections_abc.py", "<frozen _collections_abc>", "<frozen os>")


def record_environment(on_read) -> None:
    """Every way to the environment in Python reports its reads: ``os.environ`` and
    ``os.environb`` are wrapped, and the mapping under both (``posix.environ``, their ``_data``)
    is replaced by one that reports reads made on it directly. There is no audit event for them."""
    import posix

    raw = RawEnvironment(posix.environ, on_read)
    posix.environ = raw  # type: ignore[assignment]
    os.environ._data = raw  # type: ignore[attr-defined]
    os.environb._data = raw  # type: ignore[attr-defined]
    os.environ = recording_environ(os.environ, on_read)  # noqa: B003 - same contents, recorded
    os.environb = recording_environ(os.environb, on_read)


def _name(key) -> str:
    return os.fsdecode(key) if isinstance(key, bytes) else str(key)


class RawEnvironment:
    """The bytes mapping under ``os.environ``; a read made on it from outside ``os`` is the
    plugin going around ``os.environ`` (``posix.environ``, ``os.environ._data``)."""

    def __init__(self, data: dict, on_read) -> None:
        self.__data, self.__on_read = dict(data), on_read

    def _read(self, name: str) -> None:
        caller = _getframe(2).f_code.co_filename
        if not caller.endswith(ENVIRON_CODE) and caller != HARNESS:
            self.__on_read(name, "posix.environ")

    def __getitem__(self, key):
        self._read(_name(key))
        return self.__data[key]

    def get(self, key, default=None):
        self._read(_name(key))
        return self.__data.get(key, default)

    def __contains__(self, key):
        self._read(_name(key))
        return key in self.__data

    def __iter__(self):
        self._read("*")
        return iter(list(self.__data))

    def keys(self):
        self._read("*")
        return list(self.__data)

    def items(self):
        self._read("*")
        return list(self.__data.items())

    def values(self):
        self._read("*")
        return list(self.__data.values())

    def copy(self):
        self._read("*")
        return dict(self.__data)

    def __repr__(self):
        self._read("*")
        return repr(self.__data)

    def __len__(self):
        return len(self.__data)

    def __setitem__(self, key, value):
        self.__data[key] = value

    def __delitem__(self, key):
        del self.__data[key]


def recording_environ(environ, on_read):
    """``os.environ`` (or ``os.environb``) that reports each read to ``on_read``."""
    base = type(environ)

    class RecordingEnviron(base):  # type: ignore[misc, valid-type]
        def __getitem__(self, key):
            on_read(_name(key))
            return super().__getitem__(key)

        def __contains__(self, key):
            on_read(_name(key))
            return super().__contains__(key)

        def __iter__(self):
            on_read("*")
            return super().__iter__()

    wrapped = RecordingEnviron.__new__(RecordingEnviron)
    wrapped.__dict__.update(environ.__dict__)
    return wrapped


if __name__ == "__main__":
    main()
