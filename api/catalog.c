/* catalog.c: what the web pages (and any client) browse, beyond DoltHub's v1alpha1 calls:
 *
 *   GET /api/v1alpha1/databases?q=&owner=&visibility=&pageToken=&pageSize=
 *        the databases the caller can see (theirs and every public one), filtered by a
 *        case-insensitive substring of "owner/name", an exact owner, or visibility; by owner,
 *        then name
 *   GET /api/v1alpha1/{owner}/{db}/tables?ref=      the tables at a ref (default main) with
 *        their row counts, columns and primary key, and the caller's role (viewer_role)
 *   GET /api/v1alpha1/{owner}/{db}/commits?ref=     the commit log (commits.c)
 *
 * The literal routes /tables and /commits are more specific than the SQL read's /{ref}, so, as
 * with /branches, /pulls, /jobs and /upload, a branch of that name is queried by commit id.
 * Row counts come from each table's schema.json, kept on every write: listing the tables of a
 * 1,000,000-row database reads a few small blobs, never rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog.h"
#include "tablehub/meta.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"

#define API "/api/v1alpha1"
#define LIST_PAGE 50
#define LIST_PAGE_MAX 500

static int databases_list(th_req *req, th_error *err);
static int tables_list(th_req *req, th_error *err);

const api_route api_catalog_routes[] = { { "GET", API "/databases", databases_list, 0 },
	                                 { "GET", API "/:owner/:db/tables", tables_list, R_READ },
	                                 { "GET", API "/:owner/:db/commits", api_commits_list,
	                                   R_READ },
	                                 { NULL, NULL, NULL, 0 } };

static int oom(th_error *err)
{
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

int api_page_args(size_t *offset, size_t *size, th_req *req, size_t def, size_t max, th_error *err)
{
	const char *tok = api_arg(req, "pageToken"), *sz = api_arg(req, "pageSize");
	char *end;

	*offset = 0;
	*size = def;
	if (tok != NULL && *tok != '\0') {
		unsigned long long v = strtoull(tok, &end, 10);
		if (*end != '\0' || tok[0] == '-' || v > 100000000ull)
			return th_error_set(err, TH_EINVALID, "bad 'pageToken'");
		*offset = (size_t)v;
	}
	if (sz != NULL && *sz != '\0') {
		long v = strtol(sz, &end, 10);
		if (*end != '\0' || v < 1 || (size_t)v > max)
			return th_error_set(err, TH_EINVALID, "'pageSize' must be 1 to %zu", max);
		*size = (size_t)v;
	}
	return TH_OK;
}

/* Does `hay` contain `needle`, ignoring ASCII case? */
static int contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return 1;
	return n == 0;
}

static int databases_list(th_req *req, th_error *err)
{
	const char *q = api_arg(req, "q"), *owner = api_arg(req, "owner");
	const char *vis = api_arg(req, "visibility");
	th_db_list l = { NULL, 0 };
	size_t offset, size, seen = 0, i;
	int want_private = -1, error;
	cJSON *body = NULL, *arr;
	char next[24] = "";

	if ((error = api_page_args(&offset, &size, req, LIST_PAGE, LIST_PAGE_MAX, err)) < 0)
		return error;
	if (vis != NULL && *vis != '\0') {
		if (strcasecmp(vis, "public") == 0)
			want_private = 0;
		else if (strcasecmp(vis, "private") == 0)
			want_private = 1;
		else
			return th_error_set(
			        err, TH_EINVALID,
			        "'visibility' must be 'public' or 'private' (got '%.64s')", vis);
	}
	if (q != NULL && strlen(q) > 200)
		return th_error_set(err, TH_EINVALID, "'q' is longer than 200 characters");
	if (owner != NULL && *owner == '\0')
		owner = NULL;
	if ((error = th_meta_db_list(&l, req->srv->meta, owner, err)) < 0)
		return error;
	body = api_success();
	if (body == NULL || (arr = cJSON_AddArrayToObject(body, "databases")) == NULL)
		goto nomem;
	for (i = 0; i < l.n; i++) {
		const th_db_info *d = &l.items[i];
		char full[140], created[32];
		cJSON *it;
		if (d->is_private) { /* others' private databases do not exist for the caller */
			th_role role = TH_ROLE_NONE;
			if ((error = api_role_of(&role, req, req->user, d->id, d->owner, 1, err)) <
			    0) {
				cJSON_Delete(body);
				th_db_list_dispose(&l);
				return error;
			}
			if (role == TH_ROLE_NONE)
				continue;
		}
		if (want_private >= 0 && d->is_private != want_private)
			continue;
		snprintf(full, sizeof(full), "%s/%s", d->owner, d->name);
		if (q != NULL && !contains_nocase(full, q))
			continue;
		if (seen++ < offset)
			continue;
		if (cJSON_GetArraySize(arr) == (int)size) {
			snprintf(next, sizeof(next), "%zu", offset + size);
			break;
		}
		th_time_fmt(created, d->created_at);
		if ((it = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			goto nomem;
		}
		if (!api_json_str(it, "database_owner", d->owner) ||
		    !api_json_str(it, "database_name", d->name) ||
		    !api_json_str(it, "description", d->description ? d->description : "") ||
		    !api_json_str(it, "visibility", d->is_private ? "private" : "public") ||
		    !api_json_str(it, "created_at", created))
			goto nomem;
	}
	if (!api_json_str(body, "next_page_token", next))
		goto nomem;
	th_db_list_dispose(&l);
	return api_reply_json(req, MHD_HTTP_OK, body, err);
nomem:
	cJSON_Delete(body);
	th_db_list_dispose(&l);
	return oom(err);
}

/* Resolve ?ref= (default "main") of req's database to a commit and its tree. */
int api_resolve_ref(th_commit_info *ci, const char **ref_out, th_repo *repo, th_req *req,
                    th_error *err)
{
	const char *ref = api_arg(req, "ref");
	th_oid id;
	int error;

	if (ref == NULL || *ref == '\0')
		ref = "main";
	*ref_out = ref;
	api_echo(req, "ref", ref);
	if (strlen(ref) > 250)
		return th_error_set(err, TH_EINVALID, "'ref' is longer than 250 characters");
	error = th_repo_resolve(&id, repo, ref, err);
	if (error == TH_ENOTFOUND || error == TH_EINVALID)
		return th_error_set(err, TH_ENOTFOUND, "ref '%.200s' not found in '%s/%s'", ref,
		                    req->db.owner, req->db.name);
	if (error < 0)
		return error;
	return th_repo_commit_read(ci, repo, &id, err);
}

static cJSON *table_item(const char *name, const th_table *t)
{
	cJSON *it = cJSON_CreateObject(), *pk, *cols;
	size_t i;

	if (it == NULL || !api_json_str(it, "table_name", name) ||
	    !cJSON_AddNumberToObject(it, "row_count", (double)t->row_count) ||
	    (pk = cJSON_AddArrayToObject(it, "primary_key")) == NULL ||
	    (cols = cJSON_AddArrayToObject(it, "columns")) == NULL)
		goto nomem;
	for (i = 0; i < t->schema.npk; i++) {
		cJSON *s = cJSON_CreateString(t->schema.cols[t->schema.pk[i]].name);
		if (s == NULL || !cJSON_AddItemToArray(pk, s)) {
			cJSON_Delete(s);
			goto nomem;
		}
	}
	for (i = 0; i < t->schema.ncols; i++) {
		const th_column *c = &t->schema.cols[i];
		cJSON *col = cJSON_CreateObject();
		if (col == NULL || !cJSON_AddItemToArray(cols, col)) {
			cJSON_Delete(col);
			goto nomem;
		}
		if (!api_json_str(col, "name", c->name) ||
		    !api_json_str(col, "type", th_type_name(c->type)) ||
		    !cJSON_AddBoolToObject(col, "nullable", c->nullable))
			goto nomem;
	}
	return it;
nomem:
	cJSON_Delete(it);
	return NULL;
}

static int tables_list(th_req *req, th_error *err)
{
	th_repo *repo = NULL;
	th_commit_info ci;
	char **names = NULL, hex[41];
	const char *ref;
	cJSON *body = NULL, *arr;
	int error;

	memset(&ci, 0, sizeof(ci));
	if ((error = api_repo_open(&repo, req, err)) < 0 ||
	    (error = api_resolve_ref(&ci, &ref, repo, req, err)) < 0 ||
	    (error = th_table_names(&names, repo, &ci.tree, err)) < 0)
		goto cleanup;
	th_oid_fmt(hex, &ci.id);
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) || !api_json_str(body, "ref", ref) ||
	    !api_json_str(body, "commit_id", hex) ||
	    !api_json_str(body, "viewer_role", th_role_name(req->role)) ||
	    (arr = cJSON_AddArrayToObject(body, "tables")) == NULL) {
		error = oom(err);
		goto cleanup;
	}
	for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
		th_table t = TH_TABLE_INIT;
		cJSON *it;
		if ((error = th_table_load(&t, repo, &ci.tree, names[i], err)) < 0)
			goto cleanup;
		it = table_item(names[i], &t);
		th_table_dispose(&t);
		if (it == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			error = oom(err);
			goto cleanup;
		}
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
cleanup:
	cJSON_Delete(body);
	th_strv_free(names);
	th_commit_info_dispose(&ci);
	th_repo_free(repo);
	return error;
}
