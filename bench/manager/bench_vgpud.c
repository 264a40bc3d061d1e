// SPDX-License-Identifier: Apache-2.0
// vgpud benchmark: starts a vgpud on a temporary state directory and measures API latency with 1
// and 64 concurrent clients and vGPU create+destroy throughput. The baseline, measured in the
// same run, is GET /v1/health: the same socket, HTTP and JSON path with no manager work.
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/http_client.h"

#define MAX_SAMPLES 20000

static char sock_path[256];

static double now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
        size_t i = (size_t)(p * (double)(n - 1));

        qsort(v, n, sizeof(*v), cmp_double);
        return v[i];
}

/* One timed request; aborts the benchmark on an unexpected status. */
static double timed(const char *method, const char *path, json_t *body, int want, json_t **ret_body)
{
        double t0 = now_us();
        json_t *reply = NULL;
        int status = 0;
        int r = http_call(sock_path, method, path, body, &status, &reply);

        if (r < 0 || status != want) {
                fprintf(stderr, "bench: %s %s: %s, status %d\n", method, path,
                        r < 0 ? strerror(-r) : "ok", status);
                exit(1);
        }
        if (ret_body)
                *ret_body = reply;
        else
                json_decref(reply);
        return now_us() - t0;
}

struct worker {
        const char *path;
        int n;
        double *samples;
};

static void *worker_main(void *arg)
{
        struct worker *w = arg;

        for (int i = 0; i < w->n; i++)
                w->samples[i] = timed("GET", w->path, NULL, 200, NULL);
        return NULL;
}

/* n_clients threads each doing per_client GETs of path; p50 and p99 over all of them. */
static void latency(const char *path, int n_clients, int per_client, double *p50, double *p99)
{
        static double all[MAX_SAMPLES];
        pthread_t th[64];
        struct worker w[64];

        for (int c = 0; c < n_clients; c++) {
                w[c] = (struct worker){
                        .path = path, .n = per_client, .samples = all + (size_t)c * per_client};
                pthread_create(&th[c], NULL, worker_main, &w[c]);
        }
        for (int c = 0; c < n_clients; c++)
                pthread_join(th[c], NULL);
        *p50 = pct(all, (size_t)n_clients * per_client, 0.50);
        *p99 = pct(all, (size_t)n_clients * per_client, 0.99);
}

int main(int argc, char **argv)
{
        char dir[] = "/tmp/vgpu-bench-XXXXXX", state[300], line[64] = "";
        double h50, h99, g50_1, g99_1, g50_64, g99_64, t0, cd_s;
        int pipefd[2], cycles = 200;
        json_t *body, *v;
        pid_t pid;
        FILE *out;

        if (argc < 2) {
                fprintf(stderr, "usage: bench_vgpud PATH/TO/vgpud\n");
                return 2;
        }
        if (!mkdtemp(dir) || pipe(pipefd) < 0)
                return 1;
        snprintf(sock_path, sizeof(sock_path), "%s/vgpud.sock", dir);
        snprintf(state, sizeof(state), "%s/state", dir);
        pid = fork();
        if (pid == 0) {
                dup2(pipefd[1], 1);
                setenv("VGPU_LOG", "warn", 1);
                execl(argv[1], argv[1], "--sim-gpus", "H100-80GB", "--state", state, "--socket",
                      sock_path, (char *)NULL);
                _exit(127);
        }
        close(pipefd[1]);
        out = fdopen(pipefd[0], "r");
        if (!out || !fgets(line, sizeof(line), out) || strcmp(line, "READY\n") != 0) {
                fprintf(stderr, "bench: vgpud did not start\n");
                return 1;
        }

        /* Warm up, then the baseline. */
        latency("/v1/health", 1, 200, &h50, &h99);
        latency("/v1/health", 1, 2000, &h50, &h99);
        latency("/v1/gpus", 1, 2000, &g50_1, &g99_1);
        latency("/v1/gpus", 64, 100, &g50_64, &g99_64);

        /* Create + destroy cycles: each starts and stops an engine and commits twice each way. */
        body = json_pack("{s:s}", "type", "H100-5C");
        t0 = now_us();
        for (int i = 0; i < cycles; i++) {
                char path[96];

                timed("POST", "/v1/vgpus", body, 201, &v);
                snprintf(path, sizeof(path), "/v1/vgpus/%s",
                         json_string_value(json_object_get(v, "uuid")));
                json_decref(v);
                timed("DELETE", path, NULL, 204, NULL);
        }
        cd_s = (now_us() - t0) / 1e6;
        json_decref(body);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);

        printf("%-40s %12s %12s\n", "vgpud API (sim, 1 GPU)", "p50 (us)", "p99 (us)");
        printf("%-40s %12.1f %12.1f\n", "GET /v1/health, 1 client (baseline)", h50, h99);
        printf("%-40s %12.1f %12.1f\n", "GET /v1/gpus, 1 client", g50_1, g99_1);
        printf("%-40s %12.1f %12.1f\n", "GET /v1/gpus, 64 clients", g50_64, g99_64);
        printf("%-40s %12.1f %12s\n", "create+destroy cycle (mean)", cd_s * 1e6 / cycles, "");
        printf("BENCH api_health_p50 %.1f us\n", h50);
        printf("BENCH api_gpus_1client_p50 %.1f us\n", g50_1);
        printf("BENCH api_gpus_1client_p99 %.1f us\n", g99_1);
        printf("BENCH api_gpus_64clients_p50 %.1f us\n", g50_64);
        printf("BENCH api_gpus_64clients_p99 %.1f us\n", g99_64);
        printf("BENCH api_gpus_1client_p50_ratio %.2f x\n", g50_1 / h50);
        printf("BENCH api_gpus_64clients_p99_ratio %.2f x\n", g99_64 / h50);
        printf("BENCH create_destroy_per_s %.1f ops/s\n", cycles / cd_s);
        printf("BENCH create_destroy_ratio %.1f x\n", (cd_s * 1e6 / cycles) / h50);
        return 0;
}
