"""Which process listens on a TCP port, read from Linux's /proc: the listening sockets' inodes in
/proc/net/tcp and /proc/net/tcp6, matched to the `socket:[inode]` links in /proc/<pid>/fd.

Answers are `None` where there is no /proc (not Linux). A process whose descriptors we may not read (another
user's, when we are not root) holds nothing as far as these functions can tell.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
LISTEN = "0A"  # the TCP state column's value for a listening socket


def listening_inodes(port: int) -> set[int] | None:
    """Inodes of the sockets listening on `port` (any address, IPv4 or IPv6); None without /proc/net/tcp."""
    tables = [PROC / "net" / "tcp", PROC / "net" / "tcp6"]
    if not tables[0].exists():
        return None
    inodes: set[int] = set()
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int) -> set[int] | None:
    """Inodes of the sockets process `pid` holds open; None when its descriptors cannot be read."""
    try:
        fds = list((PROC / str(pid) / "fd").iterdir())
    except OSError:  # gone, or another user's
        return None
    inodes: set[int] = set()
    for fd in fds:
        try:
            link = os.readlink(fd)
        except OSError:  # closed since the listing
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def listens_on(pid: int, port: int) -> bool | None:
    """Whether process `pid` holds a socket listening on `port`; None without /proc (not Linux)."""
    listening = listening_inodes(port)
    if listening is None:
        return None
    held = socket_inodes(pid)  # None: gone, or not ours to read (then it is not ours either)
    return held is not None and bool(listening & held)


def listener(port: int) -> int | None:
    """The pid of a process listening on `port`, when one can be found among the processes we may look at."""
    listening = listening_inodes(port)
    if not listening:
        return None
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (held := socket_inodes(int(entry.name))) and held & listening:
            return int(entry.name)
    return None
