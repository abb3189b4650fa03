/* bitio.c: the routes bit.io's users sent their data to, on tablehub's import and query paths:
 *
 *   POST /import/{owner}/{db}/{table}?importOp=&primaryKeys=&branchName=&fileType=
 *        bit.io's raw-body upload: the body is the file, its name from
 *        "Content-Disposition: attachment;filename=..." (its extension gives the type; CSV without
 *        one). Short names work too: op, key (or pk), branch, type. Answered as the multipart
 *        upload is: an operation to poll, a pull request at its end. The body streams through
 *        upload.c (R_RAW), which validates these params before reading a byte.
 *   POST /api/v1alpha1/{owner}/{db}/import-url   {"url", "tableName", and the upload's params}
 *        the server fetches the file (http or https, size and time caps, no private addresses
 *        unless `serve --allow-private-urls`) in the import job, then imports it as an upload.
 *   POST /api/v1beta/import/url        {"url", "table_name", "repo_name",
 *        "create_table_if_not_exists"}: bit.io's own path and body for the same, so its examples
 *        run unchanged but for the host. repo_name is "db" (the caller's) or "owner/db"; the
 *        table is created (importOp Create) when create_table_if_not_exists is true, else rows
 *        are appended (Append). Checked exactly as the route above.
 *   POST /api/v1alpha1/{owner}/{db}[/{ref}]      {"query_string": SQL} (bit.io) or {"query": SQL}
 *        SQL too long for a URL, answered as the GET with ?q= (query.c).
 *
 * Only the parsing of these requests lives here; the upload, the import and the query are the
 * ones every other route uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "tablehub/buf.h"
#include "tablehub/fetch.h"
#include "tablehub/text.h"

#define API "/api/v1alpha1"

static int import_url(th_req *req, th_error *err);
static int import_url_v1beta(th_req *req, th_error *err);

const api_route api_bitio_routes[] = {
	{ "POST", "/import/:owner/:db/:table", api_upload_create,
	  R_WRITE | R_STREAM | R_RAW | R_ENQUEUE },
	{ "POST", API "/:owner/:db/import-url", import_url, R_WRITE | R_JSON | R_ENQUEUE },
	{ "POST", "/api/v1beta/import/url", import_url_v1beta, R_AUTH | R_JSON | R_ENQUEUE },
	{ "POST", API "/:owner/:db", api_query_read, R_READ | R_JSON },
	{ "POST", API "/:owner/:db/:ref", api_query_read, R_READ | R_JSON },
	{ "POST", API "/:owner/:db/:ref/:ref2", api_query_read, R_READ | R_JSON },
	{ "POST", API "/:owner/:db/:ref/:ref2/:ref3", api_query_read, R_READ | R_JSON },
	{ NULL, NULL, NULL, 0 }
};

/* --- the raw-body upload --------------------------------------------------------------------- */

/* The file name of a Content-Disposition value (filename="x.csv", filename='x.csv' as bit.io's
 * example sends it, or filename=x.csv), its directories dropped, into out ("" when none). */
static void disposition_filename(char *out, size_t outsz, const char *v)
{
	const char *p = v, *start, *slash;
	size_t n;
	char q;

	out[0] = '\0';
	while (p && (p = strchr(p, ';')) != NULL) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, "filename=", 9) != 0)
			continue;
		p += 9;
		q = (*p == '"' || *p == '\'') ? *p++ : '\0';
		start = p;
		n = q ? strcspn(p, q == '"' ? "\"" : "'") : strcspn(p, "; \t");
		for (slash = start; slash < start + n; slash++)
			if (*slash == '/' || *slash == '\\') {
				n -= (size_t)(slash + 1 - start);
				start = slash + 1;
			}
		snprintf(out, outsz, "%.*s", (int)(n < outsz - 1 ? n : outsz - 1), start);
		return;
	}
}

/* The first of two query arguments that is given. */
static const char *arg2(th_req *req, const char *a, const char *b)
{
	const char *v = api_arg(req, a);

	return v != NULL ? v : api_arg(req, b);
}

int api_import_raw_params(char **json_out, size_t *len_out, char *filename, size_t fnsz,
                          th_req *req, th_error *err)
{
	const char *table = api_cap(req, "table"), *op = arg2(req, "importOp", "op");
	const char *keys = api_arg(req, "primaryKeys"), *branch = arg2(req, "branchName", "branch");
	const char *type = arg2(req, "fileType", "type");
	const char *cd = api_header(req, "Content-Disposition");
	th_buf b = TH_BUF_INIT;
	int error, n = 0;

	if (keys == NULL)
		keys = arg2(req, "key", "pk");
	disposition_filename(filename, fnsz, cd);
	if ((error = th_buf_puts(&b, "{\"tableName\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&b, table, err)) < 0 ||
	    (error = th_buf_puts(&b, ",\"fileName\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&b, filename[0] ? filename : table, err)) < 0 ||
	    (error = th_buf_puts(&b, ",\"importOp\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&b, op && op[0] ? op : "Create", err)) < 0 ||
	    (branch && ((error = th_buf_puts(&b, ",\"branchName\":", err)) < 0 ||
	                (error = th_buf_put_json_cstr(&b, branch, err)) < 0)) ||
	    (type && ((error = th_buf_puts(&b, ",\"fileType\":", err)) < 0 ||
	              (error = th_buf_put_json_cstr(&b, type, err)) < 0)) ||
	    (error = th_buf_puts(&b, ",\"primaryKeys\":[", err)) < 0)
		goto cleanup;
	for (const char *p = keys; p != NULL && *p;) {
		size_t len = strcspn(p, ",");
		if (len > 0 && ((n++ && (error = th_buf_putc(&b, ',', err)) < 0) ||
		                (error = th_buf_put_json_string(&b, p, len, err)) < 0))
			goto cleanup;
		p += len + (p[len] == ',');
	}
	if ((error = th_buf_puts(&b, "]}", err)) < 0)
		goto cleanup;
	if ((*json_out = api_pool_strndup(&req->pool, b.ptr, b.size)) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	*len_out = b.size;
cleanup:
	th_buf_dispose(&b);
	return error;
}

/* --- the import from a URL ---------------------------------------------------------------------
 */

/* The last segment of the URL's path ("sales.csv"), for the file name and its type. */
static void url_file_name(char *out, size_t outsz, const char *url)
{
	const char *p = strstr(url, "://"), *end, *slash;

	out[0] = '\0';
	p = p ? p + 3 : url;
	end = p + strcspn(p, "?#");
	for (slash = NULL; p < end; p++)
		if (*p == '/')
			slash = p;
	if (slash != NULL && end - slash > 1)
		snprintf(out, outsz, "%.*s", (int)(end - slash - 1 < 200 ? end - slash - 1 : 200),
		         slash + 1);
}

static int import_url(th_req *req, th_error *err)
{
	const char *url = NULL, *table = NULL;
	char name[256];
	char *text;
	int error;

	if ((error = api_json_get_str(&url, req->json, "url", 1, "", err)) < 0 ||
	    (error = th_fetch_check_url(url, err)) < 0 ||
	    (error = api_json_get_str(&table, req->json, "tableName", 0, "", err)) < 0)
		return error;
	/* bit.io's spelling of the table's name, when DoltHub's is not there. */
	if (table == NULL) {
		const char *t = NULL;
		if ((error = api_json_get_str(&t, req->json, "table_name", 0, "", err)) < 0)
			return error;
		if (t != NULL && !api_json_str(req->json, "tableName", t))
			return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	api_echo(req, "url", url);
	url_file_name(name, sizeof(name), url);
	if ((text = cJSON_PrintUnformatted(req->json)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	error = api_upload_params(req, text, strlen(text), name[0] ? name : "file", err);
	cJSON_free(text);
	if (error < 0)
		return error;
	return api_upload_enqueue(req, url, err);
}

/* bit.io's body names the database in it: it becomes the :owner and :db of the route above, whose
 * checks (the write role on the database) run before its handler. */
static int import_url_v1beta(th_req *req, th_error *err)
{
	const struct api_route *self = req->route;
	const char *repo = NULL, *slash;
	const cJSON *create =
	        cJSON_GetObjectItemCaseSensitive(req->json, "create_table_if_not_exists");
	int error;

	if ((error = api_json_get_str(&repo, req->json, "repo_name", 1, "", err)) < 0)
		return error;
	if (req->ncap + 2 > API_MAX_CAPTURES)
		return th_error_set(err, TH_ERROR, "too many captures");
	slash = strchr(repo, '/');
	req->cap_name[req->ncap] = "owner";
	req->cap_value[req->ncap++] =
	        slash ? api_pool_strndup(&req->pool, repo, (size_t)(slash - repo)) : req->user;
	req->cap_name[req->ncap] = "db";
	req->cap_value[req->ncap++] = slash ? slash + 1 : repo;
	if (req->cap_value[req->ncap - 2] == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if (!th_name_valid(req->cap_value[req->ncap - 2]) ||
	    !th_name_valid(req->cap_value[req->ncap - 1]))
		return th_error_set(
		        err, TH_EINVALID,
		        "'repo_name' must be DB or OWNER/DB, each 1-64 of [A-Za-z0-9_-] "
		        "(got '%.130s')",
		        repo);
	if (cJSON_GetObjectItemCaseSensitive(req->json, "importOp") == NULL &&
	    !api_json_str(req->json, "importOp", cJSON_IsTrue(create) ? "Create" : "Append"))
		return th_error_set(err, TH_ENOMEM, "out of memory");
	req->route = &api_bitio_routes[1]; /* import-url's checks, then its handler */
	error = api_authorize(req, err);
	req->route = self;
	return error < 0 ? error : import_url(req, err);
}

/* --- SQL over POST -----------------------------------------------------------------------------
 */

int api_query_body_sql(const char **sql, th_req *req, th_error *err)
{
	int error;

	if ((error = api_json_get_str(sql, req->json, "query_string", 0, "", err)) < 0)
		return error;
	if (*sql == NULL && (error = api_json_get_str(sql, req->json, "query", 0, "", err)) < 0)
		return error;
	if (*sql == NULL || (*sql)[0] == '\0')
		return th_error_set(err, TH_EINVALID,
		                    "send the statement as {\"query_string\": \"SELECT ...\"} or "
		                    "{\"query\": \"SELECT ...\"}");
	return TH_OK;
}
