/* jobs.h: the job queue's workers (src/jobs.c): import (and later merge) operations run on a pool
 * of threads, claimed from the operations table of meta.sqlite with a lease.
 *
 * A request enqueues an operation (a Pending row) and wakes the pool; a worker claims it, runs it
 * and ends it Completed or Failed. While a job runs, the pool's heartbeat extends its lease, so the
 * lease expires only when the process died; then the next process (or any worker polling, about
 * once a second) claims it again. A job claimed more than TH_JOBS_MAX_ATTEMPTS times is failed
 * ("import was interrupted 3 times; upload the file again"). Imports are idempotent: a retry
 * rebuilds its branch from scratch. No job stays Pending or In Progress forever.
 */
#ifndef TABLEHUB_JOBS_H
#define TABLEHUB_JOBS_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "import.h"
#include "meta.h"

#define TH_JOBS_MAX_ATTEMPTS 3
#define TH_JOBS_LEASE_MS 30000 /* default lease; the heartbeat renews it every third of it */
#define TH_JOBS_POLL_MS 1000   /* idle workers look for expired leases this often */

typedef struct th_jobs th_jobs;

/* --- enqueueing ------------------------------------------------------------------------------ */

/* An import as DoltHub's upload params describe it. Strings are copied. */
typedef struct th_import_params {
	const char *owner;
	const char *db;
	const char *creator;       /* the user whose token uploaded the file */
	const char *upload_sha256; /* the file in DIR/uploads (th_upload_finish) */
	uint64_t bytes_total;      /* its size */
	const char *file_name;     /* "lacma.csv" */
	const char *table_name;
	const char *branch_name; /* NULL or "" = "main" */
	th_import_op op;
	th_file_format format;
	const char *const *pk; /* primary-key column names; npk 0 = keyless */
	size_t npk;
} th_import_params;

/* Insert a Pending import operation (kind "import"; params stored as DoltHub's JSON: tableName,
 * fileName, branchName, fileType, importOp, primaryKeys) and write its uuid to op_id_out. Does not
 * wake workers: call th_jobs_wake. Returns TH_OK, TH_EINVALID (missing owner, db, creator, table,
 * a bad sha-256, op or format) or TH_ESTORE. */
int th_jobs_enqueue_import(char op_id_out[TH_UUID_SIZE], th_meta *m, const th_import_params *p,
                           th_error *err);

/* --- the pool -------------------------------------------------------------------------------- */

/* Make a pool of nworkers (1-64) threads over data dir DIR and `meta` (borrowed: it must outlive
 * the pool), and start it: operations left In Progress by an earlier process are re-queued, then
 * the workers start. The caller holds the data dir's lock. *out is the caller's: th_jobs_stop.
 * Returns TH_OK, TH_EINVALID, TH_ENOMEM or TH_ESTORE. */
int th_jobs_start(th_jobs **out, const char *data_dir, th_meta *meta, int nworkers, th_error *err);

/* As th_jobs_start without starting anything, so runners and timing can be set first; then
 * th_jobs_run. (th_jobs_start = th_jobs_create + th_jobs_run.) */
int th_jobs_create(th_jobs **out, const char *data_dir, th_meta *meta, int nworkers, th_error *err);
/* Re-queue the previous process's running operations and start the threads. Returns TH_OK,
 * TH_ESTORE, or TH_ERROR (a thread could not start). Once only. Whatever the result, the pool is
 * ended with th_jobs_stop. */
int th_jobs_run(th_jobs *j, th_error *err);

/* Stop taking jobs, wait for the running ones to end (an import is not interrupted), join the
 * threads and free the pool. Accepts NULL. */
void th_jobs_stop(th_jobs *j);

/* Tell idle workers there is work (after th_jobs_enqueue_import). Accepts NULL. */
void th_jobs_wake(th_jobs *j);

/* Lease length and idle poll interval, in ms (defaults TH_JOBS_LEASE_MS, TH_JOBS_POLL_MS). Call
 * before th_jobs_run. */
void th_jobs_set_timing(th_jobs *j, int64_t lease_ms, int64_t poll_ms);

/* --- runners --------------------------------------------------------------------------------- */

/* The running job, as a runner sees it. */
typedef struct th_job_ctx th_job_ctx;

/* Record progress (bytes of input read, rows processed) and extend the lease. Returns TH_OK, or
 * TH_ECONFLICT when the job was lost (its lease expired and someone else claimed it): the runner
 * should then give up. Other failures are logged and ignored (TH_OK). */
int th_job_progress(th_job_ctx *ctx, uint64_t bytes_read, uint64_t rows);

/* The result to store when the runner returns TH_OK: JSON object text (copied) and the pull id (0
 * = none). Returns TH_OK or TH_ENOMEM. */
int th_job_set_result(th_job_ctx *ctx, const char *result_json, int64_t pull_id, th_error *err);

/* The pool's data dir and meta store (borrowed). */
const char *th_job_data_dir(const th_job_ctx *ctx);
th_meta *th_job_meta(const th_job_ctx *ctx);

/* A runner: do `job` (borrowed, read-only) and return TH_OK (the operation ends Completed with the
 * result set by th_job_set_result) or an error code with err set (it ends Failed with err's
 * message, line and column). */
typedef int (*th_job_runner)(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err);

/* Run operations of `kind` ("merge") with `run`. "import" has its built-in runner. Call before
 * th_jobs_run (or a job of that kind claimed earlier fails with "no runner for 'merge' jobs").
 * Returns TH_OK, TH_EINVALID (kind too long) or TH_ENOMEM. */
int th_jobs_register(th_jobs *j, const char *kind, th_job_runner run, void *payload, th_error *err);

/* TEST HOOK: run every job, whatever its kind, with `run` instead of the registered runners (NULL
 * restores them). For tests of the queue mechanics (claims, leases, retries, recovery). */
void th_jobs_set_runner(th_jobs *j, th_job_runner run, void *payload);

/* The built-in import runner (what kind "import" runs): open the database's repository, make the
 * branch <creator>/import-<first 8 hex of the id> from branch_name (deleting a stale one), import
 * the upload onto it with th_import_fd, open a pull request into branch_name and set the result
 * {"commit", "branch", "to_branch", "pull_id", "rows_added", "rows_modified", "rows_removed",
 * "rows"} (rows = rows in the table afterwards). On failure the import branch is deleted. Exposed
 * so a test hook can wrap it. */
int th_jobs_run_import(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err);

#endif
