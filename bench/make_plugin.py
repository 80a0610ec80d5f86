"""Generate a realistic plugin of about 5,000 lines for benchmarking the scanners.

The package looks like a data connector: API client, models, transforms, validators, exporters,
spread over ~25 modules of classes, dataclasses and functions, with a handful of the patterns bandit
and GuardDog exist for (shell=True, yaml.load, pickle, md5, base64 exec, an undeclared POST, a
secret read from the environment), so the scanners do their full work including reporting.

    .venv/bin/python bench/make_plugin.py /tmp/bench-plugin      # writes the plugin there
"""

import random
import sys
import textwrap
from pathlib import Path

MANIFEST = """\
[plugin]
name = "acme-ledger"
version = "2.3.1"
entrypoint = "acme_ledger.plugin:Plugin"
host_api = ">=2.0,<3"
category = "data-connector"
license = "MIT"

[permissions]
network = ["api.acme.example:443"]
filesystem = ["read:/data/exports", "write:/tmp"]
subprocess = false
environment = ["ACME_TOKEN"]

[data]
categories = ["usage"]
residency = ["eu"]
encryption_in_transit = true
encryption_at_rest = true
retention_days = 30

[dependencies]
requirements = ["requests==2.31.0", "pyyaml==6.0.1"]

[docs]
usage = "docs/USAGE.md"
"""

USAGE = """# ACME ledger connector

Install the connector from the platform catalogue, enter the ledger endpoint and an API token on its
settings page, and choose how often it synchronises. It reads invoices, payments and refunds, checks
them against the ledger, and exports a reconciliation report once a day.
"""

DOMAINS = ("invoice", "customer", "ledger", "payment", "account", "refund", "order", "shipment", "tax", "report")
VERBS = ("load", "parse", "normalise", "validate", "merge", "summarise", "export", "reconcile", "split", "rank")

# One bad pattern each, placed into a few modules (module index -> source lines).
BAD_PATTERNS = {
    2: "def run_hook(command):\n    import subprocess\n\n    return subprocess.call(command, shell=True)\n",
    5: "def read_settings(text):\n    import yaml\n\n    return yaml.load(text)\n",
    8: "def restore(blob):\n    import pickle\n\n    return pickle.loads(blob)\n",
    11: "def digest(data):\n    import hashlib\n\n    return hashlib.md5(data).hexdigest()\n",
    14: 'def bootstrap():\n    import base64\n\n    exec(base64.b64decode("cHJpbnQoJ2hpJyk="))\n',
    17: (
        "def report_usage(payload):\n    import requests\n\n"
        '    return requests.post("https://telemetry.acme-ledger.example/v1", json=payload, timeout=5)\n'
    ),
    20: 'def credentials():\n    import os\n\n    return os.environ["ACME_SECRET_KEY"]\n',
}


def make_plugin(root: Path, *, lines: int = 5000, modules: int = 25, seed: int = 7) -> Path:
    """Write the plugin under ``root`` and return ``root``; the same seed gives the same files."""
    rng = random.Random(seed)
    package = root / "acme_ledger"
    package.mkdir(parents=True, exist_ok=True)
    (root / "plugin.toml").write_text(MANIFEST)
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "USAGE.md").write_text(USAGE)
    (package / "__init__.py").write_text('"""ACME ledger connector."""\n\n__version__ = "2.3.1"\n')
    (package / "plugin.py").write_text(_plugin_module())
    per_module = max(lines // modules, 40)
    for index in range(modules - 1):
        domain = DOMAINS[index % len(DOMAINS)]
        (package / f"{domain}_{index:02d}.py").write_text(_module(rng, domain, index, per_module))
    return root


def _plugin_module() -> str:
    return textwrap.dedent(
        '''\
        """Entry point the host loads."""

        from acme_ledger import invoice_00


        class Plugin:
            def __init__(self, host=None):
                self.host = host

            def run(self, payload):
                return invoice_00.process_invoice(payload)
        '''
    )


def _module(rng: random.Random, domain: str, index: int, target: int) -> str:
    parts = [_header(domain, index)]
    if index in BAD_PATTERNS:
        parts.append(BAD_PATTERNS[index])
    parts.append(_dataclass(domain))
    parts.append(_process_function(domain))
    while sum(part.count("\n") + 2 for part in parts) < target:
        parts.append(_function(rng, domain) if rng.random() < 0.6 else _class(rng, domain))
    return "\n\n".join(parts)


def _header(domain: str, index: int) -> str:
    return textwrap.dedent(
        f'''\
        """{domain.title()} handling for the ACME ledger connector (module {index})."""

        import datetime as dt
        import json
        import logging
        from dataclasses import dataclass, field
        from decimal import Decimal

        log = logging.getLogger(__name__)
        '''
    )


def _dataclass(domain: str) -> str:
    name = domain.title()
    return textwrap.dedent(
        f'''\
        @dataclass
        class {name}Record:
            """One {domain} as the ACME API returns it."""

            id: str
            amount: Decimal = Decimal("0")
            currency: str = "EUR"
            created: dt.datetime | None = None
            tags: list[str] = field(default_factory=list)

            def to_json(self) -> str:
                return json.dumps({{"id": self.id, "amount": str(self.amount), "currency": self.currency}})
        '''
    )


def _process_function(domain: str) -> str:
    return textwrap.dedent(
        f'''\
        def process_{domain}(payload: dict) -> dict:
            """Validate and summarise one {domain} payload."""
            records = [{domain.title()}Record(id=str(item.get("id")), amount=Decimal(str(item.get("amount", 0))))
                       for item in payload.get("items", [])]
            total = sum((record.amount for record in records), Decimal("0"))
            log.info("processed %d {domain} records", len(records))
            return {{"count": len(records), "total": str(total)}}
        '''
    )


def _function(rng: random.Random, domain: str) -> str:
    verb = rng.choice(VERBS)
    name = f"{verb}_{domain}_{rng.randrange(10_000)}"
    threshold = rng.randrange(1, 500)
    return textwrap.dedent(
        f'''\
        def {name}(rows: list[dict], *, limit: int = {threshold}) -> list[dict]:
            """{verb.title()} {domain} rows: drop incomplete ones and cap the amounts."""
            kept = []
            for row in rows:
                if not row.get("id") or row.get("status") == "void":
                    log.debug("skipping %s", row.get("id"))
                    continue
                amount = Decimal(str(row.get("amount", 0)))
                if amount > limit:
                    amount = Decimal(limit)
                kept.append({{**row, "amount": str(amount), "seen": dt.datetime.now(dt.UTC).isoformat()}})
            kept.sort(key=lambda row: (row.get("currency", ""), row["id"]))
            return kept
        '''
    )


def _class(rng: random.Random, domain: str) -> str:
    name = f"{domain.title()}{rng.choice(('Cache', 'Index', 'Batch', 'Window', 'Ledger'))}{rng.randrange(1000)}"
    size = rng.randrange(16, 4096)
    return textwrap.dedent(
        f'''\
        class {name}:
            """Keeps at most {size} {domain} entries, oldest evicted first."""

            def __init__(self, size: int = {size}):
                self.size = size
                self.entries: dict[str, dict] = {{}}

            def add(self, key: str, value: dict) -> None:
                if len(self.entries) >= self.size:
                    oldest = next(iter(self.entries))
                    del self.entries[oldest]
                self.entries[key] = value

            def get(self, key: str, default: dict | None = None) -> dict | None:
                return self.entries.get(key, default)

            def totals(self) -> dict[str, Decimal]:
                sums: dict[str, Decimal] = {{}}
                for entry in self.entries.values():
                    currency = entry.get("currency", "EUR")
                    sums[currency] = sums.get(currency, Decimal("0")) + Decimal(str(entry.get("amount", 0)))
                return sums
        '''
    )


def count_lines(root: Path) -> tuple[int, int]:
    """(lines, modules) of Python in the generated plugin."""
    files = list(root.rglob("*.py"))
    return sum(path.read_text().count("\n") for path in files), len(files)


if __name__ == "__main__":
    target = make_plugin(Path(sys.argv[1] if len(sys.argv) > 1 else "bench-plugin"))
    lines, files = count_lines(target)
    print(f"{target}: {lines} lines in {files} modules")
