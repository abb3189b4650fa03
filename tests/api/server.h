/* server.h: a real `tablehub serve` for the API tests, and curl to talk to it.
 *
 * t_server_start forks TH_BIN serve on a free loopback port (found by binding port 0) with its
 * stderr in DIR/serve.log, and waits until it answers. t_http runs curl through the shell and
 * returns the HTTP status, with the body parsed as JSON. Everything aborts on a failure of the test
 * machinery itself (no curl, a server that never answers), not of the code under test.
 */
#ifndef TABLEHUB_TEST_API_SERVER_H
#define TABLEHUB_TEST_API_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../util.h"

typedef struct t_server {
	pid_t pid;
	int port;
	char dir[512];
	char base[128]; /* http://127.0.0.1:PORT/api/v1alpha1 */
} t_server;

static inline int t_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		abort();
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static inline int t_can_connect(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static inline void t_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Start `tablehub serve --data dir` plus `extra` arguments (NULL-terminated list). A port of 0
 * picks a free one; otherwise the port is reused (a restart). Returns 0, or -1 when the server
 * exited or did not answer within 20 s (its log is printed). */
static inline int t_server_start(t_server *s, const char *dir, int port, const char *const *extra)
{
	char listen[64], log[600];
	const char *args[32];
	int n = 0, fd;

	if (port == 0)
		port = t_free_port();
	s->port = port;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d/api/v1alpha1", port);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(log, sizeof(log), "%s/serve.log", dir);
	args[n++] = TH_BIN;
	args[n++] = "serve";
	args[n++] = "--data";
	args[n++] = dir;
	args[n++] = "--listen";
	args[n++] = listen;
	for (; extra && *extra && n < 30; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	if ((s->pid = fork()) < 0)
		abort();
	if (s->pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		execv(TH_BIN, (char *const *)(uintptr_t)args);
		_exit(127);
	}
	for (int i = 0; i < 400; i++) {
		int st;
		if (t_can_connect(port))
			return 0;
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			break;
		}
		t_sleep_ms(50);
	}
	fprintf(stderr, "server did not start; its log:\n");
	t_sh(NULL, "cat '%s' >&2", log);
	return -1;
}

/* Fail the test (exit 1) when the server's log names its data folder: no server path may reach a
 * log line. */
static inline void t_log_check_paths(const t_server *s)
{
	char path[600], *log;

	snprintf(path, sizeof(path), "%s/serve.log", s->dir);
	if ((log = t_read_file(path, NULL)) == NULL)
		return;
	if (strstr(log, s->dir) != NULL) {
		fprintf(stderr, "the server's log names its data folder:\n%s", log);
		free(log);
		exit(1);
	}
	free(log);
}

/* Fail the test (exit 1) when the server's log holds a sanitizer's report: a leak found at exit,
 * an invalid access, undefined behaviour (UBSan reports and goes on). */
static inline void t_log_check_sanitizers(const t_server *s)
{
	static const char *const marks[] = { "ERROR: LeakSanitizer", "ERROR: AddressSanitizer",
		                             "runtime error:", NULL };
	char path[600], *log;

	snprintf(path, sizeof(path), "%s/serve.log", s->dir);
	if ((log = t_read_file(path, NULL)) == NULL)
		return;
	for (int i = 0; marks[i] != NULL; i++) {
		if (strstr(log, marks[i]) != NULL) {
			fprintf(stderr, "the server's log has a sanitizer's report:\n%s",
			        strstr(log, marks[i]));
			free(log);
			exit(1);
		}
	}
	free(log);
}

/* Stop the server with `sig` and wait for it; fail the test when its log names its data folder or
 * has a sanitizer's report. Returns its exit status (128+n when killed by signal n), or -1 if it
 * was not running. */
static inline int t_server_stop(t_server *s, int sig)
{
	int st;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, sig);
	if (waitpid(s->pid, &st, 0) != s->pid)
		return -1;
	s->pid = 0;
	t_log_check_paths(s);
	t_log_check_sanitizers(s);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run `tablehub user add --data DIR NAME` and return the token (malloc'd), or NULL. */
static inline char *t_user_add(const t_server *s, const char *name)
{
	char *out = NULL;

	if (t_sh(&out, "'%s' user add --data '%s' '%s' 2>/dev/null", TH_BIN, s->dir, name) != 0) {
		free(out);
		return NULL;
	}
	out[strcspn(out, "\n")] = '\0';
	return out;
}

/* Add the users alice and bob, their tokens into *alice and *bob (malloc'd). Returns 0, or -1
 * with the server killed when either cannot be added. */
static inline int t_add_alice_and_bob(t_server *s, char **alice, char **bob)
{
	*alice = t_user_add(s, "alice");
	*bob = t_user_add(s, "bob");
	if (*alice != NULL && *bob != NULL)
		return 0;
	fprintf(stderr, "user add failed\n");
	t_server_stop(s, SIGKILL);
	return -1;
}

typedef struct t_resp {
	int status;
	char *body;  /* malloc'd */
	cJSON *json; /* NULL if the body is not JSON */
} t_resp;

static inline void t_resp_free(t_resp *r)
{
	free(r->body);
	cJSON_Delete(r->json);
	memset(r, 0, sizeof(*r));
}

/* Run curl with `fmt` (the curl arguments after the fixed ones, shell syntax) and capture the
 * status and body. The body file lives in the server's dir. */
static inline t_resp t_http(const t_server *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static inline t_resp t_http(const t_server *s, const char *fmt, ...)
{
	char args[6144], bodyfile[600], *out = NULL;
	static int seq;
	t_resp r;
	va_list ap;

	memset(&r, 0, sizeof(r));
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(bodyfile, sizeof(bodyfile), "%s/curl-body-%d-%d", s->dir, (int)getpid(), seq++);
	if (t_sh(&out, "curl -s -S -o '%s' -w '%%{http_code}' %s", bodyfile, args) != 0) {
		fprintf(stderr, "curl failed: curl %s\n", args);
		free(out);
		r.status = -1;
		r.body = strdup("");
		unlink(bodyfile);
		return r;
	}
	r.status = atoi(out);
	free(out);
	r.body = t_read_file(bodyfile, NULL);
	if (r.body == NULL)
		r.body = strdup("");
	unlink(bodyfile);
	r.json = cJSON_Parse(r.body);
	return r;
}

/* A string member of the response's JSON (NULL if absent or not a string). */
static inline const char *t_str(const t_resp *r, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(r->json, key);
	return cJSON_IsString(it) ? it->valuestring : NULL;
}

static inline double t_num(const t_resp *r, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(r->json, key);
	return cJSON_IsNumber(it) ? it->valuedouble : -1;
}

/* POST `file` with `params` (JSON, no single quotes) to DB ("owner/db")'s upload endpoint. */
static inline t_resp t_upload(const t_server *s, const char *token, const char *db,
                              const char *file, const char *params)
{
	return t_http(s,
	              "-H 'authorization: token %s' --form-string 'params=%s' -F 'file=@%s' "
	              "'%s/%s/upload'",
	              token, params, file, s->base, db);
}

/* Poll operation `op` of DB until its job_status is Completed or Failed, or timeout_s passes, or
 * a poll fails; returns the last response. */
static inline t_resp t_poll(const t_server *s, const char *token, const char *db, const char *op,
                            int timeout_s)
{
	time_t end = time(NULL) + timeout_s;
	t_resp r;

	for (;;) {
		const char *st;
		r = t_http(s,
		           "-G -H 'authorization: token %s' --data-urlencode 'operationName=%s' "
		           "'%s/%s/upload'",
		           token, op, s->base, db);
		st = t_str(&r, "job_status");
		if (r.status != 200 || st == NULL || strcmp(st, "Completed") == 0 ||
		    strcmp(st, "Failed") == 0 || time(NULL) > end)
			return r;
		t_resp_free(&r);
		t_sleep_ms(100);
	}
}

/* The authorization header for a token, as curl arguments (a %s for the token). */
#define AUTH "-H 'authorization: token %s' "

/* s, or "" when NULL: for fields that may be missing. */
static inline const char *nz(const char *s)
{
	return s ? s : "";
}

/* Start a server on DIR with `extra` arguments (t_server_start), add the user alice and her
 * database alice/shop. Returns alice's token (malloc'd), or NULL with the server stopped and the
 * reason printed. */
static inline char *t_server_start_shop(t_server *s, const char *dir, const char *const *extra)
{
	char *alice;
	t_resp r;

	if (t_server_start(s, dir, 0, extra) < 0)
		return NULL;
	if ((alice = t_user_add(s, "alice")) == NULL) {
		t_server_stop(s, SIGKILL);
		return NULL;
	}
	r = t_http(s, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\"}' '%s/database'",
	           alice, s->base);
	if (r.status != 200) {
		fprintf(stderr, "create database: %d %s\n", r.status, r.body);
		t_resp_free(&r);
		free(alice);
		t_server_stop(s, SIGKILL);
		return NULL;
	}
	t_resp_free(&r);
	return alice;
}

/* Write `text` to DIR/NAME; returns the path (malloc'd). */
static inline char *t_write_in(const char *dir, const char *name, const char *text)
{
	char *path = malloc(strlen(dir) + strlen(name) + 2);

	if (path == NULL)
		abort();
	sprintf(path, "%s/%s", dir, name);
	t_write_file(path, text, strlen(text));
	return path;
}

#endif
