/* cli_remote.h: the `tablehub` commands run against a server (api/cli_remote*.c). Internal to the
 * th_cli library; main.c dispatches to them.
 *
 *   cli_remote.c         login, the stored config, which server and token a command uses, and
 *                        what the commands share (output, failures)
 *   cli_remote_db.c      db list|create|show, branch list|create, log, export
 *   cli_remote_upload.c  upload [--wait], the wait for an operation, jobs [--watch]
 *   cli_remote_pr.c      pr list|show|comment|approve|merge [--wait]
 *   cli_remote_diff.c    pr diff: the pull's diff printed as the local `diff` prints it
 *   cli_remote_query.c   query --remote
 *
 * Which server: `--remote URL` (or --remote=URL), else TABLEHUB_URL, else the server stored by
 * `tablehub login` in $XDG_CONFIG_HOME/tablehub/config (~/.config/tablehub/config). Which token:
 * --token, else TABLEHUB_TOKEN, else the stored one, but only when the server is the stored one
 * (a token is never sent to a server it was not made for). A command given --data runs locally.
 */
#ifndef TABLEHUB_CLI_REMOTE_H
#define TABLEHUB_CLI_REMOTE_H

#include <stdint.h>

#include "cli_http.h"
#include "tablehub/error.h"

/* A command's connection to its server and how it prints. */
typedef struct cli_remote {
	cli_http *http;
	const char *cmd; /* "upload", for messages */
	int json;        /* --json: print the server's JSON answers */
	int out_tty;     /* stdout is a terminal: colour allowed */
	int err_tty;     /* stderr is a terminal: progress bars drawn */
	char user[65];   /* the signed-in user, once cli_remote_whoami has asked */
} cli_remote;

/* Take --remote [URL], --token T and --json out of argv and connect r to the server. Returns 0,
 * or the exit status (1: no server known, 2: a usage error) with the message printed. r is
 * released with cli_remote_close, also after a failure. */
int cli_remote_open(cli_remote *r, const char *cmd, int *argc, char **argv);
void cli_remote_close(cli_remote *r);

/* Print "tablehub CMD: <err's message>" to stderr; returns 1. */
int cli_remote_fail(const cli_remote *r, const th_error *err);
/* Print a usage error for the command; returns 2. */
int cli_remote_usage(const cli_remote *r, const char *usage);
/* Print the reply's JSON on one line (--json). Returns 0. */
int cli_remote_print_json(const cli_reply *reply);

/* Take a flag without value (--wait) out of argv; 1 if it was there. */
int cli_take_flag(int *argc, char **argv, const char *name);

/* Append "/api/v1alpha1/OWNER/DB" for name "OWNER/DB" to path, escaped. Returns TH_OK,
 * TH_EINVALID (not OWNER/DB) or TH_ENOMEM. */
int cli_remote_db_path(th_buf *path, const char *name, th_error *err);

/* The signed-in user's name into r->user (GET /api/v1alpha1/user). Returns as cli_http_call. */
int cli_remote_whoami(cli_remote *r, th_error *err);

/* A string member of a JSON object, or "" (never NULL). */
const char *cli_json_str(const cJSON *obj, const char *key);
/* A number member of a JSON object, or 0. */
double cli_json_num(const cJSON *obj, const char *key);

/* Wait for operation `op_name` of database `db` ("OWNER/DB") at poll path `poll_path` (the
 * upload's or the merge's, with operationName already in its query) until it is Completed or
 * Failed, showing its progress on stderr (a redrawn line on a terminal, state changes otherwise).
 * A connection that drops, or a server that restarts, is retried with backoff for up to 5 minutes.
 * *final (the caller's: cli_reply_dispose) gets the last poll. Returns TH_OK (Completed),
 * TH_ECONFLICT (Failed: final->json says why) or the error of the poll that ended the wait. */
int cli_remote_wait(cli_reply *final, cli_remote *r, const char *poll_path, th_error *err);

/* pr diff OWNER/DB ID [--table T] [--stat] (cli_remote_diff.c), for cli_pr: argv[1] is "diff".
 * Returns the exit status. */
int cli_remote_pr_diff(cli_remote *r, int argc, char **argv);

/* Print the rejected rows of a failed import (the report in its poll's "result") to stderr. */
void cli_remote_print_rejected(const cJSON *poll);

#endif
