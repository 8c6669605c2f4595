# faild: route failover for dual-homed clusters.
PREFIX  ?= /usr/local
DESTDIR ?=
GO      ?= go
SYSTEMDDIR ?= /lib/systemd/system
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Root-only lab tests build the daemon themselves; this bounds the whole run.
TEST_TIMEOUT ?= 15m
# Native fuzz targets, as package:target; make fuzz runs each for FUZZTIME,
# make test for FUZZTIME_SHORT (a smoke run on top of the seed corpus).
FUZZ_TARGETS   := ./proto:FuzzDecode ./proto:FuzzVerify ./faild:FuzzConfig
FUZZTIME       ?= 2m
FUZZTIME_SHORT ?= 5s

.PHONY: all build test check fuzz fuzz-short install demo bench clean cross vet-all sizes deb test-systemd

# make deb builds faild_VERSION_ARCH.deb for these Debian architectures
# into bin/deb (dist/deb/mkdeb says how VERSION is made).
DEB_ARCHES ?= amd64 arm64 armhf mipsel
# make test-systemd bounds its one long test by this.
SYSTEMD_TEST_TIMEOUT ?= 20m

# make cross builds these, as GOOS/GOARCH or linux/arm/GOARM. MIPS builds
# use soft float: many MIPS boards have no FPU and faild does little
# floating point.
CROSS := linux/amd64 linux/386 linux/arm/6 linux/arm/7 linux/arm64 \
	linux/mips linux/mipsle linux/mips64 linux/riscv64 linux/ppc64le linux/s390x \
	freebsd/amd64 freebsd/arm64 openbsd/amd64 openbsd/arm64 \
	netbsd/amd64 netbsd/arm64 darwin/amd64 darwin/arm64
# The packages that must build everywhere faild runs; test/ is the Linux
# network-namespace lab and is vetted on Linux only.
PORTABLE := ./faild/... ./platform/... ./proto/... ./routes/...

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/faild ./faild

# Unit tests everywhere; the network-namespace lab in test/ runs as root and
# skips with a reason otherwise. .ci/deps installs what the tests lack (as
# root) or says what is missing.
test:
	.ci/deps test
	$(MAKE) --no-print-directory build
	$(GO) vet ./...
	$(MAKE) --no-print-directory vet-all
	.ci/check-man bin/faild
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_SHORT)

# go vet for every target of make cross, test files included, so that no
# platform file rots unseen: the BSD files also check their message
# layouts against x/sys/unix at compile time. windows/amd64 stands for the
# systems faild refuses at start: that refusal must build.
vet-all:
	@set -e; for t in $(CROSS) windows/amd64; do \
		os=$${t%%/*}; rest=$${t#*/}; arch=$${rest%%/*}; \
		case $$t in linux/arm/7) continue;; esac; \
		echo "vet $$os/$$arch"; \
		GOOS=$$os GOARCH=$$arch $(GO) vet $(PORTABLE); \
	done

# Static binaries for every target into bin/cross, named
# faild-GOOS-GOARCH[vGOARM].
cross:
	@mkdir -p bin/cross
	@set -e; for t in $(CROSS); do \
		os=$${t%%/*}; rest=$${t#*/}; arch=$${rest%%/*}; arm=; \
		case $$rest in */*) arm=$${rest#*/};; esac; \
		out=bin/cross/faild-$$os-$$arch$${arm:+v$$arm}; echo "build $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=$$arm GOMIPS=softfloat GOMIPS64=softfloat \
			$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./faild; \
	done

# The "Binary sizes" section of BENCHMARKS.md, from a fresh make cross.
sizes: cross
	.ci/sizes BENCHMARKS.md

# Each target alone: go test -fuzz takes one target at a time. New crashers
# land in testdata/fuzz and then run with every go test.
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

check: build
	.ci/check-man bin/faild
	@out=$$(gofmt -s -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt -s needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

install: build
	install -D -m 0755 bin/faild $(DESTDIR)$(PREFIX)/sbin/faild
	install -D -m 0644 man/faild.8 $(DESTDIR)$(PREFIX)/share/man/man8/faild.8
	install -D -m 0644 dist/rt_protos.faild.conf $(DESTDIR)/etc/iproute2/rt_protos.d/faild.conf
	install -D -m 0644 dist/faild.service $(DESTDIR)$(SYSTEMDDIR)/faild.service
	sed -i 's|/usr/local/sbin/faild|$(PREFIX)/sbin/faild|' $(DESTDIR)$(SYSTEMDDIR)/faild.service
	install -D -m 0644 dist/faild.logrotate $(DESTDIR)/etc/logrotate.d/faild
	install -D -m 0644 dist/faild.conf $(DESTDIR)$(PREFIX)/share/doc/faild/faild.conf.example
	# The live config is never overwritten.
	[ -e $(DESTDIR)/etc/faild/faild.conf ] || install -D -m 0644 dist/faild.conf $(DESTDIR)/etc/faild/faild.conf

# A three-node lab in network namespaces: cut LAN A, watch the failover and
# the switchback. Needs root.
demo:
	.ci/deps demo
	$(GO) run ./test/demo

# Debian packages from static builds, checked with lintian (root prints
# that it should not be root; that is all).
deb:
	.ci/deps deb
	dist/deb/mkdeb bin/deb $(DEB_ARCHES)
	lintian --fail-on error,warning $(foreach a,$(DEB_ARCHES),bin/deb/faild_*_$(a).deb)

# The .deb and the unit under a real systemd: a bookworm container booted
# with systemd-nspawn (root; the root file system is built once with
# debootstrap and cached in /var/cache/faild-test). See test/systemd.
test-systemd:
	.ci/deps systemd
	@set -e; deb=$$(dist/deb/mkdeb bin/deb $$(dpkg --print-architecture) | sed -n 's/^mkdeb: //p'); \
		echo "test-systemd: $$deb"; \
		FAILD_TEST_SYSTEMD=1 FAILD_DEB=$(CURDIR)/$$deb $(GO) test -v -count=1 -timeout $(SYSTEMD_TEST_TIMEOUT) ./test/systemd

# Benchmarks on the lab with the real binary (root, under 15 minutes);
# writes BENCHMARKS.md. BENCH_* variables shorten a run: see BENCHMARKS.md.
# Installs FRR first, for bfdd side by side, without starting it on the host
# (BENCH_NO_FRR_INSTALL=1 skips that; the bfd section then says it skipped).
bench:
	sh test/bench/install-frr.sh
	$(GO) run ./test/bench

clean:
	rm -rf bin
