/* meta_limits.c: the store reads of include/tablehub/meta_limits.h, for the SQLite backend.
 *
 * Kept apart from the per-resource files of the backend (meta_queue.c) because they serve the
 * server's admission control and clean-up, not the operations themselves, and they are rare (one
 * count per upload or merge request, one listing every few seconds): each prepares its statement
 * when it runs instead of taking a slot of the prepared-statement table. They run on the
 * backend's connection, under its mutex, like every other call. Another backend would add them to
 * its ops table; until then they answer TH_ERROR for it.
 */
#include <stdlib.h>
#include <string.h>

#include "meta_sqlite.h"
#include "tablehub/meta_limits.h"

/* The SQLite handle of m, or NULL (with err set) for another backend. */
static th_msql *sqlite_of(th_meta *m, th_error *err)
{
	if (m->ops != &th_meta_sqlite_ops) {
		th_error_set(err, TH_ERROR, "the %s metadata backend cannot count operations",
		             m->ops->name);
		return NULL;
	}
	return (th_msql *)m;
}

/* Prepare sql on s (its mutex held). Returns TH_OK or TH_ESTORE. */
static int prepare(sqlite3_stmt **st, th_msql *s, const char *sql, const char *what, th_error *err)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return th_msql__error(s, what, err);
	}
	return TH_OK;
}

int th_meta_op_count_unfinished(uint64_t *n_out, th_meta *m, const char *creator, th_error *err)
{
	static const char what[] = "count unfinished operations";
	th_msql *s = sqlite_of(m, err);
	sqlite3_stmt *st = NULL;
	int error;

	if (s == NULL)
		return TH_ERROR;
	pthread_mutex_lock(&s->mu);
	/* operations_creator (creator, created_at) narrows this to the user's own operations. */
	if ((error = prepare(&st, s,
	                     "SELECT count(*) FROM operations WHERE creator = ?1 AND "
	                     "state IN ('Pending', 'In Progress')",
	                     what, err)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, creator, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		error = th_msql__error(s, what, err);
		goto cleanup;
	}
	*n_out = (uint64_t)sqlite3_column_int64(st, 0);
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	return error;
}

int th_meta_uploads_failed_since(char (**shas_out)[65], size_t *n_out, th_meta *m, int64_t since_ms,
                                 th_error *err)
{
	static const char what[] = "list failed uploads";
	th_msql *s = sqlite_of(m, err);
	sqlite3_stmt *st = NULL;
	char(*shas)[65] = NULL;
	size_t n = 0, cap = 0;
	int error, rc;

	if (s == NULL)
		return TH_ERROR;
	pthread_mutex_lock(&s->mu);
	/* operations_queue (state, ...) narrows this to the failed operations. */
	if ((error = prepare(&st, s,
	                     "SELECT DISTINCT upload_sha256 FROM operations WHERE state = 'Failed' "
	                     "AND updated_at >= ?1 AND length(upload_sha256) = 64",
	                     what, err)) < 0)
		goto cleanup;
	sqlite3_bind_int64(st, 1, since_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			void *p = realloc(shas, ncap * sizeof(*shas));
			if (p == NULL) {
				error = th_error_set(err, TH_ENOMEM, "out of memory");
				goto cleanup;
			}
			shas = p;
			cap = ncap;
		}
		th_msql__copy(shas[n++], sizeof(shas[0]), st, 0);
	}
	if (rc != SQLITE_DONE)
		error = th_msql__error(s, what, err);
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	if (error < 0) {
		free(shas);
		return error;
	}
	*shas_out = shas;
	*n_out = n;
	return TH_OK;
}

int th_meta_upload_in_use(int *in_use_out, th_meta *m, const char *sha, th_error *err)
{
	static const char what[] = "find the operations of an upload";
	th_msql *s = sqlite_of(m, err);
	sqlite3_stmt *st = NULL;
	int error;

	if (s == NULL)
		return TH_ERROR;
	pthread_mutex_lock(&s->mu);
	if ((error = prepare(&st, s,
	                     "SELECT EXISTS (SELECT 1 FROM operations WHERE upload_sha256 = ?1 AND "
	                     "state != 'Failed')",
	                     what, err)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		error = th_msql__error(s, what, err);
		goto cleanup;
	}
	*in_use_out = sqlite3_column_int(st, 0) != 0;
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	return error;
}
