# binpack packs itself: `make image` builds the release binary and its image with binpack.
VERSION ?= $(shell cargo metadata --no-deps --format-version 1 | sed -n 's/.*"name":"binpack","version":"\([^"]*\)".*/\1/p')

.PHONY: build test image bench

build:
	cargo build --release

test:
	scripts/test.sh

image:
	cargo run --release --quiet -- cargo --bin binpack -t binpack:$(VERSION) -o dist/binpack.tar

bench:
	scripts/bench.sh
