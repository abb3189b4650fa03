/* cli.h: the subcommands of the `tablehub` binary (the th_cli library, api/cli*.c). Each takes the
 * arguments after its own name (argv[0] is the subcommand) and returns the process exit status: 0
 * success, 1 a failure of the input or the operation (message on stderr), 2 a usage error.
 * main.c dispatches to them. */
#ifndef TABLEHUB_CLI_H
#define TABLEHUB_CLI_H

#include "tablehub/error.h"
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

/* api/cli_query.c, api/cli_diff.c: reading commands added by later modules. */
int cli_query(int argc, char **argv); /* query [--data DIR] OWNER/DB REF SQL */
int cli_diff(int argc, char **argv);  /* diff [--data DIR] OWNER/DB FROM TO */

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
