"""Output locks: one writer per artifact directory, for the whole run of a stage.

    @locks_output("cfg.output")          # on a stage's entry point: the lock is held while it runs
    def run(cfg: ShardConfig): ...

    with output_lock(url): ...           # the same, as a block

A stage holds `{output}/.lock` while it writes its artifact. A second writer fails at once with one
line naming the holder (host, pid, command, since when) instead of interleaving its files with the
first one's. The lock file is removed on release; a directory the lock had to create is removed
too when the stage left nothing in it.

Local paths: an OS lock (flock) on the lock file, which also works across machines on NFS. The OS
releases it when its process ends, however it ends (SIGKILL too), so a lock file whose flock is
free is stale by definition: the next writer takes it over and says so in one line.

Remote URLs (gs://, s3://, ...): no OS lock reaches an object store. The lock is an object created
with exclusive-create semantics (fsspec's mode "xb": a conditional write in gcsfs, s3fs and adlfs
of 2024-12 or later; elsewhere an existence check, then the write) and read back to confirm it is
ours, so two writers starting within the same instant on a filesystem without conditional writes
could still both proceed. A holder on this machine whose process is gone is taken over; a holder
on another machine cannot be checked, so the error names it and says to delete the lock object
once that process is known to be gone (a preempted VM, say).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import inspect
import json
import os
import shlex
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from mdeberta import io

LOCK = ".lock"
_COMMAND_CHARS = 200  # of the holder's command line in messages: one line, even for 10k inputs
_STORED_CHARS = 4000  # of the command line kept in the lock file (read back in one small read)


class LockedError(OSError):
    """The output directory is being written by another process (the message names it)."""


def locks_output(argument: str) -> Callable:
    """Decorate a stage's entry point so it runs holding the lock on its output directory.

    argument: the parameter that holds the output URL, with attributes after dots ("output",
    "cfg.output").
    """
    name, *attributes = argument.split(".")

    def decorate(stage: Callable) -> Callable:
        signature = inspect.signature(stage)

        @functools.wraps(stage)
        def locked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            url = functools.reduce(getattr, attributes, bound.arguments[name])
            with output_lock(url):
                return stage(*args, **kwargs)

        return locked

    return decorate


@contextlib.contextmanager
def output_lock(url: str) -> Iterator[None]:
    """Hold the lock on the artifact directory `url` for the block (LockedError if it is held)."""
    if not url:
        raise ValueError("no output directory given")
    url = str(url).rstrip("/")
    if io.is_local(url):
        path = io.url_to_fs(url)[1]
        created = not os.path.exists(path)
        os.makedirs(path, exist_ok=True)
        fd = _lock_local(path)
        try:
            yield
        finally:
            _unlock_local(path, fd, created)
    else:
        token = _lock_remote(url)
        try:
            yield
        finally:
            _unlock_remote(url, token)


def read_holder(url: str) -> dict[str, Any] | None:
    """Who holds (or last held, if it died) the lock of `url`; None if nobody or unreadable."""
    lock = io.join(url, LOCK)
    try:
        return _parse(io.read_text(lock))
    except (FileNotFoundError, UnicodeDecodeError):
        return None


# helpers


def _me() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "command": _command()[:_STORED_CHARS],
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "token": uuid.uuid4().hex,
    }


def _command() -> str:
    """This process's command line as a user typed it: `mdeberta clean ...`, `python -m ...`."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if spec is not None and spec.name:  # python -m package
        program = "python -m " + spec.name.removesuffix(".__main__")
    elif program == "-c":
        program = "python -c"
    return " ".join([program, shlex.join(sys.argv[1:])]).strip()


def _parse(text: str) -> dict[str, Any] | None:
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return None
    return holder if isinstance(holder, dict) and "pid" in holder else None


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "another process (it is starting: its details are not written yet)"
    command = str(holder.get("command", "?"))
    if len(command) > _COMMAND_CHARS:
        command = command[:_COMMAND_CHARS] + "..."
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')} (`{command}`)"
    )


def _refusal(url: str, holder: dict[str, Any] | None, hint: str = "") -> LockedError:
    return LockedError(
        f"{url} is being written by {_describe(holder)}; wait for it to finish or write "
        f"elsewhere{hint} (lock: {io.join(url, LOCK)})"
    )


def _say_taken_over(url: str, holder: dict[str, Any]) -> None:
    print(
        f"mdeberta: {url}: took over a stale lock of {_describe(holder)}: that process is gone",
        file=sys.stderr,
    )


# local: flock


def _lock_local(directory: str) -> int:
    """Lock `{directory}/.lock` (write our details into it) and return its descriptor."""
    path = os.path.join(directory, LOCK)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _parse(os.pread(fd, 1 << 16, 0).decode("utf-8", "replace"))
            os.close(fd)
            raise _refusal(directory, holder) from None
        # The previous holder removes the file on release, maybe after we opened it: then we
        # hold a lock on a file nobody else will open, so lock the new one instead.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)
    previous = _parse(os.pread(fd, 1 << 16, 0).decode("utf-8", "replace"))
    if previous is not None:
        _say_taken_over(directory, previous)
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(_me()).encode(), 0)
    os.fsync(fd)
    return fd


def _unlock_local(directory: str, fd: int, created: bool) -> None:
    try:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(directory, LOCK))  # while still locked: see _lock_local
    finally:
        os.close(fd)
    if created:
        with contextlib.suppress(OSError):  # not empty: the stage wrote something
            os.rmdir(directory)


# remote: an object created exclusively


def _lock_remote(url: str) -> str:
    """Create `{url}/.lock` if no live process holds it; return the token that makes it ours."""
    fs, path = io.url_to_fs(io.join(url, LOCK))
    me = _me()
    for _ in range(3):  # a stale lock removed, then created again by someone faster: refused
        if not fs.exists(path):
            try:
                with fs.open(path, "xb") as f:
                    f.write(json.dumps(me).encode())
            except FileExistsError:
                pass
            holder = read_holder(url)
            if holder is not None and holder.get("token") == me["token"]:
                return me["token"]
        holder = read_holder(url)
        if holder is None or not _dead_here(holder):
            unseen = holder is None or holder.get("host") != me["host"]
            hint = f"; if that process is gone, delete {io.join(url, LOCK)}" if unseen else ""
            raise _refusal(url, holder, hint)
        _say_taken_over(url, holder)
        with contextlib.suppress(FileNotFoundError):
            fs.rm(path)
    raise _refusal(url, read_holder(url))


def _dead_here(holder: dict[str, Any]) -> bool:
    """Whether the holder ran on this machine and its process no longer exists."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _unlock_remote(url: str, token: str) -> None:
    holder = read_holder(url)
    if holder is not None and holder.get("token") == token:
        fs, path = io.url_to_fs(io.join(url, LOCK))
        fs.rm(path)
