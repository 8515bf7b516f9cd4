"""Tokens configured by the operator: ``AUTHGATE_TOKENS`` and a token file, re-read on change."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from authgate.credentials.tokens import digest
from authgate.errors import ConfigurationError
from authgate.principal import Principal
from authgate.securefiles import read_secret_bytes
from authgate.settings import MIN_STATIC_TOKEN_LENGTH

__all__ = ["StaticTokens", "read_token_file"]

# Static tokens act for the service they were given to: every application scope, but
# they are not administrators of authgate itself.
STATIC_SCOPES = frozenset({"*"})


@dataclass(frozen=True, slots=True)
class _FileStamp:
    inode: int
    size: int
    mtime_ns: int


def read_token_file(path: Path) -> list[str]:
    """One token a line; blank lines and ``#`` comments are skipped.

    The file is a secret file: a symbolic link, a file of another user, or one the group
    or others can read is refused (``read_secret_bytes``).
    """
    try:
        data = read_secret_bytes(path)
    except FileNotFoundError:
        raise ConfigurationError(f"token file {path} does not exist") from None
    except ConfigurationError as exc:
        raise ConfigurationError(f"token file: {exc.detail}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"cannot read token file {path}: {exc}") from exc
    tokens = []
    for number, line in enumerate(text.splitlines(), start=1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        if len(token) < MIN_STATIC_TOKEN_LENGTH:
            raise ConfigurationError(
                f"token file {path}, line {number}: the token has {len(token)} characters; "
                f"every token needs at least {MIN_STATIC_TOKEN_LENGTH} "
                "(make one with: authgate token generate)"
            )
        tokens.append(token)
    return tokens


def _principal(source: str, index: int, token_digest: str) -> Principal:
    # The id names where the token came from and a digest fragment, never the token.
    return Principal(
        id=f"static:{token_digest[:12]}",
        name=f"{source} #{index}",
        kind="static_token",
        scopes=STATIC_SCOPES,
    )


class StaticTokens:
    """digest → principal for configured tokens; the file part reloads when it changes."""

    def __init__(self, env_tokens: tuple[str, ...], token_file: Path | None) -> None:
        self._env = {
            digest(token): _principal("AUTHGATE_TOKENS", index, digest(token))
            for index, token in enumerate(env_tokens, start=1)
        }
        self._file = token_file
        self._file_stamp: _FileStamp | None = None
        self._from_file: dict[str, Principal] = {}
        if token_file is not None:
            self.reload_if_changed()

    def lookup(self, token_digest: str) -> Principal | None:
        return self._env.get(token_digest) or self._from_file.get(token_digest)

    def __len__(self) -> int:
        return len(self._env) + len(self._from_file)

    def reload_if_changed(self) -> bool:
        """Re-read the token file if it changed; a bad new file keeps the old tokens."""
        if self._file is None:
            return False
        try:
            info = os.lstat(self._file)  # a link put in its place is seen, and refused
        except FileNotFoundError:
            if self._file_stamp is None:
                raise ConfigurationError(f"token file {self._file} does not exist") from None
            return False
        stamp = _FileStamp(info.st_ino, info.st_size, info.st_mtime_ns)
        if stamp == self._file_stamp:
            return False
        tokens = read_token_file(self._file)
        self._from_file = {
            digest(token): _principal(str(self._file), index, digest(token))
            for index, token in enumerate(tokens, start=1)
        }
        self._file_stamp = stamp
        return True
