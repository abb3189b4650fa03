/* cli_remote.c: `tablehub login URL`, the stored client config, the choice of server and token for
 * every command run against a server, and what those commands share: failures, JSON output, and
 * waiting for an operation (see cli_remote.h).
 *
 * The config is a small "key = value" file, $XDG_CONFIG_HOME/tablehub/config, else
 * $HOME/.config/tablehub/config, holding `server` and `token`. It is written to a temporary file
 * of mode 0600 in the same directory (made 0700), then renamed over the old one, so the token is
 * never readable by others, not even for a moment, and a failed write leaves the old file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_remote.h"
#include "tablehub/text.h"

/* --- the config file ------------------------------------------------------------------------- */

typedef struct config {
	char server[1024];
	char token[256];
} config;

/* The config's directory into dir ("" when neither XDG_CONFIG_HOME nor HOME is set). */
static void config_dir(char *dir, size_t dirsz)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (xdg != NULL && xdg[0] == '/')
		snprintf(dir, dirsz, "%s/tablehub", xdg);
	else if (home != NULL && home[0] != '\0')
		snprintf(dir, dirsz, "%s/.config/tablehub", home);
	else
		dir[0] = '\0';
}

/* Read the config; a missing file is an empty config. */
static void config_load(config *c)
{
	char dir[4096], path[4200], line[1400];
	FILE *f;

	memset(c, 0, sizeof(*c));
	config_dir(dir, sizeof(dir));
	if (dir[0] == '\0')
		return;
	snprintf(path, sizeof(path), "%s/config", dir);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *eq = strchr(line, '='), *k = line, *v, *end;
		if (line[0] == '#' || eq == NULL)
			continue;
		*eq = '\0';
		v = eq + 1;
		while (*k == ' ' || *k == '\t')
			k++;
		for (end = eq; end > k && (end[-1] == ' ' || end[-1] == '\t'); end--)
			end[-1] = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\r\n")] = '\0';
		for (end = v + strlen(v); end > v && (end[-1] == ' ' || end[-1] == '\t'); end--)
			end[-1] = '\0';
		if (strcmp(k, "server") == 0)
			snprintf(c->server, sizeof(c->server), "%s", v);
		else if (strcmp(k, "token") == 0)
			snprintf(c->token, sizeof(c->token), "%s", v);
	}
	fclose(f);
}

/* mkdir -p dir with mode 0700 for the directories it makes. */
static int make_dirs(const char *dir)
{
	char p[4096];
	size_t i;

	snprintf(p, sizeof(p), "%s", dir);
	for (i = 1; p[i]; i++) {
		if (p[i] != '/')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -1;
		p[i] = '/';
	}
	return mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* Write the config (mode 0600, replaced atomically); the path written goes to path_out. */
static int config_save(char *path_out, size_t path_sz, const config *c, th_error *err)
{
	char dir[4096], tmp[4200];
	FILE *f = NULL;
	int fd;

	config_dir(dir, sizeof(dir));
	if (dir[0] == '\0')
		return th_error_set(err, TH_EINVALID,
		                    "cannot store the login: set HOME or XDG_CONFIG_HOME");
	if (make_dirs(dir) < 0)
		return th_error_set(err, TH_ESTORE, "cannot create '%s': %s", dir, strerror(errno));
	snprintf(path_out, path_sz, "%s/config", dir);
	snprintf(tmp, sizeof(tmp), "%s/config.XXXXXX", dir);
	if ((fd = mkstemp(tmp)) < 0) /* mkstemp makes the file 0600 */
		return th_error_set(err, TH_ESTORE, "cannot write in '%s': %s", dir,
		                    strerror(errno));
	if (fchmod(fd, 0600) < 0 || (f = fdopen(fd, "w")) == NULL) {
		close(fd);
		goto fail;
	}
	if (fprintf(f,
	            "# tablehub login: the server and the API token the client uses. Keep it "
	            "private.\nserver = %s\ntoken = %s\n",
	            c->server, c->token) < 0 ||
	    fflush(f) != 0 || fsync(fileno(f)) != 0) {
		fclose(f);
		goto fail;
	}
	if (fclose(f) != 0 || rename(tmp, path_out) != 0)
		goto fail;
	return TH_OK;
fail:
	unlink(tmp);
	return th_error_set(err, TH_ESTORE, "cannot write '%s': %s", path_out, strerror(errno));
}

/* --- choosing the server --------------------------------------------------------------------- */

static int is_url(const char *s)
{
	return s != NULL && (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0);
}

int cli_remote_wanted(int argc, char **argv)
{
	const char *env = getenv("TABLEHUB_URL");
	config c;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--data") == 0 || strncmp(argv[i], "--data=", 7) == 0)
			return 0;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--remote") == 0 || strncmp(argv[i], "--remote=", 9) == 0)
			return 1;
	}
	if (env != NULL && env[0] != '\0')
		return 1;
	config_load(&c);
	return c.server[0] != '\0';
}

int cli_take_flag(int *argc, char **argv, const char *name)
{
	int i, j;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], name) != 0)
			continue;
		for (j = i; j + 1 < *argc; j++)
			argv[j] = argv[j + 1];
		(*argc)--;
		return 1;
	}
	return 0;
}

/* Take --remote out of argv: "--remote=URL", "--remote URL" (a value that is a URL) or a bare
 * "--remote" (use the configured server). *url gets the URL or NULL. Returns 1 if present. */
static int take_remote(const char **url, int *argc, char **argv)
{
	int i, j, take;

	*url = NULL;
	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strncmp(argv[i], "--remote=", 9) == 0) {
			*url = argv[i] + 9;
			take = 1;
		} else if (strcmp(argv[i], "--remote") == 0) {
			take = 1;
			if (i + 1 < *argc && is_url(argv[i + 1])) {
				*url = argv[i + 1];
				take = 2;
			}
		} else {
			continue;
		}
		for (j = i; j + take < *argc; j++)
			argv[j] = argv[j + take];
		*argc -= take;
		return 1;
	}
	return 0;
}

int cli_remote_open(cli_remote *r, const char *cmd, int *argc, char **argv)
{
	const char *url = NULL, *token, *env_url = getenv("TABLEHUB_URL");
	const char *env_token = getenv("TABLEHUB_TOKEN");
	int missing = 0;
	th_error err = { 0 };
	config c;

	memset(r, 0, sizeof(*r));
	r->cmd = cmd;
	r->out_tty = isatty(1);
	r->err_tty = isatty(2);
	(void)take_remote(&url, argc, argv);
	token = cli_take_opt(argc, argv, "--token", &missing);
	r->json = cli_take_flag(argc, argv, "--json");
	if (missing) {
		fprintf(stderr, "tablehub %s: --token needs a value\n", cmd);
		return 2;
	}
	config_load(&c);
	if (url == NULL && env_url != NULL && env_url[0] != '\0')
		url = env_url;
	if (url == NULL && c.server[0] != '\0')
		url = c.server;
	if (url == NULL) {
		fprintf(stderr,
		        "tablehub %s: no server to talk to: run `tablehub login URL`, give "
		        "--remote "
		        "URL or set TABLEHUB_URL (or give --data DIR to use a local data dir)\n",
		        cmd);
		return 1;
	}
	if (token == NULL && env_token != NULL && env_token[0] != '\0')
		token = env_token;
	/* The stored token goes only to the server it was stored for. */
	if (token == NULL && c.token[0] != '\0' && strcmp(url, c.server) == 0)
		token = c.token;
	if (cli_http_new(&r->http, url, token, &err) < 0) {
		fprintf(stderr, "tablehub %s: %s\n", cmd, err.msg);
		return err.code == TH_EINVALID ? 2 : 1;
	}
	return 0;
}

void cli_remote_close(cli_remote *r)
{
	cli_http_free(r->http);
	r->http = NULL;
}

int cli_remote_fail(const cli_remote *r, const th_error *err)
{
	fprintf(stderr, "tablehub %s: %s\n", r->cmd, err->msg);
	return 1;
}

int cli_remote_usage(const cli_remote *r, const char *usage)
{
	fprintf(stderr, "tablehub %s: %s\n", r->cmd, usage);
	return 2;
}

int cli_remote_print_json(const cli_reply *reply)
{
	char *text = reply->json ? cJSON_PrintUnformatted(reply->json) : NULL;

	if (text != NULL) {
		puts(text);
		cJSON_free(text);
	} else if (reply->body.size) {
		fwrite(reply->body.ptr, 1, reply->body.size, stdout);
		putchar('\n');
	}
	return 0;
}

int cli_remote_db_path(th_buf *path, const char *name, th_error *err)
{
	char owner[65], db[65];
	int error;

	if ((error = th_split_db_name(owner, db, name, err)) < 0)
		return error;
	if ((error = th_buf_puts(path, "/api/v1alpha1/", err)) < 0 ||
	    (error = cli_http_escape(path, owner, err)) < 0 ||
	    (error = th_buf_putc(path, '/', err)) < 0 ||
	    (error = cli_http_escape(path, db, err)) < 0)
		return error;
	return TH_OK;
}

const char *cli_json_str(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(it) && it->valuestring ? it->valuestring : "";
}

double cli_json_num(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(it) ? it->valuedouble : 0;
}

int cli_remote_whoami(cli_remote *r, th_error *err)
{
	cli_reply reply = CLI_REPLY_INIT;
	int error;

	if (r->user[0])
		return TH_OK;
	error = cli_http_call(&reply, r->http, "GET", "/api/v1alpha1/user", NULL, err);
	if (error == TH_OK) {
		snprintf(r->user, sizeof(r->user), "%s", cli_json_str(reply.json, "username"));
		if (r->user[0] == '\0')
			error = th_error_set(err, TH_ERROR, "the server did not say who you are");
	}
	cli_reply_dispose(&reply);
	return error;
}

/* --- login ------------------------------------------------------------------------------------ */

/* Read one line of token from stdin, without echo when it is a terminal. */
static int read_token(char *out, size_t outsz, const char *url)
{
	struct termios old, quiet;
	int tty = isatty(0), ok;

	if (tty) {
		fprintf(stderr,
		        "API token for %s (tablehub user add / token create prints one): ", url);
		tcgetattr(0, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(0, TCSANOW, &quiet);
	}
	ok = fgets(out, (int)outsz, stdin) != NULL;
	if (tty) {
		tcsetattr(0, TCSANOW, &old);
		fputc('\n', stderr);
	}
	if (!ok)
		return -1;
	out[strcspn(out, "\r\n")] = '\0';
	return out[0] ? 0 : -1;
}

int cli_login(int argc, char **argv)
{
	static const char usage[] =
	        "expected: login URL [--token T]   (the token is read from TABLEHUB_TOKEN or "
	        "stdin when not given)";
	int missing = 0;
	const char *token = cli_take_opt(&argc, argv, "--token", &missing);
	const char *env = getenv("TABLEHUB_TOKEN");
	char buf[256], path[4300];
	cli_reply reply = CLI_REPLY_INIT;
	cli_http *h = NULL;
	th_error err = { 0 };
	config c;
	int rc = 1, error;

	if (missing || cli_reject_unknown(argc, argv) != 0 || argc != 2) {
		fprintf(stderr, "tablehub login: %s\n", usage);
		return 2;
	}
	if (!is_url(argv[1])) {
		fprintf(stderr,
		        "tablehub login: the server URL must start with http:// or https:// "
		        "(got '%s')\n",
		        argv[1]);
		return 2;
	}
	if (token == NULL && env != NULL && env[0] != '\0')
		token = env;
	if (token == NULL) {
		if (read_token(buf, sizeof(buf), argv[1]) < 0) {
			fprintf(stderr, "tablehub login: no token given\n");
			return 2;
		}
		token = buf;
	}
	if (strlen(token) >= sizeof(c.token) || strpbrk(token, " \t\r\n") != NULL) {
		fprintf(stderr, "tablehub login: that is not an API token\n");
		return 2;
	}
	if ((error = cli_http_new(&h, argv[1], token, &err)) < 0)
		goto cleanup;
	/* The token is checked before it is stored. */
	if ((error = cli_http_call(&reply, h, "GET", "/api/v1alpha1/user", NULL, &err)) < 0)
		goto cleanup;
	memset(&c, 0, sizeof(c));
	snprintf(c.server, sizeof(c.server), "%s", cli_http_base(h));
	snprintf(c.token, sizeof(c.token), "%s", token);
	if ((error = config_save(path, sizeof(path), &c, &err)) < 0)
		goto cleanup;
	printf("logged in to %s as %s (stored in %s)\n", c.server,
	       cli_json_str(reply.json, "username"), path);
	rc = 0;
cleanup:
	if (rc)
		fprintf(stderr, "tablehub login: %s\n", err.msg);
	cli_reply_dispose(&reply);
	cli_http_free(h);
	return rc;
}

/* --- waiting for an operation ----------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Is a failed poll worth retrying: no answer, or the server restarting or overloaded? */
static int transient(const cli_reply *reply, int error)
{
	return reply->net_error || error == TH_EBUSY || reply->status == 502 ||
	       reply->status == 504;
}

#define WAIT_RETRY_S 300

int cli_remote_wait(cli_reply *final, cli_remote *r, const char *poll_path, th_error *err)
{
	double start = now_s(), lost_at = 0;
	long backoff = 200;
	char last[32] = "";
	int drawn = 0, error;

	for (;;) {
		const char *st;
		double elapsed;
		error = cli_http_call(final, r->http, "GET", poll_path, NULL, err);
		if (error < 0 && transient(final, error)) {
			if (lost_at == 0) {
				lost_at = now_s();
				if (drawn)
					fputs("\r\033[K", stderr);
				drawn = 0;
				fprintf(stderr, "tablehub %s: %s; retrying\n", r->cmd, err->msg);
			} else if (now_s() - lost_at > WAIT_RETRY_S) {
				return error;
			}
			sleep_ms(backoff);
			backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
			continue;
		}
		if (error < 0) {
			if (drawn)
				fputs("\r\033[K", stderr);
			return error;
		}
		if (lost_at != 0) {
			fprintf(stderr, "tablehub %s: connected to the server again\n", r->cmd);
			lost_at = 0;
			backoff = 200;
		}
		st = cli_json_str(final->json, "job_status");
		if (strcmp(st, "Completed") == 0 || strcmp(st, "Failed") == 0) {
			if (drawn)
				fputs("\r\033[K", stderr);
			fflush(stderr);
			return st[0] == 'C' ? TH_OK
			                    : th_error_set(err, TH_ECONFLICT, "%s",
			                                   cli_json_str(final->json, "message"));
		}
		if (r->err_tty) {
			const cJSON *pr = cJSON_GetObjectItemCaseSensitive(final->json, "progress");
			double read = cli_json_num(pr, "bytes_read"),
			       total = cli_json_num(pr, "bytes_total"),
			       rows = cli_json_num(pr, "rows_processed");
			fprintf(stderr, "\r\033[K%s: ", st[0] ? st : "waiting");
			if (total > 0)
				fprintf(stderr, "%.1f of %.1f MB read, ", read / 1e6, total / 1e6);
			fprintf(stderr, "%.0f rows (%.0f s)", rows, now_s() - start);
			fflush(stderr);
			drawn = 1;
		} else if (strcmp(st, last) != 0) {
			fprintf(stderr, "%s\n", st);
		}
		snprintf(last, sizeof(last), "%s", st);
		/* Polls are cheap (the server answers a running operation from memory): often at
		 * first, so a short import is seen done at once, then less often. */
		elapsed = now_s() - start;
		sleep_ms(elapsed < 30 ? 100 : elapsed < 120 ? 250 : 1000);
	}
}

void cli_remote_print_rejected(const cJSON *poll)
{
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(poll, "result");
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(res, "rejected_rows"), *row;
	double total = cli_json_num(res, "rejected_total");
	int shown = 0;

	/* One rejected row is the failure's own message: a list is shown from two on. */
	if (!cJSON_IsArray(rows) || total < 2)
		return;
	fprintf(stderr, "rejected rows (%.0f):\n", total);
	cJSON_ArrayForEach(row, rows)
	{
		if (shown++ == 10) {
			fprintf(stderr, "  ... and %.0f more\n", total - 10);
			break;
		}
		fprintf(stderr, "  line %.0f, column %.0f: %s\n", cli_json_num(row, "line"),
		        cli_json_num(row, "column"), cli_json_str(row, "reason"));
	}
}
