"""How long the diff of two revisions with 50 changed files takes, against floors measured in the same run.

    .venv/bin/python bench/bench_diff.py [--changed N] [--unchanged N] [--lines N] [--repeat R]

Two zip archives shaped like a plugin update: ``--changed`` Python modules of ``--lines`` lines,
each with a tenth of its lines edited, beside ``--unchanged`` untouched ones (and plugin.toml).
Three things are timed:

- ``revision_changes``: the file lists and manifest rows, from the two stored indexes (no archive
  is read). Floor: the bare dict comparison (key sets, then SHA-256 of the common keys).
- ``file_diffs``: every changed file's highlighted diff, reading each archive once through
  intake's checked walk (names, sizes and ratios checked, each member hashed), then difflib and
  Pygments. Floor: ``zipfile`` reading the same members without any check, and difflib alone.
- ``file_diff`` called once per changed file, as a page that asks for one diff at a time would:
  each call walks both archives again; shown to say why the pages use ``file_diffs``.

Nothing is written to the database: the revisions are unsaved rows whose archives lie in a
scratch media directory. Informational: it prints figures and ratios, it does not fail.
"""

import argparse
import difflib
import gc
import hashlib
import io
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    {"DJANGO_SETTINGS_MODULE": "config.settings.base", "WARDEN_VAR_DIR": tempfile.mkdtemp(prefix="warden-bench-")}
)

import django  # noqa: E402

django.setup()

from django.core.files.base import ContentFile  # noqa: E402
from django.core.files.storage import default_storage  # noqa: E402
from update_archives import archive  # noqa: E402

from submissions.artifact_files import index_archive  # noqa: E402
from submissions.diff import file_diff, file_diffs, revision_changes  # noqa: E402
from submissions.manifest import parse_manifest  # noqa: E402
from submissions.models import Organisation, Plugin, PluginVersion, VersionRevision  # noqa: E402


def revision(version: PluginVersion, data: bytes) -> VersionRevision:
    name = default_storage.save(f"bench/{version.version}.zip", ContentFile(data))
    with default_storage.open(name, "rb") as stored:
        files = index_archive(stored, name)
    manifest = parse_manifest(zipfile.ZipFile(io.BytesIO(data)).read("plugin.toml"))
    row = VersionRevision(
        number=1,
        artifact=name,
        artifact_name=name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        manifest=manifest,
        files=files,
    )
    row.version = version
    return row


def floor_changes(before: dict, after: dict) -> tuple[list, list, list]:
    added = [path for path in after.keys() - before.keys()]
    removed = [path for path in before.keys() - after.keys()]
    changed = [path for path in before.keys() & after.keys() if before[path]["sha256"] != after[path]["sha256"]]
    return added, removed, changed


def floor_diffs(old: bytes, new: bytes, paths: list[str]) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(old)) as a, zipfile.ZipFile(io.BytesIO(new)) as b:
        pairs = [(a.read(path).decode(), b.read(path).decode()) for path in paths]
    return ["\n".join(difflib.unified_diff(x.splitlines(), y.splitlines(), lineterm="")) for x, y in pairs]


def best_of(repeat: int, works: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best wall time of each, interleaved so all see the same machine load."""
    times: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(repeat):
        for name, work in works.items():
            gc.collect()
            started = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in times.items()}


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    options.add_argument("--changed", type=int, default=50)
    options.add_argument("--unchanged", type=int, default=450)
    options.add_argument("--lines", type=int, default=200)
    options.add_argument("--repeat", type=int, default=5)
    args = options.parse_args()
    plugin = Plugin(organisation=Organisation(name="Bench", slug="bench"), name="bench", category="data-connector")
    old_data = archive("1.0.0", args.changed, args.unchanged, args.lines, edited=False)
    new_data = archive("1.1.0", args.changed, args.unchanged, args.lines, edited=True)
    base = revision(PluginVersion(plugin=plugin, version="1.0.0"), old_data)
    head = revision(PluginVersion(plugin=plugin, version="1.1.0"), new_data)
    changes = revision_changes(base, head)
    code = [c for c in changes.changed if c.path.endswith(".py")]
    paths = [c.path for c in code]
    assert len(code) == args.changed, (len(code), args.changed)
    assert sorted(floor_changes(base.files, head.files)[2]) == sorted(c.path for c in changes.changed)
    diffs = file_diffs(base, head, code)
    assert all(d.html and not d.note for d in diffs), [d.note for d in diffs if d.note][:3]
    lines = sum(d.lines for d in diffs)

    print(
        f"archives: {len(base.files)} files each, {args.changed} changed ({args.lines} lines, a tenth edited), "
        f"{len(old_data) / 1e3:.0f} / {len(new_data) / 1e3:.0f} kB zipped; {lines:,} diff lines; best of {args.repeat}"
    )
    best = best_of(
        args.repeat,
        {
            "floor_changes": lambda: floor_changes(base.files, head.files),
            "revision_changes": lambda: revision_changes(base, head),
            "floor_diffs": lambda: floor_diffs(old_data, new_data, paths),
            "file_diffs": lambda: file_diffs(base, head, code),
            "file_diff_each": lambda: [file_diff(base, head, path) for path in paths],
        },
    )
    ms = {name: value * 1000 for name, value in best.items()}
    print(
        f"revision_changes  {ms['revision_changes']:8.2f} ms | floor (dict comparison) {ms['floor_changes']:8.2f} ms"
        f" | ratio {best['revision_changes'] / best['floor_changes']:5.1f}x"
    )
    print(
        f"file_diffs        {ms['file_diffs']:8.1f} ms | floor (zipfile + difflib) {ms['floor_diffs']:6.1f} ms"
        f" | ratio {best['file_diffs'] / best['floor_diffs']:5.1f}x | {ms['file_diffs'] / args.changed:.2f} ms a file"
    )
    print(
        f"file_diff x{args.changed:<4}    {ms['file_diff_each']:8.1f} ms | "
        f"{best['file_diff_each'] / best['file_diffs']:.1f}x file_diffs (each call walks both archives)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
