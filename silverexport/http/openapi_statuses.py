"""The error statuses of the OpenAPI document: what each status means and the headers it
carries, and the refusals every operation lists. Kept in one place so that every route
describes a status the same way and none can forget the ones the server adds before routing."""

from __future__ import annotations

from typing import Any

from .openapi_blocks import json_response, ref


def error_responses(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Invalid request; the message names the field",
        401: "Missing or wrong API key",
        404: "Unknown job (or another tenant's)",
        409: "Conflict with the job's state; the message says the status",
        410: "The job expired and its file was deleted",
        412: "If-Match (or If-Unmodified-Since) did not match the file",
        413: "The request body is too large",
        416: "The range is not satisfiable; Content-Range gives the file's size",
        429: "The tenant has as many jobs queued as it may; retry after Retry-After seconds",
        503: "The export system is busy or shutting down, or a backend (its database, the "
        "export-file store) is out of reach; retry after Retry-After seconds",
    }
    out: dict[str, Any] = {}
    for status in statuses:
        headers: dict[str, Any] = {}
        if status == 401:
            headers["WWW-Authenticate"] = {"required": True, "schema": {"type": "string"}}
        if status in (429, 503):
            headers["Retry-After"] = {"required": True, "schema": {"type": "string"}}
        if status == 416:
            headers["Content-Range"] = {"required": True, "schema": {"type": "string"}}
        response = json_response(reasons[status], ref("Error"))
        if headers:
            response["headers"] = headers
        out[str(status)] = response
    return out


# What any route answers to a request the server refuses before routing it (silverexport.http.
# server): so every operation lists them, including ones added later.
_REFUSALS = {
    "400": "The request line is over the server's limit, or the request is not valid HTTP",
    "431": "A request header is over the server's limit, or there are too many headers",
}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def with_refusals(paths: dict[str, Any]) -> dict[str, Any]:
    for item in paths.values():
        for method, operation in item.items():
            if method in _METHODS:
                responses = operation["responses"]
                for status, reason in _REFUSALS.items():
                    responses.setdefault(status, json_response(reason, ref("Error")))
    return paths
