/* main.c: the `tablehub` command line. Looks the subcommand up in one table and runs it with the
 * arguments after its name (api/cli.h); the commands themselves live in api/cli_*.c. libgit2 is
 * set up around every command. */
#include <stdio.h>
#include <string.h>

#include "tablehub/repo.h"
#include "cli.h"

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "db", cli_db },       { "import", cli_import }, { "export", cli_export },
	{ "log", cli_log },     { "serve", cli_serve },   { "user", cli_user },
	{ "token", cli_token }, { "query", cli_query },   { "diff", cli_diff },
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
		rc = commands[i].fn(argc - 1, argv + 1);
		th_repo_global_shutdown();
		return rc;
	}
	fprintf(stderr, "tablehub: unknown command '%s'\n\n%s", argv[1], cli_usage);
	return 2;
}
