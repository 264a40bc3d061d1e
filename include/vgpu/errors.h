/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu's own error codes. Functions return 0, a negative errno, or a negative VGPU_E* code from
 * this one list; vgpu_strerror() turns either kind into a sentence that says what went wrong.
 */
#ifndef VGPU_ERRORS_H
#define VGPU_ERRORS_H

/* X(name, number, message). Numbers are stable and never reused; they sit above errno's range. */
#define VGPU_ERROR_LIST(X)                                                                         \
        X(VGPU_EUNKNOWN_MODEL, 1001, "unknown GPU model")                                          \
        X(VGPU_EUNKNOWN_TYPE, 1002, "unknown vGPU type")                                           \
        X(VGPU_ETYPE_MODEL, 1003, "the vGPU type does not belong to this GPU's model")             \
        X(VGPU_EMODE, 1004, "the GPU's mode does not allow this vGPU type")                        \
        X(VGPU_ETYPE_MIX, 1005, "equal-size mode allows one vGPU type per GPU")                    \
        X(VGPU_EMAX_INSTANCES, 1006, "the type's maximum number of vGPUs on this GPU is reached")  \
        X(VGPU_ENO_SPACE, 1007, "no free framebuffer placement is left for this type")             \
        X(VGPU_EPLACEMENT, 1008, "the placement ID is not valid for this type")                    \
        X(VGPU_EPLACEMENT_BUSY, 1009, "the placement overlaps a vGPU or GPU instance")             \
        X(VGPU_ENO_MIG, 1010, "this GPU model does not support MIG")                               \
        X(VGPU_EGPU_BUSY, 1011, "the GPU still has vGPUs or GPU instances")                        \
        X(VGPU_ENO_GI, 1012, "no such GPU instance")                                               \
        X(VGPU_EGI_BUSY, 1013, "the GPU instance still has vGPUs")                                 \
        X(VGPU_EGI_PROFILE, 1014, "the vGPU type does not fit this GPU instance's profile")        \
        X(VGPU_ENO_VGPU, 1015, "no such vGPU")                                                     \
        X(VGPU_EEXIST, 1016, "a vGPU with this ID already exists")                                 \
        X(VGPU_EUNKNOWN_PROFILE, 1017, "unknown GPU instance profile")                             \
        X(VGPU_EENGINE, 1018, "the vGPU's engine could not be started or stopped")                 \
        X(VGPU_EGUESTS, 1019, "the vGPU has guests attached")                                      \
        X(VGPU_ESTATE, 1020, "the state database could not be written")                            \
        X(VGPU_ESCHED_MIX, 1021,                                                                   \
          "fixed share needs vGPUs of one size: not with mixed sizes (heterogeneous mode)")        \
        X(VGPU_ESUSPENDED, 1022, "the vGPU is suspended")                                          \
        X(VGPU_ENOT_SUSPENDED, 1023, "the vGPU is not suspended")                                  \
        X(VGPU_ENOT_RUNNING, 1024, "the vGPU is not running (faulted or changing)")                \
        X(VGPU_ESAME_GPU, 1025, "the vGPU is already on that GPU")                                 \
        X(VGPU_EBUSY, 1026, "the vGPU is being suspended, resumed or moved")                       \
        X(VGPU_EPEER, 1028, "the migration peer failed or refused")                                \
        X(VGPU_EMIG_ADMIN, 1029,                                                                   \
          "vgpud changes a real GPU's MIG layout only when started with --mig-admin")              \
        X(VGPU_EMIG_OFF, 1030, "MIG mode is off on this GPU, and vgpud never turns it on")         \
        X(VGPU_EMIG_DEVICE, 1031, "the GPU instance has no compute instance to run vGPUs on")      \
        X(VGPU_ENVML, 1032, "NVML refused to change the GPU's MIG layout")

enum vgpu_error {
#define VGPU_ERROR_ENUM(name, num, msg) name = -(num),
        VGPU_ERROR_LIST(VGPU_ERROR_ENUM)
#undef VGPU_ERROR_ENUM
};

/*
 * vgpu_strerror - a message for err, a negative errno or a VGPU_E* code (0 gives "success").
 * Returns a static string; never NULL; thread-safe.
 */
const char *vgpu_strerror(int err);

/* vgpu_error_name - the code's symbolic name ("VGPU_ENO_SPACE", "ENOENT"), or "EUNKNOWN". */
const char *vgpu_error_name(int err);

#endif
