"""What authgate checked is what the store acts on: forms and requests that authgate and
moto (werkzeug's form parser) could read two ways, sent through ``authgate serve`` to
moto's server. Each asserts the refusal and that nothing reached the store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
import requests

from tests.s3.post_support import PostStack, post_stack, presigned_post, s3_code

BOUNDARY = "attackboundary"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostStack]:
    with post_stack(tmp_path_factory.mktemp("second-reading")) as running:
        yield running


def _raw_form(parts: Sequence[tuple[str, bytes]]) -> bytes:
    """A multipart body of ``(Content-Disposition, content)`` parts, as written."""
    body = b""
    for disposition, content in parts:
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def _post(stack: PostStack, parts: Sequence[tuple[str, bytes]]) -> requests.Response:
    return requests.post(
        stack.url + "/uploads",
        data=_raw_form(parts),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=30,
    )


def _signed_fields(stack: PostStack, key: str, prefix: str) -> list[tuple[str, bytes]]:
    """boto3's signed fields for an upload whose key must start with ``prefix``."""
    post = presigned_post(
        stack.client(stack.writer),
        key,
        conditions=[["starts-with", "$key", prefix], ["starts-with", "$x-ignore-a", ""]],
    )
    return [(f'form-data; name="{name}"', value.encode()) for name, value in post["fields"].items()]


def _file(filename: str) -> tuple[str, bytes]:
    return (f'form-data; name="file"; filename="{filename}"', b"planted")


def test_the_signed_form_as_written_here_is_stored(stack: PostStack) -> None:
    # The control: the same raw form, with nothing smuggled, reaches the store.
    fields = _signed_fields(stack, "user1/control.txt", "user1/")
    answer = _post(stack, [*fields, _file("control.txt")])
    assert answer.status_code == 204, answer.text
    assert stack.stored("user1/control.txt") == b"planted"


def test_a_name_star_parameter_cannot_smuggle_a_second_key(stack: PostStack) -> None:
    # python-multipart drops name*; werkzeug reads it, so moto would see this part as a
    # first "key" field, outside the prefix the policy allows.
    fields = _signed_fields(stack, "user1/a.txt", "user1/")
    smuggled = ("form-data; name=\"x-ignore-a\"; name*=UTF-8''key", b"victim-name.txt")
    answer = _post(stack, [smuggled, *fields, _file("a.txt")])
    assert stack.stored("victim-name.txt") is None
    assert stack.stored("user1/a.txt") is None
    assert answer.status_code == 400 and s3_code(answer) == "InvalidArgument"


@pytest.mark.parametrize(
    "disposition",
    [
        'form-data; name="file"; filename="a.txt"; filename*=UTF-8\'\'victim-star.txt',
        "form-data; name=\"file\"; filename*=UTF-8''victim-star.txt",
        'form-data; name="file"; filename="a.txt"; filename*0="victim-star.txt"',
    ],
)
def test_a_filename_star_cannot_name_another_key(stack: PostStack, disposition: str) -> None:
    # The policy allows only keys starting "user1/a"; werkzeug takes the file's name
    # from filename*, which python-multipart drops.
    fields = _signed_fields(stack, "user1/${filename}", "user1/a")
    answer = _post(stack, [*fields, (disposition, b"planted")])
    assert stack.stored("user1/victim-star.txt") is None
    assert answer.status_code == 400 and s3_code(answer) == "InvalidArgument"


@pytest.mark.parametrize(
    "disposition",
    [
        'form-data; name="x-ignore-a"; name="key"',
        'form-data; name="x-ignore-a"; NAME="key"',
        'form-data; name="file"; filename="victim-dup.txt"; filename="a.txt"',
    ],
)
def test_a_repeated_disposition_parameter_is_refused(stack: PostStack, disposition: str) -> None:
    fields = _signed_fields(stack, "user1/${filename}", "user1/")
    if "filename" in disposition:
        parts = [*fields, (disposition, b"planted")]
    else:
        parts = [(disposition, b"victim-dup.txt"), *fields, _file("a.txt")]
    answer = _post(stack, parts)
    assert stack.stored("victim-dup.txt") is None
    assert stack.stored("user1/victim-dup.txt") is None
    assert answer.status_code == 400 and s3_code(answer) == "InvalidArgument"


@pytest.mark.parametrize("filename", ["user1/victim-slash.txt", "user1\\victim-backslash.txt"])
def test_a_filename_with_a_path_cannot_leave_the_policys_prefix(
    stack: PostStack, filename: str
) -> None:
    # moto replaces ${filename} by the file name's basename: "user1/victim-slash.txt"
    # meets "starts-with user1/" here and would be stored as "victim-slash.txt".
    fields = _signed_fields(stack, "${filename}", "user1/")
    answer = _post(stack, [*fields, _file(filename.replace("\\", "\\\\"))])
    assert stack.stored(filename.replace("\\", "/").rsplit("/", 1)[1]) is None
    assert stack.stored(filename) is None
    assert answer.status_code == 400 and s3_code(answer) == "InvalidArgument"


@pytest.mark.parametrize("media_type", ["Multipart/Form-Data", "MULTIPART/FORM-DATA"])
def test_a_media_type_in_capitals_is_one_form_to_both(stack: PostStack, media_type: str) -> None:
    # Were the store to take only the lower-case type as a form, moto would read the
    # raw body as a query string, where an ignored field's "&key=..." names the key.
    # Flask's request lower-cases it as python-multipart does: the checked key is stored.
    victim = f"victim-{media_type[1:4].lower()}.txt"
    fields = _signed_fields(stack, "user1/a.txt", "user1/")
    smuggled = ('form-data; name="x-ignore-a"', f"&key={victim}&".encode())
    body = _raw_form([smuggled, *fields, _file("a.txt")])
    answer = requests.post(
        stack.url + "/uploads",
        data=body,
        headers={"Content-Type": f"{media_type}; boundary={BOUNDARY}"},
        timeout=30,
    )
    assert answer.status_code == 204, answer.text
    assert stack.stored(victim) is None
    assert stack.stored("user1/a.txt") == b"planted"
