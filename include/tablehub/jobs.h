/* jobs.h: the job queue (src/jobs.c): operations of every kind (import, merge, and those to come)
 * run on a pool of threads, claimed from the operations table of meta.sqlite with a lease.
 *
 * A request enqueues an operation (a Pending row) and wakes the pool; a worker claims it, runs it
 * with the runner registered for its kind, and ends it Completed or Failed. While a job runs, the
 * pool's heartbeat extends its lease, so the lease expires only when the process died; then the
 * next process (or any worker polling, about once a second) claims it again. A job claimed more
 * than TH_JOBS_MAX_ATTEMPTS times is failed ("import was interrupted 3 times; upload the file
 * again"). Every kind is idempotent on retry: an import rebuilds its branch from scratch, a merge
 * that finds its commit already made completes with it. No job stays Pending or In Progress
 * forever.
 *
 * A job can be stopped while it runs: by a cancel (th_meta_op_cancel, meta_control.h: a Pending
 * operation ends at once, a running one is asked to stop) or by its kind's time cap. Runners see
 * both through th_job_check, which they call between their steps and in their long loops; a
 * runner that was told to stop undoes what it made and fails with the reason ("cancelled by
 * alice", "took longer than 3600 s"), so a stopped job commits nothing. A runner past the point
 * where its work is visible (a merge that moved its target branch) finishes instead.
 *
 * Operation kinds are a table (th_job_kinds, src/job_kinds.c), one th_job_kind each: its name, its
 * runner, whether it writes the database's repository (the queue then holds that database's
 * writer lock while it runs) and what to tell the user when it was interrupted too often. Adding a
 * kind is one file that defines `const th_job_kind th_job_kind_<name>` and one line in that table.
 */
#ifndef TABLEHUB_JOBS_H
#define TABLEHUB_JOBS_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "fetch.h"
#include "import.h"
#include "meta.h"
#include "repo.h"

#define TH_JOBS_MAX_ATTEMPTS 3
#define TH_JOBS_LEASE_MS 30000 /* default lease; the heartbeat renews it every third of it */
#define TH_JOBS_POLL_MS 1000   /* idle workers look for expired leases this often */
#define TH_JOBS_MAX_SECONDS                                                                        \
	3600 /* default time cap of a run of any kind (th_jobs_set_max_seconds) */

typedef struct th_jobs th_jobs;

/* --- kind "import" (src/import_job.c) ------------------------------------------------------- */

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
	const th_format *format;
	const char *const *pk; /* primary-key column names; npk 0 = keyless */
	size_t npk;
	/* An import from a URL: upload_sha256 is NULL and the job fetches the file first
	 * (fetch.h), with these caps and this rule for addresses. */
	const char *url;
	th_fetch_opts fetch;
	const char *sheet_name;   /* Xlsx: the sheet to read; NULL = the first */
	const char *const *nulls; /* nullValues: markers read as NULL; nnulls 0 = none */
	size_t nnulls;
	/* NULL or "": none; else the file record (meta_files.h) the import reads, linked to the
	 * operation in the commit that creates it. */
	const char *file_id;
	/* NULL: the import starts from the branch's head when it runs; else from this commit, the
	 * head when the upload was taken, so what lands on the branch while the import waits in
	 * the queue is neither undone by it (a Replace) nor shown as its change. */
	const th_oid *base;
} th_import_params;

/* Insert a Pending import operation (kind "import"; params stored as DoltHub's JSON: tableName,
 * fileName, branchName, fileType, importOp, primaryKeys, when given sheetName and nullValues, for
 * a URL import "url" and "fetch", and "baseCommit" for a base) and write its uuid to op_id_out.
 * Does not wake workers: call th_jobs_wake. Returns TH_OK, TH_EINVALID (missing owner, db, creator,
 * table, a bad sha-256 or URL, op or format) or TH_ESTORE. */
int th_jobs_enqueue_import(char op_id_out[TH_UUID_SIZE], th_meta *m, const th_import_params *p,
                           th_error *err);

/* --- kind "repack" (src/repack_job.c) ------------------------------------------------------- */

/* Count the loose objects and packs of owner/db's repository under data_dir and, when either count
 * reached its threshold (loose_max, packs_max; 0 = never) and no repack of that database is
 * unfinished, queue a Pending "repack" operation created by the owner. *queued_out = 1 when one
 * was queued. Does not wake workers. Returns TH_OK, TH_ENOTFOUND (no such repository) or
 * TH_ESTORE. */
int th_repack_maybe_enqueue(int *queued_out, th_meta *m, const char *data_dir, const char *owner,
                            const char *db, uint64_t loose_max, uint64_t packs_max, th_error *err);

/* --- the pool -------------------------------------------------------------------------------- */

/* Make a pool of nworkers (1-64) threads over data dir DIR and `meta` (borrowed: it must outlive
 * the pool), and start it: operations left In Progress by an earlier process are re-queued, then
 * the workers start. The caller holds the data dir's lock. *out is the caller's: th_jobs_stop.
 * Returns TH_OK, TH_EINVALID, TH_ENOMEM or TH_ESTORE. */
int th_jobs_start(th_jobs **out, const char *data_dir, th_meta *meta, int nworkers, th_error *err);

/* As th_jobs_start without starting anything: the pool has the kinds of th_job_kinds registered,
 * and kinds and timing may be changed before th_jobs_run. (th_jobs_start = th_jobs_create +
 * th_jobs_run.) */
int th_jobs_create(th_jobs **out, const char *data_dir, th_meta *meta, int nworkers, th_error *err);
/* Re-queue the previous process's running operations and start the threads. Returns TH_OK,
 * TH_ESTORE, or TH_ERROR (a thread could not start). Once only. Whatever the result, the pool is
 * ended with th_jobs_stop. */
int th_jobs_run(th_jobs *j, th_error *err);

/* Stop taking jobs, wait for the running ones to end (a job is not interrupted), join the
 * threads and free the pool. Accepts NULL. */
void th_jobs_stop(th_jobs *j);

/* Tell idle workers there is work (after an enqueue). Accepts NULL. */
void th_jobs_wake(th_jobs *j);

/* How many operations this pool has finished (completed or failed, the outcome stored) since it
 * was made: a number that changes whenever an operation it ran ended, so that a cached view of a
 * running operation can tell it may be stale. 0 for NULL. */
unsigned long th_jobs_finished(th_jobs *j);

/* Lease length and idle poll interval, in ms (defaults TH_JOBS_LEASE_MS, TH_JOBS_POLL_MS). Call
 * before th_jobs_run. */
void th_jobs_set_timing(th_jobs *j, int64_t lease_ms, int64_t poll_ms);

/* Repack repositories off the request path: after each operation of a kind that writes a
 * repository (repack itself aside), still under the writer lock, the pool calls
 * th_repack_maybe_enqueue with these thresholds (0 = never; both 0, the default, turn it off) and
 * wakes a worker when it queued one. Call before th_jobs_run. */
void th_jobs_set_repack(th_jobs *j, uint64_t loose_max, uint64_t packs_max);

/* The time cap of one run of operations of kind `kind` (NULL = of every kind, also those
 * registered later), in seconds from the moment the runner starts; 0 = none. Default
 * TH_JOBS_MAX_SECONDS. Past it th_job_check tells the runner to stop and the operation ends
 * Failed "took longer than N s". Applies to runs that start after the call. Returns TH_OK,
 * TH_EINVALID (negative) or TH_ENOTFOUND (no such kind registered). */
int th_jobs_set_max_seconds(th_jobs *j, const char *kind, int64_t seconds, th_error *err);

/* --- operation kinds and their runners -------------------------------------------------------- */

/* The running job, as a runner sees it. */
typedef struct th_job_ctx th_job_ctx;

/* A runner: do `job` (borrowed, read-only) and return TH_OK (the operation ends Completed with the
 * result set by th_job_set_result) or an error code with err set (it ends Failed with err's
 * message, line and column, and the result set, if any, as its report). A runner is retried after
 * a crash at any point, so it must find and finish what an earlier attempt left. */
typedef int (*th_job_runner)(void *payload, th_job_ctx *ctx, const th_op_info *job, th_error *err);

enum {
	/* The kind writes the repository of the operation's owner/db: the queue holds that
	 * database's writer lock while the runner runs, and th_job_repo_open opens it writable. */
	TH_JOB_WRITES_REPO = 1 << 0,
	/* With TH_JOB_WRITES_REPO: the kind adds objects and moves only a branch of its own (an
	 * import's <creator>/import-<id>), never one another job or user moves. The queue takes the
	 * writer lock shared: such jobs of one database run side by side, and an exclusive writer
	 * (a merge, a repack, whose `git gc --prune=now` must not see objects a writer has not
	 * referenced yet) waits for all of them, and they for it. */
	TH_JOB_OWN_BRANCH = 1 << 1,
};

/* What the queue knows of an operation kind. */
typedef struct th_job_kind {
	const char *name;     /* the operations table's `kind` ("import"), 1-15 bytes */
	const char *api_name; /* its name in the API: DoltHub's operationType ("Import") */
	th_job_runner run;
	unsigned flags; /* TH_JOB_WRITES_REPO, TH_JOB_OWN_BRANCH */
	/* What a user does when the job was interrupted too often; the message is "<kind> was
	 * interrupted 3 times; <retry_hint>" ("upload the file again"). */
	const char *retry_hint;
	/* NULL, or for a TH_JOB_WRITES_REPO kind: whether operation `op` takes the writer lock
	 * shared (1) or alone (0), from its params, in place of TH_JOB_OWN_BRANCH (a repack that
	 * only rolls packs up deletes nothing, and runs beside imports). */
	int (*lock_shared)(const th_op_info *op);
} th_job_kind;

/* The kinds tablehub runs (src/job_kinds.c), NULL-terminated; th_jobs_create registers each. */
extern const th_job_kind *const th_job_kinds[];

/* Run operations of kind->name with `kind` (borrowed: it must outlive the pool, as a static does),
 * its runner called with `payload`; a kind of the same name registered before is replaced. Call
 * before th_jobs_run (an operation of an unknown kind fails with "no runner for 'x' jobs").
 * Returns TH_OK, TH_EINVALID (no runner, or a name empty or too long) or TH_ENOMEM (too many
 * kinds). */
int th_jobs_register(th_jobs *j, const th_job_kind *kind, void *payload, th_error *err);

/* Record progress (bytes of input read, rows processed) and extend the lease. Returns TH_OK, or
 * TH_ECONFLICT when the job was lost (its lease expired and someone else claimed it): the runner
 * should then give up. Other failures are logged and ignored (TH_OK). */
int th_job_progress(th_job_ctx *ctx, uint64_t bytes_read, uint64_t rows);

/* Should the runner go on? Returns TH_OK, or, once the job was cancelled (th_meta_op_cancel), ran
 * past its kind's time cap or lost its lease, an error with err (may be NULL) set to the reason:
 * TH_ECONFLICT "cancelled by <user>" (or the lost lease), TH_ELIMIT "took longer than N s". The
 * answer is sticky. A runner then stops, undoes what it made and returns that error. Cheap (the
 * store is asked about cancels at most every 200 ms): call it between steps and every few hundred
 * rows. */
int th_job_check(th_job_ctx *ctx, th_error *err);

/* The result to store when the runner returns TH_OK: JSON object text (copied) and the pull id (0
 * = none). Returns TH_OK or TH_ENOMEM. */
int th_job_set_result(th_job_ctx *ctx, const char *result_json, int64_t pull_id, th_error *err);

/* The pool's data dir and meta store (borrowed). */
const char *th_job_data_dir(const th_job_ctx *ctx);
th_meta *th_job_meta(const th_job_ctx *ctx);

/* Open the repository of the job's owner/db into *out (the caller's: th_repo_free): writable for
 * a kind that writes it (the queue holds the database's writer lock meanwhile), with its new
 * objects batched into one pack per branch move (th_repo_batch_begin), read-only for others. The
 * one way a runner opens its repository. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_job_repo_open(th_repo **out, th_job_ctx *ctx, th_error *err);

#endif
