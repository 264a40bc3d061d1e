# SPDX-License-Identifier: Apache-2.0
# A thin wrapper over CMake: `make demo` and `make test` are the two commands the README promises.
# Variables: BUILD (build directory), BUILD_TYPE, SANITIZE=1, WERROR=1, JOBS.

BUILD      ?= build
BUILD_TYPE ?= RelWithDebInfo
SANITIZE   ?= 0
WERROR     ?= 0
JOBS       ?= $(shell nproc)

CMAKE_FLAGS = -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
              -DVGPU_SANITIZE=$(if $(filter 1,$(SANITIZE)),ON,OFF) \
              -DVGPU_WERROR=$(if $(filter 1,$(WERROR)),ON,OFF)

.PHONY: all deps configure build test demo bench format format-check clean

all: build

deps:
	@scripts/deps.sh

configure:
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: deps build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE bench

demo: deps build
	@BUILD=$(BUILD) scripts/demo.sh

bench: deps build
	@cd $(BUILD) && ctest --output-on-failure -L bench -V

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.c' '*.h' | xargs -r clang-format --dry-run --Werror

clean:
	@rm -rf $(BUILD)
