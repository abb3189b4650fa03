/* meta_reviewers.c: the reviewers requested on a pull request and a pull's options (whether its
 * merge deletes its source branch, and whether it did) in the SQLite metadata backend (tables
 * pull_reviewers and pull_options, both beside the pulls table and gone with their pull).
 *
 * A request for a reviewer already requested changes nothing (INSERT ... DO NOTHING), so a
 * client may send the whole list again; the event of a request is written in the transaction
 * that adds its names, and only when it added one.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "meta_sql.h"

static const th_msql_stmt pull_exists = { MS_REVIEWER_PULL_EXISTS, "read pull request",
	                                  "SELECT 1 FROM pulls WHERE db_id = ?1 AND pull_id = ?2",
	                                  NULL };
static const th_msql_stmt reviewer_insert = {
	MS_REVIEWER_INSERT, "request reviewer",
	"INSERT INTO pull_reviewers(db_id, pull_id, \"user\", requested_by, created_at) VALUES "
	"(?1, "
	"?2, ?3, ?4, ?5) ON CONFLICT(db_id, pull_id, \"user\") DO NOTHING",
	NULL
};
static const th_msql_stmt reviewer_delete = {
	MS_REVIEWER_DELETE, "withdraw reviewer",
	"DELETE FROM pull_reviewers WHERE db_id = ?1 AND pull_id = ?2 AND \"user\" = ?3", NULL
};
static const th_msql_stmt reviewer_list = {
	MS_REVIEWER_LIST, "list reviewers",
	"SELECT \"user\", requested_by, created_at FROM pull_reviewers WHERE db_id = ?1 AND "
	"pull_id = ?2 ORDER BY created_at, rowid",
	NULL
};
static const th_msql_stmt options_set = {
	MS_PULL_OPTIONS_SET, "set pull request options",
	"INSERT INTO pull_options(db_id, pull_id, delete_branch_on_merge, branch_deleted) VALUES "
	"(?1, ?2, ?3, ?4) ON CONFLICT(db_id, pull_id) DO UPDATE SET delete_branch_on_merge = "
	"excluded.delete_branch_on_merge, branch_deleted = excluded.branch_deleted",
	NULL
};
static const th_msql_stmt options_get = { MS_PULL_OPTIONS_GET, "read pull request options",
	                                  "SELECT delete_branch_on_merge, branch_deleted FROM "
	                                  "pull_options WHERE db_id = ?1 AND pull_id = ?2",
	                                  NULL };

struct reviewer_args {
	int64_t db_id, pull_id;
	const char *const *users;
	size_t n;
	const char *by;
	const th_event_new *ev;
	int added; /* out */
};

static int pull_missing(th_msql *s, int64_t db_id, int64_t pull_id, th_error *err)
{
	int n = th_msql__run_locked(s, &pull_exists, NULL, NULL, err, "ii", db_id, pull_id);

	if (n < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "pull request #%" PRId64 " not found",
		                    pull_id);
	return TH_OK;
}

static int reviewer_add_tx(th_msql *s, void *ctx, th_error *err)
{
	struct reviewer_args *a = ctx;
	int64_t now = th_now_ms();
	int n;

	if ((n = pull_missing(s, a->db_id, a->pull_id, err)) < 0)
		return n;
	for (size_t i = 0; i < a->n; i++) {
		if ((n = th_msql__run_locked(s, &reviewer_insert, NULL, NULL, err, "iissi",
		                             a->db_id, a->pull_id, a->users[i], a->by, now)) < 0)
			return n;
		a->added += n;
	}
	return a->added > 0 ? th_msql__event_locked(s, a->ev, err) : TH_OK;
}

int th_msql__reviewer_add(int *added_out, th_meta *m, int64_t db_id, int64_t pull_id,
                          const char *const *users, size_t n, const char *by,
                          const th_event_new *ev, th_error *err)
{
	struct reviewer_args a = { db_id, pull_id, users, n, by, ev, 0 };
	int error;

	if ((error = th_msql__tx((th_msql *)m, reviewer_add_tx, &a, err)) < 0)
		return error;
	*added_out = a.added;
	return TH_OK;
}

static int reviewer_remove_tx(th_msql *s, void *ctx, th_error *err)
{
	struct reviewer_args *a = ctx;
	int n;

	if ((n = th_msql__run_locked(s, &reviewer_delete, NULL, NULL, err, "iis", a->db_id,
	                             a->pull_id, a->users[0])) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND,
		                    "'%s' is not a requested reviewer of pull request #%" PRId64,
		                    a->users[0], a->pull_id);
	return th_msql__event_locked(s, a->ev, err);
}

int th_msql__reviewer_remove(th_meta *m, int64_t db_id, int64_t pull_id, const char *user,
                             const th_event_new *ev, th_error *err)
{
	struct reviewer_args a = { db_id, pull_id, &user, 1, NULL, ev, 0 };

	return th_msql__tx((th_msql *)m, reviewer_remove_tx, &a, err);
}

static int read_reviewer(void *item, const th_mrow *st, th_error *err)
{
	th_reviewer_info *r = item;

	(void)err;
	memset(r, 0, sizeof(*r));
	th_msql__copy(r->user, sizeof(r->user), st, 0);
	th_msql__copy(r->requested_by, sizeof(r->requested_by), st, 1);
	r->created_at = th_msql__int(st, 2);
	return TH_OK;
}

static void dispose_plain(void *item)
{
	(void)item;
}

int th_msql__reviewer_list(th_reviewer_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                           th_error *err)
{
	void *items = NULL;
	size_t n = 0;
	int error;

	if ((error = th_msql__list(&items, &n, NULL, (th_msql *)m, &reviewer_list,
	                           sizeof(th_reviewer_info), 0, read_reviewer, dispose_plain, err,
	                           "ii", db_id, pull_id)) < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}

struct options_args {
	int64_t db_id, pull_id;
	const th_pull_options *o;
};

static int options_set_tx(th_msql *s, void *ctx, th_error *err)
{
	struct options_args *a = ctx;
	int n;

	if ((n = pull_missing(s, a->db_id, a->pull_id, err)) < 0)
		return n;
	n = th_msql__run_locked(s, &options_set, NULL, NULL, err, "iidd", a->db_id, a->pull_id,
	                        a->o->delete_branch_on_merge, a->o->branch_deleted);
	return n < 0 ? n : TH_OK;
}

int th_msql__pull_options_set(th_meta *m, int64_t db_id, int64_t pull_id, const th_pull_options *o,
                              th_error *err)
{
	struct options_args a = { db_id, pull_id, o };

	return th_msql__tx((th_msql *)m, options_set_tx, &a, err);
}

static int read_options(void *ctx, const th_mrow *st, th_error *err)
{
	th_pull_options *o = ctx;

	(void)err;
	o->delete_branch_on_merge = th_msql__int(st, 0) != 0;
	o->branch_deleted = th_msql__int(st, 1) != 0;
	return TH_OK;
}

int th_msql__pull_options_get(th_pull_options *out, th_meta *m, int64_t db_id, int64_t pull_id,
                              th_error *err)
{
	th_pull_options o;
	int n;

	memset(&o, 0, sizeof(o));
	if ((n = th_msql__run((th_msql *)m, &options_get, read_options, &o, err, "ii", db_id,
	                      pull_id)) < 0)
		return n;
	*out = o;
	return TH_OK;
}
