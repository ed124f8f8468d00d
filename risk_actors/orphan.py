"""Orphan guard: an actor whose parent process died exits instead of running on its own.

thespian forks each child actor from its parent's process, so the OS parent *is* the parent
actor. After a kill -9 of part of the tree, the survivors would otherwise keep a broker session
or keep enforcing with an old config beside a freshly started daemon.
"""

from __future__ import annotations

import os

from loguru import logger

CHECK_SECONDS = 2.0


class ParentWatch:
    """Remembers the parent pid at start; ``check()`` exits the process once it has changed."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.ppid = os.getppid()

    def check(self) -> None:
        if os.getppid() != self.ppid:
            logger.error("{}: parent process {} is gone; exiting", self.who, self.ppid)
            os._exit(0)
