"""Files that hold secrets: 0600 in a 0700 folder, so from the first byte.

The standard library does not offer "create with this mode, refuse a loose folder"; the
few lines here do it with ``os.open`` so no umask or race can widen a secret file.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from authgate.errors import ConfigurationError

__all__ = [
    "check_secret_file",
    "ensure_private_dir",
    "read_secret_bytes",
    "read_secret_file",
    "write_secret_file",
]


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

    The temporary file is created by ``mkstemp`` in the target folder, which opens it with
    ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600: the secret never exists with a wider
    mode, and a crash leaves the old file (or none), never half of one.
    ``overwrite=False`` creates the file only if it does not exist: when two processes race
    to create it, one wins and the other gets ``FileExistsError`` and the winner's whole
    file is already in place to be read (``link`` publishes it complete, or not at all).
    """
    ensure_private_dir(path.parent)
    try:
        _write_atomically(path, content, overwrite=overwrite)
    except FileExistsError:
        raise
    except OSError as exc:
        # A read-only folder or a full disk: said as such, not as a traceback.
        raise ConfigurationError(
            f"cannot write {path}: {exc.strerror}; make {path.parent} writable or free "
            "disk space, then start again"
        ) from exc


def _write_atomically(path: Path, content: str, *, overwrite: bool) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            # rename() replaces a symbolic link itself, never the file it points to.
            os.replace(tmp, path)
        else:
            # link() fails if the target (or a link of that name) exists: never clobber.
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_secret_bytes(path: Path) -> bytes:
    """The bytes of a secret file, if it is a regular file of ours that no one else reads.

    Opened with ``O_NOFOLLOW`` and checked on the open descriptor (``fstat``), so what is
    checked is what is read: a symbolic link, a file of another user, or one the group or
    others can read is refused with a ``ConfigurationError`` that says what to do.
    ``FileNotFoundError`` is left to the caller, who knows whether missing is fine.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _symlink_refused(path) from None
        raise ConfigurationError(
            f"cannot read {path}: {exc.strerror}; give it to the user authgate runs as "
            "(mode 0600), or fix or delete the file and start again."
        ) from exc
    try:
        check_secret_file(path, os.fstat(fd))
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def read_secret_file(path: Path) -> str:
    """The text of a secret file (see :func:`read_secret_bytes`), stripped."""
    data = read_secret_bytes(path)
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"cannot read {path}: {exc}; fix or delete the file and start again."
        ) from exc


def check_secret_file(path: Path, info: os.stat_result) -> None:
    """Refuse what ``info`` (an ``lstat`` or ``fstat`` of ``path``) says is unsafe."""
    if stat.S_ISLNK(info.st_mode):
        raise _symlink_refused(path)
    if not stat.S_ISREG(info.st_mode):
        raise ConfigurationError(
            f"{path} is not a regular file, as a secret file must be: fix or delete the file "
            "and start again."
        )
    if info.st_uid != os.getuid():
        raise ConfigurationError(
            f"{path} belongs to uid {info.st_uid}, not to the user authgate runs as "
            f"(uid {os.getuid()}); give it to that user (run as root: chown {os.getuid()} "
            f"{path}) or run authgate as its owner."
        )
    if info.st_mode & 0o077:
        raise ConfigurationError(
            f"{path} is readable by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )


def _symlink_refused(path: Path) -> ConfigurationError:
    # Whoever can change a link can make authgate read (or trust) another file.
    return ConfigurationError(
        f"{path} is a symbolic link; secret files are read only as regular files: put the "
        f"file itself there (it points to {os.path.realpath(path)})."
    )
