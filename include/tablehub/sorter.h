/* sorter.h: an external sort of (key, payload) records in bounded memory (src/sorter.c).
 *
 * Records are put in any order, then read back in key order: keys compare as bytes (memcmp, a
 * shorter key first when one is a prefix of the other: th_key_cmp, so order-preserving key
 * encodings sort as their values), and records of equal keys come in the order of their `seq`.
 * Memory stays within the budget however many records are put: past it, what is held is sorted
 * and written to an anonymous temporary file as a run; reading merges the runs (k-way) with what
 * is still in memory. The merge reads at most TH_SORTER_FANIN runs at once, merging runs in
 * passes as they pile up, so the memory and the files held open stay bounded however large the
 * input. Used by the import to sort rows by primary key; reusable for any stream that must be
 * read back sorted. One thread at a time.
 */
#ifndef TABLEHUB_SORTER_H
#define TABLEHUB_SORTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "error.h"

typedef struct th_sorter th_sorter;

/* Runs merged at once, at most: each holds a record buffer and an open file while it is read. */
#define TH_SORTER_FANIN 16

/* What a sorter did, for tests and measurements. */
typedef struct th_sorter_stats {
	uint64_t runs;    /* run files written: spills and merges */
	uint64_t merges;  /* merges of run files into one (before the last, read by pops) */
	size_t max_fanin; /* the most runs one merge read at once, the last included */
	size_t max_open;  /* the most run files open at once */
} th_sorter_stats;

/* A record read back. Pointers are borrowed from the sorter: valid until the next th_sorter_pop
 * or th_sorter_free. */
typedef struct th_sorter_rec {
	const unsigned char *key;
	size_t keylen;
	const void *data;
	size_t datalen;
	uint64_t seq;
} th_sorter_rec;

/* A sorter that holds about `budget` bytes of records in memory (0 = 64 MiB) and writes its runs
 * to `tmpdir` (copied; NULL = $TMPDIR or /tmp). Returns TH_OK or TH_ENOMEM; *out is the
 * caller's: th_sorter_free. */
int th_sorter_new(th_sorter **out, const char *tmpdir, size_t budget, th_error *err);

/* What the sorter did so far, into *out. */
void th_sorter_get_stats(th_sorter_stats *out, const th_sorter *s);

/* Free the sorter and close (so delete) its run files. Accepts NULL. */
void th_sorter_free(th_sorter *s);

/* Add a record (key and data are copied; each at most 4 GiB). Only before th_sorter_finish.
 * Returns TH_OK, TH_ENOMEM or TH_ESTORE (a run could not be written: message says why). */
int th_sorter_put(th_sorter *s, const void *key, size_t keylen, const void *data, size_t datalen,
                  uint64_t seq, th_error *err);

/* End the input and start reading. Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
int th_sorter_finish(th_sorter *s, th_error *err);

/* The smallest record not yet popped into *out: returns 1, or 0 when every record was read. */
int th_sorter_peek(th_sorter_rec *out, const th_sorter *s);

/* Move past the smallest record; what th_sorter_peek gave may then be gone, so keep a copy of
 * what is needed. Returns TH_OK, TH_ENOMEM or TH_ESTORE (a run file could not be read). */
int th_sorter_pop(th_sorter *s, th_error *err);

/* An anonymous temporary file in `dir` (NULL = $TMPDIR or /tmp; unlinked at once, so nothing is
 * left behind even by a crash), open for reading and writing: the sorter's run files (with a
 * stdio buffer around it) and callers' own spill files. The descriptor is the caller's to close.
 * Returns TH_OK or TH_ESTORE (the message does not name the directory: it may reach a client). */
int th_sorter_tmpfd(int *out, const char *dir, th_error *err);

#endif
