/* saved.c: saved queries, files of the repository (see include/tablehub/saved.h).
 *
 * A definition is read and written as JSON (cJSON to read; written by hand, indented, so that
 * `git diff` of a change shows the lines that changed). Reading one at a ref resolves the ref as a
 * query does (query.c) and reads queries/<name>.json from the commit's tree. Saving one is a
 * commit on the branch whose tree differs from the head's in that one file, moved by
 * compare-and-swap like every write. Merging compares the three sides' queries/ trees by object
 * id, so only files that differ are looked at.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tablehub/saved.h"
#include "tablehub/text.h"
#include "query_internal.h"

#define COMMIT_ATTEMPTS 3

int th_saved_name_valid(const char *name)
{
	return name != NULL && th_name_valid(name);
}

static int param_name_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return strcmp(s, "ref") != 0 && strcmp(s, "format") != 0;
}

static int take_param(th_saved_query *q, const cJSON *it, size_t i, th_error *err)
{
	const cJSON *name = cJSON_IsString(it) ? it : cJSON_GetObjectItemCaseSensitive(it, "name");
	const cJSON *type =
	        cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "type") : NULL;
	th_saved_param *p = &q->params[q->nparams];
	size_t j;

	if (!cJSON_IsString(name) || !param_name_valid(name->valuestring))
		return th_error_set(
		        err, TH_EINVALID,
		        "params: item %zu needs a name of [A-Za-z0-9_] (not starting with "
		        "a digit, at most 64 bytes, not 'ref' or 'format')",
		        i + 1);
	snprintf(p->name, sizeof(p->name), "%s", name->valuestring);
	p->type = TH_TYPE_TEXT;
	if (type != NULL && !cJSON_IsNull(type) &&
	    (!cJSON_IsString(type) || (p->type = th_type_parse(type->valuestring)) == 0))
		return th_error_set(
		        err, TH_EINVALID,
		        "params: the type of '%s' must be integer, real, boolean, date, "
		        "datetime or text",
		        p->name);
	for (j = 0; j < q->nparams; j++)
		if (strcmp(q->params[j].name, p->name) == 0)
			return th_error_set(err, TH_EINVALID, "params: '%s' is declared twice",
			                    p->name);
	q->nparams++;
	return TH_OK;
}

int th_saved_from_json(th_saved_query *out, const char *name, const char *json, size_t len,
                       th_error *err)
{
	th_saved_query q;
	cJSON *doc = cJSON_ParseWithLength(json, len), *sql, *desc, *params, *it;
	size_t i = 0;
	int error = TH_OK;

	memset(&q, 0, sizeof(q));
	if (!th_saved_name_valid(name)) {
		error = th_error_set(err, TH_EINVALID,
		                     "bad query name '%.64s': use 1-64 of [A-Za-z0-9_-]", name);
		goto cleanup;
	}
	snprintf(q.name, sizeof(q.name), "%s", name);
	if (!cJSON_IsObject(doc)) {
		error = th_error_set(err, TH_EINVALID,
		                     "a saved query is a JSON object: {\"query\": \"SELECT ...\", "
		                     "\"description\": ..., \"params\": [...]}");
		goto cleanup;
	}
	sql = cJSON_GetObjectItemCaseSensitive(doc, "query");
	desc = cJSON_GetObjectItemCaseSensitive(doc, "description");
	params = cJSON_GetObjectItemCaseSensitive(doc, "params");
	if (!cJSON_IsString(sql) || sql->valuestring[0] == '\0' ||
	    strlen(sql->valuestring) > TH_SAVED_SQL_MAX) {
		error = th_error_set(err, TH_EINVALID,
		                     "'query' must be the SQL statement, at most %d bytes",
		                     TH_SAVED_SQL_MAX);
		goto cleanup;
	}
	if (desc != NULL && !cJSON_IsNull(desc) &&
	    (!cJSON_IsString(desc) || strlen(desc->valuestring) > TH_SAVED_DESCRIPTION_MAX)) {
		error = th_error_set(err, TH_EINVALID,
		                     "'description' must be a string of at most %d bytes",
		                     TH_SAVED_DESCRIPTION_MAX);
		goto cleanup;
	}
	if (params != NULL && !cJSON_IsNull(params) &&
	    (!cJSON_IsArray(params) || cJSON_GetArraySize(params) > TH_SAVED_PARAMS_MAX)) {
		error = th_error_set(err, TH_EINVALID,
		                     "'params' must be an array of at most %d parameters",
		                     TH_SAVED_PARAMS_MAX);
		goto cleanup;
	}
	if (cJSON_IsArray(params))
		cJSON_ArrayForEach(it, params)
		{
			if ((error = take_param(&q, it, i++, err)) < 0)
				goto cleanup;
		}
	if ((q.sql = strdup(sql->valuestring)) == NULL ||
	    (q.description = strdup(cJSON_IsString(desc) ? desc->valuestring : "")) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	*out = q;
	memset(&q, 0, sizeof(q));
cleanup:
	th_saved_dispose(&q);
	cJSON_Delete(doc);
	return error;
}

int th_saved_to_json(th_buf *out, const th_saved_query *q, th_error *err)
{
	size_t i;
	int error;

	if ((error = th_buf_puts(out, "{\n  \"name\": ", err)) < 0 ||
	    (error = th_buf_put_json_cstr(out, q->name, err)) < 0 ||
	    (error = th_buf_puts(out, ",\n  \"description\": ", err)) < 0 ||
	    (error = th_buf_put_json_cstr(out, q->description ? q->description : "", err)) < 0 ||
	    (error = th_buf_puts(out, ",\n  \"query\": ", err)) < 0 ||
	    (error = th_buf_put_json_cstr(out, q->sql, err)) < 0 ||
	    (error = th_buf_puts(out, ",\n  \"params\": [", err)) < 0)
		return error;
	for (i = 0; i < q->nparams; i++)
		if ((error = th_buf_puts(
		             out, i ? ",\n    {\"name\": " : "\n    {\"name\": ", err)) < 0 ||
		    (error = th_buf_put_json_cstr(out, q->params[i].name, err)) < 0 ||
		    (error = th_buf_printf(out, err, ", \"type\": \"%s\"}",
		                           th_type_name(q->params[i].type))) < 0)
			return error;
	return th_buf_puts(out, q->nparams ? "\n  ]\n}\n" : "]\n}\n", err);
}

void th_saved_dispose(th_saved_query *q)
{
	if (q == NULL)
		return;
	free(q->description);
	free(q->sql);
	memset(q, 0, sizeof(*q));
}

/* --- reading at a ref ------------------------------------------------------------------------- */

/* The definition in blob `blob` (the file of query `name`). */
static int read_def(th_saved_query *out, th_repo *repo, const th_oid *blob, const char *name,
                    th_error *err)
{
	th_buf text = TH_BUF_INIT;
	int error;

	if ((error = th_repo_blob_read(&text, repo, blob, err)) == TH_OK)
		error = th_saved_from_json(out, name, text.ptr ? text.ptr : "", text.size, err);
	th_buf_dispose(&text);
	return error;
}

int th_saved_get(th_saved_query *out, const th_query_target *t, const char *name, th_error *err)
{
	th_query_resolved r;
	char path[128];
	th_oid blob;
	int is_tree = 0, error;

	if (!th_saved_name_valid(name))
		return th_error_set(err, TH_EINVALID, "bad query name '%.64s'", name);
	if ((error = th_query__resolve(&r, t, err)) < 0)
		return error;
	snprintf(path, sizeof(path), "queries/%s.json", name);
	error = th_repo_tree_lookup(&blob, &is_tree, r.repo, &r.root, path, err);
	if (error == TH_ENOTFOUND || (error == TH_OK && is_tree))
		error = th_error_set(err, TH_ENOTFOUND, "saved query '%s' not found at '%s'", name,
		                     th_query_ref(t));
	else if (error == TH_OK)
		error = read_def(out, r.repo, &blob, name, err);
	th_repo_free(r.repo);
	return error;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const th_saved_query *)a)->name, ((const th_saved_query *)b)->name);
}

int th_saved_list(th_saved_query **out, size_t *n, const th_query_target *t, th_error *err)
{
	th_query_resolved r;
	th_tree_list list = { NULL, 0 };
	th_saved_query *v = NULL;
	th_oid tree;
	size_t i, count = 0;
	int is_tree = 0, error;
	th_error skipped;

	*out = NULL;
	*n = 0;
	if ((error = th_query__resolve(&r, t, err)) < 0)
		return error;
	error = th_repo_tree_lookup(&tree, &is_tree, r.repo, &r.root, "queries", err);
	if (error == TH_ENOTFOUND || (error == TH_OK && !is_tree)) {
		error = TH_OK; /* no saved queries */
		goto cleanup;
	}
	if (error < 0 || (error = th_repo_tree_read(&list, r.repo, &tree, err)) < 0)
		goto cleanup;
	if ((v = calloc(list.n + 1, sizeof(*v))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < list.n; i++) {
		const th_tree_entry *e = &list.entries[i];
		size_t len = strlen(e->name);
		char name[65];
		if (e->is_tree || len <= 5 || len - 5 >= sizeof(name) ||
		    strcmp(e->name + len - 5, ".json") != 0)
			continue;
		memcpy(name, e->name, len - 5);
		name[len - 5] = '\0';
		th_error_clear(&skipped);
		if ((error = read_def(&v[count], r.repo, &e->oid, name, &skipped)) == TH_OK)
			count++;
		else if (error != TH_EINVALID) { /* a file that is no definition is skipped */
			*err = skipped;
			goto cleanup;
		}
	}
	error = TH_OK;
	qsort(v, count, sizeof(*v), by_name);
	*out = v;
	*n = count;
	v = NULL;
cleanup:
	th_saved_list_free(v, count);
	th_tree_list_dispose(&list);
	th_repo_free(r.repo);
	return error;
}

void th_saved_list_free(th_saved_query *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		th_saved_dispose(&v[i]);
	free(v);
}

int th_saved_check(const th_query_target *t, const th_saved_query *q, th_error *err)
{
	char **used = NULL;
	size_t i, j;
	int error;

	if ((error = th_query_params(&used, t, q->sql, err)) < 0)
		return error;
	for (i = 0; used[i] != NULL && error == TH_OK; i++) {
		for (j = 0; j < q->nparams && strcmp(q->params[j].name, used[i]) != 0; j++)
			;
		if (j == q->nparams)
			error = th_error_set(err, TH_EINVALID,
			                     "the query uses :%s, which 'params' does not declare",
			                     used[i]);
	}
	for (j = 0; j < q->nparams && error == TH_OK; j++) {
		for (i = 0; used[i] != NULL && strcmp(q->params[j].name, used[i]) != 0; i++)
			;
		if (used[i] == NULL)
			error = th_error_set(
			        err, TH_EINVALID,
			        "parameter '%s' is declared but the query does not use "
			        ":%s",
			        q->params[j].name, q->params[j].name);
	}
	th_strv_free(used);
	return error;
}

/* --- writing ---------------------------------------------------------------------------------- */

/* The new root: `root` with the query's file set to q's definition, or removed. */
static int new_root(th_oid *out, th_repo *repo, const th_oid *root, const char *path,
                    const th_saved_query *q, th_error *err)
{
	th_buf text = TH_BUF_INIT;
	th_oid blob;
	int error;

	if (q == NULL)
		return th_repo_tree_update(out, repo, root, path, NULL, 0, err);
	if ((error = th_saved_to_json(&text, q, err)) == TH_OK &&
	    (error = th_repo_blob_write(&blob, repo, text.ptr, text.size, err)) == TH_OK)
		error = th_repo_tree_update(out, repo, root, path, &blob, 0, err);
	th_buf_dispose(&text);
	return error;
}

int th_saved_commit(th_oid *commit, th_repo *repo, const char *branch, const char *name,
                    const th_saved_query *q, const char *author, const char *message, th_error *err)
{
	th_buf msg = TH_BUF_INIT, email = TH_BUF_INIT;
	th_commit_info ci;
	th_oid head, root, blob;
	char path[128];
	int attempt, is_tree = 0, error = TH_OK;

	memset(&ci, 0, sizeof(ci));
	snprintf(path, sizeof(path), "queries/%s.json", q ? q->name : name);
	if ((error = message ? th_buf_puts(&msg, message, err)
	                     : th_buf_printf(&msg, err, "%s query %s\n", q ? "Save" : "Remove",
	                                     q ? q->name : name)) < 0 ||
	    (error = th_buf_printf(&email, err, "%s@tablehub.local", author)) < 0)
		goto cleanup;
	for (attempt = 0; attempt < COMMIT_ATTEMPTS; attempt++) {
		th_commit_info_dispose(&ci);
		memset(&ci, 0, sizeof(ci));
		if ((error = th_repo_branch_get(&head, repo, branch, err)) < 0) {
			if (error == TH_ENOTFOUND)
				th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", branch);
			goto cleanup;
		}
		if ((error = th_repo_commit_read(&ci, repo, &head, err)) < 0)
			goto cleanup;
		if (q == NULL) {
			error = th_repo_tree_lookup(&blob, &is_tree, repo, &ci.tree, path, err);
			if (error == TH_ENOTFOUND || (error == TH_OK && is_tree)) {
				error = th_error_set(err, TH_ENOTFOUND,
				                     "saved query '%s' not found on branch '%s'",
				                     name, branch);
				goto cleanup;
			}
			if (error < 0)
				goto cleanup;
		}
		if ((error = new_root(&root, repo, &ci.tree, path, q, err)) < 0)
			goto cleanup;
		if (th_oid_equal(&root, &ci.tree)) { /* saved already, as it is */
			*commit = head;
			goto cleanup;
		}
		if ((error = th_repo_commit_write(commit, repo, &root, &head, 1, author, email.ptr,
		                                  msg.ptr, err)) < 0)
			goto cleanup;
		error = th_repo_branch_cas(repo, branch, commit, &head, "saved query", err);
		if (error != TH_ECONFLICT)
			goto cleanup;
	}
	th_error_set(err, TH_ECONFLICT, "branch '%s' kept moving; save the query again", branch);
cleanup:
	th_commit_info_dispose(&ci);
	th_buf_dispose(&msg);
	th_buf_dispose(&email);
	return error;
}

/* --- merging ---------------------------------------------------------------------------------- */

/* The queries/ tree of a root (zero when it has none, or when root is NULL). */
static int queries_of(th_oid *out, th_repo *repo, const th_oid *root, th_error *err)
{
	int is_tree = 0, error;

	memset(out, 0, sizeof(*out));
	if (root == NULL || th_oid_is_zero(root))
		return TH_OK;
	error = th_repo_tree_lookup(out, &is_tree, repo, root, "queries", err);
	if (error == TH_ENOTFOUND || (error == TH_OK && !is_tree)) {
		memset(out, 0, sizeof(*out));
		return TH_OK;
	}
	return error;
}

/* The entry `name` of list l, or NULL. */
static const th_oid *entry_of(const th_tree_list *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->entries[i].name, name) == 0)
			return &l->entries[i].oid;
	return NULL;
}

static int same(const th_oid *a, const th_oid *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && th_oid_equal(a, b));
}

static int read_list(th_tree_list *out, th_repo *repo, const th_oid *tree, th_error *err)
{
	out->entries = NULL;
	out->n = 0;
	return th_oid_is_zero(tree) ? TH_OK : th_repo_tree_read(out, repo, tree, err);
}

int th_saved_merge(th_oid *root, th_repo *repo, const th_oid *base, const th_oid *ours,
                   const th_oid *theirs,
                   int (*conflict)(void *payload, const char *path, th_error *err), void *payload,
                   th_error *err)
{
	th_oid qb, qo, qt;
	th_tree_list lb = { NULL, 0 }, lo = { NULL, 0 }, lt = { NULL, 0 };
	const th_tree_list *sides[2] = { &lo, &lt };
	size_t s, i;
	int error;

	if ((error = queries_of(&qb, repo, base, err)) < 0 ||
	    (error = queries_of(&qo, repo, ours, err)) < 0 ||
	    (error = queries_of(&qt, repo, theirs, err)) < 0)
		return error;
	if (th_oid_equal(&qt, &qb) || th_oid_equal(&qt, &qo))
		return TH_OK;       /* theirs changed nothing, or the same as ours */
	if (th_oid_equal(&qo, &qb)) /* only theirs changed: their whole directory */
		return th_repo_tree_update(root, repo, root, "queries",
		                           th_oid_is_zero(&qt) ? NULL : &qt, 1, err);
	if ((error = read_list(&lb, repo, &qb, err)) < 0 ||
	    (error = read_list(&lo, repo, &qo, err)) < 0 ||
	    (error = read_list(&lt, repo, &qt, err)) < 0)
		goto cleanup;
	/* File by file, every name either side has. */
	for (s = 0; s < 2; s++)
		for (i = 0; i < sides[s]->n; i++) {
			const char *name = sides[s]->entries[i].name;
			const th_oid *b = entry_of(&lb, name), *o = entry_of(&lo, name),
			             *t = entry_of(&lt, name);
			char path[300];
			if (s == 1 && o != NULL)
				continue; /* seen with ours */
			if (same(t, b) || same(o, t))
				continue;
			if (same(o, b)) {
				snprintf(path, sizeof(path), "queries/%s", name);
				if ((error = th_repo_tree_update(root, repo, root, path, t, 0,
				                                 err)) < 0)
					goto cleanup;
				continue;
			}
			snprintf(path, sizeof(path), "queries/%.*s", (int)strcspn(name, "."), name);
			if ((error = conflict(payload, path, err)) < 0)
				goto cleanup;
		}
	/* Names only the base had: removed on both sides, nothing to do. */
	error = TH_OK;
cleanup:
	th_tree_list_dispose(&lb);
	th_tree_list_dispose(&lo);
	th_tree_list_dispose(&lt);
	return error;
}
