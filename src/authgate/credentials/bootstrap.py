"""The bootstrap admin key: made on first start, kept in a 0600 file, never served."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from authgate.credentials.tokens import digest, generate_token, is_well_formed
from authgate.errors import ConfigurationError
from authgate.securefiles import ensure_private_dir, read_secret_file, write_secret_file

__all__ = ["AdminKey", "load_or_create_admin_key"]


@dataclass(frozen=True, slots=True)
class AdminKey:
    path: Path
    digest: str
    created: bool


def load_or_create_admin_key(path: Path, prefix: str) -> AdminKey:
    """Reuse the key in ``path``, or create it. A damaged file is reported, never replaced.

    Instances starting together on one fresh data folder race to create it: the file
    appears whole or not at all (``write_secret_file``), one wins, and the others read
    the winner's key, so every instance accepts the same one.
    """
    ensure_private_dir(path.parent)
    try:
        token = read_secret_file(path)
    except FileNotFoundError:
        generated = generate_token(prefix)
        try:
            write_secret_file(path, generated.token + "\n")
        except FileExistsError:
            token = read_secret_file(path)  # another instance made it first: use theirs
        else:
            return AdminKey(path=path, digest=generated.digest, created=True)
    if not is_well_formed(token, prefix):
        raise ConfigurationError(
            f"the admin key file {path} does not hold a valid authgate key; "
            "delete it and start again to make a new one"
        )
    return AdminKey(path=path, digest=digest(token), created=False)


def read_admin_key(path: Path) -> str:
    try:
        return read_secret_file(path)
    except FileNotFoundError:
        raise ConfigurationError(
            f"no admin key at {path}: start the server once (authgate serve) to create it"
        ) from None
