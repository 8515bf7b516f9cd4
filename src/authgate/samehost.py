"""Revocations between processes on one host, without Redis.

``authgate serve --workers N`` runs N processes on one data folder, and a local CLI
(``authgate keys revoke``) is one more. The store's change feed reaches each of them
within a poll interval; this channel makes it immediate: every process binds a Unix
datagram socket in ``<data_dir>/run/`` (0700, so only authgate's own user can send), and
a revocation is sent to every socket there. Each listener answers once it has forgotten
the key, and ``publish`` returns when every one has (or after ``ACK_SECONDS``, for a
process too stuck to answer): so a revoke that has returned is already refused by every
process that answered. A message only makes a process forget a cached verdict, so even a
forged one could cost a store read, never let anything in.

Written by hand: the standard library's sockets are all it takes, and no library offers
a same-host fan-out without a broker.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from authgate.errors import ConfigurationError
from authgate.securefiles import ensure_private_dir

__all__ = ["SameHostBroadcast"]

log = logging.getLogger("authgate.samehost")

_SUFFIX = ".sock"
_ACK_SUFFIX = ".ack"  # a publisher's reply socket: never a target of publish
_MAX_MESSAGE = 256  # key ids are short; anything longer is not ours
# How long a revoke waits for the other processes to say they forgot the key: they answer
# from a thread of their own, so only a stopped or swamped process takes this long.
ACK_SECONDS = 0.5


class SameHostBroadcast:
    """Publish a revoked key id to every authgate process on this data folder."""

    def __init__(self, folder: Path, on_revoked: Callable[[str], None]) -> None:
        self.folder = folder
        self._on_revoked = on_revoked
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
        self._listener: socket.socket | None = None
        self._dir_fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _address(self, name: str) -> str:
        # Through the folder's descriptor: a Unix socket path is limited to 108 bytes, and
        # data folders (a test's temporary one, a deep home) can be longer than that.
        assert self._dir_fd is not None
        return f"/proc/self/fd/{self._dir_fd}/{name}"

    def _open_folder(self) -> bool:
        if self._dir_fd is not None:
            return True
        try:
            ensure_private_dir(self.folder)
            self._dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        except (OSError, ConfigurationError) as exc:
            log.warning("same-host revocation channel unavailable (%s)", exc)
            return False
        return True

    def start(self) -> None:
        """Listen before returning, so no revocation sent after start is missed."""
        if not self._open_folder():
            return
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            listener.bind(self._address(self._name))
        except OSError as exc:
            listener.close()
            log.warning("same-host revocation channel unavailable (%s)", exc)
            return
        listener.settimeout(0.5)
        self._listener = listener
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen, name="authgate-samehost", daemon=True)
        self._thread.start()

    def publish(self, key_id: str) -> None:
        if not self._open_folder():
            return
        try:
            names = [name for name in os.listdir(self.folder) if name.endswith(_SUFFIX)]
        except OSError as exc:
            log.warning("same-host revocation not sent (%s); the change feed carries it", exc)
            return
        reply_name = f"{os.getpid()}-{secrets.token_hex(8)}{_ACK_SUFFIX}"
        message = f"{reply_name} {key_id}".encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            try:
                sender.bind(self._address(reply_name))
            except OSError as exc:
                log.warning("same-host revocation sent without waiting for answers (%s)", exc)
                reply_name = ""
            sender.setblocking(False)
            try:
                waiting = {
                    name
                    for name in names
                    if name != self._name and self._send(sender, name, message)
                }
                if reply_name:
                    self._await_answers(sender, waiting)
            finally:
                if reply_name:
                    self._unlink(reply_name)

    def _await_answers(self, sender: socket.socket, waiting: set[str]) -> None:
        deadline = time.monotonic() + ACK_SECONDS
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning(
                    "same-host revocation: %d process(es) did not answer; polling carries it",
                    len(waiting),
                )
                return
            sender.settimeout(left)
            try:
                answer = sender.recv(_MAX_MESSAGE)
            except TimeoutError:
                continue
            except OSError:
                return
            waiting.discard(answer.decode("ascii", "replace"))

    def _send(self, sender: socket.socket, name: str, message: bytes) -> bool:
        """Send ``message`` to listener ``name``; whether it was queued there."""
        try:
            sender.sendto(message, self._address(name))
        except ConnectionRefusedError:
            # Nobody listens there any more: a process that died without cleaning up.
            self._unlink(name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            # A full queue (a stuck process) must not hold up the revoke that sends this.
            log.warning("same-host revocation to %s not sent (%s); polling carries it", name, exc)
        else:
            return True
        return False

    def _unlink(self, name: str) -> None:
        try:
            os.unlink(self.folder / name)
        except OSError:
            pass

    def _listen(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stop.is_set():
            try:
                data = listener.recv(_MAX_MESSAGE)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply_name, _, key_id = data.decode("ascii").partition(" ")
            except UnicodeDecodeError:
                continue
            if key_id:
                self._on_revoked(key_id)
            if reply_name.endswith(_ACK_SUFFIX) and "/" not in reply_name:
                self._answer(listener, reply_name)

    def _answer(self, listener: socket.socket, reply_name: str) -> None:
        try:
            listener.sendto(self._name.encode(), self._address(reply_name))
        except OSError:
            pass  # the publisher stopped waiting; nothing is lost but the wait

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            self._unlink(self._name)
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None
