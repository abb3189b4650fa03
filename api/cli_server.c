/* cli_server.c: `tablehub serve` and `tablehub user add` (tokens: cli_tokens.c).
 *
 * serve holds the data dir's write lock for its whole life, re-queues the operations a killed
 * predecessor left running (th_jobs_start), starts the job workers and the HTTP server, and runs
 * until SIGINT or SIGTERM. On a metadata store several servers share (meta_coord.h: PostgreSQL)
 * it takes no data dir lock, since its peers work in the same data dir; it names itself with
 * --node-id in the leases it takes, and keeps its query snapshots in --cache. Signals are blocked
 * in every thread and taken with sigwait() by the main thread, so no handler runs inside MHD or
 * SQLite.
 *
 * user add writes only meta.sqlite and takes no lock: it works beside a running server. The new
 * token is printed once, alone on stdout; only its hash is stored.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "tablehub/text.h"
#include "tablehub/datadir.h"
#include "tablehub/files.h"
#include "tablehub/jobs.h"
#include "tablehub/log.h"
#include "tablehub/meta.h"
#include "tablehub/meta_coord.h"
#include "tablehub/repo.h"
#include "tablehub/sqlcache.h"

static const char serve_usage[] =
        "usage: tablehub serve [--data DIR] [--listen ADDR:PORT] [--workers N] "
        "[--max-upload-mb N] [LIMITS]\n"
        "  --listen         address to bind (default 127.0.0.1:8080)\n"
        "  --workers        import worker threads (default 8; one at a time per database)\n"
        "  --max-upload-mb  upload size cap in MB (default 100)\n"
        "  --threads        HTTP threads (default: four per CPU, at least 8)\n"
        "  --meta URL       the metadata store: postgresql://... (a server several nodes\n"
        "                   share; default: TABLEHUB_META, else DIR/meta.sqlite)\n"
        "  --node-id ID     this server's name in the leases of the operations it runs, 1-64\n"
        "                   of [A-Za-z0-9_-] (default: the data dir's own id; give each of\n"
        "                   several servers sharing a metadata store its own)\n"
        "  --cache DIR      where query snapshots are kept (default: DIR/cache of --data); a\n"
        "                   local disk of this server's when several share the data dir\n"
        "limits (0 turns one off):\n"
        "  --max-connections N         open connections in all (default 4096, kept below the\n"
        "                              file descriptor limit)\n"
        "  --max-connections-per-ip N  open connections from one address (default 64)\n"
        "  --header-timeout S          seconds to send a whole request head (default 10)\n"
        "  --body-timeout S            seconds for each 64 KiB of a request body (default 30)\n"
        "  --idle-timeout S            seconds a connection may stay silent (default 60)\n"
        "  --rate-per-token R          requests a second with one token, bursts of 10 R\n"
        "                              (default 50)\n"
        "  --rate-per-address R        requests a second from one address without a valid\n"
        "                              token, bursts of 10 R (default 50)\n"
        "  --max-pending-ops N         unfinished operations of one user (default 100)\n"
        "  --min-free-mb N             disk space an upload must leave free (default 100)\n"
        "  --max-op-seconds S          time cap of one run of an operation of any kind; past\n"
        "                              it the operation fails and commits nothing (default\n"
        "                              3600)\n"
        "  --max-op-seconds-KIND S     the same for one kind: import, merge, ...\n"
        "repacks, queued after a write that leaves a repository with (0 turns one off):\n"
        "  --repack-loose-objects N    this many loose objects (default 2000)\n"
        "  --repack-packs N            this many packs (default 20)\n"
        "accounts:\n"
        "  --no-signup      refuse POST /api/v1alpha1/users (accounts only from 'user add')\n"
        "  --cookie-secure  mark session cookies Secure (when clients reach the server over\n"
        "                   https, through a proxy)\n"
        "SQL queries run in their own pool of threads, off the HTTP threads:\n"
        "  --query-workers N           queries running at once (default 2)\n"
        "  --query-per-user N          queries of one user, or of all anonymous callers\n"
        "                              together, running or waiting; beyond, 429 (default 8)\n"
        "  --query-queue N             queries waiting for a worker; beyond, 503 (default 16)\n"
        "imports from a URL (POST .../import-url), fetched by the server:\n"
        "  --max-url-mb N              size cap of a fetched file (default: --max-upload-mb)\n"
        "  --url-timeout S             time cap of a fetch, in seconds (default 300)\n"
        "  --allow-private-urls        allow loopback, private and link-local addresses (cloud\n"
        "                              metadata addresses stay refused)\n"
        "files:\n"
        "  --max-file-gb N     size of a resumable (tus) upload in GiB (default 10; 0 = none)\n"
        "  --keep-uploads D    remove uploaded files unused for D (default 7d; 30s, 12h, 0 =\n"
        "                      keep them)\n";

/* A duration "N", "Ns", "Nm", "Nh" or "Nd" (seconds by default) in ms into *ms. Returns 0, or
 * -1 for anything else. */
static int parse_duration(int64_t *ms, const char *s)
{
	char *end;
	long long n;
	int64_t unit = 1000;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (*s < '0' || *s > '9' || errno != 0 || n < 0 || n > 100LL * 365 * 86400)
		return -1;
	if (*end == 'm')
		unit = 60000;
	else if (*end == 'h')
		unit = 3600000;
	else if (*end == 'd')
		unit = 86400000;
	else if (*end != 's' && *end != '\0')
		return -1;
	if (*end != '\0' && end[1] != '\0')
		return -1;
	*ms = (int64_t)n * unit;
	return 0;
}

/* Take a flag without a value out of argv; 1 when it was there. */
static int take_flag(int *argc, char **argv, const char *name)
{
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], name) == 0) {
			memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i) * sizeof(*argv));
			(*argc)--;
			return 1;
		}
	}
	return 0;
}

/* A numeric option within [lo, hi]; *bad set on a malformed value. */
static long take_num(int *argc, char **argv, const char *name, long def, long lo, long hi, int *bad)
{
	int missing = 0;
	const char *v = cli_take_opt(argc, argv, name, &missing);
	char *end;
	long n;

	if (missing) {
		fprintf(stderr, "tablehub serve: %s needs a value\n", name);
		*bad = 1;
		return def;
	}
	if (v == NULL)
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno != 0 || n < lo || n > hi) {
		fprintf(stderr, "tablehub serve: %s must be a number from %ld to %ld (got '%s')\n",
		        name, lo, hi, v);
		*bad = 1;
		return def;
	}
	return n;
}

/* The time caps of the operation kinds, from the flags: `all` for every kind, then one per kind
 * of the queue's table (-1 where its flag is absent). */
#define MAX_CAPS 16
struct time_caps {
	long all;
	long kind[MAX_CAPS];
};

/* Take --max-op-seconds S and --max-op-seconds-<kind> S out of argv. Returns 0, or -1 after a
 * message (a bad value, an unknown kind). */
static int take_time_caps(int *argc, char **argv, struct time_caps *c)
{
	char name[64];
	int bad = 0;

	c->all = take_num(argc, argv, "--max-op-seconds", TH_JOBS_MAX_SECONDS, 0, 100000000, &bad);
	for (size_t i = 0; th_job_kinds[i] != NULL && i < MAX_CAPS; i++) {
		snprintf(name, sizeof(name), "--max-op-seconds-%s", th_job_kinds[i]->name);
		c->kind[i] = take_num(argc, argv, name, -1, 0, 100000000, &bad);
	}
	for (int i = 1; !bad && i < *argc; i++) {
		if (strncmp(argv[i], "--max-op-seconds-", 17) == 0) {
			fprintf(stderr, "tablehub serve: %s: no such operation kind\n", argv[i]);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

/* Set the caps on the pool `j` (not yet running). Returns TH_OK or TH_ENOTFOUND. */
static int set_time_caps(th_jobs *j, const struct time_caps *c, th_error *err)
{
	int error = th_jobs_set_max_seconds(j, NULL, c->all, err);

	for (size_t i = 0; error == TH_OK && th_job_kinds[i] != NULL && i < MAX_CAPS; i++)
		if (c->kind[i] >= 0)
			error = th_jobs_set_max_seconds(j, th_job_kinds[i]->name, c->kind[i], err);
	return error;
}

/* A server folder (the data folder, the query cache), as resolved (and as given when it is a path,
 * not a bare word that messages use in prose), never appears in a log line or a message a client
 * reads (th_redact). */
static void redact_dir(const char *dir)
{
	char *real = realpath(dir, NULL);

	if (strchr(dir, '/') != NULL)
		th_redact_add(dir);
	if (real != NULL && strcmp(real, dir) != 0 && strcmp(real, "/") != 0)
		th_redact_add(real);
	free(real);
}

/* Does serve's --meta (or TABLEHUB_META) name a store that several servers may share? */
static int meta_url_shared(const char *url)
{
	if (url == NULL)
		url = getenv("TABLEHUB_META");
	return url != NULL && url[0] != '\0';
}

/* The node id of a server on a shared store without --node-id: "<hostname>-<pid>", with what a
 * node id may not hold replaced by '-'. */
static void default_node_id(char out[TH_META_NODE_ID_SIZE])
{
	char host[64] = "";

	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "node");
	snprintf(out, TH_META_NODE_ID_SIZE, "%.40s-%ld", host, (long)getpid());
	for (char *p = out; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			*p = '-';
}

int cli_serve(int argc, char **argv)
{
	const char *dir = cli_take_data_dir(&argc, argv);
	const char *listen, *meta_url, *node_id, *cache_dir;
	th_meta_options meta_opts = { NULL, NULL };
	char node_buf[TH_META_NODE_ID_SIZE];
	int missing = 0, bad = 0, lock_fd = -1, sig, rc = 1, swept = 0, stale = 0, git_ready = 0;
	long workers, max_mb, threads, max_conns, per_ip, head_s, body_s, idle_s;
	long rate_token, rate_addr, max_pending, q_workers, q_per_user, q_queue, min_free,
	        max_file_gb;
	long url_mb, url_s, repack_loose, repack_packs;
	const char *keep;
	int64_t keep_ms = 7 * 86400000LL, sweep_ms;
	struct timespec sweep_every;
	int no_signup, cookie_secure, private_urls;
	struct time_caps caps;
	th_meta *meta = NULL;
	th_jobs *jobs = NULL;
	api_server srv;
	api_config cfg;
	th_error err = { 0 };
	sigset_t sigs;

	memset(&srv, 0, sizeof(srv));
	listen = cli_take_opt(&argc, argv, "--listen", &missing);
	if (missing) {
		fprintf(stderr, "tablehub serve: --listen needs a value\n%s", serve_usage);
		return 2;
	}
	meta_url = cli_take_opt(&argc, argv, "--meta", &missing);
	if (missing) {
		fprintf(stderr, "tablehub serve: --meta needs a value\n%s", serve_usage);
		return 2;
	}
	meta_opts.url = meta_url; /* NULL: TABLEHUB_META, else DIR/meta.sqlite */
	node_id = cli_take_opt(&argc, argv, "--node-id", &missing);
	if (missing || (node_id != NULL && !th_name_valid(node_id))) {
		fprintf(stderr, "tablehub serve: --node-id wants 1-64 of [A-Za-z0-9_-]\n");
		return 2;
	}
	cache_dir = cli_take_opt(&argc, argv, "--cache", &missing);
	if (missing || (cache_dir != NULL && cache_dir[0] == '\0')) {
		fprintf(stderr, "tablehub serve: --cache needs a directory\n");
		return 2;
	}
	workers = take_num(&argc, argv, "--workers", 8, 1, 64, &bad);
	max_mb = take_num(&argc, argv, "--max-upload-mb", 100, 1, 1024 * 1024, &bad);
	threads = take_num(&argc, argv, "--threads", 0, 0, 256, &bad);
	max_conns = take_num(&argc, argv, "--max-connections", 4096, 1, 1000000, &bad);
	per_ip = take_num(&argc, argv, "--max-connections-per-ip", 64, 0, 1000000, &bad);
	head_s = take_num(&argc, argv, "--header-timeout", 10, 0, 3600, &bad);
	body_s = take_num(&argc, argv, "--body-timeout", 30, 0, 3600, &bad);
	idle_s = take_num(&argc, argv, "--idle-timeout", 60, 1, 86400, &bad);
	rate_token = take_num(&argc, argv, "--rate-per-token", 50, 0, 1000000, &bad);
	rate_addr = take_num(&argc, argv, "--rate-per-address", 50, 0, 1000000, &bad);
	max_pending = take_num(&argc, argv, "--max-pending-ops", 100, 0, 1000000, &bad);
	no_signup = take_flag(&argc, argv, "--no-signup");
	cookie_secure = take_flag(&argc, argv, "--cookie-secure");
	q_workers = take_num(&argc, argv, "--query-workers", 2, 1, 256, &bad);
	q_per_user = take_num(&argc, argv, "--query-per-user", 8, 0, 100000, &bad);
	q_queue = take_num(&argc, argv, "--query-queue", 16, 0, 100000, &bad);
	min_free = take_num(&argc, argv, "--min-free-mb", 100, 0, 100000000, &bad);
	url_mb = take_num(&argc, argv, "--max-url-mb", max_mb, 1, 1024 * 1024, &bad);
	url_s = take_num(&argc, argv, "--url-timeout", 300, 1, 86400, &bad);
	private_urls = take_flag(&argc, argv, "--allow-private-urls");
	max_file_gb = take_num(&argc, argv, "--max-file-gb", 10, 0, 1024 * 1024, &bad);
	keep = cli_take_opt(&argc, argv, "--keep-uploads", &missing);
	if (missing || (keep != NULL && parse_duration(&keep_ms, keep) < 0)) {
		fprintf(stderr,
		        "tablehub serve: --keep-uploads wants a duration: 7d, 12h, 30m, 90s "
		        "or 0 (keep files for ever)\n");
		bad = 1;
	}
	repack_loose = take_num(&argc, argv, "--repack-loose-objects", 2000, 0, 1000000000, &bad);
	repack_packs = take_num(&argc, argv, "--repack-packs", 20, 0, 1000000, &bad);
	if (bad || take_time_caps(&argc, argv, &caps) < 0)
		return 2;
	if (argc > 1) {
		fprintf(stderr, "tablehub serve: unexpected argument '%s'\n%s", argv[1],
		        serve_usage);
		return 2;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.data_dir = dir;
	cfg.listen = listen ? listen : "127.0.0.1:8080";
	cfg.threads = (unsigned)threads;
	cfg.max_upload = (uint64_t)max_mb * 1048576u;
	cfg.max_connections = (unsigned)max_conns;
	cfg.max_conns_per_ip = (unsigned)per_ip;
	cfg.header_timeout_s = (unsigned)head_s;
	cfg.body_timeout_s = (unsigned)body_s;
	cfg.timeout_s = (unsigned)idle_s;
	cfg.rate_per_token = (unsigned)rate_token;
	cfg.rate_per_address = (unsigned)rate_addr;
	cfg.max_pending_ops = (unsigned)max_pending;
	cfg.no_signup = no_signup;
	cfg.cookie_secure = cookie_secure;
	cfg.query_threads = (unsigned)q_workers;
	cfg.query_per_user = (unsigned)q_per_user;
	cfg.query_queue = (unsigned)q_queue;
	cfg.min_free_mb = (unsigned)min_free;
	cfg.url_max_bytes = (uint64_t)url_mb * 1048576u;
	cfg.url_timeout_s = (unsigned)url_s;
	cfg.allow_private_urls = private_urls;
	cfg.max_file = (uint64_t)max_file_gb << 30;
	cfg.keep_uploads_ms = keep_ms;
	{
		uint32_t a;
		uint16_t p;
		if (api_parse_listen(&a, &p, cfg.listen, &err) < 0) {
			fprintf(stderr, "tablehub serve: %s\n", err.msg);
			return 2;
		}
	}

	/* Block the signals before any thread starts, so every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* On a store other servers may share, each needs its own node id: by default its host's
	 * name and its pid. */
	if (node_id == NULL && meta_url_shared(meta_url)) {
		default_node_id(node_buf);
		node_id = node_buf;
	}
	meta_opts.node_id = node_id;
	if (th_datadir_init(dir, &err) < 0)
		goto fail;
	redact_dir(dir);
	if (th_meta_open_with(&meta, dir, &meta_opts, &err) < 0)
		goto fail;
	/* One server alone on its store holds the data dir, and what a crash left in DIR/tmp is
	 * its own; servers sharing a store share the data dir and leave DIR/tmp to each other. */
	if (!th_meta_shared(meta) &&
	    (th_datadir_lock(&lock_fd, dir, &err) < 0 || th_upload_sweep(&swept, dir, &err) < 0))
		goto fail;
	if ((cache_dir != NULL && th_snap_set_dir(cache_dir, &err) < 0) ||
	    th_repo_global_init(&err) < 0)
		goto fail;
	git_ready = 1;
	th_repo_set_shared(th_meta_shared(meta));
	if (th_snap_dir() != NULL)
		redact_dir(th_snap_dir());
	if (th_repo_sweep_stale(&stale, dir, 3600 * 1000, &err) < 0 ||
	    th_jobs_create(&jobs, dir, meta, (int)workers, &err) < 0)
		goto fail;
	th_jobs_set_repack(jobs, (uint64_t)repack_loose, (uint64_t)repack_packs);
	if (set_time_caps(jobs, &caps, &err) < 0 || th_jobs_run(jobs, &err) < 0 ||
	    api_server_start(&srv, &cfg, meta, jobs, &err) < 0)
		goto fail;
	if (swept > 0)
		TH_LOG(TH_LOG_INFO, "removed %d unfinished upload(s) of an earlier run", swept);
	if (stale > 0)
		TH_LOG(TH_LOG_INFO,
		       "removed %d half-made or half-removed repository folder(s) of an earlier "
		       "run",
		       stale);
	TH_LOG(TH_LOG_INFO,
	       "serving %s on http://%.*s:%u/api/v1alpha1 (%ld workers, uploads up to %ld MB, "
	       "node %s)",
	       dir, (int)(strrchr(cfg.listen, ':') - cfg.listen), cfg.listen, (unsigned)srv.port,
	       workers, max_mb, th_meta_node_id(meta));
	TH_LOG(TH_LOG_INFO, "get a token with: tablehub user add --data %s NAME", dir);

	/* Between signals, files unused for --keep-uploads are removed: every minute, or every
	 * half of a shorter period. */
	sweep_ms =
	        keep_ms > 0 && keep_ms < 120000 ? (keep_ms / 2 > 1000 ? keep_ms / 2 : 1000) : 60000;
	sweep_every.tv_sec = (time_t)(sweep_ms / 1000);
	sweep_every.tv_nsec = (long)(sweep_ms % 1000) * 1000000L;
	for (;;) {
		sig = sigtimedwait(&sigs, NULL, &sweep_every);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		if (sig < 0 && errno == EAGAIN)
			api_files_sweep(&srv);
	}
	TH_LOG(TH_LOG_INFO, "shutting down (%s): finishing requests and running jobs",
	       sig == SIGINT ? "SIGINT" : "SIGTERM");
	rc = 0;
	goto done;

fail:
	fprintf(stderr, "tablehub serve: %s\n", err.msg);
done:
	api_server_stop(&srv);
	th_jobs_stop(jobs);
	th_meta_close(meta);
	if (git_ready)
		th_repo_global_shutdown();
	if (lock_fd >= 0)
		th_datadir_unlock(lock_fd);
	return rc;
}

/* Open the meta store of the data dir in argv (creating the dir). Returns 0, 1 or 2 as exit. */
static int open_meta(th_meta **meta, const char *dir, const char *cmd)
{
	th_error err = { 0 };

	if (th_datadir_init(dir, &err) < 0 || th_meta_open(meta, dir, &err) < 0) {
		fprintf(stderr, "tablehub %s: %s\n", cmd, err.msg);
		return 1;
	}
	return 0;
}

static int token_cmd(int argc, char **argv, const char *cmd, const char *sub)
{
	const char *dir = cli_take_data_dir(&argc, argv);
	char token[TH_TOKEN_SIZE];
	th_meta *meta = NULL;
	th_error err = { 0 };
	int error, rc;

	if (argc != 3 || strcmp(argv[1], sub) != 0) {
		fprintf(stderr, "usage: tablehub %s %s [--data DIR] NAME\n", cmd, sub);
		return 2;
	}
	if (!th_name_valid(argv[2])) {
		fprintf(stderr, "tablehub %s: bad user name '%s': use 1-64 of [A-Za-z0-9_-]\n", cmd,
		        argv[2]);
		return 1;
	}
	if ((rc = open_meta(&meta, dir, cmd)) != 0)
		return rc;
	error = th_meta_user_create(token, meta, argv[2], &err);
	th_meta_close(meta);
	if (error == TH_EEXISTS) {
		fprintf(stderr,
		        "tablehub %s: user '%s' already exists (make another token with: "
		        "tablehub token create --data %s %s)\n",
		        cmd, argv[2], dir, argv[2]);
		return 1;
	}
	if (error < 0) {
		fprintf(stderr, "tablehub %s: %s\n", cmd, err.msg);
		return 1;
	}
	/* The token alone on stdout, so `T=$(tablehub user add NAME)` works. */
	printf("%s\n", token);
	memset(token, 0, sizeof(token));
	if (fflush(stdout) != 0)
		return 1;
	fprintf(stderr, "user created: this token is shown only once; send it as 'authorization: "
	                "token <token>'\n");
	return 0;
}

int cli_user(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "passwd") == 0)
		return cli_user_passwd(argc, argv);
	return token_cmd(argc, argv, "user", "add");
}
