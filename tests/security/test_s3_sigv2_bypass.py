"""SigV2 meets the Host attacks of ``test_s3_bypass``: the bucket a SigV2 signature
covers is the one in its canonical resource, read from ``Host`` (``s3_base_domains``)
exactly as the grant check and the store read it."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from botocore.auth import HmacV1Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.s3.support import AccessKey, s3_client
from tests.security.test_s3_bypass import SECRET, Chain, chain, reached_store

__all__ = ["chain"]


def signed_v2(key: AccessKey, method: str, host: str, path: str, auth_path: str) -> dict[str, str]:
    """Headers of botocore's ``HmacV1Auth`` for ``method http://host/path``, signing the
    resource ``auth_path`` as botocore does for virtual-host addressing."""
    request = AWSRequest(method=method, url=f"http://{host}{path}")
    request.auth_path = auth_path
    HmacV1Auth(Credentials(key.access_key_id, key.secret)).add_auth(request)
    return {name: value for name, value in request.headers.items() if name.lower() != "host"}


def test_a_virtual_host_sigv2_request_reads_its_own_bucket(chain: Chain) -> None:
    headers = signed_v2(
        chain.vhost.attacker, "GET", "granted.s3.local", "/own.txt", "/granted/own.txt"
    )
    own = httpx.get(f"{chain.vhost.url}/own.txt", headers={**headers, "Host": "granted.s3.local"})
    assert own.status_code == 200 and own.content == b"mine"


def test_a_sigv2_signature_cannot_be_moved_to_another_buckets_host(chain: Chain) -> None:
    # Signed for bucket "granted", key "payroll.csv"; sent so that the store would read
    # bucket "secret" (Host) and key "granted/payroll.csv" (path).
    headers = signed_v2(
        chain.vhost.attacker, "GET", "s3.local", "/granted/payroll.csv", "/granted/payroll.csv"
    )
    moved = httpx.get(
        f"{chain.vhost.url}/granted/payroll.csv", headers={**headers, "Host": "secret.s3.local"}
    )
    assert moved.status_code == 403
    assert b"SignatureDoesNotMatch" in moved.content and SECRET not in moved.content
    # Signed honestly for the other bucket: the grant, not the signature, refuses it.
    headers = signed_v2(
        chain.vhost.attacker, "GET", "secret.s3.local", "/payroll.csv", "/secret/payroll.csv"
    )
    honest = httpx.get(
        f"{chain.vhost.url}/payroll.csv", headers={**headers, "Host": "secret.s3.local"}
    )
    assert honest.status_code == 403
    assert b"no read grant on bucket secret" in honest.content
    assert reached_store(chain, "secret.s3.local") == []


def test_a_virtual_host_presigned_url_from_boto3_defaults(chain: Chain) -> None:
    s3 = s3_client("http://s3.local", chain.vhost.attacker, s3={"addressing_style": "virtual"})
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "granted", "Key": "own.txt"})
    parts = urlsplit(url)
    assert parts.netloc == "granted.s3.local" and "AWSAccessKeyId=" in parts.query
    target = f"{chain.vhost.url}{parts.path}?{parts.query}"
    own = httpx.get(target, headers={"Host": "granted.s3.local"})
    assert own.status_code == 200 and own.content == b"mine"
    stolen = httpx.get(target, headers={"Host": "secret.s3.local"})
    assert stolen.status_code == 403 and SECRET not in stolen.content
    assert reached_store(chain, "secret.s3.local") == []


def test_dotted_hosts_outside_the_base_domains_are_refused_for_sigv2(chain: Chain) -> None:
    headers = signed_v2(
        chain.plain.attacker, "GET", "secret.example", "/payroll.csv", "/secret/payroll.csv"
    )
    refused = httpx.get(
        f"{chain.plain.url}/payroll.csv", headers={**headers, "Host": "secret.example"}
    )
    assert refused.status_code == 400 and SECRET not in refused.content
    assert reached_store(chain, "secret.example") == []
