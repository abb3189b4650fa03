/* text.h: UTF-8 validation, hex digits and name checks (util/text.c). */
#ifndef TABLEHUB_TEXT_H
#define TABLEHUB_TEXT_H

#include <stddef.h>
#include "error.h"

/* Is s[0..len) valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF)? On failure
 * *bad_at (may be NULL) is the offset of the first bad byte. */
int th_utf8_valid(const char *s, size_t len, size_t *bad_at);

/* Copy s[0..len) to out (room for 3 * len bytes) with each byte that does not start or continue
 * valid UTF-8 replaced by U+FFFD; returns the bytes written. */
size_t th_utf8_scrub(char *out, const char *s, size_t len);

/* Rewrite, in place, every single-quoted absolute path in the NUL-terminated message s ('/a/b/c')
 * to what identifies it without the server's directories: the part after its last ".git/" (a
 * ref or object of a repository: 'refs/heads/main.lock') or else its last component. A quoted
 * text with fewer than two '/' is left alone. For messages of libraries and the OS, which name
 * files by their full path. */
void th_scrub_paths(char *s);

/* Register `dir` (copied; at most 4 folders, each at least 2 bytes) as a server folder whose name
 * must never reach a client or a log line: th_redact then writes "<data>" in its place. Call at
 * start, before other threads use th_redact. Returns 0, or -1 when the table is full or out of
 * memory (nothing registered). */
int th_redact_add(const char *dir);

/* Rewrite s in place (NUL-terminated, capacity `size` bytes, which the result never exceeds: it is
 * cut when the replacement would not fit) so that every registered folder standing as a path --
 * at the start or after a quote, space, '=', '(' or ':', and followed by '/', a quote, a space,
 * ')' or the end -- reads "<data>". Returns the number of replacements. */
size_t th_redact(char *s, size_t size);

/* The value of hex digit c (either case), or -1. */
int th_hexval(int c);

/* Are the n bytes at s all hex digits (either case)? 1 or 0. */
int th_is_hex(const char *s, size_t n);

/* Is `s` a valid owner, database or user name: 1-64 of [A-Za-z0-9_-], not starting with '-'? */
int th_name_valid(const char *s);

/* Split "OWNER/DB" into owner and db (each at most 64 bytes plus NUL). Returns TH_OK or
 * TH_EINVALID with a message saying what a valid name is. */
int th_split_db_name(char owner[65], char db[65], const char *s, th_error *err);

#endif
