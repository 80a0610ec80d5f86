"""Property tests (hypothesis) of what a plugin's author controls: the manifest, the archive and
every report format. Whatever the bytes, the answer is a value or the refusal each documents
(ValidationFailed, ReportError), never another exception (a 500); and a refused upload or
report writes nothing (no row, no file).
"""

import contextlib
import io
import json
import tarfile
import tempfile
import zipfile
from pathlib import Path

import hypothesis.configuration
import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.errors import WardenError
from reviews.findings_data import ReportError
from reviews.importers import parse_report, stream_report
from reviews.models import CheckRun, Finding
from reviews.reports import FORMATS, report_attach
from submissions import services as sub
from submissions.intake import inspect_artifact
from submissions.manifest import parse_manifest
from submissions.models import PluginVersion

pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")  # hostile zips repeat names
hypothesis.configuration.set_hypothesis_home_dir(tempfile.mkdtemp(prefix="warden-hypothesis-"))
REPORTS = Path(__file__).resolve().parent / "fixtures" / "reports"
REAL = {
    "sarif": REPORTS / "bandit.sarif",
    "cyclonedx": REPORTS / "cyclonedx-env-1.6.json",
    "pip-audit": REPORTS / "pip-audit-requests.json",
    "performance": REPORTS / "performance.json",
}
FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None)
# Database examples share the test's transaction: each compares the rows before and after itself.
SLOW = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=25,
)


def mutated(document, choices: list, replacement):
    """The document with the subtree at a path (picked by ``choices``) replaced."""
    if not choices or not isinstance(document, dict | list) or not document:
        return replacement
    keys = list(document) if isinstance(document, dict) else list(range(len(document)))
    key = keys[choices[0] % len(keys)]
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[key] = mutated(document[key], choices[1:], replacement)
    return copy


@FAST
@given(st.binary(max_size=400))
def test_any_bytes_as_a_manifest_are_a_manifest_or_its_refusal(raw):
    try:
        outcome = type(parse_manifest(raw)).__name__
    except WardenError as refused:
        outcome = refused.code
    assert outcome in ("dict", "invalid_manifest")


@FAST
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_any_toml_table_is_a_manifest_or_its_refusal(table):
    text = "\n".join(f"{json.dumps(key)} = {json.dumps(value)}" for key, value in table.items())
    try:
        outcome = type(parse_manifest(text.encode("utf-8", "surrogatepass"))).__name__
    except WardenError as refused:
        outcome = refused.code
    assert outcome in ("dict", "invalid_manifest")


@FAST
@given(st.binary(max_size=600), st.sampled_from(["p.zip", "p.tar.gz", "p.whl", "p.tgz"]))
def test_any_bytes_as_an_archive_are_its_facts_or_a_refusal(raw, name):
    with contextlib.suppress(WardenError):
        inspect_artifact(io.BytesIO(raw), name)


member_names = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40
) | st.sampled_from(
    ["../x.py", "/etc/passwd", "a/../../b", "plugin.toml", "a//b", "a\\..\\b", "CON", ".", "a/", "caf\udce9.py"]
)


def zip_of(members: list[tuple[str, bytes]]) -> io.BytesIO:
    """A zip of the members (duplicates too); a name zip cannot encode (a lone surrogate) is
    written with U+FFFD in its place (tar's test keeps it), and one zip cannot hold at all (empty
    before a NUL) as ``_``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            # zipfile cuts a name at NUL, and cannot write an empty one
            archive.writestr(name.encode("utf-8", "replace").decode().split("\x00")[0] or "_", data)
    buffer.seek(0)
    return buffer


@FAST
@given(st.lists(st.tuples(member_names, st.binary(max_size=60)), max_size=6), st.booleans())
def test_any_members_in_a_zip_or_a_tar_are_its_facts_or_a_refusal(members, as_tar):
    if as_tar:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        buffer.seek(0)
    else:
        buffer = zip_of(members)
    with contextlib.suppress(WardenError):
        inspect_artifact(buffer, "p.tar.gz" if as_tar else "p.zip")


@FAST
@given(st.sampled_from(FORMATS), st.binary(max_size=400))
def test_any_bytes_as_a_report_are_a_report_or_a_report_error(format, raw):
    with contextlib.suppress(ReportError):
        parse_report(format, raw)


@FAST
@given(st.sampled_from(FORMATS), st.lists(st.integers(0, 50), max_size=6), json_values)
def test_a_real_report_with_any_part_replaced_is_a_report_or_a_report_error(format, path, replacement):
    document = mutated(json.loads(REAL[format].read_bytes()), path, replacement)
    with contextlib.suppress(ReportError):
        parse_report(format, json.dumps(document).encode())


def read_both(content: bytes):
    """What parsing a SARIF log whole and streaming it from a file read (or the refusal)."""
    outcomes = []
    for read in (parse_report, streamed):
        try:
            outcomes.append(read("sarif", content))
        except ReportError:
            outcomes.append(ReportError)
    return outcomes


def streamed(format: str, content: bytes):
    report = stream_report(format, io.BytesIO(content))
    findings = list(report.findings)
    return (report.report.tool, findings)


@FAST
@given(st.binary(max_size=400))
def test_any_bytes_streamed_are_a_report_or_a_report_error(raw):
    with contextlib.suppress(ReportError):
        streamed("sarif", raw)


@FAST
@given(st.lists(st.integers(0, 50), max_size=6), json_values)
def test_a_real_log_with_any_part_replaced_streams_as_it_parses(path, replacement):
    document = mutated(json.loads(REAL["sarif"].read_bytes()), path, replacement)
    whole, stream = read_both(json.dumps(document).encode())
    if whole is ReportError or stream is ReportError:
        assert whole is stream
    else:
        assert (whole.tool, whole.findings) == stream


@pytest.mark.django_db
@SLOW
@given(
    format=st.sampled_from(FORMATS),
    path=st.lists(st.integers(0, 50), max_size=5),
    replacement=json_values,
)
def test_a_refused_report_writes_nothing(in_review, author, format, path, replacement):
    document = mutated(json.loads(REAL[format].read_bytes()), path, replacement)
    runs, findings = CheckRun.objects.count(), Finding.objects.count()
    try:
        report_attach(version=in_review, format=format, content=json.dumps(document).encode(), actor=author)
    except WardenError:
        assert (CheckRun.objects.count(), Finding.objects.count()) == (runs, findings)


@pytest.mark.django_db
@SLOW
@given(members=st.lists(st.tuples(member_names, st.binary(max_size=40)), max_size=5))
def test_a_refused_upload_writes_nothing(plugin, author, members):
    buffer = zip_of(members)
    stored = set(Path(django_settings.MEDIA_ROOT).rglob("*"))
    versions = PluginVersion.objects.count()
    try:
        sub.version_create(plugin=plugin, artifact=SimpleUploadedFile("p.zip", buffer.getvalue()), actor=author)
    except WardenError:
        assert PluginVersion.objects.count() == versions
        assert set(Path(django_settings.MEDIA_ROOT).rglob("*")) == stored
