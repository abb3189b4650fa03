/* admit.c: admission control. Before a request does any work it is charged to a rate limit, and
 * a request that would queue an operation is refused while its caller already has too many
 * waiting; both answer 429 with Retry-After.
 *
 * Rates use the GCRA limiter of limit.c: a request with a valid token is charged to that token
 * (--rate-per-token), every other one (no token, or a token that is not valid) to the client's
 * address (--rate-per-address). A rate of R allows bursts of 10 s' worth (10 R requests), then R
 * a second. Keying authenticated requests by token keeps people behind one address (an office's
 * NAT) from sharing a budget, while anonymous floods and token guessing are held per address.
 *
 * Unfinished operations (Pending or In Progress) are counted per user in the metadata store at
 * each request that queues one (routes flagged R_ENQUEUE), against --max-pending-ops.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "limit.h"
#include "tablehub/log.h"
#include "tablehub/meta_limits.h"

#define LIMITER_SLOTS 4096
#define BURST_SECONDS 10
#define PENDING_RETRY_S 5

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A limiter for `rate` requests a second (NULL for 0: no limit). */
static int make_limiter(api_limiter **out, unsigned rate, th_error *err)
{
	*out = NULL;
	if (rate == 0)
		return TH_OK;
	if ((*out = api_limiter_new(LIMITER_SLOTS, rate * BURST_SECONDS,
	                            1000 / (int64_t)rate > 0 ? 1000 / (int64_t)rate : 1)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return TH_OK;
}

int api_admit_init(api_server *srv, th_error *err)
{
	int error;

	if ((error = make_limiter(&srv->rate_token, srv->cfg.rate_per_token, err)) < 0 ||
	    (error = make_limiter(&srv->rate_addr, srv->cfg.rate_per_address, err)) < 0)
		return error;
	return TH_OK;
}

void api_admit_free(api_server *srv)
{
	api_limiter_free(srv->rate_token);
	api_limiter_free(srv->rate_addr);
	srv->rate_token = srv->rate_addr = NULL;
}

/* Reply 429 with Retry-After: wait_s. */
static void too_many(th_req *req, unsigned wait_s, const char *msg)
{
	char after[16];

	snprintf(after, sizeof(after), "%u", wait_s);
	(void)api_reply_error(req, MHD_HTTP_TOO_MANY_REQUESTS, "ETOOMANY", msg);
	if (req->resp != NULL)
		MHD_add_response_header(req->resp, MHD_HTTP_HEADER_RETRY_AFTER, after);
}

int api_admit_rate(th_req *req, int authenticated)
{
	api_server *srv = req->srv;
	api_limiter *l = authenticated ? srv->rate_token : srv->rate_addr;
	char key[80], msg[200];
	unsigned wait_s;

	if (l == NULL)
		return 0;
	if (authenticated)
		snprintf(key, sizeof(key), "t:%s", req->token_key);
	else
		snprintf(key, sizeof(key), "a:%s", api_conn_addr(req->cn));
	if ((wait_s = api_limiter_check(l, key, mono_ms(), 1)) == 0)
		return 0;
	snprintf(msg, sizeof(msg),
	         "too many requests %s: at most %u a second (bursts of %u); retry in %u s",
	         authenticated ? "with this token" : "from this address",
	         authenticated ? srv->cfg.rate_per_token : srv->cfg.rate_per_address,
	         (authenticated ? srv->cfg.rate_per_token : srv->cfg.rate_per_address) *
	                 BURST_SECONDS,
	         wait_s);
	too_many(req, wait_s, msg);
	return -1;
}

int api_admit_enqueue(th_req *req, th_error *err)
{
	unsigned cap = req->srv->cfg.max_pending_ops;
	uint64_t n = 0;
	char msg[200];
	int error;

	if (cap == 0 || req->user[0] == '\0')
		return TH_OK;
	if ((error = th_meta_op_count_unfinished(&n, req->srv->meta, req->user, err)) < 0)
		return error;
	if (n < cap)
		return TH_OK;
	snprintf(msg, sizeof(msg),
	         "%llu of your operations are still waiting or running (at most %u): retry when "
	         "some have finished",
	         (unsigned long long)n, cap);
	TH_LOG(TH_LOG_INFO, "req=%llu refused: user %s has %llu unfinished operations",
	       (unsigned long long)req->id, req->user, (unsigned long long)n);
	too_many(req, PENDING_RETRY_S, msg);
	return TH_OK;
}
