"""``PostForm`` and ``verify_post_policy`` alone: whatever bytes or policy arrive, the
answer is an ``S3Error`` (a 4xx in S3's XML), never another exception."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from authgate.s3.post_form import PostForm
from authgate.s3.post_policy import verify_post_policy
from authgate.sigv4 import AccessKeySecret, S3Error

BOUNDARY = b"b0undary"
HEAD = (
    b'--b0undary\r\nContent-Disposition: form-data; name="key"\r\n\r\nk\r\n'
    b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
)
KEY = AccessKeySecret("AKAGJ7Q2M4XWZ5NB3KTE", "s" * 40, grants={"b": "write"})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_any_bytes_are_a_form_or_an_s3_error(chunks: list[bytes]) -> None:
    form = PostForm(BOUNDARY)
    try:
        for chunk in [HEAD[: len(HEAD) // 2], *chunks]:
            form.feed(chunk)
        form.finish()
    except S3Error as exc:
        assert 400 <= exc.status < 500


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_signed_policy_is_checked_or_refused_in_s3_words(document: object) -> None:
    form = PostForm(BOUNDARY)
    form.feed(HEAD + b"data\r\n--b0undary--\r\n")
    policy = base64.b64encode(
        json.dumps({"expiration": "2099-01-01T00:00:00Z", "conditions": document}).encode()
    ).decode()
    signature = base64.b64encode(
        hmac.digest(KEY.secret.encode(), policy.encode(), hashlib.sha1)
    ).decode()
    form.fields.update(policy=policy, signature=signature, awsaccesskeyid=KEY.access_key_id)
    try:
        verify_post_policy(form, "b", lambda _id: KEY, region=None, now=datetime.now(UTC))
    except S3Error as exc:
        assert 400 <= exc.status < 500
