# Varco: the one entry point for building, running and testing.
# `make test` is what CI runs (.ci/run); it installs what the tests need on a fresh Debian machine.

SHELL := /bin/bash
CARGO ?= cargo
# Debian packages the test suite drives as real components.
# buildah (+ binutils' objcopy) builds and runs the container image in tests/tests/image.rs.
TEST_PACKAGES := xmlsec1 openssl curl python3-venv nginx prometheus chromium postgresql redis-server \
	buildah binutils

.PHONY: help run test deps fmt-check lint unit image bench load load-auth load-acs load-hostile flood-login hostile-instructions bench-compare soak compare-pysaml2 compare-satosa profile-acs fuzz-smoke fuzz-check

help: ## list targets
	@awk 'BEGIN{FS=":.*##"} /^[a-z0-9-]+:.*##/{printf "%-14s %s\n",$$1,$$2}' $(MAKEFILE_LIST)

run: ## start Varco with the dev config and the demo IdP (http://localhost:8080/)
	@./scripts/install-deps.sh openssl curl
	@./scripts/dev-run.sh

test: deps fmt-check lint fuzz-check unit ## everything CI checks: install test deps, fmt, clippy, fuzz targets compile, all tests

deps: ## install the Debian packages and the npm packages of the browser and OpenID client tests (idempotent)
	@./scripts/install-deps.sh $(TEST_PACKAGES)
	@./scripts/browser-deps.sh
	@./scripts/oidc-node-deps.sh

fmt-check: ## rustfmt, no changes allowed
	$(CARGO) fmt --all -- --check

lint: ## clippy on every target, warnings are errors
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# The fuzz crate is its own workspace (outside `lint`/`unit`), so without this nothing notices
# when an API change breaks a target. A type check only: no libFuzzer build, no fuzzing.
fuzz-check: ## every fuzz target type-checks on stable (fuzz/README.md), and is formatted
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) check --manifest-path fuzz/Cargo.toml --all-targets --locked --no-default-features

unit: ## unit, vector, interop, API and end-to-end tests (e2e runs the built binaries)
	$(CARGO) build --workspace --bins --locked
	$(CARGO) test --workspace --locked

image: ## the container image localhost/varco:dev with buildah, no daemon (docs/OPERATIONS.md)
	@./scripts/install-deps.sh buildah binutils
	$(CARGO) build --release --locked --bin varco
	./scripts/build-image.sh target/release/varco localhost/varco:dev

bench: ## criterion benchmarks (numbers go to docs/PERFORMANCE.md)
	$(CARGO) bench -p xmldsig --bench verify --locked
	$(CARGO) bench -p metadata --bench registry --locked
	$(CARGO) bench -p identity --bench token --locked
	$(CARGO) bench -p jose --bench jws --locked
	$(CARGO) bench -p oidfed --bench chain --locked
	$(CARGO) bench -p oidfed --bench oidc --locked
	$(CARGO) bench -p broker --bench acs --locked
	$(CARGO) bench -p broker --bench audit --locked

load: load-auth load-acs ## both load harnesses below (docs/PERFORMANCE.md)

load-auth: ## /auth with a session vs nginx `return 204` (wrk)
	./scripts/load-auth.sh

load-hostile: ## worst-case requests' CPU vs a normal Response; /auth while the ACS and SLO are flooded
	./scripts/load-hostile.sh

flood-login: ## 5-minute /saml/login flood: RSS every 30 s, logins started before it completed after (limits on, then off)
	./scripts/flood-login.sh

hostile-instructions: ## callgrind instructions of each worst-case request against a normal validation (repeatable under load)
	./scripts/hostile-instructions.sh

bench-compare: ## every ratio of issues 17 and 20 in one run, with the load and steal beside each
	./scripts/bench-compare.sh

load-acs: ## logins: ACS maximum, ACS at RATE (default 2000/s), full logins (crates/loadgen)
	./scripts/load-acs.sh

soak: ## full logins at RATE (default 250/s) for SECONDS_ (default 600); errors and RSS growth
	./scripts/soak.sh

compare-pysaml2: ## the same signed Responses validated by Varco and by pysaml2 (three backends)
	./scripts/compare-pysaml2.sh

compare-satosa: ## CPU per ACS POST: SATOSA 8.6.0 (gunicorn, SAML2 backend, bench frontend) against Varco, one run
	./scripts/compare-satosa.sh

profile-acs: ## callgrind instruction counts of the ACS path, in process and in the live server
	./scripts/profile-acs.sh

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := xml_parse c14n dsig_verify dsig_mutate acs_response metadata_load oidfed_statement sdjwt_presentation mdoc_response work_bound representation_file oidc_request

fuzz-smoke: ## run every fuzz target (fuzz/README.md) for FUZZ_SECONDS s each (default 60)
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t; \
		cp fuzz/seeds/$$t/* fuzz/corpus/$$t/; \
		extra=-dict=fuzz/xml.dict; [ $$t != dsig_mutate ] || extra=-max_len=512; \
		[ $$t != oidfed_statement ] || extra=-dict=fuzz/jose.dict; \
		[ $$t != sdjwt_presentation ] || extra=-dict=fuzz/jose.dict; \
		[ $$t != representation_file ] || extra=-dict=fuzz/jose.dict; \
		[ $$t != oidc_request ] || extra=-dict=fuzz/jose.dict; \
		echo "== fuzz $$t, $(FUZZ_SECONDS) s"; \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=1 $$extra; \
	done
