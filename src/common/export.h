/* SPDX-License-Identifier: Apache-2.0 */
/* Symbol visibility: everything is hidden (-fvisibility=hidden) unless marked VGPU_EXPORT. */
#ifndef VGPU_COMMON_EXPORT_H
#define VGPU_COMMON_EXPORT_H

#define VGPU_EXPORT __attribute__((visibility("default")))

#endif
