"""Building small, valid plugin archives in memory: for the demo data and the tests."""

import io
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile

MANIFEST_TEMPLATE = """\
[plugin]
name = "{name}"
version = "{version}"
entrypoint = "{module}.plugin:Plugin"
host_api = ">=2.0,<3"
category = "{category}"
license = "MIT"

[permissions]
network = []
filesystem = ["write:/tmp"]
subprocess = false
environment = []

[data]
categories = ["usage"]
residency = ["eu"]
encryption_in_transit = true
encryption_at_rest = true
retention_days = 30

[dependencies]
requirements = []

[docs]
usage = "docs/USAGE.md"
"""

USAGE = """# {name}

Install the plugin from the host platform's catalogue, then open its settings page and
enter the endpoint it should export to. The plugin reads usage records once an hour,
batches them, and sends each batch over HTTPS. Nothing is kept after a batch is sent.
"""

PLUGIN_SOURCE = '''\
class Plugin:
    """A sample plugin that does nothing harmful."""

    def __init__(self, host=None):
        self.host = host

    def run(self, payload):
        return {"received": len(payload)}
'''


def plugin_archive(
    name: str,
    version: str,
    *,
    category: str = "data-connector",
    manifest: str | None = None,
    files: dict[str, bytes] | None = None,
) -> SimpleUploadedFile:
    """A .zip upload with plugin.toml, the plugin's module and its usage document."""
    module = name.replace("-", "_")
    contents = {
        "plugin.toml": (
            manifest or MANIFEST_TEMPLATE.format(name=name, version=version, module=module, category=category)
        ).encode(),
        f"{module}/__init__.py": b"",
        f"{module}/plugin.py": PLUGIN_SOURCE.encode(),
        "docs/USAGE.md": USAGE.format(name=name).encode(),
        **(files or {}),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in contents.items():
            archive.writestr(path, data)
    return SimpleUploadedFile(f"{name}-{version}.zip", buffer.getvalue(), content_type="application/zip")
