"""S3 POST policies: a browser form upload signed by an access key, checked as S3 does.

A form made by boto3's ``generate_presigned_post`` carries a base64 JSON policy (an
expiration and a list of conditions) and its signature, in one of two forms:

- Signature Version 2 (boto3's default for a custom endpoint): ``AWSAccessKeyId``,
  ``signature`` = base64 HMAC-SHA1 of the base64 policy under the secret;
- Signature Version 4: ``x-amz-algorithm``, ``x-amz-credential``, ``x-amz-date``,
  ``x-amz-signature`` = hex HMAC-SHA256 of the base64 policy under the SigV4 signing key.

``verify_post_policy`` checks, in S3's order: the signature (constant time), the
expiration, then every condition against the fields (``bucket`` against the bucket the
request names, ``key`` after ``${filename}`` is replaced by the file's name), and that
every field but the ones S3 exempts is covered by a condition. ``content-length-range``
is left to ``PostForm``, which counts the file as it streams.

SigV2's HMAC-SHA1 is written here by hand for this one string: there is no payload,
headers or canonical resource to sign, only the policy's base64 text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authgate.facts import RequestFacts
from authgate.s3.grants import bucket_and_key, host_bucket
from authgate.s3.post_form import PostForm
from authgate.sigv4 import (
    AccessDenied,
    AccessKeySecret,
    InvalidAccessKeyId,
    InvalidArgument,
    S3Error,
    S3InvalidRequest,
    SignatureDoesNotMatch,
    derive_signing_key,
)
from authgate.sigv4.signing import ALGORITHM, signatures_equal

__all__ = [
    "InvalidPolicyDocument",
    "PostPolicyResult",
    "claimed_key_id",
    "upload_bucket",
    "verify_post_policy",
]

# Fields no condition needs to name (S3's list), and the prefix S3 lets a form ignore.
_EXEMPT = frozenset({"awsaccesskeyid", "signature", "x-amz-signature", "policy", "file"})
_IGNORED_PREFIX = "x-ignore-"
_CREDENTIAL = re.compile(r"([A-Z0-9]{16,128})/([0-9]{8})/([a-z0-9-]{1,32})/s3/aws4_request")
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_MAX_KEY_BYTES = 1024


class InvalidPolicyDocument(S3Error):
    s3_code = "InvalidPolicyDocument"
    status = 400
    code = "invalid_policy_document"
    default_detail = "Invalid Policy: Invalid JSON."


@dataclass(frozen=True, slots=True)
class PostPolicyResult:
    """A verified upload: who signed, into which bucket and key."""

    access_key: AccessKeySecret
    bucket: str
    key: str


def claimed_key_id(fields: dict[str, str]) -> str | None:
    """The access key id the form names (V2's field, or V4's credential)."""
    if "x-amz-credential" in fields:
        return fields["x-amz-credential"].split("/", 1)[0]
    return fields.get("awsaccesskeyid")


def upload_bucket(facts: RequestFacts, base_domains: Sequence[str], store_host: str | None) -> str:
    """The bucket a form POST uploads to: ``/bucket`` (path style) or ``/`` under a
    virtual host, read as the store reads it; ``AccessDenied`` when the client's ``Host``
    and the store's would name two buckets, ``InvalidArgument`` for a path with a key."""
    hosts = facts.header_all("host")
    if len(hosts) > 1:
        raise S3InvalidRequest("More than one Host header: refusing to guess.")
    host = hosts[0] if hosts else None
    if store_host is not None and host_bucket(host, base_domains) != host_bucket(
        store_host, base_domains
    ):
        raise AccessDenied("Access Denied: the Host the store receives would name another bucket.")
    bucket, key = bucket_and_key(facts.raw_path or facts.path, host, base_domains)
    if bucket is None or key:
        raise InvalidArgument("A browser upload is a POST to the bucket, with no key in the path.")
    return bucket


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise InvalidPolicyDocument("Invalid Policy: a JSON object repeats a name.")
    return dict(pairs)


def _decode(policy: str) -> dict[str, Any]:
    try:
        raw = base64.b64decode(policy.encode("ascii"), validate=True)
        document = json.loads(raw, object_pairs_hook=_no_duplicates)
    except InvalidPolicyDocument:
        raise
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidPolicyDocument() from None
    if not isinstance(document, dict):
        raise InvalidPolicyDocument("Invalid Policy: the policy is not a JSON object.")
    if not isinstance(document.get("expiration"), str):
        raise InvalidPolicyDocument("Invalid Policy: Policy missing expiration.")
    if not isinstance(document.get("conditions"), list):
        raise InvalidPolicyDocument("Invalid Policy: Policy missing conditions.")
    return document


def _expiration(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidPolicyDocument("Invalid Policy: Invalid 'expiration' value.") from None
    if moment.tzinfo is None:
        raise InvalidPolicyDocument("Invalid Policy: 'expiration' has no time zone.")
    return moment


def _sign_v2(secret: str, policy: str) -> str:
    mac = hmac.digest(secret.encode("utf-8"), policy.encode("ascii"), hashlib.sha1)
    return base64.b64encode(mac).decode("ascii")


def _check_signature(
    fields: dict[str, str], secret: str, region: str | None, now: datetime
) -> None:
    policy = fields["policy"]
    if "x-amz-signature" in fields:
        if fields.get("x-amz-algorithm") != ALGORITHM:
            raise InvalidArgument("x-amz-algorithm must be AWS4-HMAC-SHA256.")
        match = _CREDENTIAL.fullmatch(fields.get("x-amz-credential", ""))
        amz_date = fields.get("x-amz-date", "")
        if match is None or not _AMZ_DATE.fullmatch(amz_date) or amz_date[:8] != match[2]:
            raise InvalidArgument("x-amz-credential and x-amz-date do not name one SigV4 scope.")
        if region is not None and match[3] != region:
            raise InvalidArgument(f"the region '{match[3]}' is wrong; expecting '{region}'")
        key = derive_signing_key(secret, match[2], match[3], "s3")
        expected = hmac.digest(key, policy.encode("ascii"), "sha256").hex()
        if not signatures_equal(expected, fields["x-amz-signature"]):
            raise SignatureDoesNotMatch()
        return
    if not signatures_equal(_sign_v2(secret, policy), fields.get("signature", "")):
        raise SignatureDoesNotMatch()


def _failed(condition: Any) -> AccessDenied:
    return AccessDenied(
        f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}"
    )


def _values(fields: dict[str, str], bucket: str, key: str) -> dict[str, str]:
    """What each condition is checked against: the fields, the bucket, the key as S3
    stores it."""
    return {**fields, "bucket": bucket, "key": key}


def _check_conditions(conditions: list[Any], form: PostForm, bucket: str, key: str) -> None:
    values = _values(form.fields, bucket, key)
    covered = {"bucket"}
    for condition in conditions:
        if isinstance(condition, dict):
            if len(condition) != 1:
                raise InvalidPolicyDocument("Invalid Policy: a condition names one field.")
            ((name, expected),) = condition.items()
            op = "eq"
        elif isinstance(condition, list) and len(condition) == 3:
            op, low, high = condition
            if isinstance(op, str) and op.lower() == "content-length-range":
                if type(low) is not int or type(high) is not int or not 0 <= low <= high:
                    raise InvalidPolicyDocument("Invalid Policy: Invalid content-length-range.")
                form.min_size = max(form.min_size, low)
                form.max_size = high if form.max_size is None else min(form.max_size, high)
                continue
            op, name, expected = condition
            if not isinstance(op, str) or not isinstance(name, str):
                raise InvalidPolicyDocument("Invalid Policy: Invalid Condition.")
            op = op.lower()
            if op not in ("eq", "starts-with") or not name.startswith("$"):
                raise InvalidPolicyDocument(f"Invalid Policy: Invalid Condition: {op!r}.")
            name = name[1:]
        else:
            raise InvalidPolicyDocument("Invalid Policy: Invalid Condition.")
        if not isinstance(expected, str):
            raise InvalidPolicyDocument("Invalid Policy: a condition's value is not a string.")
        name = name.lower()
        covered.add(name)
        actual = values.get(name)
        if op == "eq":
            held = actual == expected
        else:
            held = (actual or "").startswith(expected)
        if not held:
            raise _failed(condition)
    extra = sorted(
        form.names[name]
        for name in form.names
        if name not in covered and name not in _EXEMPT and not name.startswith(_IGNORED_PREFIX)
    )
    if extra:
        raise AccessDenied(f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")


def _object_key(form: PostForm) -> str:
    template = form.fields.get("key")
    if template is None:
        raise InvalidArgument("Bucket POST must contain a field named 'key'.")
    filename = form.filename or ""
    if "${filename}" in template and ("/" in filename or "\\" in filename):
        # A browser sends a file's name without its folder; stores that take the
        # basename (moto does) would store another key than the one checked here.
        raise InvalidArgument("The file's name has a '/' or '\\': a file name, not a path.")
    key = template.replace("${filename}", filename)
    if not key or len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        raise InvalidArgument("The key must be 1 to 1024 bytes long.")
    # A store that maps keys onto paths would read "uploads/../other" outside the prefix
    # the policy allowed.
    if any(part in (".", "..") for part in key.replace("\\", "/").split("/")):
        raise InvalidArgument("The key has '.' or '..' segments.")
    return key


def verify_post_policy(
    form: PostForm,
    bucket: str,
    lookup: Callable[[str], AccessKeySecret | None],
    *,
    region: str | None,
    now: datetime,
) -> PostPolicyResult:
    """The verified upload, or the ``S3Error`` that refuses it. Sets the form's size
    range from the policy's ``content-length-range``. ``lookup`` may read the store."""
    if form.error is not None:
        raise form.error
    if not form.head_complete:
        raise InvalidArgument("POST requires exactly one file upload per request.")
    fields = form.fields
    access_key_id = claimed_key_id(fields)
    if not access_key_id:
        raise InvalidArgument("Bucket POST must contain AWSAccessKeyId or x-amz-credential.")
    record = lookup(access_key_id)
    if record is None or not record.active or record.access_key_id != access_key_id:
        raise InvalidAccessKeyId(extra={"AWSAccessKeyId": access_key_id})
    _check_signature(fields, record.secret, region, now)
    document = _decode(fields["policy"])
    if _expiration(document["expiration"]) < now:
        raise AccessDenied("Invalid according to Policy: Policy expired.")
    key = _object_key(form)
    _check_conditions(document["conditions"], form, bucket, key)
    return PostPolicyResult(record, bucket, key)
