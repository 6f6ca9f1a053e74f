"""Checks shared by the generated-client tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# shared/ sits beside the repository root (as in CI).
REFERENCE_CONTRACT = REPO.parent / "shared" / "reference" / "weaviate-0.12.0-swagger.json"
WEFT_DOCUMENT = REPO / "openapi" / "weft-openapi.json"


def assert_error_body(status: int, body: bytes | str | None, *, mentions: str | None = None) -> str:
    """Every 4xx of the API carries the contract's ErrorResponse, exactly
    {"error": [{"message": "..."}, ...]} with at least one non-empty message.
    Returns the first message; `mentions` must occur in it when given."""
    assert 400 <= status < 500, f"expected a 4xx, got {status}"
    assert body, f'{status} with an empty body; the contract\'s error body is {{"error":[{{"message":...}}]}}'
    text = body.decode() if isinstance(body, bytes) else body
    try:
        parsed: Any = json.loads(text)
    except json.JSONDecodeError as err:
        raise AssertionError(f"{status} body is not JSON ({err}): {text!r}") from None
    assert isinstance(parsed, dict) and set(parsed) == {"error"}, f'{status} body is not {{"error": [...]}}: {parsed!r}'
    errors = parsed["error"]
    assert isinstance(errors, list) and errors, f"{status} body's error is not a non-empty array: {parsed!r}"
    for item in errors:
        assert isinstance(item, dict) and set(item) == {"message"}, (
            f'{status} body\'s error item is not {{"message": str}}: {item!r}'
        )
        assert isinstance(item["message"], str) and item["message"].strip(), (
            f"{status} body's message is not a non-empty string: {item!r}"
        )
    first = errors[0]["message"]
    if mentions is not None:
        assert mentions in first, f"the error message does not name {mentions!r}: {first!r}"
    return first


def contract_properties(contract: dict, definition: str) -> set[str]:
    """The property names a Swagger 2.0 definition allows, following allOf and $ref."""
    schema = contract["definitions"][definition]
    names: set[str] = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        if "$ref" in part:
            names |= contract_properties(contract, part["$ref"].rsplit("/", 1)[-1])
        names |= set(part.get("properties", {}))
    return names
