/* meta_dbs.c: databases in the SQLite metadata backend (table databases): one row per OWNER/DB,
 * unique by (owner, name); the repository itself lives in the data dir (storage/datadir.c). */
#include <stdlib.h>
#include <string.h>

#include "meta_sql.h"

#define DB_COLS "id, owner, name, description, visibility, created_at"

static const th_msql_stmt db_insert = {
	MS_DB_INSERT, "insert database",
	"INSERT INTO databases(owner, name, description, visibility, created_at) "
	"VALUES (?1, ?2, ?3, ?4, ?5)",
	NULL
};
static const th_msql_stmt db_get = { MS_DB_GET, "read database",
	                             "SELECT " DB_COLS
	                             " FROM databases WHERE owner = ?1 AND name = ?2",
	                             NULL };
static const th_msql_stmt db_list = { MS_DB_LIST, "list databases",
	                              "SELECT " DB_COLS " FROM databases WHERE ?1 IS NULL OR "
	                              "owner = ?1 ORDER BY owner, name",
	                              NULL };

static int read_db(void *item, const th_mrow *st, th_error *err)
{
	th_db_info *out = item, d;

	memset(&d, 0, sizeof(d));
	d.id = th_msql__int(st, 0);
	th_msql__copy(d.owner, sizeof(d.owner), st, 1);
	th_msql__copy(d.name, sizeof(d.name), st, 2);
	if (th_msql__dup(&d.description, st, 3, 0, err) < 0)
		return TH_ENOMEM;
	d.is_private = strcmp(th_msql__text(st, 4), "private") == 0;
	d.created_at = th_msql__int(st, 5);
	*out = d;
	return TH_OK;
}

static void dispose_db(void *item)
{
	th_db_info_dispose(item);
}

int th_msql__db_create(th_meta *m, const char *owner, const char *name, const char *description,
                       int is_private, th_error *err)
{
	int n;

	n = th_msql__run((th_msql *)m, &db_insert, NULL, NULL, err, "ssssi", owner, name,
	                 description, is_private ? "private" : "public", th_now_ms());
	if (n == TH_EEXISTS)
		return th_error_set(err, TH_EEXISTS, "database '%s/%s' already exists", owner,
		                    name);
	return n < 0 ? n : TH_OK;
}

int th_msql__db_get(th_db_info *out, th_meta *m, const char *owner, const char *name, th_error *err)
{
	th_db_info d;
	int n;

	if ((n = th_msql__run((th_msql *)m, &db_get, read_db, &d, err, "ss", owner, name)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "database '%s/%s' not found", owner, name);
	*out = d;
	return TH_OK;
}

int th_msql__db_list(th_db_list *out, th_meta *m, const char *owner, th_error *err)
{
	void *items = NULL;
	size_t n = 0;
	int error;

	if ((error = th_msql__list(&items, &n, NULL, (th_msql *)m, &db_list, sizeof(th_db_info), 0,
	                           read_db, dispose_db, err, "n", owner)) < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}
