"""Credential verifiers: one per kind of credential, behind one small interface.

A verifier says whether a request carries its kind of credential (``claims``) and then
who it is (``verify``): a ``Principal``, or the ``AuthgateError`` to answer. ``verify``
does no I/O itself: it returns its answer when memory gives it, or a flow (a generator,
see ``authgate.pipeline``) that yields a ``Need`` for each read it must make and receives
its result. The gate asks its verifiers in order and the first that claims the request
decides who it is; rules, rate limits, the localhost bypass and failure counting then
apply the same way to every kind.

The built-in kinds, in the order they are asked: SigV2 and SigV4 access keys and POST
policy uploads (S3 clients and browsers), JWTs from the ``jwt_issuers``
(``authgate.credentials.external_jwt``), the admin key, static tokens, API keys. Custom
verifiers come after them, so they see the
requests none of those claims: a header of their own, or an ``Authorization`` scheme other
than ``Bearer``. Register one with the ``verifiers`` setting (``"module:Name"``, called
with the ``Runtime``) or ``AuthgateMiddleware(..., verifiers=[...])``; see
``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from authgate.credentials.headers import extract_token
from authgate.credentials.tokens import digest
from authgate.errors import AuthgateError, ConfigurationError, NotReady
from authgate.extras import require
from authgate.facts import RequestFacts
from authgate.masterkey import MasterKeyError
from authgate.pipeline import Flow, Need, Step
from authgate.principal import Principal
from authgate.s3.access import S3Access, Signed, claims_s3_auth, principal_for
from authgate.s3.buckets import grant_for
from authgate.s3.grants import grant_allows
from authgate.s3.post_form import PostForm
from authgate.s3.post_policy import claimed_key_id, upload_bucket, verify_post_policy
from authgate.s3.sigv2 import S3SigV2, SignedV2
from authgate.sigv2 import is_sigv2
from authgate.sigv4 import AccessDenied, S3Error

if TYPE_CHECKING:
    from authgate.credentials.authenticator import Authenticator
    from authgate.runtime import Runtime

__all__ = [
    "AdminKey",
    "ApiKeys",
    "Decision",
    "FactsRequest",
    "PostPolicyUploads",
    "Request",
    "SigV2AccessKeys",
    "SigV4AccessKeys",
    "StaticTokens",
    "Verifier",
    "VerifierFactory",
    "external_jwts",
    "load_verifiers",
]

Decision = Principal | AuthgateError

log = logging.getLogger("authgate.s3")


class Request:
    """What verifiers see of one request; adapters build it.

    ``facts()`` gives every header, the query and the peer. ``credential()`` is the one
    ``X-API-Key`` / ``Authorization: Bearer`` token (or the error that its headers are),
    ``digest()`` that token's SHA-256 (``None`` without one; an adapter that reads raw
    headers may hash a lone header's token as sent). ``may_sign`` is a hint that
    costs nothing to read: ``False`` when the request has no ``Authorization`` header
    other than ``Bearer`` and no presigned query, so no AWS signature can be in it.
    ``detail`` is for the verifier that claims the request, to keep what it verified
    beside the principal (SigV4 keeps its ``SigV4Result``). ``form`` is a browser
    upload's form (an S3 POST policy), its fields read before the decision by the adapter.
    """

    __slots__ = ("_credential", "_digest", "detail", "form", "may_sign")

    def __init__(self, *, may_sign: bool) -> None:
        self.may_sign = may_sign
        self._credential: str | AuthgateError | None = None
        self._digest: str | None = None
        self.detail: object = None
        self.form: PostForm | None = None

    def facts(self) -> RequestFacts:
        raise NotImplementedError

    def _choose_credential(self) -> str | AuthgateError:
        return extract_token(self.facts())

    def credential(self) -> str | AuthgateError:
        found = self._credential
        if found is None:
            found = self._credential = self._choose_credential()
        return found

    def digest(self) -> str | None:
        if self._digest is None:
            token = self.credential()
            if isinstance(token, str):
                self._digest = digest(token)
        return self._digest


class FactsRequest(Request):
    """A request whose facts an adapter has already built (WSGI, forward auth, the
    token service's dependencies)."""

    __slots__ = ("_facts",)

    def __init__(self, facts: RequestFacts) -> None:
        authorization = facts.header("authorization")
        query = facts.query_string
        super().__init__(
            may_sign=(authorization is not None and authorization[:7].lower() != "bearer ")
            or "X-Amz-" in query
            or "AWSAccessKeyId=" in query
        )
        self._facts = facts

    def facts(self) -> RequestFacts:
        return self._facts


@runtime_checkable
class Verifier(Protocol):
    """One kind of credential. ``claims`` must be cheap and do no I/O: it runs for every
    request the verifiers before it did not claim. ``verify`` runs only for a request it
    claimed; an exception it raises (or a ``Need`` it yields raises and it does not
    catch) is answered 500, never a pass."""

    def claims(self, request: Request) -> bool: ...

    def verify(self, request: Request) -> Step[Decision]: ...


class AdminKey:
    """The bootstrap admin key (``admin.key`` in the data folder)."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    def claims(self, request: Request) -> bool:
        token_digest = request.digest()
        return token_digest is not None and self._authenticator.admin_for(token_digest) is not None

    def verify(self, request: Request) -> Step[Decision]:
        token_digest = request.digest()
        assert token_digest is not None
        return self._authenticator.admin_for(token_digest) or AuthgateError()


class StaticTokens:
    """Tokens from the ``tokens`` setting or ``token_file``: known in memory only."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    def claims(self, request: Request) -> bool:
        token_digest = request.digest()
        return token_digest is not None and self._authenticator.static_for(token_digest) is not None

    def verify(self, request: Request) -> Step[Decision]:
        token_digest = request.digest()
        assert token_digest is not None
        return self._authenticator.static_for(token_digest) or AuthgateError()


class ApiKeys:
    """API keys: answered from the key cache, else read from the store (a flow). Claims
    every bearer token the kinds before it did not, so a wrong token is refused here."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    def claims(self, request: Request) -> bool:
        return request.digest() is not None

    def verify(self, request: Request) -> Step[Decision]:
        token_digest = request.digest()
        assert token_digest is not None
        authenticator = self._authenticator
        principal = authenticator.cached_key(token_digest)
        if principal is not None:
            return principal
        token = request.credential()
        if not isinstance(token, str):
            return token
        return authenticator.token_step(token)


class _S3Signatures(Protocol):
    """What a signed-request verifier asks of its S3 reading (``S3Access``, ``S3SigV2``)."""

    def needs_io(self, facts: RequestFacts) -> bool: ...
    def verify(self, facts: RequestFacts) -> Signed | SignedV2 | AuthgateError: ...


class _SignedRequests:
    """A request signed with an access key: verified from memory when the secret is
    cached, else with one read of the store."""

    s3: _S3Signatures

    def verify(self, request: Request) -> Step[Decision]:
        facts = request.facts()
        if self.s3.needs_io(facts):
            return self._from_store(request, facts)
        return _signed(request, self.s3.verify(facts))

    def _from_store(self, request: Request, facts: RequestFacts) -> Flow[Decision]:
        outcome: Signed | SignedV2 | AuthgateError = yield Need(partial(self.s3.verify, facts))
        return _signed(request, outcome)


class SigV4AccessKeys(_SignedRequests):
    """Requests signed the AWS way (S3 clients): SigV4, or SigV2 when it is off, refused in
    S3's words. The gate renders its refusals as S3 errors and checks the key's bucket
    grants after the rule (``authgate.s3.access``)."""

    def __init__(self, s3: S3Access) -> None:
        self.s3 = s3

    def claims(self, request: Request) -> bool:
        return request.may_sign and claims_s3_auth(request.facts())


class SigV2AccessKeys(_SignedRequests):
    """Requests signed with S3's Signature Version 2 (header or presigned URL), with the
    same access keys as SigV4. Asked before ``SigV4AccessKeys``, it claims every request
    with a SigV2 part, so one that also carries SigV4 is refused here, not half-read."""

    def __init__(self, s3: S3SigV2) -> None:
        self.s3 = s3

    def claims(self, request: Request) -> bool:
        return request.may_sign and is_sigv2(request.facts())


class PostPolicyUploads:
    """Browser uploads signed by an S3 POST policy (``authgate.s3.post_policy``): the form's
    fields, read by the adapter before the file, name the access key and carry the
    signature. The key needs ``write`` on the bucket; the file's size is checked as it
    streams (``request.form``), and every refusal is S3's."""

    def __init__(self, s3: S3Access, runtime: Runtime) -> None:
        self.s3 = s3
        self._lookup = runtime.access_keys.secret_lookup
        self._is_cached = runtime.access_keys.cache.holds
        self._region = runtime.settings.sigv4_region
        self._clock = runtime.clock

    def claims(self, request: Request) -> bool:
        return request.form is not None

    def verify(self, request: Request) -> Step[Decision]:
        form = request.form
        assert form is not None
        claimed = claimed_key_id(form.fields) or ""
        return self._verified(request, form, in_memory=self._is_cached(claimed))

    def _verified(self, request: Request, form: PostForm, *, in_memory: bool) -> Flow[Decision]:
        try:
            bucket = upload_bucket(request.facts(), self.s3.base_domains, self.s3.store_host)
        except S3Error as exc:
            return exc
        check = partial(
            verify_post_policy,
            form,
            bucket,
            self._lookup,
            region=None if self._region == "*" else self._region,
            now=self._clock(),
        )
        try:
            result = yield Need(check, in_memory=in_memory)
        except (S3Error, NotReady) as exc:
            return exc
        except MasterKeyError as exc:
            # The operator's to fix, as for SigV4: the log names the file, the client
            # gets S3's InternalError.
            log.error("POST policy upload refused: %s", exc.detail)
            return S3Error()
        grants = result.access_key.grants
        if not grant_allows(grant_for(grants, bucket) or "", "write"):
            return AccessDenied(
                f"Access Denied: this access key has no write grant on bucket {bucket}."
            )
        request.detail = result
        return principal_for(result.access_key)


def _signed(request: Request, outcome: Signed | SignedV2 | AuthgateError) -> Decision:
    if isinstance(outcome, AuthgateError):
        return outcome
    principal, request.detail = outcome
    return principal


VerifierFactory = Callable[["Runtime"], Verifier]


def external_jwts(runtime: Runtime) -> tuple[Verifier, ...]:
    """The ``jwt_issuers`` verifier, when any issuer is configured (the ``jwt`` extra)."""
    if not runtime.settings.jwt_issuers:
        return ()
    for module in ("joserfc", "httpx"):
        require(module, extra="jwt", needed_for="jwt_issuers")
    from authgate.credentials.external_jwt import verifier_for

    return (verifier_for(runtime),)


def load_verifier(spec: str) -> VerifierFactory:
    """``"package.module:Name"``: the callable that builds a verifier from the runtime."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"verifiers: {spec!r} is not 'module:Name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"verifiers: cannot import {module_name!r}: {exc}") from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigurationError(f"verifiers: {module_name!r} has no callable {attribute!r}")
    built: VerifierFactory = factory
    return built


def load_verifiers(
    runtime: Runtime, extra: Sequence[Verifier | VerifierFactory | str] = ()
) -> list[Verifier]:
    """The custom verifiers of ``runtime``'s settings, then ``extra``: each a verifier, a
    callable that builds one from the runtime, or a ``"module:Name"`` naming such a
    callable."""
    built: list[Verifier] = []
    for item in (*runtime.settings.verifiers, *extra):
        verifier: object
        if not isinstance(item, type | str) and isinstance(item, Verifier):
            verifier = item
        else:
            factory = load_verifier(item) if isinstance(item, str) else item
            verifier = factory(runtime)
        if not isinstance(verifier, Verifier):
            raise ConfigurationError(f"verifiers: {item!r} built no verifier (claims, verify)")
        built.append(verifier)
    return built
