"""Write the ingest service's OpenAPI schema to `openapi.yaml` (or check it is current).

    .venv/bin/python scripts/export_openapi.py           # rewrite openapi.yaml
    .venv/bin/python scripts/export_openapi.py --check   # exit 1 if openapi.yaml is stale

The schema comes from the app itself (`create_app`), built with a placeholder school: it
does not depend on the schools file or on the environment. The YAML is deterministic
(insertion order, fixed width, block style for multi-line text) so diffs stay readable.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.main import openapi_document  # noqa: E402  (needs the repo on sys.path first)
from consumers.settings import SchoolsFile  # noqa: E402

DEFAULT_OUTPUT = REPO / "openapi.yaml"


def placeholder_schools() -> SchoolsFile:
    """Return a schools file with one made-up school: the schema does not depend on it."""
    return SchoolsFile.model_validate(
        {
            "schools": [
                {
                    "id": "example",
                    "webhook_secrets": ["whsec_ZXhhbXBsZS1zZWNyZXQtbm90LXVzZWQ="],
                    "isams": {
                        "base_url": "https://isams.example",
                        "client_id": "example",
                        "client_secret": "unused",
                    },
                    "managebac": {"base_url": "https://managebac.example", "token": "unused"},
                }
            ]
        }
    )


def build_schema() -> dict[str, Any]:
    """Return the app's OpenAPI schema as plain JSON data."""
    # Defaults only (the environment must not leak in), on services that connect to nothing.
    schema: dict[str, Any] = orjson.loads(orjson.dumps(openapi_document(placeholder_schools())))
    return schema


class _Dumper(yaml.SafeDumper):
    """Safe YAML with multi-line strings as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def render(schema: dict[str, Any]) -> str:
    """Render the schema as deterministic YAML."""
    return yaml.dump(
        schema, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, indent=2
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    text = render(build_schema())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current == text:
            return 0
        sys.stderr.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                text.splitlines(keepends=True),
                str(args.output),
                "generated",
            )
        )
        sys.stderr.write(f"{args.output} is stale: run scripts/export_openapi.py\n")
        return 1
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
