"""Processes that change keys until they are killed: run by test_crash_safe.py.

This program imports authgate once and then forks one writer per line it reads, so that
each round of killing costs a fork, not a fresh interpreter. A line names the writer:

    loop URL SEED OUT        create, rotate and revoke keys at random, for ever
    create URL - OUT         one change, then stop
    rotate URL KEY_ID OUT
    revoke URL KEY_ID OUT
    reap PID                 wait for a writer that was killed; answers its exit status

It answers each writer line with the writer's pid. A writer appends one line to the file
OUT per change once the store has acknowledged it (``create ID``, ``rotate OLD NEW``,
``revoke ID``, or ``done``), with a plain write(2): what it wrote survives its SIGKILL.
"""

from __future__ import annotations

import os
import random
import sys
import traceback
from datetime import timedelta

from authgate.manage.audit import Auditor
from authgate.manage.keys import Actor, KeyService
from authgate.store import open_store

ACTOR = Actor("admin", "crash-test")


def write(out: int, *words: str) -> None:
    os.write(out, (" ".join(words) + "\n").encode())


def run(mode: str, url: str, arg: str, out: int) -> None:
    store = open_store(url)
    keys = KeyService(store, Auditor(store), token_prefix="ag")
    if mode == "loop":
        loop(keys, random.Random(arg), arg, out)
    elif mode == "create":
        keys.create(ACTOR, name="one")
    elif mode == "rotate":
        keys.rotate(ACTOR, arg, grace=timedelta(minutes=5))
    elif mode == "revoke":
        keys.revoke(ACTOR, arg)
    write(out, "done")


def loop(keys: KeyService, rng: random.Random, run: str, out: int) -> None:
    live: list[str] = []
    serial = 0
    write(out, "ready")
    while True:
        action = rng.choice(("create", "create", "rotate", "revoke")) if live else "create"
        if action == "create":
            serial += 1
            created = keys.create(ACTOR, name=f"r{run}-{serial}")
            live.append(created.record.id)
            write(out, "create", created.record.id)
        elif action == "rotate":
            old = live.pop(rng.randrange(len(live)))
            successor = keys.rotate(ACTOR, old, grace=timedelta(minutes=5))
            live.append(successor.record.id)
            write(out, "rotate", old, successor.record.id)
        else:
            gone = live.pop(rng.randrange(len(live)))
            keys.revoke(ACTOR, gone)
            write(out, "revoke", gone)


def fork_writer(mode: str, url: str, arg: str, path: str) -> int:
    pid = os.fork()
    if pid:
        return pid
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    status = 0
    try:
        run(mode, url, arg, out)
    except BaseException:
        write(out, "error", traceback.format_exc().replace("\n", " | "))
        status = 1
    os._exit(status)


def main() -> None:
    for line in sys.stdin:
        words = line.split()
        if words[0] == "reap":
            _, status = os.waitpid(int(words[1]), 0)
            print(os.waitstatus_to_exitcode(status), flush=True)
        else:
            print(fork_writer(*words), flush=True)


if __name__ == "__main__":
    main()
