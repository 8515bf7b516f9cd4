"""A PostgreSQL cluster of the tests' own, on a free port, to stop, kill and resume.

The machine's shared server (127.0.0.1:5432) is never touched: fault tests pause and
kill only the processes of this cluster, found from its postmaster's pid.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

import sqlalchemy as sa

from tests.support import free_port, wait_until

__all__ = ["PgCluster", "postgres_bin"]


def postgres_bin(program: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"))
    if not found:
        raise RuntimeError(f"{program} not found under /usr/lib/postgresql/*/bin")
    return found[-1]


def _as_postgres(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PgCluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="authgate-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip

    def _run(self, *command: str) -> None:
        subprocess.run(_as_postgres(list(command)), check=True, capture_output=True, timeout=120)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", options, "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        self.resume()
        subprocess.run(
            _as_postgres([postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def new_database(self) -> str:
        name = f"authgate_faults_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    # -- faults ------------------------------------------------------------------------
    def _postmaster(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def processes(self) -> list[int]:
        """The postmaster and its children (the backends serving connections)."""
        postmaster = self._postmaster()
        if postmaster is None or not Path(f"/proc/{postmaster}").exists():
            return []
        children = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(Path(stat).parent.name))
        return [postmaster, *children]

    def _signal(self, signum: int, pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung server)."""
        self._signal(signal.SIGSTOP, self.processes())

    def resume(self) -> None:
        self._signal(signal.SIGCONT, list(reversed(self.processes())))

    def kill(self) -> None:
        """SIGKILL every process of the cluster (a crashed server)."""
        pids = self.processes()
        self._signal(signal.SIGKILL, pids)
        assert wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in pids), 30)
