"""What every operation of the OpenAPI schema shares, added once after drf-spectacular built it.

Every operation may answer 401 (a bad token), 414 (a request line over gunicorn's 4094 bytes;
gunicorn answers it with its own HTML page) and 429 (throttled); every operation with a body
may answer 413 (the body is over its limit) and 415 (a content type it does not take).
"""

import re

ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorAnswer"}
# The first sentence of a description: up to a full stop or colon that ends a clause.
FIRST_SENTENCE = re.compile(r"^(.+?)(?:[.:](?:\s|$)|$)", re.S)


def _json(description):
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


SHARED = {
    "401": _json("Missing or invalid credentials (a bad token, or none unless HYBRIDREC_PUBLIC_API)."),
    "414": {
        "description": "The request line is over 4094 bytes; gunicorn refuses it before the service sees it.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
    "429": _json("Throttled: too many requests in the window; Retry-After says when to come back."),
}
WITH_BODY = {
    "413": _json("The body is over its limit (HYBRIDREC_MAX_UPLOAD_BYTES or DATA_UPLOAD_MAX_MEMORY_SIZE)."),
    "415": _json("The body's content type is not one the operation takes."),
}


def add_shared_responses(result, generator, request, public):
    """Add the answers every operation may give (a drf-spectacular postprocessing hook)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            extra = {**SHARED, **(WITH_BODY if "requestBody" in operation else {})}
            for status, answer in extra.items():
                responses.setdefault(status, answer)
    return result


def add_summaries(result, generator, request, public):
    """Give every operation a summary (Swagger UI's line per endpoint): its description's first sentence."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            description = " ".join(operation.get("description", "").split())
            if not operation.get("summary") and description:
                summary = FIRST_SENTENCE.match(description).group(1)
                if summary.count("(") > summary.count(")"):  # the sentence ended inside a parenthesis
                    summary = summary[: summary.rindex("(")].rstrip()
                operation["summary"] = summary
    return result
