"""A small Server-Sent Events reader for tests: parses the stream as a browser would."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson

DEADLINE = 30.0


@dataclass(frozen=True)
class Message:
    id: str | None
    event: str | None
    data: Any  # the parsed JSON of `data:`; None for a comment
    comment: str | None = None
    retry: int | None = None


class SSEReader:
    """Reads messages (and comments) one at a time from an aiohttp response."""

    def __init__(self, response) -> None:
        self.response = response

    async def next(self, timeout: float = DEADLINE) -> Message | None:
        """The next message or comment; None at the end of the stream."""
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> Message | None:
        fields: dict[str, str] = {}
        while True:
            raw = await self.response.content.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\n")
            if line == "":
                if fields:
                    return _message(fields)
                continue
            if line.startswith(":"):
                return Message(None, None, None, comment=line[1:].strip())
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = f"{fields[name]}\n{value}" if name in fields else value

    async def events(self, timeout: float = DEADLINE) -> list[Message]:
        """Every event message up to the end of the stream (comments and retry skipped)."""
        out = []
        while (message := await self.next(timeout)) is not None:
            if message.event is not None:
                out.append(message)
        return out

    async def next_event(self, timeout: float = DEADLINE) -> Message | None:
        while (message := await self.next(timeout)) is not None:
            if message.event is not None:
                return message
        return None


def _message(fields: dict[str, str]) -> Message:
    data = fields.get("data")
    return Message(
        fields.get("id"),
        fields.get("event"),
        None if data is None else orjson.loads(data),
        retry=int(fields["retry"]) if "retry" in fields else None,
    )
