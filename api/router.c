/* router.c: the route table and the one dispatcher every request goes through.
 *
 * A route is {method, pattern, handler, flags}; the flags name the preconditions dispatch() runs
 * before the handler (resolve the database and check who may see it, require a token, buffer a
 * JSON body, stream an upload), so handlers only parse, call into src/ and storage/, and reply.
 * Resource files may keep their own table (pulls.c: api_pulls_routes); every table is searched
 * and the most specific pattern wins, so the order of entries never matters.
 *
 * MHD calls the access handler several times per request: first with the headers only (the
 * request is created, routed and checked, and an early error such as 404, 401, 413 or 415 is
 * queued before any body is read), then once per piece of body, then a last time with no data,
 * when the handler runs. The request and its pool are released in api_completed(), which also
 * writes the one log line of the request. A handler may park its request in the query pool
 * (qpool.c: the connection is suspended); once a worker has made the reply and resumed the
 * connection, MHD calls the access handler again and that reply is queued.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "tablehub/text.h"
#include "tablehub/datadir.h"
#include "tablehub/log.h"
#include "tablehub/meta.h"

#define API "/api/v1alpha1"

static const api_route main_routes[] = {
	{ "GET", API "/user", api_user_get, R_AUTH },
	{ "POST", API "/database", api_databases_create, R_WRITE | R_JSON },
	{ "GET", API "/:owner/:db/branches", api_branches_list, R_READ },
	{ "POST", API "/:owner/:db/branches", api_branches_create, R_WRITE | R_JSON },
	{ "POST", API "/:owner/:db/upload", api_upload_create, R_WRITE | R_STREAM | R_ENQUEUE },
	{ "GET", API "/:owner/:db/upload", api_upload_poll, R_READ },
	{ "GET", API "/:owner/:db/jobs", api_jobs_list, R_READ },
	{ "POST", API "/:owner/:db/operations/:op/cancel", api_operation_cancel, R_WRITE },
	{ "GET", API "/users/:user/operations", api_user_operations, R_SELF },
	{ NULL, NULL, NULL, 0 }
};

const api_route *const api_route_tables[] = {
	main_routes,      api_pulls_routes,    api_query_routes,    api_catalog_routes,
	api_web_routes,   api_accounts_routes, api_teams_routes,    api_bitio_routes,
	api_forks_routes, api_openapi_routes,  api_sqlwrite_routes, api_export_routes,
	api_files_routes, api_tus_routes,      api_refs_routes,     NULL
};

#define NTABLES (sizeof(api_route_tables) / sizeof(api_route_tables[0]) - 1)
#define MAX_SEGMENTS 16

static atomic_uint_fast64_t next_req_id = 1;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* --- matching -------------------------------------------------------------------------------- */

typedef struct seg {
	const char *s;
	size_t len;
} seg;

static size_t split(seg *out, const char *path)
{
	size_t n = 0;
	const char *p = path;

	while (*p == '/')
		p++;
	while (*p && n < MAX_SEGMENTS + 1) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		out[n].s = p;
		out[n].len = len;
		n++;
		p += len;
		while (*p == '/')
			p++;
	}
	return n;
}

/* Where the segments of `pattern` fall in a path of `nsegs` segments: a ":name" segment takes one
 * path segment, a "*name" segment (at most one per pattern) takes one or more, so that a branch
 * name with '/' in it ("alice/import-1") is one capture. Sets *star to the index of the "*" segment
 * (np when none) and *span to the number of path segments it takes. Returns 0 when the counts
 * cannot fit. */
static int layout(size_t *star, size_t *span, const seg *pat, size_t np, size_t nsegs)
{
	size_t i;

	*star = np;
	*span = 1;
	for (i = 0; i < np; i++)
		if (pat[i].s[0] == '*')
			*star = i;
	if (*star == np)
		return np == nsegs;
	if (nsegs < np)
		return 0;
	*span = nsegs - np + 1;
	return 1;
}

/* The path segment where pattern segment i starts, given the layout. */
static size_t seg_at(size_t i, size_t star, size_t span)
{
	return i <= star ? i : i + span - 1;
}

/* Does `pattern` match the path segments? On a match, *literal_mask has bit (31 - i) set for each
 * literal pattern segment i, so a larger mask is the more specific route. */
static int match_one(const char *pattern, const seg *segs, size_t nsegs, uint32_t *literal_mask)
{
	seg pat[MAX_SEGMENTS + 1];
	size_t np = split(pat, pattern), i, star, span;
	uint32_t mask = 0;

	if (!layout(&star, &span, pat, np, nsegs))
		return 0;
	for (i = 0; i < np; i++) {
		const seg *s = &segs[seg_at(i, star, span)];

		if (pat[i].s[0] == ':' || pat[i].s[0] == '*') {
			if (s->len == 0)
				return 0;
			continue;
		}
		if (pat[i].len != s->len || memcmp(pat[i].s, s->s, pat[i].len) != 0)
			return 0;
		mask |= 1u << (31 - i);
	}
	*literal_mask = mask;
	return 1;
}

int api_route_match(th_req *req, const char *method, const char *path, const char **allow)
{
	seg segs[MAX_SEGMENTS + 1], pat[MAX_SEGMENTS + 1];
	const api_route *best = NULL;
	uint32_t best_mask = 0, best_any_mask = 0;
	char allowed[64] = "";
	size_t nsegs = split(segs, path), i, t, np, star, span;
	int any = 0;

	*allow = NULL;
	if (nsegs > MAX_SEGMENTS)
		return TH_ENOTFOUND;
	/* The best pattern for the path regardless of method decides 404 vs 405; among the routes
	 * with that pattern, the method picks. */
	for (t = 0; t < NTABLES; t++) {
		for (const api_route *r = api_route_tables[t]; r->method != NULL; r++) {
			uint32_t mask;
			if (!match_one(r->pattern, segs, nsegs, &mask))
				continue;
			if (!any || mask > best_any_mask) {
				best_any_mask = mask;
				any = 1;
			}
		}
	}
	if (!any)
		return TH_ENOTFOUND;
	for (t = 0; t < NTABLES; t++) {
		for (const api_route *r = api_route_tables[t]; r->method != NULL; r++) {
			uint32_t mask;
			if (!match_one(r->pattern, segs, nsegs, &mask) || mask != best_any_mask)
				continue;
			if (strcmp(r->method, method) == 0) {
				best = r;
				best_mask = mask;
			} else if (strlen(allowed) + strlen(r->method) + 3 < sizeof(allowed) &&
			           strstr(allowed, r->method) == NULL) {
				if (allowed[0])
					strcat(allowed, ", ");
				strcat(allowed, r->method);
			}
		}
	}
	(void)best_mask;
	if (best == NULL) {
		*allow = api_pool_strdup(&req->pool, allowed);
		return TH_EINVALID;
	}
	req->route = best;
	req->ncap = 0;
	np = split(pat, best->pattern);
	(void)layout(&star, &span, pat, np, nsegs);
	for (i = 0; i < np && req->ncap < API_MAX_CAPTURES; i++) {
		const seg *first = &segs[seg_at(i, star, span)];
		size_t len = first->len;

		if (pat[i].s[0] != ':' && pat[i].s[0] != '*')
			continue;
		if (i == star) /* from the first segment it takes to the end of the last */
			len = (size_t)(segs[seg_at(i, star, span) + span - 1].s - first->s) +
			      segs[seg_at(i, star, span) + span - 1].len;
		req->cap_name[req->ncap] =
		        api_pool_strndup(&req->pool, pat[i].s + 1, pat[i].len - 1);
		req->cap_value[req->ncap] = api_pool_strndup(&req->pool, first->s, len);
		if (req->cap_name[req->ncap] == NULL || req->cap_value[req->ncap] == NULL)
			return TH_ENOMEM;
		req->ncap++;
	}
	return TH_OK;
}

const char *api_cap(const th_req *req, const char *name)
{
	for (size_t i = 0; i < req->ncap; i++)
		if (strcmp(req->cap_name[i], name) == 0)
			return req->cap_value[i];
	return NULL;
}

const char *api_arg(const th_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *api_header(const th_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* --- preconditions --------------------------------------------------------------------------- */

/* Check the captures that name things: owner, db and user names are [A-Za-z0-9_-]{1,64}, pull
 * and token ids are decimal. Anything else (`..`, dots, spaces) is a 400 naming the segment. */
static int check_captures(th_req *req, th_error *err)
{
	for (size_t i = 0; i < req->ncap; i++) {
		const char *n = req->cap_name[i], *v = req->cap_value[i];
		if (strcmp(n, "id") == 0) {
			size_t len = strlen(v);
			if (len == 0 || len > 18 || strspn(v, "0123456789") != len)
				return th_error_set(err, TH_EINVALID,
				                    "invalid pull id '%.64s': want a number", v);
		} else if (strcmp(n, "token_id") == 0) {
			size_t len = strlen(v);
			if (len == 0 || len > 18 || strspn(v, "0123456789") != len)
				return th_error_set(err, TH_EINVALID,
				                    "invalid token id '%.64s': want a number", v);
		} else if ((strcmp(n, "owner") == 0 || strcmp(n, "db") == 0 ||
		            strcmp(n, "user") == 0) &&
		           !th_name_valid(v)) {
			return th_error_set(err, TH_EINVALID,
			                    "invalid %s name '%.64s': use 1-64 of [A-Za-z0-9_-]",
			                    strcmp(n, "db") == 0 ? "database" : n, v);
		}
	}
	return TH_OK;
}

void api_set_early(th_req *req, unsigned status, const char *code, const char *msg)
{
	if (req->early_status != 0)
		return;
	req->early_status = status;
	req->early_code = api_pool_strdup(&req->pool, code);
	req->early_msg = api_pool_strdup(&req->pool, msg);
	if (req->early_code == NULL || req->early_msg == NULL) {
		req->early_code = "ENOMEM";
		req->early_msg = "out of memory";
	}
}

static void set_early_error(th_req *req, const th_error *e)
{
	api_set_early(req, api_status_for(e->code), th_code_name(e->code), e->msg);
}

/* The first call: route, authenticate, check the preconditions of the route's flags. Leaves a
 * reply in req->resp when the request ends here. */
static void first_call(th_req *req, const char *url, const char *method)
{
	const char *allow = NULL;
	th_error err = { 0 };
	size_t len = strlen(url);
	unsigned flags;
	int error;

	while (len > 1 && url[len - 1] == '/') /* DoltHub warns about trailing slashes: allow one */
		len--;
	if ((req->path = api_pool_strndup(&req->pool, url, len)) == NULL) {
		(void)api_reply_error(req, 503, "ENOMEM", "out of memory");
		return;
	}
	/* Framing first: a request whose body length is in doubt is answered and the connection
	 * closed, so nothing after its head is ever read as another request. */
	if (api_check_framing(req, &err) < 0) {
		req->close = 1;
		goto fail;
	}
	/* MHD decodes %00 into a NUL that would silently cut the path or an argument short. */
	if (api_conn_take_url_nul(req->cn)) {
		error = th_error_set(&err, TH_EINVALID,
		                     "the URL holds an encoded NUL byte (%%00): not allowed");
		goto fail;
	}
	/* Anonymous requests are charged to their address before any work is done for them. */
	if (!api_has_credential(req) && api_admit_rate(req, 0) < 0)
		return;
	error = api_route_match(req, method, req->path, &allow);
	if (error == TH_ENOTFOUND) {
		char msg[300];
		snprintf(msg, sizeof(msg), "no such endpoint: %s %.200s", method, req->path);
		(void)api_reply_error(req, MHD_HTTP_NOT_FOUND, "ENOTFOUND", msg);
		return;
	}
	if (error == TH_EINVALID) {
		char msg[300];
		snprintf(msg, sizeof(msg), "method %s not allowed on %.200s (allowed: %s)", method,
		         req->path, allow ? allow : "");
		(void)api_reply_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, "EMETHOD", msg);
		if (req->resp != NULL && allow != NULL)
			MHD_add_response_header(req->resp, MHD_HTTP_HEADER_ALLOW, allow);
		return;
	}
	if (error < 0) {
		(void)api_reply_error(req, 503, "ENOMEM", "out of memory");
		return;
	}
	flags = req->route->flags;
	if ((error = check_captures(req, &err)) < 0)
		goto fail;
	if ((error = api_auth(req, &err)) < 0) {
		/* A token that is not valid costs its address: guessing tokens is rate limited. */
		if (error == TH_EAUTH && api_admit_rate(req, 0) < 0)
			return;
		goto fail;
	}
	if (req->user[0] != '\0' && api_admit_rate(req, 1) < 0)
		return;
	/* Who may call the route: every role, scope and CSRF check happens here (auth.c). */
	if ((error = api_authorize(req, &err)) < 0)
		goto fail;
	if (flags & (R_JSON | R_FORM)) {
		const char *cl = api_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoull(cl, NULL, 10) > API_JSON_MAX) {
			error = th_error_set(&err, TH_ETOOBIG, "request body over %d bytes",
			                     API_JSON_MAX);
			goto fail;
		}
	}
	if ((flags & R_ENQUEUE) && (error = api_admit_enqueue(req, &err)) < 0)
		goto fail;
	if (req->resp != NULL) /* refused: too many of the caller's operations are waiting */
		return;
	if ((flags & R_STREAM) && (error = api_upload_begin(req, &err)) < 0)
		goto fail;
	for (const api_body_route *b = api_body_routes; b->fn != NULL; b++)
		if (b->fn == req->route->fn)
			req->body_hooks = b->hooks;
	if (req->body_hooks != NULL && (error = req->body_hooks->begin(req, &err)) < 0)
		goto fail;
	return;

fail:
	(void)api_reply_th_error(req, &err);
}

/* A piece of body. Errors become the early reply; the rest of the body is drained. Returns 0, or
 * -1 to close the connection (a body far past every cap, still coming). */
static int body_call(th_req *req, const char *data, size_t len)
{
	const api_route *r = req->route;
	th_error err = { 0 };

	req->body_seen += len;
	if (req->early_status != 0) {
		uint64_t bound = req->srv->cfg.max_upload + (uint64_t)64 * 1024 * 1024;
		return req->body_seen > bound ? -1 : 0;
	}
	if (req->body_hooks != NULL) {
		if (req->body_hooks->feed(req, data, len, &err) < 0)
			set_early_error(req, &err);
	} else if (r->flags & R_STREAM) {
		if (api_upload_feed(req, data, len, &err) < 0)
			set_early_error(req, &err);
	} else if (r->flags & (R_JSON | R_FORM)) {
		if (req->body_len + len > API_JSON_MAX) {
			req->body_over = 1;
			api_set_early(req, MHD_HTTP_CONTENT_TOO_LARGE, "ETOOBIG",
			              "request body over 65536 bytes");
			return 0;
		}
		if (req->body == NULL &&
		    (req->body = api_pool_alloc(&req->pool, API_JSON_MAX + 1)) == NULL) {
			api_set_early(req, 503, "ENOMEM", "out of memory");
			return 0;
		}
		memcpy(req->body + req->body_len, data, len);
		req->body_len += len;
		req->body[req->body_len] = '\0';
	}
	/* Other routes take no body: it is ignored. */
	return 0;
}

int api_json_has_nul(const char *text, size_t len)
{
	if (memchr(text, '\0', len) != NULL)
		return 1;
	/* Escapes come in pairs: "\\u0000" is a backslash and "u0000", not a NUL. */
	for (size_t i = 0; i + 1 < len; i++) {
		if (text[i] != '\\')
			continue;
		if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0)
			return 1;
		i++;
	}
	return 0;
}

void api_reply_outcome(th_req *req, int error, th_error *err)
{
	if (error < 0) {
		if (err->code == TH_OK) /* a handler that forgot to say why: a bug */
			th_error_set(err, error, "internal error");
		if (api_status_for(err->code) >= 500)
			TH_LOG(TH_LOG_ERROR, "req=%llu %s %s: %s (%s)", (unsigned long long)req->id,
			       req->method, req->path, err->msg, th_code_name(err->code));
		(void)api_reply_th_error(req, err);
	} else if (req->resp == NULL) {
		(void)api_reply_error(req, 500, "ERROR",
		                      "internal error: the handler gave no reply");
	}
}

/* The last call: run the handler (or reply the error found while the body came in). Returns
 * API_PARKED when the handler parked the request in the query pool (req is a worker's now), else
 * 0. */
static int final_call(th_req *req)
{
	th_error err = { 0 };
	int error;

	if (req->early_status != 0) {
		(void)api_reply_error(req, req->early_status, req->early_code, req->early_msg);
		return 0;
	}
	if (req->route->flags & R_JSON) {
		if (req->body_len == 0) {
			(void)api_reply_error(req, MHD_HTTP_BAD_REQUEST, "EINVALID",
			                      "request body must be a JSON object");
			return 0;
		}
		/* cJSON would cut a string at a \u0000 and hand on the shorter name. */
		if (api_json_has_nul(req->body, req->body_len)) {
			(void)api_reply_error(req, MHD_HTTP_BAD_REQUEST, "EINVALID",
			                      "request body: a string holds a NUL character "
			                      "(\\u0000), which no name or value may contain");
			return 0;
		}
		req->json = cJSON_ParseWithLength(req->body, req->body_len);
		if (req->json == NULL || !cJSON_IsObject(req->json)) {
			(void)api_reply_error(req, MHD_HTTP_BAD_REQUEST, "EINVALID",
			                      "request body must be a JSON object");
			return 0;
		}
	}
	if ((error = req->route->fn(req, &err)) == API_PARKED)
		return API_PARKED;
	api_reply_outcome(req, error, &err);
	return 0;
}

static int has_body(const th_req *req)
{
	const char *cl = api_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl != NULL && strtoull(cl, NULL, 10) > 0) ||
	       api_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

static enum MHD_Result queue(th_req *req)
{
	enum MHD_Result r;

	if (api_conn_busy(req->srv->guard, req->cn) < 0) /* the watchdog closed it: say nothing */
		return MHD_NO;
	if (req->resp == NULL) /* not even an error reply could be made */
		return MHD_NO;
	if (req->close)
		MHD_add_response_header(req->resp, MHD_HTTP_HEADER_CONNECTION, "close");
	r = MHD_queue_response(req->conn, req->status, req->resp);

	MHD_destroy_response(req->resp);
	req->resp = NULL;
	req->queued = 1;
	return r;
}

enum MHD_Result api_dispatch(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **req_cls)
{
	th_req *req = *req_cls;

	if (req == NULL) {
		if ((req = calloc(1, sizeof(*req))) == NULL)
			return MHD_NO;
		req->srv = cls;
		req->conn = conn;
		req->method = method;
		req->http11 = version != NULL && strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
		req->id = atomic_fetch_add(&next_req_id, 1);
		req->started_us = now_us();
		req->cn = api_conn_of(conn);
		*req_cls = req;
		if (api_conn_body_phase(req->srv->guard, req->cn) < 0)
			return MHD_NO;
		first_call(req, url, method);
		/* An early reply to a request with a body goes out now, before the body is read
		 * (MHD then closes the connection), as does one that closes the connection. Other
		 * early replies wait for the next call, which keeps the connection alive. */
		return req->resp != NULL && (has_body(req) || req->close) ? queue(req) : MHD_YES;
	}
	if (req->queued) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		int rc = api_conn_body_data(req->srv->guard, req->cn, *upload_data_size);
		if (rc == 0 && req->resp == NULL)
			rc = body_call(req, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return rc < 0 ? MHD_NO : MHD_YES;
	}
	/* No deadline while the handler runs: only the time to receive the request is bounded. */
	if (api_conn_busy(req->srv->guard, req->cn) < 0)
		return MHD_NO;
	/* A parked request comes back here once its query worker resumed the connection, with the
	 * reply made: the handler does not run again. Until then req is the worker's. */
	if (req->resp == NULL && !req->parked && final_call(req) == API_PARKED)
		return MHD_YES;
	return queue(req);
}

void api_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                   enum MHD_RequestTerminationCode toe)
{
	th_req *req = *req_cls;

	(void)cls;
	(void)conn;
	if (req == NULL)
		return;
	*req_cls = NULL;
	api_conn_done(req->srv->guard, req->cn);
	TH_LOG(TH_LOG_INFO, "req=%llu %s %s %u %zuB %.1fms user=%s%s", (unsigned long long)req->id,
	       req->method, req->path ? req->path : "-", req->queued ? req->status : 0u,
	       req->resp_len, (double)(now_us() - req->started_us) / 1000.0,
	       req->user[0] ? req->user : "-",
	       toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
	api_upload_release(req);
	if (req->body_hooks != NULL && req->body_hooks->release != NULL)
		req->body_hooks->release(req,
		                         req->queued && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	if (req->parked)
		api_qpool_completed(req->srv->qpool);
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	cJSON_Delete(req->json);
	cJSON_Delete(req->echo);
	api_pool_release(&req->pool);
	free(req);
}
