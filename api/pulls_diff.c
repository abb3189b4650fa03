/* pulls_diff.c: what a pull request changes, and what merging it would conflict on (routes in
 * pulls.c):
 *
 *   GET /api/v1alpha1/{owner}/{db}/pulls/{id}/diff        ?pageToken=&pageSize= (1-1000, 200),
 *                                                         ?type=added,modified,removed, ?table=
 *   GET /api/v1alpha1/{owner}/{db}/pulls/{id}/conflicts
 *
 * The diff is computed by src/ (th_pull_diff_page: the tree diff of the pull's range, cut into a
 * page) and handed here as values, a table summary and a row at a time; this file alone turns them
 * into the JSON clients see:
 *
 *   {"status", "database_owner", "database_name", "pull_id", "merge_base",
 *    "from_commit_id", "to_commit_id",
 *    "tables": [{"table_name", "diff_type" (added|dropped|modified), "schema_change",
 *                "key_changed", "columns_added": [..], "columns_dropped": [..],
 *                "columns_retyped": [{"column_name", "from_type", "to_type"}],
 *                "from_primary_key": [..] | null, "to_primary_key": [..] | null,
 *                "rows_added", "rows_modified", "rows_removed", "cells_modified"}],
 *    "rows": [{"table_name", "diff_type" (added|modified|removed), "key", "count" (keyless
 *              tables), "before": {column: text | null} | null, "after": ..., "changed_columns":
 *              [..] (modified rows: changed columns of the new schema, then dropped ones that
 *              held a value)}],
 *    "next_page_token": "" on the last page}
 *
 * Every table changed is listed whatever the page; rows only on their page. Cells are text, as
 * CSV shows them. The conflicts are th_pull_conflicts' list in the shape a failed merge stores.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulls_api.h"
#include "tablehub/buf.h"
#include "tablehub/pulls.h"

#define DIFF_PAGE_MAX 1000

/* --- the diff as JSON ------------------------------------------------------------------------- */

typedef struct diff_json {
	cJSON *tables, *rows; /* borrowed from the body */
} diff_json;

/* Append the string s to the array arr; 0 when out of memory. */
static int push_str(cJSON *arr, const char *s)
{
	cJSON *it = cJSON_CreateString(s);

	if (it == NULL || !cJSON_AddItemToArray(arr, it)) {
		cJSON_Delete(it);
		return 0;
	}
	return 1;
}

/* An array `key` of the columns of `s` (none when s is NULL) missing from `other` by name: the
 * columns added (s = the new schema) or dropped (s = the old one). 0 when out of memory. */
static int add_missing(cJSON *obj, const char *key, const th_schema *s, const th_schema *other)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, key);
	size_t i;

	for (i = 0; arr && s && i < s->ncols; i++)
		if ((other == NULL || th_schema_find(other, s->cols[i].name) < 0) &&
		    !push_str(arr, s->cols[i].name))
			return 0;
	return arr != NULL;
}

/* The key columns of s, in key order, or null when there is no schema (the table was added or
 * dropped). 0 when out of memory. */
static int add_key_names(cJSON *obj, const char *key, const th_schema *s)
{
	cJSON *arr;
	size_t i;

	if (s == NULL)
		return cJSON_AddNullToObject(obj, key) != NULL;
	if ((arr = cJSON_AddArrayToObject(obj, key)) == NULL)
		return 0;
	for (i = 0; i < s->npk; i++)
		if (!push_str(arr, s->cols[s->pk[i]].name))
			return 0;
	return 1;
}

/* [{"column_name", "from_type", "to_type"}] for the columns of both schemas whose type changed. */
static int add_retyped(cJSON *obj, const th_schema *f, const th_schema *t)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, "columns_retyped");
	size_t i;

	for (i = 0; arr && f && t && i < t->ncols; i++) {
		int j = th_schema_find(f, t->cols[i].name);
		cJSON *it;

		if (j < 0 || f->cols[j].type == t->cols[i].type)
			continue;
		if ((it = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			return 0;
		}
		if (!api_json_str(it, "column_name", t->cols[i].name) ||
		    !api_json_str(it, "from_type", th_type_name(f->cols[j].type)) ||
		    !api_json_str(it, "to_type", th_type_name(t->cols[i].type)))
			return 0;
	}
	return arr != NULL;
}

static int json_table_end(void *payload, const th_table_diff *t, th_error *err)
{
	diff_json *j = payload;
	const th_schema *added = t->change == TH_TABLE_MODIFIED ? t->to_schema : NULL;
	const th_schema *dropped = t->change == TH_TABLE_MODIFIED ? t->from_schema : NULL;
	cJSON *it = cJSON_CreateObject();

	if (it == NULL || !cJSON_AddItemToArray(j->tables, it)) {
		cJSON_Delete(it);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if (!api_json_str(it, "table_name", t->name) ||
	    !api_json_str(it, "diff_type", th_table_change_name(t->change)) ||
	    !cJSON_AddBoolToObject(it, "schema_change", t->schema_changed) ||
	    !cJSON_AddBoolToObject(it, "key_changed", t->key_changed) ||
	    !add_missing(it, "columns_added", added, t->from_schema) ||
	    !add_missing(it, "columns_dropped", dropped, t->to_schema) ||
	    !add_retyped(it, t->from_schema, t->to_schema) ||
	    !add_key_names(it, "from_primary_key", t->from_schema) ||
	    !add_key_names(it, "to_primary_key", t->to_schema) ||
	    !cJSON_AddNumberToObject(it, "rows_added", (double)t->rows_added) ||
	    !cJSON_AddNumberToObject(it, "rows_modified", (double)t->rows_modified) ||
	    !cJSON_AddNumberToObject(it, "rows_removed", (double)t->rows_removed) ||
	    !cJSON_AddNumberToObject(it, "cells_modified", (double)t->cells_modified))
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return 0;
}

/* {column: text | null} of a row's cells, or null when the row is absent on that side. */
static int add_cells(cJSON *obj, const char *key, const th_schema *s, const th_cells *c)
{
	cJSON *cells;
	size_t i;

	if (c == NULL)
		return cJSON_AddNullToObject(obj, key) != NULL;
	if ((cells = cJSON_AddObjectToObject(obj, key)) == NULL)
		return 0;
	for (i = 0; i < s->ncols; i++)
		if (!api_json_str(cells, s->cols[i].name, c->c[i].is_null ? NULL : c->c[i].s))
			return 0;
	return 1;
}

/* The columns a modified row changed: those of the new schema, then the dropped ones. 0 when out
 * of memory. */
static int add_changed(cJSON *obj, const th_table_diff *t, const th_diff_row *r)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, "changed_columns");
	size_t i;

	for (i = 0; arr && i < t->to_schema->ncols; i++)
		if (r->changed[i] && !push_str(arr, t->to_schema->cols[i].name))
			return 0;
	for (i = 0; arr && i < t->from_schema->ncols; i++)
		if (r->dropped[i] && !push_str(arr, t->from_schema->cols[i].name))
			return 0;
	return arr != NULL;
}

static int json_row(void *payload, const th_table_diff *t, const th_diff_row *r, th_error *err)
{
	diff_json *j = payload;
	int keyless = t->to_schema ? t->to_schema->npk == 0 : t->from_schema->npk == 0;
	cJSON *it = cJSON_CreateObject();

	if (it == NULL || !cJSON_AddItemToArray(j->rows, it)) {
		cJSON_Delete(it);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if (!api_json_str(it, "table_name", t->name) ||
	    !api_json_str(it, "diff_type", th_change_kind_name(r->kind)) ||
	    !api_json_str(it, "key", r->key) ||
	    (keyless && !cJSON_AddNumberToObject(it, "count", (double)r->count)) ||
	    !add_cells(it, "before", t->from_schema, r->before) ||
	    !add_cells(it, "after", t->to_schema, r->after) ||
	    (r->kind == TH_CHANGE_MODIFIED && !add_changed(it, t, r)))
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return 0;
}

/* --- the handler ---------------------------------------------------------------------------- */

/* ?type=added,modified (any of added|modified|removed) into a kinds mask. */
static int parse_kinds(unsigned *out, const char *s, th_error *err)
{
	char buf[64];
	char *tok, *save = NULL;

	*out = 0;
	if (s == NULL || *s == '\0')
		return TH_OK;
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		th_change_kind k;
		char *p;
		for (p = tok; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if ((k = th_change_kind_parse(tok)) == 0)
			return th_error_set(
			        err, TH_EINVALID,
			        "'type' must be added, modified or removed (got '%.64s')", s);
		*out |= 1u << k;
	}
	return TH_OK;
}

int api_pulls_diff(th_req *req, th_error *err)
{
	const char *size = api_arg(req, "pageSize");
	th_pull_diff_opts o;
	th_diff_visitor v;
	diff_json j;
	th_pull_info p;
	th_repo *repo = NULL;
	th_buf next = TH_BUF_INIT;
	th_oid base, head;
	int64_t id;
	cJSON *body = NULL;
	char hb[41] = "", hh[41] = "";
	int error;

	memset(&o, 0, sizeof(o));
	if ((error = api_pull_load(&p, &id, req, err)) < 0 ||
	    (error = parse_kinds(&o.kinds, api_arg(req, "type"), err)) < 0)
		goto cleanup;
	o.table = api_arg(req, "table");
	if (o.table && *o.table == '\0')
		o.table = NULL;
	o.page_token = api_arg(req, "pageToken");
	if (size && *size) {
		long n = strtol(size, NULL, 10);
		if (n < 1 || n > DIFF_PAGE_MAX) {
			error = th_error_set(err, TH_EINVALID, "'pageSize' must be 1 to %d",
			                     DIFF_PAGE_MAX);
			goto cleanup;
		}
		o.page_size = (size_t)n;
	}
	if ((error = api_repo_open(&repo, req, err)) < 0 ||
	    (error = th_pull_diff_range(&base, &head, repo, &p, err)) < 0)
		goto cleanup;
	if (!th_oid_is_zero(&base))
		th_oid_fmt(hb, &base);
	if (!th_oid_is_zero(&head))
		th_oid_fmt(hh, &head);
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) || !api_pull_add_id(body, id) ||
	    !api_json_str(body, "merge_base", hb) || !api_json_str(body, "from_commit_id", hb) ||
	    !api_json_str(body, "to_commit_id", hh) ||
	    (j.tables = cJSON_AddArrayToObject(body, "tables")) == NULL ||
	    (j.rows = cJSON_AddArrayToObject(body, "rows")) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	memset(&v, 0, sizeof(v));
	v.row = json_row;
	v.table_end = json_table_end;
	v.payload = &j;
	if ((error = th_pull_diff_page(&next, repo, &base, &head, &o, &v, err)) < 0)
		goto cleanup;
	if (!api_json_str(body, "next_page_token", next.ptr ? next.ptr : "")) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
cleanup:
	cJSON_Delete(body);
	th_buf_dispose(&next);
	th_repo_free(repo);
	th_pull_info_dispose(&p);
	return error;
}

/* --- conflicts -------------------------------------------------------------------------------- */

int api_pulls_add_conflicts(cJSON *body, th_repo *repo, const th_pull_info *p, th_error *err)
{
	th_conflicts c = TH_CONFLICTS_INIT;
	th_buf json = TH_BUF_INIT;
	cJSON *arr;
	int error;

	if ((error = th_pull_conflicts(&c, repo, p->from_branch, p->to_branch, err)) < 0 ||
	    (error = th_conflicts_to_json(&json, &c, err)) < 0)
		goto cleanup;
	if ((arr = cJSON_ParseWithLength(json.ptr, json.size)) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (!cJSON_AddItemToObject(body, "conflicts", arr)) {
		cJSON_Delete(arr);
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (!cJSON_AddNumberToObject(body, "conflicts_total", (double)c.total) ||
	    !cJSON_AddBoolToObject(body, "mergeable", c.total == 0))
		error = th_error_set(err, TH_ENOMEM, "out of memory");
cleanup:
	th_buf_dispose(&json);
	th_conflicts_dispose(&c);
	return error;
}

int api_pulls_conflicts(th_req *req, th_error *err)
{
	th_pull_info p;
	th_repo *repo = NULL;
	int64_t id;
	cJSON *body = NULL;
	int error;

	if ((error = api_pull_load(&p, &id, req, err)) < 0 ||
	    (error = api_repo_open(&repo, req, err)) < 0)
		goto cleanup;
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) || !api_pull_add_id(body, id) ||
	    !api_json_str(body, "state", th_pull_state_name(p.state))) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = api_pulls_add_conflicts(body, repo, &p, err)) < 0)
		goto cleanup;
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
cleanup:
	cJSON_Delete(body);
	th_repo_free(repo);
	th_pull_info_dispose(&p);
	return error;
}
