"""SigV2 through ``AuthgateWSGIMiddleware`` around moto's own WSGI app: boto3's default
presigned URLs and a header-signed client, as through the gateway."""

from __future__ import annotations

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.s3.support import s3_client
from tests.s3.test_wsgi_moto import WsgiStack, wsgi_stack

__all__ = ["wsgi_stack"]


@pytest.fixture(scope="module")
def stack(wsgi_stack: WsgiStack) -> WsgiStack:
    """The middleware's stack with its bucket made, whichever test runs first."""
    s3_client(wsgi_stack.http, wsgi_stack.admin).create_bucket(Bucket="wsgi-bucket")
    return wsgi_stack


def test_default_presigned_urls_through_the_middleware(stack: WsgiStack) -> None:
    wsgi_stack = stack
    admin = s3_client(wsgi_stack.http, wsgi_stack.admin)
    params = {"Bucket": "wsgi-bucket", "Key": "v2 key+ü.txt"}
    put_url = admin.generate_presigned_url("put_object", Params=params)
    assert "AWSAccessKeyId=" in put_url
    assert httpx.put(put_url, content=b"through wsgi").status_code == 200
    get_url = admin.generate_presigned_url("get_object", Params=params)
    response = httpx.get(get_url)
    assert (response.status_code, response.content) == (200, b"through wsgi")
    reader = s3_client(wsgi_stack.http, wsgi_stack.reader)
    refused = httpx.put(reader.generate_presigned_url("put_object", Params=params), content=b"x")
    assert refused.status_code == 403
    assert b"<Code>AccessDenied</Code>" in refused.content


def test_a_header_signed_sigv2_client_through_the_middleware(stack: WsgiStack) -> None:
    wsgi_stack = stack
    admin = s3_client(wsgi_stack.http, wsgi_stack.admin, signature_version="s3")
    admin.put_object(Bucket="wsgi-bucket", Key="header-v2", Body=b"v2")
    reader = s3_client(wsgi_stack.http, wsgi_stack.reader, signature_version="s3")
    assert reader.get_object(Bucket="wsgi-bucket", Key="header-v2")["Body"].read() == b"v2"
    with pytest.raises(ClientError) as caught:
        reader.delete_object(Bucket="wsgi-bucket", Key="header-v2")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
