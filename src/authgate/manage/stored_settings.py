"""Settings an operator changes while authgate runs, kept in the store.

Precedence, highest first: environment variables, then the config file (and ``serve``'s
flags), then what was saved here (the console's settings page or ``PATCH
/authgate/v1/settings``), then the defaults. A setting pinned by the environment or the
file is shown but not editable here: the deployment's own configuration stays the
truth. Saved values take effect when each instance starts (``Runtime`` reads them
before it builds anything).

Secrets come back redacted as ``REDACTED``. An update that sends the marker back keeps
the stored secret, an explicit ``None`` (or empty text) clears a setting back to its
default, and a setting left out is untouched: ``UNSET`` tells "not given" from ``None``,
as httpx's ``USE_CLIENT_DEFAULT`` does.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import ValidationError

from authgate.clock import Clock, now_utc
from authgate.errors import AuthgateError, Conflict, InvalidRequest
from authgate.manage.audit import Auditor
from authgate.manage.keys import Actor
from authgate.manage.roles import RoleCatalogue
from authgate.principal import Principal
from authgate.settings import Settings
from authgate.store.protocols import SettingsStore
from authgate.suggest import closest

__all__ = [
    "EDITABLE",
    "REDACTED",
    "UNSET",
    "SettingView",
    "StoredSettings",
    "Unset",
    "with_stored",
]

log = logging.getLogger("authgate.settings")

# What an operator tunes while running; start-up wiring (ports, paths, the store's own
# URL, TLS) stays in the file or the environment.
EDITABLE: Final = (
    "scopes",
    "role_scopes",
    "default_scopes",
    "token_days_min",
    "token_days_max",
    "token_days_default",
    "login_rate_limit",
    "login_address_rate_limit",
    "failure_rate_limit",
    "key_rate_limit",
    "trusted_proxies",
    "list_buckets",
    "redis_url",
)
SECRETS: Final = frozenset({"redis_url"})  # may carry a password
REDACTED: Final = "********"

Source = Literal["environment", "config file", "saved", "default"]


class Unset(enum.Enum):
    UNSET = "unset"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True, slots=True)
class SettingView:
    """One setting as the console and the API show it: secrets already redacted."""

    name: str
    description: str
    value: Any  # what this instance runs with
    saved: Any  # what the store holds (None: nothing saved)
    source: Source
    secret: bool
    editable: bool  # False when the environment or the config file pins it

    @property
    def pending(self) -> bool:
        """Saved, but not what this instance runs with: it applies at the next start."""
        return self.editable and self.saved is not None and self.saved != self.value

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "value": self.value,
            "saved": self.saved,
            "source": self.source,
            "secret": self.secret,
            "editable": self.editable,
            "pending": self.pending,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def _redact(name: str, value: Any) -> Any:
    return REDACTED if name in SECRETS and value not in (None, "") else value


def pinned_by(settings: Settings, name: str) -> Source | None:
    """Where a setting was fixed outside the store, if it was."""
    if f"AUTHGATE_{name}".upper() in {key.upper() for key in os.environ}:
        return "environment"
    if name in settings.model_fields_set:
        return "config file"
    return None


def _validated(base: Settings, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as ``Settings`` would hold them; a bad one is a 422 naming it."""
    merged = {**base.model_dump(include=set(EDITABLE)), **values}
    try:
        checked = Settings.model_validate({**merged, "data_dir": base.data_dir})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False)
        ]
        raise InvalidRequest("; ".join(problems) + ".") from None
    # What only holds across settings (a default lifetime within the bounds, roles naming
    # known scopes) is checked where start-up checks it.
    RoleCatalogue.from_settings(checked)
    return {name: getattr(checked, name) for name in values}


def with_stored(settings: Settings, stored: Mapping[str, Any]) -> Settings:
    """``settings`` with the saved values of the settings nothing else pinned. A saved
    value that no longer validates (an upgrade tightened a rule) is ignored, loudly."""
    usable = {
        name: value
        for name, value in stored.items()
        if name in EDITABLE and pinned_by(settings, name) is None
    }
    if not usable:
        return settings
    try:
        applied = settings.model_copy(update=_validated(settings, usable))
    except AuthgateError as exc:
        log.error("the settings saved in the store are ignored: %s", exc.detail)
        return settings
    # model_copy counts an update as explicitly set, and ``pinned_by`` reads that as the
    # config file's: a saved value would turn read-only (409) after the next start.
    applied.__pydantic_fields_set__.intersection_update(settings.model_fields_set)
    return applied


class StoredSettings:
    def __init__(
        self,
        store: SettingsStore,
        auditor: Auditor,
        running: Settings,
        *,
        configured: Settings | None = None,
        clock: Clock = now_utc,
    ) -> None:
        """``running``: what this instance runs with; ``configured``: the same before
        saved values were laid over it, which tells what the environment or the file set."""
        self._store = store
        self._audit = auditor
        self._running = running
        self._configured = configured or running
        self._clock = clock

    def view(self, principal: Principal) -> list[SettingView]:
        principal.require_admin("Reading settings")
        saved = self._store.get_settings()
        return [self._one(name, saved) for name in EDITABLE]

    def _one(self, name: str, saved: Mapping[str, Any]) -> SettingView:
        pinned = pinned_by(self._configured, name)
        held = saved.get(name)
        source: Source = pinned or ("saved" if held is not None else "default")
        field = Settings.model_fields[name]
        return SettingView(
            name=name,
            description=" ".join((field.description or "").split()),
            value=_redact(name, _jsonable(getattr(self._running, name))),
            saved=_redact(name, held),
            source=source,
            secret=name in SECRETS,
            editable=pinned is None,
        )

    def update(
        self, principal: Principal, actor: Actor, changes: Mapping[str, Any | Unset]
    ) -> list[SettingView]:
        """Save ``changes`` (see the module's docstring for the marker, ``None`` and
        ``UNSET``); every change is audited, a secret's only as ``"changed"``."""
        principal.require_admin("Changing settings")
        saved = self._store.get_settings()
        values: dict[str, Any] = {}
        removed: list[str] = []
        for name, value in changes.items():
            self._check_editable(name)
            if value is UNSET or (name in SECRETS and value == REDACTED):
                continue
            if value is None or value == "":
                if name in saved:
                    removed.append(name)
            else:
                values[name] = value
        checked = {
            name: _jsonable(value) for name, value in _validated(self._running, values).items()
        }
        changed = {name: value for name, value in checked.items() if saved.get(name) != value}
        if changed or removed:
            detail = {
                name: self._change(name, saved.get(name), changed.get(name))
                for name in [*changed, *removed]
            }
            event = self._audit.event(
                actor.id, "settings.update", source=actor.source, changes=detail
            )
            self._store.update_settings(changed, removed, self._clock(), actor.id, audit=event)
            self._audit.logged(event)
        return self.view(principal)

    def _check_editable(self, name: str) -> None:
        if name not in EDITABLE:
            hint = closest(name, EDITABLE)
            suggestion = f" Did you mean {hint!r}?" if hint else ""
            raise InvalidRequest(
                f"{name!r} is not a setting that can be changed here.{suggestion} "
                f"Editable: {', '.join(EDITABLE)}."
            )
        pinned = pinned_by(self._configured, name)
        if pinned is not None:
            raise Conflict(
                f"{name} is set by the {pinned}, which takes precedence: change it there."
            )

    @staticmethod
    def _change(name: str, old: Any, new: Any) -> dict[str, Any]:
        if name in SECRETS:
            return {"changed": True, "cleared": new is None}
        return {"old": old, "new": new}
