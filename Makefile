# logira — build, test and demo. Every target is idempotent.
SHELL := /bin/bash
PY_SYS := /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
CLANG ?= clang
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPF_SRC := $(wildcard bpf/*.bpf.c)
BPF_OBJ := $(patsubst bpf/%.bpf.c,logira/bpf/%.bpf.o,$(BPF_SRC))
APT_PKGS := clang llvm libbpf-dev libbpf1 bpftool linux-libc-dev python3-venv gcc make \
            util-linux iproute2 procps curl git gcc-multilib zsh systemd \
            chromium systemd-journal-remote strace
BUILD_PKGS := clang llvm bpftool libbpf1 python3-venv python3-pip make

# The real agent CLIs the tests drive offline (tests/agents), pinned; installed into build/agents.
AGENT_PKGS := @anthropic-ai/claude-code@2.1.332 @openai/codex@0.171.0 @google/gemini-cli@0.61.0
AGENTS_DIR := build/agents

# `make install`: where (PREFIX, DESTDIR for packagers) and what to wipe on uninstall (PURGE=1).
PREFIX ?= /usr/local
DESTDIR ?=
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
PURGE ?= 0
WHEEL_DIR := build/wheel

.PHONY: setup agents bpf bpf-objects build-deps wheel install uninstall test demo bench lint clean

setup: $(VENV)/.installed agents

# npm is asked only when the pinned list changed or the CLIs are missing (offline-safe afterwards).
agents:
	@bash scripts/install-test-agents.sh $(AGENTS_DIR) $(AGENT_PKGS)

$(VENV)/.apt-ok:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@[ -d $(VENV) ] || $(PY_SYS) -m venv $(VENV)
	@touch $@

$(VENV)/.installed: $(VENV)/.apt-ok pyproject.toml
	$(PY) -m pip install -q --upgrade pip >/dev/null
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

build/vmlinux.h:
	@mkdir -p build
	@test -r /sys/kernel/btf/vmlinux || { echo "error: kernel has no BTF at /sys/kernel/btf/vmlinux; logira needs a kernel built with CONFIG_DEBUG_INFO_BTF=y" >&2; exit 1; }
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

logira/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) build/vmlinux.h
	@mkdir -p logira/bpf
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Ibuild -Ibpf -c $< -o $@

# The machine the objects were compiled for (they depend on the arch, not on the kernel version):
# logirad refuses objects of another arch in one line, and the wheel is tagged with it.
logira/bpf/arch: $(BPF_OBJ)
	@uname -m > $@

# The compile alone (no apt, no venv): also what setup.py runs when a wheel is built.
bpf-objects: $(BPF_OBJ) logira/bpf/arch

bpf: $(VENV)/.apt-ok bpf-objects

# What building the wheel and `make install` need (libbpf1 is also what the installed logira runs on).
build-deps:
	@missing=""; for p in $(BUILD_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# A platform wheel carrying the BPF objects (pip runs setup.py, which runs `make bpf-objects`).
wheel: build-deps
	@rm -rf $(WHEEL_DIR) && mkdir -p $(WHEEL_DIR)
	$(PY_SYS) -m pip wheel -q --no-deps -w $(WHEEL_DIR) .

install: wheel
	$(PY_SYS) scripts/install.py install --wheel-dir $(WHEEL_DIR) --prefix "$(PREFIX)" \
	  --destdir "$(DESTDIR)" --sysconfdir "$(SYSCONFDIR)" --unitdir "$(UNITDIR)"

uninstall:
	$(PY_SYS) scripts/install.py uninstall --prefix "$(PREFIX)" --destdir "$(DESTDIR)" \
	  --sysconfdir "$(SYSCONFDIR)" --unitdir "$(UNITDIR)" --purge "$(PURGE)"

test: setup bpf
	$(PY) -m ruff check logira tests bench
	$(PY) -m mypy
	LOGIRA_REQUIRE_BPF=1 $(PY) -m pytest -ra -p no:cacheprovider tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

demo: setup bpf
	@bash scripts/demo.sh

bench: setup bpf
	$(PY) bench/run_all.py $(BENCH)

lint: setup
	$(PY) -m ruff check logira tests bench
	$(PY) -m ruff format --check logira tests bench

clean:
	rm -rf build/vmlinux.h build/wheel dist logira/bpf/*.bpf.o logira/bpf/arch
