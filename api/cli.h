/* cli.h: the subcommands of the `tablehub` binary. Each takes the arguments after its own name
 * (argv[0] is the subcommand) and returns the process exit status: 0 success, 1 a failure of the
 * input or the operation (message on stderr), 2 a usage error. main.c dispatches to them. */
#ifndef TABLEHUB_CLI_H
#define TABLEHUB_CLI_H

/* api/main.c: the table engine's local commands. */
int cli_db(int argc, char **argv);     /* db create [--data DIR] OWNER/DB */
int cli_import(int argc, char **argv); /* import [--data DIR] OWNER/DB --table T ... FILE|- */
int cli_export(int argc, char **argv); /* export [--data DIR] OWNER/DB REF TABLE */
int cli_log(int argc, char **argv);    /* log [--data DIR] OWNER/DB [REF] */

/* api/cli_server.c: the service and its administration. */
int cli_serve(int argc, char **argv); /* serve [--data DIR] [--listen ADDR:PORT] [--workers N]
                                         [--max-upload-mb N] */
int cli_user(int argc, char **argv);  /* user add [--data DIR] NAME */
int cli_token(int argc, char **argv); /* token create [--data DIR] NAME */

/* api/cli_query.c, api/cli_diff.c: reading commands added by later modules. */
int cli_query(int argc, char **argv); /* query [--data DIR] OWNER/DB REF SQL */
int cli_diff(int argc, char **argv);  /* diff [--data DIR] OWNER/DB FROM TO */

/* Shared by the subcommands: take `--data DIR` (or --data=DIR) out of argv, returning the data
 * directory ("./data" by default) and compacting argv/argc. */
const char *cli_take_data_dir(int *argc, char **argv);
/* Take `--name VALUE` (or --name=VALUE) out of argv; NULL when absent. Sets *missing_value when the
 * flag is last with no value. */
const char *cli_take_opt(int *argc, char **argv, const char *name, int *missing_value);

/* Open the repository of NAME ("OWNER/DB") in data_dir (th_datadir_repo_open), with a message
 * that says how to create a database that is missing. */
#include "tablehub/repo.h"
int cli_repo_open(th_repo **out, const char *data_dir, const char *name, int writer, th_error *err);

#endif
