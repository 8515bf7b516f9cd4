"""SigV2 signs only S3's sub-resources of the query: a parameter the store would read
as another operation, spelt so that the signer (botocore) leaves it out of the
signature, must be refused before the store sees it. Through the in-process gateway of
``test_s3_bypass`` in front of moto."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import httpx
import pytest

from tests.s3.support import s3_client
from tests.security.test_s3_bypass import SECRET, Chain, chain
from tests.security.test_s3_sigv2_bypass import signed_v2

__all__ = ["chain"]


@pytest.mark.parametrize(
    "query",
    [
        "%75ploads",  # "uploads", percent-encoded: moto decodes it, botocore signs nothing
        "Uploads",
        "uploads%00",
        "x-id=PutObject&%75ploads",
        "uploads;",
    ],
)
def test_an_unsigned_spelling_of_a_sub_resource_is_refused(chain: Chain, query: str) -> None:
    path = f"/granted/v2-{len(chain.recorder.seen)}.txt"
    headers = signed_v2(
        chain.plain.attacker, "POST", "127.0.0.1", f"{path}?{query}", f"{path}?{query}"
    )
    answer = httpx.post(f"{chain.plain.url}{path}?{query}", headers=headers)
    assert answer.status_code in (400, 403), answer.text
    assert chain.recorder.for_path("POST", path) == []
    uploads = s3_client(chain.plain.url, chain.plain.admin).list_multipart_uploads(Bucket="granted")
    assert all(upload["Key"] != path.split("/", 2)[2] for upload in uploads.get("Uploads", []))


def _presigned_get(chain: Chain) -> str:
    client = s3_client(chain.plain.url, chain.plain.attacker, signature_version="s3")
    url: str = client.generate_presigned_url(
        "get_object", Params={"Bucket": "granted", "Key": "own.txt"}, ExpiresIn=300
    )
    assert "AWSAccessKeyId=" in url and "X-Amz-" not in url
    return url


def test_the_presigned_url_itself_reads_its_object(chain: Chain) -> None:
    answer = httpx.get(_presigned_get(chain))
    assert answer.status_code == 200 and answer.content == b"mine"


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ("&tagging", 403),  # signed sub-resource added: the signature no longer matches
        ("&acl", 403),
        ("&%74agging", 403),  # encoded: not signed, so refused as unsigned
        ("&Tagging", 403),
        ("&uploads=", 403),
        ("&Expires=99999999999", 400),  # a second Expires, Signature or key id
        ("&Signature=AAAAAAAAAAAAAAAAAAAAAAAAAAA%3D", 400),
        ("&X-Amz-Algorithm=AWS4-HMAC-SHA256", 400),  # two mechanisms
        ("&x-amz-acl=public-read", 403),  # a header moved into the query is signed
    ],
)
def test_a_presigned_get_cannot_become_another_operation(
    chain: Chain, extra: str, status: int
) -> None:
    url = _presigned_get(chain) + extra
    before = len(chain.recorder.for_path("GET", urlsplit(url).path))
    answer = httpx.get(url)
    assert answer.status_code == status, answer.text
    assert b"mine" not in answer.content
    assert len(chain.recorder.for_path("GET", urlsplit(url).path)) == before


@pytest.mark.parametrize(
    "path",
    [
        "//secret/payroll.csv",
        "/granted/..%2Fsecret/payroll.csv",
        "/granted/%2e%2e/secret/payroll.csv",
        "/granted/../secret/payroll.csv",
        "/granted%2F..%2Fsecret/payroll.csv",
        "/%73ecret/payroll.csv",
        "/granted/./../secret/payroll.csv",
        "/granted\\..\\secret/payroll.csv",
    ],
)
def test_a_signed_path_that_could_climb_into_another_bucket(chain: Chain, path: str) -> None:
    # Signed honestly over the path as sent: the signature holds, so only the reading
    # of the bucket stands between this key (write on "granted") and "secret".
    headers = signed_v2(chain.plain.attacker, "GET", "127.0.0.1", path, path)
    # http.client sends the path as written (httpx would remove its dot segments).
    conn = http.client.HTTPConnection("127.0.0.1", chain.plain.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        answer = conn.getresponse()
        status, content = answer.status, answer.read()
    finally:
        conn.close()
    assert SECRET not in content
    assert status in (400, 403), content
    assert b"SignatureDoesNotMatch" not in content  # refused for its path, not its bytes
