/* meta_access.c: the front end of the access part of the metadata store (meta_access.h): checks
 * arguments, makes what is not the backend's business (password hashes, token secrets and their
 * SHA-256, page offsets, the clock) and calls the backend's access ops (meta_backend.h).
 *
 * Password work (Argon2id, ~50 ms) runs here, outside the backend's lock, so one login never
 * holds up the other users of the store.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tablehub/hash.h"
#include "tablehub/password.h"
#include "tablehub/text.h"
#include "meta_backend.h"

#define MAX_PAGE 1000

static const th_meta_access_ops *ops(const th_meta *m)
{
	return m->ops->access;
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

static int user_ok(const char *s, th_error *err)
{
	if (s == NULL || !th_name_valid(s))
		return th_error_set(
		        err, TH_EINVALID,
		        "invalid user name '%.64s': use 1-64 letters, digits, '_' or '-'", nz(s));
	return TH_OK;
}

/* --- roles ----------------------------------------------------------------------------------- */

static const char *const role_names[] = { "", "read", "write", "admin" };

const char *th_role_name(th_role r)
{
	return (r >= TH_ROLE_READ && r <= TH_ROLE_ADMIN) ? role_names[r] : "";
}

int th_role_parse(th_role *out, const char *s, const char *what, th_error *err)
{
	for (int i = TH_ROLE_READ; s != NULL && i <= TH_ROLE_ADMIN; i++) {
		if (strcasecmp(s, role_names[i]) == 0) {
			*out = (th_role)i;
			return TH_OK;
		}
	}
	return th_error_set(err, TH_EINVALID, "invalid %s '%.32s': use read, write or admin", what,
	                    nz(s));
}

/* --- list disposal --------------------------------------------------------------------------- */

void th_event_list_dispose(th_event_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].target);
		free(l->items[i].detail);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

#define DISPOSE_PLAIN(fn, type)                                                                    \
	void fn(type *l)                                                                           \
	{                                                                                          \
		if (l == NULL)                                                                     \
			return;                                                                    \
		free(l->items);                                                                    \
		l->items = NULL;                                                                   \
		l->n = 0;                                                                          \
	}

DISPOSE_PLAIN(th_token_list_dispose, th_token_list)
DISPOSE_PLAIN(th_collab_list_dispose, th_collab_list)
DISPOSE_PLAIN(th_protection_list_dispose, th_protection_list)
DISPOSE_PLAIN(th_review_list_dispose, th_review_list)
DISPOSE_PLAIN(th_reviewer_list_dispose, th_reviewer_list)

/* --- events ---------------------------------------------------------------------------------- */

static int event_ok(const th_event_new *ev, th_error *err)
{
	if (ev != NULL && (ev->actor == NULL || ev->actor[0] == '\0' || ev->action == NULL ||
	                   ev->action[0] == '\0' || strlen(ev->action) >= 48))
		return th_error_set(err, TH_EINVALID, "an event needs an actor and an action");
	return TH_OK;
}

int th_meta_event_add(th_meta *m, const th_event_new *ev, th_error *err)
{
	int error;

	if (ev == NULL)
		return th_error_set(err, TH_EINVALID, "an event needs an actor and an action");
	if ((error = event_ok(ev, err)) < 0)
		return error;
	return ops(m)->event_add(m, ev, err);
}

int th_meta_event_list(th_event_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                       int64_t db_id, const char *page_token, size_t limit, th_error *err)
{
	int64_t offset = 0;
	int more = 0, error;
	th_event_list l = { NULL, 0 };

	if ((error = th_meta__page_parse(&offset, page_token, err)) < 0)
		return error;
	limit = th_meta__page_limit(limit, MAX_PAGE);
	if ((error = ops(m)->event_list(&l, &more, m, db_id, offset, limit, err)) < 0)
		return error;
	th_meta__page_next(next_out, more, offset, l.n);
	*out = l;
	return TH_OK;
}

/* --- accounts -------------------------------------------------------------------------------- */

static int email_ok(const char *e, th_error *err)
{
	size_t len = e ? strlen(e) : 0;
	const char *at = e ? strchr(e, '@') : NULL;

	if (len < 3 || len > 254 || at == NULL || at == e || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL || !th_utf8_valid(e, len, NULL))
		return th_error_set(err, TH_EINVALID, "invalid email address: want name@domain");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)e[i] <= ' ' || e[i] == 0x7f)
			return th_error_set(
			        err, TH_EINVALID,
			        "invalid email address: no spaces or control characters");
	return TH_OK;
}

int th_meta_user_register(th_meta *m, const char *name, const char *email, const char *password,
                          size_t len, const th_event_new *ev, th_error *err)
{
	char hash[TH_PASSWORD_HASH_SIZE];
	int error;

	if ((error = user_ok(name, err)) < 0 || (error = email_ok(email, err)) < 0 ||
	    (error = event_ok(ev, err)) < 0 ||
	    (error = th_password_hash(hash, password, len, err)) < 0)
		return error;
	return ops(m)->user_register(m, name, email, hash, ev, err);
}

int th_meta_user_set_password(th_meta *m, const char *name, const char *password, size_t len,
                              th_error *err)
{
	char hash[TH_PASSWORD_HASH_SIZE];
	int error;

	if ((error = user_ok(name, err)) < 0 ||
	    (error = th_password_hash(hash, password, len, err)) < 0)
		return error;
	return ops(m)->user_password_set(m, name, hash, err);
}

int th_meta_user_check_password(th_meta *m, const char *name, const char *password, size_t len,
                                th_error *err)
{
	char stored[TH_PASSWORD_HASH_SIZE] = "", fresh[TH_PASSWORD_HASH_SIZE];
	int rehash = 0, error;

	if (name != NULL && th_name_valid(name)) {
		error = ops(m)->user_password_get(stored, m, name, err);
		if (error < 0 && error != TH_ENOTFOUND)
			return error;
	}
	/* Unknown users and users without a password verify against the dummy hash: the same
	 * time and the same answer as a wrong password. */
	error = th_password_verify(&rehash, stored[0] ? stored : NULL, password, len, err);
	if (error < 0)
		return error;
	if (rehash && th_password_hash(fresh, password, len, NULL) == TH_OK)
		ops(m)->user_password_set(m, name, fresh, NULL); /* best effort */
	return TH_OK;
}

/* --- tokens and sessions --------------------------------------------------------------------- */

static const char *prefix_of(th_token_kind kind)
{
	return kind == TH_TOKEN_SESSION ? TH_SESSION_PREFIX : TH_TOKEN_PREFIX;
}

/* A token of either kind is its 4-byte prefix and 64 lower-case hex digits. */
static int well_formed(const char *t, const char *prefix)
{
	size_t i;

	if (t == NULL || strlen(t) != TH_TOKEN_SIZE - 1 || strncmp(t, prefix, 4) != 0)
		return 0;
	for (i = 4; t[i]; i++)
		if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
			return 0;
	return 1;
}

static int token_name_ok(const char *name, th_error *err)
{
	size_t len = strlen(name);

	if (len > TH_TOKEN_NAME_MAX || !th_utf8_valid(name, len, NULL))
		return th_error_set(err, TH_EINVALID,
		                    "invalid token name: use at most %d bytes "
		                    "of UTF-8 text",
		                    TH_TOKEN_NAME_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < ' ' || name[i] == 0x7f)
			return th_error_set(err, TH_EINVALID,
			                    "invalid token name: no control characters");
	return TH_OK;
}

int th_meta_token_issue(char token_out[TH_TOKEN_SIZE], th_token_info *info_out, th_meta *m,
                        const th_token_spec *t, const th_event_new *ev, th_error *err)
{
	char token[TH_TOKEN_SIZE], hash[65];
	th_token_spec n = *t;
	th_token_info info;
	int error;

	n.name = nz(t->name);
	if ((error = user_ok(t->user, err)) < 0 || (error = token_name_ok(n.name, err)) < 0 ||
	    (error = event_ok(ev, err)) < 0)
		return error;
	if (t->scope < TH_ROLE_READ || t->scope > TH_ROLE_ADMIN)
		return th_error_set(err, TH_EINVALID, "invalid scope: use read, write or admin");
	if (t->kind != TH_TOKEN_API && t->kind != TH_TOKEN_SESSION)
		return th_error_set(err, TH_EINVALID, "invalid token kind");
	if (t->expires_at != 0 && t->expires_at <= th_now_ms())
		return th_error_set(err, TH_EINVALID, "a token cannot expire in the past");
	if ((error = th_token_new(token, err)) < 0)
		return error;
	memcpy(token, prefix_of(t->kind), 4);
	th_sha256_hex(hash, token, strlen(token));
	if ((error = ops(m)->token_insert(&info, m, &n, hash, ev, err)) == TH_OK) {
		memcpy(token_out, token, TH_TOKEN_SIZE);
		if (info_out != NULL)
			*info_out = info;
	}
	th_secure_zero(token, sizeof(token));
	return error;
}

int th_meta_token_auth(th_token_info *out, th_meta *m, const char *token, th_token_kind kind,
                       th_error *err)
{
	th_token_info t;
	char hash[65];
	int error;

	if (!well_formed(token, prefix_of(kind)))
		return th_error_set(err, TH_EAUTH, "invalid token");
	th_sha256_hex(hash, token, strlen(token));
	if ((error = ops(m)->token_auth(&t, m, hash, th_now_ms(), err)) < 0)
		return error;
	/* The prefix decides the kind, so this holds unless the store was edited by hand. */
	if (t.kind != kind)
		return th_error_set(err, TH_EAUTH, "invalid token");
	*out = t;
	return TH_OK;
}

int th_meta_token_list(th_token_list *out, th_meta *m, const char *user, th_error *err)
{
	return ops(m)->token_list(out, m, nz(user), err);
}

int th_meta_token_revoke(th_meta *m, const char *user, int64_t token_id, const th_event_new *ev,
                         th_error *err)
{
	int error;

	if ((error = event_ok(ev, err)) < 0)
		return error;
	return ops(m)->token_revoke(m, nz(user), token_id, ev, err);
}

int th_meta_token_revoke_secret(th_meta *m, const char *token, const th_event_new *ev,
                                th_error *err)
{
	char hash[65];
	int error;

	if (!well_formed(token, TH_TOKEN_PREFIX) && !well_formed(token, TH_SESSION_PREFIX))
		return th_error_set(err, TH_EAUTH, "invalid token");
	if ((error = event_ok(ev, err)) < 0)
		return error;
	th_sha256_hex(hash, token, strlen(token));
	return ops(m)->token_revoke_hash(m, hash, ev, err);
}

/* --- collaborators --------------------------------------------------------------------------- */

int th_meta_collab_set(int *created_out, th_meta *m, int64_t db_id, const char *user, th_role role,
                       const th_event_new *ev, th_error *err)
{
	int error;

	if ((error = user_ok(user, err)) < 0 || (error = event_ok(ev, err)) < 0)
		return error;
	if (role < TH_ROLE_READ || role > TH_ROLE_ADMIN)
		return th_error_set(err, TH_EINVALID, "invalid role: use read, write or admin");
	return ops(m)->collab_set(created_out, m, db_id, user, role, ev, err);
}

int th_meta_collab_remove(th_meta *m, int64_t db_id, const char *user, const th_event_new *ev,
                          th_error *err)
{
	int error;

	if ((error = user_ok(user, err)) < 0 || (error = event_ok(ev, err)) < 0)
		return error;
	return ops(m)->collab_remove(m, db_id, user, ev, err);
}

int th_meta_collab_role(th_role *out, th_meta *m, int64_t db_id, const char *user, th_error *err)
{
	if (user == NULL || user[0] == '\0') {
		*out = TH_ROLE_NONE;
		return TH_OK;
	}
	return ops(m)->collab_role(out, m, db_id, user, err);
}

int th_meta_collab_list(th_collab_list *out, th_meta *m, int64_t db_id, th_error *err)
{
	return ops(m)->collab_list(out, m, db_id, err);
}

/* --- protected branches ---------------------------------------------------------------------- */

static int branch_ok(const char *b, th_error *err)
{
	size_t len = b ? strlen(b) : 0;

	if (len == 0 || len > 255 || !th_utf8_valid(b, len, NULL))
		return th_error_set(err, TH_EINVALID, "invalid branch name '%.64s'", nz(b));
	return TH_OK;
}

int th_meta_protection_set(th_meta *m, int64_t db_id, const th_protection *p, const char *by,
                           const th_event_new *ev, th_error *err)
{
	th_protection q = *p;
	int error;

	if ((error = branch_ok(p->branch, err)) < 0 || (error = user_ok(by, err)) < 0 ||
	    (error = event_ok(ev, err)) < 0)
		return error;
	if (p->required_approvals < 0 || p->required_approvals > 100)
		return th_error_set(err, TH_EINVALID,
		                    "requiredApprovals must be a whole number from 0 to 100");
	if (p->merge_role != TH_ROLE_WRITE && p->merge_role != TH_ROLE_ADMIN)
		return th_error_set(err, TH_EINVALID, "mergeRole must be 'write' or 'admin'");
	q.allow_self_approval = p->allow_self_approval != 0;
	q.dismiss_stale_approvals = p->dismiss_stale_approvals != 0;
	snprintf(q.updated_by, sizeof(q.updated_by), "%s", by);
	q.updated_at = th_now_ms();
	return ops(m)->protection_set(m, db_id, &q, ev, err);
}

int th_meta_protection_get(th_protection *out, th_meta *m, int64_t db_id, const char *branch,
                           th_error *err)
{
	return ops(m)->protection_get(out, m, db_id, nz(branch), err);
}

int th_meta_protection_remove(th_meta *m, int64_t db_id, const char *branch, const th_event_new *ev,
                              th_error *err)
{
	int error;

	if ((error = branch_ok(branch, err)) < 0 || (error = event_ok(ev, err)) < 0)
		return error;
	return ops(m)->protection_remove(m, db_id, branch, ev, err);
}

int th_meta_protection_list(th_protection_list *out, th_meta *m, int64_t db_id, th_error *err)
{
	return ops(m)->protection_list(out, m, db_id, err);
}

/* --- review heads ---------------------------------------------------------------------------- */

int th_meta_review_set_head(th_meta *m, int64_t db_id, int64_t pull_id, int64_t review_id,
                            const char *head, th_error *err)
{
	if (head == NULL || strlen(head) != 40 || strspn(head, "0123456789abcdef") != 40)
		return th_error_set(err, TH_EINVALID, "a review head is a 40-digit commit id");
	return ops(m)->review_set_head(m, db_id, pull_id, review_id, head, err);
}

int th_meta_review_heads(th_review_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                         th_error *err)
{
	return ops(m)->review_heads(out, m, db_id, pull_id, err);
}

/* --- forks ---------------------------------------------------------------------------------- */

DISPOSE_PLAIN(th_fork_list_dispose, th_fork_list)

int th_meta_fork_record(int64_t *id_out, th_meta *m, const char *owner, int64_t parent_id,
                        const char *op_id, const th_event_new *ev, th_error *err)
{
	int error;

	if ((error = user_ok(owner, err)) < 0 || (error = event_ok(ev, err)) < 0)
		return error;
	if (op_id == NULL || strlen(op_id) != TH_UUID_SIZE - 1)
		return th_error_set(err, TH_EINVALID, "a fork needs the id of its operation");
	return ops(m)->fork_insert(id_out, m, owner, parent_id, op_id, ev, err);
}

int th_meta_fork_info(th_fork_info *out, th_meta *m, int64_t db_id, th_error *err)
{
	return ops(m)->fork_info(out, m, db_id, err);
}

int th_meta_fork_list(th_fork_list *out, th_meta *m, int64_t parent_id, th_error *err)
{
	return ops(m)->fork_list(out, m, parent_id, err);
}

int th_meta_fork_by_op(th_fork_info *out, th_meta *m, const char *op_id, th_error *err)
{
	if (op_id == NULL || strlen(op_id) != TH_UUID_SIZE - 1)
		return th_error_set(err, TH_ENOTFOUND, "fork operation not found");
	return ops(m)->fork_by_op(out, m, op_id, err);
}

int th_meta_pull_set_source(th_meta *m, int64_t db_id, int64_t pull_id, int64_t from_db_id,
                            th_error *err)
{
	return ops(m)->pull_set_source(m, db_id, pull_id, from_db_id, err);
}

int th_meta_pull_source(int64_t *from_db_id, th_meta *m, int64_t db_id, int64_t pull_id,
                        th_error *err)
{
	return ops(m)->pull_source(from_db_id, m, db_id, pull_id, err);
}

/* --- releases ------------------------------------------------------------------------------- */

void th_release_list_dispose(th_release_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; l->items != NULL && i < l->n; i++) {
		free(l->items[i].title);
		free(l->items[i].notes);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

int th_meta_release_create(th_meta *m, int64_t db_id, const th_release_new *r,
                           const th_event_new *ev, th_error *err)
{
	th_release_new v = *r;
	int error;

	if ((error = user_ok(r->author, err)) < 0 || (error = event_ok(ev, err)) < 0)
		return error;
	if (r->tag_name == NULL || r->tag_name[0] == '\0' ||
	    strlen(r->tag_name) >= sizeof(((th_release_info *)0)->tag_name))
		return th_error_set(err, TH_EINVALID, "a release needs a tag name of 1-255 bytes");
	v.title = nz(r->title);
	v.notes = nz(r->notes);
	return ops(m)->release_insert(m, db_id, &v, ev, err);
}

int th_meta_release_list(th_release_list *out, th_meta *m, int64_t db_id, th_error *err)
{
	return ops(m)->release_list(out, m, db_id, err);
}

/* --- requested reviewers, pull options, pull search, the merge ----------------------------- */

int th_meta_reviewer_add(int *added_out, th_meta *m, int64_t db_id, int64_t pull_id,
                         const char *const *users, size_t n, const char *by, const th_event_new *ev,
                         th_error *err)
{
	int added = 0, error;

	if (n == 0 || n > TH_REVIEWERS_MAX)
		return th_error_set(err, TH_EINVALID, "give 1 to %d reviewers (got %zu)",
		                    TH_REVIEWERS_MAX, n);
	for (size_t i = 0; i < n; i++)
		if ((error = user_ok(users[i], err)) < 0)
			return error;
	if ((error = user_ok(by, err)) < 0 || (error = event_ok(ev, err)) < 0 ||
	    (error = ops(m)->reviewer_add(&added, m, db_id, pull_id, users, n, by, ev, err)) < 0)
		return error;
	if (added_out)
		*added_out = added;
	return TH_OK;
}

int th_meta_reviewer_remove(th_meta *m, int64_t db_id, int64_t pull_id, const char *user,
                            const th_event_new *ev, th_error *err)
{
	int error;

	if ((error = user_ok(user, err)) < 0 || (error = event_ok(ev, err)) < 0)
		return error;
	return ops(m)->reviewer_remove(m, db_id, pull_id, user, ev, err);
}

int th_meta_reviewer_list(th_reviewer_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                          th_error *err)
{
	return ops(m)->reviewer_list(out, m, db_id, pull_id, err);
}

int th_meta_pull_options_set(th_meta *m, int64_t db_id, int64_t pull_id, const th_pull_options *o,
                             th_error *err)
{
	th_pull_options v = *o;

	v.delete_branch_on_merge = v.delete_branch_on_merge != 0;
	v.branch_deleted = v.branch_deleted != 0;
	return ops(m)->pull_options_set(m, db_id, pull_id, &v, err);
}

int th_meta_pull_options_get(th_pull_options *out, th_meta *m, int64_t db_id, int64_t pull_id,
                             th_error *err)
{
	return ops(m)->pull_options_get(out, m, db_id, pull_id, err);
}

int th_meta_pull_search(th_pull_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                        int64_t db_id, const th_pull_filter *f, const char *page_token,
                        size_t limit, th_error *err)
{
	th_pull_filter v = *f;
	th_pull_list l = { NULL, 0 };
	int64_t offset = 0;
	int more = 0, error;

	if ((error = th_meta__page_parse(&offset, page_token, err)) < 0)
		return error;
	if (v.query != NULL && v.query[0] == '\0')
		v.query = NULL;
	if (v.query != NULL && strlen(v.query) > 200)
		return th_error_set(err, TH_EINVALID, "the search query is over 200 bytes");
	limit = th_meta__page_limit(limit, MAX_PAGE);
	if ((error = ops(m)->pull_search(&l, &more, m, db_id, &v, offset, limit, err)) < 0)
		return error;
	th_meta__page_next(next_out, more, offset, l.n);
	*out = l;
	return TH_OK;
}

int th_meta_pull_mark_merged(th_meta *m, int64_t db_id, int64_t pull_id, const char *merge_commit,
                             const th_event_new *ev, th_error *err)
{
	int error;

	if (merge_commit == NULL || strlen(merge_commit) != 40)
		return th_error_set(err, TH_EINVALID, "a merged pull needs its merge commit");
	if ((error = event_ok(ev, err)) < 0)
		return error;
	return ops(m)->pull_mark_merged(m, db_id, pull_id, merge_commit, ev, err);
}
