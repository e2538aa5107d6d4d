"""One myguard per listen address: a lock file per address in the runtime directory.

The workers of one myguard share a port with SO_REUSEPORT; the kernel would let a second
myguard (an old rules file, say) join them just as silently and take a share of the
connections. The locks are flock(2) locks: the kernel drops them with the last process
holding the file open, so a crashed myguard leaves no stale lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


class AddressInUse(OSError):
    """Another myguard holds the lock of a listen address."""


def runtime_directory() -> Path:
    """systemd's RuntimeDirectory=, else $XDG_RUNTIME_DIR/myguard, else a per-user
    directory in /tmp: the same for every myguard of this user on this machine."""
    if os.environ.get("RUNTIME_DIRECTORY"):
        path = Path(os.environ["RUNTIME_DIRECTORY"])
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "myguard"
    else:
        path = Path(tempfile.gettempdir()) / f"myguard-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    # In a shared /tmp another user could have made it first, and so hold our locks.
    if path.stat().st_uid != os.getuid():
        raise OSError(errno.EPERM, "the runtime directory belongs to another user", str(path))
    return path


def lock_listen_addresses(addresses: Iterable[tuple[str, int]]) -> list[int]:
    """Lock every address for this process; the returned descriptors hold the locks and
    must stay open (workers inherit them). Raises AddressInUse naming the holder's pid."""
    directory = runtime_directory()
    held: list[int] = []
    try:
        for host, port in addresses:
            path = directory / f"listen-{host}-{port}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            held.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                raise AddressInUse(
                    errno.EADDRINUSE,
                    f"{host}:{port}: address in use by another myguard (pid {pid})",
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        for fd in held:
            os.close(fd)
        raise
    return held
