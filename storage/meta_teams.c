/* meta_teams.c: collaborators, protected branches, the heads reviews were given at, and the audit
 * trail, in the SQLite metadata backend (tables collaborators, branch_protection, events, and the
 * head column of pull_reviews), plus the backend's table of access ops.
 *
 * Roles and merge roles are stored by name ('read', 'write', 'admin'), checked by the schema.
 * Events carry no foreign key: the trail outlives the database, user or token it names. Every
 * change writes its event inside its own transaction (th_msql__event_locked).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta_sql.h"

static const th_msql_stmt db_exists = { MS_ACCESS_DB_EXISTS, "read database",
	                                "SELECT 1 FROM databases WHERE id = ?1", NULL };
static const th_msql_stmt collab_role = {
	MS_COLLAB_ROLE, "read collaborator",
	"SELECT role FROM collaborators WHERE db_id = ?1 AND \"user\" = ?2", NULL
};
static const th_msql_stmt collab_upsert = {
	MS_COLLAB_UPSERT, "set collaborator",
	"INSERT INTO collaborators(db_id, \"user\", role, created_at, updated_at) "
	"VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT(db_id, \"user\") DO UPDATE SET role = "
	"excluded.role, "
	"updated_at = excluded.updated_at",
	NULL
};
static const th_msql_stmt collab_delete = {
	MS_COLLAB_DELETE, "remove collaborator",
	"DELETE FROM collaborators WHERE db_id = ?1 AND \"user\" = ?2", NULL
};
static const th_msql_stmt collab_list = { MS_COLLAB_LIST, "list collaborators",
	                                  "SELECT \"user\", role, created_at, updated_at FROM "
	                                  "collaborators WHERE db_id = ?1 ORDER BY \"user\"",
	                                  NULL };

#define PROTECT_COLS                                                                               \
	"branch, required_approvals, allow_self_approval, dismiss_stale_approvals, merge_role, "   \
	"updated_by, updated_at"

static const th_msql_stmt protect_upsert = {
	MS_PROTECT_UPSERT, "protect branch",
	"INSERT INTO branch_protection(db_id, " PROTECT_COLS
	") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
	"?8) ON CONFLICT(db_id, branch) DO UPDATE SET required_approvals = excluded."
	"required_approvals, allow_self_approval = excluded.allow_self_approval, "
	"dismiss_stale_approvals = excluded.dismiss_stale_approvals, merge_role = "
	"excluded.merge_role, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
	NULL
};
static const th_msql_stmt protect_get = {
	MS_PROTECT_GET, "read branch protection",
	"SELECT " PROTECT_COLS " FROM branch_protection WHERE db_id = ?1 AND branch = ?2", NULL
};
static const th_msql_stmt protect_delete = {
	MS_PROTECT_DELETE, "unprotect branch",
	"DELETE FROM branch_protection WHERE db_id = ?1 AND branch = ?2", NULL
};
static const th_msql_stmt protect_list = {
	MS_PROTECT_LIST, "list protected branches",
	"SELECT " PROTECT_COLS " FROM branch_protection WHERE db_id = ?1 ORDER BY branch", NULL
};

static const th_msql_stmt review_set_head = {
	MS_REVIEW_SET_HEAD, "record review head",
	"UPDATE pull_reviews SET head = ?4 WHERE db_id = ?1 AND pull_id = ?2 AND id = ?3", NULL
};
static const th_msql_stmt review_heads = {
	MS_REVIEW_HEADS, "list reviews",
	"SELECT id, author, status, head, created_at FROM pull_reviews WHERE db_id = ?1 AND "
	"pull_id = ?2 ORDER BY id",
	NULL
};

static const th_msql_stmt event_insert = {
	MS_EVENT_INSERT, "record event",
	"INSERT INTO events(db_id, actor, action, target, detail, address, created_at) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	NULL
};
static const th_msql_stmt event_list = {
	MS_EVENT_LIST, "list events",
	"SELECT id, db_id, actor, action, target, detail, address, created_at FROM events "
	"WHERE db_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3",
	NULL
};

/* --- events ---------------------------------------------------------------------------------- */

int th_msql__event_locked(th_msql *s, const th_event_new *ev, th_error *err)
{
	int n;

	if (ev == NULL)
		return TH_OK;
	n = th_msql__run_locked(s, &event_insert, NULL, NULL, err, "isssssi", ev->db_id, ev->actor,
	                        ev->action, ev->target, ev->detail ? ev->detail : "{}", ev->address,
	                        th_now_ms());
	return n < 0 ? n : TH_OK;
}

static int event_add_tx(th_msql *s, void *ctx, th_error *err)
{
	return th_msql__event_locked(s, ctx, err);
}

static int msql_event_add(th_meta *m, const th_event_new *ev, th_error *err)
{
	return th_msql__tx((th_msql *)m, event_add_tx, (void *)(uintptr_t)ev, err);
}

static int read_event(void *item, const th_mrow *st, th_error *err)
{
	th_event_info *e = item, v;

	memset(&v, 0, sizeof(v));
	v.id = th_msql__int(st, 0);
	v.db_id = th_msql__int(st, 1);
	th_msql__copy(v.actor, sizeof(v.actor), st, 2);
	th_msql__copy(v.action, sizeof(v.action), st, 3);
	if (th_msql__dup(&v.target, st, 4, 0, err) < 0)
		return TH_ENOMEM;
	if (th_msql__dup(&v.detail, st, 5, 0, err) < 0) {
		free(v.target);
		return TH_ENOMEM;
	}
	th_msql__copy(v.address, sizeof(v.address), st, 6);
	v.created_at = th_msql__int(st, 7);
	*e = v;
	return TH_OK;
}

static void dispose_event(void *item)
{
	th_event_info *e = item;

	free(e->target);
	free(e->detail);
}

static int msql_event_list(th_event_list *out, int *more, th_meta *m, int64_t db_id, int64_t offset,
                           size_t limit, th_error *err)
{
	void *items = NULL;
	size_t n = 0;
	int error;

	if ((error = th_msql__list(&items, &n, more, (th_msql *)m, &event_list,
	                           sizeof(th_event_info), limit, read_event, dispose_event, err,
	                           "iii", db_id, (int64_t)limit + 1, offset)) < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}

/* --- collaborators --------------------------------------------------------------------------- */

static int read_role(void *ctx, const th_mrow *st, th_error *err)
{
	th_role *r = ctx;

	return th_role_parse(r, th_msql__text(st, 0), "role", err) < 0 ? TH_ESTORE : TH_OK;
}

struct collab_args {
	int64_t db_id;
	const char *user;
	th_role role;
	int created;
	const th_event_new *ev;
};

static int collab_set_tx(th_msql *s, void *ctx, th_error *err)
{
	struct collab_args *a = ctx;
	th_role old = TH_ROLE_NONE;
	int n;

	if ((n = th_msql__run_locked(s, &db_exists, NULL, NULL, err, "i", a->db_id)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "database not found");
	if ((n = th_msql__user_exists_locked(s, a->user, err)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "user '%s' not found", a->user);
	if ((n = th_msql__run_locked(s, &collab_role, read_role, &old, err, "is", a->db_id,
	                             a->user)) < 0)
		return n;
	a->created = n == 0;
	if ((n = th_msql__run_locked(s, &collab_upsert, NULL, NULL, err, "issi", a->db_id, a->user,
	                             th_role_name(a->role), th_now_ms())) < 0)
		return n;
	return th_msql__event_locked(s, a->ev, err);
}

static int msql_collab_set(int *created_out, th_meta *m, int64_t db_id, const char *user,
                           th_role role, const th_event_new *ev, th_error *err)
{
	struct collab_args a = { db_id, user, role, 0, ev };
	int error;

	if ((error = th_msql__tx((th_msql *)m, collab_set_tx, &a, err)) < 0)
		return error;
	if (created_out)
		*created_out = a.created;
	return TH_OK;
}

static int collab_remove_tx(th_msql *s, void *ctx, th_error *err)
{
	struct collab_args *a = ctx;
	int n;

	if ((n = th_msql__run_locked(s, &collab_delete, NULL, NULL, err, "is", a->db_id, a->user)) <
	    0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "'%s' is not a collaborator", a->user);
	return th_msql__event_locked(s, a->ev, err);
}

static int msql_collab_remove(th_meta *m, int64_t db_id, const char *user, const th_event_new *ev,
                              th_error *err)
{
	struct collab_args a = { db_id, user, TH_ROLE_NONE, 0, ev };

	return th_msql__tx((th_msql *)m, collab_remove_tx, &a, err);
}

static int msql_collab_role(th_role *out, th_meta *m, int64_t db_id, const char *user,
                            th_error *err)
{
	th_role r = TH_ROLE_NONE;
	int n;

	if ((n = th_msql__run((th_msql *)m, &collab_role, read_role, &r, err, "is", db_id, user)) <
	    0)
		return n;
	*out = r;
	return TH_OK;
}

static int read_collab(void *item, const th_mrow *st, th_error *err)
{
	th_collab_info *c = item;

	memset(c, 0, sizeof(*c));
	th_msql__copy(c->user, sizeof(c->user), st, 0);
	if (th_role_parse(&c->role, th_msql__text(st, 1), "role", err) < 0)
		return TH_ESTORE;
	c->created_at = th_msql__int(st, 2);
	c->updated_at = th_msql__int(st, 3);
	return TH_OK;
}

static void dispose_plain(void *item)
{
	(void)item;
}

static int msql_collab_list(th_collab_list *out, th_meta *m, int64_t db_id, th_error *err)
{
	void *items = NULL;
	size_t n = 0;
	int error;

	if ((error = th_msql__list(&items, &n, NULL, (th_msql *)m, &collab_list,
	                           sizeof(th_collab_info), 0, read_collab, dispose_plain, err, "i",
	                           db_id)) < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}

/* --- protected branches ---------------------------------------------------------------------- */

struct protect_args {
	int64_t db_id;
	const th_protection *p;
	const char *branch;
	const th_event_new *ev;
};

static int protect_set_tx(th_msql *s, void *ctx, th_error *err)
{
	struct protect_args *a = ctx;
	const th_protection *p = a->p;
	int n;

	if ((n = th_msql__run_locked(s, &db_exists, NULL, NULL, err, "i", a->db_id)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "database not found");
	if ((n = th_msql__run_locked(s, &protect_upsert, NULL, NULL, err, "isdddssi", a->db_id,
	                             p->branch, p->required_approvals, p->allow_self_approval,
	                             p->dismiss_stale_approvals, th_role_name(p->merge_role),
	                             p->updated_by, p->updated_at)) < 0)
		return n;
	return th_msql__event_locked(s, a->ev, err);
}

static int msql_protection_set(th_meta *m, int64_t db_id, const th_protection *p,
                               const th_event_new *ev, th_error *err)
{
	struct protect_args a = { db_id, p, NULL, ev };

	return th_msql__tx((th_msql *)m, protect_set_tx, &a, err);
}

static int read_protection(void *item, const th_mrow *st, th_error *err)
{
	th_protection *p = item;

	memset(p, 0, sizeof(*p));
	th_msql__copy(p->branch, sizeof(p->branch), st, 0);
	p->required_approvals = (int)th_msql__int(st, 1);
	p->allow_self_approval = (int)th_msql__int(st, 2) != 0;
	p->dismiss_stale_approvals = (int)th_msql__int(st, 3) != 0;
	if (th_role_parse(&p->merge_role, th_msql__text(st, 4), "merge role", err) < 0)
		return TH_ESTORE;
	th_msql__copy(p->updated_by, sizeof(p->updated_by), st, 5);
	p->updated_at = th_msql__int(st, 6);
	return TH_OK;
}

static int msql_protection_get(th_protection *out, th_meta *m, int64_t db_id, const char *branch,
                               th_error *err)
{
	th_protection p;
	int n;

	if ((n = th_msql__run((th_msql *)m, &protect_get, read_protection, &p, err, "is", db_id,
	                      branch)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "branch '%s' is not protected", branch);
	*out = p;
	return TH_OK;
}

static int protect_remove_tx(th_msql *s, void *ctx, th_error *err)
{
	struct protect_args *a = ctx;
	int n;

	if ((n = th_msql__run_locked(s, &protect_delete, NULL, NULL, err, "is", a->db_id,
	                             a->branch)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "branch '%s' is not protected", a->branch);
	return th_msql__event_locked(s, a->ev, err);
}

static int msql_protection_remove(th_meta *m, int64_t db_id, const char *branch,
                                  const th_event_new *ev, th_error *err)
{
	struct protect_args a = { db_id, NULL, branch, ev };

	return th_msql__tx((th_msql *)m, protect_remove_tx, &a, err);
}

static int msql_protection_list(th_protection_list *out, th_meta *m, int64_t db_id, th_error *err)
{
	void *items = NULL;
	size_t n = 0;
	int error;

	if ((error = th_msql__list(&items, &n, NULL, (th_msql *)m, &protect_list,
	                           sizeof(th_protection), 0, read_protection, dispose_plain, err,
	                           "i", db_id)) < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}

/* --- review heads ---------------------------------------------------------------------------- */

static int msql_review_set_head(th_meta *m, int64_t db_id, int64_t pull_id, int64_t review_id,
                                const char *head, th_error *err)
{
	int n = th_msql__run((th_msql *)m, &review_set_head, NULL, NULL, err, "iiis", db_id,
	                     pull_id, review_id, head);

	if (n < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND,
		                    "review %lld of pull request #%lld not found",
		                    (long long)review_id, (long long)pull_id);
	return TH_OK;
}

static int read_review(void *item, const th_mrow *st, th_error *err)
{
	th_review_info *r = item;

	(void)err;
	memset(r, 0, sizeof(*r));
	r->id = th_msql__int(st, 0);
	th_msql__copy(r->author, sizeof(r->author), st, 1);
	r->status = th_review_status_parse(th_msql__text(st, 2));
	th_msql__copy(r->head, sizeof(r->head), st, 3);
	r->created_at = th_msql__int(st, 4);
	return TH_OK;
}

static int msql_review_heads(th_review_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                             th_error *err)
{
	void *items = NULL;
	size_t n = 0;
	int error;

	if ((error = th_msql__list(&items, &n, NULL, (th_msql *)m, &review_heads,
	                           sizeof(th_review_info), 0, read_review, dispose_plain, err, "ii",
	                           db_id, pull_id)) < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}

const th_meta_access_ops th_msql__access_ops = {
	.user_register = th_msql__user_register,
	.user_password_get = th_msql__user_password_get,
	.user_password_set = th_msql__user_password_set,
	.token_insert = th_msql__token_insert,
	.token_auth = th_msql__token_auth,
	.token_list = th_msql__token_list,
	.token_revoke = th_msql__token_revoke,
	.token_revoke_hash = th_msql__token_revoke_hash,
	.collab_set = msql_collab_set,
	.collab_remove = msql_collab_remove,
	.collab_role = msql_collab_role,
	.collab_list = msql_collab_list,
	.protection_set = msql_protection_set,
	.protection_get = msql_protection_get,
	.protection_remove = msql_protection_remove,
	.protection_list = msql_protection_list,
	.review_set_head = msql_review_set_head,
	.review_heads = msql_review_heads,
	.fork_insert = th_msql__fork_insert,
	.fork_info = th_msql__fork_info,
	.fork_list = th_msql__fork_list,
	.fork_by_op = th_msql__fork_by_op,
	.pull_set_source = th_msql__pull_set_source,
	.pull_source = th_msql__pull_source,
	.event_add = msql_event_add,
	.event_list = msql_event_list,
	.release_insert = th_msql__release_insert,
	.release_list = th_msql__release_list,
	.reviewer_add = th_msql__reviewer_add,
	.reviewer_remove = th_msql__reviewer_remove,
	.reviewer_list = th_msql__reviewer_list,
	.pull_options_set = th_msql__pull_options_set,
	.pull_options_get = th_msql__pull_options_get,
	.pull_search = th_msql__pull_search,
	.pull_mark_merged = th_msql__pull_mark_merged,
};
