# SPDX-License-Identifier: Apache-2.0
# vgpu_rt_program(TARGET OUTPUT DIR SOURCE [STATIC] [DEPENDS files...] [NVCC_FLAGS flags...]): a
# CUDA runtime-API program
# (host code C++, kernels with <<<>>>) built by one nvcc command with `-cudart shared` (STATIC:
# nvcc's default static runtime, for the test that such a program fails clearly), with PTX for
# VGPU_CUDA_GENCODE embedded as nvcc does. No RPATH: LD_LIBRARY_PATH picks the libcudart.so.13
# (vgpu's in build/lib, or NVIDIA's) and libcuda.so.1 that run it.
include_guard(GLOBAL)

function(vgpu_rt_program target output dir source)
  cmake_parse_arguments(P "STATIC" "" "DEPENDS;NVCC_FLAGS" ${ARGN})
  if(P_STATIC)
    set(cudart static)
  else()
    set(cudart shared)
  endif()
  get_filename_component(src_dir ${source} DIRECTORY)
  add_custom_command(OUTPUT ${dir}/${output}
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
                     COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -cudart ${cudart} ${VGPU_CUDA_GENCODE}
                             -O2 -Xcompiler=-Wall,-Wextra ${P_NVCC_FLAGS} -I${src_dir} -o ${dir}/${output} ${source}
                     DEPENDS ${source} ${P_DEPENDS}
                     COMMENT "nvcc -cudart ${cudart}: ${output}" VERBATIM)
  add_custom_target(${target} ALL DEPENDS ${dir}/${output})
endfunction()
