/* commits.c: GET /api/v1alpha1/{owner}/{db}/commits?ref=&pageToken=&pageSize=, the commit log of
 * a ref, newest first (children before parents), with what each commit changed:
 *
 *   {"status":"Success", "database_owner", "database_name", "ref", "commits": [{"commit_id",
 *    "parents": [..], "author", "message", "committed_at", "tables_changed", "rows_added",
 *    "rows_modified", "rows_removed"}], "next_page_token"}
 *
 * Rows changed are counted against the first parent (for a merge: what it brought into the
 * branch). A table added or dropped counts its rows from schema.json's row count, so the commit of
 * a 1,000,000-row import costs one blob read, not a walk over its rows; a modified table is walked
 * with the chunk-level diff, which skips every chunk the two sides share. Pages are small (20 by
 * default, 100 at most) because each commit is diffed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "tablehub/pulls.h"
#include "tablehub/table.h"

#define LOG_PAGE 20
#define LOG_PAGE_MAX 100

typedef struct log_entry {
	th_oid id, tree;
	th_oid parents[2];
	size_t nparents;
	int64_t time;
	char author[128];
	char *message;
} log_entry;

typedef struct log_walk {
	log_entry *items;
	size_t n, cap, skip, seen;
	int nomem;
} log_walk;

typedef struct change_count {
	uint64_t added, modified, removed;
	unsigned tables;
} change_count;

static int collect(const th_commit_info *ci, void *payload)
{
	log_walk *w = payload;
	log_entry *e;

	if (w->seen++ < w->skip)
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 32;
		log_entry *p = realloc(w->items, cap * sizeof(*p));
		if (p == NULL) {
			w->nomem = 1;
			return 1;
		}
		w->items = p;
		w->cap = cap;
	}
	e = &w->items[w->n];
	memset(e, 0, sizeof(*e));
	e->id = ci->id;
	e->tree = ci->tree;
	e->nparents = ci->nparents;
	memcpy(e->parents, ci->parents, sizeof(e->parents));
	e->time = ci->time;
	snprintf(e->author, sizeof(e->author), "%s", ci->author);
	if ((e->message = strdup(ci->message ? ci->message : "")) == NULL) {
		w->nomem = 1;
		return 1;
	}
	w->n++;
	return 0;
}

static int count_table_end(void *payload, const th_table_diff *t, th_error *err)
{
	change_count *c = payload;

	(void)err;
	c->added += t->rows_added;
	c->modified += t->rows_modified;
	c->removed += t->rows_removed;
	return 0;
}

/* Is `name` one of the NULL-terminated `names`? */
static int has_name(char **names, const char *name)
{
	for (size_t i = 0; names != NULL && names[i] != NULL; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

/* Load table `name` of `root` into *t; *present says whether it exists there. */
static int load_opt(th_table *t, int *present, th_repo *repo, const th_oid *root, const char *name,
                    th_error *err)
{
	int error = th_table_load(t, repo, root, name, err);

	*present = error == TH_OK;
	if (error == TH_ENOTFOUND) {
		th_error_clear(err);
		return TH_OK;
	}
	return error;
}

/* What the commit with tree `to` changed against tree `from` (NULL: the empty tree). */
static int count_changes(change_count *out, th_repo *repo, const th_oid *from, const th_oid *to,
                         th_error *err)
{
	char **a = NULL, **b = NULL;
	th_diff_visitor v;
	int error;

	memset(out, 0, sizeof(*out));
	memset(&v, 0, sizeof(v));
	v.table_end = count_table_end;
	v.payload = out;
	v.summary_only = 1;
	if (from != NULL && th_oid_equal(from, to))
		return TH_OK;
	if ((from != NULL && (error = th_table_names(&a, repo, from, err)) < 0) ||
	    (error = th_table_names(&b, repo, to, err)) < 0)
		goto cleanup;
	/* Every table of either side, each once: those of `to`, then those only in `from`. */
	for (int side = 0; side < 2; side++) {
		char **names = side == 0 ? b : a;
		for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
			th_table tf = TH_TABLE_INIT, tt = TH_TABLE_INIT;
			int hf = 0, ht = 0;
			uint64_t before = out->added + out->modified + out->removed;
			if (side == 1 && has_name(b, names[i]))
				continue;
			if ((from != NULL &&
			     (error = load_opt(&tf, &hf, repo, from, names[i], err)) < 0) ||
			    (error = load_opt(&tt, &ht, repo, to, names[i], err)) < 0) {
				th_table_dispose(&tf);
				th_table_dispose(&tt);
				goto cleanup;
			}
			if (hf && ht && !th_oid_equal(&tf.table_tree, &tt.table_tree)) {
				error = th_tree_diff(repo, from, to, names[i], &v, err);
				if (error == TH_OK && !th_schema_equal(&tf.schema, &tt.schema) &&
				    before == out->added + out->modified + out->removed)
					out->tables++; /* a schema change alone */
			} else if (!hf && ht) {
				out->added += tt.row_count;
				out->tables++;
			} else if (hf && !ht) {
				out->removed += tf.row_count;
				out->tables++;
			}
			if (hf && ht && before != out->added + out->modified + out->removed)
				out->tables++;
			th_table_dispose(&tf);
			th_table_dispose(&tt);
			if (error < 0)
				goto cleanup;
		}
	}
	error = TH_OK;
cleanup:
	th_strv_free(a);
	th_strv_free(b);
	return error;
}

static cJSON *commit_item(const log_entry *e, const change_count *c)
{
	cJSON *it = cJSON_CreateObject(), *parents;
	char hex[41], when[32];

	th_oid_fmt(hex, &e->id);
	th_time_fmt(when, e->time * 1000);
	if (it == NULL || !api_json_str(it, "commit_id", hex) ||
	    (parents = cJSON_AddArrayToObject(it, "parents")) == NULL)
		goto nomem;
	for (size_t i = 0; i < e->nparents && i < 2; i++) {
		cJSON *s;
		th_oid_fmt(hex, &e->parents[i]);
		if ((s = cJSON_CreateString(hex)) == NULL || !cJSON_AddItemToArray(parents, s)) {
			cJSON_Delete(s);
			goto nomem;
		}
	}
	if (!api_json_str(it, "author", e->author) || !api_json_str(it, "message", e->message) ||
	    !api_json_str(it, "committed_at", when) ||
	    !cJSON_AddNumberToObject(it, "tables_changed", c->tables) ||
	    !cJSON_AddNumberToObject(it, "rows_added", (double)c->added) ||
	    !cJSON_AddNumberToObject(it, "rows_modified", (double)c->modified) ||
	    !cJSON_AddNumberToObject(it, "rows_removed", (double)c->removed))
		goto nomem;
	return it;
nomem:
	cJSON_Delete(it);
	return NULL;
}

int api_commits_list(th_req *req, th_error *err)
{
	log_walk w = { NULL, 0, 0, 0, 0, 0 };
	th_repo *repo = NULL;
	th_commit_info head;
	size_t offset, size, i;
	const char *ref;
	char next[24] = "";
	cJSON *body = NULL, *arr;
	int error;

	memset(&head, 0, sizeof(head));
	if ((error = api_page_args(&offset, &size, req, LOG_PAGE, LOG_PAGE_MAX, err)) < 0 ||
	    (error = api_repo_open(&repo, req, err)) < 0 ||
	    (error = api_resolve_ref(&head, &ref, repo, req, err)) < 0)
		goto cleanup;
	w.skip = offset;
	/* One commit past the page says whether there is a next page. */
	error = th_repo_log(repo, &head.id, offset + size + 1, collect, &w, err);
	if (w.nomem) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (error < 0)
		goto cleanup;
	if (w.n > size) {
		snprintf(next, sizeof(next), "%zu", offset + size);
		free(w.items[size].message);
		w.n = size;
	}
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) || !api_json_str(body, "ref", ref) ||
	    (arr = cJSON_AddArrayToObject(body, "commits")) == NULL)
		goto nomem;
	for (i = 0; i < w.n; i++) {
		const log_entry *e = &w.items[i];
		th_commit_info parent;
		change_count c;
		cJSON *it;
		memset(&parent, 0, sizeof(parent));
		if (e->nparents > 0 &&
		    (error = th_repo_commit_read(&parent, repo, &e->parents[0], err)) < 0)
			goto cleanup;
		error = count_changes(&c, repo, e->nparents ? &parent.tree : NULL, &e->tree, err);
		th_commit_info_dispose(&parent);
		if (error < 0)
			goto cleanup;
		if ((it = commit_item(e, &c)) == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			goto nomem;
		}
	}
	if (!api_json_str(body, "next_page_token", next))
		goto nomem;
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
	goto cleanup;
nomem:
	error = th_error_set(err, TH_ENOMEM, "out of memory");
cleanup:
	cJSON_Delete(body);
	for (i = 0; i < w.n; i++)
		free(w.items[i].message);
	free(w.items);
	th_commit_info_dispose(&head);
	th_repo_free(repo);
	return error;
}
