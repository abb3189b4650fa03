/* meta.c: the metadata store's front end (include/tablehub/meta.h): what every backend shares.
 *
 * Each public th_meta_* function checks its arguments, makes what is not the backend's business
 * (tokens and their hashes, operation uuids, page tokens and limits) and calls the backend through
 * m->ops (storage/meta_backend.h). So a backend only stores and reads, and every backend rejects
 * the same bad input with the same message. The string maps of the states (operations, pulls,
 * reviews) and the _dispose functions of the result structs live here too.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "tablehub/hash.h"
#include "tablehub/text.h"
#include "meta_backend.h"
#include "meta_pg.h"

#define DEFAULT_PAGE 50
#define MAX_PAGE 1000

/* --- helpers --------------------------------------------------------------------------------- */

static const char *nz(const char *s)
{
	return s ? s : "";
}

static int name_ok(const char *s, const char *what, th_error *err)
{
	if (s == NULL || !th_name_valid(s))
		return th_error_set(err, TH_EINVALID,
		                    "invalid %s name '%s': use 1-64 letters, digits, '_' or '-'",
		                    what, nz(s));
	return TH_OK;
}

int th_meta__page_parse(int64_t *offset, const char *tok, th_error *err)
{
	int64_t v = 0;
	const char *p;

	*offset = 0;
	if (tok == NULL || tok[0] == '\0')
		return TH_OK;
	for (p = tok; *p; p++) {
		if (*p < '0' || *p > '9' || p - tok >= 15)
			return th_error_set(err, TH_EINVALID, "invalid page token");
		v = v * 10 + (*p - '0');
	}
	*offset = v;
	return TH_OK;
}

size_t th_meta__page_limit(size_t limit, size_t max)
{
	if (limit == 0)
		return DEFAULT_PAGE < max ? DEFAULT_PAGE : max;
	return limit > max ? max : limit;
}

void th_meta__page_next(char next_out[TH_PAGE_TOKEN_SIZE], int more, int64_t offset, size_t n)
{
	if (next_out == NULL)
		return;
	if (more)
		snprintf(next_out, TH_PAGE_TOKEN_SIZE, "%" PRId64, offset + (int64_t)n);
	else
		next_out[0] = '\0';
}

/* --- open, close ----------------------------------------------------------------------------- */

int th_meta_open_with(th_meta **out, const char *data_dir, const th_meta_options *opts,
                      th_error *err)
{
	const char *node = opts ? opts->node_id : NULL, *url;
	const th_meta_ops *ops;
	th_meta *m;
	int error;

	if (node && !th_name_valid(node))
		return th_error_set(err, TH_EINVALID,
		                    "invalid node id '%.64s': use 1-64 letters, digits, '_' or '-'",
		                    node);
	url = opts && opts->url ? opts->url : getenv("TABLEHUB_META");
	if (url && url[0] && !th_mpg__is_url(url))
		return th_error_set(err, TH_EINVALID,
		                    "the metadata store's address must start with postgresql://");
	ops = url && url[0] ? &th_meta_pg_ops : &th_meta_sqlite_ops;
	if ((error = ops->open(&m, data_dir, url, err)) < 0)
		return error;
	if (node)
		snprintf(m->node_id, sizeof(m->node_id), "%s", node);
	*out = m;
	return TH_OK;
}

int th_meta_open(th_meta **out, const char *data_dir, th_error *err)
{
	return th_meta_open_with(out, data_dir, NULL, err);
}

const char *th_meta_node_id(const th_meta *m)
{
	return m->node_id;
}

void th_meta_close(th_meta *m)
{
	if (m == NULL)
		return;
	if (m->ops->coord != NULL)
		m->ops->coord->close(m);
	m->ops->close(m);
}

/* --- users and tokens ------------------------------------------------------------------------ */

/* A new token into token_out and its stored form, SHA-256 in hex, into hash. */
static int token_make(char token_out[TH_TOKEN_SIZE], char hash[65], th_error *err)
{
	int error;

	if ((error = th_token_new(token_out, err)) < 0)
		return error;
	th_sha256_hex(hash, token_out, strlen(token_out));
	return TH_OK;
}

int th_meta_user_create(char token_out[TH_TOKEN_SIZE], th_meta *m, const char *name, th_error *err)
{
	char token[TH_TOKEN_SIZE], hash[65];
	int error;

	if ((error = name_ok(name, "user", err)) < 0 || (error = token_make(token, hash, err)) < 0)
		return error;
	if ((error = m->ops->user_create(m, name, hash, err)) == TH_OK)
		memcpy(token_out, token, TH_TOKEN_SIZE);
	OPENSSL_cleanse(token, sizeof(token));
	return error;
}

int th_meta_user_get(th_user_info *out, th_meta *m, const char *name, th_error *err)
{
	return m->ops->user_get(out, m, nz(name), err);
}

int th_meta_token_create(char token_out[TH_TOKEN_SIZE], th_meta *m, const char *user, th_error *err)
{
	char token[TH_TOKEN_SIZE], hash[65];
	int error;

	if ((error = token_make(token, hash, err)) < 0)
		return error;
	if ((error = m->ops->token_create(m, nz(user), hash, err)) == TH_OK)
		memcpy(token_out, token, TH_TOKEN_SIZE);
	OPENSSL_cleanse(token, sizeof(token));
	return error;
}

int th_meta_token_lookup(char user_out[65], th_meta *m, const char *token, th_error *err)
{
	th_token_info t;
	int error;

	/* The full check (revoked, expired) is th_meta_token_auth's (storage/meta_access.c). */
	if ((error = th_meta_token_auth(&t, m, token, TH_TOKEN_API, err)) < 0)
		return error;
	memcpy(user_out, t.user, sizeof(t.user));
	return TH_OK;
}

/* --- databases ------------------------------------------------------------------------------- */

void th_db_info_dispose(th_db_info *info)
{
	if (info == NULL)
		return;
	free(info->description);
	info->description = NULL;
}

void th_db_list_dispose(th_db_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		th_db_info_dispose(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

int th_meta_db_create(th_meta *m, const char *owner, const char *name, const char *description,
                      int is_private, th_error *err)
{
	int error;

	if ((error = name_ok(owner, "owner", err)) < 0 ||
	    (error = name_ok(name, "database", err)) < 0)
		return error;
	return m->ops->db_create(m, owner, name, nz(description), is_private, err);
}

int th_meta_db_get(th_db_info *out, th_meta *m, const char *owner, const char *name, th_error *err)
{
	return m->ops->db_get(out, m, nz(owner), nz(name), err);
}

int th_meta_db_list(th_db_list *out, th_meta *m, const char *owner, th_error *err)
{
	return m->ops->db_list(out, m, owner, err);
}

/* --- operations ------------------------------------------------------------------------------ */

static const char *const op_state_names[] = { "", "Pending", "In Progress", "Completed", "Failed" };

const char *th_op_state_name(th_op_state s)
{
	return (s >= TH_OPSTATE_PENDING && s <= TH_OPSTATE_FAILED) ? op_state_names[s] : "";
}

th_op_state th_op_state_parse(const char *s)
{
	int i;

	for (i = TH_OPSTATE_PENDING; s && i <= TH_OPSTATE_FAILED; i++)
		if (strcmp(s, op_state_names[i]) == 0)
			return (th_op_state)i;
	return (th_op_state)0;
}

void th_op_info_dispose(th_op_info *op)
{
	if (op == NULL)
		return;
	free(op->params);
	free(op->file_name);
	free(op->table_name);
	free(op->branch_name);
	free(op->result);
	free(op->error_message);
	op->params = op->file_name = op->table_name = op->branch_name = NULL;
	op->result = op->error_message = NULL;
}

void th_op_list_dispose(th_op_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		th_op_info_dispose(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* The kinds of src/job_kinds.c (the store sits below that table and cannot see it). The operations
 * table checks only a kind's length, so a new kind is one more word here, not a migration. */
static int kind_valid(const char *kind)
{
	static const char *const kinds[] = { "import", "merge", "sqlwrite", "repack", NULL };
	size_t i;

	for (i = 0; kinds[i] != NULL; i++)
		if (strcmp(kind, kinds[i]) == 0)
			return 1;
	return 0;
}

int th_meta_op_create(char id_out[TH_UUID_SIZE], th_meta *m, const th_op_new *op, th_error *err)
{
	char id[TH_UUID_SIZE];
	int error;

	if (op->kind == NULL || !kind_valid(op->kind))
		return th_error_set(err, TH_EINVALID, "unknown operation kind '%s'", nz(op->kind));
	if (op->owner == NULL || !op->owner[0] || op->db == NULL || !op->db[0] ||
	    op->creator == NULL || !op->creator[0])
		return th_error_set(err, TH_EINVALID,
		                    "an operation needs an owner, db and creator");
	if ((error = th_uuid4(id, err)) < 0 || (error = m->ops->op_create(m, id, op, err)) < 0)
		return error;
	memcpy(id_out, id, TH_UUID_SIZE);
	return TH_OK;
}

int th_meta_op_get(th_op_info *out, th_meta *m, const char *id, th_error *err)
{
	return m->ops->op_get(out, m, nz(id), err);
}

static int op_list(th_op_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                   const th_meta_op_filter *f, const char *page_token, size_t limit, th_error *err)
{
	int64_t offset;
	int more = 0, error;

	if ((error = th_meta__page_parse(&offset, page_token, err)) < 0 ||
	    (error = m->ops->op_list(out, &more, m, f, offset, th_meta__page_limit(limit, MAX_PAGE),
	                             err)) < 0)
		return error;
	th_meta__page_next(next_out, more, offset, out->n);
	return TH_OK;
}

int th_meta_op_list_db(th_op_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                       const char *owner, const char *db, const char *kind, const char *page_token,
                       size_t limit, th_error *err)
{
	th_meta_op_filter f = { nz(owner), nz(db), NULL, kind, NULL };

	return op_list(out, next_out, m, &f, page_token, limit, err);
}

int th_meta_op_list_creator(th_op_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                            const char *creator, const char *kind, const char *page_token,
                            size_t limit, th_error *err)
{
	th_meta_op_filter f = { NULL, NULL, nz(creator), kind, NULL };

	return op_list(out, next_out, m, &f, page_token, limit, err);
}

int th_meta_op_list(th_op_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                    const th_op_query *q, const char *page_token, size_t limit, th_error *err)
{
	th_meta_op_filter f = { NULL, NULL, NULL, q->kind, NULL };

	if (q->creator != NULL)
		f.creator = q->creator;
	else {
		f.owner = nz(q->owner);
		f.db = nz(q->db);
	}
	if (q->state != 0 && (f.state = th_op_state_name(q->state))[0] == '\0')
		return th_error_set(err, TH_EINVALID, "unknown operation state %d", (int)q->state);
	return op_list(out, next_out, m, &f, page_token, limit, err);
}

int th_meta_op_claim(th_op_info *out, th_meta *m, int64_t lease_ms, th_error *err)
{
	return m->ops->op_claim(out, m, lease_ms, err);
}

int th_meta_op_requeue_running(int *n_out, th_meta *m, th_error *err)
{
	return m->ops->op_requeue_running(n_out, m, err);
}

int th_meta_op_extend(th_meta *m, const char *id, int attempt, int64_t lease_ms, th_error *err)
{
	return m->ops->op_extend(m, nz(id), attempt, lease_ms, err);
}

int th_meta_op_progress(th_meta *m, const char *id, int attempt, uint64_t bytes_read, uint64_t rows,
                        int64_t lease_ms, th_error *err)
{
	return m->ops->op_progress(m, nz(id), attempt, bytes_read, rows, lease_ms, err);
}

int th_meta_op_complete(th_meta *m, const char *id, int attempt, const char *result_json,
                        int64_t pull_id, th_error *err)
{
	return m->ops->op_complete(m, nz(id), attempt, result_json ? result_json : "{}", pull_id,
	                           err);
}

int th_meta_op_fail(th_meta *m, const char *id, int attempt, const char *message, uint64_t line,
                    uint32_t column, th_error *err)
{
	return th_meta_op_fail_with(m, id, attempt, message, line, column, NULL, err);
}

int th_meta_op_fail_with(th_meta *m, const char *id, int attempt, const char *message,
                         uint64_t line, uint32_t column, const char *result_json, th_error *err)
{
	char msg[1024];

	/* Clients read this message: no server folder in it. */
	snprintf(msg, sizeof(msg), "%s", message ? message : "failed");
	th_redact(msg, sizeof(msg));
	return m->ops->op_fail(m, nz(id), attempt, msg, line, column, result_json, err);
}

/* --- pull requests --------------------------------------------------------------------------- */

static const char *const pull_state_names[] = { "", "Open", "Closed", "Merged" };

const char *th_pull_state_name(th_pull_state s)
{
	return (s >= TH_PULL_OPEN && s <= TH_PULL_MERGED) ? pull_state_names[s] : "";
}

th_pull_state th_pull_state_parse(const char *s)
{
	int i;

	for (i = TH_PULL_OPEN; s && i <= TH_PULL_MERGED; i++)
		if (strcasecmp(s, pull_state_names[i]) == 0)
			return (th_pull_state)i;
	return (th_pull_state)0;
}

static const char *const review_names[] = { "", "Approved", "Rejected", "Reviewed" };

const char *th_review_status_name(th_review_status s)
{
	return (s >= TH_REVIEW_APPROVED && s <= TH_REVIEW_REVIEWED) ? review_names[s] : "";
}

th_review_status th_review_status_parse(const char *s)
{
	int i;

	for (i = TH_REVIEW_APPROVED; s && i <= TH_REVIEW_REVIEWED; i++)
		if (strcasecmp(s, review_names[i]) == 0)
			return (th_review_status)i;
	return (th_review_status)0;
}

void th_pull_info_dispose(th_pull_info *p)
{
	if (p == NULL)
		return;
	free(p->title);
	free(p->description);
	free(p->from_branch);
	free(p->to_branch);
	p->title = p->description = p->from_branch = p->to_branch = NULL;
}

void th_pull_list_dispose(th_pull_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		th_pull_info_dispose(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

void th_pull_note_list_dispose(th_pull_note_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->items[i].body);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static int pull_args_ok(const char *author, const char *from_branch, const char *to_branch,
                        th_error *err)
{
	if (author == NULL || !author[0] || from_branch == NULL || !from_branch[0] ||
	    to_branch == NULL || !to_branch[0]) {
		th_error_set(err, TH_EINVALID,
		             "a pull request needs an author, a from branch and a to branch");
		return 0;
	}
	return 1;
}

int th_meta_pull_create(int64_t *pull_id_out, th_meta *m, int64_t db_id, const char *title,
                        const char *description, const char *author, const char *from_branch,
                        const char *to_branch, th_error *err)
{
	if (!pull_args_ok(author, from_branch, to_branch, err))
		return TH_EINVALID;
	return m->ops->pull_create(pull_id_out, m, db_id, nz(title), nz(description), author,
	                           from_branch, to_branch, err);
}

int th_meta_pull_find_or_create(int64_t *pull_id_out, int *created_out, th_meta *m, int64_t db_id,
                                const char *title, const char *description, const char *author,
                                const char *from_branch, const char *to_branch, th_error *err)
{
	if (!pull_args_ok(author, from_branch, to_branch, err))
		return TH_EINVALID;
	return m->ops->pull_find_or_create(pull_id_out, created_out, m, db_id, nz(title),
	                                   nz(description), author, from_branch, to_branch, err);
}

int th_meta_pull_get(th_pull_info *out, th_meta *m, int64_t db_id, int64_t pull_id, th_error *err)
{
	return m->ops->pull_get(out, m, db_id, pull_id, err);
}

int th_meta_pull_find_open(int64_t *pull_id_out, th_meta *m, int64_t db_id, const char *from_branch,
                           const char *to_branch, th_error *err)
{
	return m->ops->pull_find_open(pull_id_out, m, db_id, nz(from_branch), nz(to_branch), err);
}

int th_meta_pull_list(th_pull_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                      int64_t db_id, th_pull_state state, const char *page_token, size_t limit,
                      th_error *err)
{
	int64_t offset;
	int more = 0, error;

	if ((error = th_meta__page_parse(&offset, page_token, err)) < 0 ||
	    (error = m->ops->pull_list(out, &more, m, db_id, state, offset,
	                               th_meta__page_limit(limit, MAX_PAGE), err)) < 0)
		return error;
	th_meta__page_next(next_out, more, offset, out->n);
	return TH_OK;
}

int th_meta_pull_update(th_meta *m, int64_t db_id, int64_t pull_id, const char *title,
                        const char *description, th_error *err)
{
	return m->ops->pull_update(m, db_id, pull_id, title, description, err);
}

int th_meta_pull_set_state(th_meta *m, int64_t db_id, int64_t pull_id, th_pull_state state,
                           const char *merge_commit, th_error *err)
{
	if (state < TH_PULL_OPEN || state > TH_PULL_MERGED)
		return th_error_set(err, TH_EINVALID, "invalid pull request state");
	return m->ops->pull_set_state(m, db_id, pull_id, state, merge_commit, err);
}

/* Add a comment (status 0) or a review to a pull. */
static int note_add(int64_t *id_out, th_meta *m, int64_t db_id, int64_t pull_id, const char *author,
                    th_review_status status, const char *body, th_error *err)
{
	if (author == NULL || !author[0])
		return th_error_set(err, TH_EINVALID, "no author");
	if (status == 0 && (body == NULL || !body[0]))
		return th_error_set(err, TH_EINVALID, "the comment is empty");
	if (status != 0 && (status < TH_REVIEW_APPROVED || status > TH_REVIEW_REVIEWED))
		return th_error_set(err, TH_EINVALID, "invalid review status");
	return m->ops->note_add(id_out, m, db_id, pull_id, author, status, nz(body), err);
}

int th_meta_pull_comment_add(int64_t *id_out, th_meta *m, int64_t db_id, int64_t pull_id,
                             const char *author, const char *body, th_error *err)
{
	return note_add(id_out, m, db_id, pull_id, author, (th_review_status)0, body, err);
}

int th_meta_pull_comment_list(th_pull_note_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                              th_error *err)
{
	return m->ops->note_list(out, m, db_id, pull_id, 0, err);
}

int th_meta_pull_review_add(int64_t *id_out, th_meta *m, int64_t db_id, int64_t pull_id,
                            const char *author, th_review_status status, const char *comment,
                            th_error *err)
{
	if (status == 0)
		return th_error_set(err, TH_EINVALID, "invalid review status");
	return note_add(id_out, m, db_id, pull_id, author, status, comment, err);
}

int th_meta_pull_review_list(th_pull_note_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                             th_error *err)
{
	return m->ops->note_list(out, m, db_id, pull_id, 1, err);
}
