# Front door. `make` builds build/ignis; `make run` and `make test` install the
# Debian packages first (scripts/deps.sh), so both work on a fresh machine.
BUILD      ?= build
JOBS       ?= $(shell nproc)
IGNIS_TEST_DATA ?= $(abspath ../shared)
export IGNIS_TEST_DATA
MODEL      ?= $(if $(IGNIS_MODEL),$(IGNIS_MODEL),$(IGNIS_TEST_DATA)/models/stories260K.gguf)
PROMPT     ?= Once upon a time
FUZZ_SECONDS ?= 5
HOST       ?= 127.0.0.1
PORT       ?= 8080
# stories260K has no chat template of its own: give it chatml so /v1/chat/completions works.
CHAT_TEMPLATE ?= $(if $(findstring stories260K,$(MODEL)),chatml,)

.PHONY: all build deps run story test check-asan check-tsan fuzz fuzz-long format clean

all: build

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DIGNIS_TEST_DATA=$(IGNIS_TEST_DATA) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

deps:
	@bash scripts/deps.sh

# `make run`: the OpenAI-compatible server on $(HOST):$(PORT) (Ctrl-C stops it).
run: deps build
	@if [ ! -f "$(MODEL)" ]; then \
	  echo "no model at $(MODEL): pass MODEL=path/to/model.gguf (or set IGNIS_MODEL / IGNIS_TEST_DATA)"; exit 1; fi
	@echo "try, in another terminal:"
	@echo "  curl -s http://$(HOST):$(PORT)/v1/completions -H 'Content-Type: application/json' -d '{\"prompt\": \"$(PROMPT)\", \"max_tokens\": 64}'"
	@echo "  curl -sN http://$(HOST):$(PORT)/v1/chat/completions -H 'Content-Type: application/json' -d '{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a story\"}], \"max_tokens\": 64, \"stream\": true}'"
	$(BUILD)/ignis serve -m "$(MODEL)" --host $(HOST) --port $(PORT) $(if $(CHAT_TEMPLATE),--chat-template $(CHAT_TEMPLATE),)

# `make story`: one story from the command line (the old `make run`).
story: deps build
	@if [ ! -f "$(MODEL)" ]; then \
	  echo "no model at $(MODEL): pass MODEL=path/to/model.gguf (or set IGNIS_MODEL / IGNIS_TEST_DATA)"; exit 1; fi
	$(BUILD)/ignis run -m "$(MODEL)" -p "$(PROMPT)" -n 200

test: deps build
	@bash scripts/test-setup.sh $(abspath $(BUILD))/npm
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

check-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DIGNIS_SANITIZE=address,undefined \
	  -DIGNIS_TEST_DATA=$(IGNIS_TEST_DATA) >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 CRITERION_NO_EARLY_EXIT=1 ctest --output-on-failure -j $(JOBS)

check-tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DIGNIS_SANITIZE=thread \
	  -DIGNIS_TEST_DATA=$(IGNIS_TEST_DATA) >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	@# Criterion's runner cannot start under TSan (Criterion issue #274), so the
	@# threaded tests carry their own main() in TSan builds and only they run here.
	cd build-tsan && ctest --output-on-failure -j $(JOBS) -R stress

# libFuzzer targets, built with clang in their own tree. `make fuzz` is the short
# run that `make test` includes; `make fuzz-long FUZZ_SECONDS=600` is the long one.
fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIGNIS_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	bash scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

fuzz-long:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz
