// SPDX-License-Identifier: Apache-2.0
// vgpud's state database (src/manager/state.c): the one-time renumbering of real GPUs' GPU
// instance IDs to NVML's + 1 (state_real_gi_ids), in the instance rows and the vGPU rows that
// name them, and nothing else.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "manager/state.h"

struct seen {
        uint32_t gi_ids[8], vgpu_gis[8];
        size_t n_gi, n_vgpu;
};

static int each_gi(void *ctx, const struct state_gi *gi)
{
        struct seen *s = ctx;

        s->gi_ids[s->n_gi++] = gi->gpu * 100 + gi->id;
        return 0;
}

static int each_vgpu(void *ctx, const struct state_vgpu *v)
{
        struct seen *s = ctx;

        s->vgpu_gis[s->n_vgpu++] = v->gi;
        return 0;
}

static struct seen read_back(struct state *st)
{
        struct seen s = {0};

        assert_int_equal(state_each_gi(st, each_gi, &s), 0);
        assert_int_equal(state_each_vgpu(st, each_vgpu, &s), 0);
        return s;
}

static void test_real_gi_ids(void **state)
{
        char dir[] = "/tmp/vgpu-state-XXXXXX", cmd[64];
        struct state *st = NULL;
        struct seen s;

        (void)state;
        assert_non_null(mkdtemp(dir));
        assert_int_equal(state_open(dir, &st), 0);
        /* as an earlier vgpud wrote them: NVML's IDs 1, 2 (one implicit), a vGPU in each, one
         * time-sliced outside any */
        assert_int_equal(state_begin(st), 0);
        for (uint32_t id = 1; id <= 2; id++) {
                struct state_gi gi = {
                        .gpu = 0, .id = id, .profile = 19, .start = id - 1, .implicit = id == 2};
                struct state_vgpu v = {.handle = id,
                                       .gpu = 0,
                                       .type_id = 525,
                                       .gi = id,
                                       .state = "running",
                                       .created_at = "x"};

                snprintf(v.uuid, sizeof(v.uuid), "00000000-0000-4000-8000-00000000000%u", id);
                assert_int_equal(state_put_gi(st, &gi), 0);
                assert_int_equal(state_put_vgpu(st, &v), 0);
        }
        {
                struct state_vgpu v = {.uuid = "00000000-0000-4000-8000-000000000009",
                                       .handle = 9,
                                       .gpu = 1,
                                       .type_id = 516,
                                       .state = "running",
                                       .created_at = "x"};

                assert_int_equal(state_put_vgpu(st, &v), 0);
        }
        assert_int_equal(state_commit(st), 0);

        assert_int_equal(state_real_gi_ids(st), 0);
        s = read_back(st);
        assert_int_equal(s.n_gi, 2);
        assert_int_equal(s.gi_ids[0], 2);
        assert_int_equal(s.gi_ids[1], 3);
        assert_int_equal(s.n_vgpu, 3);
        assert_int_equal(s.vgpu_gis[0], 2);
        assert_int_equal(s.vgpu_gis[1], 3);
        assert_int_equal(s.vgpu_gis[2], 0); /* not in an instance: stays so */

        /* once only: a second start changes nothing, nor does a reopened state */
        assert_int_equal(state_real_gi_ids(st), 0);
        state_close(st);
        assert_int_equal(state_open(dir, &st), 0);
        assert_int_equal(state_real_gi_ids(st), 0);
        s = read_back(st);
        assert_int_equal(s.gi_ids[0], 2);
        assert_int_equal(s.gi_ids[1], 3);
        assert_int_equal(s.vgpu_gis[0], 2);
        state_close(st);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_real_gi_ids),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
