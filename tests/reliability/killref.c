/* killref.c: the kill switch of scripts/reliability's targeted kill -9 trials. Linked only into
 * `tablehub_killref`, a test build of the `tablehub` binary (tests/reliability/CMakeLists.txt),
 * with ld's --wrap around the libgit2 calls that move a branch (git_reference_create,
 * git_reference_create_matching, git_reference_delete), so the server itself dies by SIGKILL at
 * an exact moment: right before or right after its N-th ref move. Production code is unchanged;
 * without the environment below the wrappers only pass the calls on.
 *
 *   TH_KILL_REF=N        die at the N-th ref move of this process (counted from 1; unset or 0:
 *                        never)
 *   TH_KILL_WHEN=before  die just before that move is made (default: just after it succeeded)
 *   TH_KILL_LOG=FILE     append "N REFNAME" for each move made (how many moves a scenario makes)
 *
 * A move that fails (a compare-and-swap that lost, a lock held) is not counted: only a ref that
 * actually changed on disk is a moment worth dying after.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>

int __real_git_reference_create(git_reference **out, git_repository *repo, const char *name,
                                const git_oid *id, int force, const char *log_message);
int __real_git_reference_create_matching(git_reference **out, git_repository *repo,
                                         const char *name, const git_oid *id, int force,
                                         const git_oid *current_id, const char *log_message);
int __real_git_reference_delete(git_reference *ref);
int __wrap_git_reference_create(git_reference **out, git_repository *repo, const char *name,
                                const git_oid *id, int force, const char *log_message);
int __wrap_git_reference_create_matching(git_reference **out, git_repository *repo,
                                         const char *name, const git_oid *id, int force,
                                         const git_oid *current_id, const char *log_message);
int __wrap_git_reference_delete(git_reference *ref);

static atomic_long moves;

/* The move about to be made is number `n`: die now when it is the chosen one and "before". */
static long target(int *before)
{
	const char *n = getenv("TH_KILL_REF"), *when = getenv("TH_KILL_WHEN");

	*before = when != NULL && strcmp(when, "before") == 0;
	return n != NULL ? atol(n) : 0;
}

static void before_move(void)
{
	int before;
	long t = target(&before);

	if (t > 0 && before && atomic_load(&moves) + 1 == t)
		raise(SIGKILL);
}

/* A move succeeded: count it, log it, and die when it was the chosen one. */
static void after_move(const char *name)
{
	const char *log = getenv("TH_KILL_LOG");
	long n = atomic_fetch_add(&moves, 1) + 1;
	int before;
	long t = target(&before);

	if (log != NULL && log[0] != '\0') {
		char line[512];
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int len = snprintf(line, sizeof(line), "%ld %s\n", n, name ? name : "?");
		if (fd >= 0) {
			if (len > 0 && write(fd, line, (size_t)len) < 0)
				len = 0;
			close(fd);
		}
	}
	if (t > 0 && !before && n == t)
		raise(SIGKILL);
}

int __wrap_git_reference_create(git_reference **out, git_repository *repo, const char *name,
                                const git_oid *id, int force, const char *log_message)
{
	int rc;

	before_move();
	rc = __real_git_reference_create(out, repo, name, id, force, log_message);
	if (rc == 0)
		after_move(name);
	return rc;
}

int __wrap_git_reference_create_matching(git_reference **out, git_repository *repo,
                                         const char *name, const git_oid *id, int force,
                                         const git_oid *current_id, const char *log_message)
{
	int rc;

	before_move();
	rc = __real_git_reference_create_matching(out, repo, name, id, force, current_id,
	                                          log_message);
	if (rc == 0)
		after_move(name);
	return rc;
}

int __wrap_git_reference_delete(git_reference *ref)
{
	char name[400];
	int rc;

	snprintf(name, sizeof(name), "%s", git_reference_name(ref));
	before_move();
	rc = __real_git_reference_delete(ref);
	if (rc == 0)
		after_move(name);
	return rc;
}
