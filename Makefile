# logagent — the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin/logagent
PREFIX   ?= /usr/local

.PHONY: all build demo demo-search test check vet fmt-check unit browser faults e2e e2e-es8 deps bench install uninstall clean

all: build

build:
	@echo "building $(BIN) (the first build fetches modules and takes a minute or two)…"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

## demo: the real agent against an embedded etcd and an in-process Kafka.
demo: build
	$(GO) run ./cmd/demo -agent $(BIN)

## demo-search: the agent and `logagent transfer` with a real OpenSearch node (jars from Maven
## Central, Java 17) on an embedded etcd and an in-process Kafka; shows lines arriving in the index.
demo-search: build deps
	$(GO) run ./cmd/demo-search -agent $(BIN)

## test: everything CI runs — vet, gofmt, unit + integration tests with -race, end to end.
test: vet fmt-check unit browser faults e2e

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./... | grep -v -e /e2e -e /faults)

## browser: the console's pages in headless Chromium (installs Debian's chromium when missing).
## Without chromium, plain `go test` skips these tests.
browser: deps
	bash scripts/browser-deps.sh
	LOGAGENT_BROWSER=1 $(GO) test -count=1 -timeout 10m -run 'TestBrowser' -v ./console/ 2>&1 | tee .browser.out | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)' ; \
	status=$${PIPESTATUS[0]}; [ $$status -eq 0 ] || { tail -200 .browser.out; exit $$status; }

## faults: the delivery guarantees, proven on the built binary (restart, kill -9, rotation,
## truncation, Kafka and etcd outages, bad input, data_dir full). LOGAGENT_LONG=1 adds the
## 5-minute Kafka outage.
faults:
	$(GO) test -count=1 -timeout 20m -v ./faults/ 2>&1 | tee .faults.out | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|RESULT' ; \
	status=$${PIPESTATUS[0]}; [ $$status -eq 0 ] || { tail -200 .faults.out; exit $$status; }

## e2e: the built binary against real Apache Kafka (Maven jars), real etcd (Debian) and real
## OpenSearch (Maven jars), checked with etcdctl, kafka-console-consumer and OpenSearch's API;
## with the transfer's integration tests and the console's search tests, which must not skip there. Installs what it needs.
e2e: deps
	LOGAGENT_E2E=1 $(GO) test -count=1 -timeout 30m -v ./e2e/ ./transfer/ 2>&1 | tee .e2e.out | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)' ; \
	status=$${PIPESTATUS[0]}; [ $$status -eq 0 ] || { tail -200 .e2e.out; exit $$status; }
	LOGAGENT_E2E=1 $(GO) test -count=1 -timeout 10m -run 'TestSearch' -v ./console/ 2>&1 | tee .e2e.out | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)' ; \
	status=$${PIPESTATUS[0]}; [ $$status -eq 0 ] || { tail -200 .e2e.out; exit $$status; }

## e2e-es8: the transfer's tests, the console's search (page in Chromium too) and the e2e search
## path against Elasticsearch 8.19 instead of OpenSearch (jars from Maven Central, started by
## scripts/opensearch.sh with SEARCH_ENGINE=elasticsearch). Not part of `make test`: about 2 minutes.
e2e-es8: deps
	bash scripts/browser-deps.sh
	SEARCH_ENGINE=elasticsearch bash scripts/opensearch.sh fetch
	set -o pipefail; export SEARCH_ENGINE=elasticsearch LOGAGENT_E2E=1 LOGAGENT_BROWSER=1; \
	for run in './transfer/ .' './e2e/ TestSearchEndToEnd' './console/ TestSearch|TestBrowserSearch'; do \
	  set -- $$run; $(GO) test -count=1 -timeout 10m -v -run "$$2" $$1 2>&1 | tee .e2e.out | grep -E '^(--- |PASS|FAIL|ok|panic)' \
	    || { tail -200 .e2e.out; exit 1; }; \
	done

deps:
	bash scripts/deps.sh

## bench: Go benchmarks of the hot paths, then the peer comparison (kcat, rsyslog,
## bare sarama and franz-go loops, the OpenTelemetry Collector, which bench-deps.sh
## builds once into ~/.cache/logagent-bench) on one broker: in-process kfake, or
## BROKERS=host:port; kill -9 and rotation runs (workload R); the targets table;
## the Sys Agent's CPU, off vs on, over 5 minutes (workload S); `logagent transfer` against a
## bare _bulk loop on a real OpenSearch node, and append → searchable (workload T, a few minutes);
## then the fleet simulation (10,000 agents on one real etcd, 10 minutes).
bench:
	bash scripts/bench-deps.sh
	bash scripts/opensearch.sh fetch
	$(GO) test -run '^$$' -bench . -benchmem ./taillog ./kafka ./agent ./sysagent ./console
	$(GO) run ./bench -runs 3 -out bench/results.md
	bash scripts/etcd.sh install
	$(GO) run ./bench/fleet -out bench/results-fleet.md

## install: copies what `make build` made; it builds nothing (so `sudo make install` does not
## compile as root). The example config becomes /etc/logagent/config.ini only when there is none.
## Run as root into the real system (no DESTDIR), it creates the system user logagent (group adm)
## the unit runs as, when missing, and gives it read access to the config.
install:
	@test -x $(BIN) || { echo "$(BIN) is missing: run 'make build' first (as yourself, not root)"; exit 1; }
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && ! id logagent >/dev/null 2>&1; then \
		useradd --system --user-group --groups adm --home-dir /var/lib/logagent --no-create-home \
			--shell /usr/sbin/nologin --comment "logagent log shipper" logagent && \
		echo "created the system user logagent (groups logagent, adm)"; \
	fi
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/logagent
	install -D -m 0644 conf/config.ini $(DESTDIR)/etc/logagent/config.ini.example
	@if [ -e $(DESTDIR)/etc/logagent/config.ini ]; then \
		echo "kept the existing $(DESTDIR)/etc/logagent/config.ini"; \
	else \
		install -m 0640 conf/config.ini $(DESTDIR)/etc/logagent/config.ini && \
		echo "installed $(DESTDIR)/etc/logagent/config.ini from the example: set [kafka] brokers and [etcd] endpoints"; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && id logagent >/dev/null 2>&1; then \
		chgrp logagent /etc/logagent /etc/logagent/config.ini && chmod 0750 /etc/logagent; \
	fi
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/logagent/README.md
	sed 's|/usr/local|$(PREFIX)|g' deploy/logagent.service > logagent.service.tmp
	install -D -m 0644 logagent.service.tmp $(DESTDIR)/etc/systemd/system/logagent.service
	rm -f logagent.service.tmp

## uninstall: removes what install put; keeps /etc/logagent (your config) and /var/lib/logagent
## (positions). Stop the service first: systemctl disable --now logagent.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/logagent $(DESTDIR)/etc/systemd/system/logagent.service \
		$(DESTDIR)/etc/logagent/config.ini.example
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/logagent
	@echo "kept $(DESTDIR)/etc/logagent and /var/lib/logagent; remove them by hand if you no longer need them"

clean:
	rm -rf bin .e2e.out .faults.out .browser.out
