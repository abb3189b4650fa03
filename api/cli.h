/* cli.h: the subcommands of the `tablehub` binary (the th_cli library, api/cli*.c). Each takes the
 * arguments after its own name (argv[0] is the subcommand) and returns the process exit status: 0
 * success, 1 a failure of the input or the operation (message on stderr), 2 a usage error.
 * main.c dispatches to them. */
#ifndef TABLEHUB_CLI_H
#define TABLEHUB_CLI_H

#include "tablehub/buf.h"
#include "tablehub/diff.h"
#include "tablehub/error.h"
#include "tablehub/query.h"
#include "tablehub/repo.h"

/* api/cli_db.c, api/cli_import.c, api/cli_read.c: the table engine's local commands. */
int cli_db(int argc, char **argv);     /* db create [--data DIR] OWNER/DB */
int cli_import(int argc, char **argv); /* import [--data DIR] OWNER/DB --table T ... FILE|- */
int cli_export(int argc, char **argv); /* export [--data DIR] OWNER/DB REF TABLE */
int cli_log(int argc, char **argv);    /* log [--data DIR] OWNER/DB [REF] */

/* api/cli_server.c: the service and its administration. */
int cli_serve(int argc, char **argv); /* serve [--data DIR] [--listen ADDR:PORT] [--workers N]
                                         [--max-upload-mb N] */
int cli_user(int argc, char **argv);  /* user add|passwd [--data DIR] NAME */
int cli_token(int argc, char **argv); /* token create|list|revoke (cli_tokens.c) */
/* user passwd [--data DIR] NAME: the password from stdin (cli_tokens.c). */
int cli_user_passwd(int argc, char **argv);

/* api/cli_backup.c: a consistent copy of a data dir, beside a running server, and its restore. */
int cli_backup(int argc, char **argv);  /* backup [--data DIR] OUT */
int cli_restore(int argc, char **argv); /* restore IN [--data DIR] */
/* api/cli_meta.c: meta migrate --from DIR/meta.sqlite --to postgresql://... */
int cli_meta(int argc, char **argv);

/* api/cli_query.c, api/cli_diff.c: reading commands added by later modules. */
int cli_query(int argc, char **argv); /* query [--data DIR] OWNER/DB REF SQL */
int cli_diff(int argc, char **argv);  /* diff [--data DIR] OWNER/DB FROM TO */

/* api/cli_remote*.c: the commands run against a server (api/cli_remote.h). A command that also
 * runs locally has its remote form here; main.c picks it when cli_remote_wanted() says so. */
/* Should the command run against a server? 0 when argv holds --data (local, as always), 1 when it
 * holds --remote, or TABLEHUB_URL is set, or a server is stored by `tablehub login`. */
int cli_remote_wanted(int argc, char **argv);
int cli_login(int argc, char **argv);         /* login URL [--token T] */
int cli_remote_db(int argc, char **argv);     /* db list|create|show */
int cli_branch(int argc, char **argv);        /* branch list|create OWNER/DB ... */
int cli_remote_log(int argc, char **argv);    /* log OWNER/DB [REF] */
int cli_remote_export(int argc, char **argv); /* export OWNER/DB REF TABLE */
int cli_upload(int argc, char **argv);        /* upload OWNER/DB FILE --table T ... [--wait] */
int cli_pr(int argc, char **argv);   /* pr list|show|diff|comment|approve|merge|create|close */
int cli_fork(int argc, char **argv); /* fork OWNER/DB */
int cli_remote_query(int argc, char **argv); /* query --remote OWNER/DB REF SQL */
int cli_jobs(int argc, char **argv);         /* jobs [OWNER/DB] [--watch] */

/* The printer of a query's result (api/cli_query.c), shared with `query --remote`: a boxed table
 * on stdout, or CSV through the exporter (csv). cli_result_new fills `sink` with its callbacks;
 * *out is the caller's: cli_result_free (which also writes the CSV rows held back by a failure).
 * cli_result_finish prints the table or ends the CSV. Both return TH_OK, TH_ENOMEM or TH_ESTORE. */
typedef struct cli_result cli_result;
int cli_result_new(cli_result **out, th_sql_sink *sink, int csv, th_error *err);
int cli_result_finish(cli_result *r, th_error *err);
void cli_result_free(cli_result *r);

/* The printer of `diff` (api/cli_diff.c), shared with `pr diff`: the lines of a changed table,
 * buffered in `out`; colour adds terminal colours. */
typedef struct cli_diff_printer {
	th_buf out, line;
	th_error *err; /* where a failure of the printer is told */
	int colour;
} cli_diff_printer;
/* A visitor printing with p (stat: only the tables' headers and counts). */
void cli_diff_visitor(th_diff_visitor *v, cli_diff_printer *p, int stat);
/* Write what p holds to stdout. Returns 0 or TH_ESTORE. */
int cli_diff_flush(cli_diff_printer *p);

/* api/cli_sql.c: SQL writes, locally. */
int cli_sql(int argc, char **argv); /* sql [--data DIR] OWNER/DB [--branch B] [--from F] SQL */

/* --- api/cli.c: shared by the subcommands ------------------------------------------------- */

/* The usage text of `tablehub --help`. */
extern const char cli_usage[];

/* Print "tablehub: MSG" and the usage text to stderr; returns 2 (the usage exit status). */
int cli_usage_error(const char *msg);
/* Print "tablehub: <err's message>" to stderr; returns 1. */
int cli_fail(const th_error *err);
/* 0 when no option (--x) is left in argv, else a usage error naming the first (returns 2). */
int cli_reject_unknown(int argc, char **argv);

/* Take `--data DIR` (or --data=DIR) out of argv, returning the data directory ("./data" by
 * default) and compacting argv/argc. */
const char *cli_take_data_dir(int *argc, char **argv);
/* Take `--name VALUE` (or --name=VALUE) out of argv; NULL when absent. Sets *missing_value when the
 * flag is last with no value. */
const char *cli_take_opt(int *argc, char **argv, const char *name, int *missing_value);

/* Open the repository of NAME ("OWNER/DB") in data_dir (th_datadir_repo_open) into *out (the
 * caller's: th_repo_free), with a message that says how to create a database that is missing.
 * Returns TH_OK, TH_EINVALID, TH_ENOTFOUND or TH_ESTORE. */
int cli_repo_open(th_repo **out, const char *data_dir, const char *name, int writer, th_error *err);

#endif
