"""Browser uploads: forms made by boto3's ``generate_presigned_post`` (its default config,
SigV2, and ``s3v4``) posted through ``authgate serve --upstream`` to moto's S3 server;
every refusal in S3's XML, and nothing refused ever stored."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.foundation.helpers import run_authgate
from tests.s3.post_support import (
    BUCKET,
    PostStack,
    post_stack,
    presigned_post,
    s3_code,
    send_form,
)
from tests.s3.support import create_access_key


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostStack]:
    with post_stack(tmp_path_factory.mktemp("post")) as built:
        yield built


def unique(prefix: str = "docs/") -> str:
    return f"{prefix}{uuid.uuid4().hex}"


@pytest.mark.parametrize("v4", [False, True], ids=["default-config-v2", "s3v4"])
def test_a_boto3_form_uploads_into_moto(stack: PostStack, v4: bool) -> None:
    client = stack.client(stack.writer, v4=v4)
    folder = unique()
    post = presigned_post(
        client,
        folder + "/${filename}",
        fields={"Content-Type": "text/plain", "x-amz-meta-owner": "ada"},
        conditions=[
            {"Content-Type": "text/plain"},
            {"x-amz-meta-owner": "ada"},
            ["content-length-range", 1, 1024],
        ],
    )
    assert ("signature" in post["fields"]) is not v4
    assert ("x-amz-signature" in post["fields"]) is v4
    response = send_form(post["url"], post["fields"], b"hello, moto", filename="note.txt")
    assert response.status_code == 204, response.text
    assert stack.stored(f"{folder}/note.txt") == b"hello, moto"
    head = stack.client(stack.admin, v4=True).head_object(Bucket=BUCKET, Key=f"{folder}/note.txt")
    assert head["ContentType"] == "text/plain"
    assert head["Metadata"] == {"owner": "ada"}


def test_success_action_status_covered_by_the_policy_is_the_answer(stack: PostStack) -> None:
    key = unique()
    post = presigned_post(
        stack.client(stack.writer),
        key,
        fields={"success_action_status": "201"},
        conditions=[{"success_action_status": "201"}],
    )
    response = send_form(post["url"], post["fields"])
    assert response.status_code == 201, response.text
    assert stack.stored(key) == b"hello"


def test_a_virtual_host_bucket_takes_the_form_at_its_root(stack: PostStack) -> None:
    key = unique()
    post = presigned_post(stack.client(stack.writer, v4=True), key)
    port = stack.url.rsplit(":", 1)[1]
    response = send_form(
        f"{stack.url}/", post["fields"], headers={"Host": f"{BUCKET}.localhost:{port}"}
    )
    assert response.status_code == 204, response.text
    assert stack.stored(key) == b"hello"


def test_fields_named_x_ignore_need_no_condition(stack: PostStack) -> None:
    key = unique()
    post = presigned_post(stack.client(stack.writer), key)
    response = send_form(post["url"], {**post["fields"], "x-ignore-tracking": "1"})
    assert response.status_code == 204, response.text


# -- refusals ---------------------------------------------------------------------------


def _tamper_policy(fields: dict[str, str]) -> dict[str, str]:
    document = json.loads(base64.b64decode(fields["policy"]))
    document["conditions"].append(["content-length-range", 0, 10**12])
    return {**fields, "policy": base64.b64encode(json.dumps(document).encode()).decode()}


def _flip_signature(fields: dict[str, str]) -> dict[str, str]:
    name = "x-amz-signature" if "x-amz-signature" in fields else "signature"
    value = fields[name]
    return {**fields, name: ("0" if value[0] != "0" else "1") + value[1:]}


REFUSALS: list[tuple[str, dict[str, Any], int, str]] = [
    # id, how the form is made and changed, status, S3 code
    ("too-large", {"conditions": [["content-length-range", 1, 3]]}, 400, "EntityTooLarge"),
    ("too-small", {"conditions": [["content-length-range", 10, 20]]}, 400, "EntityTooSmall"),
    (
        "content-type",
        {
            "fields": {"Content-Type": "image/png"},
            "conditions": [{"Content-Type": "image/png"}],
            "change": {"Content-Type": "text/html"},
        },
        403,
        "AccessDenied",
    ),
    (
        "meta",
        {
            "fields": {"x-amz-meta-owner": "ada"},
            "conditions": [{"x-amz-meta-owner": "ada"}],
            "change": {"x-amz-meta-owner": "eve"},
        },
        403,
        "AccessDenied",
    ),
    (
        "success-action-status",
        {
            "fields": {"success_action_status": "201"},
            "conditions": [{"success_action_status": "201"}],
            "change": {"success_action_status": "200"},
        },
        403,
        "AccessDenied",
    ),
    (
        "success-action-redirect",
        {
            "fields": {"success_action_redirect": "https://app.example/done"},
            "conditions": [["starts-with", "$success_action_redirect", "https://app.example/"]],
            "change": {"success_action_redirect": "https://evil.example/done"},
        },
        403,
        "AccessDenied",
    ),
    (
        "acl",
        {"fields": {"acl": "private"}, "conditions": [{"acl": "private"}]},
        403,
        "AccessDenied",
    ),
    ("field-not-in-policy", {"change": {"x-amz-meta-extra": "1"}}, 403, "AccessDenied"),
    ("acl-not-in-policy", {"change": {"acl": "public-read"}}, 403, "AccessDenied"),
    ("tampered-policy", {"edit": _tamper_policy}, 403, "SignatureDoesNotMatch"),
    ("tampered-signature", {"edit": _flip_signature}, 403, "SignatureDoesNotMatch"),
    ("expired", {"expires": -5}, 403, "AccessDenied"),
    (
        "key-escapes-starts-with",
        {"key": "docs/${filename}", "change": {"key": "etc/x"}},
        403,
        "AccessDenied",
    ),
    (
        "key-dot-segments",
        {"key": "docs/${filename}", "change": {"key": "docs/../etc/x"}},
        400,
        "InvalidArgument",
    ),
    (
        "filename-dot-segments",
        {"key": "docs/${filename}", "filename": ".."},
        400,
        "InvalidArgument",
    ),
    (
        "no-policy-signature",
        {"drop": ("signature", "x-amz-signature")},
        403,
        "SignatureDoesNotMatch",
    ),
    ("garbage-policy", {"change": {"policy": "not base64!"}}, 403, "SignatureDoesNotMatch"),
]


@pytest.mark.parametrize("v4", [False, True], ids=["v2", "v4"])
@pytest.mark.parametrize(
    ("how", "status", "code"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_every_refused_condition_is_answered_in_s3_xml_and_stores_nothing(
    stack: PostStack, v4: bool, how: dict[str, Any], status: int, code: str
) -> None:
    folder = unique()
    key = how.get("key", "docs/${filename}").replace("docs/", folder + "/")
    post = presigned_post(
        stack.client(stack.writer, v4=v4),
        key,
        fields=how.get("fields"),
        conditions=how.get("conditions"),
        expires=how.get("expires", 600),
    )
    fields: dict[str, str] = dict(post["fields"])
    if "acl" in how.get("fields", {}):
        fields["acl"] = "public-read"
    change = {
        name: value.replace("docs/", folder + "/") if name == "key" else value
        for name, value in how.get("change", {}).items()
    }
    fields.update(change)
    for name in how.get("drop", ()):
        fields.pop(name, None)
    if "edit" in how:
        fields = how["edit"](fields)
    filename = how.get("filename", "a.txt")
    response = send_form(post["url"], fields, b"hello", filename=filename)
    assert response.status_code == status, response.text
    assert s3_code(response) == code
    for stored in (f"{folder}/a.txt", f"{folder}/..", "etc/x", fields.get("key", "")):
        assert stack.stored(stored) is None


def test_the_failed_condition_is_named(stack: PostStack) -> None:
    post = presigned_post(
        stack.client(stack.writer),
        unique(),
        fields={"Content-Type": "image/png"},
        conditions=[{"Content-Type": "image/png"}],
    )
    response = send_form(post["url"], {**post["fields"], "Content-Type": "text/html"})
    assert "Policy Condition failed" in response.text
    assert "Content-Type" in response.text


def test_a_field_not_in_the_policy_is_named(stack: PostStack) -> None:
    post = presigned_post(stack.client(stack.writer), unique())
    response = send_form(post["url"], {**post["fields"], "x-amz-meta-sneaky": "1"})
    assert "Extra input fields: x-amz-meta-sneaky" in response.text


def test_a_key_without_write_is_refused(stack: PostStack) -> None:
    key = unique()
    post = presigned_post(stack.client(stack.reader), key)
    response = send_form(post["url"], post["fields"])
    assert response.status_code == 403
    assert s3_code(response) == "AccessDenied"
    assert "no write grant on bucket uploads" in response.text
    assert stack.stored(key) is None


def test_a_write_grant_on_a_pattern_admitting_the_bucket_uploads(stack: PostStack) -> None:
    key = create_access_key(stack.data_dir, "by-pattern", "upl*=write")
    object_key = unique()
    post = presigned_post(stack.client(key), object_key)
    response = send_form(post["url"], post["fields"])
    assert response.status_code == 204, response.text
    assert stack.stored(object_key) is not None


def test_a_narrower_read_grant_outranks_a_write_pattern(stack: PostStack) -> None:
    key = create_access_key(stack.data_dir, "narrowed", "*=write", f"{BUCKET}=read")
    object_key = unique()
    post = presigned_post(stack.client(key), object_key)
    response = send_form(post["url"], post["fields"])
    assert response.status_code == 403
    assert stack.stored(object_key) is None


def test_a_policy_for_one_bucket_does_not_upload_to_another(stack: PostStack) -> None:
    other = create_access_key(stack.data_dir, "two", f"{BUCKET}=write", "other-bucket=admin")
    stack.client(other, v4=True).create_bucket(Bucket="other-bucket")
    post = presigned_post(stack.client(other), unique())
    response = send_form(f"{stack.url}/other-bucket", post["fields"])
    assert response.status_code == 403
    assert '"bucket"' in response.text


def test_a_revoked_key_is_refused(stack: PostStack, tmp_path: Path) -> None:
    key = create_access_key(stack.data_dir, "soon-revoked", f"{BUCKET}=write")
    object_key = unique()
    post = presigned_post(stack.client(key, v4=True), object_key)
    done = run_authgate("--data-dir", str(stack.data_dir), "access-keys", "revoke", key.id)
    assert done.returncode == 0, done.stderr
    response = send_form(post["url"], post["fields"])
    assert response.status_code == 403
    assert s3_code(response) == "InvalidAccessKeyId"
    assert stack.stored(object_key) is None


def test_an_unknown_key_is_refused(stack: PostStack) -> None:
    post = presigned_post(stack.client(stack.writer), unique())
    fields = {**post["fields"], "AWSAccessKeyId": "AKAGNOSUCHKEY0000000"}
    response = send_form(post["url"], fields)
    assert (response.status_code, s3_code(response)) == (403, "InvalidAccessKeyId")


def _raw_form(boundary: str, parts: list[tuple[str, str | bytes, str | None]]) -> bytes:
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        data = value if isinstance(value, bytes) else value.encode()
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def _post_raw(stack: PostStack, body: bytes, boundary: str, **options: Any) -> requests.Response:
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return requests.post(f"{stack.url}/{BUCKET}", data=body, headers=headers, timeout=30, **options)


def test_forms_two_parsers_could_read_apart_are_refused(stack: PostStack) -> None:
    key = unique()
    post = presigned_post(stack.client(stack.writer), key)
    fields: list[tuple[str, str | bytes, str | None]] = [
        (name, value, None) for name, value in post["fields"].items()
    ]
    boundary = "x" + uuid.uuid4().hex
    forms = {
        "repeated key": [*fields, ("Key", "elsewhere", None), ("file", b"x", "a")],
        "field after the file": [*fields, ("file", b"x", "a"), ("key", "elsewhere", None)],
        "two files": [*fields, ("file", b"x", "a"), ("file", b"y", "b")],
        "a file in another field": [*fields, ("other", b"x", "a"), ("file", b"y", "b")],
    }
    for what, parts in forms.items():
        response = _post_raw(stack, _raw_form(boundary, parts), boundary)
        assert response.status_code == 400, (what, response.text)
        assert s3_code(response) == "InvalidArgument", what
    assert stack.stored(key) is None
    assert stack.stored("elsewhere") is None


def test_a_body_cut_short_never_stores(stack: PostStack) -> None:
    key = unique()
    post = presigned_post(stack.client(stack.writer), key)
    boundary = "y" + uuid.uuid4().hex
    parts = [(name, value, None) for name, value in post["fields"].items()]
    body = _raw_form(boundary, [*parts, ("file", b"data", "a")])
    response = _post_raw(stack, body[: -len(f"--{boundary}--\r\n")], boundary)
    assert response.status_code == 400
    assert s3_code(response) == "InvalidRequest"
    assert stack.stored(key) is None


def test_a_query_string_takes_the_form_out_of_the_policy_path(stack: PostStack) -> None:
    # moto reads query parameters as form fields: a query could replace the checked key.
    key = unique()
    post = presigned_post(stack.client(stack.writer), key)
    response = send_form(post["url"] + "?key=elsewhere", post["fields"])
    assert response.status_code == 401
    assert stack.stored(key) is None
    assert stack.stored("elsewhere") is None


def test_a_form_without_a_policy_is_anonymous(stack: PostStack) -> None:
    response = send_form(f"{stack.url}/{BUCKET}", {"key": "anonymous"})
    assert response.status_code == 401
    assert stack.stored("anonymous") is None
