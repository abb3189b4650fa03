/* upload.c: POST /api/v1alpha1/{owner}/{db}/upload, DoltHub's file upload, and its body hooks.
 *
 * The params may name a stored file (`fileId`, files.c) instead of sending a `file` part; every
 * import of an upload starts through api_import_start, which records the file resource.
 *
 * The body is multipart/form-data with a `file` part and a `params` part (JSON), in either order,
 * the params part with or without a Content-Type. It is parsed as it streams in (multipart.c):
 * the file goes straight to storage/files.c (a temp file, hashed as it is written, with the size
 * cap checked on every write), the params are buffered (64 KiB at most) and validated as soon as
 * their part ends. The first problem ends the upload: the temp file is removed at once and the rest
 * of the body is drained unread, then answered with the error (MHD 0.9.75 cannot answer before it
 * has read the body; a Content-Length over the cap is refused before any byte is read).
 *
 * Only when the body is complete and the params are valid (including that the branch exists) is
 * the file fsynced under its SHA-256 name and the import operation queued; then the workers of
 * src/jobs.c take over. Before any byte is read, the disk must have room for the body beyond
 * --min-free-mb (else 507).
 *
 * Two more routes share this path: bit.io's raw-body upload (R_RAW, import_raw.c: the body is the
 * file, the params come from the URL and Content-Disposition and are validated here before any
 * byte is read) and the import from a URL (import_url.c: params validated here, the file fetched
 * later by the job). api_upload_params and api_upload_enqueue are their shared entry points.
 *
 * An upload whose operations all failed is not needed again: api_upload_sweep, run every few
 * seconds on the guard's watchdog thread, removes such files (storage/files.c makes sure a file
 * that a new upload is about to name again is kept).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "api.h"
#include "tablehub/ids.h"
#include "tablehub/files.h"
#include "tablehub/import.h"
#include "tablehub/log.h"
#include "tablehub/meta_files.h"
#include "tablehub/meta_limits.h"
#include "tablehub/jobs.h"
#include "tablehub/repo.h"
#include "tablehub/sqlwrite.h"
#include "tablehub/table.h"

enum { PART_NONE, PART_FILE, PART_PARAMS, PART_OTHER };

/* The multipart part headers and framing allowed beyond the cap before a Content-Length alone
 * proves the file too big. */
#define FRAMING_ALLOWANCE (64 * 1024)

struct api_upload {
	th_req *req;
	api_mp *mp;     /* NULL while the boundary is still to be sniffed */
	char sniff[80]; /* the body's first line, when the Content-Type was not multipart */
	size_t sniff_len;
	int raw; /* R_RAW: the body is the file */
	int in;  /* PART_* of the part being read */
	unsigned file_parts, params_parts;
	th_upload *file; /* while the file streams in and until it is finished or abandoned */
	char part_filename[256];
	char *params; /* API_JSON_MAX + 1 bytes from the pool */
	size_t params_len;
	int params_ok;
	/* The validated params; strings borrowed from pjson. */
	cJSON *pjson;
	const char *table, *file_name, *branch;
	const char *file_id; /* the stored file to import instead of a `file` part, or NULL */
	th_import_op op;
	const th_format *fmt;
	const char **pk;
	size_t npk;
	const char *sheet;  /* sheetName (Xlsx), or NULL */
	const char **nulls; /* nullValues */
	size_t nnulls;
};

#define P "params: "

/* nullValues: an array of the markers to read as NULL ("NA", "-", ""). */
static int take_nulls(api_upload *u, th_error *err)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(u->pjson, "nullValues"), *it;

	if (list == NULL || cJSON_IsNull(list))
		return TH_OK;
	if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) > TH_IMPORT_NULLS_MAX)
		return th_error_set(err, TH_EINVALID,
		                    P "'nullValues' must be an array of at most %d strings",
		                    TH_IMPORT_NULLS_MAX);
	if ((u->nulls = api_pool_alloc(&u->req->pool,
	                               (size_t)cJSON_GetArraySize(list) * sizeof(*u->nulls) + 1)) ==
	    NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, list)
	{
		if (!cJSON_IsString(it) || strlen(it->valuestring) > TH_IMPORT_NULL_LEN)
			return th_error_set(err, TH_EINVALID,
			                    P "'nullValues' must be an array of strings of at most "
			                      "%d bytes (item %zu is not)",
			                    TH_IMPORT_NULL_LEN, u->nnulls + 1);
		u->nulls[u->nnulls++] = it->valuestring;
	}
	return TH_OK;
}

/* Check the params JSON and fill the validated fields. Each failure names the key. */
static int validate_params(api_upload *u, th_error *err)
{
	const char *type, *op;
	const cJSON *pk;
	int error;

	if (u->params != NULL && api_json_has_nul(u->params, u->params_len))
		return th_error_set(err, TH_EINVALID,
		                    P "a string holds a NUL character (\\u0000), which no name or "
		                      "value may contain");
	u->pjson = cJSON_ParseWithLength(u->params ? u->params : "", u->params_len);
	if (u->pjson == NULL)
		return th_error_set(err, TH_EINVALID,
		                    "params is not valid JSON: send a JSON object with tableName, "
		                    "fileName, branchName, fileType, importOp, primaryKeys");
	if (!cJSON_IsObject(u->pjson))
		return th_error_set(err, TH_EINVALID, "params must be a JSON object");
	if ((error = api_json_get_str(&u->table, u->pjson, "tableName", 0, P, err)) < 0 ||
	    (error = api_json_get_str(&u->file_name, u->pjson, "fileName", 0, P, err)) < 0 ||
	    (error = api_json_get_str(&u->branch, u->pjson, "branchName", 0, P, err)) < 0 ||
	    (error = api_json_get_str(&type, u->pjson, "fileType", 0, P, err)) < 0 ||
	    (error = api_json_get_str(&op, u->pjson, "importOp", 0, P, err)) < 0 ||
	    (error = api_json_get_str(&u->sheet, u->pjson, "sheetName", 0, P, err)) < 0 ||
	    (error = take_nulls(u, err)) < 0 ||
	    (error = api_json_get_str(&u->file_id, u->pjson, "fileId", 0, P, err)) < 0)
		return error;
	if (u->table)
		api_echo(u->req, "table_name", u->table);
	if (u->branch)
		api_echo(u->req, "branch_name", u->branch);

	/* fileType: DoltHub requires it; without one, the file name's extension decides. */
	u->fmt = type ? th_format_find(type)
	              : th_format_guess(u->file_name ? u->file_name : u->part_filename);
	if (u->fmt == NULL) {
		char names[128];
		th_format_names(names, sizeof(names));
		return th_error_set(err, TH_EINVALID, P "'fileType' must be %s (got '%.64s')",
		                    names, type);
	}
	/* A file of SQL statements names its tables and operations itself. */
	if (op == NULL && !th_format_is_sql(u->fmt))
		return th_error_set(err, TH_EINVALID, P "'importOp' is required");
	if ((u->op = th_import_op_parse(op ? op : "Create")) == 0)
		return th_error_set(err, TH_EINVALID,
		                    P "'importOp' must be Create, Overwrite, Update, Replace or "
		                      "Append (got '%.64s')",
		                    op);
	if (u->table == NULL && th_format_is_sql(u->fmt))
		u->table = "";
	if (u->table == NULL)
		return th_error_set(err, TH_EINVALID, P "'tableName' is required");
	if (!th_table_name_valid(u->table) && !th_format_is_sql(u->fmt))
		return th_error_set(err, TH_EINVALID,
		                    P "'tableName' must be 1-64 of [A-Za-z0-9_-] (got '%.64s')",
		                    u->table);
	if (u->branch == NULL || u->branch[0] == '\0')
		u->branch = "main";
	if (!th_repo_branch_name_valid(u->branch))
		return th_error_set(
		        err, TH_EINVALID,
		        P "'branchName' is not a valid branch name: git's rules, at most "
		          "%d bytes (got '%.100s%s')",
		        TH_BRANCH_NAME_MAX, u->branch, strlen(u->branch) > 100 ? "..." : "");
	if (u->file_name == NULL || u->file_name[0] == '\0')
		u->file_name = u->part_filename[0] ? u->part_filename : "file";

	pk = cJSON_GetObjectItemCaseSensitive(u->pjson, "primaryKeys");
	if (pk != NULL && !cJSON_IsNull(pk)) {
		const cJSON *it;
		size_t i = 0;
		if (!cJSON_IsArray(pk))
			return th_error_set(err, TH_EINVALID,
			                    P "'primaryKeys' must be an array of column names");
		u->npk = (size_t)cJSON_GetArraySize(pk);
		if (u->npk > 0 &&
		    (u->pk = api_pool_alloc(&u->req->pool, u->npk * sizeof(*u->pk))) == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		cJSON_ArrayForEach(it, pk)
		{
			if (!cJSON_IsString(it) || !th_column_name_valid(it->valuestring))
				return th_error_set(err, TH_EINVALID,
				                    P "'primaryKeys' must be an array of column "
				                      "names (item %zu is not)",
				                    i + 1);
			u->pk[i++] = it->valuestring;
		}
	}
	u->params_ok = 1;
	return TH_OK;
}

static int part_begin(void *payload, const char *name, const char *filename, const char *ctype,
                      th_error *err)
{
	api_upload *u = payload;
	th_req *req = u->req;

	(void)ctype; /* the params part may come with or without one: both are fine */
	if (strcmp(name, "file") == 0) {
		if (u->file_parts++ > 0)
			return th_error_set(err, TH_EINVALID, "more than one 'file' part");
		snprintf(u->part_filename, sizeof(u->part_filename), "%s",
		         filename ? filename : "");
		u->in = PART_FILE;
		return th_upload_begin(&u->file, req->srv->cfg.data_dir, req->srv->cfg.max_upload,
		                       err);
	}
	if (strcmp(name, "params") == 0) {
		if (u->params_parts++ > 0)
			return th_error_set(err, TH_EINVALID, "more than one 'params' part");
		if ((u->params = api_pool_alloc(&req->pool, API_JSON_MAX + 1)) == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		u->in = PART_PARAMS;
		return TH_OK;
	}
	u->in = PART_OTHER; /* other fields are ignored */
	return TH_OK;
}

static int part_data(void *payload, const char *data, size_t len, th_error *err)
{
	api_upload *u = payload;

	switch (u->in) {
	case PART_FILE:
		return th_upload_write(u->file, data, len, err);
	case PART_PARAMS:
		if (u->params_len + len > API_JSON_MAX)
			return th_error_set(err, TH_ETOOBIG, "the 'params' part is over %d bytes",
			                    API_JSON_MAX);
		memcpy(u->params + u->params_len, data, len);
		u->params_len += len;
		u->params[u->params_len] = '\0';
		return TH_OK;
	default:
		return TH_OK;
	}
}

static int part_end(void *payload, th_error *err)
{
	api_upload *u = payload;
	int in = u->in;

	u->in = PART_NONE;
	/* Validate the params as soon as they are complete: a bad upload stops before more of the
	 * file is written. */
	return in == PART_PARAMS ? validate_params(u, err) : TH_OK;
}

static const api_mp_callbacks mp_callbacks = { part_begin, part_data, part_end };

/* Refuse an upload that would leave less than --min-free-mb free where uploads are stored. */
static int check_free_space(th_req *req, const char *content_length, th_error *err)
{
	uint64_t keep = (uint64_t)req->srv->cfg.min_free_mb * 1048576u, avail, need = 0;
	struct statvfs vfs;

	if (keep == 0 || statvfs(req->srv->cfg.data_dir, &vfs) != 0)
		return TH_OK; /* no check asked, or nothing to check against */
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (content_length != NULL)
		need = strtoull(content_length, NULL, 10);
	if (avail >= keep && avail - keep >= need)
		return TH_OK;
	return th_error_set(err, TH_ENOSPC,
	                    "not enough disk space for this upload: %llu MB free, and the server "
	                    "keeps %u MB free; try again later or ask the administrator",
	                    (unsigned long long)(avail / 1048576), req->srv->cfg.min_free_mb);
}

int api_upload_begin(th_req *req, th_error *err)
{
	const char *ct = api_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *cl = api_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t cap = req->srv->cfg.max_upload;
	char boundary[71];
	api_upload *u;
	int is_multipart, error;

	if (cl != NULL && cap > 0 &&
	    strtoull(cl, NULL, 10) > cap + API_JSON_MAX + FRAMING_ALLOWANCE)
		return th_error_set(err, TH_ETOOBIG, "file is larger than the %llu MB upload limit",
		                    (unsigned long long)(cap / 1048576));
	if ((error = check_free_space(req, cl, err)) < 0)
		return error;
	if ((u = api_pool_alloc(&req->pool, sizeof(*u))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	u->req = req;
	req->upload = u;
	if (req->route->flags & R_RAW) { /* the params now, then the body straight to the file */
		u->raw = 1;
		u->file_parts = u->params_parts = 1;
		if ((error = api_import_raw_params(&u->params, &u->params_len, u->part_filename,
		                                   sizeof(u->part_filename), req, err)) < 0 ||
		    (error = validate_params(u, err)) < 0)
			return error;
		return th_upload_begin(&u->file, req->srv->cfg.data_dir, cap, err);
	}
	if ((error = api_mp_boundary(boundary, &is_multipart, ct, err)) == TH_OK)
		return api_mp_new(&u->mp, &req->pool, boundary, &mp_callbacks, u, err);
	if (is_multipart) /* multipart without a usable boundary */
		return error;
	/* Not multipart by its header. DoltHub's own example sends a multipart body labelled
	 * application/json, so the body's first line decides: "--BOUNDARY" is multipart after all;
	 * anything else is answered 415. Without a body there is nothing to look at. */
	if (cl == NULL && api_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) == NULL)
		return api_reply_error(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "EUNSUPPORTED",
		                       err->msg) < 0
		               ? TH_ENOMEM
		               : TH_OK;
	th_error_clear(err);
	return TH_OK;
}

/* Collect the first line of a body sent without a multipart Content-Type; once complete, make the
 * parser from it and feed it what was collected. Returns the bytes of data consumed, or < 0. */
static long sniff_boundary(api_upload *u, const char *data, size_t len, th_error *err)
{
	size_t take = 0, n;
	char *crlf;
	int error;

	while (take < len && u->sniff_len < sizeof(u->sniff) - 1) {
		u->sniff[u->sniff_len++] = data[take++];
		u->sniff[u->sniff_len] = '\0';
		if (u->sniff_len >= 2 && u->sniff[u->sniff_len - 2] == '\r' &&
		    u->sniff[u->sniff_len - 1] == '\n')
			break;
	}
	crlf = strstr(u->sniff, "\r\n");
	if (crlf == NULL && u->sniff_len < sizeof(u->sniff) - 1)
		return (long)take; /* need more */
	n = crlf ? (size_t)(crlf - u->sniff) : 0;
	if (crlf == NULL || n < 3 || n > 72 || strncmp(u->sniff, "--", 2) != 0 ||
	    strpbrk(u->sniff + 2, " \t") != NULL) {
		api_set_early(u->req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "EUNSUPPORTED",
		              "Content-Type must be multipart/form-data with parts 'file' and "
		              "'params'");
		return th_error_set(err, TH_EINVALID, "not multipart/form-data");
	}
	*crlf = '\0';
	if ((error = api_mp_new(&u->mp, &u->req->pool, u->sniff + 2, &mp_callbacks, u, err)) < 0)
		return error;
	*crlf = '\r';
	if ((error = api_mp_feed(u->mp, u->sniff, u->sniff_len, err)) < 0)
		return error;
	return (long)take;
}

int api_upload_feed(th_req *req, const char *data, size_t len, th_error *err)
{
	api_upload *u = req->upload;
	int error = TH_OK;

	if (u->raw) {
		error = th_upload_write(u->file, data, len, err);
		goto cleanup;
	}
	if (u->mp == NULL) {
		long used = sniff_boundary(u, data, len, err);
		if (used < 0) {
			error = (int)used;
			goto cleanup;
		}
		data += used;
		len -= (size_t)used;
		if (u->mp == NULL || len == 0)
			return TH_OK;
	}
	error = api_mp_feed(u->mp, data, len, err);
cleanup:
	if (error < 0) { /* nothing of a failed upload is kept */
		th_upload_abort(u->file);
		u->file = NULL;
	}
	return error;
}

/* --- the clean-up of uploads no operation needs -------------------------------------------------
 */

static int upload_in_use(int *in_use, void *ctx, const char *sha, th_error *err)
{
	return th_meta_upload_in_use(in_use, ctx, sha, err);
}

void api_upload_sweep(void *cls)
{
	api_server *srv = cls;
	int64_t start = th_now_ms();
	char(*shas)[65] = NULL;
	size_t n = 0, removed = 0;
	th_error err = { 0 };

	/* A second of overlap: a failure recorded while the last sweep ran is looked at again. */
	if (th_meta_uploads_failed_since(&shas, &n, srv->meta, srv->swept_until_ms - 1000, &err) <
	    0) {
		TH_LOG(TH_LOG_WARN, "upload clean-up: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int gone = 0;
		if (th_upload_remove_unused(&gone, srv->cfg.data_dir, shas[i], upload_in_use,
		                            srv->meta, &err) < 0)
			TH_LOG(TH_LOG_WARN, "upload clean-up: %s", err.msg);
		/* Its file records go with the bytes (files.c). */
		if (gone && th_meta_files_drop_sha(NULL, srv->meta, shas[i], &err) < 0)
			TH_LOG(TH_LOG_WARN, "upload clean-up: %s", err.msg);
		removed += (size_t)gone;
	}
	free(shas);
	srv->swept_until_ms = start;
	if (removed > 0)
		TH_LOG(TH_LOG_INFO, "removed %zu upload(s) named only by failed operations",
		       removed);
}

int api_upload_params_parse(api_import_req *out, th_req *req, const char *json, size_t len,
                            th_error *err)
{
	api_upload *u = api_pool_alloc(&req->pool, sizeof(*u));
	int error;

	if (u == NULL || (u->params = api_pool_strndup(&req->pool, json, len)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	u->req = req;
	u->params_len = len;
	if ((error = validate_params(u, err)) < 0) {
		cJSON_Delete(u->pjson);
		return error;
	}
	memset(out, 0, sizeof(*out));
	out->table = u->table;
	out->file_name = u->file_name;
	out->branch = u->branch;
	out->op = u->op;
	out->fmt = u->fmt;
	out->pk = u->pk;
	out->npk = u->npk;
	out->sheet = u->sheet;
	out->nulls = u->nulls;
	out->nnulls = u->nnulls;
	out->pjson = u->pjson;
	return TH_OK;
}

void api_upload_release(th_req *req)
{
	api_upload *u = req->upload;

	if (u == NULL)
		return;
	th_upload_abort(u->file);
	u->file = NULL;
	cJSON_Delete(u->pjson);
	u->pjson = NULL;
	req->upload = NULL;
}

/* A multipart body, complete: both parts there and the params valid. Returns TH_OK, 1 when a
 * reply (415) is made, or an error. */
static int multipart_done(th_req *req, api_upload *u, th_error *err)
{
	int error;

	if (u->mp == NULL) /* not multipart by its header, and the body did not look like it */
		return api_reply_error(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "EUNSUPPORTED",
		                       "Content-Type must be multipart/form-data with parts 'file' "
		                       "and 'params'") < 0
		               ? TH_ENOMEM
		               : 1;
	if ((error = api_mp_finish(u->mp, err)) < 0)
		return error;
	if (u->file_parts == 0 && (u->params_parts == 0 || u->file_id == NULL))
		return th_error_set(
		        err, TH_EINVALID,
		        "no 'file' part: send the file as multipart field 'file', or name "
		        "a stored file as 'fileId' in the params");
	if (u->file_parts > 0 && u->file_id != NULL)
		return th_error_set(
		        err, TH_EINVALID,
		        "send either a 'file' part or a 'fileId' in the params, not both");
	if (u->params_parts == 0)
		return th_error_set(err, TH_EINVALID,
		                    "no 'params' part: send the import parameters as multipart "
		                    "field 'params' (JSON)");
	return TH_OK;
}

int api_upload_create(th_req *req, th_error *err)
{
	api_upload *u = req->upload;
	int error;

	if (!u->raw && (error = multipart_done(req, u, err)) != TH_OK)
		return error < 0 ? error : TH_OK;
	return api_upload_enqueue(req, NULL, err);
}

int api_upload_params(th_req *req, const char *json, size_t len, const char *file_name,
                      th_error *err)
{
	api_upload *u = req->upload;

	if (u == NULL) {
		if ((u = api_pool_alloc(&req->pool, sizeof(*u))) == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		u->req = req;
		req->upload = u;
	}
	if ((u->params = api_pool_strndup(&req->pool, json, len)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	u->params_len = len;
	snprintf(u->part_filename, sizeof(u->part_filename), "%s", file_name ? file_name : "");
	return validate_params(u, err);
}

int api_upload_enqueue(th_req *req, const char *url, th_error *err)
{
	api_upload *u = req->upload;
	th_import_params ip;
	api_import_req ir;
	th_repo *repo = NULL;
	th_oid head;
	char sha[65] = "", id[TH_UUID_SIZE], file_id[TH_UUID_SIZE] = "", name[256];
	uint64_t size = 0;
	cJSON *body;
	int error;

	if (!u->params_ok) /* validated at the end of the part; here for safety */
		return th_error_set(err, TH_EINVALID, "params were not validated");
	if (url == NULL && u->file_id == NULL && th_upload_size(u->file) == 0)
		return th_error_set(err, TH_EINVALID,
		                    u->raw ? "the request body (the file) is empty"
		                           : "the 'file' part is empty");
	if ((error = api_repo_open(&repo, req, err)) < 0)
		return error;
	error = th_repo_branch_get(&head, repo, u->branch, err);
	th_repo_free(repo);
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_EINVALID,
		                    P "'branchName': no branch '%.200s' in '%s/%s'", u->branch,
		                    req->db.owner, req->db.name);
	if (error < 0)
		return error;

	/* Params sent before the file part could not know the part's file name: take it now. */
	if (u->file_parts > 0 && u->part_filename[0] &&
	    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(u->pjson, "fileName")))
		u->file_name = u->part_filename;
	if (url == NULL) {
		if (u->file_id != NULL) {
			/* A stored file: its bytes, under its name unless the params give one. */
			if ((error = api_files_lookup(sha, &size, name, req, u->file_id, err)) < 0)
				return error;
			snprintf(file_id, sizeof(file_id), "%s", u->file_id);
			if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(u->pjson, "fileName")))
				u->file_name = name;
		} else {
			/* The file is durable under its content's name before the operation that
			 * names it, and pinned until that operation is recorded (the clean-up of
			 * unused uploads skips it). */
			error = th_upload_finish_pinned(u->file, sha, &size, err);
			u->file = NULL;
			if (error < 0)
				return error;
		}
		/* Recorded as a file of the database, queued, linked (files.c). */
		memset(&ir, 0, sizeof(ir));
		ir.table = u->table;
		ir.file_name = u->file_name;
		ir.branch = u->branch;
		ir.op = u->op;
		ir.fmt = u->fmt;
		ir.pk = u->pk;
		ir.npk = u->npk;
		ir.sheet = u->sheet;
		ir.nulls = u->nulls;
		ir.nnulls = u->nnulls;
		ir.base = &head;
		error = api_import_start(id, file_id, req, &ir, sha, size, err);
		if (u->file_id == NULL)
			th_upload_unpin(sha);
		if (error < 0)
			return error;
		goto reply;
	}
	/* A URL import's file is fetched by its job. */
	memset(&ip, 0, sizeof(ip));
	ip.owner = req->db.owner;
	ip.db = req->db.name;
	ip.creator = req->user;
	ip.upload_sha256 = url ? NULL : sha;
	ip.bytes_total = size;
	ip.file_name = u->file_name;
	ip.table_name = u->table;
	ip.branch_name = u->branch;
	ip.op = u->op;
	ip.format = u->fmt;
	ip.pk = u->pk;
	ip.npk = u->npk;
	ip.url = url;
	ip.fetch.max_bytes = req->srv->cfg.url_max_bytes;
	ip.fetch.timeout_ms = req->srv->cfg.url_timeout_s * 1000u;
	ip.fetch.allow_private = req->srv->cfg.allow_private_urls;
	ip.sheet_name = u->sheet;
	ip.nulls = u->nulls;
	ip.nnulls = u->nnulls;
	ip.base = &head;
	error = th_jobs_enqueue_import(id, req->srv->meta, &ip, err);
	if (url == NULL)
		th_upload_unpin(sha);
	if (error < 0)
		return error;
	th_jobs_wake(req->srv->jobs);

reply:
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) ||
	    !api_json_str(body, "branch_name", u->branch) ||
	    !api_json_str(body, "table_name", u->table) ||
	    !cJSON_AddStringToObject(
	            body, "operation_name",
	            api_op_job_name(&req->pool, req->db.owner, req->db.name, id)) ||
	    !cJSON_AddStringToObject(body, "user_operation_name",
	                             api_op_user_name(&req->pool, req->user, id)) ||
	    (file_id[0] && !api_json_str(body, "file_id", file_id))) {
		cJSON_Delete(body);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}
