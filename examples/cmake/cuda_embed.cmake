# SPDX-License-Identifier: Apache-2.0
# Build helpers for the driver-API programs in examples/ and tests/guest/: find nvcc, cuda.h and the
# toolkit's stub libcuda.so, compile .cu files to fatbinaries (PTX embedded) or PTX text, and embed
# the bytes in the program as a C array (bin2c.cmake) for cuModuleLoadData.

if(NOT CUDAToolkit_FOUND)
  find_package(CUDAToolkit QUIET)
endif()

# PTX for compute_75 and compute_90 only: the sim runs the PTX; a real GPU JITs it (DESIGN.md).
set(VGPU_CUDA_GENCODE
    -gencode arch=compute_75,code=compute_75 -gencode arch=compute_90,code=compute_90
    CACHE STRING "nvcc -gencode flags for the fatbinaries of examples/ and tests/guest/")
# The PTX text that tests load with cuModuleLoadData(ptx) is for this virtual architecture.
set(VGPU_CUDA_PTX_ARCH compute_75 CACHE STRING "nvcc -arch for embedded PTX text")

set(VGPU_CUDA_PROGRAMS_OK OFF)
set(VGPU_CUDA_PROGRAMS_WHY "")
if(NOT CUDAToolkit_NVCC_EXECUTABLE OR NOT EXISTS "${CUDAToolkit_NVCC_EXECUTABLE}")
  set(VGPU_CUDA_PROGRAMS_WHY "nvcc not found (CUDA toolkit expected at /usr/local/cuda)")
elseif(NOT CUDAToolkit_INCLUDE_DIRS)
  set(VGPU_CUDA_PROGRAMS_WHY "cuda.h not found")
else()
  # Link against the toolkit's stub libcuda.so (SONAME libcuda.so.1): at run time the loader picks
  # whichever libcuda.so.1 LD_LIBRARY_PATH names (vgpu's guest driver, or NVIDIA's).
  find_library(VGPU_CUDA_STUB_LIBRARY NAMES cuda
               PATHS "${CUDAToolkit_LIBRARY_DIR}/stubs" "${CUDAToolkit_LIBRARY_ROOT}/lib64/stubs"
                     "${CUDAToolkit_TARGET_DIR}/lib/stubs"
               NO_DEFAULT_PATH)
  if(VGPU_CUDA_STUB_LIBRARY)
    set(VGPU_CUDA_PROGRAMS_OK ON)
  elseif(TARGET CUDA::cuda_driver)
    set(VGPU_CUDA_STUB_LIBRARY CUDA::cuda_driver)
    set(VGPU_CUDA_PROGRAMS_OK ON)
  else()
    set(VGPU_CUDA_PROGRAMS_WHY "libcuda.so (stub) not found under ${CUDAToolkit_LIBRARY_DIR}/stubs")
  endif()
endif()

set(VGPU_BIN2C_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/bin2c.cmake)

# vgpu_cuda_embed(TARGET CU SYMBOL [PTX]): compile CU with nvcc at build time into a fatbinary (or,
# with PTX, into NUL-terminated PTX text) and add a generated C file to TARGET that defines
#   const unsigned char SYMBOL[];  const size_t SYMBOL_size;
function(vgpu_cuda_embed target cu symbol)
  cmake_parse_arguments(E "PTX" "" "" ${ARGN})
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/embed)
  if(E_PTX)
    set(bin ${dir}/${symbol}.ptx)
    set(flags -ptx -arch=${VGPU_CUDA_PTX_ARCH})
    set(nul ON)
    set(what "PTX")
  else()
    set(bin ${dir}/${symbol}.fatbin)
    set(flags -fatbin ${VGPU_CUDA_GENCODE})
    set(nul OFF)
    set(what "fatbinary")
  endif()
  set(csrc ${dir}/${symbol}.c)
  add_custom_command(OUTPUT ${bin}
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
                     COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} ${flags} -O3 ${cu} -o ${bin}
                     DEPENDS ${cu} COMMENT "nvcc: ${what} ${symbol}" VERBATIM)
  add_custom_command(OUTPUT ${csrc}
                     COMMAND ${CMAKE_COMMAND} -DIN=${bin} -DOUT=${csrc} -DSYMBOL=${symbol} -DNUL=${nul}
                             -P ${VGPU_BIN2C_SCRIPT}
                     DEPENDS ${bin} ${VGPU_BIN2C_SCRIPT} COMMENT "bin2c: ${symbol}" VERBATIM)
  target_sources(${target} PRIVATE ${csrc})
endfunction()

# vgpu_cuda_program(TARGET OUTPUT_NAME DIR SOURCES...): a host program in C linked against the stub
# libcuda.so, written to DIR. No build RPATH: LD_LIBRARY_PATH decides which libcuda.so.1 runs.
function(vgpu_cuda_program target output dir)
  add_executable(${target} ${ARGN})
  target_include_directories(${target} SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  target_link_libraries(${target} PRIVATE ${VGPU_CUDA_STUB_LIBRARY})
  set_target_properties(${target} PROPERTIES OUTPUT_NAME ${output} RUNTIME_OUTPUT_DIRECTORY ${dir}
                                             SKIP_BUILD_RPATH ON)
endfunction()
