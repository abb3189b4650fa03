/* qpool.c: the query pool, worker threads that run SQL reads off the HTTP threads.
 *
 * A query may run for its whole time limit (10 s) and the first query at a commit builds that
 * commit's snapshot (seconds for a million rows). On an HTTP thread either holds every connection
 * that thread serves, so two slow queries could stall every poll and upload. Here such a handler
 * parks its request instead: the connection is suspended (MHD_suspend_connection, which needs
 * MHD_ALLOW_SUSPEND_RESUME on the daemon), the job waits in a short queue, a worker of this pool
 * runs it and leaves the reply in the request, and MHD_resume_connection hands the connection back
 * to its HTTP thread, which calls the access handler once more and queues that reply (router.c).
 *
 * DESIGN
 * - Admission. A job is admitted or refused at once, on the HTTP thread: each user, and all
 *   anonymous callers together, may have `per_user` jobs running or waiting (429 beyond), and at
 *   most `threads + queue` jobs are in the pool (503 beyond). Both answers carry Retry-After: the
 *   seconds until the earliest of the relevant running jobs reaches its time limit (1 at least).
 * - Order. The connection is suspended before its job becomes visible to a worker: a worker may
 *   finish a job at once, and resuming a connection that is not suspended is undefined. A slot is
 *   reserved under the lock, the connection suspended, then the job queued. After queueing, the
 *   HTTP thread never touches the request again; the worker owns it until it resumes the
 *   connection, and never touches it after.
 * - Fairness. A free worker takes the oldest job of the caller with the fewest jobs running, so a
 *   user with a burst of queries does not hold every worker while another user waits.
 * - Time. A query's time limit counts from the moment a worker starts it: time spent waiting in
 *   the queue is not charged to it (the queue is short, so the wait is bounded by queue/threads
 *   time limits).
 * - The HTTP threads first. Workers run at a lower scheduling priority (nice +10), so on a busy
 *   machine the kernel gives the CPU to the threads that answer polls and uploads.
 * - Shutdown. MHD must not be stopped with a connection suspended. api_qpool_close refuses new
 *   jobs (503), answers the waiting ones with 503, waits for the running ones (at most their time
 *   limit) and joins the workers; the server stops MHD only after it.
 */
#define _GNU_SOURCE /* syscall(SYS_gettid) for the per-thread nice value */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "tablehub/log.h"

#define WORKER_NICE 10
#define RETRY_MAX_S 60
#define CLOSE_FLUSH_S 5

typedef struct qjob qjob;

/* One parked request; allocated from the request's pool, so it is gone once the worker resumes
 * the connection (the request may be completed and freed at once). */
struct qjob {
	qjob *next;
	th_req *req;
	api_job_fn fn;
	void *arg;
	char key[65]; /* the caller: the user name, "" for anonymous */
	uint32_t budget_ms;
};

/* A caller with jobs in the pool. At most threads + queue callers, so a fixed table. */
typedef struct qcaller {
	char key[65];
	unsigned inflight; /* reserved, waiting or running */
	unsigned running;
} qcaller;

/* What a worker runs now, for Retry-After. */
typedef struct qrunning {
	int busy;
	char key[65];
	int64_t deadline_ms;
} qrunning;

struct api_qpool {
	pthread_mutex_t mu;
	pthread_cond_t work; /* a job was queued, or the pool closes */
	pthread_cond_t idle; /* the pool emptied (for close) */
	pthread_t *threads;
	unsigned nthreads, started, per_user, queue_max;
	int closing, stop;
	qjob *head;        /* waiting jobs, oldest first */
	unsigned inflight; /* reserved + waiting + running */
	unsigned unsent;   /* parked requests not yet completed (their reply still to send) */
	qcaller *callers;  /* nthreads + queue_max entries; inflight == 0 marks a free one */
	size_t ncallers;
	qrunning *running; /* one per worker */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- callers ---------------------------------------------------------------------------------- */

static qcaller *caller_find(api_qpool *p, const char *key, int make)
{
	qcaller *free_slot = NULL;

	for (size_t i = 0; i < p->ncallers; i++) {
		qcaller *c = &p->callers[i];
		if (c->inflight == 0) {
			if (free_slot == NULL)
				free_slot = c;
		} else if (strcmp(c->key, key) == 0) {
			return c;
		}
	}
	if (!make || free_slot == NULL)
		return NULL;
	snprintf(free_slot->key, sizeof(free_slot->key), "%s", key);
	free_slot->running = 0;
	return free_slot;
}

/* Seconds until the first running job (of `key`, or of anyone when key is NULL or none of key's
 * runs) reaches its time limit: a fair guess of when a slot frees. Called with p->mu held. */
static unsigned retry_after(const api_qpool *p, const char *key, int64_t now)
{
	int64_t best = -1;

	for (int pass = key == NULL; pass < 2 && best < 0; pass++) {
		for (unsigned i = 0; i < p->nthreads; i++) {
			const qrunning *r = &p->running[i];
			if (!r->busy || (pass == 0 && strcmp(r->key, key) != 0))
				continue;
			if (best < 0 || r->deadline_ms < best)
				best = r->deadline_ms;
		}
	}
	if (best <= now)
		return 1;
	best = (best - now + 999) / 1000;
	return best > RETRY_MAX_S ? RETRY_MAX_S : (unsigned)best;
}

/* --- workers ---------------------------------------------------------------------------------- */

/* The oldest waiting job whose caller has the fewest jobs running; unlinked. p->mu held. */
static qjob *take_job(api_qpool *p)
{
	qjob **best = NULL, *j;
	unsigned best_running = 0;

	for (qjob **at = &p->head; *at != NULL; at = &(*at)->next) {
		qcaller *c = caller_find(p, (*at)->key, 0);
		unsigned r = c ? c->running : 0;
		if (best == NULL || r < best_running) {
			best = at;
			best_running = r;
			if (r == 0)
				break;
		}
	}
	if (best == NULL)
		return NULL;
	j = *best;
	*best = j->next;
	j->next = NULL;
	return j;
}

static void refuse_closing(th_req *req)
{
	(void)api_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "EBUSY",
	                      "the server is shutting down: retry later");
	if (req->resp != NULL)
		MHD_add_response_header(req->resp, MHD_HTTP_HEADER_RETRY_AFTER, "5");
}

typedef struct worker_arg {
	api_qpool *p;
	unsigned index;
} worker_arg;

static void *worker(void *arg)
{
	api_qpool *p = ((worker_arg *)arg)->p;
	unsigned index = ((worker_arg *)arg)->index;
	qrunning *me = &p->running[index];

	free(arg);
	/* Linux gives each thread its own nice value; a failure only leaves it at the default. */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORKER_NICE);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		qjob *j;
		qcaller *c;
		th_req *req;
		th_error err = { 0 };
		int closing, error;

		while (p->head == NULL && !p->stop)
			pthread_cond_wait(&p->work, &p->mu);
		if ((j = take_job(p)) == NULL)
			break; /* stop, and nothing left */
		c = caller_find(p, j->key, 0);
		if (c != NULL)
			c->running++;
		me->busy = 1;
		snprintf(me->key, sizeof(me->key), "%s", j->key);
		me->deadline_ms = mono_ms() + (j->budget_ms ? j->budget_ms : 10000);
		closing = p->closing;
		pthread_mutex_unlock(&p->mu);

		req = j->req;
		if (closing) {
			refuse_closing(req);
		} else {
			error = j->fn(req, j->arg, &err);
			api_reply_outcome(req, error, &err);
		}

		pthread_mutex_lock(&p->mu);
		me->busy = 0;
		if ((c = caller_find(p, j->key, 0)) != NULL) {
			c->running--;
			c->inflight--;
		}
		p->inflight--;
		if (p->inflight == 0)
			pthread_cond_broadcast(&p->idle);
		pthread_mutex_unlock(&p->mu);
		/* The request is the HTTP thread's again from here: `j` lives in its pool. */
		MHD_resume_connection(req->conn);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* --- the pool --------------------------------------------------------------------------------- */

int api_qpool_new(api_qpool **out, unsigned threads, unsigned per_user, unsigned queue,
                  th_error *err)
{
	api_qpool *p;
	int rc;

	if (threads == 0)
		threads = 1;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	p->nthreads = threads;
	p->per_user = per_user;
	p->queue_max = queue;
	p->ncallers = (size_t)threads + queue;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	if ((p->threads = calloc(threads, sizeof(*p->threads))) == NULL ||
	    (p->callers = calloc(p->ncallers, sizeof(*p->callers))) == NULL ||
	    (p->running = calloc(threads, sizeof(*p->running))) == NULL) {
		api_qpool_free(p);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < threads; i++) {
		worker_arg *a = malloc(sizeof(*a));
		if (a == NULL) {
			api_qpool_free(p);
			return th_error_set(err, TH_ENOMEM, "out of memory");
		}
		a->p = p;
		a->index = i;
		if ((rc = pthread_create(&p->threads[i], NULL, worker, a)) != 0) {
			free(a);
			api_qpool_free(p);
			return th_error_set(err, TH_ERROR, "cannot start a query worker: %s",
			                    strerror(rc));
		}
		p->started++;
	}
	*out = p;
	return TH_OK;
}

void api_qpool_close(api_qpool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->closing = 1;
	while (p->inflight > 0) /* waiting jobs are answered 503, running ones end */
		pthread_cond_wait(&p->idle, &p->mu);
	/* Then give the HTTP threads a moment to send those replies: stopping MHD would cut them. A
	 * client that does not read is not waited for long. */
	if (p->unsent > 0) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += CLOSE_FLUSH_S;
		while (p->unsent > 0 && pthread_cond_timedwait(&p->idle, &p->mu, &until) == 0)
			;
	}
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	p->started = 0;
}

void api_qpool_free(api_qpool *p)
{
	if (p == NULL)
		return;
	api_qpool_close(p);
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p->callers);
	free(p->running);
	free(p);
}

/* Reply `status` with Retry-After. */
static void refuse(th_req *req, unsigned status, const char *code, unsigned retry_s,
                   const char *msg)
{
	char after[16];

	snprintf(after, sizeof(after), "%u", retry_s);
	(void)api_reply_error(req, status, code, msg);
	if (req->resp != NULL)
		MHD_add_response_header(req->resp, MHD_HTTP_HEADER_RETRY_AFTER, after);
}

int api_qpool_submit(th_req *req, api_job_fn fn, void *arg, uint32_t budget_ms, th_error *err)
{
	api_qpool *p = req->srv->qpool;
	const char *key = req->user;
	qjob *j;
	qcaller *c;
	char msg[300];
	unsigned retry;
	int64_t now = mono_ms();

	if (p == NULL) /* no pool (a server made without one): run here */
		return fn(req, arg, err);
	if ((j = api_pool_alloc(&req->pool, sizeof(*j))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	j->req = req;
	j->fn = fn;
	j->arg = arg;
	j->budget_ms = budget_ms;
	snprintf(j->key, sizeof(j->key), "%s", key);

	pthread_mutex_lock(&p->mu);
	if (p->closing) {
		pthread_mutex_unlock(&p->mu);
		refuse_closing(req);
		return TH_OK;
	}
	c = caller_find(p, key, 0);
	if (p->per_user > 0 && c != NULL && c->inflight >= p->per_user) {
		retry = retry_after(p, key, now);
		pthread_mutex_unlock(&p->mu);
		if (key[0] != '\0')
			snprintf(msg, sizeof(msg),
			         "too many of your SQL queries are running or waiting (at most %u "
			         "at once): retry in %u s",
			         p->per_user, retry);
		else
			snprintf(msg, sizeof(msg),
			         "too many SQL queries without a token are running or waiting (at "
			         "most %u at once for all anonymous callers): retry in %u s, or "
			         "send a token",
			         p->per_user, retry);
		TH_LOG(TH_LOG_INFO, "req=%llu query refused: %s has %u running or waiting",
		       (unsigned long long)req->id, key[0] ? key : "anonymous", p->per_user);
		refuse(req, MHD_HTTP_TOO_MANY_REQUESTS, "ETOOMANY", retry, msg);
		return TH_OK;
	}
	if (p->inflight >= p->nthreads + p->queue_max ||
	    (c == NULL && (c = caller_find(p, key, 1)) == NULL)) {
		unsigned waiting = p->inflight > p->nthreads ? p->inflight - p->nthreads : 0;
		retry = retry_after(p, NULL, now);
		pthread_mutex_unlock(&p->mu);
		snprintf(msg, sizeof(msg),
		         "the server is busy with other SQL queries (%u running, %u waiting, the "
		         "queue holds %u): retry in %u s",
		         p->nthreads, waiting, p->queue_max, retry);
		TH_LOG(TH_LOG_INFO, "req=%llu query refused: the query queue is full",
		       (unsigned long long)req->id);
		refuse(req, MHD_HTTP_SERVICE_UNAVAILABLE, "EBUSY", retry, msg);
		return TH_OK;
	}
	c->inflight++;
	p->inflight++;
	p->unsent++;
	pthread_mutex_unlock(&p->mu);

	/* Suspended first: the job may be done the moment it is queued. */
	req->parked = 1;
	MHD_suspend_connection(req->conn);
	pthread_mutex_lock(&p->mu);
	{
		qjob **at = &p->head;
		while (*at != NULL)
			at = &(*at)->next;
		*at = j;
	}
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
	return API_PARKED;
}

void api_qpool_completed(api_qpool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	if (p->unsent > 0 && --p->unsent == 0)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->mu);
}
