// SPDX-License-Identifier: Apache-2.0
// `nvidia-smi mig` layouts: the -lgip and -lgi boxes (every line through one column formatter, so
// columns always line up) and the -lgipp placement lines.
#include <stdarg.h>
#include <stdio.h>

#include "ctl/mig_out.h"

/* Inner widths of the boxes, between "| " and " |". */
#define LGIP_INNER 77
#define LGI_INNER  52

static void box_rule(int inner, char c)
{
        putchar('+');
        for (int i = 0; i < inner + 2; i++)
                putchar(c);
        puts("+");
}

static void box_line(int inner, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void box_line(int inner, const char *fmt, ...)
{
        char buf[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        printf("| %-*.*s |\n", inner, inner, buf);
}

static void lgip_cols(const char *gpu, const char *name, const char *id, const char *inst,
                      const char *mem, const char *p2p, const char *sm, const char *dec,
                      const char *enc)
{
        box_line(LGIP_INNER, "%3s   %-16s %-5s %-11s %-10s %-6s %-5s %-5s %s", gpu, name, id, inst,
                 mem, p2p, sm, dec, enc);
}

void mig_out_lgip(const struct mig_out_profile *rows, size_t n)
{
        puts("");
        box_rule(LGIP_INNER, '-');
        box_line(LGIP_INNER, "GPU instance profiles:");
        lgip_cols("GPU", "Name", "ID", "Instances", "Memory", "P2P", "SM", "DEC", "ENC");
        lgip_cols("", "", "", "Free/Total", "GiB", "", "CE", "JPEG", "OFA");
        box_rule(LGIP_INNER, '=');
        for (size_t i = 0; i < n; i++) {
                const struct mig_out_profile *p = &rows[i];
                char gpu[16], name[48], id[16], inst[32], mem[32], sm[16], dec[16], enc[16], ce[16],
                        jpeg[16], ofa[16];

                snprintf(gpu, sizeof(gpu), "%u", p->gpu);
                snprintf(name, sizeof(name), "MIG %s", p->name);
                snprintf(id, sizeof(id), "%u", p->id);
                snprintf(inst, sizeof(inst), "%u/%u", p->free, p->total);
                if (p->mem_gib >= 0)
                        snprintf(mem, sizeof(mem), "%.2f", p->mem_gib);
                else
                        snprintf(mem, sizeof(mem), "N/A");
                if (p->sm)
                        snprintf(sm, sizeof(sm), "%u", p->sm);
                else
                        snprintf(sm, sizeof(sm), "N/A");
                snprintf(dec, sizeof(dec), "%u", p->dec);
                snprintf(enc, sizeof(enc), "%u", p->enc);
                snprintf(ce, sizeof(ce), "%u", p->ce);
                snprintf(jpeg, sizeof(jpeg), "%u", p->jpeg);
                snprintf(ofa, sizeof(ofa), "%u", p->ofa);
                lgip_cols(gpu, name, id, inst, mem, p->p2p ? "Yes" : "No", sm, dec, enc);
                lgip_cols("", "", "", "", "", "", ce, jpeg, ofa);
                box_rule(LGIP_INNER, '-');
        }
}

void mig_out_lgipp(const struct mig_out_profile *rows, size_t n)
{
        puts("");
        for (size_t i = 0; i < n; i++) {
                char buf[256];
                size_t off = 0;
                bool first = true;

                off += (size_t)snprintf(buf, sizeof(buf), "{");
                for (unsigned s = 0; s < 64 && off < sizeof(buf); s++) {
                        if (!(rows[i].starts & ((uint64_t)1 << s)))
                                continue;
                        off += (size_t)snprintf(buf + off, sizeof(buf) - off, first ? "%u" : ",%u",
                                                s);
                        first = false;
                }
                if (off < sizeof(buf))
                        snprintf(buf + off, sizeof(buf) - off, "}:%u", rows[i].size);
                printf("GPU %2u Profile ID %2u Placements: %s\n", rows[i].gpu, rows[i].id, buf);
        }
}

static void lgi_cols(const char *gpu, const char *name, const char *pid, const char *id,
                     const char *placement)
{
        box_line(LGI_INNER, "%3s   %-16s %-8s %-9s %s", gpu, name, pid, id, placement);
}

void mig_out_lgi(const struct mig_out_gi *rows, size_t n)
{
        box_rule(LGI_INNER, '-');
        box_line(LGI_INNER, "GPU instances:");
        lgi_cols("GPU", "Name", "Profile", "Instance", "Placement");
        lgi_cols("", "", "ID", "ID", "Start:Size");
        box_rule(LGI_INNER, '=');
        for (size_t i = 0; i < n; i++) {
                char gpu[16], name[48], pid[16], id[16], placement[32];

                snprintf(gpu, sizeof(gpu), "%u", rows[i].gpu);
                snprintf(name, sizeof(name), "MIG %s", rows[i].profile);
                snprintf(pid, sizeof(pid), "%u", rows[i].profile_id);
                snprintf(id, sizeof(id), "%u", rows[i].id);
                snprintf(placement, sizeof(placement), "%u:%u", rows[i].start, rows[i].size);
                lgi_cols(gpu, name, pid, id, placement);
                box_rule(LGI_INNER, '-');
        }
}
