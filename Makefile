# The two README commands: `make demo` and `make test`. Everything else is a helper.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 60

.PHONY: deps build test test-release test-asan demo bench bench-micro fuzz install format clean

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The suite twice: an optimized build, then AddressSanitizer + UBSan.
test: test-release test-asan

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@bash scripts/check-install.sh $(BUILD)

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLOOM_SANITIZE=ON \
	  -DLOOM_BUILD_EXAMPLES=OFF -DCMAKE_CXX_FLAGS="-O1" $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD)

# loom against PyTorch and libtorch on the CPU, in one run (bench/run.py; issue 10). Installs the
# peers (scripts/install-bench-deps.sh), builds loom's workloads and the libtorch peer in Release,
# prints the table and writes $(BUILD)/bench/results.json. THREADS=n (default: all cores),
# ROUNDS=n (default 3), WORKLOADS=a,b (default: all), BENCH_RUN_ARGS=--quick.
bench: deps
	@bash scripts/install-bench-deps.sh
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DLOOM_BUILD_BENCH=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target loom_workloads
	cmake -S bench/peers -B $(BUILD)/bench/peers -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD)/bench/peers -j $(JOBS)
	python3 bench/run.py --build $(BUILD) $(BENCH_RUN_ARGS)

# The Google Benchmark suites of bench/*_bench.cpp (per kernel and per op).
bench-micro: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DLOOM_BUILD_BENCH=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	@for b in $(BUILD)/bench/*_bench; do echo "== $$b"; $$b --benchmark_repetitions=5 \
	  --benchmark_report_aggregates_only=true $(BENCH_ARGS) || exit 1; done

# libFuzzer on the checkpoint reader (clang, -fsanitize=fuzzer,address,undefined). The reader's
# sources are compiled instrumented into the fuzzer and linked with the Release libloom.so.
# New inputs go to $(BUILD)/fuzz/corpus; crashers to $(BUILD)/fuzz/crash-*: fix them, then copy
# them into tests/fuzz/corpus (serialization_test replays that directory).
fuzz: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target loom
	mkdir -p $(BUILD)/fuzz/corpus
	clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
	  tests/fuzz/serialization_fuzz.cpp src/serialization/*.cpp -L$(BUILD) -lloom \
	  -Wl,-rpath,$(abspath $(BUILD)) -o $(BUILD)/fuzz/serialization_fuzz
	$(BUILD)/fuzz/serialization_fuzz -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	  -malloc_limit_mb=1024 -artifact_prefix=$(BUILD)/fuzz/ -print_final_stats=1 \
	  $(BUILD)/fuzz/corpus tests/fuzz/corpus

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX),)

format:
	clang-format -i $$(git ls-files '*.hpp' '*.cpp')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
