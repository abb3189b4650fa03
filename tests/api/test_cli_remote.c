/* test_cli_remote.c: the `tablehub` client commands against a real server, as a person or a
 * script runs them: login (the config file and its mode), db create/list/show, upload --wait
 * (stderr ends on the final state; a failed import shows its rejected rows), the progress bar
 * drawn and cleared on a terminal (under util-linux's `script`) and absent otherwise, pr
 * list/diff/approve/merge (the diff printed exactly as the local `diff --merge-base`), fork and
 * pr create from the fork, pr create and close on a branch, query
 * (the same table, CSV and JSON as the local query), export and log, a server killed and restarted
 * while the client waits (it resumes), a wrong token, an unknown database, a server that is down.
 *
 * Each command runs with its own XDG_CONFIG_HOME and without TABLEHUB_URL/TABLEHUB_TOKEN from the
 * environment, so nothing of the machine's own login is used.
 */
#include <sys/stat.h>

#include "../harness.h"
#include "server.h"

static t_server srv;
static char *dir, *alice, *bob;
static char cfg[600], url[128];

typedef struct run {
	int rc;
	char *out, *err; /* malloc'd */
} run;

static void run_free(run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

/* Run `tablehub ARGS` (shell syntax) with the test's config dir and `env` (e.g. "TABLEHUB_URL=x"
 * or ""); capture exit status, stdout and stderr. */
static run cli(const char *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static run cli(const char *env, const char *fmt, ...)
{
	char args[4096], errfile[700];
	static int seq;
	va_list ap;
	run r;

	memset(&r, 0, sizeof(r));
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(errfile, sizeof(errfile), "%s/stderr-%d", dir, seq++);
	r.rc = t_sh(&r.out,
	            "env -u TABLEHUB_URL -u TABLEHUB_TOKEN XDG_CONFIG_HOME='%s' %s '%s' %s "
	            "2>'%s'",
	            cfg, env, TH_BIN, args, errfile);
	r.err = t_read_file(errfile, NULL);
	if (r.err == NULL)
		r.err = strdup("");
	unlink(errfile);
	return r;
}

static int login_alice(void)
{
	run r = cli("", "login '%s' --token '%s'", url, alice);
	int rc = r.rc;

	run_free(&r);
	return rc;
}

static void test_login(void)
{
	char path[700], *text;
	struct stat st;
	run r;

	/* A wrong token is refused and nothing is stored. */
	r = cli("", "login '%s' --token not-a-token", url);
	CHECK(r.rc == 1);
	CHECK_CONTAINS(r.err, "did not accept the token");
	run_free(&r);
	snprintf(path, sizeof(path), "%s/tablehub/config", cfg);
	CHECK(stat(path, &st) < 0);

	/* The token can come from stdin too. */
	r = cli("", "login '%s/api/v1alpha1/' < '%s/tok'", url, dir);
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "logged in to ");
	CHECK_CONTAINS(r.out, " as alice");
	run_free(&r);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	snprintf(path, sizeof(path), "%s/tablehub", cfg);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700);
	snprintf(path, sizeof(path), "%s/tablehub/config", cfg);
	text = t_read_file(path, NULL);
	CHECK_CONTAINS(text, url);
	CHECK_CONTAINS(text, alice);
	free(text);

	/* Stored: commands find the server and the token without being told. */
	r = cli("", "db create alice/shop");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "created alice/shop (public)");
	run_free(&r);
	r = cli("", "db list");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "alice/shop");
	run_free(&r);
	r = cli("", "db list --json");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "\"database_name\":\"shop\"");
	run_free(&r);

	/* --data keeps a command local, whatever is stored. */
	r = cli("", "db create --data '%s/local' alice/here", dir);
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "created alice/here in ");
	run_free(&r);
}

/* Write an n-row CSV (id,name,qty) to DIR/name; returns its path (malloc'd). */
static char *write_rows(const char *name, long n)
{
	char *path = malloc(strlen(dir) + strlen(name) + 2);

	sprintf(path, "%s/%s", dir, name);
	CHECK(t_sh(NULL,
	           "awk 'BEGIN { print \"id,name,qty\"; for (i = 1; i <= %ld; i++) printf "
	           "\"%%d,name %%d,%%d\\n\", i, i, i %% 100 }' > '%s'",
	           n, path) == 0);
	return path;
}

/* The pull id at the end of the URL an upload --wait prints on stdout, or 0. */
static int pull_of(const run *r)
{
	const char *p = r->out ? strrchr(r->out, '/') : NULL;

	return p ? atoi(p + 1) : 0;
}

static void test_upload_wait(void)
{
	char *csv = t_write_in(dir, "people.csv", "id,name\n1,ann\n2,bob\n3,cy\n");
	char want[300];
	run r;

	r = cli("", "upload alice/shop '%s' --table people --pk id --wait", csv);
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.err, "Completed: rows added: 3, modified: 0, removed: 0");
	snprintf(want, sizeof(want), "%s/repositories/alice/shop/pulls/1", url);
	CHECK_CONTAINS(r.err, want);
	CHECK(strncmp(r.out, want, strlen(want)) == 0); /* stdout: the pull's URL alone */
	CHECK(strstr(r.err, "uploading [") == NULL);    /* no bar when stderr is not a terminal */
	run_free(&r);

	/* A failed import: exit 1, its message. */
	r = cli("",
	        "upload alice/shop '%s' --table people --pk id --op append --branch "
	        "alice/import-x --wait",
	        csv);
	CHECK(r.rc == 1);
	CHECK_CONTAINS(r.err, "no branch 'alice/import-x'");
	run_free(&r);

	/* Without --wait: the operation's name, and `jobs` lists it. */
	r = cli("", "upload alice/shop '%s' --table people2 --pk id", csv);
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "import operation repositoryOwners/alice/repositories/shop/jobs/");
	run_free(&r);
	r = cli("", "jobs alice/shop --watch");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "Import people.csv into people2");
	CHECK_CONTAINS(r.out, "Completed");
	run_free(&r);
	r = cli("", "jobs --json");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "\"operation_type\":\"Import\"");
	run_free(&r);

	/* A usage error is 2. */
	r = cli("", "upload alice/shop '%s'", csv);
	CHECK(r.rc == 2);
	CHECK_CONTAINS(r.err, "--table");
	run_free(&r);
	free(csv);
}

/* Rows rejected: Failed on stderr, the message naming the line, then the rejected rows. */
static void test_upload_rejected(void)
{
	char *bad = t_write_in(dir, "bad.csv", "id,q\n1,2\n2,3,4\n3\n4,5\n5,6,7\n");
	run r;

	r = cli("", "upload alice/shop '%s' --table bad --pk id --wait", bad);
	CHECK(r.rc == 1);
	CHECK_CONTAINS(r.err, "Failed: line 3: expected 2 fields as in the header, found 3");
	CHECK_CONTAINS(r.err, "rejected rows (3):\n  line 3, column 3: ");
	CHECK_CONTAINS(r.err, "  line 6, column 3: expected 2 fields");
	run_free(&r);
	free(bad);
}

static void test_progress_on_tty(void)
{
	char *big = write_rows("tty.csv", 200000), *out = NULL;
	const char *bar, *clear;
	int rc;

	if (t_sh(NULL, "command -v script >/dev/null") != 0) {
		fprintf(stderr, "skipped: no `script` (util-linux)\n");
		free(big);
		return;
	}
	rc = t_sh(&out,
	          "env -u TABLEHUB_URL -u TABLEHUB_TOKEN XDG_CONFIG_HOME='%s' script -qec \"'%s' "
	          "upload alice/shop '%s' --table tty --pk id --wait\" /dev/null",
	          cfg, TH_BIN, big);
	CHECK(rc == 0);
	bar = strstr(out, "uploading [");
	CHECK(bar != NULL); /* drawn */
	CHECK_CONTAINS(out, " MB/s");
	CHECK_CONTAINS(out, " s left");
	CHECK_CONTAINS(out, "100%");
	/* ... and cleared before the import's progress and the final state. */
	clear = bar ? strstr(bar, "\r\033[K") : NULL;
	CHECK(clear != NULL);
	CHECK_CONTAINS(clear, "Completed: rows added: 200000");
	free(out);
	free(big);
}

static void test_pr(void)
{
	char *csv = t_write_in(dir, "people3.csv", "id,name\n1,ann\n2,bo\n4,dee\n");
	char *local = NULL, branch[200] = "";
	int pull;
	run r;

	/* Merge pull #1 (people) first, so the next one modifies a table that exists on main. */
	r = cli("", "pr approve alice/shop 1 --comment 'looks right'");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "approved pull request #1");
	run_free(&r);
	r = cli("", "pr merge alice/shop 1 --wait");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.err, "Completed: pull request #1 merged, commit ");
	run_free(&r);
	r = cli("", "pr show alice/shop 1");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "state:  Merged");
	CHECK_CONTAINS(r.out, "review by alice: Approved: looks right");
	run_free(&r);

	r = cli("", "upload alice/shop '%s' --table people --op replace --wait", csv);
	CHECK(r.rc == 0);
	pull = pull_of(&r);
	CHECK(pull > 1);
	run_free(&r);
	r = cli("", "pr list alice/shop --state open");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "Import people3.csv into people");
	run_free(&r);
	r = cli("", "pr show alice/shop %d --json", pull);
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "\"title\":\"Import people3.csv into people\"");
	{
		cJSON *j = cJSON_Parse(r.out);
		snprintf(branch, sizeof(branch), "%s",
		         nz(cJSON_GetStringValue(cJSON_GetObjectItem(j, "from_branch_name"))));
		cJSON_Delete(j);
	}
	run_free(&r);

	/* The diff as the local `diff --merge-base` prints it, byte for byte. */
	CHECK(t_sh(&local, "'%s' diff --data '%s' --merge-base alice/shop main '%s'", TH_BIN, dir,
	           branch) == 0);
	r = cli("", "pr diff alice/shop %d", pull);
	CHECK(r.rc == 0);
	CHECK_STR(r.out, local);
	CHECK_CONTAINS(r.out, "< [2,\"bob\"]\n> [2,\"bo\"]\n");
	CHECK_CONTAINS(r.out, "- [3,\"cy\"]\n+ [4,\"dee\"]\n");
	CHECK(strstr(r.out, "\033[") == NULL); /* no colour off a terminal */
	run_free(&r);
	/* On a terminal: rows added green, removed red. */
	if (t_sh(NULL, "command -v script >/dev/null") == 0) {
		char *tty = NULL;
		CHECK(t_sh(&tty,
		           "env -u TABLEHUB_URL -u TABLEHUB_TOKEN -u NO_COLOR XDG_CONFIG_HOME='%s' "
		           "script -qec \"'%s' pr diff alice/shop %d\" /dev/null",
		           cfg, TH_BIN, pull) == 0);
		CHECK_CONTAINS(tty, "\033[32m+ [4,\"dee\"]\033[0m");
		CHECK_CONTAINS(tty, "\033[31m- [3,\"cy\"]\033[0m");
		free(tty);
	}
	r = cli("", "pr diff alice/shop %d --stat", pull);
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "people: 1 added, 1 modified, 1 removed, 1 cells modified");
	CHECK(strstr(r.out, "[2,") == NULL);
	run_free(&r);
	r = cli("", "pr comment alice/shop %d 'one question'", pull);
	CHECK(r.rc == 0);
	run_free(&r);

	/* bob has no role on alice/shop: he is told so. */
	r = cli("", "pr merge alice/shop %d --remote '%s' --token '%s'", pull, url, bob);
	CHECK(r.rc == 1);
	CHECK_CONTAINS(r.err, "not allowed: this needs the write role on 'alice/shop'");
	run_free(&r);
	r = cli("", "pr merge alice/shop %d --wait", pull);
	CHECK(r.rc == 0);
	run_free(&r);
	r = cli("", "export alice/shop main people");
	CHECK(r.rc == 0);
	CHECK_STR(r.out, "id,name\n1,ann\n2,bo\n4,dee\n");
	run_free(&r);
	r = cli("", "log alice/shop main");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "    Merge pull request #");
	CHECK_CONTAINS(r.out, "    Initial commit\n");
	run_free(&r);
	r = cli("", "db show alice/shop");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "  people: 3 rows; id integer, name text; key: id");
	run_free(&r);
	r = cli("", "branch create alice/shop feature --from main");
	CHECK(r.rc == 0);
	run_free(&r);
	r = cli("", "branch list alice/shop");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "\nfeature\n");
	run_free(&r);
	free(local);
	free(csv);
}

/* bob, who may only read alice/shop, forks it, changes his fork, and proposes the change back
 * with `pr create --from-db`; alice sees it, and closes one she opened herself. */
static void test_fork_and_propose(void)
{
	char *csv = t_write_in(dir, "more.csv", "id,name\n5,eve\n");
	char bobenv[200];
	int fork_pull, pull;
	run r;

	snprintf(bobenv, sizeof(bobenv), "TABLEHUB_URL='%s' TABLEHUB_TOKEN='%s'", url, bob);
	r = cli(bobenv, "pr create alice/shop --from feature");
	CHECK(r.rc == 1);
	CHECK_CONTAINS(r.err, "this needs the write role on 'alice/shop'");
	run_free(&r);
	r = cli(bobenv, "fork alice/shop");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "forked alice/shop into bob/shop");
	CHECK_CONTAINS(r.out, "tablehub pr create alice/shop --from-db bob/shop --from BRANCH");
	run_free(&r);
	r = cli(bobenv, "upload bob/shop '%s' --table people --op update --wait", csv);
	CHECK(r.rc == 0);
	fork_pull = pull_of(&r);
	run_free(&r);
	r = cli(bobenv, "pr merge bob/shop %d --wait", fork_pull);
	CHECK(r.rc == 0);
	run_free(&r);
	r = cli(bobenv, "pr create alice/shop --from-db bob/shop --from main --title 'Add eve'");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "opened pull request #");
	CHECK_CONTAINS(r.out, " of alice/shop: bob/shop:main into main\n");
	CHECK_CONTAINS(r.out, "/repositories/alice/shop/pulls/");
	pull = pull_of(&r);
	CHECK(pull > 0);
	run_free(&r);
	r = cli("", "pr diff alice/shop %d", pull);
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "+ [5,\"eve\"]");
	run_free(&r);
	r = cli("", "pr show alice/shop %d --json", pull);
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "\"title\":\"Add eve\"");
	CHECK_CONTAINS(r.out, "\"author\":\"bob\"");
	run_free(&r);
	/* alice opens one from her own branch with the default title, and closes it. */
	r = cli("", "pr create alice/shop --from feature --into main");
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, " of alice/shop: feature into main\n");
	pull = pull_of(&r);
	run_free(&r);
	r = cli("", "pr show alice/shop %d", pull);
	CHECK_CONTAINS(r.out, ": Merge feature into main\n");
	run_free(&r);
	r = cli("", "pr close alice/shop %d", pull);
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "closed pull request #");
	run_free(&r);
	r = cli("", "pr show alice/shop %d", pull);
	CHECK_CONTAINS(r.out, "state:  Closed");
	run_free(&r);
	r = cli("", "pr create alice/shop --into main");
	CHECK(r.rc == 2);
	CHECK_CONTAINS(r.err, "pr create OWNER/DB --from BRANCH");
	run_free(&r);
	free(csv);
}

static void test_query(void)
{
	static const char sql[] = "SELECT id, name, id * 2 AS twice FROM people ORDER BY id";
	char *local = NULL;
	run r;

	CHECK(t_sh(&local, "'%s' query --data '%s' alice/shop main '%s'", TH_BIN, dir, sql) == 0);
	r = cli("", "query --remote alice/shop main '%s'", sql);
	CHECK(r.rc == 0);
	CHECK_STR(r.out, local);
	CHECK_CONTAINS(r.out, "|  4 | dee  |     8 |");
	run_free(&r);
	free(local);
	CHECK(t_sh(&local, "'%s' query --data '%s' --csv alice/shop main '%s'", TH_BIN, dir, sql) ==
	      0);
	r = cli("", "query --remote alice/shop main '%s' --csv", sql);
	CHECK(r.rc == 0);
	CHECK_STR(r.out, local);
	run_free(&r);
	free(local);
	r = cli("", "query --remote alice/shop main '%s' --json", sql);
	CHECK(r.rc == 0);
	CHECK_CONTAINS(r.out, "\"query_execution_status\":\"Success\"");
	run_free(&r);
	/* A long statement goes as a POST and gives the same answer. */
	{
		char longsql[4096];
		int n = snprintf(longsql, sizeof(longsql),
		                 "SELECT count(*) AS n FROM people WHERE 1");
		while (n < 3000)
			n += snprintf(longsql + n, sizeof(longsql) - (size_t)n, " AND 1 = 1");
		r = cli("", "query --remote alice/shop main '%s' --csv", longsql);
		CHECK(r.rc == 0);
		CHECK_STR(r.out, "n\n3\n");
		run_free(&r);
	}
	r = cli("", "query --remote alice/shop main 'SELECT nope FROM people'");
	CHECK(r.rc == 1);
	CHECK_CONTAINS(r.err, "no such column: nope");
	run_free(&r);
}

static void test_errors(void)
{
	char env[400];
	run r;

	/* A wrong token. */
	snprintf(env, sizeof(env), "TABLEHUB_TOKEN=wrong");
	r = cli(env, "db list");
	CHECK(r.rc == 1);
	CHECK_CONTAINS(r.err, "did not accept the token");
	CHECK_CONTAINS(r.err, "tablehub login ");
	run_free(&r);
	/* An unknown database. */
	r = cli("", "log alice/nope");
	CHECK(r.rc == 1);
	CHECK_CONTAINS(r.err, "database 'alice/nope' not found");
	CHECK_CONTAINS(r.err, "tablehub db list");
	run_free(&r);
	r = cli("", "upload alice/nope '%s/people.csv' --table t --wait", dir);
	CHECK(r.rc == 1);
	CHECK_CONTAINS(r.err, "not found");
	run_free(&r);
	/* A server that is not there. */
	snprintf(env, sizeof(env), "TABLEHUB_URL=http://127.0.0.1:%d", t_free_port());
	r = cli(env, "db list");
	CHECK(r.rc == 1);
	CHECK_CONTAINS(r.err, "cannot reach the server at http://127.0.0.1:");
	CHECK_CONTAINS(r.err, "check that it is running");
	run_free(&r);
	/* The stored token is not sent to another server than its own. */
	r = cli(env, "db list");
	CHECK(strstr(r.err, "did not accept") == NULL);
	run_free(&r);
	/* No server at all. */
	r = cli("XDG_CONFIG_HOME=/nonexistent", "upload alice/shop x.csv --table t");
	CHECK(r.rc == 1);
	CHECK_CONTAINS(r.err, "no server to talk to: run `tablehub login URL`");
	run_free(&r);
}

/* The server dies while the client waits, and comes back: the client resumes and ends on the
 * operation's final state. One worker and a big import ahead keep the waited one Pending. */
static void test_restart_while_waiting(void)
{
	char *big = write_rows("ahead.csv", 300000), errfile[700], *err = NULL;
	char *small = t_write_in(dir, "small.csv", "id,v\n1,a\n2,b\n");
	const char *const workers[] = { "--workers", "1", NULL };
	pid_t pid;
	int st = 0, i;
	run r;

	t_server_stop(&srv, SIGTERM);
	CHECK(t_server_start(&srv, dir, srv.port, workers) == 0);
	r = cli("", "upload alice/shop '%s' --table ahead --pk id", big);
	CHECK(r.rc == 0);
	run_free(&r);
	snprintf(errfile, sizeof(errfile), "%s/wait.err", dir);
	if ((pid = fork()) == 0) {
		char cmd[2000];
		snprintf(cmd, sizeof(cmd),
		         "env -u TABLEHUB_URL -u TABLEHUB_TOKEN XDG_CONFIG_HOME='%s' '%s' upload "
		         "alice/shop '%s' --table small --pk id --wait >/dev/null 2>'%s'",
		         cfg, TH_BIN, small, errfile);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	/* Wait until the client has its operation and polls it, then kill the server. */
	for (i = 0; i < 200; i++) {
		free(err);
		err = t_read_file(errfile, NULL);
		if (err && (strstr(err, "Pending") || strstr(err, "In Progress")))
			break;
		t_sleep_ms(50);
	}
	CHECK(waitpid(pid, &st, WNOHANG) == 0); /* still waiting */
	t_server_stop(&srv, SIGKILL);
	t_sleep_ms(1500);
	CHECK(t_server_start(&srv, dir, srv.port, workers) == 0);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	free(err);
	err = t_read_file(errfile, NULL);
	CHECK_CONTAINS(err, "cannot reach the server");
	CHECK_CONTAINS(err, "retrying");
	CHECK_CONTAINS(err, "connected to the server again");
	CHECK_CONTAINS(err, "Completed: rows added: 2");
	free(err);
	free(big);
	free(small);
}

int main(void)
{
	char tok[700];

	dir = t_mkdtemp();
	snprintf(cfg, sizeof(cfg), "%s/cfg", dir);
	if (t_server_start(&srv, dir, 0, NULL) < 0 || t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
	snprintf(tok, sizeof(tok), "%s/tok", dir);
	t_write_file(tok, alice, strlen(alice));
	RUN(test_login);
	if (login_alice() != 0)
		fprintf(stderr, "login failed\n");
	RUN(test_upload_wait);
	RUN(test_upload_rejected);
	RUN(test_progress_on_tty);
	RUN(test_pr);
	RUN(test_fork_and_propose);
	RUN(test_query);
	RUN(test_errors);
	RUN(test_restart_while_waiting);
	t_server_stop(&srv, SIGTERM);
	free(alice);
	free(bob);
	t_rmdir(dir);
	TH_TEST_END();
}
