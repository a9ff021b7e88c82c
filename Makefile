# tripline: build every artifact, run the main job, run every test.
# `make demo` is the main job; `make test` runs all tests (what .ci/run calls), the real
# Fluent Bit's included.

SHELL := /bin/bash
CARGO ?= cargo
DIST := dist
WASM_BINDGEN_VERSION := 0.2.130
# Each artifact has its own target directory so that feature sets never overwrite each other.
T := target/artifacts

.PHONY: all build setup fluentbit extism js component aot example-data demo test test-rust test-js test-python test-browser bench clean

all: build

setup:
	./scripts/setup.sh

build: setup fluentbit extism js component
	@./scripts/report-sizes.sh $(DIST)

fluentbit: setup
	$(CARGO) build --lib --profile artifact --locked --target wasm32-wasip1 --features fluentbit --target-dir $(T)/fluentbit
	@mkdir -p $(DIST) && cp $(T)/fluentbit/wasm32-wasip1/artifact/tripline.wasm $(DIST)/tripline-fluentbit.wasm

extism: setup
	$(CARGO) build --lib --profile artifact --locked --target wasm32-unknown-unknown --features extism --target-dir $(T)/extism
	@mkdir -p $(DIST) && cp $(T)/extism/wasm32-unknown-unknown/artifact/tripline.wasm $(DIST)/tripline-extism.wasm

component: setup
	$(CARGO) build --lib --profile artifact --locked --target wasm32-wasip2 --features component --target-dir $(T)/component
	@mkdir -p $(DIST) && cp $(T)/component/wasm32-wasip2/artifact/tripline.wasm $(DIST)/tripline-component.wasm

js: setup
	$(CARGO) build --lib --profile artifact --locked --target wasm32-unknown-unknown --features js --target-dir $(T)/js
	@mkdir -p $(DIST)/js
	wasm-bindgen --target web --out-dir $(DIST)/js --out-name tripline $(T)/js/wasm32-unknown-unknown/artifact/tripline.wasm
	cp js/package.json js/index.js js/index.d.ts js/README.md $(DIST)/js/

# The Fluent Bit module compiled ahead of time (docs/aot.md), by the wamrc of the WAMR inside Fluent
# Bit's own source (scripts/fluent-bit.sh wamrc builds it once): an .aot file loads only in that WAMR release.
# Fluent Bit builds WAMR without SIMD, which refuses SIMD-enabled .aot files; bulk memory and
# reference types are on in that runtime, as in wamrc's defaults. The target is baseline x86-64,
# not wamrc's default of the build machine's CPU, whose newer instructions would crash Fluent Bit
# on an older CPU (and bought nothing measurable); arm64: AOT_FLAGS="--disable-simd --target=aarch64v8".
AOT_FLAGS := --disable-simd --target=x86_64
aot: fluentbit
	wamrc=$$(./scripts/fluent-bit.sh wamrc) && $$wamrc $(AOT_FLAGS) -o $(DIST)/tripline-fluentbit.aot $(DIST)/tripline-fluentbit.wasm

example-data:
	@mkdir -p examples/data/generated
	@test -s examples/data/generated/cloudtrail.ndjson || \
	  $(CARGO) run --release --locked -q -p tripline-generate -- \
	    --out examples/data/generated/cloudtrail.ndjson --planted examples/data/generated/planted.json

# The main job: build the Fluent Bit module, fit a baseline on the first three weeks of the
# example data, replay all of it through the module as Fluent Bit would, show the alerts.
demo: fluentbit example-data
	./scripts/demo.sh

# `aot` too: the .aot is tested in the real Fluent Bit like the .wasm (its wamrc is built once).
test: build aot example-data test-rust test-js test-python test-browser

# The real Fluent Bit (built once from ../shared/fluent-bit into a cache) runs in these tests.
test-rust:
	fluent_bit=$$(./scripts/fluent-bit.sh) && FLUENT_BIT=$$fluent_bit $(CARGO) test --release --locked --workspace

test-js: js example-data
	cd js && node --test test/

test-python: extism example-data
	./scripts/test-python.sh

test-browser:
	./scripts/test-browser.sh

# Native peers, the harness, then the real Fluent Bit section: scripts/bench.sh also gets the fluent-bit
# binary (scripts/fluent-bit.sh, built once and cached) and the module's wasm-opt build.
# BENCH_LONG=1 adds the memory run: tripline over ten million records (a 14 GB file, generated once
# under target/bench/; about 15 minutes more on 2 cores); `make bench BENCH_LONG=0` leaves it out.
BENCH_LONG ?= 1
bench: fluentbit aot example-data
	BENCH_LONG=$(BENCH_LONG) ./scripts/bench.sh

clean:
	rm -rf $(DIST) $(T) examples/data/generated
