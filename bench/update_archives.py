"""Two zip archives shaped like a plugin update, for the diff and dossier benchmarks: ``changed``
Python modules of ``lines`` lines (a tenth of each edited in the newer one) beside ``unchanged``
untouched ones, and plugin.toml. Import after ``django.setup()``."""

import io
import zipfile

from submissions.samples import MANIFEST_TEMPLATE


def module(number: int, lines: int, edited: bool) -> bytes:
    rows = []
    for line in range(lines):
        value = f"{line * 7 % 101}" if not (edited and line % 10 == 3) else f"compute({line})"
        rows.append(f"    result_{line} = transform(payload, {value})  # step {line} of module {number}\n")
    return (f"def handler_{number}(payload):\n" + "".join(rows) + "    return payload\n").encode()


def archive(version: str, changed: int, unchanged: int, lines: int, edited: bool) -> bytes:
    manifest = MANIFEST_TEMPLATE.format(name="bench", version=version, module="bench", category="data-connector")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("plugin.toml", manifest)
        for number in range(changed):
            zipped.writestr(f"bench/changed/module_{number}.py", module(number, lines, edited))
        for number in range(unchanged):
            zipped.writestr(f"bench/stable/module_{number}.py", module(number, lines, False))
    return buffer.getvalue()
