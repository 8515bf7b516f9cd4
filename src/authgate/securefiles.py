"""Files that hold secrets: 0600 in a 0700 folder, so from the first byte.

The standard library does not offer "create with this mode, refuse a loose folder"; the
few lines here do it with ``os.open`` so no umask or race can widen a secret file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from authgate.errors import ConfigurationError

__all__ = ["ensure_private_dir", "read_secret_file", "write_secret_file"]


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` as 0700 if missing; refuse one another user owns or others can enter."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        pass  # a file in the way: reported just below
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the folder {path}: {exc.strerror}; point the data folder elsewhere."
        ) from exc
    info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigurationError(f"{path} is not a folder; point the data folder elsewhere.")
    if info.st_uid != os.getuid():
        raise ConfigurationError(
            f"{path} belongs to uid {info.st_uid}, not to this user (uid {os.getuid()}); "
            "use a folder of your own (--data-dir or AUTHGATE_DATA_DIR)."
        )
    if info.st_mode & 0o077:
        raise ConfigurationError(
            f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run: chmod 700 {path}"
        )
    return path


def write_secret_file(path: Path, content: str, *, overwrite: bool = False) -> None:
    """Write ``content`` to ``path`` with mode 0600, atomically.

    The temporary file is created 0600 by ``mkstemp`` in the target folder, so the secret
    never exists with a wider mode, and a crash leaves the old file (or none), never half
    of one. ``overwrite=False`` refuses to replace an existing file.
    """
    ensure_private_dir(path.parent)
    if path.exists() and not overwrite:
        raise ConfigurationError(f"{path} already exists; refusing to overwrite it.")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() fails if the target appeared meanwhile: never clobber a secret.
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_secret_file(path: Path) -> str:
    """Read a secret file, refusing one that other users can read."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    if info.st_mode & 0o077:
        raise ConfigurationError(
            f"{path} is readable by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read {path}: {exc}; fix or delete the file and start again."
        ) from exc
