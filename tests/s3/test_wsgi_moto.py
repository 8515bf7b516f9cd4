"""``AuthgateWSGIMiddleware`` wrapped around moto's own WSGI application, served by
werkzeug over HTTP and HTTPS: the same core flows as through the gateway, with the body
checked as moto reads ``wsgi.input``."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from authgate.adapters.wsgi import AuthgateWSGIMiddleware
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.settings import load_settings
from tests.s3.support import AccessKey, make_certificate, pattern, s3_client, sha256
from tests.s3.test_refusals import signed_headers, xml_code
from tests.support import free_port

ACTOR = Actor("tests", source="test")
MB = 1024 * 1024


@dataclass
class WsgiStack:
    http: str
    https: str
    ca: Path
    admin: AccessKey
    reader: AccessKey


def _serve(app: object, **options: object) -> tuple[str, object]:
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True, **options)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return str(port), server


@pytest.fixture(scope="module")
def wsgi_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WsgiStack]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    root = tmp_path_factory.mktemp("wsgi")
    settings = load_settings(data_dir=root / "data", localhost_bypass="off")
    runtime = Runtime(settings)
    runtime.start()
    keys = []
    for name, grants in (("admin", {"wsgi-bucket": "admin"}), ("reader", {"wsgi-bucket": "read"})):
        created = runtime.access_keys.create(ACTOR, name=name, grants=grants)
        keys.append(AccessKey(created.record.access_key_id, created.secret, created.record.id))
    app = AuthgateWSGIMiddleware(DomainDispatcherApplication(create_backend_app), runtime=runtime)
    cert, key = make_certificate(root)
    http_port, http_server = _serve(app)
    https_port, https_server = _serve(app, ssl_context=(str(cert), str(key)))
    try:
        yield WsgiStack(
            f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}", cert, *keys
        )
    finally:
        for server in (http_server, https_server):
            server.shutdown()  # type: ignore[attr-defined]
        runtime.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_boto3_through_the_wsgi_middleware(wsgi_stack: WsgiStack, scheme: str) -> None:
    endpoint = wsgi_stack.http if scheme == "http" else wsgi_stack.https
    verify = str(wsgi_stack.ca) if scheme == "https" else None
    admin = s3_client(endpoint, wsgi_stack.admin, verify=verify)
    if scheme == "http":
        admin.create_bucket(Bucket="wsgi-bucket")
    body = pattern(150_000)
    admin.put_object(Bucket="wsgi-bucket", Key=f"{scheme}/one.bin", Body=body)
    got = admin.get_object(Bucket="wsgi-bucket", Key=f"{scheme}/one.bin")["Body"].read()
    assert sha256(got) == sha256(body)
    listed = admin.list_objects_v2(Bucket="wsgi-bucket", Prefix=f"{scheme}/")
    assert [item["Key"] for item in listed["Contents"]] == [f"{scheme}/one.bin"]

    big = pattern(17 * MB)
    config = TransferConfig(multipart_threshold=8 * MB, multipart_chunksize=8 * MB)
    admin.upload_fileobj(io.BytesIO(big), "wsgi-bucket", f"{scheme}/big.bin", Config=config)
    out = io.BytesIO()
    admin.download_fileobj("wsgi-bucket", f"{scheme}/big.bin", out)
    assert hashlib.sha256(out.getvalue()).hexdigest() == sha256(big)

    presigner = s3_client(endpoint, wsgi_stack.reader, verify=verify, signature_version="s3v4")
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": "wsgi-bucket", "Key": f"{scheme}/one.bin"}
    )
    response = httpx.get(url, verify=_tls(wsgi_stack, scheme))
    assert sha256(response.content) == sha256(body)

    admin.delete_object(Bucket="wsgi-bucket", Key=f"{scheme}/one.bin")
    assert [b["Name"] for b in admin.list_buckets()["Buckets"]] == ["wsgi-bucket"]


def _tls(stack: WsgiStack, scheme: str) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=str(stack.ca)) if scheme == "https" else True


def test_refusals_through_the_wsgi_middleware(wsgi_stack: WsgiStack) -> None:
    reader = s3_client(wsgi_stack.http, wsgi_stack.reader)
    with pytest.raises(ClientError) as denied:
        reader.put_object(Bucket="wsgi-bucket", Key="ro", Body=b"x")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    wrong = s3_client(wsgi_stack.http, wsgi_stack.reader, secret="q" * 40)
    with pytest.raises(ClientError) as bad:
        wrong.list_objects_v2(Bucket="wsgi-bucket")
    assert bad.value.response["Error"]["Code"] == "SignatureDoesNotMatch"

    url = f"{wsgi_stack.http}/wsgi-bucket/mismatch.bin"
    original = pattern(100_000)
    headers = signed_headers(url, "PUT", wsgi_stack.admin, hashlib.sha256(original).hexdigest())
    response = httpx.put(url, headers=headers, content=original[:-1] + b"!")
    assert response.status_code == 400
    assert xml_code(response) == "XAmzContentSHA256Mismatch"
    assert re.fullmatch(r"[0-9A-F]{16}", response.headers["x-amz-request-id"])
    admin = s3_client(wsgi_stack.http, wsgi_stack.admin)
    with pytest.raises(ClientError) as gone:
        admin.head_object(Bucket="wsgi-bucket", Key="mismatch.bin")
    assert gone.value.response["Error"]["Code"] == "404"
