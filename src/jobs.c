/* jobs.c: the job queue's worker pool and the import job (see include/tablehub/jobs.h).
 *
 * DESIGN
 * - The queue is the operations table in meta.sqlite; nothing about pending work lives only in
 *   memory. th_jobs_enqueue_import writes a Pending row; th_jobs_wake signals a condition variable
 *   so an idle worker claims it at once. Idle workers also wake every poll interval (1 s), which
 *   is how a job whose lease expired (its process died) is picked up again without any signal.
 * - Claims are one atomic UPDATE in meta.c, so workers of this process and of any other process
 *   on the same data dir never run one attempt twice. Each claim bumps `attempts`, the fencing
 *   token: progress, completion and failure are accepted only from the attempt that holds it.
 * - Leases are kept alive by one heartbeat thread, which renews the lease of every running job a
 *   third of the way through it, and by the import's progress callback. So a lease expires only
 *   when the process stops (crash, kill -9, power loss) and never because a phase of an import
 *   (sorting, writing chunks) takes long without reporting progress.
 * - th_jobs_run re-queues the jobs the previous process left In Progress by expiring their leases,
 *   so they are retried at once instead of after the old lease ran out. A job claimed more than
 *   TH_JOBS_MAX_ATTEMPTS times is failed with a message telling the user what to do.
 * - Imports rebuild their branch from scratch, so a retry is safe. Jobs on the same database run
 *   one at a time (a striped mutex keyed by owner/db): both would open the repository as a writer.
 * - Threads: th_jobs_stop sets `stopping`, wakes everyone and joins the workers (each finishes the
 *   job it runs), then stops the heartbeat. A job's result or failure is written by the worker that
 *   ran it; nothing else writes an operation this pool claimed.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tablehub/ids.h"
#include "tablehub/text.h"
#include "tablehub/buf.h"
#include "tablehub/datadir.h"
#include "tablehub/files.h"
#include "tablehub/hash.h"
#include "tablehub/jobs.h"
#include "tablehub/pulls.h"
#include "tablehub/log.h"

#define MAX_RUNNERS 8
#define REPO_STRIPES 32

struct runner {
	char kind[16];
	th_job_runner run;
	void *payload;
};

/* One worker thread and the job it runs (active), which the heartbeat renews. */
struct slot {
	th_jobs *pool;
	pthread_t thread;
	int started;
	int active;
	int lost; /* the lease was lost: another attempt owns the job now */
	char id[TH_UUID_SIZE];
	int attempt;
};

struct th_jobs {
	char *data_dir;
	th_meta *meta;
	int nworkers;
	int64_t lease_ms, poll_ms;

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t work_cv;
	pthread_cond_t hb_cv;
	int running;  /* th_jobs_run was called */
	int stopping; /* workers exit */
	int hb_stop;  /* the heartbeat exits */
	unsigned long wake_seq;
	struct slot *slots;
	pthread_t hb_thread;
	int hb_started;
	struct runner runners[MAX_RUNNERS];
	size_t nrunners;
	th_job_runner test_run;
	void *test_payload;

	pthread_mutex_t repo_mu[REPO_STRIPES];
};

struct th_job_ctx {
	th_jobs *pool;
	struct slot *slot;
	const th_op_info *job;
	char *result;
	int64_t pull_id;
	int64_t progress_ms; /* when progress was last written */
};

/* Progress is written at most this often: each write is a meta.sqlite commit with an fsync, and a
 * poll needs no finer grain. */
#define PROGRESS_INTERVAL_MS 500

/* --- names of import ops and formats (DoltHub's spelling) ------------------------------------ */

static const char *const op_names[] = {
	NULL, "Create", "Overwrite", "Update", "Replace", "Append"
};
static const char *const fmt_names[] = { NULL, "Csv", "Psv", "Tsv", "Json" };

static int name_index(const char *const *names, int n, const char *s)
{
	int i;

	for (i = 1; s && i < n; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return 0;
}

/* --- enqueueing ------------------------------------------------------------------------------ */

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
	if (p->table_name == NULL || p->table_name[0] == '\0')
		return th_error_set(err, TH_EINVALID, "tableName is required");
	if (!th_upload_sha_valid(p->upload_sha256))
		return th_error_set(err, TH_EINVALID, "invalid upload id");
	if ((int)p->op < 1 || (int)p->op > 5)
		return th_error_set(err, TH_EINVALID, "invalid importOp");
	if ((int)p->format < 1 || (int)p->format > 4)
		return th_error_set(err, TH_EINVALID, "invalid fileType");
	if ((error = th_buf_puts(&params, "{\"tableName\":", err)) < 0 ||
	    (error = th_buf_put_json_string(&params, p->table_name, strlen(p->table_name), err)) <
	            0 ||
	    (error = th_buf_puts(&params, ",\"fileName\":", err)) < 0 ||
	    (error = th_buf_put_json_string(&params, file, strlen(file), err)) < 0 ||
	    (error = th_buf_puts(&params, ",\"branchName\":", err)) < 0 ||
	    (error = th_buf_put_json_string(&params, branch, strlen(branch), err)) < 0 ||
	    (error = th_buf_printf(&params, err, ",\"fileType\":\"%s\",\"importOp\":\"%s\"",
	                           fmt_names[p->format], op_names[p->op])) < 0 ||
	    (error = th_buf_puts(&params, ",\"primaryKeys\":[", err)) < 0)
		goto cleanup;
	for (i = 0; i < p->npk; i++) {
		if ((i > 0 && (error = th_buf_putc(&params, ',', err)) < 0) ||
		    (error = th_buf_put_json_string(&params, p->pk[i], strlen(p->pk[i]), err)) < 0)
			goto cleanup;
	}
	if ((error = th_buf_puts(&params, "]}", err)) < 0)
		goto cleanup;
	memset(&op, 0, sizeof(op));
	op.kind = "import";
	op.owner = p->owner;
	op.db = p->db;
	op.creator = p->creator;
	op.params = params.ptr;
	op.upload_sha256 = p->upload_sha256;
	op.file_name = file;
	op.table_name = p->table_name;
	op.branch_name = branch;
	op.bytes_total = p->bytes_total;
	error = th_meta_op_create(op_id_out, m, &op, err);
cleanup:
	th_buf_dispose(&params);
	return error;
}

/* --- job context ----------------------------------------------------------------------------- */

int th_job_progress(th_job_ctx *ctx, uint64_t bytes_read, uint64_t rows)
{
	th_jobs *j = ctx->pool;
	th_error err;
	int rc, lost;

	if (th_now_ms() - ctx->progress_ms < PROGRESS_INTERVAL_MS)
		return TH_OK;
	ctx->progress_ms = th_now_ms();
	th_error_clear(&err);
	rc = th_meta_op_progress(j->meta, ctx->job->id, ctx->job->attempts, bytes_read, rows,
	                         j->lease_ms, &err);
	pthread_mutex_lock(&j->mu);
	if (rc == TH_ECONFLICT || rc == TH_ENOTFOUND)
		ctx->slot->lost = 1;
	lost = ctx->slot->lost;
	pthread_mutex_unlock(&j->mu);
	if (lost)
		return TH_ECONFLICT;
	if (rc < 0)
		TH_LOG(TH_LOG_WARN, "job %s: cannot record progress: %s", ctx->job->id, err.msg);
	return TH_OK;
}

int th_job_set_result(th_job_ctx *ctx, const char *result_json, int64_t pull_id, th_error *err)
{
	char *copy = strdup(result_json ? result_json : "{}");

	if (copy == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	free(ctx->result);
	ctx->result = copy;
	ctx->pull_id = pull_id;
	return TH_OK;
}

const char *th_job_data_dir(const th_job_ctx *ctx)
{
	return ctx->pool->data_dir;
}

th_meta *th_job_meta(const th_job_ctx *ctx)
{
	return ctx->pool->meta;
}

/* --- the import job -------------------------------------------------------------------------- */

static void import_progress(void *payload, uint64_t bytes_read, uint64_t rows)
{
	th_job_progress(payload, bytes_read, rows);
}

static pthread_mutex_t *repo_lock(th_jobs *j, const char *owner, const char *db)
{
	uint64_t h = th_hash64(owner, strlen(owner)) ^ (th_hash64(db, strlen(db)) * 31);

	return &j->repo_mu[h % REPO_STRIPES];
}

/* Read the import's params (DoltHub's JSON) into op, format and the pk array (heap, pointing into
 * *json_out, which the caller deletes). */
static int parse_params(cJSON **json_out, th_import_op *op, th_file_format *fmt, const char ***pk,
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
	if ((*fmt = (th_file_format)name_index(fmt_names, 5, cJSON_GetStringValue(it))) == 0) {
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

int th_jobs_run_import(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err)
{
	th_jobs *j = ctx->pool;
	const char *base = job->branch_name[0] ? job->branch_name : "main";
	cJSON *params = NULL;
	const char **pk = NULL;
	size_t npk = 0;
	th_import_op op = 0;
	th_file_format fmt = 0;
	th_db_info dbi;
	th_buf tmpdir = TH_BUF_INIT, result = TH_BUF_INIT, text = TH_BUF_INIT;
	th_buf report = TH_BUF_INIT;
	th_repo *repo = NULL;
	pthread_mutex_t *lock = NULL;
	char branch[160], commit[41];
	th_oid head;
	th_import_opts opts;
	th_import_result res;
	int64_t pull_id = 0;
	int fd = -1, made_branch = 0, have_db = 0, error;
	th_error ignored;

	(void)payload;
	memset(&dbi, 0, sizeof(dbi));
	if ((error = parse_params(&params, &op, &fmt, &pk, &npk, job, err)) < 0)
		goto cleanup;
	snprintf(branch, sizeof(branch), "%s/import-%.8s", job->creator, job->id);
	if ((error = th_meta_db_get(&dbi, j->meta, job->owner, job->db, err)) < 0)
		goto cleanup;
	have_db = 1;
	if ((error = th_buf_printf(&tmpdir, err, "%s/tmp", j->data_dir)) < 0)
		goto cleanup;
	lock = repo_lock(j, job->owner, job->db);
	pthread_mutex_lock(lock);
	if ((error = th_datadir_repo_open(&repo, j->data_dir, job->owner, job->db, 1, err)) < 0)
		goto cleanup;
	if ((error = th_repo_branch_get(&head, repo, base, err)) < 0) {
		if (error == TH_ENOTFOUND)
			th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", base);
		goto cleanup;
	}
	/* A retried job rebuilds its branch from scratch. */
	th_error_clear(&ignored);
	error = th_repo_branch_delete(repo, branch, &ignored);
	if (error < 0 && error != TH_ENOTFOUND) {
		*err = ignored;
		goto cleanup;
	}
	if ((error = th_repo_branch_cas(repo, branch, &head, NULL, "tablehub: start import", err)) <
	    0)
		goto cleanup;
	made_branch = 1;
	if ((error = th_upload_open(&fd, j->data_dir, job->upload_sha256, err)) < 0)
		goto cleanup;

	memset(&opts, 0, sizeof(opts));
	opts.table = job->table_name;
	opts.op = op;
	opts.pk = pk;
	opts.npk = npk;
	opts.format = fmt;
	opts.branch = branch;
	opts.branch_label = base;
	opts.file_name = job->file_name[0] ? job->file_name : NULL;
	opts.author = job->creator;
	opts.tmpdir = tmpdir.ptr;
	opts.mem_budget = 0;
	opts.progress = import_progress;
	opts.progress_payload = ctx;
	opts.report = &report;
	memset(&res, 0, sizeof(res));
	if ((error = th_import_fd(&res, repo, fd, &opts, err)) < 0) {
		/* The rejected rows go with the failure (th_jobs stores the result of a failed
		 * job). */
		if (report.size)
			th_job_set_result(ctx, report.ptr, 0, &ignored);
		goto cleanup;
	}
	th_job_progress(ctx, job->bytes_total, res.rows_read);

	/* A retry after a crash between the pull and the completion finds its pull again. */
	th_error_clear(&ignored);
	if (th_meta_pull_find_open(&pull_id, j->meta, dbi.id, branch, base, &ignored) < 0) {
		th_buf title = TH_BUF_INIT;
		if ((error = th_buf_printf(&title, err, "Import %s into %s",
		                           job->file_name[0] ? job->file_name : "file",
		                           job->table_name)) < 0 ||
		    (error = th_buf_printf(&text, err,
		                           "Rows added: %" PRIu64 ", modified: %" PRIu64
		                           ", removed: %" PRIu64,
		                           res.added, res.modified, res.removed)) < 0 ||
		    (error = th_meta_pull_create(&pull_id, j->meta, dbi.id, title.ptr, text.ptr,
		                                 job->creator, branch, base, err)) < 0) {
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
	/* A failed import leaves nothing behind: no half-made branch. */
	if (error < 0 && made_branch) {
		th_error_clear(&ignored);
		th_repo_branch_delete(repo, branch, &ignored);
	}
	if (fd >= 0)
		close(fd);
	th_repo_free(repo);
	if (lock)
		pthread_mutex_unlock(lock);
	if (have_db)
		th_db_info_dispose(&dbi);
	th_buf_dispose(&tmpdir);
	th_buf_dispose(&result);
	th_buf_dispose(&text);
	th_buf_dispose(&report);
	free(pk);
	cJSON_Delete(params);
	return error;
}

/* --- the pool -------------------------------------------------------------------------------- */

static void deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* The runner for `kind`, with the mutex held. */
static th_job_runner find_runner(th_jobs *j, const char *kind, void **payload)
{
	size_t i;

	if (j->test_run) {
		*payload = j->test_payload;
		return j->test_run;
	}
	for (i = 0; i < j->nrunners; i++) {
		if (strcmp(j->runners[i].kind, kind) == 0) {
			*payload = j->runners[i].payload;
			return j->runners[i].run;
		}
	}
	*payload = NULL;
	if (strcmp(kind, "merge") == 0)
		return th_pulls_merge_run;
	return strcmp(kind, "import") == 0 ? th_jobs_run_import : NULL;
}

static void run_one(th_jobs *j, struct slot *s, const th_op_info *op)
{
	th_job_ctx ctx = { j, s, op, NULL, 0, 0 };
	th_job_runner run;
	th_error err, err2;
	void *payload;
	int rc;

	th_error_clear(&err);
	th_error_clear(&err2);
	if (op->attempts > TH_JOBS_MAX_ATTEMPTS) {
		char msg[160];
		snprintf(msg, sizeof(msg), "%s was interrupted %d times; %s", op->kind,
		         TH_JOBS_MAX_ATTEMPTS,
		         strcmp(op->kind, "merge") == 0 ? "merge the pull request again"
		                                        : "upload the file again");
		if ((rc = th_meta_op_fail(j->meta, op->id, op->attempts, msg, 0, 0, &err2)) < 0)
			TH_LOG(TH_LOG_ERROR, "job %s: cannot record failure: %s", op->id, err2.msg);
		else
			TH_LOG(TH_LOG_WARN, "job %s failed: %s", op->id, msg);
		return;
	}
	pthread_mutex_lock(&j->mu);
	run = find_runner(j, op->kind, &payload);
	s->active = 1;
	s->lost = 0;
	s->attempt = op->attempts;
	memcpy(s->id, op->id, sizeof(s->id));
	pthread_mutex_unlock(&j->mu);

	TH_LOG(TH_LOG_INFO, "job %s started: %s %s/%s by %s, attempt %d", op->id, op->kind,
	       op->owner, op->db, op->creator, op->attempts);
	if (run == NULL)
		rc = th_error_set(&err, TH_EINVALID, "no runner for '%s' jobs", op->kind);
	else
		rc = run(payload, &ctx, op, &err);

	pthread_mutex_lock(&j->mu);
	s->active = 0;
	pthread_mutex_unlock(&j->mu);

	if (rc == TH_OK) {
		rc = th_meta_op_complete(j->meta, op->id, op->attempts, ctx.result, ctx.pull_id,
		                         &err2);
		if (rc == TH_OK)
			TH_LOG(TH_LOG_INFO, "job %s completed", op->id);
	} else {
		if (err.msg[0] == '\0')
			th_error_set(&err, (th_code)rc, "%s failed (%s)", op->kind,
			             th_code_name(rc));
		/* A runner may leave a report (rejected rows, conflicts) as the result. */
		rc = th_meta_op_fail_with(j->meta, op->id, op->attempts, err.msg, err.line,
		                          err.column, ctx.result, &err2);
		if (rc == TH_OK)
			TH_LOG(TH_LOG_INFO, "job %s failed: %s", op->id, err.msg);
	}
	if (rc == TH_ECONFLICT)
		TH_LOG(TH_LOG_WARN, "job %s: lease lost, result dropped: %s", op->id, err2.msg);
	else if (rc < 0)
		TH_LOG(TH_LOG_ERROR, "job %s: cannot record the outcome: %s", op->id, err2.msg);
	free(ctx.result);
}

static void *worker_main(void *arg)
{
	struct slot *s = arg;
	th_jobs *j = s->pool;

	pthread_mutex_lock(&j->mu);
	while (!j->stopping) {
		unsigned long seq = j->wake_seq;
		th_op_info op;
		th_error err;
		int rc;

		pthread_mutex_unlock(&j->mu);
		th_error_clear(&err);
		rc = th_meta_op_claim(&op, j->meta, j->lease_ms, &err);
		if (rc == TH_OK) {
			run_one(j, s, &op);
			th_op_info_dispose(&op);
			pthread_mutex_lock(&j->mu);
			continue;
		}
		if (rc != TH_ENOTFOUND)
			TH_LOG(TH_LOG_WARN, "job queue: cannot claim a job: %s", err.msg);
		pthread_mutex_lock(&j->mu);
		if (!j->stopping && j->wake_seq == seq) {
			struct timespec ts;
			deadline(&ts, j->poll_ms);
			pthread_cond_timedwait(&j->work_cv, &j->mu, &ts);
		}
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

static void *heartbeat_main(void *arg)
{
	th_jobs *j = arg;
	int64_t every = j->lease_ms / 3 > 0 ? j->lease_ms / 3 : 1;
	char(*ids)[TH_UUID_SIZE] = calloc((size_t)j->nworkers, TH_UUID_SIZE);
	int *attempts = calloc((size_t)j->nworkers, sizeof(int));
	int i, n;

	pthread_mutex_lock(&j->mu);
	while (!j->hb_stop) {
		struct timespec ts;
		deadline(&ts, every);
		pthread_cond_timedwait(&j->hb_cv, &j->mu, &ts);
		if (j->hb_stop || ids == NULL || attempts == NULL)
			continue;
		for (i = n = 0; i < j->nworkers; i++) {
			if (j->slots[i].active && !j->slots[i].lost) {
				memcpy(ids[n], j->slots[i].id, TH_UUID_SIZE);
				attempts[n++] = j->slots[i].attempt;
			}
		}
		pthread_mutex_unlock(&j->mu);
		for (i = 0; i < n; i++) {
			th_error err;
			int rc, k;
			th_error_clear(&err);
			rc = th_meta_op_extend(j->meta, ids[i], attempts[i], j->lease_ms, &err);
			if (rc == TH_OK)
				continue;
			if (rc != TH_ECONFLICT && rc != TH_ENOTFOUND) {
				TH_LOG(TH_LOG_WARN, "job %s: cannot extend lease: %s", ids[i],
				       err.msg);
				continue;
			}
			pthread_mutex_lock(&j->mu);
			for (k = 0; k < j->nworkers; k++)
				if (j->slots[k].active && j->slots[k].attempt == attempts[i] &&
				    strcmp(j->slots[k].id, ids[i]) == 0)
					j->slots[k].lost = 1;
			pthread_mutex_unlock(&j->mu);
		}
		pthread_mutex_lock(&j->mu);
	}
	pthread_mutex_unlock(&j->mu);
	free(ids);
	free(attempts);
	return NULL;
}

int th_jobs_create(th_jobs **out, const char *data_dir, th_meta *meta, int nworkers, th_error *err)
{
	pthread_condattr_t ca;
	th_jobs *j;
	int i;

	if (nworkers < 1 || nworkers > 64)
		return th_error_set(err, TH_EINVALID, "workers must be 1-64, not %d", nworkers);
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if ((j->data_dir = strdup(data_dir)) == NULL ||
	    (j->slots = calloc((size_t)nworkers, sizeof(*j->slots))) == NULL) {
		free(j->data_dir);
		free(j);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	j->meta = meta;
	j->nworkers = nworkers;
	j->lease_ms = TH_JOBS_LEASE_MS;
	j->poll_ms = TH_JOBS_POLL_MS;
	for (i = 0; i < nworkers; i++)
		j->slots[i].pool = j;
	pthread_mutex_init(&j->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->work_cv, &ca);
	pthread_cond_init(&j->hb_cv, &ca);
	pthread_condattr_destroy(&ca);
	for (i = 0; i < REPO_STRIPES; i++)
		pthread_mutex_init(&j->repo_mu[i], NULL);
	*out = j;
	return TH_OK;
}

void th_jobs_set_timing(th_jobs *j, int64_t lease_ms, int64_t poll_ms)
{
	pthread_mutex_lock(&j->mu);
	if (lease_ms > 0)
		j->lease_ms = lease_ms;
	if (poll_ms > 0)
		j->poll_ms = poll_ms;
	pthread_mutex_unlock(&j->mu);
}

int th_jobs_register(th_jobs *j, const char *kind, th_job_runner run, void *payload, th_error *err)
{
	size_t i;
	int error = TH_OK;

	if (kind == NULL || strlen(kind) >= sizeof(j->runners[0].kind))
		return th_error_set(err, TH_EINVALID, "invalid job kind");
	pthread_mutex_lock(&j->mu);
	for (i = 0; i < j->nrunners; i++)
		if (strcmp(j->runners[i].kind, kind) == 0)
			break;
	if (i == MAX_RUNNERS) {
		error = th_error_set(err, TH_ENOMEM, "too many job kinds");
	} else {
		snprintf(j->runners[i].kind, sizeof(j->runners[i].kind), "%s", kind);
		j->runners[i].run = run;
		j->runners[i].payload = payload;
		if (i == j->nrunners)
			j->nrunners++;
	}
	pthread_mutex_unlock(&j->mu);
	return error;
}

void th_jobs_set_runner(th_jobs *j, th_job_runner run, void *payload)
{
	pthread_mutex_lock(&j->mu);
	j->test_run = run;
	j->test_payload = payload;
	pthread_mutex_unlock(&j->mu);
}

int th_jobs_run(th_jobs *j, th_error *err)
{
	int i, n = 0, error;

	pthread_mutex_lock(&j->mu);
	if (j->running) {
		pthread_mutex_unlock(&j->mu);
		return th_error_set(err, TH_EINVALID, "the job pool is already running");
	}
	j->running = 1;
	pthread_mutex_unlock(&j->mu);
	/* This process holds the data dir's lock: whatever is In Progress belonged to a process
	 * that is gone. */
	if ((error = th_meta_op_requeue_running(&n, j->meta, err)) < 0)
		return error;
	if (n > 0)
		TH_LOG(TH_LOG_INFO, "job queue: %d interrupted job(s) re-queued", n);
	if (pthread_create(&j->hb_thread, NULL, heartbeat_main, j) != 0)
		return th_error_set(err, TH_ERROR, "cannot start the heartbeat thread");
	j->hb_started = 1;
	for (i = 0; i < j->nworkers; i++) {
		if (pthread_create(&j->slots[i].thread, NULL, worker_main, &j->slots[i]) != 0)
			return th_error_set(err, TH_ERROR, "cannot start worker thread %d", i);
		j->slots[i].started = 1;
	}
	return TH_OK;
}

int th_jobs_start(th_jobs **out, const char *data_dir, th_meta *meta, int nworkers, th_error *err)
{
	th_jobs *j;
	int error;

	if ((error = th_jobs_create(&j, data_dir, meta, nworkers, err)) < 0)
		return error;
	if ((error = th_jobs_run(j, err)) < 0) {
		th_jobs_stop(j);
		return error;
	}
	*out = j;
	return TH_OK;
}

void th_jobs_wake(th_jobs *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mu);
	j->wake_seq++;
	pthread_cond_broadcast(&j->work_cv);
	pthread_mutex_unlock(&j->mu);
}

void th_jobs_stop(th_jobs *j)
{
	int i;

	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mu);
	j->stopping = 1;
	pthread_cond_broadcast(&j->work_cv);
	pthread_mutex_unlock(&j->mu);
	for (i = 0; i < j->nworkers; i++)
		if (j->slots[i].started)
			pthread_join(j->slots[i].thread, NULL);
	/* The heartbeat outlives the workers: it renews the leases of jobs still finishing. */
	pthread_mutex_lock(&j->mu);
	j->hb_stop = 1;
	pthread_cond_broadcast(&j->hb_cv);
	pthread_mutex_unlock(&j->mu);
	if (j->hb_started)
		pthread_join(j->hb_thread, NULL);
	for (i = 0; i < REPO_STRIPES; i++)
		pthread_mutex_destroy(&j->repo_mu[i]);
	pthread_cond_destroy(&j->work_cv);
	pthread_cond_destroy(&j->hb_cv);
	pthread_mutex_destroy(&j->mu);
	free(j->slots);
	free(j->data_dir);
	free(j);
}
