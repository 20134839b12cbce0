# The README's two commands: `make demo` and `make test`. Each installs what is
# missing, configures, builds, then runs the demo or every test.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSANDCI_WERROR=ON

PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps configure build install install-files test unit demo bench fuzz test-asan clean

all: build

deps:
	bash scripts/install-deps.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)

configure: $(BUILD_DIR)/CMakeCache.txt

build: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The agent's files where docs/operations.md and the systemd units expect them:
# the binary, the Docker egress runtime wrapper (docs/security.md), the units, and
# the configuration folders (root only). Never overwrites /etc/sandci's contents.
install: build
	$(MAKE) install-files

install-files:
	install -D -m 755 $(BUILD_DIR)/sandci $(DESTDIR)$(PREFIX)/bin/sandci
	install -D -m 755 scripts/runsc-egress $(DESTDIR)$(PREFIX)/lib/sandci/runsc-egress
	install -D -m 644 systemd/sandci-agent.service $(DESTDIR)/etc/systemd/system/sandci-agent.service
	install -D -m 644 systemd/sandci-agent.socket $(DESTDIR)/etc/systemd/system/sandci-agent.socket
	install -d -m 700 $(DESTDIR)/etc/sandci $(DESTDIR)/etc/sandci/secrets

test: build
	bash scripts/test-setup.sh $(BUILD_DIR)
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

unit: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) -L unit

demo: build
	bash scripts/demo.sh $(BUILD_DIR) $(DEMO_FLAGS)

bench: build
	bash scripts/bench.sh $(BUILD_DIR)

# Fuzzing and sanitizers (docs/testing.md): their own build dirs, clang + libFuzzer
# for `fuzz` (FUZZ_SECONDS per target, default 60), g++ with ASan and UBSan for the
# unit and integration tests in `test-asan`.
fuzz: deps
	bash scripts/fuzz.sh build-fuzz

test-asan: deps
	JOBS=$(JOBS) bash scripts/test-asan.sh build-asan

clean:
	rm -rf $(BUILD_DIR)
