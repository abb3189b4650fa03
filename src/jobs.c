/* jobs.c: the job queue: its worker pool, the registry of operation kinds and the per-database
 * writer lock (see include/tablehub/jobs.h). What each kind does lives in its own file
 * (import_job.c, merge_job.c), listed in job_kinds.c.
 *
 * DESIGN
 * - The queue is the operations table in meta.sqlite; nothing about pending work lives only in
 *   memory. An enqueue (th_jobs_enqueue_import, th_pulls_enqueue_merge) writes a Pending row;
 *   th_jobs_wake signals a condition variable so an idle worker claims it at once. Idle workers
 *   also wake every poll interval (1 s), which is how a job whose lease expired (its process
 *   died) is picked up again without any signal.
 * - Claims are one atomic UPDATE in the store, so workers of this process and of any other
 *   process on the same data dir never run one attempt twice. Each claim bumps `attempts`, the
 *   fencing token: progress, completion and failure are accepted only from the attempt that
 *   holds it.
 * - Kinds are registered, never hard-coded: th_jobs_create registers the table th_job_kinds, and
 *   tests register kinds of their own to drive the queue. A claimed job runs the runner of its
 *   kind; a kind nobody registered fails the job.
 * - Writers: for a kind with TH_JOB_WRITES_REPO the queue takes the database's writer lock (a
 *   read-write lock of owner/db's own, from a small table, while some worker uses it) around the
 *   runner, so two jobs never write one repository at once while different databases are written
 *   side by side, and th_job_repo_open opens the repository writable only for such kinds. A kind
 *   that also has TH_JOB_OWN_BRANCH (an import: new objects and a branch nobody else moves) takes
 *   it shared, so imports into one database run side by side; the others take it exclusive. Writes
 * still move refs by compare-and-swap, so a writer outside the queue is detected, never lost.
 * - Several nodes (meta_coord.h): when the store is shared (PostgreSQL), a writer also takes the
 *   database's lock across nodes (th_meta_dblock_take) once it holds the process's own, and
 *   releases it after its repack check; th_jobs_wake also sends a notice to every node, and a
 *   listener thread turns the notices it gets into local wakeups, so an operation queued through
 *   any node is claimed at once by whichever node has an idle worker. On SQLite the store is this
 *   process's alone and neither happens.
 * - Leases are kept alive by one heartbeat thread, which renews the lease of every running job a
 *   third of the way through it, and by the runners' progress calls. So a lease expires only when
 *   the process stops (crash, kill -9, power loss) and never because a phase of an import
 *   (sorting, writing chunks) takes long without reporting progress.
 * - th_jobs_run re-queues the jobs the previous process left In Progress by expiring their leases,
 *   so they are retried at once instead of after the old lease ran out. A job claimed more than
 *   TH_JOBS_MAX_ATTEMPTS times is failed with its kind's hint telling the user what to do. Every
 *   kind's runner is idempotent, so a retry after a crash at any point is safe.
 * - Repacks: after a writer ran, while the lock is still held, the repository's loose objects and
 *   packs are counted (th_jobs_set_repack's thresholds) and a "repack" operation is queued when
 *   they passed them (repack_job.c); it runs later, on a worker, under the same lock.
 * - Stopping a job: a cancel is a row in the store (meta_control.h), so it reaches the worker
 *   whatever process took the request; time caps are per kind, counted from the start of the run.
 *   Runners ask th_job_check, which reads the clock every call and the store at most every
 *   CANCEL_POLL_MS, and the answer is sticky. A thread is never interrupted: a runner stops at its
 *   next check and undoes its work itself.
 * - Threads: th_jobs_stop sets `stopping`, wakes everyone and joins the workers (each finishes the
 *   job it runs), then stops the heartbeat. A job's result or failure is written by the worker that
 *   ran it; nothing else writes an operation this pool claimed.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tablehub/datadir.h"
#include "tablehub/ids.h"
#include "tablehub/jobs.h"
#include "tablehub/log.h"
#include "tablehub/meta_control.h"
#include "tablehub/meta_coord.h"
#include "tablehub/text.h"

#define MAX_KINDS 16
/* Writer locks in use at once: a worker holds at most one, and there are at most 64 workers. */
#define REPO_LOCKS 64

/* A registered kind, the payload its runner gets and its time cap (ms; 0 = none). */
struct kind {
	const th_job_kind *kind;
	void *payload;
	int64_t max_ms;
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
	int64_t default_max_ms;              /* the time cap of kinds registered from now on */
	uint64_t repack_loose, repack_packs; /* th_jobs_set_repack's thresholds */

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t work_cv;
	pthread_cond_t hb_cv;
	int running;  /* th_jobs_run was called */
	int stopping; /* workers exit */
	int hb_stop;  /* the heartbeat exits */
	unsigned long wake_seq;
	unsigned long finished; /* operations ended, their outcome stored (th_jobs_finished) */
	struct slot *slots;
	pthread_t hb_thread;
	int hb_started;
	pthread_t listen_thread; /* a shared store's notices to wakeups (listen_main) */
	int listen_started;
	struct kind kinds[MAX_KINDS];
	size_t nkinds;

	/* The writer locks of the databases being written or waited for, one per database
	 * (repo_lock); an entry with no users is free. */
	struct repo_lock {
		pthread_rwlock_t rw; /* shared for TH_JOB_OWN_BRANCH kinds, else exclusive */
		int users;           /* workers holding or waiting for it; guarded by th_jobs.mu */
		char owner[sizeof(((th_op_info *)NULL)->owner)];
		char db[sizeof(((th_op_info *)NULL)->db)];
	} repo_locks[REPO_LOCKS];
};

struct th_job_ctx {
	th_jobs *pool;
	struct slot *slot;
	const th_op_info *job;
	const th_job_kind *kind;
	char *result;
	int64_t pull_id;
	int64_t progress_ms; /* when progress was last written */
	/* th_job_check: the attempt's start and time cap (monotonic ms), when the store was last
	 * asked for a cancel request, and the reason to stop once one was found (sticky). */
	int64_t started_ms, max_ms, cancel_ms;
	int stopped;
	th_error stop;
};

/* Progress is written at most this often: each write is a metadata commit (lazy: it does not wait
 * for the disk, but it takes the connection's lock), and a poll needs no finer grain. */
#define PROGRESS_INTERVAL_MS 500
/* th_job_check asks the store for a cancel request at most this often: a runner may check every
 * few hundred rows, and a cancel needs no faster answer than this. */
#define CANCEL_POLL_MS 200
/* The listener of a shared store's notices waits this long at most, then looks at `stopping`. */
#define LISTEN_WAIT_MS 500

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

int th_job_check(th_job_ctx *ctx, th_error *err)
{
	th_jobs *j = ctx->pool;
	int64_t now = mono_ms();
	char by[65];
	th_error e;
	int requested = 0, lost;

	if (ctx->stopped)
		goto stop;
	pthread_mutex_lock(&j->mu);
	lost = ctx->slot->lost;
	pthread_mutex_unlock(&j->mu);
	if (lost) {
		th_error_set(&ctx->stop, TH_ECONFLICT,
		             "the operation's lease was lost to another attempt");
		goto stopped;
	}
	if (ctx->max_ms > 0 && now - ctx->started_ms > ctx->max_ms) {
		th_error_set(&ctx->stop, TH_ELIMIT, "took longer than %lld s",
		             (long long)(ctx->max_ms / 1000));
		goto stopped;
	}
	if (ctx->cancel_ms != 0 && now - ctx->cancel_ms < CANCEL_POLL_MS)
		return TH_OK;
	ctx->cancel_ms = now;
	th_error_clear(&e);
	if (th_meta_op_cancel_requested(&requested, by, j->meta, ctx->job->id, &e) < 0) {
		/* The store will answer next time; the job goes on meanwhile. */
		TH_LOG(TH_LOG_WARN, "job %s: cannot read cancel requests: %s", ctx->job->id, e.msg);
		return TH_OK;
	}
	if (!requested)
		return TH_OK;
	th_error_set(&ctx->stop, TH_ECONFLICT, TH_OP_CANCELLED_FMT, by);
stopped:
	ctx->stopped = 1;
stop:
	if (err)
		*err = ctx->stop;
	return ctx->stop.code;
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

int th_job_repo_open(th_repo **out, th_job_ctx *ctx, th_error *err)
{
	int writer = (ctx->kind->flags & TH_JOB_WRITES_REPO) != 0, error;

	if ((error = th_datadir_repo_open(out, ctx->pool->data_dir, ctx->job->owner, ctx->job->db,
	                                  writer, err)) < 0)
		return error;
	/* A writer's new objects go to disk as one pack when it moves a branch (repo.h). */
	if (writer && (error = th_repo_batch_begin(*out, err)) < 0) {
		th_repo_free(*out);
		*out = NULL;
	}
	return error;
}

/* --- the writer lock of a database ------------------------------------------------------------ */

/* The writer lock of owner/db, for a worker to lock: its own read-write lock, shared by no other
 * database (two databases never take turns), for as long as some worker holds or waits for it.
 * The caller gives its use back with repo_lock_drop after unlocking it. Exclusive writers are
 * preferred: one waiting keeps new shared holders out, so a merge is not starved by a stream of
 * imports. */
static pthread_rwlock_t *repo_lock(th_jobs *j, const char *owner, const char *db)
{
	struct repo_lock *l, *free_l = NULL;
	int i;

	pthread_mutex_lock(&j->mu);
	for (i = 0; i < REPO_LOCKS; i++) {
		l = &j->repo_locks[i];
		if (l->users == 0) {
			if (free_l == NULL)
				free_l = l;
		} else if (strcmp(l->owner, owner) == 0 && strcmp(l->db, db) == 0) {
			break;
		}
	}
	if (i == REPO_LOCKS) { /* a free one is left: each of <= 64 workers uses one at most */
		l = free_l;
		snprintf(l->owner, sizeof(l->owner), "%s", owner);
		snprintf(l->db, sizeof(l->db), "%s", db);
	}
	l->users++;
	pthread_mutex_unlock(&j->mu);
	return &l->rw;
}

static void repo_lock_drop(th_jobs *j, pthread_rwlock_t *lock)
{
	int i;

	pthread_mutex_lock(&j->mu);
	for (i = 0; i < REPO_LOCKS; i++)
		if (&j->repo_locks[i].rw == lock)
			j->repo_locks[i].users--;
	pthread_mutex_unlock(&j->mu);
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

/* The registered kind named `name`, with the mutex held; NULL if none. */
static const struct kind *find_kind(const th_jobs *j, const char *name)
{
	size_t i;

	for (i = 0; i < j->nkinds; i++)
		if (strcmp(j->kinds[i].kind->name, name) == 0)
			return &j->kinds[i];
	return NULL;
}

/* After a writer ran and its outcome was recorded: queue a repack when the repository's objects
 * passed the thresholds. Not under the writer lock: a repack running meanwhile only makes the
 * count stale, and a repack already waiting or running is not queued again. A failure costs
 * only the repack: it is logged. */
static void after_write(th_jobs *j, const th_op_info *op)
{
	th_error err;
	int queued = 0;

	if ((j->repack_loose == 0 && j->repack_packs == 0) || strcmp(op->kind, "repack") == 0)
		return;
	th_error_clear(&err);
	if (th_repack_maybe_enqueue(&queued, j->meta, j->data_dir, op->owner, op->db,
	                            j->repack_loose, j->repack_packs, &err) < 0)
		TH_LOG(TH_LOG_WARN, "job %s: cannot count %s/%s's objects for a repack: %s", op->id,
		       op->owner, op->db, err.msg);
	else if (queued)
		th_jobs_wake(j);
}

static void run_one(th_jobs *j, struct slot *s, const th_op_info *op)
{
	th_job_ctx ctx;
	const struct kind *k;
	pthread_rwlock_t *lock = NULL;
	int wrote = 0; /* a writer kind ran: count the repository's objects after */
	th_meta_dblock *held = NULL;
	th_job_runner run = NULL;
	void *payload = NULL;
	th_error err, err2;
	int rc = TH_OK;

	memset(&ctx, 0, sizeof(ctx));
	ctx.pool = j;
	ctx.slot = s;
	ctx.job = op;
	th_error_clear(&err);
	th_error_clear(&err2);
	pthread_mutex_lock(&j->mu);
	if ((k = find_kind(j, op->kind)) != NULL) {
		ctx.kind = k->kind;
		ctx.max_ms = k->max_ms;
		run = k->kind->run;
		payload = k->payload;
	}
	pthread_mutex_unlock(&j->mu);
	if (op->attempts > TH_JOBS_MAX_ATTEMPTS) {
		char msg[160];
		snprintf(msg, sizeof(msg), "%s was interrupted %d times; %s", op->kind,
		         TH_JOBS_MAX_ATTEMPTS,
		         ctx.kind && ctx.kind->retry_hint ? ctx.kind->retry_hint
		                                          : "start it again");
		if ((rc = th_meta_op_fail(j->meta, op->id, op->attempts, msg, 0, 0, &err2)) < 0)
			TH_LOG(TH_LOG_ERROR, "job %s: cannot record failure: %s", op->id, err2.msg);
		else
			TH_LOG(TH_LOG_WARN, "job %s failed: %s", op->id, msg);
		return;
	}
	pthread_mutex_lock(&j->mu);
	s->active = 1;
	s->lost = 0;
	s->attempt = op->attempts;
	memcpy(s->id, op->id, sizeof(s->id));
	pthread_mutex_unlock(&j->mu);

	TH_LOG(TH_LOG_INFO, "job %s started: %s %s/%s by %s, attempt %d", op->id, op->kind,
	       op->owner, op->db, op->creator, op->attempts);
	if (run == NULL) {
		rc = th_error_set(&err, TH_EINVALID, "no runner for '%s' jobs", op->kind);
	} else {
		/* The slot is active while it waits, so the heartbeat keeps its lease. The time cap
		 * counts from the start of the run, not of the wait. */
		if (ctx.kind->flags & TH_JOB_WRITES_REPO) {
			int shared = ctx.kind->lock_shared
			                     ? ctx.kind->lock_shared(op) != 0
			                     : (ctx.kind->flags & TH_JOB_OWN_BRANCH) != 0;
			lock = repo_lock(j, op->owner, op->db);
			wrote = 1;
			if (shared)
				pthread_rwlock_rdlock(lock);
			else
				pthread_rwlock_wrlock(lock);
			rc = th_meta_dblock_take(&held, j->meta, op->owner, op->db, shared, &err);
		}
		ctx.started_ms = mono_ms();
		/* A first attempt cancelled while it waited for the lock stops before it starts; a
		 * retry runs, so that its runner can clear what the dead attempt left. */
		if (rc == TH_OK && (op->attempts > 1 || (rc = th_job_check(&ctx, &err)) == TH_OK))
			rc = run(payload, &ctx, op, &err);
		if (lock) {
			th_meta_dblock_release(j->meta, held);
			pthread_rwlock_unlock(lock);
			repo_lock_drop(j, lock);
		}
	}

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
		/* What the user polls and the log keep: a file a runner's error quotes by its full
		 * path is named by its place in the repository (or its own name) only. */
		th_scrub_paths(err.msg);
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
	/* Counting the objects (a few directory reads) waits until the outcome is recorded: a poll
	 * sees Completed that much sooner. */
	if (wrote)
		after_write(j, op);
	pthread_mutex_lock(&j->mu);
	j->finished++;
	pthread_mutex_unlock(&j->mu);
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

/* Wake this process's idle workers. */
static void wake_local(th_jobs *j)
{
	pthread_mutex_lock(&j->mu);
	j->wake_seq++;
	pthread_cond_broadcast(&j->work_cv);
	pthread_mutex_unlock(&j->mu);
}

/* On a shared store: every notice of queued work, from any node, wakes the idle workers. Each
 * wait lasts at most LISTEN_WAIT_MS, so that th_jobs_stop is heard soon; a store that cannot be
 * reached is retried after a poll interval (the workers' poll goes on meanwhile). */
static void *listen_main(void *arg)
{
	th_jobs *j = arg;
	int64_t failed_ms = 0;

	for (;;) {
		th_error err;
		int rc;

		pthread_mutex_lock(&j->mu);
		if (!j->stopping && failed_ms != 0) {
			struct timespec ts;
			deadline(&ts, j->poll_ms);
			pthread_cond_timedwait(&j->work_cv, &j->mu, &ts);
		}
		if (j->stopping) {
			pthread_mutex_unlock(&j->mu);
			break;
		}
		pthread_mutex_unlock(&j->mu);
		th_error_clear(&err);
		rc = th_meta_work_wait(j->meta, LISTEN_WAIT_MS, &err);
		if (rc == 1)
			wake_local(j);
		if (rc >= 0) {
			failed_ms = 0;
			continue;
		}
		/* Said once per outage, not once a second. */
		if (failed_ms == 0)
			TH_LOG(TH_LOG_WARN, "job queue: cannot wait for notices of work: %s",
			       err.msg);
		failed_ms = mono_ms();
	}
	return NULL;
}

int th_jobs_create(th_jobs **out, const char *data_dir, th_meta *meta, int nworkers, th_error *err)
{
	pthread_condattr_t ca;
	pthread_rwlockattr_t rwa;
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
	j->default_max_ms = (int64_t)TH_JOBS_MAX_SECONDS * 1000;
	for (i = 0; i < nworkers; i++)
		j->slots[i].pool = j;
	pthread_mutex_init(&j->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->work_cv, &ca);
	pthread_cond_init(&j->hb_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_rwlockattr_init(&rwa);
	/* glibc's default lets readers in while a writer waits; a writer must not starve. */
	pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (i = 0; i < REPO_LOCKS; i++)
		pthread_rwlock_init(&j->repo_locks[i].rw, &rwa);
	pthread_rwlockattr_destroy(&rwa);
	for (i = 0; th_job_kinds[i] != NULL; i++) {
		int error = th_jobs_register(j, th_job_kinds[i], NULL, err);
		if (error < 0) {
			th_jobs_stop(j);
			return error;
		}
	}
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

int th_jobs_register(th_jobs *j, const th_job_kind *kind, void *payload, th_error *err)
{
	size_t i;
	int error = TH_OK;

	if (kind == NULL || kind->run == NULL || kind->name == NULL || kind->name[0] == '\0' ||
	    strlen(kind->name) >= sizeof(((th_op_info *)NULL)->kind))
		return th_error_set(err, TH_EINVALID, "invalid job kind");
	pthread_mutex_lock(&j->mu);
	for (i = 0; i < j->nkinds; i++)
		if (strcmp(j->kinds[i].kind->name, kind->name) == 0)
			break;
	if (i == MAX_KINDS) {
		error = th_error_set(err, TH_ENOMEM, "too many job kinds");
	} else {
		j->kinds[i].kind = kind;
		j->kinds[i].payload = payload;
		if (i == j->nkinds) {
			j->kinds[i].max_ms = j->default_max_ms;
			j->nkinds++;
		}
	}
	pthread_mutex_unlock(&j->mu);
	return error;
}

void th_jobs_set_repack(th_jobs *j, uint64_t loose_max, uint64_t packs_max)
{
	pthread_mutex_lock(&j->mu);
	j->repack_loose = loose_max;
	j->repack_packs = packs_max;
	pthread_mutex_unlock(&j->mu);
}

int th_jobs_set_max_seconds(th_jobs *j, const char *kind, int64_t seconds, th_error *err)
{
	int64_t ms = seconds > 0 ? seconds * 1000 : 0;
	size_t i;
	int error = TH_OK;

	if (seconds < 0 || seconds > INT64_MAX / 1000)
		return th_error_set(err, TH_EINVALID, "a time cap must be 0 or more seconds");
	pthread_mutex_lock(&j->mu);
	if (kind == NULL) {
		j->default_max_ms = ms;
		for (i = 0; i < j->nkinds; i++)
			j->kinds[i].max_ms = ms;
	} else {
		for (i = 0; i < j->nkinds && strcmp(j->kinds[i].kind->name, kind) != 0; i++)
			;
		if (i < j->nkinds)
			j->kinds[i].max_ms = ms;
		else
			error = th_error_set(err, TH_ENOTFOUND, "no operation kind '%s'", kind);
	}
	pthread_mutex_unlock(&j->mu);
	return error;
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
	/* This process holds the data dir's lock: whatever this node holds In Progress belonged to
	 * its process that is gone (other nodes' leases expire on their own). */
	if ((error = th_meta_op_requeue_running(&n, j->meta, err)) < 0)
		return error;
	if (n > 0) {
		th_error e;
		th_error_clear(&e);
		TH_LOG(TH_LOG_INFO, "job queue: %d interrupted job(s) re-queued", n);
		if (th_meta_work_notify(j->meta, &e) < 0)
			TH_LOG(TH_LOG_WARN, "job queue: cannot tell the other nodes: %s", e.msg);
	}
	if (pthread_create(&j->hb_thread, NULL, heartbeat_main, j) != 0)
		return th_error_set(err, TH_ERROR, "cannot start the heartbeat thread");
	j->hb_started = 1;
	for (i = 0; i < j->nworkers; i++) {
		if (pthread_create(&j->slots[i].thread, NULL, worker_main, &j->slots[i]) != 0)
			return th_error_set(err, TH_ERROR, "cannot start worker thread %d", i);
		j->slots[i].started = 1;
	}
	if (th_meta_shared(j->meta)) {
		if (pthread_create(&j->listen_thread, NULL, listen_main, j) != 0)
			return th_error_set(err, TH_ERROR, "cannot start the listener thread");
		j->listen_started = 1;
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
	th_error err;

	if (j == NULL)
		return;
	wake_local(j);
	/* The other nodes' workers: a lost notice costs them only a poll interval. */
	th_error_clear(&err);
	if (th_meta_work_notify(j->meta, &err) < 0)
		TH_LOG(TH_LOG_WARN, "job queue: cannot tell the other nodes: %s", err.msg);
}

unsigned long th_jobs_finished(th_jobs *j)
{
	unsigned long n;

	if (j == NULL)
		return 0;
	pthread_mutex_lock(&j->mu);
	n = j->finished;
	pthread_mutex_unlock(&j->mu);
	return n;
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
	if (j->listen_started)
		pthread_join(j->listen_thread, NULL);
	/* The heartbeat outlives the workers: it renews the leases of jobs still finishing. */
	pthread_mutex_lock(&j->mu);
	j->hb_stop = 1;
	pthread_cond_broadcast(&j->hb_cv);
	pthread_mutex_unlock(&j->mu);
	if (j->hb_started)
		pthread_join(j->hb_thread, NULL);
	for (i = 0; i < REPO_LOCKS; i++)
		pthread_rwlock_destroy(&j->repo_locks[i].rw);
	pthread_cond_destroy(&j->work_cv);
	pthread_cond_destroy(&j->hb_cv);
	pthread_mutex_destroy(&j->mu);
	free(j->slots);
	free(j->data_dir);
	free(j);
}
