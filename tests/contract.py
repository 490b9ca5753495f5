"""The API's answers held to its own OpenAPI document: the schema a route declares for the status it
answered, checked as JSON Schema (OpenAPI 3.1's dialect is JSON Schema 2020-12).

Shared by the unit tests (the app over stand-in services) and the serving integration test (the
deployed app over real services), so both read the same contract the UI's types are generated from.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema


class Contract:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.paths = [
            (re.compile("^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(path)) + "$"), path)
            for path in document["paths"]
        ]

    def template(self, path: str) -> str | None:
        """The document's path that ``path`` is an instance of (a literal one first)."""
        if path in self.document["paths"]:
            return path
        return next((t for pattern, t in self.paths if pattern.match(path)), None)

    def schema(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        """The JSON schema declared for this answer, or None where the document declares none."""
        template = self.template(path)
        operation = self.document["paths"].get(template or "", {}).get(method.lower())
        answer = (operation or {}).get("responses", {}).get(str(status))
        return (answer or {}).get("content", {}).get("application/json", {}).get("schema")

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        """Fail with every mismatch when ``body`` is not what the route declares for ``status``."""
        schema = self.schema(method, path, status)
        if schema is None:
            return
        root = {**schema, "components": self.document.get("components", {})}
        errors = sorted(
            jsonschema.Draft202012Validator(root).iter_errors(body), key=lambda e: e.json_path
        )
        lines = []
        for error in errors[:10]:
            lines.append(f"  {error.json_path}: {error.message[:200]}")
            # Why each option of a union did not fit (the answer's own mistake is among them).
            lines += [f"    {e.json_path}: {e.message[:200]}" for e in error.context or []][:6]
        assert not errors, f"{method} {path} answered {status} off its schema:\n" + "\n".join(lines)
