/* meta_access.h: who may do what, in the metadata store (storage/meta_access.c in front of the
 * backends' access ops): accounts with passwords, API tokens and sessions with scopes and
 * expiries, collaborators with roles, protected branches, the head a review was given at, the
 * audit trail of events, and which database was forked from which.
 *
 * Secrets: a password goes in once (register, verify) and is kept only as an Argon2id hash
 * (util/password.c); a token or session secret is made here, returned once to the caller and kept
 * only as its SHA-256. No function here logs, and no message repeats a secret.
 *
 * Changes that the audit trail records (membership, protection, tokens) take the event that
 * describes them (th_event_new, may be NULL) and write it in the same transaction as the change,
 * so the trail cannot miss a change that happened. As everywhere in meta.h: outputs untouched on
 * error, heap strings belong to their struct and go with its _dispose.
 */
#ifndef TABLEHUB_META_ACCESS_H
#define TABLEHUB_META_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ids.h"
#include "meta.h"

/* --- roles ----------------------------------------------------------------------------------- */

/* What someone may do on a database, in increasing order, so roles compare with < and >. The
 * same levels are a token's scope: a token never does more than its scope allows. */
typedef enum {
	TH_ROLE_NONE = 0,  /* "" */
	TH_ROLE_READ = 1,  /* "read": see a private database, comment */
	TH_ROLE_WRITE = 2, /* "write": upload, branch, open pull requests, review, merge */
	TH_ROLE_ADMIN =
	        3, /* "admin": manage collaborators and protection, merge where admin-only */
} th_role;

/* "read", "write", "admin"; "" for TH_ROLE_NONE or anything else. */
const char *th_role_name(th_role r);
/* Parse "read" | "write" | "admin" (any case) into *out. Returns TH_OK or TH_EINVALID (the
 * message names `what`, e.g. "role", and the allowed values). */
int th_role_parse(th_role *out, const char *s, const char *what, th_error *err);

/* --- audit events ---------------------------------------------------------------------------- */

/* An event to record: who did what to which thing, from which address. */
typedef struct th_event_new {
	int64_t db_id;     /* the database it concerns; 0 for an account's own (tokens, sessions) */
	const char *actor; /* user name */
	const char
	        *action; /* "collaborator.set", "protection.set", "token.create", "pull.merge"... */
	const char
	        *target; /* what it acted on: a user, a branch, a token id, a pull id (NULL = "") */
	const char *detail;  /* JSON object text (NULL = "{}") */
	const char *address; /* the client's address (NULL = "") */
} th_event_new;

typedef struct th_event_info {
	int64_t id; /* increasing */
	int64_t db_id;
	char actor[65];
	char action[48];
	char *target; /* heap */
	char *detail; /* heap, JSON object text */
	char address[64];
	int64_t created_at;
} th_event_info;

typedef struct th_event_list {
	th_event_info *items;
	size_t n;
} th_event_list;

void th_event_list_dispose(th_event_list *l);

/* Record an event on its own (changes made elsewhere: a merge requested). Returns TH_OK,
 * TH_EINVALID (no actor or action) or TH_ESTORE. */
int th_meta_event_add(th_meta *m, const th_event_new *ev, th_error *err);

/* The events of database db_id, newest first, at most `limit` (0 = 50) from page_token.
 * next_out (may be NULL) receives the next page's token. Returns TH_OK, TH_EINVALID (bad page
 * token) or TH_ESTORE. */
int th_meta_event_list(th_event_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                       int64_t db_id, const char *page_token, size_t limit, th_error *err);

/* --- accounts -------------------------------------------------------------------------------- */

/* Register user `name` with `email` (3-254 bytes with one '@', no spaces) and `password` (len
 * bytes; hashed with Argon2id here, which takes tens of milliseconds). No token is made. Returns
 * TH_OK, TH_EINVALID (bad name, email or password: the message says which, never the password),
 * TH_EEXISTS (the name, or the email, is taken) or TH_ESTORE. */
int th_meta_user_register(th_meta *m, const char *name, const char *email, const char *password,
                          size_t len, const th_event_new *ev, th_error *err);

/* Set (or replace) the password of existing user `name`. Returns TH_OK, TH_EINVALID,
 * TH_ENOTFOUND or TH_ESTORE. */
int th_meta_user_set_password(th_meta *m, const char *name, const char *password, size_t len,
                              th_error *err);

/* Check `password` for user `name`. Unknown users, users without a password and wrong passwords
 * all cost one Argon2id verify and give the same TH_EAUTH "wrong user name or password". A right
 * password under older hash parameters is re-hashed and stored. Returns TH_OK, TH_EAUTH or
 * TH_ESTORE. */
int th_meta_user_check_password(th_meta *m, const char *name, const char *password, size_t len,
                                th_error *err);

/* --- tokens and sessions --------------------------------------------------------------------- */

typedef enum {
	TH_TOKEN_API = 0,     /* "api": an API token, "thp_..." */
	TH_TOKEN_SESSION = 1, /* "session": a browser session cookie, "ths_..." */
} th_token_kind;

#define TH_SESSION_PREFIX "ths_"
#define TH_TOKEN_NAME_MAX 100

typedef struct th_token_info {
	int64_t token_id; /* public id, shown in lists and used to revoke */
	char user[65];
	char name[TH_TOKEN_NAME_MAX + 1];
	th_role scope;
	th_token_kind kind;
	int64_t created_at;
	int64_t expires_at;   /* 0 = never */
	int64_t last_used_at; /* 0 = never; recorded at most once a minute */
} th_token_info;

typedef struct th_token_list {
	th_token_info *items;
	size_t n;
} th_token_list;

void th_token_list_dispose(th_token_list *l);

/* What a new token is. */
typedef struct th_token_spec {
	const char *user;
	const char *name; /* 1-100 bytes of printable UTF-8; NULL = "" (tokens of `user add`) */
	th_role scope;    /* READ, WRITE or ADMIN */
	th_token_kind kind;
	int64_t expires_at; /* 0 = never */
} th_token_spec;

/* Make a token (or session secret) for existing user t->user into token_out (shown once; only its
 * SHA-256 is stored) and its record into *info_out (may be NULL). Returns TH_OK, TH_EINVALID (bad
 * name or scope, an expiry in the past), TH_ENOTFOUND (no such user) or TH_ESTORE. */
int th_meta_token_issue(char token_out[TH_TOKEN_SIZE], th_token_info *info_out, th_meta *m,
                        const th_token_spec *t, const th_event_new *ev, th_error *err);

/* Who a token or session secret belongs to, with its scope and kind, into *out; records its last
 * use. A revoked or expired token, or one of another kind than `kind`, is refused at once: this
 * reads the store on every call. Returns TH_OK, TH_EAUTH (unknown, malformed, revoked or expired;
 * the message never repeats the token) or TH_ESTORE. */
int th_meta_token_auth(th_token_info *out, th_meta *m, const char *token, th_token_kind kind,
                       th_error *err);

/* The live (not revoked) API tokens of `user`, oldest first, expired ones included. Returns TH_OK
 * or TH_ESTORE. */
int th_meta_token_list(th_token_list *out, th_meta *m, const char *user, th_error *err);

/* Revoke token `token_id` of `user` (of either kind). Returns TH_OK, TH_ENOTFOUND (no live token
 * of that id belongs to `user`) or TH_ESTORE. */
int th_meta_token_revoke(th_meta *m, const char *user, int64_t token_id, const th_event_new *ev,
                         th_error *err);

/* Revoke the token or session whose secret is `token` (a logout). Returns TH_OK, TH_EAUTH (no
 * live token has this secret) or TH_ESTORE. */
int th_meta_token_revoke_secret(th_meta *m, const char *token, const th_event_new *ev,
                                th_error *err);

/* --- collaborators --------------------------------------------------------------------------- */

typedef struct th_collab_info {
	char user[65];
	th_role role;
	int64_t created_at;
	int64_t updated_at;
} th_collab_info;

typedef struct th_collab_list {
	th_collab_info *items;
	size_t n;
} th_collab_list;

void th_collab_list_dispose(th_collab_list *l);

/* Give existing user `user` role `role` (READ..ADMIN) on database db_id, replacing any role they
 * had; *created_out (may be NULL) is 1 when they had none. Returns TH_OK, TH_EINVALID (bad role),
 * TH_ENOTFOUND (no such user or database) or TH_ESTORE. The owner is no collaborator: callers
 * refuse them first. */
int th_meta_collab_set(int *created_out, th_meta *m, int64_t db_id, const char *user, th_role role,
                       const th_event_new *ev, th_error *err);

/* Take `user`'s role on db_id away. Returns TH_OK, TH_ENOTFOUND (not a collaborator) or
 * TH_ESTORE. */
int th_meta_collab_remove(th_meta *m, int64_t db_id, const char *user, const th_event_new *ev,
                          th_error *err);

/* `user`'s collaborator role on db_id into *out (TH_ROLE_NONE when none; the owner's admin role
 * and a public database's read are the caller's to add). Returns TH_OK or TH_ESTORE. */
int th_meta_collab_role(th_role *out, th_meta *m, int64_t db_id, const char *user, th_error *err);

/* The collaborators of db_id, by user name. Returns TH_OK or TH_ESTORE. */
int th_meta_collab_list(th_collab_list *out, th_meta *m, int64_t db_id, th_error *err);

/* --- protected branches ---------------------------------------------------------------------- */

typedef struct th_protection {
	char branch[256];
	int required_approvals;      /* 0-100 */
	int allow_self_approval;     /* the author's own approval counts */
	int dismiss_stale_approvals; /* approvals given at an older head of the pull don't count */
	th_role merge_role;          /* WRITE or ADMIN: who may merge */
	char updated_by[65];
	int64_t updated_at;
} th_protection;

typedef struct th_protection_list {
	th_protection *items;
	size_t n;
} th_protection_list;

void th_protection_list_dispose(th_protection_list *l);

/* Protect p->branch of db_id with p's rules (updated_by and updated_at are set here from `by`
 * and the clock), replacing earlier rules. Returns TH_OK, TH_EINVALID (approvals out of range, a
 * merge role other than write or admin, an empty branch) or TH_ESTORE. */
int th_meta_protection_set(th_meta *m, int64_t db_id, const th_protection *p, const char *by,
                           const th_event_new *ev, th_error *err);

/* The rules of `branch` of db_id. Returns TH_OK, TH_ENOTFOUND (unprotected) or TH_ESTORE. */
int th_meta_protection_get(th_protection *out, th_meta *m, int64_t db_id, const char *branch,
                           th_error *err);

/* Unprotect `branch`. Returns TH_OK, TH_ENOTFOUND (it was not protected) or TH_ESTORE. */
int th_meta_protection_remove(th_meta *m, int64_t db_id, const char *branch, const th_event_new *ev,
                              th_error *err);

/* The protected branches of db_id, by name. Returns TH_OK or TH_ESTORE. */
int th_meta_protection_list(th_protection_list *out, th_meta *m, int64_t db_id, th_error *err);

/* --- the head a review was given at ---------------------------------------------------------- */

/* Record that review review_id of pull pull_id saw the pull's branch at commit `head` (40 hex),
 * so a later push can make its approval stale. Returns TH_OK, TH_ENOTFOUND (no such review),
 * TH_EINVALID or TH_ESTORE. */
int th_meta_review_set_head(th_meta *m, int64_t db_id, int64_t pull_id, int64_t review_id,
                            const char *head, th_error *err);

typedef struct th_review_info {
	int64_t id;
	char author[65];
	th_review_status status;
	char head[41]; /* "" when not recorded */
	int64_t created_at;
} th_review_info;

typedef struct th_review_list {
	th_review_info *items;
	size_t n;
} th_review_list;

void th_review_list_dispose(th_review_list *l);

/* The reviews of a pull with the heads they saw, oldest first. Returns TH_OK or TH_ESTORE. */
int th_meta_review_heads(th_review_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                         th_error *err);

/* --- forks ---------------------------------------------------------------------------------- */

/* A database as a member of a fork network: itself, its parent (id 0 when it is no fork) and the
 * operation that made it ("" when none). */
typedef struct th_fork_info {
	int64_t id;
	char owner[65];
	char name[65];
	int is_private;
	int64_t parent_id;
	char fork_op[TH_UUID_SIZE];
	int64_t created_at;
} th_fork_info;

typedef struct th_fork_list {
	th_fork_info *items;
	size_t n;
} th_fork_list;

void th_fork_list_dispose(th_fork_list *l);

/* Record `owner`'s fork of database parent_id: a database of the parent's name, description and
 * visibility, whose parent is parent_id, made by operation op_id; its id into *id_out. The
 * repository is the caller's (th_repo_fork). Returns TH_OK, TH_EINVALID (a bad owner or op id),
 * TH_ENOTFOUND (no parent), TH_EEXISTS ("database 'o/d' already exists") or TH_ESTORE. */
int th_meta_fork_record(int64_t *id_out, th_meta *m, const char *owner, int64_t parent_id,
                        const char *op_id, const th_event_new *ev, th_error *err);

/* Database db_id as a fork network member. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_meta_fork_info(th_fork_info *out, th_meta *m, int64_t db_id, th_error *err);

/* The forks of parent_id (direct ones), by owner. Returns TH_OK or TH_ESTORE. */
int th_meta_fork_list(th_fork_list *out, th_meta *m, int64_t parent_id, th_error *err);

/* The fork operation op_id made. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_meta_fork_by_op(th_fork_info *out, th_meta *m, const char *op_id, th_error *err);

/* A pull request's source: database from_db_id (a fork) instead of its own (0). Returns TH_OK,
 * TH_ENOTFOUND (no such pull) or TH_ESTORE. */
int th_meta_pull_set_source(th_meta *m, int64_t db_id, int64_t pull_id, int64_t from_db_id,
                            th_error *err);
int th_meta_pull_source(int64_t *from_db_id, th_meta *m, int64_t db_id, int64_t pull_id,
                        th_error *err);

/* --- releases ------------------------------------------------------------------------------- */

/* A release: a tag of the database's repository (the caller checks it exists) with a title and
 * notes. */
typedef struct th_release_new {
	const char *tag_name;
	const char *title; /* NULL = "" */
	const char *notes; /* NULL = "" */
	const char *author;
} th_release_new;

typedef struct th_release_info {
	char tag_name[256];
	char *title; /* heap */
	char *notes; /* heap */
	char author[65];
	int64_t created_at;
} th_release_info;

typedef struct th_release_list {
	th_release_info *items; /* newest first */
	size_t n;
} th_release_list;

void th_release_list_dispose(th_release_list *l);

/* Record release r of db_id with its event ev (may be NULL). Returns TH_OK, TH_EINVALID (an empty
 * or over-long tag name, a bad author), TH_EEXISTS (the tag has a release) or TH_ESTORE. */
int th_meta_release_create(th_meta *m, int64_t db_id, const th_release_new *r,
                           const th_event_new *ev, th_error *err);

/* The releases of db_id, newest first. Returns TH_OK or TH_ESTORE. */
int th_meta_release_list(th_release_list *out, th_meta *m, int64_t db_id, th_error *err);

/* --- requested reviewers, pull options, pull search, the merge ----------------------------- */

/* A reviewer requested on a pull request. */
typedef struct th_reviewer_info {
	char user[65];
	char requested_by[65];
	int64_t created_at;
} th_reviewer_info;

typedef struct th_reviewer_list {
	th_reviewer_info *items; /* by the order they were requested in */
	size_t n;
} th_reviewer_list;

void th_reviewer_list_dispose(th_reviewer_list *l);

#define TH_REVIEWERS_MAX 100 /* names one request may add */

/* Request users[0..n) (valid user names; the caller checked each may read the database) as
 * reviewers of pull pull_id of db_id, by `by`; names already requested, or repeated, are
 * skipped. *added_out (may be NULL) gets how many were new. The event `ev` (may be NULL) is
 * written with them. Returns TH_OK, TH_EINVALID (no names, too many, or a bad one: the message
 * names it), TH_ENOTFOUND (no such pull) or TH_ESTORE. */
int th_meta_reviewer_add(int *added_out, th_meta *m, int64_t db_id, int64_t pull_id,
                         const char *const *users, size_t n, const char *by, const th_event_new *ev,
                         th_error *err);

/* Withdraw the request for `user`'s review. Returns TH_OK, TH_ENOTFOUND ("'x' is not a requested
 * reviewer of pull request #n") or TH_ESTORE. */
int th_meta_reviewer_remove(th_meta *m, int64_t db_id, int64_t pull_id, const char *user,
                            const th_event_new *ev, th_error *err);

/* The requested reviewers of a pull, in the order requested. Returns TH_OK or TH_ESTORE. */
int th_meta_reviewer_list(th_reviewer_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                          th_error *err);

/* What a pull request does beyond its record. */
typedef struct th_pull_options {
	int delete_branch_on_merge; /* its merge deletes its source branch (DoltHub's
	                             * deleteBranchOnMerge) */
	int branch_deleted;         /* its merge did */
} th_pull_options;

/* Set the options of pull pull_id. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_meta_pull_options_set(th_meta *m, int64_t db_id, int64_t pull_id, const th_pull_options *o,
                             th_error *err);
/* The options of pull pull_id (all 0 when never set, or no such pull). Returns TH_OK or
 * TH_ESTORE. */
int th_meta_pull_options_get(th_pull_options *out, th_meta *m, int64_t db_id, int64_t pull_id,
                             th_error *err);

/* Which pulls a search returns. */
typedef struct th_pull_filter {
	th_pull_state state; /* 0 = any */
	const char *query;   /* in the title or the author's name, ASCII case ignored; NULL = any */
	int reviewed;        /* only pulls with at least one review */
	int assigned;        /* only pulls with at least one requested reviewer */
} th_pull_filter;

/* The pulls of db_id that f selects, newest first, paged as th_meta_pull_list. Returns TH_OK,
 * TH_EINVALID (bad page token, a query over 200 bytes) or TH_ESTORE. */
int th_meta_pull_search(th_pull_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                        int64_t db_id, const th_pull_filter *f, const char *page_token,
                        size_t limit, th_error *err);

/* Mark Open pull pull_id Merged with merge_commit (40 hex) and write its event `ev` (may be NULL)
 * in the same transaction, so the trail says merged exactly when it is. Returns TH_OK,
 * TH_ENOTFOUND, TH_ECONFLICT (not Open: the message says its state), TH_EINVALID or TH_ESTORE. */
int th_meta_pull_mark_merged(th_meta *m, int64_t db_id, int64_t pull_id, const char *merge_commit,
                             const th_event_new *ev, th_error *err);

#endif
