/* import_job.c: operation kind "import" (see include/tablehub/jobs.h): a file uploaded with
 * DoltHub's upload params becomes a commit on an import branch and a pull request.
 *
 * th_jobs_enqueue_import stores the params as DoltHub's JSON in a Pending operation; the runner
 * reads them back, imports the upload onto the target branch's head as it was when the upload was
 * taken ("baseCommit"; the head now for an operation without one) (th_import_fd), which makes
 * the branch <creator>/import-<first 8 hex of the id> at the new commit, opens a pull request into
 * the target branch and sets the result {"commit", "branch", "to_branch", "pull_id", "rows_added",
 * "rows_modified", "rows_removed", "rows"} (rows = rows in the table afterwards). The queue holds
 * the database's writer lock shared while it runs (TH_JOB_OWN_BRANCH): imports into one database
 * run side by side, since each writes only new objects and its own branch.
 *
 * An import from a URL (th_import_params.url) names no upload: its runner first fetches the file
 * into the uploads (url_fetch.c: http(s) only, size and time caps, no private addresses unless
 * the server allows them), before any branch is made, so a refused or failed fetch fails the
 * operation with nothing stored. The fetched file is pinned while the import reads it and removed
 * when the import fails (unless another operation names the same bytes).
 *
 * Cancel and time cap: the runner asks th_job_check before it makes its branch, every 1024 rows of
 * each pass of the import (th_import_opts.check), before the commit and before the pull request;
 * stopped at any of these it deletes its branch and fails, so a cancelled import commits nothing.
 * Once the pull request is open the import completes.
 *
 * Retries: the runner deletes a branch left by an earlier attempt and rebuilds it from scratch,
 * then finds the pull request that attempt may have opened, so a retry after a crash at any point
 * ends with one branch and one pull. A failed import deletes its branch: nothing half-made stays.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tablehub/buf.h"
#include "tablehub/files.h"
#include "tablehub/ids.h"
#include "tablehub/jobs.h"
#include "tablehub/log.h"
#include "tablehub/meta_limits.h"
#include "tablehub/sqlwrite.h"
#include "tablehub/text.h"

/* --- names of import ops (DoltHub's spelling; formats are named in reader.h's table) --------- */

static const char *const op_names[] = {
	NULL, "Create", "Overwrite", "Update", "Replace", "Append"
};

static int name_index(const char *const *names, int n, const char *s)
{
	int i;

	for (i = 1; s && i < n; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return 0;
}

int th_jobs_enqueue_import(char op_id_out[TH_UUID_SIZE], th_meta *m, const th_import_params *p,
                           th_error *err)
{
	th_buf params = TH_BUF_INIT;
	th_op_new op;
	const char *branch = p->branch_name ? p->branch_name : "";
	const char *file = p->file_name ? p->file_name : "";
	size_t i;
	int error;

	if (!p->owner || !th_name_valid(p->owner) || !p->db || !th_name_valid(p->db) ||
	    !p->creator || !th_name_valid(p->creator))
		return th_error_set(err, TH_EINVALID,
		                    "an import needs a valid owner, db and creator");
	if ((p->table_name == NULL || p->table_name[0] == '\0') && !th_format_is_sql(p->format))
		return th_error_set(err, TH_EINVALID, "tableName is required");
	if (p->url != NULL) {
		if ((error = th_fetch_check_url(p->url, err)) < 0)
			return error;
	} else if (!th_upload_sha_valid(p->upload_sha256)) {
		return th_error_set(err, TH_EINVALID, "invalid upload id");
	}
	if ((int)p->op < 1 || (int)p->op > 5)
		return th_error_set(err, TH_EINVALID, "invalid importOp");
	if (p->format == NULL)
		return th_error_set(err, TH_EINVALID, "invalid fileType");
	if ((error = th_buf_puts(&params, "{\"tableName\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(&params, p->table_name ? p->table_name : "", err)) < 0 ||
	    (error = th_buf_puts(&params, ",\"fileName\":", err)) < 0 ||
	    (error = th_buf_put_json_string(&params, file, strlen(file), err)) < 0 ||
	    (error = th_buf_puts(&params, ",\"branchName\":", err)) < 0 ||
	    (error = th_buf_put_json_string(&params, branch, strlen(branch), err)) < 0 ||
	    (error = th_buf_printf(&params, err, ",\"fileType\":\"%s\",\"importOp\":\"%s\"",
	                           p->format->name, op_names[p->op])) < 0 ||
	    (error = th_buf_puts(&params, ",\"primaryKeys\":[", err)) < 0)
		goto cleanup;
	for (i = 0; i < p->npk; i++) {
		if ((i > 0 && (error = th_buf_putc(&params, ',', err)) < 0) ||
		    (error = th_buf_put_json_string(&params, p->pk[i], strlen(p->pk[i]), err)) < 0)
			goto cleanup;
	}
	if ((error = th_buf_putc(&params, ']', err)) < 0)
		goto cleanup;
	if (p->url != NULL &&
	    ((error = th_buf_puts(&params, ",\"url\":", err)) < 0 ||
	     (error = th_buf_put_json_string(&params, p->url, strlen(p->url), err)) < 0 ||
	     (error = th_buf_printf(&params, err,
	                            ",\"fetch\":{\"maxBytes\":%" PRIu64 ",\"timeoutMs\":%" PRIu32
	                            ",\"allowPrivate\":%s}",
	                            p->fetch.max_bytes, p->fetch.timeout_ms,
	                            p->fetch.allow_private ? "true" : "false")) < 0))
		goto cleanup;
	if (p->sheet_name && ((error = th_buf_puts(&params, ",\"sheetName\":", err)) < 0 ||
	                      (error = th_buf_put_json_string(&params, p->sheet_name,
	                                                      strlen(p->sheet_name), err)) < 0))
		goto cleanup;
	if (p->base != NULL) {
		char hex[41];
		th_oid_fmt(hex, p->base);
		if ((error = th_buf_printf(&params, err, ",\"baseCommit\":\"%s\"", hex)) < 0)
			goto cleanup;
	}
	for (i = 0; i < p->nnulls; i++) {
		if ((error = th_buf_puts(&params, i ? "," : ",\"nullValues\":[", err)) < 0 ||
		    (error = th_buf_put_json_string(&params, p->nulls[i], strlen(p->nulls[i]),
		                                    err)) < 0)
			goto cleanup;
	}
	if ((error = th_buf_puts(&params, p->nnulls ? "]}" : "}", err)) < 0)
		goto cleanup;
	memset(&op, 0, sizeof(op));
	op.kind = "import";
	op.owner = p->owner;
	op.db = p->db;
	op.creator = p->creator;
	op.params = params.ptr;
	op.upload_sha256 = p->url != NULL ? "" : p->upload_sha256;
	op.file_name = file;
	op.table_name = p->table_name ? p->table_name : "";
	op.branch_name = branch;
	op.bytes_total = p->bytes_total;
	op.file_id = p->file_id;
	error = th_meta_op_create(op_id_out, m, &op, err);
cleanup:
	th_buf_dispose(&params);
	return error;
}

/* --- the runner ------------------------------------------------------------------------------ */

static void import_progress(void *payload, uint64_t bytes_read, uint64_t rows)
{
	th_job_progress(payload, bytes_read, rows);
}

static int import_check(void *payload, th_error *err)
{
	return th_job_check(payload, err);
}

/* Read the import's params (DoltHub's JSON) into op, format and the pk array (heap, pointing into
 * *json_out, which the caller deletes). */
static int parse_params(cJSON **json_out, th_import_op *op, const th_format **fmt, const char ***pk,
                        size_t *npk, const th_op_info *job, th_error *err)
{
	cJSON *json = cJSON_Parse(job->params), *it, *keys;
	const char **v = NULL;
	size_t n = 0;

	if (json == NULL || !cJSON_IsObject(json)) {
		cJSON_Delete(json);
		return th_error_set(err, TH_EINVALID, "invalid import params");
	}
	it = cJSON_GetObjectItemCaseSensitive(json, "importOp");
	if ((*op = (th_import_op)name_index(op_names, 6, cJSON_GetStringValue(it))) == 0) {
		cJSON_Delete(json);
		return th_error_set(err, TH_EINVALID, "invalid importOp '%s'",
		                    cJSON_IsString(it) ? it->valuestring : "");
	}
	it = cJSON_GetObjectItemCaseSensitive(json, "fileType");
	if ((*fmt = th_format_find(cJSON_GetStringValue(it))) == NULL) {
		cJSON_Delete(json);
		return th_error_set(err, TH_EINVALID, "invalid fileType '%s'",
		                    cJSON_IsString(it) ? it->valuestring : "");
	}
	keys = cJSON_GetObjectItemCaseSensitive(json, "primaryKeys");
	if (cJSON_IsArray(keys) && cJSON_GetArraySize(keys) > 0) {
		if ((v = calloc((size_t)cJSON_GetArraySize(keys), sizeof(*v))) == NULL) {
			cJSON_Delete(json);
			return th_error_set(err, TH_ENOMEM, "out of memory");
		}
		cJSON_ArrayForEach(it, keys)
		{
			if (!cJSON_IsString(it)) {
				free(v);
				cJSON_Delete(json);
				return th_error_set(err, TH_EINVALID,
				                    "primaryKeys must be an array of strings");
			}
			v[n++] = it->valuestring;
		}
	}
	*json_out = json;
	*pk = v;
	*npk = n;
	return TH_OK;
}

/* The commit the import starts from: the params' baseCommit, when it is a commit of repo, else
 * *head (the branch's head now). A base that is gone (it cannot be while a branch or pull names
 * it) is logged and the head taken. */
static void import_base(th_oid *head, th_repo *repo, const cJSON *params, const th_op_info *job)
{
	const char *hex =
	        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "baseCommit"));
	th_error e = { 0 };
	th_oid oid;

	if (hex == NULL)
		return;
	if (th_oid_parse(&oid, hex, &e) == TH_OK && th_repo_exists(repo, &oid)) {
		*head = oid;
		return;
	}
	TH_LOG(TH_LOG_WARN, "job %s: base commit %.40s is not in %s/%s; importing onto the head",
	       job->id, hex, job->owner, job->db);
}

static void fetch_progress(void *payload, uint64_t bytes)
{
	th_job_progress(payload, bytes, 0);
}

/* A URL import: fetch the file of params' "url" into the uploads; sha gets its name. */
static int fetch_file(char sha[65], th_job_ctx *ctx, const cJSON *params, th_error *err)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(params, "fetch");
	const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "url"));
	th_fetch_opts o;
	uint64_t size = 0;

	memset(&o, 0, sizeof(o));
	o.max_bytes =
	        (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(f, "maxBytes"));
	o.timeout_ms =
	        (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(f, "timeoutMs"));
	o.allow_private = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "allowPrivate"));
	if (url == NULL)
		return th_error_set(err, TH_EINVALID, "an import without a file or a URL");
	return th_fetch_url(sha, &size, th_job_data_dir(ctx), url, &o, fetch_progress, ctx, err);
}

static int upload_in_use(int *in_use, void *ctx, const char *sha, th_error *err)
{
	return th_meta_upload_in_use(in_use, ctx, sha, err);
}

/* The optional params into opts: sheetName, and nullValues (an array of strings, into *nulls: heap,
 * pointing into `json`; the caller frees it). Returns TH_OK, TH_EINVALID or TH_ENOMEM. */
static int parse_extras(th_import_opts *opts, const char ***nulls, cJSON *json, th_error *err)
{
	cJSON *sheet = cJSON_GetObjectItemCaseSensitive(json, "sheetName");
	cJSON *list = cJSON_GetObjectItemCaseSensitive(json, "nullValues"), *it;
	size_t n = 0;

	opts->sheet = cJSON_GetStringValue(sheet);
	if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
		return TH_OK;
	if ((*nulls = calloc((size_t)cJSON_GetArraySize(list), sizeof(**nulls))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, list)
	{
		if (!cJSON_IsString(it))
			return th_error_set(err, TH_EINVALID,
			                    "nullValues must be an array of strings");
		(*nulls)[n++] = it->valuestring;
	}
	opts->nulls = *nulls;
	opts->nnulls = n;
	return TH_OK;
}

/* th_meta_pull_find_or_create, committed lazily: the operation's completion, a durable commit,
 * follows at once and carries it. Only a power loss in that moment can undo the pull, and then it
 * undoes the completion too: the import runs again and finds or makes its pull again. */
static int pull_open(int64_t *pull_id, th_meta *m, int64_t db_id, const char *title,
                     const char *text, const char *creator, const char *from, const char *to,
                     th_error *err)
{
	int error;

	th_meta_lazy(m, 1);
	error = th_meta_pull_find_or_create(pull_id, NULL, m, db_id, title, text, creator, from, to,
	                                    err);
	th_meta_lazy(m, 0);
	return error;
}

static int run_import(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err)
{
	th_meta *m = th_job_meta(ctx);
	const char *base = job->branch_name[0] ? job->branch_name : "main";
	cJSON *params = NULL;
	const char **pk = NULL, **nulls = NULL;
	size_t npk = 0;
	th_import_op op = 0;
	const th_format *fmt = NULL;
	th_db_info dbi;
	th_buf tmpdir = TH_BUF_INIT, result = TH_BUF_INIT, text = TH_BUF_INIT;
	th_buf report = TH_BUF_INIT;
	th_repo *repo = NULL;
	char branch[160], commit[41];
	th_oid head;
	th_import_opts opts;
	th_import_result res;
	int64_t pull_id = 0;
	int fd = -1, made_branch = 0, have_db = 0, error;
	char fetched[65] = ""; /* a URL import's file, pinned while it is read */
	const char *sha = job->upload_sha256;
	th_error ignored;

	(void)payload;
	memset(&dbi, 0, sizeof(dbi));
	if ((error = parse_params(&params, &op, &fmt, &pk, &npk, job, err)) < 0)
		goto cleanup;
	snprintf(branch, sizeof(branch), "%s/import-%.8s", job->creator, job->id);
	if ((error = th_meta_db_get(&dbi, m, job->owner, job->db, err)) < 0)
		goto cleanup;
	have_db = 1;
	if (sha[0] == '\0') { /* from a URL: the file first, before anything else is made */
		if ((error = fetch_file(fetched, ctx, params, err)) < 0)
			goto cleanup;
		sha = fetched;
	}
	if ((error = th_buf_printf(&tmpdir, err, "%s/tmp", th_job_data_dir(ctx))) < 0)
		goto cleanup;
	if ((error = th_job_repo_open(&repo, ctx, err)) < 0)
		goto cleanup;
	if ((error = th_repo_branch_get(&head, repo, base, err)) < 0) {
		if (error == TH_ENOTFOUND)
			th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", base);
		goto cleanup;
	}
	import_base(&head, repo, params, job);
	/* A retried job rebuilds its branch from scratch. */
	th_error_clear(&ignored);
	error = th_repo_branch_delete(repo, branch, &ignored);
	if (error < 0 && error != TH_ENOTFOUND) {
		*err = ignored;
		goto cleanup;
	}
	/* Cancelled or out of time: stop before anything is made. A file of rows makes the branch
	 * with its commit (one ref write, opts.base); statements run on a branch that exists. */
	if ((error = th_job_check(ctx, err)) < 0)
		goto cleanup;
	if (th_format_is_sql(fmt)) {
		if ((error = th_repo_branch_cas(repo, branch, &head, NULL, "tablehub: start import",
		                                err)) < 0)
			goto cleanup;
		made_branch = 1;
	}
	if ((error = th_upload_open(&fd, th_job_data_dir(ctx), sha, err)) < 0)
		goto cleanup;

	memset(&opts, 0, sizeof(opts));
	opts.table = job->table_name;
	opts.op = op;
	opts.pk = pk;
	opts.npk = npk;
	opts.format = fmt;
	opts.branch = branch;
	opts.base = th_format_is_sql(fmt) ? NULL : &head;
	opts.branch_label = base;
	opts.file_name = job->file_name[0] ? job->file_name : NULL;
	opts.author = job->creator;
	opts.tmpdir = tmpdir.ptr;
	opts.mem_budget = 0;
	opts.progress = import_progress;
	opts.progress_payload = ctx;
	opts.check = import_check;
	opts.report = &report;
	if ((error = parse_extras(&opts, &nulls, params, err)) < 0)
		goto cleanup;
	memset(&res, 0, sizeof(res));
	if (th_format_is_sql(fmt)) /* statements, run by the SQL write engine */
		error = th_sqlwrite_import_fd(&res, repo, fd, &opts, th_job_data_dir(ctx),
		                              job->owner, job->db, err);
	else if ((error = th_import_fd(&res, repo, fd, &opts, err)) == TH_OK)
		made_branch = 1;
	if (error < 0) {
		/* The rejected rows go with the failure (th_jobs stores the result of a failed
		 * job). */
		if (report.size)
			th_job_set_result(ctx, report.ptr, 0, &ignored);
		goto cleanup;
	}
	th_job_progress(ctx, job->bytes_total, res.rows_read);
	/* Stopped now, the branch is deleted below: nothing stays until the pull request exists. */
	if ((error = th_job_check(ctx, err)) < 0)
		goto cleanup;

	/* A retry after a crash between the pull and the completion finds its pull again: one store
	 * call returns the Open pull of the branch pair or makes it. */
	{
		th_buf title = TH_BUF_INIT;
		if ((error = th_buf_printf(&title, err, "Import %s%s%s",
		                           job->file_name[0] ? job->file_name : "file",
		                           job->table_name[0] ? " into " : "", job->table_name)) <
		            0 ||
		    (error = th_buf_printf(&text, err,
		                           "Rows added: %" PRIu64 ", modified: %" PRIu64
		                           ", removed: %" PRIu64,
		                           res.added, res.modified, res.removed)) < 0 ||
		    (error = pull_open(&pull_id, m, dbi.id, title.ptr, text.ptr, job->creator,
		                       branch, base, err)) < 0) {
			th_buf_dispose(&title);
			goto cleanup;
		}
		th_buf_dispose(&title);
	}
	th_oid_fmt(commit, &res.commit);
	if ((error = th_buf_printf(&result, err, "{\"commit\":\"%s\",\"branch\":", commit)) < 0 ||
	    (error = th_buf_put_json_string(&result, branch, strlen(branch), err)) < 0 ||
	    (error = th_buf_puts(&result, ",\"to_branch\":", err)) < 0 ||
	    (error = th_buf_put_json_string(&result, base, strlen(base), err)) < 0 ||
	    (error = th_buf_printf(&result, err,
	                           ",\"pull_id\":%" PRId64 ",\"rows_added\":%" PRIu64
	                           ",\"rows_modified\":%" PRIu64 ",\"rows_removed\":%" PRIu64
	                           ",\"rows\":%" PRIu64 "}",
	                           pull_id, res.added, res.modified, res.removed, res.rows)) < 0)
		goto cleanup;
	error = th_job_set_result(ctx, result.ptr, pull_id, err);

cleanup:
	/* A failed import leaves nothing behind: no half-made branch. Once its pull request exists
	 * the branch stays, so no pull names a missing branch; a retry finds both again. */
	if (error < 0 && made_branch && pull_id == 0) {
		th_error_clear(&ignored);
		th_repo_branch_delete(repo, branch, &ignored);
	}
	if (fd >= 0)
		close(fd);
	if (fetched[0]) {
		int gone = 0;
		th_upload_unpin(fetched);
		/* A failed URL import keeps nothing: its file goes unless an operation names it. */
		if (error < 0)
			th_upload_remove_unused(&gone, th_job_data_dir(ctx), fetched, upload_in_use,
			                        m, &ignored);
	}
	th_repo_free(repo);
	if (have_db)
		th_db_info_dispose(&dbi);
	th_buf_dispose(&tmpdir);
	th_buf_dispose(&result);
	th_buf_dispose(&text);
	th_buf_dispose(&report);
	free(pk);
	free(nulls);
	cJSON_Delete(params);
	return error;
}

const th_job_kind th_job_kind_import = { "import",
	                                 "Import",
	                                 run_import,
	                                 TH_JOB_WRITES_REPO | TH_JOB_OWN_BRANCH,
	                                 "upload the file again",
	                                 NULL };
