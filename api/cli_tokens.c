/* cli_tokens.c: `tablehub token create|list|revoke`, API tokens managed on a data dir, beside a
 * running server or not (they write meta.sqlite only, under SQLite's own locking).
 *
 *   token create [--data DIR] [--name N] [--scope read|write|admin] [--expires-in-days D] USER
 *   token list   [--data DIR] USER
 *   token revoke [--data DIR] USER TOKEN_ID
 *
 * `token create USER` with no options makes what it always made: a token with every right that
 * never expires. The secret is printed once, alone on stdout; only its hash is stored. A revoked
 * token is refused by a running server at its next request (the server caches no tokens).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tablehub/datadir.h"
#include "tablehub/meta.h"
#include "tablehub/meta_access.h"
#include "tablehub/password.h"
#include "tablehub/text.h"

#define DAY_MS ((int64_t)86400000)

static const char token_usage[] =
        "usage: tablehub token create [--data DIR] [--name N] [--scope read|write|admin]\n"
        "                             [--expires-in-days D] USER\n"
        "       tablehub token list   [--data DIR] USER\n"
        "       tablehub token revoke [--data DIR] USER TOKEN_ID\n";

static int usage(void)
{
	fputs(token_usage, stderr);
	return 2;
}

static int open_meta(th_meta **meta, const char *dir)
{
	th_error err = { 0 };

	if (th_datadir_init(dir, &err) < 0 || th_meta_open(meta, dir, &err) < 0) {
		fprintf(stderr, "tablehub token: %s\n", err.msg);
		return 1;
	}
	return 0;
}

static int fail(const char *dir, const char *user, const th_error *err)
{
	if (err->code == TH_ENOTFOUND && strstr(err->msg, "user '") != NULL)
		fprintf(stderr,
		        "tablehub token: no user '%s' (create it with: tablehub user add "
		        "--data %s %s)\n",
		        user, dir, user);
	else
		fprintf(stderr, "tablehub token: %s\n", err->msg);
	return 1;
}

static int create(int argc, char **argv, const char *dir)
{
	int missing = 0, rc;
	const char *name = cli_take_opt(&argc, argv, "--name", &missing);
	const char *scope = cli_take_opt(&argc, argv, "--scope", &missing);
	const char *days = cli_take_opt(&argc, argv, "--expires-in-days", &missing);
	th_token_spec spec = { NULL, name, TH_ROLE_ADMIN, TH_TOKEN_API, 0 };
	th_event_new ev = { 0, NULL, "token.create", NULL, "{\"via\":\"cli\"}", "" };
	char token[TH_TOKEN_SIZE];
	th_meta *meta = NULL;
	th_error err = { 0 };
	int error;

	if (missing || (rc = cli_reject_unknown(argc, argv)) != 0 || argc != 3)
		return usage();
	if (scope != NULL && th_role_parse(&spec.scope, scope, "scope", &err) < 0) {
		fprintf(stderr, "tablehub token: %s\n", err.msg);
		return 2;
	}
	if (days != NULL) {
		char *end;
		long d;
		errno = 0;
		d = strtol(days, &end, 10);
		if (*days == '\0' || *end != '\0' || errno != 0 || d < 1 || d > 3650) {
			fprintf(stderr, "tablehub token: --expires-in-days must be 1 to 3650\n");
			return 2;
		}
		spec.expires_at = th_now_ms() + d * DAY_MS;
	}
	spec.user = ev.actor = argv[2];
	if (!th_name_valid(spec.user)) {
		fprintf(stderr, "tablehub token: bad user name '%s': use 1-64 of [A-Za-z0-9_-]\n",
		        spec.user);
		return 1;
	}
	if ((rc = open_meta(&meta, dir)) != 0)
		return rc;
	error = th_meta_token_issue(token, NULL, meta, &spec, &ev, &err);
	th_meta_close(meta);
	if (error < 0)
		return fail(dir, spec.user, &err);
	/* The token alone on stdout, so `T=$(tablehub token create NAME)` works. */
	printf("%s\n", token);
	th_secure_zero(token, sizeof(token));
	if (fflush(stdout) != 0)
		return 1;
	fprintf(stderr,
	        "token created (scope %s): it is shown only once; send it as "
	        "'authorization: token <token>'\n",
	        th_role_name(spec.scope));
	return 0;
}

static void fmt_time(char out[32], int64_t ms, const char *none)
{
	if (ms == 0)
		snprintf(out, 32, "%s", none);
	else
		th_time_fmt(out, ms);
}

static int list(int argc, char **argv, const char *dir)
{
	th_token_list l = { NULL, 0 };
	th_meta *meta = NULL;
	th_error err = { 0 };
	int rc, error;

	if ((rc = cli_reject_unknown(argc, argv)) != 0 || argc != 3)
		return usage();
	if ((rc = open_meta(&meta, dir)) != 0)
		return rc;
	error = th_meta_token_list(&l, meta, argv[2], &err);
	th_meta_close(meta);
	if (error < 0)
		return fail(dir, argv[2], &err);
	printf("%-8s %-6s %-24s %-24s %-24s %s\n", "ID", "SCOPE", "CREATED", "LAST USED", "EXPIRES",
	       "NAME");
	for (size_t i = 0; i < l.n; i++) {
		const th_token_info *t = &l.items[i];
		char created[32], used[32], expires[32];
		fmt_time(created, t->created_at, "-");
		fmt_time(used, t->last_used_at, "never");
		fmt_time(expires, t->expires_at, "never");
		printf("%-8lld %-6s %-24s %-24s %-24s %s\n", (long long)t->token_id,
		       th_role_name(t->scope), created, used, expires, t->name);
	}
	th_token_list_dispose(&l);
	return fflush(stdout) != 0;
}

static int revoke(int argc, char **argv, const char *dir)
{
	th_event_new ev = { 0, NULL, "token.revoke", NULL, "{\"via\":\"cli\"}", "" };
	th_meta *meta = NULL;
	th_error err = { 0 };
	char *end;
	long long id;
	int rc, error;

	if ((rc = cli_reject_unknown(argc, argv)) != 0 || argc != 4)
		return usage();
	errno = 0;
	id = strtoll(argv[3], &end, 10);
	if (argv[3][0] == '\0' || *end != '\0' || errno != 0 || id <= 0) {
		fprintf(stderr, "tablehub token: bad token id '%s': see 'tablehub token list'\n",
		        argv[3]);
		return 2;
	}
	ev.actor = argv[2];
	ev.target = argv[3];
	if ((rc = open_meta(&meta, dir)) != 0)
		return rc;
	error = th_meta_token_revoke(meta, argv[2], id, &ev, &err);
	th_meta_close(meta);
	if (error == TH_ENOTFOUND) {
		fprintf(stderr, "tablehub token: '%s' has no live token %lld\n", argv[2], id);
		return 1;
	}
	if (error < 0)
		return fail(dir, argv[2], &err);
	fprintf(stderr, "token %lld revoked\n", id);
	return 0;
}

int cli_token(int argc, char **argv)
{
	const char *dir = cli_take_data_dir(&argc, argv);

	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "create") == 0)
		return create(argc, argv, dir);
	if (strcmp(argv[1], "list") == 0)
		return list(argc, argv, dir);
	if (strcmp(argv[1], "revoke") == 0)
		return revoke(argc, argv, dir);
	return usage();
}

/* `tablehub user passwd [--data DIR] NAME`: the first line of stdin becomes NAME's password (so
 * it never shows in a process list or a shell history). */
int cli_user_passwd(int argc, char **argv)
{
	const char *dir = cli_take_data_dir(&argc, argv);
	char pw[TH_PASSWORD_MAX + 2];
	th_meta *meta = NULL;
	th_error err = { 0 };
	size_t len;
	int rc, error;

	if ((rc = cli_reject_unknown(argc, argv)) != 0)
		return rc;
	if (argc != 3) {
		fprintf(stderr, "usage: printf '%%s' PASSWORD | tablehub user passwd [--data DIR] "
		                "NAME\n");
		return 2;
	}
	len = fread(pw, 1, sizeof(pw) - 1, stdin);
	pw[len] = '\0';
	len = strcspn(pw, "\r\n");
	pw[len] = '\0';
	if ((rc = open_meta(&meta, dir)) != 0) {
		th_secure_zero(pw, sizeof(pw));
		return rc;
	}
	error = th_meta_user_set_password(meta, argv[2], pw, len, &err);
	th_secure_zero(pw, sizeof(pw));
	th_meta_close(meta);
	if (error < 0) {
		fprintf(stderr, "tablehub user: %s\n", err.msg);
		return 1;
	}
	fprintf(stderr, "password set for '%s'\n", argv[2]);
	return 0;
}
