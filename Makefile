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
# The smoke run is a count, not a duration: with a duration, Go before 1.27
# can fail a target that found nothing with a bare "context deadline
# exceeded" when the time runs out (golang/go#75804, a race in the fuzzing
# coordinator; CI met it on FuzzConfig). A count never sets that deadline.
FUZZ_TARGETS   := ./proto:FuzzDecode ./proto:FuzzVerify ./proto:FuzzAdmitKeyless ./faild/options:FuzzConfig
FUZZTIME       ?= 2m
FUZZTIME_SHORT ?= 20000x

.PHONY: all build test check sim fuzz fuzz-short install demo bench clean cross vet-all sizes mutate mutate-daemon cover deb test-systemd

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
# skips with a reason otherwise (FAILD_LAB=require makes that a failure).
# .ci/deps installs what the tests lack (as root) or says what is missing.
# Under the race detector the simulated cluster runs a hundred schedules;
# make sim then runs SEEDS of them at full speed. -count=1: every run
# tests, none reports a cached pass (the lab's results depend on the
# machine and the binary it builds, which go test does not see).
test:
	.ci/deps test
	$(MAKE) --no-print-directory build
	$(GO) vet ./...
	$(MAKE) --no-print-directory vet-all
	.ci/check-man bin/faild
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory sim
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_SHORT)

# The simulated cluster (faild/daemon/sim_test.go): SEEDS random fault
# schedules of 3 to 8 daemons in one process, from seed SEED_FIRST on; a
# failing seed is printed with its story, and SEED=N replays one.
SEEDS      ?= 2000
SEED_FIRST ?= 1
sim:
	@if [ -n "$(SEED)" ]; then \
		$(GO) test -count=1 -run '^TestSimulatedCluster$$' ./faild/daemon -sim.seed=$(SEED) -v; \
	else \
		$(GO) test -count=1 -run '^TestSimulatedCluster$$' ./faild/daemon -sim.seeds=$(SEEDS) -sim.first=$(SEED_FIRST) -v | \
			grep -E 'schedules|broke|seed [0-9]+:|^(ok|FAIL|---)'; \
	fi

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
		echo "fuzz $$t, -fuzztime $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

# Mutation testing with gremlins: each package of MUTATE_PKGS on its own,
# its unit tests run against every mutant. Prints every mutant that lived
# or timed out and each package's score: killed of killed+lived (gremlins'
# "efficacy"; not covered and timed out are counted apart), and fails when
# it is below MUTATE_EFFICACY percent or gremlins fails. gremlins'
# --threshold-efficacy cannot do that: v0.6.0 reads the flag as a float
# from viper, which hands a float flag back as a string, so the gate is
# never set (33 % passed a threshold of 99). GOFLAGS for the
# tests: -count=1, as gremlins takes each mutant's time limit from its
# first test run, which a cached result would make too short for a
# compile; -vet=off, as a vet finding is no test killing a mutant and vet
# is a fifth of each mutant's time. The limit is that run times
# MUTATE_TIMEOUT, generous since that run compiles nothing new while each
# mutant compiles and links its package: at 10, a machine at load 10 timed
# out 87 of proto's 264 mutants. MUTATE_ENV is set for the tests gremlins
# runs.
GREMLINS        := github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
MUTATE_PKGS     ?= ./routes ./proto ./platform
MUTATE_EFFICACY ?= 85
MUTATE_TIMEOUT  ?= 30
MUTATE_FLAGS    ?= --timeout-coefficient $(MUTATE_TIMEOUT) --exclude-files 'names\.go$$'
MUTATE_ENV      ?=

mutate:
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin $(GO) install $(GREMLINS)
	@fail=0; for p in $(MUTATE_PKGS); do \
		out=bin/mutate-$$(echo $${p#./} | tr / -).out; t=$$(date +%s); \
		env $(MUTATE_ENV) GOFLAGS='-count=1 -vet=off' bin/gremlins unleash $(MUTATE_FLAGS) --output-statuses lt $$p >$$out 2>&1; rc=$$?; \
		grep -E 'LIVED|TIMED OUT' $$out | sed "s|^ *|$$p: |"; \
		eff=$$(sed -n 's/^Test efficacy: \([0-9.]*\)%$$/\1/p' $$out); \
		counts=$$(grep -E '^(Killed|Timed out):' $$out | awk '{ printf "%s, ", $$0 }'); \
		echo "mutate $$p: $${counts}efficacy $${eff:-none}% (at least $(MUTATE_EFFICACY)%), $$(( $$(date +%s) - t )) s"; \
		if [ $$rc -ne 0 ] || [ -z "$$eff" ]; then \
			cat $$out; echo "mutate $$p: gremlins failed (exit $$rc)"; fail=1; \
		elif awk -v e=$$eff -v m=$(MUTATE_EFFICACY) 'BEGIN { exit !(e < m) }'; then \
			echo "mutate $$p: efficacy $$eff% below $(MUTATE_EFFICACY)%"; fail=1; \
		fi; \
	done; exit $$fail

# The daemon's core under mutation: its tests include the simulated
# cluster, so each mutant runs MUTATE_SIM_SEEDS schedules
# (FAILD_SIM_SEEDS) instead of 2000. Too slow for CI (see README's
# Tests), so .ci/run does not run it; run it after changing faild/daemon.
MUTATE_SIM_SEEDS ?= 40
mutate-daemon:
	@$(MAKE) --no-print-directory mutate MUTATE_PKGS=./faild/daemon MUTATE_ENV=FAILD_SIM_SEEDS=$(MUTATE_SIM_SEEDS)

# Coverage of COVER_PKGS by the unit tests of all of them together
# (-coverpkg), so code exercised from another package's tests counts (the
# daemon's simulated cluster runs proto's Receiver and Requestor and
# platform's Memory, at COVER_SIM_SEEDS schedules); one line per package,
# statements covered of statements, and one for platform's portable code
# (the files without an OS in their name: the netlink code is the lab's to
# test). The lab in test/ runs the faild binary, whose coverage this does
# not see. Fails when proto, routes or platform's portable code is below
# COVER_MIN percent.
COVER_PKGS      ?= ./proto/... ./routes/... ./platform/... ./faild/...
COVER_SIM_SEEDS ?= 200
COVER_MIN       ?= 80
comma := ,
empty :=
space := $(empty) $(empty)

cover:
	@mkdir -p bin
	FAILD_SIM_SEEDS=$(COVER_SIM_SEEDS) $(GO) test -count=1 -coverpkg=$(subst $(space),$(comma),$(strip $(COVER_PKGS))) -coverprofile=bin/cover.out $(COVER_PKGS) >/dev/null
	@awk -v min=$(COVER_MIN) 'NR > 1 { split($$1, f, ":"); n = split(f[1], d, "/"); pkg = d[1]; for (i = 2; i < n; i++) pkg = pkg "/" d[i]; \
		if (pkg ~ /\/platform$$/ && d[n] !~ /_(linux|bsd|darwin|dragonfly|freebsd|netbsd|openbsd|others|unix|windows)\.go$$/) port[$$1] = 1; \
		stmts[$$1] = $$2; pk[$$1] = pkg; if ($$3 > 0) hit[$$1] = 1 } \
		END { for (b in stmts) { p = pk[b]; all[p] += stmts[b]; tot += stmts[b]; if (b in hit) { got[p] += stmts[b]; cov += stmts[b] } \
			if (b in port) { q = p " (portable)"; all[q] += stmts[b]; if (b in hit) got[q] += stmts[b] } } \
		printf "%-44s %6s %6s %7s\n", "PACKAGE", "STMTS", "HIT", "COVER"; \
		for (p in all) printf "%-44s %6d %6d %6.1f%%\n", p, all[p], got[p], 100 * got[p] / all[p] | "sort"; close("sort"); \
		printf "%-44s %6d %6d %6.1f%%\n", "total", tot, cov, 100 * cov / tot; \
		for (p in all) if (p ~ /\/(proto|routes|platform \(portable\))$$/ && 100 * got[p] < min * all[p]) { \
			printf "cover: %s below %d%%\n", p, min; bad = 1 } \
		exit bad }' bin/cover.out

# The cheap checks of the tree, without the tests: formatting, vet,
# staticcheck, a tidy go.mod and the man page.
check: build
	.ci/check-man bin/faild
	@out=$$(gofmt -s -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt -s needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(GO) mod tidy -diff

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
	.ci/deps bench
	sh test/bench/install-frr.sh
	$(GO) run ./test/bench

clean:
	rm -rf bin
