/* meta_coord.c: the coordination of processes sharing a metadata store (meta_coord.h): the front
 * end of the backends' coord ops, and what a store held by one process does instead (SQLite: the
 * data dir's LOCK keeps every other `serve` out, so a writer lock across processes holds nothing
 * and a notice has nobody to reach; the job pool's own mutexes and condition variable do it all).
 * The PostgreSQL side is storage/meta_pg_coord.c.
 */
#include <stdio.h>

#include "meta_backend.h"
#include "tablehub/hash.h"
#include "tablehub/meta_coord.h"
#include "tablehub/text.h"

/* The backend's coord ops; NULL for a store one process holds alone. */
static const th_meta_coord_ops *coord_of(const th_meta *m)
{
	return m->ops->coord;
}

int th_meta_shared(const th_meta *m)
{
	return coord_of(m) != NULL;
}

int64_t th_meta_dblock_key(const char *owner, const char *db)
{
	char name[140];
	int n = snprintf(name, sizeof(name), "%s/%s", owner, db);

	return (int64_t)th_hash64(name, n > 0 && (size_t)n < sizeof(name) ? (size_t)n : 0);
}

int th_meta_dblock_take(th_meta_dblock **out, th_meta *m, const char *owner, const char *db,
                        int shared, th_error *err)
{
	const th_meta_coord_ops *c = coord_of(m);
	void *held = NULL;
	int error;

	if (owner == NULL || db == NULL || !th_name_valid(owner) || !th_name_valid(db))
		return th_error_set(err, TH_EINVALID, "bad database name for a writer lock");
	if (c == NULL) {
		*out = NULL;
		return TH_OK;
	}
	if ((error = c->dblock_take(&held, m, th_meta_dblock_key(owner, db), shared != 0, err)) < 0)
		return error;
	*out = held;
	return TH_OK;
}

void th_meta_dblock_release(th_meta *m, th_meta_dblock *l)
{
	const th_meta_coord_ops *c = coord_of(m);

	if (l != NULL && c != NULL)
		c->dblock_release(m, l);
}

int th_meta_work_notify(th_meta *m, th_error *err)
{
	const th_meta_coord_ops *c = coord_of(m);

	return c == NULL ? TH_OK : c->work_notify(m, err);
}

int th_meta_work_wait(th_meta *m, int64_t timeout_ms, th_error *err)
{
	const th_meta_coord_ops *c = coord_of(m);

	if (c == NULL)
		return th_error_set(err, TH_EINVALID,
		                    "this metadata store has one process: no notices to wait for");
	return c->work_wait(m, timeout_ms < 0 ? 0 : timeout_ms, err);
}
