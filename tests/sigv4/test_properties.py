"""Random keys and queries signed by botocore verify; any change to a signed part fails."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.utils import percent_encode, percent_encode_sequence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authgate.facts import RequestFacts
from authgate.sigv4 import S3Error, SignatureDoesNotMatch
from tests.sigv4.support import (
    CREDS,
    ENDPOINT,
    facts_from_botocore,
    flip_hex,
    replace_header,
    signed_time,
    verifier_at,
    with_fields,
)

TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=24)
KEYS = st.lists(TEXT, min_size=1, max_size=4).map("/".join)
# A query parameter of the request's own named like a presign parameter (X-Amz-Date)
# would make the presigned URL carry it twice, which is refused, as it should be.
QUERIES = st.dictionaries(
    TEXT.filter(lambda name: not name.startswith("X-Amz-")),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=24),
    max_size=4,
)
HEADER_VALUES = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _url(key: str, query: dict[str, str]) -> str:
    # As botocore's S3 serializer builds them: the key encoded with '/' kept.
    url = f"{ENDPOINT}/bkt/{percent_encode(key, safe='/~')}"
    return url + (f"?{percent_encode_sequence(query)}" if query else "")


def _header_signed(key: str, query: dict[str, str], meta: str, body: bytes) -> RequestFacts:
    request = AWSRequest(
        method="PUT", url=_url(key, query), headers={"x-amz-meta-m": meta}, data=body
    )
    S3SigV4Auth(CREDS, "s3", "us-east-1").add_auth(request)
    facts, _ = facts_from_botocore(request)
    return facts


@PROPERTY
@given(key=KEYS, query=QUERIES, meta=HEADER_VALUES, body=st.binary(max_size=64))
def test_botocore_header_signatures_verify(
    key: str, query: dict[str, str], meta: str, body: bytes
) -> None:
    facts = _header_signed(key, query, meta, body)
    result = verifier_at(facts).verify(facts, body=body)
    assert result.content_sha256 == hashlib.sha256(body).hexdigest()


@PROPERTY
@given(key=KEYS, query=QUERIES, expires=st.integers(1, 604800))
def test_botocore_presigned_urls_verify(key: str, query: dict[str, str], expires: int) -> None:
    request = AWSRequest(method="GET", url=_url(key, query))
    S3SigV4QueryAuth(CREDS, "s3", "us-east-1", expires=expires).add_auth(request)
    facts, _ = facts_from_botocore(request)
    verifier_at(facts, timedelta(seconds=expires)).verify(facts)


def _mutations(facts: RequestFacts) -> dict[str, RequestFacts]:
    auth = facts.header("authorization") or ""
    signature = auth.rsplit("Signature=", 1)[1]
    later = (signed_time(facts) + timedelta(seconds=1)).strftime("%Y%m%dT%H%M%SZ")
    return {
        "method": with_fields(facts, method="POST"),
        "path": with_fields(facts, raw_path=facts.raw_path + "x"),
        "path-case": with_fields(facts, raw_path=facts.raw_path.replace("/bkt/", "/Bkt/")),
        "query-added": with_fields(facts, query_string=(facts.query_string + "&zz=1").lstrip("&")),
        "header": replace_header(facts, "x-amz-meta-m", (facts.header("x-amz-meta-m") or "") + "!"),
        "host": replace_header(facts, "host", "other.example.test"),
        "date": replace_header(facts, "x-amz-date", later),
        "payload": replace_header(facts, "x-amz-content-sha256", "0" * 64),
        "signature": replace_header(
            facts, "authorization", auth.replace(signature, flip_hex(signature, 9))
        ),
        "signed-headers": replace_header(
            facts,
            "authorization",
            auth.replace("SignedHeaders=host;", "SignedHeaders=host;content-md5;"),
        ),
    }


@PROPERTY
@given(
    key=KEYS,
    query=QUERIES,
    meta=HEADER_VALUES,
    part=st.sampled_from(
        [
            "method",
            "path",
            "path-case",
            "query-added",
            "header",
            "host",
            "date",
            "payload",
            "signature",
            "signed-headers",
        ]
    ),
)
def test_mutating_a_signed_part_fails(
    key: str, query: dict[str, str], meta: str, part: str
) -> None:
    facts = _header_signed(key, query, meta, b"")
    verifier = verifier_at(facts)
    verifier.verify(facts)
    mutated = _mutations(facts)[part]
    with pytest.raises(SignatureDoesNotMatch):
        verifier.verify(mutated)


@PROPERTY
@given(key=KEYS, query=QUERIES, cut=st.integers(0, 10_000))
def test_presigned_query_mutations_fail(key: str, query: dict[str, str], cut: int) -> None:
    request = AWSRequest(method="GET", url=_url(key, query))
    S3SigV4QueryAuth(CREDS, "s3", "us-east-1", expires=3600).add_auth(request)
    facts, _ = facts_from_botocore(request)
    verifier = verifier_at(facts)
    verifier.verify(facts)
    # Changing one character anywhere in the query must not go unnoticed.
    qs = facts.query_string
    index = cut % len(qs)
    replacement = "Z" if qs[index] != "Z" else "Y"
    mutated = with_fields(facts, query_string=qs[:index] + replacement + qs[index + 1 :])
    with pytest.raises(S3Error):
        verifier.verify(mutated)
