"""PostHog's own tests of the project-wide generated SDK wrappers, carried over.

``GET event_definitions/typescript/`` and ``/python/`` answer
``{content, event_count, schema_hash, generator_version}`` as PostHog's
``test_event_definition_typescript.py`` and ``test_event_definition_python.py``
assert. As in PostHog's tests the generated code is checked by the real
tools: mypy against the real ``posthog`` SDK, tsc against ``posthog-js``
(installed from npm into a temporary directory; skipped without npm).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, Project
from tests.test_event_schemas import attach, base, define, group, prop


def once_per_run(backend: str) -> None:
    """The generated module does not depend on the store: the slow tool checks run on the first back end only."""
    if backend != BACKENDS[0]:
        pytest.skip(f"checked with the real tools on {BACKENDS[0]}")


async def generated(client: httpx.AsyncClient, project: Project, language: str) -> dict[str, Any]:
    r = await client.get(f"{base(project)}/event_definitions/{language}/", headers=project.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"content", "event_count", "schema_hash", "generator_version"}
    return body  # type: ignore[no-any-return]


async def typed_event(client: httpx.AsyncClient, project: Project, event: str, properties: list[dict[str, Any]]) -> None:
    d = await define(client, project, event)
    g = await group(client, project, f"{event} properties", properties)
    await attach(client, project, d["id"], g["id"])


async def python_fixture(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_event_definition_python.py::TestPythonGeneratorAPI.setUp"""
    await typed_event(
        client,
        project,
        "file_downloaded",
        [prop("file_name"), prop("file_size", "Numeric"), prop("downloaded_at", "DateTime"), prop("file_extension", required=False)],
    )
    await typed_event(client, project, "user_signed_up", [prop("email"), prop("plan")])


async def test_python_endpoint_success_and_system_events(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_event_definition_python.py::test_python_endpoint_success and
    ::test_python_endpoint_excludes_non_whitelisted_system_events"""
    await python_fixture(client, project)
    await define(client, project, "$autocapture")
    await define(client, project, "$pageview")
    body = await generated(client, project, "python")
    code = body["content"]
    assert "from posthog import Posthog" in code and "class PosthogTyped(Posthog):" in code
    assert "def capture_file_downloaded(" in code and "def capture_user_signed_up(" in code
    assert "capture_autocapture" not in code and "def capture_pageview(" in code
    assert body["event_count"] == 3


async def test_python_endpoint_handles_no_events(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_event_definition_python.py::test_python_endpoint_handles_no_events and
    ::test_full_generation_empty_output"""
    body = await generated(client, project, "python")
    assert body["event_count"] == 0
    code = body["content"]
    assert "GENERATED FILE - DO NOT EDIT" in code and "from datetime import datetime" not in code
    assert "class PosthogTyped(Posthog):" in code and code.rstrip().endswith("pass")
    compile(code, "posthog_typed.py", "exec")


async def test_schema_hash_is_deterministic_and_follows_the_schemas(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_event_definition_python.py::test_python_schema_hash_is_deterministic; the hash
    changes when a schema does, and differs per language."""
    await python_fixture(client, project)
    first, again = [await generated(client, project, "python") for _ in range(2)]
    assert first["schema_hash"] == again["schema_hash"] and len(first["schema_hash"]) == 32
    assert (await generated(client, project, "typescript"))["schema_hash"] != first["schema_hash"]
    await typed_event(client, project, "late", [prop("x", "Boolean")])
    assert (await generated(client, project, "python"))["schema_hash"] != first["schema_hash"]


async def test_full_generation_output(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_event_definition_python.py::test_full_generation_output and
    ::test_generate_capture_method_with_mixed_properties: required then optional keyword
    arguments, sorted by property name, colliding names numbered, quotes escaped."""
    await typed_event(
        client,
        project,
        'simple_"event',
        [
            prop("user_id"),
            prop("c'ount", "Numeric", required=False),
            prop("file-name"),
            prop("file_name", "Object"),
            prop("created_at", "DateTime", required=False),
            prop("class", required=False),
        ],
    )
    code = (await generated(client, project, "python"))["content"]
    assert "from datetime import datetime" in code
    expected = '''    def capture_simple_event(
        self,
        *,
        # Required event properties
        file_name: str,
        file_name_2: Dict[str, Any],
        user_id: str,
        # Optional event properties
        c_ount: Optional[float] = None,
        class_: Optional[str] = None,
        created_at: Optional[datetime] = None,
        # Additional untyped properties
        extra_properties: Optional[Dict[str, Any]] = None,
        # SDK kwargs (distinct_id, timestamp, etc.)
        **kwargs: Unpack[OptionalCaptureArgs],
    ) -> Optional[str]:
        """Capture a `simple_\\"event` event with type-safe properties."""
        properties: Dict[str, Any] = {"file-name": file_name, "file_name": file_name_2, "user_id": user_id}
        if c_ount is not None:
            properties["c'ount"] = c_ount
        if class_ is not None:
            properties["class"] = class_
        if created_at is not None:
            properties["created_at"] = created_at
        if extra_properties is not None:
            properties.update(extra_properties)
        return self.capture("simple_\\"event", properties=properties, **kwargs)
'''
    assert expected in code, code


@pytest.mark.parametrize(
    ("event", "method"),
    [
        ("downloaded_file", "capture_downloaded_file"),
        ("user-signed-up", "capture_user_signed_up"),
        ("$pageview", "capture_pageview"),
        ("API-Request", "capture_api_request"),
        ("___test___", "capture_test"),
        ("123_start", "capture_event_123_start"),
        ("dashboard mode toggled", "capture_dashboard_mode_toggled"),
    ],
)
async def test_to_method_name(client: httpx.AsyncClient, project: Project, event: str, method: str) -> None:
    """PostHog test_event_definition_python.py::test_to_method_name, through the API."""
    await define(client, project, event)
    code = (await generated(client, project, "python"))["content"]
    assert f"    def {method}(" in code


async def test_method_name_clash_is_numbered(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_event_definition_python.py::test_generate_capture_method_with_method_name_clash"""
    await define(client, project, "file_downloaded")
    await define(client, project, "file-downloaded")
    code = (await generated(client, project, "python"))["content"]
    assert '    def capture_file_downloaded(' in code and '    def capture_file_downloaded_2(' in code
    assert 'return self.capture("file-downloaded", properties=extra_properties, **kwargs)' in code


MYPY_CASES = {
    "full_event_with_all_properties": (
        'client.capture_file_downloaded(file_name="document.pdf", file_size=1024.0, downloaded_at=datetime.now(), file_extension="pdf", distinct_id="user_123")',
        None,
    ),
    "event_with_only_required_properties": ('client.capture_user_signed_up(email="user@example.com", plan="free", distinct_id="user_456")', None),
    "distinct_id_is_optional": ('client.capture_file_downloaded(file_name="document.pdf", file_size=1024.0, downloaded_at=datetime.now())', None),
    "missing_required_property_file_size": (
        'client.capture_file_downloaded(file_name="document.pdf", downloaded_at=datetime.now(), distinct_id="user_123")',
        'Missing named argument "file_size"',
    ),
    "wrong_type_string_instead_of_float": (
        'client.capture_file_downloaded(file_name="document.pdf", file_size="not a number", downloaded_at=datetime.now())',
        'Argument "file_size" to "capture_file_downloaded"',
    ),
    "extra_properties_allowed": (
        'client.capture_file_downloaded(file_name="a", file_size=1.0, downloaded_at=datetime.now(), extra_properties={"custom_field": "x", "another": 123})',
        None,
    ),
}


async def test_python_code_type_checks(client: httpx.AsyncClient, project: Project, tmp_path: Path, backend: str) -> None:
    """PostHog test_event_definition_python.py::test_python_code_type_checks: mypy, with the real
    posthog SDK, passes and fails the same calls; special characters included."""
    once_per_run(backend)
    pytest.importorskip("posthog", reason="the posthog SDK is a test dependency")
    pytest.importorskip("mypy", reason="mypy is a test dependency")
    await python_fixture(client, project)
    await typed_event(client, project, "user'event\"with\\quotes", [prop("prop'with\"quotes")])
    code = (await generated(client, project, "python"))["content"]
    (tmp_path / "posthog_typed.py").write_text(code)
    for name, (call, _) in MYPY_CASES.items():
        source = f'from datetime import datetime\nfrom posthog_typed import PosthogTyped\nclient = PosthogTyped("fake_key", host="http://localhost")\n{call}\n'
        (tmp_path / f"case_{name}.py").write_text(source)
    # One mypy run over every case; each case's file gets only its own errors.
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--python-version", "3.11", *(f"case_{name}.py" for name in MYPY_CASES)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    reported = {name: [line for line in done.stdout.splitlines() if line.startswith(f"case_{name}.py:")] for name in MYPY_CASES}
    failures = [f"{name} should pass: {lines}" for name, lines in reported.items() if MYPY_CASES[name][1] is None and lines]
    failures += [
        f"{name} should fail with {MYPY_CASES[name][1]!r}: {lines}"
        for name, lines in reported.items()
        if MYPY_CASES[name][1] is not None and not any(MYPY_CASES[name][1] in line for line in lines)  # type: ignore[operator]
    ]
    assert not failures and "posthog_typed.py:" not in done.stdout, "\n".join(failures) + "\n" + done.stdout + "\n" + code
    # And it runs: the methods hand the SDK the properties by their own names.
    sent: list[tuple[str, dict[str, Any]]] = []
    namespace: dict[str, Any] = {}
    exec(compile(code, "posthog_typed.py", "exec"), namespace)  # noqa: S102 - our own generated code
    typed = namespace["PosthogTyped"]("fake_key", host="http://localhost", disabled=True)
    typed.capture = lambda event, properties=None, **kwargs: sent.append((event, properties))
    typed.capture_user_signed_up(email="a@b.c", plan="free", extra_properties={"x": 1})
    assert sent == [("user_signed_up", {"email": "a@b.c", "plan": "free", "x": 1})]


TS_SETUP = [
    ("test_event", [prop("required_field", "Numeric", description="A required numeric field"), prop("optional_field", required=False)]),
    ("optional_event", [prop("optional_only", required=False)]),
    ("untyped_event", None),
    ("a'a\\'b\"c>?>%}}%%>c<[[?${{%}}cake'", [prop("prop'with\\'quotes\"\\slash")]),
    ("typed_super", [prop("always_required"), prop("super_prop", is_optional_in_types=True), prop("anything", "Any")]),
]

TS_USAGE = """
import posthog, { EventName } from './posthog-typed'

posthog.capture('test_event', { required_field: 123, optional_field: 'test', extra_property: 'allowed', nested_extra: { foo: 'bar' } })
posthog.capture('test_event', { required_field: 456 })
// @ts-expect-error missing required field
posthog.capture('test_event', { optional_field: 'test' })
// @ts-expect-error wrong type for a required field
posthog.capture('test_event', { required_field: 'string not allowed' })
posthog.capture('optional_event')
posthog.capture('optional_event', { optional_only: 'value', extra_field: 123 })
posthog.capture('untyped_event', { anything: 'goes', here: 123 })
posthog.capture('untyped_event')
posthog.capture('custom_undefined_event', { any: 'properties' })
posthog.capture('another_custom_event')
let stringVar: string = 'test_event'
// @ts-expect-error a broad string is not an event name
posthog.capture(stringVar)
let typedVar: EventName = 'test_event'
posthog.capture(typedVar, { required_field: 789 })
const constVar = 'test_event'
posthog.capture(constVar, { required_field: 999 })
posthog.captureRaw('test_event', { optional_field: 'test' })
posthog.captureRaw('test_event', { required_field: 'string is fine here' })
posthog.captureRaw(stringVar, { any: 'data' })
posthog.capture(EVENT_WITH_QUOTES, { [PROP_WITH_QUOTES]: 'value' })
posthog.capture('typed_super', { always_required: 'x', anything: [1, { a: 2 }] })
// @ts-expect-error always_required is required in the types
posthog.capture('typed_super', { super_prop: 'x', anything: 1 })
"""


async def test_typescript_content(client: httpx.AsyncClient, project: Project, tmp_path: Path, backend: str) -> None:
    """PostHog test_event_definition_typescript.py::test_typescript_allows_additional_properties (the
    generated module compiled with tsc against posthog-js, with its expected errors) and
    TestTypeScriptGeneratorOptionalInTypes (is_optional_in_types gives ``?``)."""
    for name, properties in TS_SETUP:
        if properties is None:
            await define(client, project, name)
        else:
            await typed_event(client, project, name, properties)
    body = await generated(client, project, "typescript")
    ts = body["content"]
    assert body["event_count"] == len(TS_SETUP)
    assert '"always_required": string' in ts and '"always_required"?: string' not in ts and '"super_prop"?: string' in ts
    assert '"anything": unknown' in ts
    once_per_run(backend)
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the TypeScript output was checked textually only")
    (tmp_path / "package.json").write_text('{"private": true}')
    try:
        install = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", "posthog-js@1", "typescript@5"], cwd=tmp_path, capture_output=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        pytest.skip("npm install did not finish (no network?)")
    if install.returncode != 0:
        pytest.skip(f"npm install failed (no network?): {install.stderr[-300:]!r}")
    (tmp_path / "posthog-typed.ts").write_text(ts)
    quoted = TS_SETUP[3]
    constants = f"const EVENT_WITH_QUOTES = {json.dumps(quoted[0])}\nconst PROP_WITH_QUOTES = {json.dumps(quoted[1][0]['name'])}\n"  # type: ignore[index]
    (tmp_path / "usage.ts").write_text(TS_USAGE.replace("\nposthog.capture('test_event', { required", constants + "\nposthog.capture('test_event', { required", 1))
    tsconfig = {"compilerOptions": {"target": "ES2020", "module": "ESNext", "lib": ["ES2020", "DOM"], "strict": True, "esModuleInterop": True, "skipLibCheck": True, "moduleResolution": "node", "noEmit": True}}
    (tmp_path / "tsconfig.json").write_text(json.dumps(tsconfig))
    done = subprocess.run([str(tmp_path / "node_modules" / ".bin" / "tsc"), "--project", "tsconfig.json"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + "\n" + ts
