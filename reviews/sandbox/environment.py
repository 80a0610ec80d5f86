"""The virtual environment a plugin runs with: its pinned dependencies, installed on the host
before the sandbox starts (never inside it), from wheels only so that no package's build code
runs on the worker. Environments are cached per set of requirements and made read-only in use.
"""

import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from django.conf import settings

from .records import SandboxError


def plugin_environment(*, requirements: list[str]) -> Path:
    """The environment for ``requirements`` under WARDEN_WORK_DIR/envs, built once per machine.

    Built in a temporary sibling and renamed into place, so a concurrent run never sees half an
    environment; a failed install leaves nothing behind.
    """
    wheelhouse = settings.WARDEN_SANDBOX_WHEELHOUSE
    key = hashlib.sha256(
        json.dumps([sys.version, sorted(requirements), wheelhouse, settings.WARDEN_SANDBOX_INDEX_URL]).encode()
    ).hexdigest()[:32]
    root = Path(settings.WARDEN_WORK_DIR) / "envs"
    target = root / key
    if (target / "pyvenv.cfg").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=root))
    try:
        scratch.chmod(0o755)
        venv.EnvBuilder(symlinks=True, with_pip=False, clear=True).create(scratch)
        if requirements:
            _install(scratch, requirements, wheelhouse)
        with contextlib.suppress(OSError):  # another worker won the race; its environment is identical
            scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _install(environment: Path, requirements: list[str], wheelhouse: str) -> None:
    source = ["--no-index", "--find-links", wheelhouse] if wheelhouse else []
    if settings.WARDEN_SANDBOX_INDEX_URL and not wheelhouse:
        source = ["--index-url", settings.WARDEN_SANDBOX_INDEX_URL]
    argv = [
        sys.executable, "-m", "pip", "--python", str(environment / "bin" / "python"),
        "install", "--quiet", "--no-input", "--disable-pip-version-check", "--no-compile",
        "--only-binary", ":all:", *source, "--", *requirements,
    ]  # fmt: skip
    try:
        done = subprocess.run(  # noqa: S603 - requirements are validated PEP 508 pins, after "--"
            argv, capture_output=True, timeout=settings.WARDEN_SANDBOX_INSTALL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"Installing the plugin's dependencies took over {exc.timeout} seconds.") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise SandboxError(
            "The plugin's dependencies could not be installed (wheels only): " + " ".join(message)[:1000]
        )
