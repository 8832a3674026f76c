# Thin wrapper over CMake/Ninja. `make run` starts the daemon with every module;
# `make test` builds and runs unit + integration tests. Both install missing
# Debian packages first (`make deps`).
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)

# Everything the build, `make run` and the tests use, from Debian 12.
DEB_PACKAGES := cmake ninja-build ccache g++ pkg-config git \
	libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
	libboost-dev libboost-filesystem-dev libgtest-dev libgmock-dev libbenchmark-dev \
	librdkafka-dev libhiredis-dev libssh2-1-dev libspdlog-dev libfmt-dev libyaml-cpp-dev \
	libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libssl-dev libedit-dev libabsl-dev \
	python3-grpcio python3-protobuf python3-plotly redis-server prometheus tmux expect curl procps openssl jq \
	influxdb libsqlite3-dev \
	libsimdjson-dev liblz4-dev libzstd-dev zlib1g-dev openssh-server openssh-client kcat \
	nats-server chromium \
	libpq-dev postgresql-15 \
	clickhouse-server

# `make fuzz`: the targets in tests/fuzz under clang's libFuzzer + ASan, in
# their own build dir, FUZZ_SECONDS each; corpora grow in $(FUZZ_BUILD_DIR)/corpus.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_PACKAGES := clang libclang-rt-14-dev

# The quick deploy tests in `make test` (tests/deploy.cmake): systemd-analyze,
# yamllint, promtool, PyYAML; kubectl comes from kubernetes-client unless one
# is installed already, node/npm likewise (the schema check's npm package).
DEPLOY_PACKAGES := systemd yamllint prometheus python3-yaml python3-kubernetes
# `make image` / `make test-deploy`: podman with runc, debootstrap for the base.
CONTAINER_PACKAGES := podman podman-compose runc debootstrap fuse-overlayfs uidmap slirp4netns \
	containernetworking-plugins util-linux

# `make install`: PREFIX (/usr/local), DESTDIR (staging root); the config goes to
# SYSCONFDIR/telekern (/etc for PREFIX=/usr, else PREFIX/etc unless given).
PREFIX ?= /usr/local
DESTDIR ?=
SYSCONFDIR ?=
SYSTEMD_UNIT_DIR ?=

# `make image`: the container image; TELEKERN_BASE_IMAGE is the debootstrapped
# Debian 12 base it is built FROM (built once, cached in podman's storage).
IMAGE ?= localhost/telekern/telekernd:latest
TELEKERN_BASE_IMAGE ?= localhost/telekern/debian:bookworm

.PHONY: all deps container-deps configure build run test bench soak fuzz clean install image test-deploy

all: build

# Installs the packages of $(1) that dpkg does not list as installed (quiet when none).
define install_missing
	@missing=$$(dpkg-query -W -f='$${Package} $${Status}\n' $(1) 2>/dev/null \
	    | awk '$$NF!="installed"{print $$1}'; \
	  for p in $(1); do dpkg-query -W -f='$${Package}\n' $$p >/dev/null 2>&1 || echo $$p; done \
	  | sort -u); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

define install_missing_inline
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(1);
endef

deps:
	$(call install_missing,$(DEB_PACKAGES) $(DEPLOY_PACKAGES))
	@command -v kubectl >/dev/null || { $(call install_missing_inline,kubernetes-client) }
	@# The web console (web/) builds with node + npm (Debian's unless a node is already there)
	@# from web/package-lock.json; npm ci runs again only when the lockfile changed.
	@if ! command -v npm >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nodejs npm; \
	fi
	@if [ ! -f web/node_modules/.package-lock.json ] || \
	    [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then \
	  cd web && npm ci --no-audit --no-fund; \
	fi

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@mkdir -p data
	@echo "telekernd: gRPC 127.0.0.1:7070, HTTP 127.0.0.1:7071 (web console at http://127.0.0.1:7071/, /metrics /health /ready), modules from $(BUILD_DIR)/modules"
	@if [ -x $(BUILD_DIR)/bin/telesh ]; then \
	  echo "daemon log: data/telekernd.log; leaving telesh (Ctrl-D) stops the daemon"; \
	  echo "demo: collector ingest $(CURDIR)/deploy/samples/dcgm_sample.csv, then collector hosts / gpus"; \
	  $(BUILD_DIR)/bin/telekernd --data-dir ./data > data/telekernd.log 2>&1 & pid=$$!; \
	  trap "kill $$pid 2>/dev/null; wait $$pid" EXIT INT TERM; \
	  $(BUILD_DIR)/bin/telesh --addr 127.0.0.1:7070 --wait; \
	else \
	  exec $(BUILD_DIR)/bin/telekernd --data-dir ./data; \
	fi

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 600 -j 2

bench: build
	cmake --build $(BUILD_DIR) --target telekern_benchmarks
	@for b in $(BUILD_DIR)/bench/*; do echo "== $$b"; $$b || exit 1; done

# `make soak`: first RELOADS (1000) broker reloads under producers and a
# consumer (the reload test's client), failing when a call fails or RSS grew
# more than 5 MiB, or mappings or open files grew, after the first 10; then
# telekernd with every module under a mixed load, a reload every 10 s and
# SIGHUP every minute, for SOAK_MINUTES (10); fails when a call fails or RSS,
# open files, threads or mappings grow. Plot in build/soak/soak.svg.
SOAK_MINUTES ?= 10
RELOADS ?= 1000
soak: build
	cmake --build $(BUILD_DIR) --target telekern_soak telekern_broker_integration_tests
	TELEKERN_RELOADS=$(RELOADS) $(BUILD_DIR)/tests/telekern_broker_integration_tests \
	  --gtest_filter='BrokerReloadTest.ReloadKeepsAcknowledgedRecordsTopicsAndOffsets'
	SOAK_MINUTES=$(SOAK_MINUTES) $(BUILD_DIR)/soak/telekern_soak

fuzz: deps
	$(call install_missing,$(FUZZ_PACKAGES))
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DTELEKERN_FUZZ=ON
	cmake --build $(FUZZ_BUILD_DIR) --target telekern_fuzz_targets
	@for f in $(FUZZ_BUILD_DIR)/fuzz/*; do \
	  corpus=$(FUZZ_BUILD_DIR)/corpus/$$(basename $$f); mkdir -p $$corpus; \
	  echo "== $$f ($(FUZZ_SECONDS) s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$corpus || exit 1; \
	done

install: configure
	cmake -S . -B $(BUILD_DIR) -DCMAKE_INSTALL_PREFIX=$(PREFIX) \
	  -DTELEKERN_SYSCONFDIR=$(SYSCONFDIR) -DTELEKERN_SYSTEMD_UNIT_DIR=$(SYSTEMD_UNIT_DIR)
	cmake --build $(BUILD_DIR) --target telekern_install_targets -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD_DIR)

container-deps: deps
	$(call install_missing,$(CONTAINER_PACKAGES))

image: container-deps
	TELEKERN_BASE_IMAGE=$(TELEKERN_BASE_IMAGE) deploy/container/base-image.sh
	deploy/container/build-image.sh $(IMAGE)

# Container checks (slow, need podman): the image, then each compose stack
# up, healthy, end-to-end flow, down. Needs telesh on the host (built here).
COMPOSE_STACKS ?= telemetry remo metranova
test-deploy: image configure
	cmake --build $(BUILD_DIR) --target telesh
	IMAGE=$(IMAGE) BUILD_DIR=$(BUILD_DIR) tests/deploy/container_test.sh
	@for s in $(COMPOSE_STACKS); do \
	  TELEKERN_IMAGE=$(IMAGE) TELEKERN_BASE_IMAGE=$(TELEKERN_BASE_IMAGE) BUILD_DIR=$(BUILD_DIR) \
	    deploy/compose/stack.py test $$s || exit 1; \
	done

clean:
	rm -rf $(BUILD_DIR) $(FUZZ_BUILD_DIR)

# print-VAR: the value of a Makefile variable (deploy/container/build-image.sh reads DEB_PACKAGES).
print-%:
	@echo $($*)
