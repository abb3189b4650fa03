/* files.c: uploaded files as resources, and the one way an import of a stored file starts.
 *
 *   GET    /api/v1alpha1/{owner}/{db}/files                 the files, newest first (paged), and
 *                                                           the disk their contents use
 *   GET    /api/v1alpha1/{owner}/{db}/files/{file_id}       one file, with the operations that
 *                                                           read it
 *   GET    /api/v1alpha1/{owner}/{db}/files/{file_id}/data  its bytes (Range: one range, 206)
 *   DELETE /api/v1alpha1/{owner}/{db}/files/{file_id}       admins; 409 while an operation
 *                                                           reads it
 *
 * Every upload (multipart, or resumable through tus.c) is recorded as a file of its database by
 * api_import_start, the entry point both share: record the file, queue the import, link the two.
 * An upload naming `fileId` reads a file recorded before instead, so one file may be imported
 * into several tables or branches. The bytes are DIR/uploads/<sha256>, shared by every record of
 * the same content; they are removed when the last record naming them goes and no unfinished
 * operation reads them. api_files_sweep, run by `serve` about once a minute, removes the files
 * unused for --keep-uploads (default 7 days) and the resumable uploads left unfinished that long.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "tablehub/files.h"
#include "tablehub/jobs.h"
#include "tablehub/log.h"
#include "tablehub/meta.h"
#include "tablehub/meta_files.h"
#include "tablehub/text.h"

#define API "/api/v1alpha1"

static int files_list(th_req *req, th_error *err);
static int files_get(th_req *req, th_error *err);
static int files_data(th_req *req, th_error *err);
static int files_delete(th_req *req, th_error *err);

const api_route api_files_routes[] = {
	{ "GET", API "/:owner/:db/files", files_list, R_READ },
	{ "GET", API "/:owner/:db/files/:file_id", files_get, R_READ },
	{ "GET", API "/:owner/:db/files/:file_id/data", files_data, R_READ },
	{ "DELETE", API "/:owner/:db/files/:file_id", files_delete, R_ADMIN },
	{ NULL, NULL, NULL, 0 }
};

static int check_id(const char *id, th_error *err)
{
	if (id == NULL || !th_uuid_valid(id, 0))
		return th_error_set(err, TH_EINVALID, "invalid file id '%.64s': want a uuid",
		                    id ? id : "");
	return TH_OK;
}

static int get_file(th_file_info *out, th_req *req, const char *id, th_error *err)
{
	int error;

	if ((error = check_id(id, err)) < 0)
		return error;
	error = th_meta_file_get(out, req->srv->meta, req->db.id, id, err);
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_ENOTFOUND, "file '%s' not found in '%s/%s'", id,
		                    req->db.owner, req->db.name);
	return error;
}

/* --- the shared entry point ---------------------------------------------------------------- */

int api_files_lookup(char sha_out[65], uint64_t *size_out, char *name_out, th_req *req,
                     const char *file_id, th_error *err)
{
	th_file_info f;
	int error;

	if ((error = get_file(&f, req, file_id, err)) < 0)
		return error;
	memcpy(sha_out, f.sha256, 65);
	*size_out = f.size;
	snprintf(name_out, 256, "%s", f.name);
	return TH_OK;
}

int api_import_start(char op_id[TH_UUID_SIZE], char file_id[TH_UUID_SIZE], th_req *req,
                     const api_import_req *ir, const char *sha, uint64_t size, th_error *err)
{
	th_import_params ip;
	char id[TH_UUID_SIZE];
	th_oid head;
	int error;

	/* A new file record need not reach the disk alone: the operation's commit, durable, follows
	 * it and carries it (th_meta_lazy), and links the two. */
	if (file_id[0] == '\0') {
		th_meta_lazy(req->srv->meta, 1);
		error = th_meta_file_add(file_id, req->srv->meta, req->db.id, ir->file_name, size,
		                         sha, ir->fmt ? ir->fmt->name : "", req->user, err);
		th_meta_lazy(req->srv->meta, 0);
		if (error < 0)
			return error;
	}
	memset(&ip, 0, sizeof(ip));
	ip.owner = req->db.owner;
	ip.db = req->db.name;
	ip.creator = req->user;
	ip.upload_sha256 = sha;
	ip.bytes_total = size;
	ip.file_name = ir->file_name;
	ip.table_name = ir->table;
	ip.branch_name = ir->branch;
	ip.op = ir->op;
	ip.format = ir->fmt;
	ip.pk = ir->pk;
	ip.npk = ir->npk;
	ip.sheet_name = ir->sheet;
	ip.nulls = ir->nulls;
	ip.nnulls = ir->nnulls;
	ip.file_id = file_id;
	ip.base = ir->base;
	if (ip.base == NULL) {
		/* A branch gone since the upload began fails the import, saying so. */
		th_repo *repo = NULL;
		th_error e = { 0 };
		if (api_repo_open(&repo, req, &e) == TH_OK &&
		    th_repo_branch_get(&head, repo, ir->branch ? ir->branch : "main", &e) == TH_OK)
			ip.base = &head;
		th_repo_free(repo);
	}
	if ((error = th_jobs_enqueue_import(id, req->srv->meta, &ip, err)) < 0)
		return error;
	th_jobs_wake(req->srv->jobs);
	memcpy(op_id, id, sizeof(id));
	return TH_OK;
}

/* --- the resource -------------------------------------------------------------------------- */

static cJSON *file_json(th_req *req, const th_file_info *f, int with_ops)
{
	cJSON *o = cJSON_CreateObject(), *ops;
	char created[32], used[32];
	th_file_use *uses = NULL;
	size_t n = 0;
	th_error err = { 0 };

	th_time_fmt(created, f->created_at);
	th_time_fmt(used, f->last_used_at);
	if (o == NULL || !api_json_str(o, "file_id", f->id) || !api_json_str(o, "name", f->name) ||
	    !cJSON_AddNumberToObject(o, "size", (double)f->size) ||
	    !api_json_str(o, "sha256", f->sha256) || !api_json_str(o, "type", f->type) ||
	    !api_json_str(o, "uploader", f->uploader) || !api_json_str(o, "created_at", created) ||
	    !api_json_str(o, "last_used_at", used) ||
	    !cJSON_AddBoolToObject(o, "in_use", f->ops_unfinished > 0))
		goto fail;
	if (!with_ops)
		return o;
	if ((ops = cJSON_AddArrayToObject(o, "operations")) == NULL ||
	    th_meta_file_uses(&uses, &n, req->srv->meta, f->id, &err) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		cJSON *it = cJSON_CreateObject();
		const char *name =
		        api_op_job_name(&req->pool, req->db.owner, req->db.name, uses[i].op_id);
		if (it == NULL || !cJSON_AddItemToArray(ops, it) ||
		    !api_json_str(it, "operation_name", name) ||
		    !api_json_str(it, "operation_type", uses[i].kind) ||
		    !api_json_str(it, "job_status",
		                  uses[i].state ? th_op_state_name(uses[i].state) : "Gone"))
			goto fail;
	}
	free(uses);
	return o;
fail:
	free(uses);
	cJSON_Delete(o);
	return NULL;
}

static int files_list(th_req *req, th_error *err)
{
	th_file_info *items = NULL;
	char next[TH_PAGE_TOKEN_SIZE] = "";
	uint64_t bytes = 0, count = 0;
	size_t n = 0;
	cJSON *body = NULL, *arr;
	int error;

	error = th_meta_file_list(&items, &n, next, req->srv->meta, req->db.id,
	                          api_arg(req, "pageToken"), 0, err);
	if (error == TH_EINVALID)
		return th_error_set(err, TH_EINVALID, "bad 'pageToken'");
	if (error < 0 ||
	    (error = th_meta_files_usage(&bytes, &count, req->srv->meta, req->db.id, err)) < 0)
		goto cleanup;
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) ||
	    !cJSON_AddNumberToObject(body, "disk_bytes", (double)bytes) ||
	    !cJSON_AddNumberToObject(body, "disk_files", (double)count) ||
	    (arr = cJSON_AddArrayToObject(body, "files")) == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		cJSON *it = file_json(req, &items[i], 1);
		if (it == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			goto oom;
		}
	}
	if (!api_json_str(body, "next_page_token", next))
		goto oom;
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
	goto cleanup;
oom:
	error = th_error_set(err, TH_ENOMEM, "out of memory");
cleanup:
	cJSON_Delete(body);
	free(items);
	return error;
}

static int files_get(th_req *req, th_error *err)
{
	th_file_info f;
	cJSON *body, *it;
	int error;

	if ((error = get_file(&f, req, api_cap(req, "file_id"), err)) < 0)
		return error;
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) ||
	    (it = file_json(req, &f, 1)) == NULL) {
		cJSON_Delete(body);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	cJSON_AddItemToObject(body, "file", it);
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

/* Parse "bytes=A-B", "bytes=A-" or "bytes=-N" against a file of `size` bytes into [*from, *to]
 * (inclusive). Returns 1 for a satisfiable range, 0 for an unsatisfiable one, -1 for a header
 * that is not one byte range (it is then ignored, as RFC 9110 allows). */
static int parse_range(uint64_t *from, uint64_t *to, const char *h, uint64_t size)
{
	const char *p;
	char *end;
	unsigned long long a = 0, b = 0;
	int has_a, has_b;

	if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
		return -1;
	p = h + 6;
	has_a = *p >= '0' && *p <= '9';
	if (has_a) {
		errno = 0;
		a = strtoull(p, &end, 10);
		if (errno != 0)
			return -1;
		p = end;
	}
	if (*p++ != '-')
		return -1;
	has_b = *p >= '0' && *p <= '9';
	if (has_b) {
		errno = 0;
		b = strtoull(p, &end, 10);
		if (errno != 0)
			return -1;
		p = end;
	}
	if (*p != '\0' || (!has_a && !has_b) || (has_a && has_b && b < a))
		return -1;
	if (!has_a) { /* the last b bytes */
		if (b == 0 || size == 0)
			return 0;
		*from = b >= size ? 0 : size - b;
		*to = size - 1;
		return 1;
	}
	if (a >= size)
		return 0;
	*from = a;
	*to = has_b && b < size ? b : size - 1;
	return 1;
}

/* A file name fit for a quoted Content-Disposition parameter: quotes, backslashes and control
 * characters become '_'. */
static const char *disposition_name(api_pool *pool, const char *name)
{
	char *s = api_pool_strdup(pool, name[0] ? name : "file");

	for (char *p = s; p && *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '_';
	return s;
}

static int files_data(th_req *req, th_error *err)
{
	const char *range = api_header(req, "Range");
	th_file_info f;
	struct stat sb;
	struct MHD_Response *r;
	uint64_t from = 0, to = 0, size;
	const char *disp;
	int fd = -1, error, ranged = 0;
	unsigned status = MHD_HTTP_OK;

	if ((error = get_file(&f, req, api_cap(req, "file_id"), err)) < 0)
		return error;
	if ((error = th_upload_open(&fd, req->srv->cfg.data_dir, f.sha256, err)) < 0) {
		if (error == TH_ENOTFOUND)
			return th_error_set(err, TH_ENOTFOUND, "the bytes of file '%s' are gone",
			                    f.id);
		return error;
	}
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return th_error_set(err, TH_ESTORE, "cannot read file '%s'", f.id);
	}
	size = (uint64_t)sb.st_size;
	if (range != NULL && (ranged = parse_range(&from, &to, range, size)) == 0) {
		char cr[64];
		close(fd);
		snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
		if (api_reply_error(req, MHD_HTTP_RANGE_NOT_SATISFIABLE, "ERANGE",
		                    "the range is outside the file") < 0)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		MHD_add_response_header(req->resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		return TH_OK;
	}
	if (ranged < 0)
		ranged = 0;
	if (!ranged)
		to = size ? size - 1 : 0;
	/* MHD owns fd from here: it closes it with the response. */
	r = MHD_create_response_from_fd_at_offset64(size ? to - from + 1 : 0, fd, from);
	if (r == NULL) {
		close(fd);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	disp = api_pool_printf(&req->pool, "attachment; filename=\"%s\"",
	                       disposition_name(&req->pool, f.name));
	if (disp == NULL ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp) != MHD_YES ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream") !=
	            MHD_YES ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes") != MHD_YES ||
	    MHD_add_response_header(r, "X-Content-SHA256", f.sha256) != MHD_YES)
		goto oom;
	if (ranged) {
		char cr[96];
		snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, from, to, size);
		if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr) != MHD_YES)
			goto oom;
		status = MHD_HTTP_PARTIAL_CONTENT;
	}
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	req->resp = r;
	req->status = status;
	req->resp_len = (size_t)(size ? to - from + 1 : 0);
	return TH_OK;
oom:
	MHD_destroy_response(r);
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

static int upload_named(int *named, void *ctx, const char *sha, th_error *err)
{
	return th_meta_upload_named(named, ctx, sha, err);
}

/* Remove DIR/uploads/<sha> unless an upload pinned it or something names it meanwhile; *gone = 1
 * when it was removed. Returns TH_OK or the error. */
static int remove_bytes(int *gone, api_server *srv, const char *sha, th_error *err)
{
	return th_upload_remove_unused(gone, srv->cfg.data_dir, sha, upload_named, srv->meta, err);
}

static int files_delete(th_req *req, th_error *err)
{
	const char *id = api_cap(req, "file_id");
	char sha[65];
	int sha_free = 0, error;
	cJSON *body;

	if ((error = check_id(id, err)) < 0)
		return error;
	error = th_meta_file_delete(sha, &sha_free, req->srv->meta, req->db.id, id, err);
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_ENOTFOUND, "file '%s' not found in '%s/%s'", id,
		                    req->db.owner, req->db.name);
	if (error < 0)
		return error;
	/* The record is gone; the bytes go too unless another record or operation names them,
	 * or an upload of the same bytes is finishing right now (pinned). */
	if (sha_free && remove_bytes(&sha_free, req->srv, sha, err) < 0) {
		TH_LOG(TH_LOG_WARN, "req=%llu file %s: %s", (unsigned long long)req->id, id,
		       err->msg);
		th_error_clear(err);
	}
	TH_LOG(TH_LOG_INFO, "req=%llu file %s of %s/%s deleted by %s%s",
	       (unsigned long long)req->id, id, req->db.owner, req->db.name, req->user,
	       sha_free ? " (its bytes too)" : "");
	body = api_success();
	if (body == NULL || !api_json_str(body, "file_id", id) ||
	    !cJSON_AddBoolToObject(body, "bytes_removed", sha_free)) {
		cJSON_Delete(body);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

/* --- retention ----------------------------------------------------------------------------- */

void api_files_sweep(api_server *srv)
{
	int64_t keep = srv->cfg.keep_uploads_ms, before;
	char(*shas)[65] = NULL;
	char(*ids)[TH_UUID_SIZE] = NULL;
	size_t n = 0, files = 0, nids = 0, uploads = 0;
	uint64_t freed = 0, bytes = 0, count = 0;
	th_error err = { 0 };

	if (keep <= 0)
		return;
	before = th_now_ms() - keep;
	if (th_meta_files_expire(&shas, &n, &files, srv->meta, before, &err) < 0) {
		TH_LOG(TH_LOG_WARN, "file retention: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat sb;
		char path[4200];
		uint64_t b = 0;
		int gone = 0;
		snprintf(path, sizeof(path), "%s/uploads/%s", srv->cfg.data_dir, shas[i]);
		if (stat(path, &sb) == 0)
			b = (uint64_t)sb.st_size;
		if (remove_bytes(&gone, srv, shas[i], &err) < 0)
			TH_LOG(TH_LOG_WARN, "file retention: %s", err.msg);
		freed += gone ? b : 0;
	}
	free(shas);
	/* Resumable uploads left that long: their part files and records. */
	if (th_meta_tus_stale(&ids, &nids, srv->meta, before, &err) == TH_OK) {
		for (size_t i = 0; i < nids; i++)
			if (th_part_remove(srv->cfg.data_dir, ids[i], &err) == TH_OK &&
			    th_meta_tus_delete(srv->meta, ids[i], &err) == TH_OK)
				uploads++;
		free(ids);
	} else {
		TH_LOG(TH_LOG_WARN, "file retention: %s", err.msg);
	}
	if (files == 0 && uploads == 0)
		return;
	th_meta_files_usage(&bytes, &count, srv->meta, 0, &err);
	TH_LOG(TH_LOG_INFO,
	       "file retention: removed %zu file record(s) unused for %lld s (%" PRIu64
	       " bytes freed) and %zu unfinished upload(s); files now use %" PRIu64
	       " bytes in %" PRIu64 " upload(s)",
	       files, (long long)(keep / 1000), freed, uploads, bytes, count);
}
