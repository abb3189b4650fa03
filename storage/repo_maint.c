/* repo_maint.c: counting a repository's loose objects and packs, and repacking it with the git
 * program (see include/tablehub/repo_maint.h for why git and not libgit2).
 *
 * Design of th_repo_gc: git is started with posix_spawnp (no shell, so no quoting of the path),
 * its argument list fixed here, its environment made from scratch (so neither the server's
 * environment nor any user's or system's git config can change what it does), its signal mask and
 * dispositions reset (serve blocks SIGTERM in every thread, and an ignored signal stays ignored
 * across exec), stdin and stdout on /dev/null and stderr on a pipe we read. It runs in a process
 * group of its own so that a stop kills git and the pack-objects it started together. The caller's
 * thread polls: the pipe, the child's exit and the stop callback, every 100 ms.
 */
#include <dirent.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tablehub/log.h"
#include "tablehub/repo_maint.h"
#include "tablehub/text.h"

#define POLL_MS 100
#define KILL_GRACE_MS 5000
#define STDERR_KEEP 1024

/* Call fn for each loose object of fan-out directory objects/<fan>. */
static int each_in_fanout(const char *path, const char *fan, th_repo_loose_fn fn, void *payload,
                          th_error *err)
{
	char dir[4200];
	struct dirent *e;
	DIR *d;
	int error = TH_OK;

	snprintf(dir, sizeof(dir), "%s/objects/%s", path, fan);
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT || errno == ENOTDIR
		               ? TH_OK
		               : th_error_set(err, TH_ESTORE,
		                              "cannot read the repository's objects: %s",
		                              strerror(errno));
	/* A loose object is named by the other 38 hex digits of its id; git's and libgit2's
	 * temporary files (tmp_obj_*) are not objects yet. */
	while (error == TH_OK && (e = readdir(d)) != NULL)
		if (strlen(e->d_name) == 38 && th_is_hex(e->d_name, 38))
			error = fn(payload, fan, e->d_name, err);
	closedir(d);
	return error;
}

int th_repo_loose_foreach(const char *path, th_repo_loose_fn fn, void *payload, th_error *err)
{
	char dir[4096];
	struct dirent *e;
	DIR *d;
	int error = TH_OK;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/objects", path) >= sizeof(dir) - 8)
		return th_error_set(err, TH_EINVALID, "repository path too long");
	if ((d = opendir(dir)) == NULL)
		return th_error_set(err, errno == ENOENT ? TH_ENOTFOUND : TH_ESTORE,
		                    "cannot read the repository's objects: %s", strerror(errno));
	/* Only the fan-out directories that exist are read: after every write, 256 look-ups of
	 * mostly missing directories were a third of the server's file opens. */
	while (error == TH_OK && (e = readdir(d)) != NULL)
		if (strlen(e->d_name) == 2 && th_is_hex(e->d_name, 2))
			error = each_in_fanout(path, e->d_name, fn, payload, err);
	closedir(d);
	return error;
}

static int count_one(void *payload, const char *fan, const char *rest, th_error *err)
{
	(void)fan;
	(void)rest;
	(void)err;
	(*(uint64_t *)payload)++;
	return TH_OK;
}

int th_repo_objstats_read(th_repo_objstats *out, const char *path, th_error *err)
{
	th_repo_objstats st = { 0, 0 };
	char dir[4096];
	struct dirent *e;
	DIR *d;
	int error;

	if ((error = th_repo_loose_foreach(path, count_one, &st.loose, err)) < 0)
		return error;
	snprintf(dir, sizeof(dir), "%s/objects/pack", path);
	if ((d = opendir(dir)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			size_t n = strlen(e->d_name);
			st.packs += n > 10 && strncmp(e->d_name, "pack-", 5) == 0 &&
			            strcmp(e->d_name + n - 5, ".pack") == 0;
		}
		closedir(d);
	} else if (errno != ENOENT) {
		return th_error_set(err, TH_ESTORE, "cannot read the repository's packs: %s",
		                    strerror(errno));
	}
	*out = st;
	return TH_OK;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first line of git's errors, every occurrence of the repository's path cut out, for the
 * log. */
static void log_stderr(const char *path, char *text)
{
	char *nl = strchr(text, '\n'), *p;
	size_t plen = strlen(path);

	if (nl)
		*nl = '\0';
	while (plen > 0 && (p = strstr(text, path)) != NULL) {
		memcpy(p, "<repo>", 6);
		memmove(p + 6, p + plen, strlen(p + plen) + 1);
	}
	th_scrub_paths(text);
	if (text[0])
		TH_LOG(TH_LOG_WARN, "repack: git says: %s", text);
}

/* Start git with `argv` (argv[0] "git") with stderr on the pipe `errfd`. */
static int spawn_git(pid_t *pid, char *const argv[], int errfd, th_error *err)
{
	static char *const env[] = { "PATH=/usr/bin:/bin",
		                     "HOME=/nonexistent",
		                     "LC_ALL=C",
		                     "GIT_CONFIG_NOSYSTEM=1",
		                     "GIT_CONFIG_GLOBAL=/dev/null",
		                     "GIT_TERMINAL_PROMPT=0",
		                     NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	int rc;

	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                      POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	rc = posix_spawnp(pid, "git", &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc == ENOENT)
		return th_error_set(err, TH_ENOTFOUND,
		                    "the git program was not found: install git (scripts/setup)");
	if (rc != 0)
		return th_error_set(err, TH_ESTORE, "cannot start git: %s", strerror(rc));
	return TH_OK;
}

/* Kill git's process group: TERM, then KILL after the grace period; reap it. */
static void kill_git(pid_t pid)
{
	int64_t end = mono_ms() + KILL_GRACE_MS;
	int st;

	kill(-pid, SIGTERM);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (mono_ms() > end) {
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
			break;
		}
		poll(NULL, 0, 20);
	}
}

/* git's settings for a repack: fsync what it writes, run no hook, stay in the foreground, write
 * nothing libgit2 does not read, one thread and bounded memory for the delta search. */
static const char *const git_config[] = {
	"core.fsync=committed,derived-metadata",
	"core.fsyncMethod=fsync",
	"core.hooksPath=/dev/null",
	"gc.autoDetach=false",
	"gc.writeCommitGraph=false",
	"repack.writeBitmaps=false",
	"pack.threads=1",
	"pack.windowMemory=32m",
	"pack.deltaCacheSize=16m",
	NULL,
};

int th_repo_gc(const char *path, int keep_unreachable, th_repo_stop_fn stop, void *payload,
               th_error *err)
{
	static const char *const gc[] = { "gc", "--quiet", "--prune=now", NULL };
	/* Nothing deleted: everything, reachable or not, into one pack. */
	static const char *const keep[] = { "repack", "-q", "-a", "-d", "-l", "--keep-unreachable",
		                            NULL };
	const char *const *cmd = keep_unreachable ? keep : gc;
	const char *argv[40];
	size_t na = 0;
	char errbuf[STDERR_KEEP + 1], lockpath[4096];
	size_t nerr = 0;
	int fds[2] = { -1, -1 }, st = 0, error, open_pipe = 1;
	pid_t pid;

	if (keep_unreachable == TH_REPO_GC_ROLLUP)
		return th_repo_rollup(path, stop, payload, err);
	/* A gc killed past its grace (a stop, a crash) leaves its lock file, and every later gc of
	 * the repository would then fail with "Unable to create gc.pid.lock". The caller holds the
	 * writer lock, so no other gc runs on it: a lock file now is a dead one's. */
	if (!keep_unreachable &&
	    (size_t)snprintf(lockpath, sizeof(lockpath), "%s/gc.pid.lock", path) < sizeof(lockpath))
		(void)unlink(lockpath);
	argv[na++] = "git";
	for (size_t i = 0; git_config[i] != NULL; i++) {
		argv[na++] = "-c";
		argv[na++] = git_config[i];
	}
	argv[na++] = "-C";
	argv[na++] = path;
	for (size_t i = 0; cmd[i] != NULL; i++)
		argv[na++] = cmd[i];
	argv[na] = NULL;
	if (pipe(fds) != 0)
		return th_error_set(err, TH_ESTORE, "cannot start git: %s", strerror(errno));
	fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	error = spawn_git(&pid, (char *const *)(uintptr_t)argv, fds[1], err);
	close(fds[1]);
	if (error < 0) {
		close(fds[0]);
		return error;
	}
	for (;;) {
		struct pollfd p = { fds[0], POLLIN, 0 };
		pid_t w;

		if (stop && (error = stop(payload, err)) < 0) {
			kill_git(pid);
			close(fds[0]);
			TH_LOG(TH_LOG_INFO, "repack stopped: %s", err ? err->msg : "");
			return error;
		}
		if (open_pipe && poll(&p, 1, POLL_MS) > 0) {
			char buf[512];
			ssize_t n = read(fds[0], buf, sizeof(buf));
			if (n <= 0) {
				open_pipe = 0;
			} else if (nerr < STDERR_KEEP) {
				size_t k = (size_t)n < STDERR_KEEP - nerr ? (size_t)n
				                                          : STDERR_KEEP - nerr;
				memcpy(errbuf + nerr, buf, k);
				nerr += k;
			}
		} else if (!open_pipe) {
			poll(NULL, 0, POLL_MS);
		}
		if ((w = waitpid(pid, &st, WNOHANG)) == pid)
			break;
		if (w < 0 && errno != EINTR) {
			close(fds[0]);
			return th_error_set(err, TH_ESTORE, "cannot wait for git: %s",
			                    strerror(errno));
		}
	}
	/* What git wrote before it exited. */
	while (open_pipe && nerr < STDERR_KEEP) {
		struct pollfd p = { fds[0], POLLIN, 0 };
		ssize_t n;
		if (poll(&p, 1, 0) <= 0 ||
		    (n = read(fds[0], errbuf + nerr, STDERR_KEEP - nerr)) <= 0)
			break;
		nerr += (size_t)n;
	}
	close(fds[0]);
	errbuf[nerr] = '\0';
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return TH_OK;
	log_stderr(path, errbuf);
	if (WIFEXITED(st))
		return th_error_set(err, TH_ESTORE, "git %s failed (exit status %d)", cmd[0],
		                    WEXITSTATUS(st));
	return th_error_set(err, TH_ESTORE, "git %s failed (killed by signal %d)", cmd[0],
	                    WTERMSIG(st));
}
