# SPDX-License-Identifier: Apache-2.0
# vgpud's GET /metrics renderer (metrics.c): plain data in, Prometheus text out, nothing of the
# manager's internals, so that it builds and is tested on its own. Included once: from
# src/manager/CMakeLists.txt, or else from tests/unit/CMakeLists.txt.
add_library(vgpu_metrics STATIC ${CMAKE_CURRENT_LIST_DIR}/metrics.c)
target_include_directories(vgpu_metrics PUBLIC ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
set_target_properties(vgpu_metrics PROPERTIES POSITION_INDEPENDENT_CODE ON)
