/* main.c: the `tablehub` command line. Looks the subcommand up in one table and runs it with the
 * arguments after its name (api/cli.h); the commands themselves live in api/cli_*.c. libgit2 is
 * set up around every command.
 *
 * A command may have two forms: local (on a data dir) and remote (against a server,
 * api/cli_remote*.c). The remote form runs when cli_remote_wanted() says so (--remote, TABLEHUB_URL
 * or a stored login, and no --data); a command with only a remote form always runs it. */
#include <stdio.h>
#include <string.h>

#include "tablehub/repo.h"
#include "cli.h"

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);     /* local; NULL when there is none */
	int (*remote)(int argc, char **argv); /* against a server; NULL when there is none */
} commands[] = {
	{ "db", cli_db, cli_remote_db },
	{ "import", cli_import, NULL },
	{ "export", cli_export, cli_remote_export },
	{ "log", cli_log, cli_remote_log },
	{ "serve", cli_serve, NULL },
	{ "user", cli_user, NULL },
	{ "token", cli_token, NULL },
	{ "query", cli_query, cli_remote_query },
	{ "diff", cli_diff, NULL },
	{ "login", NULL, cli_login },
	{ "upload", NULL, cli_upload },
	{ "branch", NULL, cli_branch },
	{ "pr", NULL, cli_pr },
	{ "fork", NULL, cli_fork },
	{ "jobs", NULL, cli_jobs },
	{ "sql", cli_sql, NULL },
	{ "backup", cli_backup, NULL },
	{ "restore", cli_restore, NULL },
	{ "meta", cli_meta, NULL },
};

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(cli_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		th_error err = { 0 };
		int rc;

		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		if (th_repo_global_init(&err) < 0) {
			fprintf(stderr, "tablehub: %s\n", err.msg);
			return 1;
		}
		if (commands[i].fn == NULL ||
		    (commands[i].remote != NULL && cli_remote_wanted(argc - 1, argv + 1)))
			rc = commands[i].remote(argc - 1, argv + 1);
		else
			rc = commands[i].fn(argc - 1, argv + 1);
		th_repo_global_shutdown();
		return rc;
	}
	fprintf(stderr, "tablehub: unknown command '%s'\n\n%s", argv[1], cli_usage);
	return 2;
}
