"""Leaked keys: a report that a token was seen in public revokes it at once.

GitHub's secret-scanning partner program sends such reports (``authgate.leakalerts``
checks their signature); an admin sends them by hand with ``authgate keys report-leak``.
A report carries the token itself, so possession is proven and nothing else need be:
a live key is revoked there and then, with the report's URL in the audit entry its
owner and the admins read. The answer says only whether the token was authgate's
(``true_positive``), never which key or whose.

The bootstrap admin key and static tokens live in files and the configuration, not in
the store: they cannot be revoked from here. A report of one is logged at CRITICAL and
audited, with what to do, and still labelled a true positive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from authgate.clock import Clock, now_utc
from authgate.credentials.tokens import digest, is_well_formed
from authgate.manage.audit import Auditor
from authgate.manage.keys import Actor, KeyService
from authgate.principal import Principal
from authgate.store.protocols import KeyStore

__all__ = ["GITHUB_ACTOR_ID", "LeakFinding", "LeakReport", "LeakService"]

log = logging.getLogger("authgate.leaks")

GITHUB_ACTOR_ID = "github-secret-scanning"
Label = Literal["true_positive", "false_positive"]


@dataclass(frozen=True, slots=True)
class LeakReport:
    """One token seen in public: where (``url``) and in what (``source``, e.g. commit)."""

    token: str
    type: str = "authgate_api_key"
    url: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class LeakFinding:
    report: LeakReport
    label: Label
    # For the log and the audit entry only: the answer to the reporter never names it.
    key_id: str | None = None

    def feedback(self) -> dict[str, str]:
        """GitHub's feedback format, the token by its SHA-256 (a secret is never echoed)."""
        return {
            "token_hash": digest(self.report.token),
            "token_type": self.report.type,
            "label": self.label,
        }


class LeakService:
    def __init__(
        self,
        store: KeyStore,
        keys: KeyService,
        auditor: Auditor,
        *,
        token_prefix: str,
        configured: Callable[[str], Principal | None],
        clock: Clock = now_utc,
    ) -> None:
        self._store = store
        self._keys = keys
        self._audit = auditor
        self._prefix = token_prefix
        # The admin key's or a static token's principal, by digest.
        self._configured = configured
        self._clock = clock

    def report(self, actor: Actor, reports: Sequence[LeakReport]) -> list[LeakFinding]:
        """Revoke every reported token that is a key of ours; one finding per report."""
        return [self._one(actor, report) for report in reports]

    def _one(self, actor: Actor, report: LeakReport) -> LeakFinding:
        # The checksum refuses what was never ours without a look-up.
        if not is_well_formed(report.token, self._prefix):
            return LeakFinding(report, "false_positive")
        token_digest = digest(report.token)
        configured = self._configured(token_digest)
        if configured is not None:
            self._alarm(actor, report, configured)
            return LeakFinding(report, "true_positive", configured.id)
        record = self._store.find_key_by_digest(token_digest)
        if record is None:
            return LeakFinding(report, "false_positive")
        revoked = self._keys.revoke_leaked(
            actor, record.id, url=report.url, found_in=report.source, token_type=report.type
        )
        if revoked:
            log.warning(
                "key %s revoked: reported leaked by %s at %s",
                record.id,
                actor.id,
                report.url or "(no URL)",
            )
        return LeakFinding(report, "true_positive", record.id)

    def _alarm(self, actor: Actor, report: LeakReport, principal: Principal) -> None:
        remedy = (
            "delete the admin key file and restart every instance"
            if principal.kind == "admin_key"
            else "remove the token from AUTHGATE_TOKENS or the token file"
        )
        log.critical(
            "%s (%s) was reported leaked by %s at %s; it cannot be revoked from the store: %s now",
            principal.name,
            principal.id,
            actor.id,
            report.url or "(no URL)",
            remedy,
        )
        self._audit.record(
            actor.id,
            "key.leak_reported",
            target=principal.id,
            source=actor.source,
            outcome="failure",
            url=report.url,
            reason=f"cannot be revoked from the store: {remedy}",
        )
