/* meta_limits.h: the metadata store's reads for admission control and upload clean-up
 * (storage/meta_limits.c): how many operations a user has waiting, and which uploaded files no
 * operation will read again.
 */
#ifndef TABLEHUB_META_LIMITS_H
#define TABLEHUB_META_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "meta.h"

/* How many operations created by `creator` are unfinished (Pending or In Progress), into *n_out.
 * Returns TH_OK, TH_ESTORE, or TH_ERROR when the store's backend cannot count. */
int th_meta_op_count_unfinished(uint64_t *n_out, th_meta *m, const char *creator, th_error *err);

/* The distinct upload sha-256s (64 hex digits each, NUL-terminated) of operations that ended
 * Failed at or after since_ms (wall clock, ms), into *shas_out (the caller frees the array with
 * free()) and *n_out. Returns TH_OK, TH_ENOMEM, TH_ESTORE or TH_ERROR (as above). */
int th_meta_uploads_failed_since(char (**shas_out)[65], size_t *n_out, th_meta *m, int64_t since_ms,
                                 th_error *err);

/* Does an operation that has not failed (Pending, In Progress or Completed) name upload `sha`?
 * *in_use_out = 1 or 0. Returns TH_OK, TH_ESTORE or TH_ERROR (as above). */
int th_meta_upload_in_use(int *in_use_out, th_meta *m, const char *sha, th_error *err);

#endif
