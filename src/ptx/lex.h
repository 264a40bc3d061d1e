/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PTX tokenizer: words (identifiers, opcodes with their dotted modifiers and "::" scopes,
 * registers, numbers), single-character punctuation and strings, with line numbers and one token
 * of look-ahead. Comments are skipped. Every token fits NAME_MAX_LEN or is flagged as overflow.
 */
#ifndef VGPU_PTX_LEX_H
#define VGPU_PTX_LEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAME_MAX_LEN 256

enum tok_kind { TK_EOF, TK_WORD, TK_PUNCT, TK_STRING };

struct lexer {
        const char *p, *end;
        uint32_t line;
        int kind;
        char tok[NAME_MAX_LEN];
        bool overflow;
        /* one token of look-ahead */
        bool peeked;
        int pk_kind;
        char pk_tok[NAME_MAX_LEN];
        uint32_t pk_line;
        const char *pk_p;
};

/* lex_init - tokenise text[0..len); the first lex_next yields the first token. */
void lex_init(struct lexer *lx, const char *text, size_t len);

/* lex_next - advance to the next token (lx->kind, lx->tok, lx->line). */
void lex_next(struct lexer *lx);

/* lex_peek - the kind of the token after the current one; *ret_tok its text. Consumes nothing. */
int lex_peek(struct lexer *lx, const char **ret_tok);

/* tok_is - whether the current token is the word or punctuation s. */
bool tok_is(const struct lexer *lx, const char *s);

#endif
