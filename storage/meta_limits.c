/* meta_limits.c: the store reads of include/tablehub/meta_limits.h, for the SQL backends (on the
 * statement layer of storage/meta_sql.h).
 *
 * Kept apart from the per-resource files of the backend (meta_queue.c) because they serve the
 * server's admission control and clean-up, not the operations themselves, and they are rare (one
 * count per upload or merge request, one listing every few seconds): each prepares its statement
 * when it runs (MS_NOSLOT) instead of taking a slot of the prepared-statement table.
 */
#include <stdlib.h>
#include <string.h>

#include "meta_sql.h"
#include "tablehub/meta_limits.h"

static int read_int(void *ctx, const th_mrow *r, th_error *err)
{
	(void)err;
	*(int64_t *)ctx = th_msql__int(r, 0);
	return TH_OK;
}

int th_meta_op_count_unfinished(uint64_t *n_out, th_meta *m, const char *creator, th_error *err)
{
	static const char what[] = "count unfinished operations";
	int64_t v = 0;
	int n;

	/* operations_creator (creator, created_at) narrows this to the user's own operations. */
	if ((n = th_msql__exec((th_msql *)m, what,
	                       "SELECT count(*) FROM operations WHERE creator = ?1 AND "
	                       "state IN ('Pending', 'In Progress')",
	                       read_int, &v, err, "s", creator ? creator : "")) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ESTORE, "meta: %s: no row", what);
	*n_out = (uint64_t)v;
	return TH_OK;
}

struct shas {
	char (*items)[65];
	size_t n, cap;
};

static int read_sha(void *ctx, const th_mrow *r, th_error *err)
{
	struct shas *l = ctx;

	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		void *p = realloc(l->items, ncap * sizeof(*l->items));
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		l->items = p;
		l->cap = ncap;
	}
	th_msql__copy(l->items[l->n++], sizeof(l->items[0]), r, 0);
	return TH_OK;
}

int th_meta_uploads_failed_since(char (**shas_out)[65], size_t *n_out, th_meta *m, int64_t since_ms,
                                 th_error *err)
{
	struct shas l = { NULL, 0, 0 };
	int n;

	/* operations_queue (state, ...) narrows this to the failed operations. */
	if ((n = th_msql__exec(
	             (th_msql *)m, "list failed uploads",
	             "SELECT DISTINCT upload_sha256 FROM operations WHERE state = 'Failed' "
	             "AND updated_at >= ?1 AND length(upload_sha256) = 64",
	             read_sha, &l, err, "i", since_ms)) < 0) {
		free(l.items);
		return n;
	}
	*shas_out = l.items;
	*n_out = l.n;
	return TH_OK;
}

int th_meta_upload_in_use(int *in_use_out, th_meta *m, const char *sha, th_error *err)
{
	static const char what[] = "find the operations of an upload";
	int64_t v = 0;
	int n;

	if ((n = th_msql__exec(
	             (th_msql *)m, what,
	             "SELECT EXISTS (SELECT 1 FROM operations WHERE upload_sha256 = ?1 AND "
	             "state != 'Failed')",
	             read_int, &v, err, "s", sha ? sha : "")) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ESTORE, "meta: %s: no row", what);
	*in_use_out = v != 0;
	return TH_OK;
}
