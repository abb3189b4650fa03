/* tus.c: resumable uploads with the tus 1.0 protocol (core, creation, termination, checksum), at
 * /api/v1alpha1/{owner}/{db}/uploads/tus:
 *
 *   OPTIONS  .../uploads/tus        Tus-Version, Tus-Extension, Tus-Max-Size,
 * Tus-Checksum-Algorithm POST     .../uploads/tus        create: Upload-Length, Upload-Metadata
 * (the upload's params) HEAD     .../uploads/tus/{id}   Upload-Offset and Upload-Length
 * (Cache-Control: no-store) PATCH    .../uploads/tus/{id}   bytes at Upload-Offset
 * (application/offset+octet-stream), optionally with Upload-Checksum: sha1|sha256 <base64> DELETE
 * .../uploads/tus/{id}   terminate GET      .../uploads/tus/{id}   tablehub's own: the state as
 * JSON (offset, operation)
 *
 * Params: Upload-Metadata carries the multipart upload's params, either whole (key `params`, the
 * JSON) or key by key (tableName, fileName or tus clients' `filename`, branchName, fileType,
 * importOp, primaryKeys as a JSON array or a comma-separated list), and optionally `sha256` (the
 * whole file's, hex). They are validated by the multipart upload's own code at creation (400
 * there, before any byte), and the branch must exist.
 *
 * State: the upload's record in the metadata store (length, the offset stored, metadata, params;
 * meta_files.h) and its bytes in DIR/tus/<id>.part (files.h). A PATCH streams its body into the
 * part file through this route's body hooks (router.c), never holding more than one piece of it;
 * at the end of the body the part file is synced and only then is the new offset recorded, so
 * the record never claims a byte that is not on disk, and a restarted server goes on from the
 * recorded offset (bytes past it are cut when the file is opened again). A connection cut in the
 * middle of a PATCH keeps what arrived (synced and recorded when the request ends), unless the
 * PATCH carried a checksum, which cannot be checked on part of a body: then it is discarded. A
 * checksum that does not match is 460 and the request's bytes are cut off again.
 *
 * The SHA-256 that names the finished file is computed as the bytes arrive, in an entry of this
 * process's table of uploads in progress. A new request on an upload takes it over from one still
 * running (whose connection may be dead without the server knowing yet: a client resumes after a
 * cut at once), and the old one can no longer write or record anything. After a restart, or a
 * refused request, the file is hashed again from disk
 * when it completes. When the last byte is stored (and the whole file's sha256, if given,
 * matches) the part file becomes DIR/uploads/<sha256> and the import starts exactly as for a
 * multipart upload (api_import_start): the last PATCH's reply carries Tablehub-Operation-Name
 * and Tablehub-File-Id, and so do HEAD and GET afterwards.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "api.h"
#include "tablehub/files.h"
#include "tablehub/hash.h"
#include "tablehub/log.h"
#include "tablehub/meta_files.h"
#include "tablehub/repo.h"

#define API "/api/v1alpha1"
#define TUS_VERSION "1.0.0"
#define METADATA_MAX 8192

static int tus_options(th_req *req, th_error *err);
static int tus_create(th_req *req, th_error *err);
static int tus_head(th_req *req, th_error *err);
static int tus_get(th_req *req, th_error *err);
static int tus_patch(th_req *req, th_error *err);
static int tus_delete(th_req *req, th_error *err);
static int patch_begin(th_req *req, th_error *err);
static int patch_feed(th_req *req, const char *data, size_t len, th_error *err);
static void patch_release(th_req *req, int completed);

static const api_body_hooks patch_hooks = { patch_begin, patch_feed, patch_release };

const api_route api_tus_routes[] = {
	{ "OPTIONS", API "/:owner/:db/uploads/tus", tus_options, 0 },
	{ "POST", API "/:owner/:db/uploads/tus", tus_create, R_WRITE | R_ENQUEUE },
	{ "HEAD", API "/:owner/:db/uploads/tus/:upload_id", tus_head, R_WRITE },
	{ "GET", API "/:owner/:db/uploads/tus/:upload_id", tus_get, R_WRITE },
	{ "PATCH", API "/:owner/:db/uploads/tus/:upload_id", tus_patch, R_WRITE },
	{ "DELETE", API "/:owner/:db/uploads/tus/:upload_id", tus_delete, R_WRITE },
	{ NULL, NULL, NULL, 0 }
};

const api_body_route api_body_routes[] = { { tus_patch, &patch_hooks }, { NULL, NULL } };

/* --- uploads in progress in this process ----------------------------------------------------- */

/* One upload some request of this process has touched. The request that holds it (`gen`) is the
 * one whose bytes go into the part file and the hash; a new request for the same upload takes it
 * over (gen + 1), because the connection of the holder may be dead without the server knowing
 * yet (a client that resumes after a cut asks again at once). Every write, hash update and offset
 * record happens under `mu` and checks the writer's generation, so a superseded request can
 * neither write past the new holder's offset nor record anything. The SHA-256 of the first
 * `hashed` bytes is valid only while `hash` is not NULL. `refs` counts the requests that point
 * here; the last one frees an entry whose upload ended. */
typedef struct entry {
	struct entry *next;
	char id[TH_UUID_SIZE];
	pthread_mutex_t mu;
	unsigned gen;
	unsigned refs;
	int ended;
	th_sha256 *hash;
	uint64_t hashed;
} entry;

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static entry *table;

/* Take upload `id` for one request, over any request that held it: *out is its entry and *gen
 * the generation this request writes as. Returns TH_OK or TH_ENOMEM. */
static int entry_take(entry **out, unsigned *gen, const char *id, th_error *err)
{
	entry *e;

	pthread_mutex_lock(&table_mu);
	for (e = table; e != NULL && strcmp(e->id, id) != 0; e = e->next)
		;
	if (e == NULL && (e = calloc(1, sizeof(*e))) != NULL) {
		memcpy(e->id, id, TH_UUID_SIZE);
		pthread_mutex_init(&e->mu, NULL);
		e->next = table;
		table = e;
	}
	if (e != NULL)
		e->refs++;
	pthread_mutex_unlock(&table_mu);
	if (e == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	pthread_mutex_lock(&e->mu);
	*gen = ++e->gen;
	pthread_mutex_unlock(&e->mu);
	*out = e;
	return TH_OK;
}

/* Is `gen` still the holder? e->mu held. */
static int holds(const entry *e, unsigned gen)
{
	return e->gen == gen;
}

/* Give the entry back; `ended` (the upload is done or gone) frees it with its last reference. */
static void entry_give(entry *e, int ended)
{
	entry **pp;
	int last;

	pthread_mutex_lock(&table_mu);
	if (ended)
		e->ended = 1;
	last = --e->refs == 0;
	if (last && e->ended) {
		for (pp = &table; *pp != NULL && *pp != e; pp = &(*pp)->next)
			;
		if (*pp == e)
			*pp = e->next;
	}
	pthread_mutex_unlock(&table_mu);
	if (last && e->ended) {
		pthread_mutex_destroy(&e->mu);
		th_sha256_free(e->hash);
		free(e);
	}
}

/* --- replies -----------------------------------------------------------------------------------
 */

/* An empty reply with `status` and Tus-Resumable, left in req->resp. Returns TH_OK or TH_ENOMEM. */
static int reply_empty(th_req *req, unsigned status, th_error *err)
{
	struct MHD_Response *r =
	        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);

	/* A type for the empty body, as for every reply of the server (api/openapi.json). */
	if (r == NULL || MHD_add_response_header(r, "Tus-Resumable", TUS_VERSION) != MHD_YES ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8") !=
	            MHD_YES) {
		if (r != NULL)
			MHD_destroy_response(r);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	req->resp = r;
	req->status = status;
	req->resp_len = 0;
	return TH_OK;
}

static void add_header(th_req *req, const char *name, const char *value)
{
	if (req->resp != NULL && value != NULL)
		MHD_add_response_header(req->resp, name, value);
}

static void add_u64(th_req *req, const char *name, uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, v);
	add_header(req, name, s);
}

/* A JSON error reply with Tus-Resumable (tus's own statuses: 412, 423, 460). Returns TH_OK or
 * TH_ENOMEM. */
static int reply_error(th_req *req, unsigned status, const char *code, const char *msg,
                       th_error *err)
{
	if (api_reply_error(req, status, code, msg) < 0)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	add_header(req, "Tus-Resumable", TUS_VERSION);
	return TH_OK;
}

/* Answer e (an error of ours) as JSON with Tus-Resumable; a 409 for an offset that is not the
 * upload's also says which offset is. */
static int reply_th_error(th_req *req, const th_error *e, th_error *err)
{
	unsigned status = e->code == TH_EBUSY ? 423 : api_status_for(e->code);

	return reply_error(req, status, th_code_name(e->code), e->msg, err);
}

/* The names the upload's operation and file go by, as headers. */
static void add_result_headers(th_req *req, const th_tus_info *t)
{
	if (t->state != TH_TUS_DONE)
		return;
	add_header(req, "Tablehub-Operation-Name",
	           api_op_job_name(&req->pool, req->db.owner, req->db.name, t->op_id));
	add_header(req, "Tablehub-File-Id", t->file_id);
}

/* --- common checks -----------------------------------------------------------------------------
 */

/* The Tus-Resumable header names our version. Otherwise leaves a 412 reply and returns 0. */
static int version_ok(th_req *req, th_error *err)
{
	const char *v = api_header(req, "Tus-Resumable");

	if (v != NULL && strcmp(v, TUS_VERSION) == 0)
		return 1;
	if (reply_error(req, MHD_HTTP_PRECONDITION_FAILED, "EVERSION",
	                "send the header 'Tus-Resumable: " TUS_VERSION "' (the tus version this "
	                "server speaks)",
	                err) == TH_OK)
		add_header(req, "Tus-Version", TUS_VERSION);
	return 0;
}

/* A non-negative decimal header value; -1 when absent, -2 when malformed. */
static int64_t header_u63(th_req *req, const char *name)
{
	const char *v = api_header(req, name);
	char *end;
	unsigned long long n;

	if (v == NULL)
		return -1;
	if (*v < '0' || *v > '9' || strlen(v) > 19)
		return -2;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n > INT64_MAX)
		return -2;
	return (int64_t)n;
}

/* The upload of the route's :upload_id in req->db, created by the caller. */
static int load(th_tus_info *out, th_req *req, th_error *err)
{
	const char *id = api_cap(req, "upload_id");
	int error;

	if (id == NULL || !th_uuid_valid(id, 1))
		return th_error_set(err, TH_ENOTFOUND, "upload '%.64s' not found", id ? id : "");
	memset(out, 0, sizeof(*out));
	error = th_meta_tus_get(out, req->srv->meta, req->db.id, id, err);
	if (error == TH_OK && strcmp(out->creator, req->user) != 0) {
		/* Another user's upload answers as a missing one. */
		th_tus_info_dispose(out);
		error = TH_ENOTFOUND;
	}
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_ENOTFOUND, "upload '%s' not found in '%s/%s'", id,
		                    req->db.owner, req->db.name);
	return error;
}

/* --- OPTIONS and creation ----------------------------------------------------------------------
 */

static int tus_options(th_req *req, th_error *err)
{
	int error;

	if ((error = reply_empty(req, MHD_HTTP_NO_CONTENT, err)) < 0)
		return error;
	add_header(req, "Tus-Version", TUS_VERSION);
	add_header(req, "Tus-Extension", "creation,termination,checksum");
	add_header(req, "Tus-Checksum-Algorithm", "sha1,sha256");
	if (req->srv->cfg.max_file > 0)
		add_u64(req, "Tus-Max-Size", req->srv->cfg.max_file);
	return TH_OK;
}

/* Decode one base64 metadata value into a NUL-terminated pool string; NULL when it is not base64
 * or holds a NUL. */
static char *meta_value(th_req *req, const char *b64, size_t len)
{
	unsigned char *out = api_pool_alloc(&req->pool, len + 1);
	long n;

	if (out == NULL || (n = api_base64_decode(out, len, b64, len)) < 0 ||
	    memchr(out, '\0', (size_t)n) != NULL)
		return NULL;
	out[n] = '\0';
	return (char *)out;
}

/* The params JSON (from the pool) of an Upload-Metadata header, and its `sha256` (hex, or NULL).
 * Returns TH_OK, TH_EINVALID (the message says which pair) or TH_ENOMEM. */
static int metadata_params(char **params_out, const char **sha_out, th_req *req, const char *h,
                           th_error *err)
{
	static const char *const keys[] = { "tableName", "fileName", "branchName",
		                            "fileType",  "importOp", "primaryKeys",
		                            "params",    "filename", "sha256" };
	const char *vals[sizeof(keys) / sizeof(keys[0])] = { NULL };
	const char *p = h ? h : "";
	cJSON *obj = NULL;
	char *text;
	size_t k;
	int error = TH_OK;

	while (*p) {
		const char *end = strchr(p, ','), *sp;
		size_t len;
		while (*p == ' ')
			p++;
		len = end ? (size_t)(end - p) : strlen(p);
		sp = memchr(p, ' ', len);
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			size_t klen = sp ? (size_t)(sp - p) : len;
			if (strlen(keys[k]) != klen || strncmp(keys[k], p, klen) != 0)
				continue;
			if ((vals[k] = sp ? meta_value(req, sp + 1, len - (size_t)(sp + 1 - p))
			                  : "") == NULL)
				return th_error_set(
				        err, TH_EINVALID,
				        "Upload-Metadata: the value of '%s' is not base64 "
				        "text",
				        keys[k]);
		}
		p += len;
		if (*p == ',')
			p++;
	}
	/* The whole params, else the keys one by one. */
	if (vals[6] != NULL) {
		obj = cJSON_Parse(vals[6]);
		if (obj == NULL || !cJSON_IsObject(obj)) {
			cJSON_Delete(obj);
			return th_error_set(err, TH_EINVALID,
			                    "Upload-Metadata: 'params' must be a JSON object");
		}
	} else if ((obj = cJSON_CreateObject()) == NULL) {
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	for (k = 0; k < 6; k++) {
		if (vals[k] == NULL || cJSON_HasObjectItem(obj, keys[k]))
			continue;
		if (k == 5) { /* primaryKeys: a JSON array, or names separated by commas */
			cJSON *arr = vals[k][0] == '[' ? cJSON_Parse(vals[k]) : cJSON_CreateArray();
			if (arr != NULL && vals[k][0] != '[') {
				const char *q = vals[k];
				while (*q) {
					size_t n = strcspn(q, ",");
					char *name = api_pool_strndup(&req->pool, q, n);
					cJSON *s = name ? cJSON_CreateString(name) : NULL;
					if (s == NULL || !cJSON_AddItemToArray(arr, s)) {
						cJSON_Delete(s);
						cJSON_Delete(arr);
						arr = NULL;
						break;
					}
					q += n + (q[n] == ',');
				}
			}
			if (arr == NULL) {
				error = th_error_set(
				        err, TH_EINVALID,
				        "Upload-Metadata: 'primaryKeys' must be a JSON "
				        "array or column names separated by commas");
				goto cleanup;
			}
			cJSON_AddItemToObject(obj, keys[k], arr);
		} else if (!api_json_str(obj, keys[k], vals[k])) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	if (!cJSON_HasObjectItem(obj, "fileName") && vals[7] != NULL &&
	    !api_json_str(obj, "fileName", vals[7])) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (vals[8] != NULL && (strlen(vals[8]) != 64 || !th_upload_sha_valid(vals[8]))) {
		error = th_error_set(err, TH_EINVALID,
		                     "Upload-Metadata: 'sha256' must be 64 lower-case hex digits");
		goto cleanup;
	}
	if ((text = cJSON_PrintUnformatted(obj)) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	*params_out = api_pool_strdup(&req->pool, text);
	cJSON_free(text);
	*sha_out = vals[8];
	if (*params_out == NULL)
		error = th_error_set(err, TH_ENOMEM, "out of memory");
cleanup:
	cJSON_Delete(obj);
	return error;
}

/* The branch the params name exists in req->db (400 otherwise, as the multipart upload says). */
static int branch_exists(th_req *req, const char *branch, th_error *err)
{
	th_repo *repo = NULL;
	th_oid head;
	int error;

	if ((error = api_repo_open(&repo, req, err)) < 0)
		return error;
	error = th_repo_branch_get(&head, repo, branch, err);
	th_repo_free(repo);
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_EINVALID,
		                    "params: 'branchName': no branch '%.200s' in "
		                    "'%s/%s'",
		                    branch, req->db.owner, req->db.name);
	return error;
}

/* Refuse an upload of `length` bytes that would leave less than --min-free-mb free where it is
 * stored (507), as the multipart upload does; each PATCH's writes still find a full disk. */
static int check_free_space(th_req *req, uint64_t length, th_error *err)
{
	uint64_t keep = (uint64_t)req->srv->cfg.min_free_mb * 1048576u, avail;
	struct statvfs vfs;

	if (keep == 0 || statvfs(req->srv->cfg.data_dir, &vfs) != 0)
		return TH_OK;
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail >= keep && avail - keep >= length)
		return TH_OK;
	return th_error_set(err, TH_ENOSPC,
	                    "not enough disk space for this upload: %llu MB free, and the server "
	                    "keeps %u MB free; try again later or ask the administrator",
	                    (unsigned long long)(avail / 1048576), req->srv->cfg.min_free_mb);
}

static int tus_create(th_req *req, th_error *err)
{
	const char *metadata = api_header(req, "Upload-Metadata"), *sha = NULL;
	int64_t length = header_u63(req, "Upload-Length");
	api_import_req ir;
	char *params = NULL, id[TH_UUID_SIZE], *location;
	int error;

	if (!version_ok(req, err))
		return req->resp ? TH_OK : TH_ENOMEM;
	if (api_header(req, "Upload-Defer-Length") != NULL)
		return th_error_set(err, TH_EINVALID,
		                    "Upload-Defer-Length is not supported: send Upload-Length");
	if (length < 0)
		return th_error_set(err, TH_EINVALID,
		                    "send the file's size in bytes as Upload-Length");
	if (length == 0)
		return th_error_set(err, TH_EINVALID, "the file is empty (Upload-Length: 0)");
	if (req->srv->cfg.max_file > 0 && (uint64_t)length > req->srv->cfg.max_file)
		return th_error_set(err, TH_ETOOBIG,
		                    "the file is larger than the %" PRIu64 " byte limit "
		                    "(Tus-Max-Size)",
		                    req->srv->cfg.max_file);
	if ((error = check_free_space(req, (uint64_t)length, err)) < 0)
		return error;
	if (metadata != NULL && strlen(metadata) > METADATA_MAX)
		return th_error_set(err, TH_EINVALID, "Upload-Metadata is over %d bytes",
		                    METADATA_MAX);
	if ((error = metadata_params(&params, &sha, req, metadata, err)) < 0 ||
	    (error = api_upload_params_parse(&ir, req, params, strlen(params), err)) < 0)
		return error;
	error = branch_exists(req, ir.branch, err);
	cJSON_Delete(ir.pjson);
	if (error < 0)
		return error;
	if ((error = th_meta_tus_create(id, req->srv->meta, req->db.id, req->user, (uint64_t)length,
	                                metadata, params, err)) < 0)
		return error;
	if ((error = th_part_create(req->srv->cfg.data_dir, id, err)) < 0) {
		th_error e = { 0 };
		th_meta_tus_delete(req->srv->meta, id, &e);
		return error;
	}
	location = api_pool_printf(&req->pool, API "/%s/%s/uploads/tus/%s", req->db.owner,
	                           req->db.name, id);
	if (location == NULL || (error = reply_empty(req, MHD_HTTP_CREATED, err)) < 0)
		return location ? error : th_error_set(err, TH_ENOMEM, "out of memory");
	add_header(req, MHD_HTTP_HEADER_LOCATION, location);
	TH_LOG(TH_LOG_INFO, "req=%llu tus upload %s of %" PRId64 " bytes into %s/%s by %s",
	       (unsigned long long)req->id, id, length, req->db.owner, req->db.name, req->user);
	return TH_OK;
}

/* --- HEAD, GET, DELETE -------------------------------------------------------------------------
 */

static int tus_head(th_req *req, th_error *err)
{
	th_tus_info t;
	int error;

	if (!version_ok(req, err))
		return req->resp ? TH_OK : TH_ENOMEM;
	if ((error = load(&t, req, err)) < 0) {
		/* No Upload-Offset on a miss, as tus asks; still no caching. */
		error = reply_th_error(req, err, err);
		add_header(req, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
		return error;
	}
	if ((error = reply_empty(req, MHD_HTTP_OK, err)) == TH_OK) {
		add_u64(req, "Upload-Offset", t.offset);
		add_u64(req, "Upload-Length", t.length);
		if (t.metadata[0])
			add_header(req, "Upload-Metadata", t.metadata);
		add_header(req, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
		add_result_headers(req, &t);
	}
	th_tus_info_dispose(&t);
	return error;
}

static int tus_get(th_req *req, th_error *err)
{
	th_tus_info t;
	char created[32], updated[32];
	cJSON *body;
	int error;

	if ((error = load(&t, req, err)) < 0)
		return error;
	th_time_fmt(created, t.created_at);
	th_time_fmt(updated, t.updated_at);
	body = api_success();
	if (body == NULL || !api_json_str(body, "upload_id", t.id) ||
	    !cJSON_AddNumberToObject(body, "offset", (double)t.offset) ||
	    !cJSON_AddNumberToObject(body, "length", (double)t.length) ||
	    !api_json_str(body, "state", t.state == TH_TUS_DONE ? "Completed" : "Uploading") ||
	    !api_json_str(body, "created_at", created) ||
	    !api_json_str(body, "updated_at", updated) ||
	    (t.state == TH_TUS_DONE &&
	     (!api_json_str(body, "file_id", t.file_id) ||
	      !api_json_str(body, "operation_name",
	                    api_op_job_name(&req->pool, req->db.owner, req->db.name, t.op_id))))) {
		cJSON_Delete(body);
		th_tus_info_dispose(&t);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	th_tus_info_dispose(&t);
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

static int tus_delete(th_req *req, th_error *err)
{
	th_tus_info t;
	entry *e = NULL;
	unsigned gen;
	int error;

	memset(&t, 0, sizeof(t));
	if (!version_ok(req, err))
		return req->resp ? TH_OK : TH_ENOMEM;
	if ((error = load(&t, req, err)) < 0)
		return reply_th_error(req, err, err);
	/* Taking the upload stops any request still writing it. */
	if ((error = entry_take(&e, &gen, t.id, err)) < 0) {
		th_tus_info_dispose(&t);
		return error;
	}
	pthread_mutex_lock(&e->mu);
	/* A finished upload's bytes are the file now: only the record goes. */
	if ((t.state != TH_TUS_OPEN ||
	     (error = th_part_remove(req->srv->cfg.data_dir, t.id, err)) == TH_OK) &&
	    (error = th_meta_tus_delete(req->srv->meta, t.id, err)) == TH_OK)
		e->gen++; /* nobody holds it any more */
	pthread_mutex_unlock(&e->mu);
	entry_give(e, error == TH_OK);
	th_tus_info_dispose(&t);
	return error < 0 ? error : reply_empty(req, MHD_HTTP_NO_CONTENT, err);
}

/* --- PATCH --------------------------------------------------------------------------------------
 */

/* One PATCH, from its head to its end (req->body_state). */
typedef struct patch {
	th_tus_info t;
	entry *e;
	unsigned gen; /* the generation this request writes as (entry) */
	th_part *part;
	uint64_t start; /* the offset the request began at */
	int checksum;   /* 0 none, 1 sha1, 2 sha256 */
	unsigned char want[32];
	th_sha1 *sha1;
	th_sha256 *sha256;
	int failed;   /* a write failed, or another request took the upload over */
	int finished; /* the handler decided what is kept */
} patch;

static void hash_update(void *ctx, const void *data, size_t len)
{
	th_sha256_update(ctx, data, len);
}

/* Parse Upload-Checksum ("sha1 <base64>" or "sha256 <base64>") into p. Returns TH_OK or
 * TH_EINVALID (an algorithm not supported, or not a digest: 400, as tus says). */
static int parse_checksum(patch *p, const char *h, th_error *err)
{
	const char *sp = strchr(h, ' ');
	size_t need;
	long n;

	if (sp != NULL && (size_t)(sp - h) == 4 && strncmp(h, "sha1", 4) == 0) {
		p->checksum = 1;
		need = 20;
	} else if (sp != NULL && (size_t)(sp - h) == 6 && strncmp(h, "sha256", 6) == 0) {
		p->checksum = 2;
		need = 32;
	} else {
		return th_error_set(err, TH_EINVALID,
		                    "Upload-Checksum: the algorithm must be sha1 or sha256 "
		                    "(Tus-Checksum-Algorithm)");
	}
	n = api_base64_decode(p->want, sizeof(p->want), sp + 1, strlen(sp + 1));
	if (n != (long)need)
		return th_error_set(
		        err, TH_EINVALID,
		        "Upload-Checksum: want the algorithm, a space and the digest in "
		        "base64");
	if ((p->checksum == 1 && (p->sha1 = th_sha1_new()) == NULL) ||
	    (p->checksum == 2 && (p->sha256 = th_sha256_new()) == NULL))
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return TH_OK;
}

/* The upload was taken over by a newer request: this one's bytes go nowhere. */
static int superseded(th_error *err)
{
	return th_error_set(err, TH_ECONFLICT,
	                    "another request took this upload over; ask HEAD for the offset");
}

static int patch_begin(th_req *req, th_error *err)
{
	const char *ct = api_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *sum = api_header(req, "Upload-Checksum");
	int64_t offset = header_u63(req, "Upload-Offset");
	int64_t clen = header_u63(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	patch *p;
	int error;

	if (!version_ok(req, err))
		return req->resp ? TH_OK : TH_ENOMEM;
	if (ct == NULL || strcasecmp(ct, "application/offset+octet-stream") != 0)
		return reply_error(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "EUNSUPPORTED",
		                   "a PATCH's Content-Type must be application/offset+octet-stream",
		                   err);
	if (offset < 0)
		return th_error_set(err, TH_EINVALID,
		                    "send the offset the bytes start at as Upload-Offset");
	if ((p = api_pool_alloc(&req->pool, sizeof(*p))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if ((error = load(&p->t, req, err)) < 0)
		return reply_th_error(req, err, err);
	req->body_state = p; /* from here patch_release cleans up, whatever happens */
	if ((uint64_t)offset != p->t.offset) {
		char msg[160];
		snprintf(msg, sizeof(msg),
		         "Upload-Offset %" PRId64 " is not the upload's offset %" PRIu64
		         ": ask HEAD for it",
		         offset, p->t.offset);
		if ((error = reply_error(req, MHD_HTTP_CONFLICT, "ECONFLICT", msg, err)) == TH_OK)
			add_u64(req, "Upload-Offset", p->t.offset);
		return error;
	}
	if (p->t.state == TH_TUS_DONE) {
		/* Every byte is in: an empty PATCH at the end is answered as the last one was. */
		if (clen == 0)
			return TH_OK;
		return reply_error(req, MHD_HTTP_CONFLICT, "ECONFLICT",
		                   "the upload is complete: it takes no more bytes", err);
	}
	if (clen >= 0 && (uint64_t)clen > p->t.length - p->t.offset)
		return th_error_set(err, TH_EINVALID,
		                    "%" PRId64 " bytes from offset %" PRIu64
		                    " pass the Upload-Length of %" PRIu64,
		                    clen, p->t.offset, p->t.length);
	if (sum != NULL && (error = parse_checksum(p, sum, err)) < 0)
		return error;
	/* This request holds the upload from here; one still running (its connection may be
	 * dead and the server not know it yet) is superseded. */
	if ((error = entry_take(&p->e, &p->gen, p->t.id, err)) < 0)
		return error;
	pthread_mutex_lock(&p->e->mu);
	error = th_part_open(&p->part, req->srv->cfg.data_dir, p->t.id, p->t.offset, err);
	p->start = p->t.offset;
	/* The file's SHA-256 goes on from where this process left it, or starts again. */
	if (error == TH_OK && p->e->hash != NULL && p->e->hashed != p->start) {
		th_sha256_free(p->e->hash);
		p->e->hash = NULL;
	}
	if (error == TH_OK && p->e->hash == NULL && p->start == 0) {
		if ((p->e->hash = th_sha256_new()) == NULL)
			error = th_error_set(err, TH_ENOMEM, "out of memory");
		p->e->hashed = 0;
	}
	pthread_mutex_unlock(&p->e->mu);
	return error;
}

static int patch_feed(th_req *req, const char *data, size_t len, th_error *err)
{
	patch *p = req->body_state;
	int error = TH_OK;

	if (p == NULL || p->part == NULL || p->failed)
		return TH_OK; /* answered at the head already: the body is drained */
	if (len > p->t.length - th_part_offset(p->part)) {
		p->failed = 1;
		return th_error_set(err, TH_EINVALID,
		                    "more bytes than the Upload-Length of %" PRIu64 " leaves",
		                    p->t.length);
	}
	pthread_mutex_lock(&p->e->mu);
	if (!holds(p->e, p->gen))
		error = superseded(err);
	else if ((error = th_part_write(p->part, data, len, err)) == TH_OK && p->e->hash != NULL) {
		th_sha256_update(p->e->hash, data, len);
		p->e->hashed += len;
	}
	pthread_mutex_unlock(&p->e->mu);
	if (error < 0) {
		p->failed = 1;
		return error;
	}
	if (p->sha1)
		th_sha1_update(p->sha1, data, len);
	if (p->sha256)
		th_sha256_update(p->sha256, data, len);
	return TH_OK;
}

/* Cut the request's bytes off again: the upload stays where it was. p->e->mu held, and p the
 * holder. */
static void discard(patch *p)
{
	th_error e = { 0 };

	if (p->part == NULL || th_part_offset(p->part) == p->start)
		return;
	if (th_part_truncate(p->part, p->start, &e) < 0)
		TH_LOG(TH_LOG_WARN, "tus upload %s: %s", p->t.id, e.msg);
	/* The file's hash has taken bytes that are gone: hash from disk at the end. */
	th_sha256_free(p->e->hash);
	p->e->hash = NULL;
}

/* Sync the part file and record its offset. p->e->mu held, and p the holder. Returns TH_OK or
 * the error. */
static int keep(th_req *req, patch *p, th_error *err)
{
	int error;

	if ((error = th_part_sync(p->part, err)) < 0 ||
	    (error = th_meta_tus_set_offset(req->srv->meta, p->t.id, th_part_offset(p->part),
	                                    err)) < 0)
		return error;
	p->t.offset = th_part_offset(p->part);
	return TH_OK;
}

/* Every byte is stored: the file is hashed, checked against the metadata's sha256, stored under
 * its name and imported. p->e->mu held, and p the holder. Returns TH_OK with p->t done, or the
 * error (TH_EINVALID "checksum mismatch" for a sha256 that does not match, after which the
 * upload is gone). */
static int complete(th_req *req, patch *p, th_error *err)
{
	const char *meta_sha = NULL;
	char sha[65], *params = NULL;
	unsigned char digest[32];
	api_import_req ir;
	int error;

	if (p->e->hash == NULL || p->e->hashed != p->t.length) {
		th_sha256 *h = th_sha256_new();
		if (h == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		error = th_part_read(req->srv->cfg.data_dir, p->t.id, 0, hash_update, h, err);
		if (error == TH_OK)
			th_sha256_final(h, digest);
		th_sha256_free(h);
		if (error < 0)
			return error;
	} else {
		th_sha256_final(p->e->hash, digest);
	}
	th_sha256_free(p->e->hash);
	p->e->hash = NULL;
	th_hex(sha, digest, 32);
	if ((error = metadata_params(&params, &meta_sha, req, p->t.metadata, err)) < 0)
		return error;
	th_part_close(p->part);
	p->part = NULL;
	if (meta_sha != NULL && strcmp(meta_sha, sha) != 0) {
		th_error e = { 0 };
		th_part_remove(req->srv->cfg.data_dir, p->t.id, &e);
		th_meta_tus_delete(req->srv->meta, p->t.id, &e);
		p->t.state = 0; /* gone */
		return th_error_set(
		        err, TH_EINVALID,
		        "checksum mismatch: the file's SHA-256 is %s, the metadata says "
		        "%s; the upload is removed: start again",
		        sha, meta_sha);
	}
	if ((error = api_upload_params_parse(&ir, req, p->t.params, strlen(p->t.params), err)) < 0)
		return error;
	/* Pinned from the rename until the file is recorded: the clean-up of unused uploads
	 * (upload.c, files.c) leaves it alone meanwhile. */
	if ((error = th_upload_pin(sha, err)) < 0) {
		cJSON_Delete(ir.pjson);
		return error;
	}
	p->t.file_id[0] = '\0';
	if ((error = th_part_finish(req->srv->cfg.data_dir, p->t.id, sha, err)) == TH_OK)
		error = api_import_start(p->t.op_id, p->t.file_id, req, &ir, sha, p->t.length, err);
	th_upload_unpin(sha);
	cJSON_Delete(ir.pjson);
	if (error < 0)
		return error;
	if ((error = th_meta_tus_done(req->srv->meta, p->t.id, p->t.file_id, p->t.op_id, err)) < 0)
		return error;
	p->t.state = TH_TUS_DONE;
	TH_LOG(TH_LOG_INFO,
	       "req=%llu tus upload %s complete: %" PRIu64 " bytes, file %s, operation %s",
	       (unsigned long long)req->id, p->t.id, p->t.length, p->t.file_id, p->t.op_id);
	return TH_OK;
}

/* The end of the body: check, keep, complete. p->e->mu held. Returns TH_OK with the reply left,
 * or the error to answer. */
static int patch_end(th_req *req, patch *p, th_error *err)
{
	int error;

	if (!holds(p->e, p->gen))
		return superseded(err);
	if (p->checksum != 0) {
		unsigned char got[32];
		size_t n = p->checksum == 1 ? 20 : 32;
		if (p->checksum == 1)
			th_sha1_final(p->sha1, got);
		else
			th_sha256_final(p->sha256, got);
		if (memcmp(got, p->want, n) != 0) {
			discard(p);
			return reply_error(
			        req, 460, "ECHECKSUM",
			        "checksum mismatch: the bytes of this request do not have "
			        "the Upload-Checksum sent; they are dropped, the offset is "
			        "unchanged",
			        err);
		}
	}
	if ((error = keep(req, p, err)) < 0) {
		discard(p);
		return error;
	}
	if (p->t.offset == p->t.length && (error = complete(req, p, err)) < 0) {
		if (err->code == TH_EINVALID && strncmp(err->msg, "checksum mismatch", 17) == 0)
			return reply_error(req, 460, "ECHECKSUM", err->msg, err);
		return error;
	}
	if ((error = reply_empty(req, MHD_HTTP_NO_CONTENT, err)) == TH_OK) {
		add_u64(req, "Upload-Offset", p->t.offset);
		add_result_headers(req, &p->t);
	}
	return error;
}

static int tus_patch(th_req *req, th_error *err)
{
	patch *p = req->body_state;
	int error;

	if (p == NULL) /* patch_begin answered */
		return th_error_set(err, TH_ERROR, "no upload state");
	p->finished = 1;
	if (p->t.state == TH_TUS_DONE) { /* an empty PATCH after the end */
		if ((error = reply_empty(req, MHD_HTTP_NO_CONTENT, err)) == TH_OK) {
			add_u64(req, "Upload-Offset", p->t.length);
			add_result_headers(req, &p->t);
		}
		return error;
	}
	pthread_mutex_lock(&p->e->mu);
	error = patch_end(req, p, err);
	pthread_mutex_unlock(&p->e->mu);
	return error;
}

static void patch_release(th_req *req, int completed)
{
	patch *p = req->body_state;
	th_error e = { 0 };

	(void)completed;
	if (p == NULL)
		return;
	req->body_state = NULL;
	/* The body ended before the handler ran (a cut connection, or an error found while it
	 * came): keep what arrived, unless a checksum cannot vouch for part of a body or a write
	 * failed; and only while this request still holds the upload. */
	if (!p->finished && p->part != NULL && p->e != NULL) {
		pthread_mutex_lock(&p->e->mu);
		if (holds(p->e, p->gen)) {
			if (p->checksum != 0 || p->failed)
				discard(p);
			else if (th_part_offset(p->part) != p->start && keep(req, p, &e) < 0)
				TH_LOG(TH_LOG_WARN, "tus upload %s: %s", p->t.id, e.msg);
			TH_LOG(TH_LOG_INFO,
			       "req=%llu tus upload %s: request ended at byte %" PRIu64
			       " of %" PRIu64 " (%s)",
			       (unsigned long long)req->id, p->t.id, p->t.offset, p->t.length,
			       p->checksum != 0 || p->failed ? "its bytes dropped"
			                                     : "its bytes kept");
		} else {
			TH_LOG(TH_LOG_INFO,
			       "req=%llu tus upload %s: request ended after another took the "
			       "upload "
			       "over",
			       (unsigned long long)req->id, p->t.id);
		}
		pthread_mutex_unlock(&p->e->mu);
	}
	th_part_close(p->part);
	th_sha1_free(p->sha1);
	th_sha256_free(p->sha256);
	if (p->e != NULL)
		entry_give(p->e, p->t.state != TH_TUS_OPEN);
	th_tus_info_dispose(&p->t);
}
