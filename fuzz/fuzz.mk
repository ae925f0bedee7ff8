# fuzz/fuzz.mk -- the libFuzzer targets (fuzz/fuzz_*.c), included by the Makefile.
#
#   make fuzz-build              build every target in build-fuzz/ (clang, libFuzzer,
#                                AddressSanitizer + UndefinedBehaviorSanitizer)
#   make fuzz FUZZ_SECONDS=N     run each target for N seconds (default 60) from its seed
#                                corpus fuzz/corpus/<target>/ (scripts/fuzz)
#
# The library, server and CLI objects (all but main) are rebuilt with clang and coverage
# instrumentation into build-fuzz/; each target links them with libFuzzer's main.

FUZZ_BUILD = build-fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c17 $(WARN) -O1 -g -D_GNU_SOURCE -Iinclude -Isrc -pthread -MMD -MP \
              -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_SRC = $(LIB_SRC) $(filter-out src/cli/main.c,$(CLI_SRC))
FUZZ_OBJ = $(FUZZ_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_BIN = $(patsubst fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard fuzz/fuzz_*.c))

.PHONY: fuzz fuzz-build

$(FUZZ_BUILD)/src/%.o: src/%.c | $(STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/libkappa-fuzz.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The console's files are data only (the Makefile's generated console_assets.o).
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_BUILD)/libkappa-fuzz.a $(CONSOLE_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libkappa-fuzz.a \
		$(CONSOLE_OBJ) $(LIBS) $(SERVER_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	@scripts/fuzz $(FUZZ_SECONDS)

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
