# SPDX-License-Identifier: Apache-2.0
# Helpers for registering tests and benchmarks with CTest, with the labels DESIGN.md names.

set(VGPU_TEST_ENV
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1"
    "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")

# vgpu_unit_test(NAME SOURCES... LIBS...): a cmocka test binary under label "unit".
function(vgpu_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit ENVIRONMENT "${VGPU_TEST_ENV}" TIMEOUT 300)
endfunction()

# vgpu_script_test(NAME LABEL SCRIPT ARGS...): a shell-driven test (integration or gpu).
# A gpu test exits 77 with a reason when no GPU is present; CTest counts that as skipped.
function(vgpu_script_test name label script)
  add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} -E env
           VGPU_BUILD=${CMAKE_BINARY_DIR} VGPU_SOURCE=${CMAKE_SOURCE_DIR} ${VGPU_TEST_ENV}
           bash ${script} ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS ${label} SKIP_RETURN_CODE 77 TIMEOUT 600)
endfunction()

# vgpu_bench(NAME TARGET ARGS...): a benchmark, run by `make bench`, never by `make test`.
function(vgpu_bench name target)
  add_test(NAME ${name} COMMAND ${target} ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS bench TIMEOUT 1200)
endfunction()

# vgpu_fuzz_target(NAME SOURCES... LIBS...): a libFuzzer binary in build/fuzz/, only with VGPU_FUZZ.
# scripts/fuzz.sh runs every one of them for a bounded time.
function(vgpu_fuzz_target name)
  if(NOT VGPU_FUZZ)
    return()
  endif()
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
endfunction()
