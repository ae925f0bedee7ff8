# Makefile -- builds libkappa, the kappa CLI, the tests and the benchmarks.
#
#   make            build everything (installs missing Debian packages first)
#   make test       build and run every test; the last line is "N passed, N failed"
#   make torture    the long tier: 20,000 simulated scenarios, 500 kill -9 rounds
#   make asan       the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      build and run the benchmarks (figures as JSON lines at the end)
#   make bench-http the HTTP benchmark against nginx and Redis (bench/http/run.sh)
#   make bench-peers kappa against Redis, PostgreSQL, NATS, SQLite, fdatasync (bench/peers)
#   make run        the server on the social example (loads it on the first run)
#   make install    PREFIX=/usr/local: kappa, libkappa.a/.so, kappa.h, kappa.pc
#   make lint       cppcheck (and clang-tidy when CLANG_TIDY=1)
#   make fuzz       FUZZ_SECONDS=N: each libFuzzer target for N seconds (fuzz/fuzz.mk)
#   make valgrind   the unit tests under valgrind --error-exitcode=1
#   make format / format-check
#
# Dependencies point down only: cli, server -> view, store -> log -> base.

CC ?= cc
PREFIX ?= /usr/local
BUILD ?= build
SAN ?=

WARN = -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes -Wvla \
       -Wwrite-strings -Wshadow -fno-common
OPT ?= -O2
ifeq ($(SAN),1)
OPT = -O1
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif
CFLAGS_ALL = -std=c17 $(WARN) $(OPT) -g -D_GNU_SOURCE -Iinclude -Isrc -Itests/lib -Ibench/lib -fPIC -pthread \
             -MMD -MP $(SANFLAGS) $(CFLAGS)
LDFLAGS_ALL = -pthread $(SANFLAGS) $(LDFLAGS)
LIBS = $(shell pkg-config --libs lmdb jansson libsodium sqlite3 2>/dev/null || echo -llmdb -ljansson -lsodium -lsqlite3)
TEST_LIBS = $(shell pkg-config --libs criterion 2>/dev/null)

LIB_SRC = $(wildcard src/base/*.c src/log/*.c src/store/*.c src/view/*.c)
CLI_SRC = $(wildcard src/cli/*.c src/server/*.c)
TESTLIB_SRC = $(wildcard tests/lib/*.c)
UNIT_SRC = $(wildcard tests/unit/*.c)
CRASH_SRC = $(wildcard tests/crash/*.c)
SIM_SRC = $(wildcard tests/sim/*.c)
BENCH_SRC = $(wildcard bench/*.c)
BENCHLIB_SRC = $(wildcard bench/lib/*.c)

LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ = $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTLIB_OBJ = $(TESTLIB_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN = $(UNIT_SRC:%.c=$(BUILD)/%)
CRASH_BIN = $(CRASH_SRC:%.c=$(BUILD)/%)
SIM_OBJ = $(SIM_SRC:%.c=$(BUILD)/%.o)
SIM_BIN = $(BUILD)/tests/sim/sim
BENCH_BIN = $(BENCH_SRC:%.c=$(BUILD)/%)
BENCHLIB_OBJ = $(BENCHLIB_SRC:%.c=$(BUILD)/%.o)

STAMP = $(BUILD)/.setup-done

.SECONDARY:
.PHONY: all test torture asan valgrind bench bench-http bench-peers run install clean lint format format-check setup
.DEFAULT_GOAL := all

all: $(STAMP) $(BUILD)/libkappa.a $(BUILD)/libkappa.so $(BUILD)/kappa

$(STAMP): scripts/setup
	@scripts/setup
	@mkdir -p $(BUILD) && touch $@

setup:
	@scripts/setup

$(BUILD)/%.o: %.c | $(STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libkappa.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libkappa.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS_ALL) $(LIBS)

SERVER_LIBS = -lhttp_parser $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)

# The web console (console/) is compiled into kappa by scripts/embed-console.
CONSOLE_FILES = $(shell find console -type f 2>/dev/null)
CONSOLE_OBJ = $(BUILD)/gen/console_assets.o
$(BUILD)/gen/console_assets.c: scripts/embed-console $(CONSOLE_FILES) | $(STAMP)
	@mkdir -p $(dir $@)
	scripts/embed-console console $@
$(CONSOLE_OBJ): $(BUILD)/gen/console_assets.c
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/kappa: $(CLI_OBJ) $(CONSOLE_OBJ) $(BUILD)/libkappa.a
	$(CC) -o $@ $(CLI_OBJ) $(CONSOLE_OBJ) $(BUILD)/libkappa.a $(LDFLAGS_ALL) $(LIBS) $(SERVER_LIBS)

$(BUILD)/libkptest.a: $(TESTLIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(BUILD)/libkptest.a $(BUILD)/libkappa.a
	$(CC) -o $@ $< $(BUILD)/libkptest.a $(BUILD)/libkappa.a $(LDFLAGS_ALL) $(LIBS) $(TEST_LIBS)

$(BUILD)/tests/crash/%: $(BUILD)/tests/crash/%.o $(BUILD)/libkptest.a $(BUILD)/libkappa.a
	$(CC) -o $@ $< $(BUILD)/libkptest.a $(BUILD)/libkappa.a $(LDFLAGS_ALL) $(LIBS)

# The fault simulation (tests/sim): one program from several files.
$(SIM_BIN): $(SIM_OBJ) $(BUILD)/libkptest.a $(BUILD)/libkappa.a
	$(CC) -o $@ $(SIM_OBJ) $(BUILD)/libkptest.a $(BUILD)/libkappa.a $(LDFLAGS_ALL) $(LIBS)

$(BUILD)/libkpbench.a: $(BENCHLIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libkpbench.a $(BUILD)/libkappa.a
	$(CC) -o $@ $< $(BUILD)/libkpbench.a $(BUILD)/libkappa.a $(LDFLAGS_ALL) $(LIBS) -lm

test: all $(UNIT_BIN) $(CRASH_BIN) $(SIM_BIN) fuzz-build
	@BUILD=$(BUILD) scripts/run-tests

# The long tier (docs/testing.md): many more simulated scenarios, then kappa serve killed
# and restarted TORTURE_ROUNDS times under load (tests/torture).
TORTURE_ROUNDS ?= 500
TORTURE_SCENARIOS ?= 20000
torture: all $(SIM_BIN)
	@SIM_SCENARIOS=$(TORTURE_SCENARIOS) $(SIM_BIN)
	@TORTURE_ROUNDS=$(TORTURE_ROUNDS) KAPPA_BIN=$(BUILD)/kappa bash tests/torture/run.sh

# The whole suite with sanitizers, in its own build directory; crash rounds are fewer there.
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 CRASH_ROUNDS=$${CRASH_ROUNDS:-40} test

# The unit tests under valgrind's memcheck (not part of make test: it takes minutes).
valgrind: all $(UNIT_BIN)
	@BUILD=$(BUILD) scripts/valgrind-units

bench: all $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done

# The HTTP benchmark (nginx, Redis and kappa in one run; best on an otherwise idle machine).
bench-http: all
	@scripts/setup-bench
	@bench/http/run.sh

# kappa beside the systems users would pick instead, in one run (bench/peers/run.sh). Its
# driver needs client libraries that `scripts/setup-bench peers` installs, so neither
# `make all` nor `make test` builds it. PEERS_ARGS: e.g. --quick.
PEERS_SRC = $(wildcard bench/peers/*.c)
PEERS_OBJ = $(PEERS_SRC:bench/peers/%.c=$(BUILD)/peers/%.o)
PEERS_CFLAGS = $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
PEERS_LIBS = $(shell pkg-config --libs hiredis libpq libnats libcurl 2>/dev/null || \
	echo -lhiredis -lpq -lnats -lcurl)

$(BUILD)/peers/%.o: bench/peers/%.c | $(STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(PEERS_CFLAGS) -c $< -o $@

$(BUILD)/peers_load: $(PEERS_OBJ) $(BUILD)/libkpbench.a $(BUILD)/libkappa.a
	$(CC) -o $@ $(PEERS_OBJ) $(BUILD)/libkpbench.a $(BUILD)/libkappa.a $(LDFLAGS_ALL) \
		$(LIBS) $(PEERS_LIBS) -lm

bench-peers: all
	@scripts/setup-bench peers
	@$(MAKE) --no-print-directory $(BUILD)/peers_load
	@BUILD=$(BUILD) bench/peers/run.sh $(PEERS_ARGS)

# `make run`: the social example (scripts/run-social): on a first run with no log in
# RUN_DATA, load the example views and a generated dataset (with a progress bar), then serve
# RUN_DATA on RUN_LISTEN in the foreground. Ctrl-C stops it.
RUN_DATA ?= data
RUN_LISTEN ?= 127.0.0.1:7070
run: all $(BUILD)/kappa-social-gen
	@BUILD=$(BUILD) RUN_DATA=$(RUN_DATA) RUN_LISTEN=$(RUN_LISTEN) exec scripts/run-social

# The social example's data generator, and bench/social_load, the load generator for a
# running server. social_load lives in its own directory, so `make bench` builds it but does
# not run it (it needs the server `make run` starts); its objects go to $(BUILD)/social_load/.
SOCIAL_GEN_SRC = $(wildcard examples/social/gen/*.c)
SOCIAL_GEN_OBJ = $(SOCIAL_GEN_SRC:%.c=$(BUILD)/%.o)
SOCIAL_MODEL_OBJ = $(BUILD)/examples/social/gen/model.o $(BUILD)/examples/social/gen/text.o
SOCIAL_LOAD_SRC = $(wildcard bench/social_load/*.c)
SOCIAL_LOAD_OBJ = $(SOCIAL_LOAD_SRC:bench/social_load/%.c=$(BUILD)/social_load/%.o)

all: $(BUILD)/kappa-social-gen $(BUILD)/bench/social_load
bench: $(BUILD)/bench/social_load

$(BUILD)/kappa-social-gen: $(SOCIAL_GEN_OBJ)
	$(CC) -o $@ $^ $(LDFLAGS_ALL) -lm

$(BUILD)/social_load/%.o: bench/social_load/%.c | $(STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Iexamples/social/gen -c $< -o $@

$(BUILD)/bench/social_load: $(SOCIAL_LOAD_OBJ) $(SOCIAL_MODEL_OBJ) $(BUILD)/libkpbench.a \
		$(BUILD)/libkappa.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(SOCIAL_LOAD_OBJ) $(SOCIAL_MODEL_OBJ) $(BUILD)/libkpbench.a \
		$(BUILD)/libkappa.a $(LDFLAGS_ALL) $(LIBS) $(SERVER_LIBS) -lm

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/kappa $(DESTDIR)$(PREFIX)/bin/kappa
	install -m 644 $(BUILD)/libkappa.a $(DESTDIR)$(PREFIX)/lib/libkappa.a
	install -m 755 $(BUILD)/libkappa.so $(DESTDIR)$(PREFIX)/lib/libkappa.so
	install -m 644 include/kappa.h $(DESTDIR)$(PREFIX)/include/kappa.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(shell sed -n 's/.*KAPPA_VERSION_STRING "\(.*\)"/\1/p' include/kappa.h)|' \
		scripts/kappa.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/kappa.pc

lint: $(STAMP)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --suppress=missingIncludeSystem -D_GNU_SOURCE -Iinclude -Isrc \
		src tests/lib tests/crash bench fuzz
ifeq ($(CLANG_TIDY),1)
	clang-tidy --quiet $(LIB_SRC) $(CLI_SRC) -- -std=c17 -D_GNU_SOURCE -Iinclude -Isrc
endif

FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build build-asan build-fuzz

include fuzz/fuzz.mk

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
