// SPDX-License-Identifier: Apache-2.0
// Replays a fuzz target's corpus as a unit test: every file in CORPUS_DIR (the seeds, and any
// crash input added there once fixed) goes through the target's LLVMFuzzerTestOneInput, so the
// sanitizer builds catch a regression without running the fuzzer.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(void)
{
        DIR *d = opendir(CORPUS_DIR);
        struct dirent *e;
        unsigned n = 0;

        if (!d) {
                fprintf(stderr, "corpus: cannot open %s\n", CORPUS_DIR);
                return 1;
        }
        while ((e = readdir(d)) != NULL) {
                char path[4096];
                if (e->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, e->d_name);
                FILE *f = fopen(path, "rb");
                if (!f)
                        continue;
                fseek(f, 0, SEEK_END);
                long len = ftell(f);
                fseek(f, 0, SEEK_SET);
                uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
                if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
                        LLVMFuzzerTestOneInput(buf, (size_t)len);
                        n++;
                }
                free(buf);
                fclose(f);
        }
        closedir(d);
        printf("corpus: %u inputs from %s replayed\n", n, CORPUS_DIR);
        return n ? 0 : 1;
}
