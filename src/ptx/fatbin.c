// SPDX-License-Identifier: Apache-2.0
// The container reader: finds the PTX text in a fatbinary (nvcc's 0xBA55ED50 format, optionally
// behind the 0x466243B1 wrapper), decompressing zstd entries with libzstd. Every read is bounded
// by the image size: the image comes from a guest.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "common/export.h"
#include "ptx/internal.h"

#define FATBIN_MAGIC      0xba55ed50u
#define FATBIN_WRAP_MAGIC 0x466243b1u
#define ENTRY_PTX         1
#define ENTRY_FLAG_ZSTD   0x8000u
/* A PTX text larger than this is refused: it bounds what a hostile image can make us allocate. */
#define PTX_MAX_TEXT (256u << 20)

static uint16_t rd16(const uint8_t *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
        return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* Copy a PTX payload: plain text up to its first NUL, or a zstd frame. */
static int fatbin_extract(const uint8_t *p, size_t n, uint64_t flags, uint64_t raw_size,
                          char **ret_text, size_t *ret_len)
{
        bool zstd = n >= 4 && rd32(p) == 0xfd2fb528u;
        char *text;
        size_t len;

        if ((flags & ENTRY_FLAG_ZSTD) && !zstd)
                return PTX_EDECOMPRESS;
        if (zstd) {
                unsigned long long fsize = ZSTD_getFrameContentSize(p, n);
                size_t csize = ZSTD_findFrameCompressedSize(p, n);

                if (ZSTD_isError(csize))
                        return PTX_EDECOMPRESS;
                if (fsize == ZSTD_CONTENTSIZE_ERROR)
                        return PTX_EDECOMPRESS;
                if (fsize == ZSTD_CONTENTSIZE_UNKNOWN)
                        fsize = raw_size;
                if (fsize == 0 || fsize > PTX_MAX_TEXT)
                        return PTX_EDECOMPRESS;
                text = malloc(fsize + 1);
                if (!text)
                        return -ENOMEM;
                size_t got = ZSTD_decompress(text, fsize, p, csize);
                if (ZSTD_isError(got)) {
                        free(text);
                        return PTX_EDECOMPRESS;
                }
                text[got] = 0;
                len = strlen(text);
        } else {
                const uint8_t *nul = memchr(p, 0, n);
                len = nul ? (size_t)(nul - p) : n;
                if (len > PTX_MAX_TEXT)
                        return PTX_EFORMAT;
                text = malloc(len + 1);
                if (!text)
                        return -ENOMEM;
                memcpy(text, p, len);
                text[len] = 0;
        }
        *ret_text = text;
        *ret_len = len;
        return 0;
}

VGPU_EXPORT int ptx_fatbin_find_ptx(const void *image, size_t size, char **ret_text,
                                    size_t *ret_len)
{
        const uint8_t *p = image;
        const uint8_t *best = NULL;
        uint64_t best_size = 0, best_flags = 0, best_raw = 0;
        uint32_t best_arch = 0;
        bool any_entry = false;

        if (!image || !ret_text || !ret_len)
                return -EINVAL;
        /* nvcc's wrapper: { magic, version, data pointer, filename }; only an image that carries
         * the fatbinary right behind it can be read here (a pointer from a guest means nothing). */
        if (size >= 24 && rd32(p) == FATBIN_WRAP_MAGIC) {
                p += 24;
                size -= 24;
        } else if (size >= 16 && rd32(p) == FATBIN_WRAP_MAGIC) {
                p += 16;
                size -= 16;
        }
        if (size < 16 || rd32(p) != FATBIN_MAGIC)
                return PTX_EFORMAT;

        /* A file may hold several fatbinaries back to back: walk them all. */
        size_t off = 0;
        while (off + 16 <= size && rd32(p + off) == FATBIN_MAGIC) {
                uint16_t hdr = rd16(p + off + 6);
                uint64_t body = rd64(p + off + 8);
                if (hdr < 16 || hdr > size - off || body > size - off - hdr)
                        return PTX_EFORMAT;
                const uint8_t *e = p + off + hdr;
                const uint8_t *end = e + body;
                while ((size_t)(end - e) >= 64) {
                        uint16_t kind = rd16(e);
                        uint32_t ehdr = rd32(e + 4);
                        uint64_t psize = rd64(e + 8);
                        if (ehdr < 64 || ehdr > (size_t)(end - e) ||
                            psize > (size_t)(end - e) - ehdr)
                                return PTX_EFORMAT;
                        any_entry = true;
                        uint32_t arch = rd32(e + 28);
                        if (kind == ENTRY_PTX && (!best || arch > best_arch)) {
                                best = e + ehdr;
                                best_size = psize;
                                best_flags = rd64(e + 40);
                                best_raw = rd64(e + 56);
                                best_arch = arch;
                        }
                        e += ehdr + psize;
                }
                off += hdr + body;
        }
        if (!best)
                return any_entry ? PTX_ENOPTX : PTX_EFORMAT;
        return fatbin_extract(best, best_size, best_flags, best_raw, ret_text, ret_len);
}
