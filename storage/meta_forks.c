/* meta_forks.c: forks in the SQLite metadata backend: a fork is a row of `databases` whose
 * parent_id names the database it was forked from and whose fork_op the operation that made it
 * (both 0 and "" for a database made from scratch); a pull request from a fork's branch has the
 * fork in pulls.from_db_id. */
#include <stdlib.h>
#include <string.h>

#include "meta_sql.h"

#define FORK_COLS "id, owner, name, visibility, parent_id, fork_op, created_at"

static const th_msql_stmt fork_insert = {
	MS_FORK_INSERT, "insert fork",
	"INSERT INTO databases(owner, name, description, visibility, created_at, parent_id, "
	"fork_op) SELECT ?1, name, description, visibility, ?2, id, ?3 FROM databases WHERE id = "
	"?4 RETURNING id",
	NULL
};
static const th_msql_stmt fork_info = { MS_FORK_INFO, "read database",
	                                "SELECT " FORK_COLS " FROM databases WHERE id = ?1", NULL };
static const th_msql_stmt fork_list = { MS_FORK_LIST, "list forks",
	                                "SELECT " FORK_COLS
	                                " FROM databases WHERE parent_id = ?1 ORDER BY owner, name",
	                                NULL };
static const th_msql_stmt fork_by_op = { MS_FORK_BY_OP, "read fork",
	                                 "SELECT " FORK_COLS " FROM databases WHERE fork_op = ?1 "
	                                 "AND fork_op <> ''",
	                                 NULL };
static const th_msql_stmt pull_set_source = {
	MS_PULL_SET_SOURCE, "set pull source",
	"UPDATE pulls SET from_db_id = ?3 WHERE db_id = ?1 AND pull_id = ?2", NULL
};
static const th_msql_stmt pull_source = {
	MS_PULL_SOURCE, "read pull source",
	"SELECT from_db_id FROM pulls WHERE db_id = ?1 AND pull_id = ?2", NULL
};

static int read_fork(void *item, const th_mrow *st, th_error *err)
{
	th_fork_info *f = item;

	(void)err;
	memset(f, 0, sizeof(*f));
	f->id = th_msql__int(st, 0);
	th_msql__copy(f->owner, sizeof(f->owner), st, 1);
	th_msql__copy(f->name, sizeof(f->name), st, 2);
	f->is_private = strcmp(th_msql__text(st, 3), "private") == 0;
	f->parent_id = th_msql__int(st, 4);
	th_msql__copy(f->fork_op, sizeof(f->fork_op), st, 5);
	f->created_at = th_msql__int(st, 6);
	return TH_OK;
}

static void dispose_fork(void *item)
{
	(void)item;
}

/* The first column of a row as an int64 (ctx). */
static int read_id(void *ctx, const th_mrow *st, th_error *err)
{
	(void)err;
	*(int64_t *)ctx = th_msql__int(st, 0);
	return TH_OK;
}

struct fork_args {
	const char *owner, *op_id;
	int64_t parent_id, id;
	const th_event_new *ev;
};

static int fork_insert_tx(th_msql *s, void *ctx, th_error *err)
{
	struct fork_args *a = ctx;
	th_fork_info parent;
	th_event_new ev;
	int n;

	if ((n = th_msql__run_locked(s, &fork_info, read_fork, &parent, err, "i", a->parent_id)) <
	    0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "database not found");
	n = th_msql__run_locked(s, &fork_insert, read_id, &a->id, err, "sisi", a->owner,
	                        th_now_ms(), a->op_id, a->parent_id);
	if (n == TH_EEXISTS)
		return th_error_set(err, TH_EEXISTS, "database '%s/%s' already exists", a->owner,
		                    parent.name);
	if (n < 0)
		return n;
	if (a->ev == NULL)
		return TH_OK;
	/* The event goes to both: the parent's trail (who forked it) and the fork's own. */
	if ((n = th_msql__event_locked(s, a->ev, err)) < 0)
		return n;
	ev = *a->ev;
	ev.db_id = a->id;
	return th_msql__event_locked(s, &ev, err);
}

int th_msql__fork_insert(int64_t *id_out, th_meta *m, const char *owner, int64_t parent_id,
                         const char *op_id, const th_event_new *ev, th_error *err)
{
	struct fork_args a = { owner, op_id, parent_id, 0, ev };
	int error;

	if ((error = th_msql__tx((th_msql *)m, fork_insert_tx, &a, err)) < 0)
		return error;
	*id_out = a.id;
	return TH_OK;
}

static int read_one(th_fork_info *out, th_meta *m, const th_msql_stmt *stmt, const char *types,
                    const void *arg, th_error *err)
{
	th_fork_info f;
	int n;

	if (types[0] == 'i')
		n = th_msql__run((th_msql *)m, stmt, read_fork, &f, err, "i",
		                 *(const int64_t *)arg);
	else
		n = th_msql__run((th_msql *)m, stmt, read_fork, &f, err, "s", (const char *)arg);
	if (n < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "database not found");
	*out = f;
	return TH_OK;
}

int th_msql__fork_info(th_fork_info *out, th_meta *m, int64_t db_id, th_error *err)
{
	return read_one(out, m, &fork_info, "i", &db_id, err);
}

int th_msql__fork_by_op(th_fork_info *out, th_meta *m, const char *op_id, th_error *err)
{
	return read_one(out, m, &fork_by_op, "s", op_id, err);
}

int th_msql__fork_list(th_fork_list *out, th_meta *m, int64_t parent_id, th_error *err)
{
	void *items = NULL;
	size_t n = 0;
	int error;

	if ((error = th_msql__list(&items, &n, NULL, (th_msql *)m, &fork_list, sizeof(th_fork_info),
	                           0, read_fork, dispose_fork, err, "i", parent_id)) < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}

int th_msql__pull_set_source(th_meta *m, int64_t db_id, int64_t pull_id, int64_t from_db_id,
                             th_error *err)
{
	int n = th_msql__run((th_msql *)m, &pull_set_source, NULL, NULL, err, "iii", db_id, pull_id,
	                     from_db_id);

	if (n < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "pull request #%lld not found",
		                    (long long)pull_id);
	return TH_OK;
}

static int read_int64(void *ctx, const th_mrow *st, th_error *err)
{
	(void)err;
	*(int64_t *)ctx = th_msql__int(st, 0);
	return TH_OK;
}

int th_msql__pull_source(int64_t *from_db_id, th_meta *m, int64_t db_id, int64_t pull_id,
                         th_error *err)
{
	int64_t v = 0;
	int n = th_msql__run((th_msql *)m, &pull_source, read_int64, &v, err, "ii", db_id, pull_id);

	if (n < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "pull request #%lld not found",
		                    (long long)pull_id);
	*from_db_id = v;
	return TH_OK;
}
