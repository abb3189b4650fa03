/* meta_releases.c: releases in the SQLite metadata backend (table releases): a release names a
 * tag of the database's repository (the tag itself is a git object: storage/repo_tags.c) and
 * gives it a title and notes. One release per tag; the row goes with its database. */
#include <stdlib.h>
#include <string.h>

#include "meta_sql.h"

static const th_msql_stmt release_insert = {
	MS_RELEASE_INSERT, "insert release",
	"INSERT INTO releases(db_id, tag_name, title, notes, author, created_at) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	NULL
};
static const th_msql_stmt release_list = {
	MS_RELEASE_LIST, "list releases",
	"SELECT tag_name, title, notes, author, created_at FROM releases WHERE db_id = ?1 "
	"ORDER BY created_at DESC, tag_name",
	NULL
};

static int read_release(void *item, const th_mrow *st, th_error *err)
{
	th_release_info *r = item;
	int error;

	memset(r, 0, sizeof(*r));
	th_msql__copy(r->tag_name, sizeof(r->tag_name), st, 0);
	if ((error = th_msql__dup(&r->title, st, 1, 0, err)) < 0)
		return error;
	if ((error = th_msql__dup(&r->notes, st, 2, 0, err)) < 0) {
		free(r->title);
		return error;
	}
	th_msql__copy(r->author, sizeof(r->author), st, 3);
	r->created_at = th_msql__int(st, 4);
	return TH_OK;
}

static void dispose_release(void *item)
{
	th_release_info *r = item;

	free(r->title);
	free(r->notes);
}

struct release_args {
	int64_t db_id;
	const th_release_new *r;
	const th_event_new *ev;
};

static int release_insert_tx(th_msql *s, void *ctx, th_error *err)
{
	struct release_args *a = ctx;
	int n = th_msql__run_locked(s, &release_insert, NULL, NULL, err, "issssi", a->db_id,
	                            a->r->tag_name, a->r->title, a->r->notes, a->r->author,
	                            th_now_ms());

	if (n == TH_EEXISTS)
		return th_error_set(err, TH_EEXISTS, "tag '%s' already has a release",
		                    a->r->tag_name);
	if (n < 0)
		return n;
	return th_msql__event_locked(s, a->ev, err);
}

int th_msql__release_insert(th_meta *m, int64_t db_id, const th_release_new *r,
                            const th_event_new *ev, th_error *err)
{
	struct release_args a = { db_id, r, ev };

	return th_msql__tx((th_msql *)m, release_insert_tx, &a, err);
}

int th_msql__release_list(th_release_list *out, th_meta *m, int64_t db_id, th_error *err)
{
	void *items = NULL;
	size_t n = 0;
	int error;

	if ((error = th_msql__list(&items, &n, NULL, (th_msql *)m, &release_list,
	                           sizeof(th_release_info), 0, read_release, dispose_release, err,
	                           "i", db_id)) < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}
