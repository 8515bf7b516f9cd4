"""The audit log: who did what to which credential, when and from where."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from authgate.clock import Clock, now_utc
from authgate.store.records import AuditEvent

__all__ = ["Auditor"]

log = logging.getLogger("authgate.audit")


class AuditSink(Protocol):
    def append_audit(self, event: AuditEvent) -> None: ...


class Auditor:
    def __init__(self, sink: AuditSink, clock: Clock = now_utc) -> None:
        self._sink = sink
        self._clock = clock

    def record(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        source: str | None = None,
        outcome: str = "success",
        **detail: Any,
    ) -> None:
        event = self.event(actor, action, target=target, source=source, outcome=outcome, **detail)
        self._sink.append_audit(event)
        self.logged(event)

    def event(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        source: str | None = None,
        outcome: str = "success",
        **detail: Any,
    ) -> AuditEvent:
        """The entry for a change, for the store to commit in the change's own transaction
        (then ``logged`` once it has)."""
        return AuditEvent(
            at=self._clock(),
            actor=actor,
            action=action,
            target=target,
            source=source,
            outcome=outcome,
            detail=detail,
        )

    @staticmethod
    def logged(event: AuditEvent) -> None:
        log.info(
            "audit %s %s target=%s outcome=%s",
            event.actor,
            event.action,
            event.target,
            event.outcome,
        )
