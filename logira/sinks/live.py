"""Live followers (`logira tail`): fan out flushed JSONL lines without ever blocking.

The session publishes the exact bytes it has just flushed to events.jsonl, so a follower
sees the same lines as the file (including the hash suffix). Each follower has a bounded
buffer; a follower that falls behind by more than `limit` lines is cut off with a reason
instead of slowing the pipeline (the stored run stays complete, tail can re-read the file).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

SendFn = Callable[[list[str]], Awaitable[None]]


class Follower:
    """One `follow` client: a bounded line buffer drained by its own sender task."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buf: collections.deque[str] = collections.deque()
        self.wake = asyncio.Event()
        self.overflowed = False
        self.ended = False
        self.sent = 0
        self.on_overflow: Callable[[], None] | None = None  # e.g. cut the connection off

    def push(self, lines: list[str]) -> None:
        if self.overflowed or self.ended:
            return
        if len(self.buf) + len(lines) > self.limit:
            self.overflowed = True
            self.buf.clear()
            if self.on_overflow is not None:
                self.on_overflow()
        else:
            self.buf.extend(lines)
        self.wake.set()

    def end(self) -> None:
        self.ended = True
        self.wake.set()

    async def pump(self, send: SendFn, batch: int = 1024) -> str:
        """Send buffered lines until the run ends or the follower overflows; returns why it stopped."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.overflowed:
                return "overflow"
            while self.buf:
                n = min(batch, len(self.buf))
                lines = [self.buf.popleft() for _ in range(n)]
                await send(lines)
                self.sent += n
                if self.overflowed:
                    return "overflow"
            if self.ended:
                return "ended"


class LiveHub:
    """The followers of one run."""

    def __init__(self) -> None:
        self.followers: set[Follower] = set()
        self.cut_off = 0  # followers disconnected for being too slow
        self.closed = False  # the run has ended: late followers end at once

    def __bool__(self) -> bool:
        return bool(self.followers)

    def add(self, limit: int) -> Follower:
        f = Follower(limit)
        if self.closed:
            f.end()
        else:
            self.followers.add(f)
        return f

    def remove(self, f: Follower) -> None:
        self.followers.discard(f)

    def publish(self, lines: list[str]) -> None:
        for f in list(self.followers):
            f.push(lines)
            if f.overflowed:
                self.cut_off += 1
                self.followers.discard(f)

    def end(self) -> None:
        self.closed = True
        for f in list(self.followers):
            f.end()
        self.followers.clear()
