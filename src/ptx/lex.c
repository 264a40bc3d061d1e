// SPDX-License-Identifier: Apache-2.0
// The PTX tokenizer: splits text into words, punctuation and strings, skipping comments, and
// counts lines for error messages. Bounded by the text's length, NUL-terminated or not.
#include <string.h>

#include "ptx/lex.h"

void lex_init(struct lexer *lx, const char *text, size_t len)
{
        memset(lx, 0, sizeof(*lx));
        lx->p = text;
        lx->end = text + len;
        lx->line = 1;
}

static bool is_word_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '$' || c == '%' || c == '.';
}

static void lex_skip_space(struct lexer *lx)
{
        while (lx->p < lx->end) {
                char c = *lx->p;
                if (c == '\n') {
                        lx->line++;
                        lx->p++;
                } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
                        lx->p++;
                } else if (c == '/' && lx->p + 1 < lx->end && lx->p[1] == '/') {
                        while (lx->p < lx->end && *lx->p != '\n')
                                lx->p++;
                } else if (c == '/' && lx->p + 1 < lx->end && lx->p[1] == '*') {
                        lx->p += 2;
                        while (lx->p < lx->end &&
                               !(*lx->p == '*' && lx->p + 1 < lx->end && lx->p[1] == '/')) {
                                if (*lx->p == '\n')
                                        lx->line++;
                                lx->p++;
                        }
                        lx->p = lx->p + 2 < lx->end ? lx->p + 2 : lx->end;
                } else {
                        break;
                }
        }
}

static void lex_raw(struct lexer *lx)
{
        size_t n = 0;

        lex_skip_space(lx);
        lx->overflow = false;
        if (lx->p >= lx->end || *lx->p == 0) {
                lx->kind = TK_EOF;
                lx->tok[0] = 0;
                return;
        }
        char c = *lx->p;
        if (is_word_char(c)) {
                while (lx->p < lx->end) {
                        c = *lx->p;
                        if (is_word_char(c)) {
                                /* fallthrough */
                        } else if (c == ':' && lx->p + 1 < lx->end && lx->p[1] == ':') {
                                if (n + 1 < sizeof(lx->tok))
                                        lx->tok[n++] = ':';
                                lx->p++;
                        } else {
                                break;
                        }
                        if (n + 1 < sizeof(lx->tok))
                                lx->tok[n++] = c;
                        else
                                lx->overflow = true;
                        lx->p++;
                }
                lx->tok[n] = 0;
                lx->kind = TK_WORD;
                return;
        }
        if (c == '"') {
                lx->p++;
                while (lx->p < lx->end && *lx->p != '"' && *lx->p != '\n') {
                        if (n + 1 < sizeof(lx->tok))
                                lx->tok[n++] = *lx->p;
                        lx->p++;
                }
                if (lx->p < lx->end && *lx->p == '"')
                        lx->p++;
                lx->tok[n] = 0;
                lx->kind = TK_STRING;
                return;
        }
        lx->tok[0] = c;
        lx->tok[1] = 0;
        lx->p++;
        lx->kind = TK_PUNCT;
}

void lex_next(struct lexer *lx)
{
        if (lx->peeked) {
                lx->peeked = false;
                lx->kind = lx->pk_kind;
                memcpy(lx->tok, lx->pk_tok, sizeof(lx->tok));
                lx->line = lx->pk_line;
                lx->p = lx->pk_p;
                return;
        }
        lex_raw(lx);
}

/* Look at the token after the current one without consuming it. */
int lex_peek(struct lexer *lx, const char **ret_tok)
{
        if (!lx->peeked) {
                struct lexer save = *lx;
                lex_raw(lx);
                save.pk_kind = lx->kind;
                memcpy(save.pk_tok, lx->tok, sizeof(save.pk_tok));
                save.pk_line = lx->line;
                save.pk_p = lx->p;
                save.peeked = true;
                *lx = save;
        }
        *ret_tok = lx->pk_tok;
        return lx->pk_kind;
}

bool tok_is(const struct lexer *lx, const char *s)
{
        return lx->kind != TK_EOF && lx->kind != TK_STRING && strcmp(lx->tok, s) == 0;
}
