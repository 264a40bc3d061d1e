# SPDX-License-Identifier: Apache-2.0
# NVML for the cuda backend (nvml.c), loaded with dlopen at run time so that nothing here links
# the driver; the operators' probe vgpu-nvml-probe; and test_nvml with its stand-in NVML.
# Included once, from src/backend/CMakeLists.txt (tests/unit includes it too if that has not).

add_library(vgpu_nvml STATIC ${CMAKE_CURRENT_LIST_DIR}/nvml.c ${CMAKE_CURRENT_LIST_DIR}/nvml_mig_admin.c
            ${CMAKE_CURRENT_LIST_DIR}/nvml_telemetry.c)
target_include_directories(vgpu_nvml PUBLIC ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(vgpu_nvml PUBLIC vgpu_common ${CMAKE_DL_LIBS} Threads::Threads)
set_target_properties(vgpu_nvml PROPERTIES POSITION_INDEPENDENT_CODE ON)

# In build/bin, with the other executables (CMAKE_RUNTIME_OUTPUT_DIRECTORY).
add_executable(vgpu-nvml-probe ${CMAKE_CURRENT_LIST_DIR}/vgpu_nvml_probe.c)
target_link_libraries(vgpu-nvml-probe PRIVATE vgpu_nvml vgpu_common PkgConfig::JANSSON)

# The stand-in libnvidia-ml the unit test loads through $VGPU_NVML_LIB.
add_library(nvml_fake MODULE ${CMAKE_SOURCE_DIR}/tests/unit/fake_nvml.c)
target_include_directories(nvml_fake PRIVATE ${CMAKE_SOURCE_DIR}/src)
set_target_properties(nvml_fake PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

vgpu_unit_test(test_nvml SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_nvml.c LIBS vgpu_nvml)
target_compile_definitions(test_nvml PRIVATE FAKE_NVML_PATH="$<TARGET_FILE:nvml_fake>")
target_link_libraries(test_nvml PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(test_nvml nvml_fake)
