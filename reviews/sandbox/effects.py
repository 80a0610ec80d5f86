"""Which traced system calls are effects, and of what kind: a process executed, a file written
(or a key or credential read), a connection or datagram with its address, a socket bound or
listening, a write to the harness's report pipe, the harness's end-of-run canary opened, and
every way around the tracer itself (an evasion).
"""

import os
import re
from dataclasses import dataclass

from .harness import CANARY  # the harness opens it, and nothing else, at its end
from .strace import TOKEN, _string, _strings, _top_level

WRITES = ("write(", "writev(", "pwrite64(", "pwritev(", "pwritev2(", "sendfile(", "splice(", "tee(", "vmsplice(")
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
# The sandbox's own: its private /tmp and the fresh /dev bubblewrap makes (a tmpfs with null,
# zero, full, random, urandom, tty): writes there do not leave the sandbox.
PRIVATE = ("/tmp/", "/dev/")  # noqa: S108 - paths inside the sandbox
# Reads the tracer reconciles too (most reads are the interpreter's own and are skipped): keys,
# credentials and secrets, as the behaviour check judges them (credential-access).
SENSITIVE_READS = (
    "/.ssh/", "/.aws/", "/.gnupg/", "/.netrc", "/.docker/config.json", "/.kube/", "/.config/gcloud/",
    "/.git-credentials", "/.pgpass", "/.pypirc", "/.npmrc", "/etc/shadow", "/etc/gshadow", "/etc/sudoers",
    "/etc/ssh/", "/etc/ssl/private/", "/run/secrets/", "/var/run/secrets/", "/environ",
)  # fmt: skip
# ... outside what the sandbox reads anyway: the system, the process's own /proc (the Python
# installation is added by reconcile, the plugin's tree and its environment by its caller)
ORDINARY_READS = ("/usr/", "/proc/self/", "/proc/thread-self/")


@dataclass(frozen=True)
class Effect:
    kind: str  # exec, write, network, bind, listen, evasion, canary, report
    pid: int
    syscall: str
    target: str  # argv joined, path, host:port
    failed: bool = False
    argv: tuple[str, ...] = ()
    detail: str = ""  # exec: the program's path; a socket call: the socket's inode

    def describe(self) -> str:
        result = " (failed)" if self.failed else ""
        if self.kind == "evasion":
            return f"{self.target}{result}"
        program = f"{self.detail} " if self.kind == "exec" and self.detail else ""
        return f"{self.syscall} {program}{self.target[:200]}{result}"

    def as_record(self) -> dict:
        return {"kind": self.kind, "pid": self.pid, "syscall": self.syscall, "target": self.target[:500],
                "failed": self.failed}  # fmt: skip


def _effects(pid: int, name: str, args, result, sockets: dict[str, str], report_pipe: str = "") -> list[Effect]:
    failed = result[0]
    parts = _top_level(args[0])
    if name + "(" in WRITES:
        position = {"splice": 2, "tee": 1}.get(name, 0)  # the descriptor written to
        written = report_pipe and position < len(parts) and _string(args, parts[position]) == f"<{report_pipe}>"
        return [Effect("report", pid, name, report_pipe, failed)] if written else []
    if name in ("execve", "execveat"):
        argv = tuple(_strings(args, 2 if name == "execveat" else 1))
        path = _string(args, parts[1 if name == "execveat" else 0])
        return [Effect("exec", pid, name, " ".join(argv) or path, failed, argv=argv, detail=path)]
    if name in ("open", "openat", "openat2", "creat"):
        return _file_effect(pid, name, args, parts, failed)
    if name in ("connect", "sendto", "sendmsg", "sendmmsg", "bind"):
        inode = _socket(args, parts[0])
        effects = []
        for address in _addresses(args, parts[1:]):
            if name == "bind":
                sockets[inode] = address
            effects.append(Effect("bind" if name == "bind" else "network", pid, name, address, failed, detail=inode))
        return effects
    if name == "listen":
        inode = _socket(args, parts[0])
        return [Effect("listen", pid, name, sockets.get(inode, f"socket {inode}"), failed, detail=inode)]
    return _evasion(pid, name, args, parts, failed)


def _evasion(pid: int, name: str, args, parts: list[str], failed: bool) -> list[Effect]:
    text = TOKEN.sub("", args[0])
    if name == "seccomp" and not parts[0].startswith("SECCOMP_GET"):
        return [Effect("evasion", pid, name, f"seccomp({parts[0]}): a filter of its own can hide calls", failed)]
    if name == "prctl" and parts[0] == "PR_SET_SECCOMP":
        return [Effect("evasion", pid, name, "prctl(PR_SET_SECCOMP): a filter of its own can hide calls", failed)]
    if name == "io_uring_setup":
        return [Effect("evasion", pid, name, "io_uring: requests that bypass system calls", failed)]
    if name == "ptrace":
        return [Effect("evasion", pid, name, f"ptrace({parts[0]})", failed)]
    if name in ("clone", "clone3") and "CLONE_UNTRACED" in text:
        return [Effect("evasion", pid, name, f"{name}(CLONE_UNTRACED): a child hidden from the tracer", failed)]
    return []


def _file_effect(pid: int, name: str, args, parts: list[str], failed: bool) -> list[Effect]:
    if name in ("open", "creat"):
        directory, path_part, flags = "", parts[0], parts[1] if name == "open" else "O_CREAT|O_WRONLY"
    else:
        directory, path_part, flags = _string(args, parts[0]), parts[1], parts[2] if len(parts) > 2 else ""
    path = _string(args, path_part)
    if CANARY in path:
        return [Effect("canary", pid, name, path, failed)]
    if not path.startswith("/"):
        base = directory[1:-1] if directory.startswith("<") else "?"  # ? = a directory the trace cannot name
        path = f"{base}/{path}"
    if any(flag in flags for flag in WRITE_FLAGS):
        return [Effect("write", pid, name, canonical(path), failed)]
    path = canonical(path)
    return [Effect("read", pid, name, path, failed)] if sensitive(path) else []


def sensitive(path: str) -> bool:
    return any(marker in path for marker in SENSITIVE_READS) and not path.startswith(ORDINARY_READS)


def canonical(path: str) -> str:
    """Normalised, with the sandbox's top-level links (/bin -> /usr/bin ...) resolved, as the
    audit hook's ``realpath`` sees them."""
    path = os.path.normpath(path).replace("//", "/")
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if (path == top or path.startswith(top + "/")) and os.path.islink(top):
            return "/" + os.readlink(top).strip("/") + path[len(top) :]
    return path


def private(path: str, *, isolated: bool = True) -> bool:
    """Without isolation nothing is the sandbox's own: /tmp and /dev/shm are the host's."""
    if not isolated:
        return path == "/dev/null"
    return path.startswith(PRIVATE) and ".." not in path


def _socket(args, part: str) -> str:
    decoration = _string(args, part)
    return decoration.strip("<>") if decoration.startswith("<") else part.split("<")[0]


ADDRESS = {
    "AF_INET": (re.compile(r"sin_port=htons\((\d+)\)"), re.compile(r"sin_addr=inet_addr\(\x00(\d+)\x00\)")),
    "AF_INET6": (re.compile(r"sin6_port=htons\((\d+)\)"), re.compile(r"inet_pton\(AF_INET6, \x00(\d+)\x00")),
}


def _addresses(args, parts: list[str]) -> list[str]:
    """Each socket address in the arguments: ``host:port`` for IP, the path for a Unix socket.
    Netlink (the kernel's own channel, which glibc's getaddrinfo uses) and AF_UNSPEC are not
    network; a call without an address goes where its socket was connected (in the trace too)."""
    strings = args[1]
    addresses = []
    text = ", ".join(parts)
    for match in re.finditer(r"sa_family=(\w+)([^{}]*)", text):
        family, rest = match.group(1), match.group(2)
        if family in ADDRESS:
            port, host = (pattern.search(rest) for pattern in ADDRESS[family])
            if port and host:
                addresses.append(f"{strings[int(host.group(1))]}:{port.group(1)}")
        elif family == "AF_UNIX":
            path = re.search(r"sun_path=(@?)\x00(\d+)\x00", rest)
            if path:
                addresses.append(path.group(1) + strings[int(path.group(2))])
        elif family not in ("AF_NETLINK", "AF_UNSPEC"):
            addresses.append(f"{family} socket")
    return addresses
