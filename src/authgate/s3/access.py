"""SigV4 requests at the gate: who signed, which bucket grant they need, S3's answers.

Framework-free, like the rest of the core: ``S3Access.verify`` turns request facts
into a verified access key (or the S3 error to answer), ``authorize`` checks the bucket
grants the request needs, and what is left for the adapters — checking the body while
the app reads it, filtering a ListBuckets answer — is described by ``S3Pass`` and done
with ``BodyGuard`` (``authgate.s3.body``) and ``filter_list_buckets``
(``authgate.s3.listbuckets``).

How S3 traffic meets authgate's rules: a SigV4 request is matched against the same rule
list as any other request. A valid access key is an authenticated principal (kind
``access_key``), so a rule that asks for a credential lets it through; it has no scopes
and no role, so a rule that asks for either refuses it (``AccessDenied``). On a public
rule a signature that does not verify is ignored, as a bad token is, and the request
passes anonymously. Past the rules, the bucket grants decide, computed from the path and
``Host`` exactly as the store will read them: the ``Host`` the client signed and the one
the store will receive must name one bucket, and a request a store could read another
way (see ``authgate.s3.grants``) is refused.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urlsplit

from authgate.errors import AuthgateError, ConfigurationError, NotReady
from authgate.facts import RequestFacts
from authgate.manage.access_keys import is_access_key_id
from authgate.masterkey import MasterKeyError
from authgate.principal import Principal
from authgate.s3.buckets import InvalidBucketName, bucket_name_problem, grant_for
from authgate.s3.grants import (
    bucket_and_key,
    copy_source_grant,
    grant_allows,
    host_bucket,
    required_grant,
)
from authgate.sigv2 import ONE_MECHANISM, SigV2Result, is_sigv2
from authgate.sigv4 import (
    EMPTY_SHA256,
    AccessDenied,
    AccessKeySecret,
    InvalidArgument,
    S3Error,
    S3InvalidRequest,
    SigV4Result,
    SigV4Verifier,
    is_sigv4,
    render_s3_error,
    split_query,
)
from authgate.trusted_proxies import TrustedProxies, normalise_address

if TYPE_CHECKING:
    from authgate.runtime import Runtime

_Result = TypeVar("_Result", SigV4Result, SigV2Result)
log = logging.getLogger("authgate.s3")

# A verified SigV4 request: the key as a principal, and what was verified.
Signed = tuple[Principal, SigV4Result]

__all__ = [
    "SIGV4_SCOPE_KEY",
    "S3Access",
    "S3Pass",
    "as_s3_error",
    "claims_s3_auth",
    "forward_auth_refusal",
    "new_request_id",
    "render_s3",
]

# Where adapters leave the verified ``SigV4Result`` for the app (scope / environ key).
SIGV4_SCOPE_KEY = "authgate.sigv4"

_PRESIGN_PARAMS = frozenset(
    {
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
    }
)
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_SIGV2_ONLY = (
    "The authorization mechanism you have provided is not supported. "
    "Please use AWS4-HMAC-SHA256 (signature_version='s3v4')."
)


def _claims_sigv2(facts: RequestFacts) -> bool:
    authorization = facts.header("authorization")
    if authorization is not None:
        return authorization.startswith("AWS ")
    query = facts.query_string
    return "AWSAccessKeyId=" in query and "Signature=" in query


def claims_s3_auth(facts: RequestFacts) -> bool:
    """Whether the request is signed the AWS way: SigV4, or SigV2, which S3 clients
    still use for presigned URLs unless told ``signature_version="s3v4"``, and which
    is answered with S3's error for it rather than a bearer challenge."""
    return is_sigv4(facts) or _claims_sigv2(facts)


def new_request_id() -> str:
    """An id in the shape of S3's ``x-amz-request-id`` (16 upper-case hex digits)."""
    return secrets.token_hex(8).upper()


class _Translated(S3Error):
    """An authgate error (rate limit, not ready, a rule's refusal) in S3's words."""

    def __init__(self, error: AuthgateError, s3_code: str, status: int) -> None:
        super().__init__(error.detail, headers=error.headers)
        self.s3_code = s3_code
        self.status = status
        self.code = error.code


def as_s3_error(error: AuthgateError) -> S3Error:
    """The S3 form of any refusal of a SigV4 request, so that S3 clients can read it.

    A rate limit keeps its 429 and ``Retry-After`` (botocore retries a 429 as throttling)
    under S3's throttling code, ``SlowDown``.
    """
    if isinstance(error, S3Error):
        return error
    status = error.status
    if status == 429:
        return _Translated(error, "SlowDown", 429)
    if status in (401, 403):
        return _Translated(error, "AccessDenied", 403)
    if status == 503:
        return _Translated(error, "ServiceUnavailable", 503)
    if 400 <= status < 500:
        return _Translated(error, "InvalidRequest", status)
    return _Translated(error, "InternalError", status)


def render_s3(error: AuthgateError, method: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and S3 XML body for a refused SigV4 request (HEAD: no body)."""
    return render_s3_error(as_s3_error(error), new_request_id(), method)


@dataclass(slots=True)
class S3Pass:
    """A SigV4 request the gate let through, and what the adapter still has to do.

    ``list_grants`` is set for a ListBuckets request in ``filter`` mode: the answer must
    keep only these buckets.
    """

    result: SigV4Result | SigV2Result
    list_grants: Mapping[str, str] | None = None


def _last_item(values: Sequence[str]) -> str | None:
    if not values:
        return None
    return values[-1].rsplit(",", 1)[-1].strip() or None


def _forwarded_host(values: Sequence[str]) -> str | None:
    """``host=`` of the last ``Forwarded`` element: the one the nearest proxy added."""
    elements = [element for value in values for element in value.split(",")]
    if not elements:
        return None
    for pair in elements[-1].split(";"):
        name, _, value = pair.strip().partition("=")
        if name.strip().lower() == "host":
            return value.strip().strip('"') or None
    return None


class S3Access:
    """SigV4 verification and bucket grants for one gate.

    ``base_domains`` turn ``bucket.<domain>`` hosts into virtual-host-style buckets;
    ``store_host`` is the ``Host`` the store receives when it is not the client's (the
    gateway's ``upstream_host_header = "upstream"``); ``list_buckets`` is ``"filter"``
    (ListBuckets answers only with granted buckets) or ``"deny"``. ``is_cached`` tells,
    without I/O, whether the verifier's look-up of an access key id would be answered
    from memory.
    """

    def __init__(
        self,
        verifier: SigV4Verifier,
        *,
        proxies: TrustedProxies,
        base_domains: Sequence[str] = (),
        store_host: str | None = None,
        list_buckets: str = "filter",
        is_cached: Callable[[str], bool] | None = None,
        on_verified: Callable[[str], None] | None = None,
    ) -> None:
        if list_buckets not in ("filter", "deny"):
            raise ConfigurationError("list_buckets must be 'filter' or 'deny'")
        self.verifier = verifier
        self.proxies = proxies
        # Told each verified access key id: the runtime's usage buffer (its last use).
        self.on_verified = on_verified
        self.base_domains = tuple(base_domains)
        self.store_host = store_host
        self.list_buckets = list_buckets
        self.is_cached = is_cached

    @classmethod
    def from_runtime(cls, runtime: Runtime, proxies: TrustedProxies) -> S3Access:
        settings = runtime.settings
        store_host = None
        if settings.upstream_url is not None and settings.upstream_host_header == "upstream":
            store_host = urlsplit(settings.upstream_url).netloc
        return cls(
            runtime.sigv4,
            proxies=proxies,
            base_domains=settings.s3_base_domains,
            store_host=store_host,
            list_buckets=settings.list_buckets,
            is_cached=runtime.access_keys.cache.holds,
            on_verified=runtime.access_key_usage.record,
        )

    # -- who signed -----------------------------------------------------------------
    def signed_host(self, facts: RequestFacts) -> str | None:
        """The host the client signed: its own ``Host``, unless the request comes from a
        trusted proxy, whose ``Forwarded: host=`` or ``X-Forwarded-Host`` then stands in
        (the proxy, not the client, wrote it). ``None``: the ``Host`` header itself."""
        if not self.proxies or facts.peer is None:
            return None
        try:
            peer = ip_address(normalise_address(facts.peer) or "")
        except ValueError:
            return None
        if not self.proxies.trusts(peer):
            return None
        return _forwarded_host(facts.header_all("forwarded")) or _last_item(
            facts.header_all("x-forwarded-host")
        )

    def needs_io(self, facts: RequestFacts) -> bool:
        """Whether verifying would read the store (the key is not in memory)."""
        if self.is_cached is None:
            return True
        claimed = _claimed_key_id(facts)
        return claimed is not None and is_access_key_id(claimed) and not self.is_cached(claimed)

    def verify(self, facts: RequestFacts) -> Signed | AuthgateError:
        """The verified key as a principal, or the error to answer. Reads the store when
        the key is not in memory (``needs_io``)."""
        if not is_sigv4(facts):
            return S3InvalidRequest(_SIGV2_ONLY)
        if is_sigv2(facts):
            return InvalidArgument(ONE_MECHANISM, extra={"ArgumentName": "Authorization"})
        return self.signed(
            "SigV4", lambda: self.verifier.verify(facts, host=self.signed_host(facts))
        )

    def signed(
        self, mechanism: str, verify: Callable[[], _Result]
    ) -> tuple[Principal, _Result] | AuthgateError:
        """``verify``'s result with its principal, noted as used; or the error to answer.
        One place for every signature mechanism's failure policy."""
        try:
            result = verify()
        except (S3Error, NotReady) as exc:
            return exc
        except MasterKeyError as exc:
            # The operator's to fix: the log names the file; the client gets S3's
            # InternalError, which says nothing of this server's files.
            log.error("%s request refused: %s", mechanism, exc.detail)
            return S3Error()
        if self.on_verified is not None:
            self.on_verified(result.access_key.access_key_id)
        return principal_for(result.access_key), result

    # -- what it may do ---------------------------------------------------------------
    def authorize(self, facts: RequestFacts, result: SigV4Result | SigV2Result) -> S3Pass | S3Error:
        """The grants this request needs, checked against the key's."""
        try:
            return self._authorize(facts, result)
        except S3Error as exc:
            return exc

    def _authorize(
        self, facts: RequestFacts, result: SigV4Result | SigV2Result
    ) -> S3Pass | S3Error:
        grants = result.access_key.grants
        hosts = facts.header_all("host")
        if len(hosts) > 1:
            return S3InvalidRequest("More than one Host header: refusing to guess.")
        host = self.signed_host(facts) or facts.header("host")
        store_host = self.store_host if self.store_host is not None else facts.header("host")
        # The client signed one Host, the store reads another (a proxy's rewrite, the
        # gateway's own): both must name one bucket, or the grant is checked on the
        # wrong one.
        if host_bucket(host, self.base_domains) != host_bucket(store_host, self.base_domains):
            return AccessDenied(
                "Access Denied: the Host the store receives would name another bucket than "
                "the Host the request was signed for."
            )
        keys = [key for key, _ in split_query(facts.query_string) if key not in _PRESIGN_PARAMS]
        bucket, permission = required_grant(
            facts.method,
            facts.raw_path or facts.path,
            host,
            (unquote(key) for key in keys),
            base_domains=self.base_domains,
        )
        # Rules were matched on the canonical path; the store reads the path as sent. The
        # two must at least name one bucket (``/a/../b/k``, ``//b/k`` would not).
        if bucket_and_key(facts.path, host, self.base_domains)[0] != bucket:
            return AccessDenied(
                "Access Denied: empty or dot segments in the path would change its bucket."
            )
        if bucket is None:
            if permission != "read":
                return AccessDenied("Access Denied: no bucket named in the request.")
            if self.list_buckets == "deny":
                return AccessDenied("Access Denied: listing buckets is turned off here.")
            return S3Pass(result, list_grants=grants)
        invalid = _invalid_bucket(bucket)
        if invalid is not None:
            return invalid
        if not grant_allows(grant_for(grants, bucket) or "", permission):
            return AccessDenied(
                f"Access Denied: this access key has no {permission} grant on bucket {bucket}."
            )
        copy_sources = facts.header_all("x-amz-copy-source")
        if len(copy_sources) > 1:
            return AccessDenied("Access Denied: more than one x-amz-copy-source.")
        if copy_sources:
            # Forwarded as it is: only S3's one form of the value passes this.
            source_bucket, needed = copy_source_grant(copy_sources[0])
            invalid = _invalid_bucket(source_bucket)
            if invalid is not None:
                return invalid
            if not grant_allows(grant_for(grants, source_bucket) or "", needed):
                return AccessDenied(
                    f"Access Denied: this access key has no {needed} grant on bucket "
                    f"{source_bucket}, the copy source."
                )
        return S3Pass(result)


def _invalid_bucket(bucket: str) -> InvalidBucketName | None:
    """S3's own answer to a name it would refuse, before any grant is looked at: a key
    without a grant on ``a`` learns that ``a`` cannot be a bucket, not that it lacks one."""
    problem = bucket_name_problem(bucket)
    if problem is None:
        return None
    return InvalidBucketName(f"The specified bucket is not valid: {problem}.")


def principal_for(key: AccessKeySecret) -> Principal:
    return Principal(
        id=key.key_id or key.access_key_id,
        name=key.name,
        kind="access_key",
        grants=dict(key.grants),
    )


def _claimed_key_id(facts: RequestFacts) -> str | None:
    authorization = facts.header("authorization")
    if authorization is not None:
        match = _CREDENTIAL.search(authorization)
        return match.group(1) if match else None
    for key, value in split_query(facts.query_string):
        if key == "X-Amz-Credential":
            return unquote(value).split("/", 1)[0]
    return None


def forward_auth_refusal(passed: S3Pass) -> S3Error | None:
    """What forward auth must refuse of a verified SigV4 request: the proxy that asked
    forwards the body and the answer itself, so a signed body could not be checked nor a
    bucket list filtered. Reads, deletes and presigned (unsigned-payload) uploads pass."""
    result = passed.result
    mode = result.payload_mode
    if isinstance(result, SigV4Result) and (
        mode != "unsigned" and not (mode == "sha256" and result.content_sha256 == EMPTY_SHA256)
    ):
        return AccessDenied(
            "Access Denied: forward auth cannot check a signed body; send uploads through "
            "authgate's gateway (authgate serve --upstream)."
        )
    if passed.list_grants is not None:
        return AccessDenied(
            "Access Denied: forward auth cannot filter a bucket list; use the gateway, or "
            'list_buckets = "deny".'
        )
    return None
