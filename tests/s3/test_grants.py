"""S3 operations -> (bucket, permission), path-style and virtual-host-style."""

from __future__ import annotations

import pytest

from authgate.s3.grants import (
    UnclearBucket,
    bucket_and_key,
    copy_source_grant,
    grant_allows,
    required_grant,
)

BASES = ("s3.example.test", "storage.local")

# (operation, method, path, query keys, expected bucket, expected permission)
PATH_STYLE = [
    ("ListBuckets", "GET", "/", [], None, "read"),
    ("ListBuckets (no slash)", "GET", "", [], None, "read"),
    ("ListObjects", "GET", "/bkt", [], "bkt", "read"),
    ("ListObjectsV2", "GET", "/bkt/", ["list-type", "prefix", "delimiter"], "bkt", "read"),
    ("ListObjectVersions", "GET", "/bkt", ["versions"], "bkt", "read"),
    ("ListMultipartUploads", "GET", "/bkt", ["uploads"], "bkt", "read"),
    ("GetBucketLocation", "GET", "/bkt", ["location"], "bkt", "read"),
    ("HeadBucket", "HEAD", "/bkt", [], "bkt", "read"),
    ("GetObject", "GET", "/bkt/a/b c.txt", [], "bkt", "read"),
    ("GetObject versionId", "GET", "/bkt/k", ["versionId", "response-content-type"], "bkt", "read"),
    ("HeadObject", "HEAD", "/bkt/k", [], "bkt", "read"),
    ("GetObjectAcl", "GET", "/bkt/k", ["acl"], "bkt", "read"),
    ("GetObjectTagging", "GET", "/bkt/k", ["tagging"], "bkt", "read"),
    ("ListParts", "GET", "/bkt/k", ["uploadId"], "bkt", "read"),
    ("SelectObjectContent", "POST", "/bkt/k", ["select", "select-type"], "bkt", "read"),
    ("PutObject", "PUT", "/bkt/k", [], "bkt", "write"),
    ("CopyObject", "PUT", "/bkt/copy", [], "bkt", "write"),
    ("PutObjectTagging", "PUT", "/bkt/k", ["tagging"], "bkt", "write"),
    ("DeleteObject", "DELETE", "/bkt/k", [], "bkt", "write"),
    ("DeleteObjectTagging", "DELETE", "/bkt/k", ["tagging"], "bkt", "write"),
    ("DeleteObjects", "POST", "/bkt", ["delete"], "bkt", "write"),
    ("CreateMultipartUpload", "POST", "/bkt/k", ["uploads"], "bkt", "write"),
    ("UploadPart", "PUT", "/bkt/k", ["partNumber", "uploadId"], "bkt", "write"),
    ("CompleteMultipartUpload", "POST", "/bkt/k", ["uploadId"], "bkt", "write"),
    ("AbortMultipartUpload", "DELETE", "/bkt/k", ["uploadId"], "bkt", "write"),
    ("RestoreObject", "POST", "/bkt/k", ["restore"], "bkt", "write"),
    ("PostObject (form upload)", "POST", "/bkt", [], "bkt", "write"),
    ("PutObjectAcl", "PUT", "/bkt/k", ["acl"], "bkt", "admin"),
    ("PutObjectRetention", "PUT", "/bkt/k", ["retention"], "bkt", "admin"),
    ("PutObjectLegalHold", "PUT", "/bkt/k", ["legal-hold"], "bkt", "admin"),
    ("CreateBucket", "PUT", "/bkt", [], "bkt", "admin"),
    ("CreateBucket (slash)", "PUT", "/bkt/", [], "bkt", "admin"),
    ("DeleteBucket", "DELETE", "/bkt", [], "bkt", "admin"),
    ("PutBucketAcl", "PUT", "/bkt", ["acl"], "bkt", "admin"),
    ("GetBucketAcl", "GET", "/bkt", ["acl"], "bkt", "admin"),
    ("PutBucketPolicy", "PUT", "/bkt", ["policy"], "bkt", "admin"),
    ("GetBucketPolicy", "GET", "/bkt", ["policy"], "bkt", "admin"),
    ("DeleteBucketPolicy", "DELETE", "/bkt", ["policy"], "bkt", "admin"),
    ("PutBucketLifecycle", "PUT", "/bkt", ["lifecycle"], "bkt", "admin"),
    ("PutBucketCors", "PUT", "/bkt", ["cors"], "bkt", "admin"),
    ("GetBucketVersioning", "GET", "/bkt", ["versioning"], "bkt", "admin"),
    ("PutBucketVersioning", "PUT", "/bkt", ["versioning"], "bkt", "admin"),
    ("PutBucketTagging", "PUT", "/bkt", ["tagging"], "bkt", "admin"),
    ("unknown bucket subresource", "GET", "/bkt", ["new-thing"], "bkt", "admin"),
    ("unknown method on object", "PATCH", "/bkt/k", [], "bkt", "admin"),
    ("POST object without subresource", "POST", "/bkt/k", [], "bkt", "admin"),
    ("PUT at the root", "PUT", "/", [], None, "admin"),
]


@pytest.mark.parametrize(
    ("operation", "method", "path", "keys", "bucket", "permission"),
    PATH_STYLE,
    ids=[row[0] for row in PATH_STYLE],
)
def test_path_style(
    operation: str, method: str, path: str, keys: list[str], bucket: str | None, permission: str
) -> None:
    assert required_grant(method, path, "s3.example.test", keys, base_domains=BASES) == (
        bucket,
        permission,
    )
    # Without base domains every host is path-style.
    assert required_grant(method, path, "10.0.0.1:9000", keys) == (bucket, permission)


VIRTUAL_HOST = [
    ("ListObjects", "GET", "bkt.s3.example.test", "/", [], "bkt", "read"),
    ("GetObject", "GET", "bkt.s3.example.test", "/a/b", [], "bkt", "read"),
    ("PutObject with port", "PUT", "bkt.storage.local:9000", "/k", [], "bkt", "write"),
    ("upper-case base", "DELETE", "bkt.S3.EXAMPLE.TEST", "/", [], "bkt", "admin"),
    ("CreateBucket", "PUT", "new.s3.example.test", "/", [], "new", "admin"),
    ("DeleteObjects", "POST", "bkt.s3.example.test", "/", ["delete"], "bkt", "write"),
    ("base host is path-style", "GET", "s3.example.test", "/", [], None, "read"),
    ("base host object", "GET", "s3.example.test:443", "/bkt/k", [], "bkt", "read"),
]


@pytest.mark.parametrize(
    ("operation", "method", "host", "path", "keys", "bucket", "permission"),
    VIRTUAL_HOST,
    ids=[row[0] for row in VIRTUAL_HOST],
)
def test_virtual_host_style(
    operation: str,
    method: str,
    host: str,
    path: str,
    keys: list[str],
    bucket: str | None,
    permission: str,
) -> None:
    assert required_grant(method, path, host, keys, base_domains=BASES) == (bucket, permission)


@pytest.mark.parametrize(
    ("host", "path"),
    [
        ("s3.example.test", "/my%2Dbucket/k"),  # decoded by one store, not by another
        ("10.0.0.1:9000", "/BKT/k"),
        ("my.bkt.s3.example.test", "/k"),  # moto reads "my", MinIO "my.bkt"
        ("BKT.s3.example.test", "/k"),  # folded to "bkt" or not
        ("files.example.org", "/bkt/k"),  # moto reads bucket "files"
        ("s3.example.test.", "/bkt/k"),
        ("localhost:port", "/bkt/k"),
        ("[::1", "/bkt/k"),
    ],
)
def test_a_bucket_stores_could_read_two_ways_is_refused(host: str, path: str) -> None:
    with pytest.raises(UnclearBucket):
        required_grant("GET", path, host, (), base_domains=BASES)


def test_virtual_host_key_stays_as_sent() -> None:
    assert bucket_and_key("/a%2Fb//c", "bkt.s3.example.test", BASES) == ("bkt", "a%2Fb//c")
    assert bucket_and_key("/bkt/a%2Fb//c", "[::1]:9000", BASES) == ("bkt", "a%2Fb//c")


@pytest.mark.parametrize(
    ("granted", "needed", "allowed"),
    [
        ("admin", "admin", True),
        ("admin", "write", True),
        ("admin", "read", True),
        ("write", "write", True),
        ("write", "read", True),
        ("write", "admin", False),
        ("read", "read", True),
        ("read", "write", False),
        ("read", "admin", False),
        ("", "read", False),
        ("owner", "read", False),
        ("read", "list", False),
    ],
)
def test_grant_allows(granted: str, needed: str, allowed: bool) -> None:
    assert grant_allows(granted, needed) is allowed


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("/src-bucket/a%20b.txt", ("src-bucket", "read")),
        ("src-bucket/key?versionId=3", ("src-bucket", "read")),
    ],
)
def test_copy_source_needs_read_on_the_source(header: str, expected: tuple[str, str]) -> None:
    assert copy_source_grant(header) == expected


@pytest.mark.parametrize(
    "header",
    ["", "//granted/secret/k", "granted", "/granted/", "s3:granted/k", "granted/k#x"],
)
def test_copy_source_in_another_form_is_refused(header: str) -> None:
    with pytest.raises(UnclearBucket):
        copy_source_grant(header)
