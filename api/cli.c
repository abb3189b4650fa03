/* cli.c: what the subcommands of the `tablehub` binary share (api/cli.h): the usage text, option
 * parsing over argv, the error and usage-error exits, and opening a database's repository with a
 * message that says how to create it. The subcommands themselves live in api/cli_*.c; main.c only
 * dispatches. */
#include <stdio.h>
#include <string.h>

#include "tablehub/text.h"
#include "tablehub/datadir.h"
#include "cli.h"

const char cli_usage[] =
        "usage: tablehub <command> [options]\n"
        "\n"
        "  db create [--data DIR] OWNER/DB      create a database (a git repository)\n"
        "  import    [--data DIR] OWNER/DB --table T [--op "
        "create|overwrite|update|replace|append]\n"
        "            [--pk COL[,COL]] [--branch B] [--type FORMAT] [--message M] FILE|-\n"
        "            [--null MARKER[,MARKER]]... [--sheet NAME]\n"
        "            FORMAT: a fileType (csv, json, xlsx...); default: FILE's extension, else csv\n"
        "  export    [--data DIR] [--format csv|json|jsonl|sql] OWNER/DB REF TABLE\n"
        "                                            print a table (CSV by default)\n"
        "  log       [--data DIR] OWNER/DB [REF]       show the history of a branch or commit\n"
        "  diff      [--data DIR] OWNER/DB FROM TO     rows and cells changed between two refs\n"
        "  query     [--data DIR] OWNER/DB REF SQL     run a read-only SQL query at a ref\n"
        "  sql       [--data DIR] OWNER/DB [--branch B] [--from F] [--message M] SQL|--file F\n"
        "            run SQL writes on branch B (default main; made from F when missing)\n"
        "\n"
        "  serve     [--data DIR] [--listen 127.0.0.1:8080] [--workers N] [--max-upload-mb 100]\n"
        "  user add  [--data DIR] NAME               create a user; prints its first API token\n"
        "  user passwd [--data DIR] NAME             set a user's password (read from stdin)\n"
        "  token create [--data DIR] [--name N] [--scope read|write|admin] [--expires-in-days D]\n"
        "               NAME                         print another API token for a user\n"
        "  token list   [--data DIR] NAME            a user's tokens (never their secrets)\n"
        "  token revoke [--data DIR] NAME TOKEN_ID   revoke one at once\n"
        "  backup    [--data DIR] OUT              a consistent copy, also while serve runs\n"
        "  restore   IN [--data DIR]               a backup into a new data directory\n"
        "  meta migrate --from DIR/meta.sqlite --to postgresql://...\n"
        "                                          move a data directory's metadata to PostgreSQL\n"
        "\n"
        "\n"
        "against a server (after `login`, or with --remote URL / TABLEHUB_URL; --data DIR stays "
        "local):\n"
        "  login URL [--token T]                 check a token and store it with the server URL\n"
        "  db list|create OWNER/DB [--private]|show OWNER/DB [REF]\n"
        "  fork      OWNER/DB                    a copy in your account, to propose changes from\n"
        "  branch list OWNER/DB | branch create OWNER/DB NEW [--from REF]\n"
        "  log OWNER/DB [REF]  |  export OWNER/DB REF TABLE\n"
        "  upload    OWNER/DB FILE --table T [--op OP] [--pk COL[,COL]] [--branch B] [--wait]\n"
        "  pr        list|show|diff|comment|approve|merge|close OWNER/DB [ID] ... [--wait]\n"
        "  pr create OWNER/DB --from BRANCH [--from-db FORK] [--into BRANCH] [--title T]\n"
        "  query     --remote OWNER/DB REF SQL [--csv | --json]\n"
        "  jobs      [OWNER/DB] [--watch]\n"
        "  common: --remote URL, --token T (or TABLEHUB_URL, TABLEHUB_TOKEN), --json\n"
        "\n"
        "--data defaults to ./data. Exit status: 0 ok, 1 failed, 2 usage.\n";

const char *cli_take_opt(int *argc, char **argv, const char *name, int *missing_value)
{
	size_t nlen = strlen(name);
	const char *val = NULL;
	int i, j, take;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strncmp(argv[i], name, nlen) != 0)
			continue;
		if (argv[i][nlen] == '=') {
			val = argv[i] + nlen + 1;
			take = 1;
		} else if (argv[i][nlen] == '\0') {
			if (i + 1 >= *argc) {
				if (missing_value)
					*missing_value = 1;
				return NULL;
			}
			val = argv[i + 1];
			take = 2;
		} else {
			continue;
		}
		for (j = i; j + take < *argc; j++)
			argv[j] = argv[j + take];
		*argc -= take;
		return val;
	}
	return NULL;
}

const char *cli_take_data_dir(int *argc, char **argv)
{
	const char *d = cli_take_opt(argc, argv, "--data", NULL);

	return d ? d : "./data";
}

int cli_fail(const th_error *err)
{
	fprintf(stderr, "tablehub: %s\n", err->msg);
	return 1;
}

int cli_usage_error(const char *msg)
{
	fprintf(stderr, "tablehub: %s\n\n%s", msg, cli_usage);
	return 2;
}

int cli_reject_unknown(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (argv[i][0] == '-' && argv[i][1] == '-') {
			char msg[256];
			snprintf(msg, sizeof(msg), "unknown option '%s'", argv[i]);
			return cli_usage_error(msg);
		}
	return 0;
}

int cli_repo_open(th_repo **out, const char *data_dir, const char *name, int writer, th_error *err)
{
	char owner[65], db[65];
	int error;

	if ((error = th_split_db_name(owner, db, name, err)) < 0)
		return error;
	error = th_datadir_repo_open(out, data_dir, owner, db, writer, err);
	if (error == TH_ENOTFOUND)
		error = th_error_set(err, TH_ENOTFOUND,
		                     "database '%s' not found in '%s'; create it with `tablehub db "
		                     "create %s`",
		                     name, data_dir, name);
	return error;
}
