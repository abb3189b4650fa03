/* api.h: what the files of api/ share: the server, one request (th_req) with its memory pool, the
 * route table, replies, the streaming multipart parser and token parsing. Internal to api/: the
 * only header besides api/cli.h that may name <microhttpd.h> or <cjson/cJSON.h> types.
 *
 * A request lives from MHD's first call of the access handler to MHD_OPTION_NOTIFY_COMPLETED.
 * Everything it allocates comes from req->pool and is released there at once; handlers never free
 * pool memory. Jobs outlive requests, so whatever a job keeps is copied by src/ (th_job_* copies
 * its inputs), never a pool pointer.
 */
#ifndef TABLEHUB_API_H
#define TABLEHUB_API_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "tablehub/error.h"
#include "tablehub/ids.h"
#include "tablehub/import.h"
#include "tablehub/meta_access.h"

struct th_meta;
struct th_jobs;
typedef struct api_cache api_cache;
typedef struct api_guard api_guard;
typedef struct api_conn api_conn;
typedef struct api_limiter api_limiter;
typedef struct api_qpool api_qpool;

/* --- the server ------------------------------------------------------------------------------ */

typedef struct api_config {
	const char *data_dir;
	const char *listen;  /* "127.0.0.1:8080" */
	unsigned threads;    /* HTTP threads; 0 = number of CPUs */
	uint64_t max_upload; /* bytes of the `file` part */
	unsigned max_connections;
	unsigned timeout_s; /* idle connection timeout */

	/* Slow and greedy clients (0 = no limit). max_connections is lowered at start to fit the
	 * file descriptor limit. */
	unsigned max_conns_per_ip; /* open connections from one address */
	unsigned header_timeout_s; /* to receive a whole request head */
	unsigned body_timeout_s;   /* for each 64 KiB of a request body */
	unsigned rate_per_token;   /* requests a second with one token (bursts of 10 s' worth) */
	unsigned rate_per_address; /* requests a second from one address without a valid token */
	unsigned max_pending_ops;  /* unfinished operations of one user */

	/* Accounts (accounts.c). */
	int no_signup;     /* POST /users is refused: accounts come from `tablehub user add` */
	int cookie_secure; /* session cookies carry Secure (behind an https proxy) */

	/* SQL reads run in their own pool (qpool.c), off the HTTP threads. */
	unsigned query_threads;  /* queries running at once (0: 1) */
	unsigned query_per_user; /* running or waiting, per user and all anonymous (0: no cap) */
	unsigned query_queue;    /* queries waiting for a worker */

	/* Disk space (upload.c). */
	unsigned min_free_mb; /* disk space an upload must leave free in the data dir */

	/* Imports from a URL (bitio.c, src/url_fetch.c). */
	uint64_t url_max_bytes; /* the fetched file's cap */
	unsigned url_timeout_s; /* the fetch's time cap */
	int allow_private_urls; /* loopback, private and link-local addresses may be fetched */

	/* Files (files.c) and resumable uploads (tus.c). */
	uint64_t max_file;       /* bytes of a resumable upload (0 = no cap) */
	int64_t keep_uploads_ms; /* files unused this long are removed (0 = kept for ever) */
} api_config;

typedef struct api_server {
	api_config cfg;
	struct th_meta *meta; /* borrowed: shared by every request thread */
	struct th_jobs *jobs; /* borrowed: the worker pool that runs operations */
	struct MHD_Daemon *daemon;
	uint16_t port;    /* the port actually bound (cfg may say 0) */
	api_cache *dbs;   /* "owner/db" -> api_db, for a short while */
	api_cache *polls; /* "db id|operationName" -> the poll reply of a finished operation */

	unsigned conn_limit; /* the connection limit in force (cfg's, or lower to fit the fds) */
	api_guard *guard;    /* deadlines of slow connections (guard.c) */
	api_limiter *rate_token, *rate_addr;  /* admit.c; NULL when that rate is not limited */
	api_limiter *login_addr, *login_user; /* accounts.c: login attempts (limit.h) */
	api_qpool *qpool;                     /* the query workers (qpool.c) */
	char *data_dir_abs; /* cfg.data_dir resolved (malloc'd; NULL if it cannot be), clean.c */
	int64_t swept_until_ms; /* api_upload_sweep has looked at failures before this */
} api_server;

/* Start MHD on cfg->listen (loopback or any address given; only that one). `meta` and `jobs` are
 * borrowed and must outlive the server. Returns TH_OK, TH_EINVALID (bad listen address) or
 * TH_ESTORE (cannot bind: the message says why). */
int api_server_start(api_server *srv, const api_config *cfg, struct th_meta *meta,
                     struct th_jobs *jobs, th_error *err);
/* Stop accepting, finish the requests in flight, release MHD. Accepts a never-started server. */
void api_server_stop(api_server *srv);

/* Parse "HOST:PORT" (HOST an IPv4 address or "localhost"; PORT 0-65535). Returns TH_OK or
 * TH_EINVALID. */
int api_parse_listen(uint32_t *addr_be, uint16_t *port, const char *s, th_error *err);

/* --- a small cache of recent lookups (server.c) --------------------------------------------- *
 * Fixed-size, direct-mapped (a new key evicts the one in its slot), entries live `ttl_ms`. Callers
 * cache only what cannot go stale in that time: positive lookups (a new user, token or database is
 * seen at once) and the replies of finished operations, which never change. It keeps SQLite and
 * cJSON off the path of most requests. */

#define API_CACHE_KEY 256

api_cache *api_cache_new(size_t slots, size_t val_max, int64_t ttl_ms);
void api_cache_free(api_cache *c);
/* On a hit, copy the value of `key` (at most val_size bytes) into val and return its length; 0
 * on a miss. */
size_t api_cache_get(api_cache *c, const char *key, void *val, size_t val_size);
/* Store len bytes for `key` for ttl_ms (0 = the cache's own), nothing when the key or value is too
 * long. */
void api_cache_put(api_cache *c, const char *key, const void *val, size_t len, int64_t ttl_ms);

/* --- the per-request memory pool ------------------------------------------------------------- */

typedef struct api_pool_block api_pool_block;
typedef struct api_pool {
	api_pool_block *head;
	char *cur, *end;
} api_pool;

/* Allocations are 16-byte aligned and zeroed; NULL when out of memory. Freed all at once. */
void *api_pool_alloc(api_pool *p, size_t n);
char *api_pool_strndup(api_pool *p, const char *s, size_t n);
char *api_pool_strdup(api_pool *p, const char *s);
char *api_pool_printf(api_pool *p, const char *fmt, ...) TH_PRINTF(2, 3);
void api_pool_release(api_pool *p);

/* --- one request ----------------------------------------------------------------------------- */

#define API_MAX_CAPTURES 8
#define API_JSON_MAX (64 * 1024) /* bodies of JSON requests and the upload's params part */

typedef struct api_db {
	int64_t id;
	char owner[65];
	char name[65];
	int is_private;
} api_db;

struct api_route;
typedef struct api_upload api_upload;

typedef struct th_req {
	api_server *srv;
	struct MHD_Connection *conn;
	api_conn *cn; /* the connection's guard record (guard.c), NULL when it has none */
	int close;    /* send "Connection: close" with the reply and close after it */
	api_pool pool;
	uint64_t id;         /* for log lines */
	uint64_t started_us; /* monotonic */
	const char *method;  /* borrowed from MHD, alive for the request */
	int http11;          /* the request line says HTTP/1.1 (it must then have a Host) */
	const char *path;    /* the URL path, percent-decoded, trailing slash dropped */
	const struct api_route *route;
	size_t ncap;
	const char *cap_name[API_MAX_CAPTURES]; /* ":owner" -> "owner" */
	const char *cap_value[API_MAX_CAPTURES];

	/* Set by dispatch() before the handler runs. */
	char user[65];      /* the caller, "" when anonymous */
	char token_key[65]; /* SHA-256 of the caller's token in hex, "" when anonymous */
	api_db db;          /* R_READ routes: the database of :owner/:db, visible to the caller */
	th_role scope;      /* what the credential allows: its scope; ADMIN for a session */
	th_role role;       /* routes with :owner/:db: the caller's role there, capped by scope */
	int by_cookie;      /* the caller came with a session cookie, not a token header */
	int64_t token_id;   /* the id of the caller's token or session, 0 when anonymous */
	char csrf[65];      /* by_cookie: the session's CSRF token (auth.c) */

	/* Request bodies. */
	char *body; /* R_JSON: NUL-terminated, from the pool */
	size_t body_len;
	uint64_t body_seen; /* bytes of upload data received */
	int body_over;      /* R_JSON body past API_JSON_MAX: drained, then 413 */
	cJSON *json;        /* R_JSON: the parsed body (deleted with the request) */
	api_upload *upload; /* R_STREAM: upload state (api/upload.c) */
	const struct api_body_hooks *body_hooks; /* the route's, from api_body_routes, or NULL */
	void *body_state;                        /* the body hooks' own state */

	/* A failure found while the body streams in: MHD 0.9.75 cannot answer before the body is
	 * read, so the rest is drained and this error is the reply. */
	unsigned early_status;
	const char *early_code, *early_msg;

	/* The reply. */
	unsigned status;
	struct MHD_Response *resp;
	cJSON *echo; /* fields to add to an error reply (DoltHub echoes request identifiers) */
	size_t resp_len;
	int queued; /* the reply went to MHD */
	int parked; /* a query worker answers it (qpool.c): the handler never runs again */
} th_req;

/* Record the reply for a failure found while the body streams in (the first one wins); the rest
 * of the body is drained unread, then this is the answer. */
void api_set_early(th_req *req, unsigned status, const char *code, const char *msg);

/* The value of capture `name` of the matched route ("owner"), or NULL. */
const char *api_cap(const th_req *req, const char *name);
/* Query-string argument `name` (decoded by MHD), or NULL. */
const char *api_arg(const th_req *req, const char *name);
/* Request header `name` (case-insensitive), or NULL. */
const char *api_header(const th_req *req, const char *name);

/* --- routes ---------------------------------------------------------------------------------- */

/* Every route states who may call it with one of these, checked in one place (auth.c,
 * api_authorize, from the dispatcher) before anything else is done for the request:
 *   none of them   anyone, signed in or not;
 *   R_AUTH         a signed-in caller (token or session), any scope;
 *   R_SELF         a signed-in caller whose name is the route's :user;
 *   R_READ         the read role on :owner/:db: anyone on a public database, collaborators
 *                  and the owner on a private one;
 *   R_WRITE        the write role on :owner/:db, or, on routes without one, a credential of
 *                  write scope;
 *   R_ADMIN        likewise admin (the owner is admin of their databases).
 * A token's scope caps the role: a read token reads only. Every unsafe method (not GET or HEAD)
 * needs write scope, and with a session cookie the session's CSRF token in X-CSRF-Token. A
 * database the caller may not read answers 404 exactly as a missing one; a signed-out caller
 * gets 401 and a signed-in one without the role 403. */
enum {
	R_READ = 1 << 0, /* read role on :owner/:db (the database is resolved into req->db) */
	R_JSON = 1 << 1, /* buffer a JSON body up to API_JSON_MAX (413 beyond) and parse it (400) */
	R_STREAM = 1 << 2,  /* hand the body to the upload's streaming multipart parser */
	R_AUTH = 1 << 3,    /* a signed-in caller (401 without one) */
	R_WRITE = 1 << 4,   /* write role on :owner/:db, or write scope (implies R_AUTH) */
	R_ENQUEUE = 1 << 5, /* queues an operation: refused (429) while the caller has too many */
	R_ADMIN = 1 << 6,   /* admin role on :owner/:db, or admin scope (implies R_AUTH) */
	R_FORM = 1 << 7,    /* buffer the body as R_JSON does, unparsed (JSON or a form) */
	R_SELF = 1 << 8,    /* R_AUTH, and :user is the caller (403; users/{user}/operations) */
	R_RAW = 1 << 9,     /* with R_STREAM: the body is the file itself (bitio.c's raw upload) */
	R_DB = R_READ       /* the old name of R_READ */
};

typedef int (*api_handler)(th_req *req, th_error *err);

typedef struct api_route {
	const char *method;
	const char *pattern; /* "/api/v1alpha1/:owner/:db/pulls/:id"; ":name" segments captured */
	api_handler fn;
	unsigned flags; /* the preconditions dispatch() checks before fn runs */
} api_route;

/* A handler that takes its body as a stream of its own (tus.c's PATCH) lists its hooks in
 * api_body_routes: begin runs on the first call after the route's preconditions (it may leave a
 * reply in req->resp, or fail: the reply is its error), feed for each piece of body (a failure
 * becomes the reply and the rest is drained), and release when the request ends, whether the
 * handler ran or the connection was cut (`completed` is 1 only when the reply went out whole).
 * req->body_state is theirs. */
typedef struct api_body_hooks {
	int (*begin)(th_req *req, th_error *err);
	int (*feed)(th_req *req, const char *data, size_t len, th_error *err);
	void (*release)(th_req *req, int completed);
} api_body_hooks;

typedef struct api_body_route {
	api_handler fn;
	const api_body_hooks *hooks;
} api_body_route;

/* tus.c; ends with { NULL, NULL }. */
extern const api_body_route api_body_routes[];

/* Route tables: one per resource file that wants to keep its own routes beside its handlers
 * (pulls.c), plus the main table in router.c. A table ends with a { NULL } entry. */
extern const api_route api_pulls_routes[];
extern const api_route api_query_routes[];  /* query.c: SQL reads and CSV downloads */
extern const api_route api_export_routes[]; /* csv_export.c: a table in any export format */
extern const api_route api_files_routes[];  /* files.c: uploaded files as resources */
extern const api_route api_tus_routes[];    /* tus.c: resumable uploads */

/* sqlwrite.c: SQL writes and their poll. */
extern const api_route api_sqlwrite_routes[];
int api_sqlwrite_create(th_req *req, th_error *err);
int api_sqlwrite_poll(th_req *req, th_error *err);

/* web.c: the web pages and their files; catalog.c, commits.c: the databases, tables and commit
 * log the pages browse. */
extern const api_route api_web_routes[];
extern const api_route api_catalog_routes[];
/* accounts.c: register, login, logout, tokens; teams.c: collaborators, protection, events. */
extern const api_route api_accounts_routes[];
extern const api_route api_teams_routes[];
/* bitio.c: bit.io's raw-body upload, the import from a URL, SQL over POST. */
extern const api_route api_bitio_routes[];
extern const api_route api_forks_routes[]; /* forks.c */
/* openapi.c: GET /api/openapi.json, the document embedded from api/openapi.json (its bytes,
 * NUL-terminated, and their number). */
extern const api_route api_openapi_routes[];
extern const unsigned char api_openapi_json[];
extern const size_t api_openapi_json_len;
int api_openapi_get(th_req *req, th_error *err);
extern const api_route api_refs_routes[]; /* refs.c */
/* Every route table, ending with NULL (for tests that walk all routes). */
extern const api_route *const api_route_tables[];

/* Match method + path against every table, the most specific pattern winning (a literal segment
 * beats a capture at the first place they differ). Fills req->route and the captures. Returns
 * TH_OK, TH_ENOTFOUND (no pattern matches the path) or TH_EINVALID (the path matches but not the
 * method: *allow gets the allowed methods, e.g. "GET, POST", from the pool). */
int api_route_match(th_req *req, const char *method, const char *path, const char **allow);

/* The MHD access handler and completion callback (router.c). */
enum MHD_Result api_dispatch(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **req_cls);
void api_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                   enum MHD_RequestTerminationCode toe);

/* --- replies (reply.c) ----------------------------------------------------------------------- */

/* The HTTP status for a th_code: ENOTFOUND 404, EEXISTS/ECONFLICT 409, EINVALID 400, ETOOBIG 413,
 * EAUTH 401, EFORBIDDEN 403, EBUSY 503, ELIMIT 400, ENOSPC 507, anything else 500. */
unsigned api_status_for(int code);

/* The body of a JSON reply as it may leave (clean.c): `text` itself when it is valid UTF-8 and
 * quotes no path in the data directory, else a copy (*owned, the caller frees it) with invalid
 * bytes replaced by U+FFFD and the data directory cut from quoted paths; *len is updated. */
const char *api_clean_reply(const th_req *req, const char *text, size_t *len, char **owned);

/* A new object {"status":"Success"} for a success body, or NULL when out of memory. */
cJSON *api_success(void);
/* Reply `status` with the JSON `body` (taken, even on failure; printed unformatted; NULL means
 * out of memory). Returns TH_OK or TH_ENOMEM. */
int api_reply_json(th_req *req, unsigned status, cJSON *body, th_error *err);
/* Reply `status` with len bytes of JSON text (copied). Returns TH_OK or TH_ENOMEM. */
int api_reply_text(th_req *req, unsigned status, const char *text, size_t len, th_error *err);
/* Reply `status` with the JSON text of `head` followed by `rest`, without copying: takes both
 * buffers' memory (they are left empty), even on failure. Returns TH_OK or TH_ENOMEM. */
struct th_buf;
int api_reply_json_bufs(th_req *req, unsigned status, struct th_buf *head, struct th_buf *rest,
                        th_error *err);
/* Reply {"status":"Error","message":msg,"code":code} plus the fields of req->echo. */
int api_reply_error(th_req *req, unsigned status, const char *code, const char *msg);
/* api_reply_error for a th_error: the status from its code, the message, and "line"/"column"
 * when set. */
int api_reply_th_error(th_req *req, const th_error *e);
/* What dispatch does with a handler's return (router.c; also run by the query workers): a
 * negative code becomes the error reply (logged when it is a 5xx), a success without a reply a
 * 500. */
void api_reply_outcome(th_req *req, int error, th_error *err);

/* Does JSON text hold a NUL character, raw or escaped as \u0000 (router.c)? cJSON would cut the
 * string there, so such text is refused before it is parsed. */
int api_json_has_nul(const char *text, size_t len);

/* Add a string (or NULL -> JSON null) to obj; returns obj's new item or NULL when out of memory.*/
cJSON *api_json_str(cJSON *obj, const char *key, const char *value);
/* The string member `key` of JSON object `obj` into *out (borrowed from obj). A missing key or
 * JSON null gives *out = NULL, or TH_EINVALID "<what>'key' is required" when `required`; any
 * other type is TH_EINVALID "<what>'key' must be a string". `what` prefixes the message
 * ("params: " or ""). */
int api_json_get_str(const char **out, const cJSON *obj, const char *key, int required,
                     const char *what, th_error *err);
/* Set req->echo[key] = value (copied), creating req->echo as needed. */
void api_echo(th_req *req, const char *key, const char *value);

/* --- slow and malformed clients (guard.c) ---------------------------------------------------- */

/* The connection registry and its watchdog thread, with the two deadlines (0 = none). Returns
 * TH_OK or TH_ENOMEM. */
int api_guard_new(api_guard **out, unsigned header_timeout_s, unsigned body_timeout_s,
                  th_error *err);
/* Run tick(cls) on the watchdog thread about every every_ms (set before api_guard_start). */
void api_guard_set_tick(api_guard *g, void (*tick)(void *), void *cls, unsigned every_ms);
/* Start the watchdog. Returns TH_OK or TH_ERROR. */
int api_guard_start(api_guard *g, th_error *err);
/* Stop the watchdog and free the registry; after MHD_stop_daemon. Accepts NULL. */
void api_guard_free(api_guard *g);
/* MHD_OPTION_NOTIFY_CONNECTION (cls = the guard) and MHD_OPTION_UNESCAPE_CALLBACK. */
void api_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe);
size_t api_guard_unescape(void *cls, struct MHD_Connection *conn, char *s);

/* The guard record of conn (NULL when it has none) and its client address ("" for NULL). */
api_conn *api_conn_of(struct MHD_Connection *conn);
const char *api_conn_addr(const api_conn *c);
/* Did the current request's URL or query decode to a NUL byte? Clears the mark. */
int api_conn_take_url_nul(api_conn *c);
/* Phase changes of the connection's current request: the head is complete (its body, if any,
 * follows), len more bytes of body came, a handler runs or a reply is queued, the request ended.
 * Each returns -1 when the watchdog has already closed the connection (answer nothing), else 0.
 * A NULL c is allowed and never closed. */
int api_conn_body_phase(api_guard *g, api_conn *c);
int api_conn_body_data(api_guard *g, api_conn *c, size_t len);
int api_conn_busy(api_guard *g, api_conn *c);
void api_conn_done(api_guard *g, api_conn *c);

/* Refuse request framing that lets two parsers disagree on where a body ends (RFC 9112 §6.3):
 * more than one Content-Length or Transfer-Encoding header, both at once, or a transfer coding
 * other than "chunked"; a header name with whitespace before its colon (§5.1: a proxy may take
 * "Content-Length :" for the length that MHD ignores); a Host header missing from an HTTP/1.1
 * request or given twice (§3.2). Returns TH_OK or TH_EINVALID saying which. */
int api_check_framing(th_req *req, th_error *err);

/* --- the query pool (qpool.c) --------------------------------------------------------------- */

/* A handler's return when it parked its request in the query pool: a worker answers it. */
#define API_PARKED 1

/* A job of the pool: runs on a worker with the request to itself, and returns as a handler does
 * (TH_OK with the reply in req->resp, or a negative code with err set). */
typedef int (*api_job_fn)(th_req *req, void *arg, th_error *err);

/* Start `threads` workers (0: 1) for jobs of at most `per_user` running or waiting per caller (all
 * anonymous callers are one; 0: no cap) and `queue` waiting beyond the running ones. Returns TH_OK,
 * TH_ENOMEM or TH_ERROR (no thread). */
int api_qpool_new(api_qpool **out, unsigned threads, unsigned per_user, unsigned queue,
                  th_error *err);
/* Refuse new jobs (503), answer the waiting ones with 503, wait for the running ones and join the
 * workers: after it no connection is suspended, and MHD may be stopped. Accepts NULL. */
void api_qpool_close(api_qpool *p);
/* Close (if not yet) and free. Accepts NULL. */
void api_qpool_free(api_qpool *p);
/* From a handler: run fn(req, arg) on a worker of req->srv->qpool. Returns API_PARKED (the
 * connection is suspended; the handler returns this and touches req no more), TH_OK with a 429
 * (the caller's cap) or 503 (the pool is full, or closing) reply, with Retry-After, in req->resp,
 * or TH_ENOMEM. `budget_ms` is the job's time limit (for Retry-After). Without a pool, fn runs
 * here and its result is returned. `arg` must live as long as the request (its pool). */
int api_qpool_submit(th_req *req, api_job_fn fn, void *arg, uint32_t budget_ms, th_error *err);
/* A parked request is completed (its reply sent, or its connection gone): from api_completed. */
void api_qpool_completed(api_qpool *p);

/* --- admission control (admit.c) ------------------------------------------------------------ */

/* Make (api_admit_init: TH_OK or TH_ENOMEM) and free srv's rate limiters from srv->cfg. */
int api_admit_init(api_server *srv, th_error *err);
void api_admit_free(api_server *srv);
/* Charge the request to its token's rate (authenticated: req->token_key is set) or to its
 * address's. Returns 0, or -1 with a 429 reply (Retry-After) in req->resp when over the rate. */
int api_admit_rate(th_req *req, int authenticated);
/* For an R_ENQUEUE route: leave a 429 reply in req->resp when req->user already has
 * --max-pending-ops unfinished operations. Returns TH_OK (reply or not) or the store's error. */
int api_admit_enqueue(th_req *req, th_error *err);

/* --- streaming multipart/form-data (multipart.c) --------------------------------------------- */

typedef struct api_mp api_mp;

typedef struct api_mp_callbacks {
	/* A part begins. name and filename (NULL if none) and ctype (NULL if no Content-Type) are
	 * borrowed for the call. Return 0 to go on, a negative th_code to stop the parse. */
	int (*part_begin)(void *payload, const char *name, const char *filename, const char *ctype,
	                  th_error *err);
	int (*part_data)(void *payload, const char *data, size_t len, th_error *err);
	int (*part_end)(void *payload, th_error *err);
} api_mp_callbacks;

/* The boundary parameter of a multipart/form-data Content-Type (quoted or not), copied into
 * out[71]. Returns TH_OK, TH_EINVALID (not multipart/form-data: the message says so) or
 * TH_EINVALID (no or bad boundary). *is_multipart tells the two apart. */
int api_mp_boundary(char out[71], int *is_multipart, const char *content_type, th_error *err);

/* A parser for `boundary` whose memory comes from `pool` (freed with it). Returns TH_OK or
 * TH_ENOMEM. */
int api_mp_new(api_mp **out, api_pool *pool, const char *boundary, const api_mp_callbacks *cb,
               void *payload, th_error *err);
/* Feed the next bytes of the body. Returns TH_OK, TH_EINVALID (malformed: the message says
 * where) or whatever a callback returned. */
int api_mp_feed(api_mp *mp, const char *data, size_t len, th_error *err);
/* The body ended: TH_OK when the closing boundary was seen, TH_EINVALID otherwise. */
int api_mp_finish(api_mp *mp, th_error *err);

/* --- base64 (base64.c) ---------------------------------------------------------------------- */

/* Decode len bytes of base64 (standard alphabet, '=' padding optional) into out (size bytes).
 * Returns the number of bytes written, or -1 for input that is not base64 or does not fit. */
long api_base64_decode(unsigned char *out, size_t size, const char *in, size_t len);

/* --- authorization (auth.c) ------------------------------------------------------------------ */

/* The token in an authorization header value: "token T", "Bearer T" (any case) or a bare "T",
 * surrounding white space ignored. Returns a pointer into `value` and its length in *len, or NULL
 * when the value holds no token. */
const char *api_token_from_header(const char *value, size_t *len);
/* The token of an HTTP basic authorization value, "Basic base64(T:)" (the token as the user name,
 * the password empty), copied into out (size bytes, NUL-terminated). Returns 1 with the token, 0
 * when the value is not basic auth at all, -1 when it is but malformed or with a password. */
int api_token_from_basic(char *out, size_t size, const char *value);
/* Resolve req's credential to req->user, scope, token_id (and, for a session cookie, by_cookie and
 * csrf): the authorization header's API token (token, Bearer, bare, or basic auth with the token
 * as the user name), else the X-Api-Key header's, else the session cookie. Returns TH_OK
 * (req->user "" when there is none, or the cookie's session is not live), TH_EAUTH (a header
 * whose token is unknown, revoked or expired) or TH_ESTORE. */
int api_auth(th_req *req, th_error *err);
/* The CSRF token of session secret `secret` (64 hex digits). */
void api_csrf_of(char out[65], const char *secret);
/* Does the request carry a credential (an authorization or X-Api-Key header, or a session
 * cookie)? */
int api_has_credential(const th_req *req);
/* Check req against its route's flags (see R_READ): resolves req->db and req->role for routes
 * with :owner/:db. Returns TH_OK, TH_ENOTFOUND (no such database, or hidden), TH_EAUTH (401),
 * TH_EFORBIDDEN (403: the message says which role, scope or CSRF token is missing) or
 * TH_ESTORE. */
int api_authorize(th_req *req, th_error *err);
/* The role of `user` ("" = anonymous) on db: ADMIN for its owner, else the collaborator's role,
 * at least READ on a public database. Returns TH_OK or TH_ESTORE. */
int api_role_of(th_role *out, th_req *req, const char *user, int64_t db_id, const char *owner,
                int is_private, th_error *err);
/* The client's address as text ("" when unknown), for events. */
const char *api_client_addr(const th_req *req);
/* An event for req->db (0 when none) by req->user from the client's address. */
th_event_new api_event(const th_req *req, const char *action, const char *target,
                       const char *detail);

/* --- handlers -------------------------------------------------------------------------------- */

int api_user_get(th_req *req, th_error *err);
int api_databases_create(th_req *req, th_error *err);
int api_branches_list(th_req *req, th_error *err);
int api_branches_create(th_req *req, th_error *err);
int api_upload_create(th_req *req, th_error *err);
int api_upload_poll(th_req *req, th_error *err);
int api_jobs_list(th_req *req, th_error *err);
int api_user_operations(th_req *req, th_error *err);
int api_operation_cancel(th_req *req, th_error *err); /* operations_cancel.c */
/* Operation names (operations.c), the one place they are formatted and parsed. DoltHub's job name
 * "repositoryOwners/<owner>/repositories/<db>/jobs/<id>" and the user's operation name
 * "users/<user>/userOperations/<id>", from the pool (NULL when out of memory). */
const char *api_op_job_name(api_pool *pool, const char *owner, const char *db, const char *id);
const char *api_op_user_name(api_pool *pool, const char *user, const char *id);
/* The uuid (copied to id) in an operation name given to a route of req->db: its job name, a user
 * operation name, or the bare uuid. Returns TH_OK, TH_ENOTFOUND (the job name of another database)
 * or TH_EINVALID (not an operation name: the message shows the form wanted). */
int api_op_name_parse(char id[TH_UUID_SIZE], const th_req *req, const char *name, th_error *err);
/* pulls.c and its siblings: api/pulls_api.h */
int api_query_read(th_req *req, th_error *err); /* query.c */
int api_csv_export(th_req *req, th_error *err); /* csv_export.c */
int api_csv_zip(th_req *req, th_error *err);    /* csv_export.c */
/* saved.c: saved queries (their routes are in query.c's table) */
int api_saved_list(th_req *req, th_error *err);
int api_saved_run(th_req *req, th_error *err);
int api_saved_get(th_req *req, th_error *err);
int api_saved_put(th_req *req, th_error *err);
int api_saved_delete(th_req *req, th_error *err);
/* The :ref capture joined with :ref2 and :ref3 by '/' (query.c), from the pool; NULL if none. */
const char *api_query_ref(th_req *req);

/* Open the repository of req->db (branches.c); the caller frees it with th_repo_free. Returns
 * TH_OK, TH_ENOTFOUND or TH_ESTORE. */
struct th_repo;
int api_repo_open(struct th_repo **out, th_req *req, th_error *err);

/* R_STREAM: the upload's body hooks (upload.c). begin runs on the first call, after the route's
 * preconditions; feed for each piece of body; the handler then finishes. They return TH_OK or a
 * th_code with err set (the reply is that error). */
int api_upload_begin(th_req *req, th_error *err);
int api_upload_feed(th_req *req, const char *data, size_t len, th_error *err);
/* R_RAW: DoltHub's upload params (JSON text from the pool, into *json and *len) of a raw-body
 * upload, made from the route's :table, its query arguments and the Content-Disposition file name
 * (copied into filename[fnsz], "" when none) (bitio.c). Returns TH_OK or TH_ENOMEM. */
int api_import_raw_params(char **json, size_t *len, char *filename, size_t fnsz, th_req *req,
                          th_error *err);
/* Validate DoltHub's upload params (`json`, the text of an object, copied) as the upload does and
 * keep them in req->upload (made when missing); file_name names the file when they do not.
 * Returns TH_OK, TH_EINVALID (the message names the key) or TH_ENOMEM. */
int api_upload_params(th_req *req, const char *json, size_t len, const char *file_name,
                      th_error *err);
/* Queue the import of req->upload's params (validated) and reply with its operation's names: of
 * the uploaded file, or, when `url` is not NULL, of the file the job fetches from url. Checks the
 * branch exists. Returns TH_OK, TH_EINVALID, TH_ENOMEM or TH_ESTORE. */
int api_upload_enqueue(th_req *req, const char *url, th_error *err);
/* SQL over POST: the statement of the JSON body's "query_string" or "query" (bitio.c), borrowed
 * from req->json. Returns TH_OK or TH_EINVALID. */
int api_query_body_sql(const char **sql, th_req *req, th_error *err);
/* Release what the upload holds (a temp file is removed). Called at completion. */
void api_upload_release(th_req *req);
/* Remove the uploaded files that only failed operations name, looking at the operations that
 * failed since the last run (cls: the api_server). For the watchdog's periodic tick. */
void api_upload_sweep(void *cls);

/* --- starting an import from a stored file (files.c, upload.c) ----------------------------- */

/* The validated params of an import; strings borrowed from pjson (or the pool). */
typedef struct api_import_req {
	const char *table, *file_name, *branch;
	th_import_op op;
	const th_format *fmt;
	const char **pk;
	size_t npk;
	const char *sheet;  /* sheetName (Xlsx), or NULL */
	const char **nulls; /* nullValues */
	size_t nnulls;
	cJSON *pjson; /* api_upload_params_parse's: the caller deletes it */
	/* The branch's head when the upload was taken, which the import starts from; NULL: read
	 * by api_import_start (jobs.h, th_import_params.base). */
	const th_oid *base;
} api_import_req;

/* Validate import params (JSON text, DoltHub's upload params) as the multipart upload does, into
 * *out (pjson the caller's to delete). Returns TH_OK, TH_EINVALID (the message names the key) or
 * TH_ENOMEM. */
int api_upload_params_parse(api_import_req *out, th_req *req, const char *json, size_t len,
                            th_error *err);

/* Queue the import `ir` of the stored upload `sha` (size bytes) into req->db by req->user: the
 * file is recorded first (a new file resource, unless file_id names one already: then that is
 * the file read), the operation queued and linked to it, and the workers woken; the import starts
 * from ir->base, else from the branch's head now. op_id gets the operation's id and file_id the
 * file's. Returns TH_OK, TH_EINVALID or TH_ESTORE. */
int api_import_start(char op_id[TH_UUID_SIZE], char file_id[TH_UUID_SIZE], th_req *req,
                     const api_import_req *ir, const char *sha, uint64_t size, th_error *err);

/* The stored file `file_id` of req->db: its sha-256, size and name (name_out: 256 bytes).
 * Returns TH_OK, TH_ENOTFOUND ("file 'x' not found in 'o/d'"), TH_EINVALID (not a file id) or
 * TH_ESTORE. */
int api_files_lookup(char sha_out[65], uint64_t *size_out, char *name_out, th_req *req,
                     const char *file_id, th_error *err);

/* Remove the files unused for srv->cfg.keep_uploads_ms and the resumable uploads left that long
 * (their records and the bytes nothing else names), and log what was removed and the disk the
 * files use. For the serve loop, about once a minute; never on a request. */
void api_files_sweep(api_server *srv);

#endif
