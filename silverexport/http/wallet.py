"""The older synchronous wallet export: token transfers touching one wallet, streamed."""

from __future__ import annotations

import contextlib
import functools
import re

from aiohttp import hdrs, web

from ..errors import ValidationError
from ..model import ExportFormat
from ..silver.writers import iter_wallet_export
from .bridge import iterate_blocking
from .common import SYSTEM, query_params

_WALLET = re.compile(r"0x[0-9a-fA-F]{40}")


async def wallet_export(request: web.Request) -> web.StreamResponse:
    wallet = request.match_info["wallet"]
    if not _WALLET.fullmatch(wallet):
        raise ValidationError(
            '"wallet" must be 0x followed by 40 hexadecimal digits', field="wallet"
        )
    fmt = _format(request)
    headers = {hdrs.CONTENT_TYPE: fmt.content_type}
    if request.method == hdrs.METH_HEAD:
        # aiohttp would put a streamed body on the wire even for HEAD: answer headers only.
        return web.Response(headers=headers)
    system = request.app[SYSTEM]
    make = functools.partial(
        iter_wallet_export,
        system.store,
        wallet.lower(),
        fmt,
        max_records=system.settings.max_records,
    )
    async with contextlib.aclosing(iterate_blocking(request, make)) as chunks:
        # The first chunk comes before the status line: an error up to here is still JSON.
        first = await anext(chunks, None)
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        if first is not None:
            await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response


WALLET_FORMATS = (ExportFormat.JSONL.value, ExportFormat.CSV.value)


def _format(request: web.Request) -> ExportFormat:
    value = query_params(request, ("format",)).get("format", "jsonl")
    if value not in WALLET_FORMATS:  # a synchronous stream: the line formats only
        raise ValidationError('"format" must be "jsonl" or "csv"', field="format")
    return ExportFormat(value)
