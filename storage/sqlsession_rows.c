/* sqlsession_rows.c: what a SQL write session records of the rows its statements change, and
 * reading rows back (see include/tablehub/sqlsession.h).
 *
 * Before the first statement, the snapshot's tables are listed with their key columns. The
 * preupdate hook then sees every row a statement inserts, updates or deletes; for a keyed table of
 * the snapshot it records the key before and after the change as a tuple of SQLite values
 * (a tag byte each: 0 NULL, 1 integer + 8 bytes, 2 real + 8 bytes, 3 text and 4 blob + a 4-byte
 * length + bytes) in a hash set per table, so a row changed a thousand times is one entry. At the
 * end each recorded key is looked up in the table (WITHOUT ROWID, keyed as recorded): the row
 * found is the row to write, none means it was deleted. A keyless table has no key to look a row
 * up by, so a change to it only marks it, and so does a change the hook cannot read (a table whose
 * column count changed under it); the caller then reads such tables whole.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sqlsession_internal.h"

#define KEY_BYTES_MAX (256u << 20) /* of recorded keys per session, before tables go whole */

/* --- the snapshot's tables -------------------------------------------------------------------- */

th_sqls__tab *th_sqls__tab_find(th_sqls *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->ntabs; i++)
		if (strcasecmp(s->tabs[i].name, name) == 0)
			return &s->tabs[i];
	return NULL;
}

int th_sqls_had_table(const th_sqls *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->ntabs; i++)
		if (strcmp(s->tabs[i].name, name) == 0)
			return 1;
	return 0;
}

static void keyset_dispose(th_sqls__keyset *k)
{
	th_buf_dispose(&k->arena);
	free(k->slots);
	memset(k, 0, sizeof(*k));
}

void th_sqls__tabs_free(th_sqls *s)
{
	size_t i;

	for (i = 0; i < s->ntabs; i++) {
		for (size_t j = 0; j < s->tabs[i].ncols; j++)
			free(s->tabs[i].cols[j]);
		free(s->tabs[i].cols);
		free(s->tabs[i].name);
		free(s->tabs[i].pk);
		keyset_dispose(&s->tabs[i].keys);
	}
	free(s->tabs);
	s->tabs = NULL;
	s->ntabs = 0;
}

/* Columns and key columns of table `t->name` (PRAGMA table_info). */
static int name_stmt(sqlite3_stmt **st, th_sqls *s, const char *prefix, const char *name,
                     int literal, const char *suffix, th_error *err);

static int tab_columns(th_sqls *s, th_sqls__tab *t, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int *pkpos = NULL, rc, error;
	size_t cap = 0, i;

	if ((error = name_stmt(&st, s, "SELECT pk, name FROM pragma_table_info(", t->name, 1,
	                       ") ORDER BY cid", err)) < 0)
		goto cleanup;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int pk = sqlite3_column_int(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		if (t->ncols == cap) {
			int *v = realloc(pkpos, (cap ? cap * 2 : 16) * sizeof(*v));
			char **nv = realloc(t->cols, (cap ? cap * 2 : 16) * sizeof(*nv));
			if (v != NULL)
				pkpos = v;
			if (nv != NULL)
				t->cols = nv;
			if (v == NULL || nv == NULL) {
				error = th_error_set(err, TH_ENOMEM, "out of memory");
				goto cleanup;
			}
			cap = cap ? cap * 2 : 16;
		}
		if ((t->cols[t->ncols] = strdup(name ? name : "")) == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
		pkpos[t->ncols++] = pk;
		if (pk > 0)
			t->npk++;
	}
	if (rc != SQLITE_DONE) {
		error = th_sqlcache__error(err, s->db, "cannot read the snapshot's tables");
		goto cleanup;
	}
	if (t->npk > 0) {
		if ((t->pk = calloc(t->npk, sizeof(*t->pk))) == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
		for (i = 0; i < t->ncols; i++)
			if (pkpos[i] > 0 && (size_t)pkpos[i] <= t->npk)
				t->pk[pkpos[i] - 1] = (int)i;
	}
	error = TH_OK;
cleanup:
	sqlite3_finalize(st);
	free(pkpos);
	return error;
}

int th_sqls__tabs_load(th_sqls *s, th_error *err)
{
	char **names = NULL;
	size_t i, n = 0;
	int error;

	th_sqls__begin_internal(s);
	if ((error = th_sqls_tables(&names, s, err)) < 0) {
		th_sqls__end_internal(s);
		return error;
	}
	while (names[n] != NULL)
		n++;
	if (n > 0 && (s->tabs = calloc(n, sizeof(*s->tabs))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		s->tabs[i].name = names[i];
		names[i] = NULL;
		s->ntabs++;
		if ((error = tab_columns(s, &s->tabs[i], err)) < 0)
			goto cleanup;
	}
cleanup:
	th_sqls__end_internal(s);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return error;
}

/* --- the record of changed keys ----------------------------------------------------------------
 */

static uint64_t hash_bytes(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	while (n--) {
		h ^= *p++;
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

/* The length of the tuple serialized at p. */
static size_t tuple_len(const unsigned char *p, size_t nvals)
{
	const unsigned char *q = p;
	size_t i;

	for (i = 0; i < nvals; i++) {
		unsigned char tag = *q++;
		if (tag == 1 || tag == 2) {
			q += 8;
		} else if (tag == 3 || tag == 4) {
			uint32_t len;
			memcpy(&len, q, 4);
			q += 4 + len;
		}
	}
	return (size_t)(q - p);
}

static int keyset_grow(th_sqls__keyset *k, size_t nvals)
{
	size_t n = k->nslots ? k->nslots * 2 : 1024, i;
	uint64_t *slots = calloc(n, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (i = 0; i < k->nslots; i++) {
		uint64_t v = k->slots[i];
		const unsigned char *t;
		size_t h;
		if (v == 0)
			continue;
		t = (const unsigned char *)k->arena.ptr + (v - 1);
		h = (size_t)(hash_bytes(t, tuple_len(t, nvals)) & (n - 1));
		while (slots[h] != 0)
			h = (h + 1) & (n - 1);
		slots[h] = v;
	}
	free(k->slots);
	k->slots = slots;
	k->nslots = n;
	return 0;
}

/* Add the tuple at k->arena[off..end) unless it is there: then the arena is cut back. Returns 0,
 * or -1 when out of memory. */
static int keyset_commit(th_sqls__keyset *k, size_t off, size_t nvals)
{
	const unsigned char *t = (const unsigned char *)k->arena.ptr + off;
	size_t len = k->arena.size - off, h;

	if ((k->n + 1) * 4 > k->nslots * 3 && keyset_grow(k, nvals) < 0)
		return -1;
	t = (const unsigned char *)k->arena.ptr + off;
	h = (size_t)(hash_bytes(t, len) & (k->nslots - 1));
	while (k->slots[h] != 0) {
		const unsigned char *o = (const unsigned char *)k->arena.ptr + (k->slots[h] - 1);
		if (tuple_len(o, nvals) == len && memcmp(o, t, len) == 0) {
			k->arena.size = off; /* seen */
			return 0;
		}
		h = (h + 1) & (k->nslots - 1);
	}
	k->slots[h] = (uint64_t)off + 1;
	k->n++;
	return 0;
}

static int put_value(th_buf *b, sqlite3_value *v)
{
	unsigned char tag;
	int64_t i;
	double d;
	uint32_t len;

	switch (sqlite3_value_type(v)) {
	case SQLITE_INTEGER:
		tag = 1;
		i = sqlite3_value_int64(v);
		return th_buf_putc(b, (char)tag, NULL) < 0 || th_buf_put(b, &i, 8, NULL) < 0 ? -1
		                                                                             : 0;
	case SQLITE_FLOAT:
		tag = 2;
		d = sqlite3_value_double(v);
		return th_buf_putc(b, (char)tag, NULL) < 0 || th_buf_put(b, &d, 8, NULL) < 0 ? -1
		                                                                             : 0;
	case SQLITE_TEXT:
	case SQLITE_BLOB: {
		const void *p = sqlite3_value_type(v) == SQLITE_TEXT
		                        ? (const void *)sqlite3_value_text(v)
		                        : sqlite3_value_blob(v);
		tag = sqlite3_value_type(v) == SQLITE_TEXT ? 3 : 4;
		len = (uint32_t)sqlite3_value_bytes(v);
		if (th_buf_putc(b, (char)tag, NULL) < 0 || th_buf_put(b, &len, 4, NULL) < 0 ||
		    (len > 0 && th_buf_put(b, p, len, NULL) < 0))
			return -1;
		return 0;
	}
	default:
		return th_buf_putc(b, 0, NULL) < 0 ? -1 : 0;
	}
}

static void forget(th_sqls *s, th_sqls__tab *t)
{
	s->key_bytes -= t->keys.arena.size < s->key_bytes ? t->keys.arena.size : s->key_bytes;
	keyset_dispose(&t->keys);
	t->inexact = 1;
}

/* Record the key of the row before (`old`) or after the change. */
static void record(th_sqls *s, th_sqls__tab *t, sqlite3 *db, int old)
{
	size_t off = t->keys.arena.size, before = t->keys.arena.size, i;
	sqlite3_value *v;

	for (i = 0; i < t->npk; i++) {
		if ((old ? sqlite3_preupdate_old(db, t->pk[i], &v)
		         : sqlite3_preupdate_new(db, t->pk[i], &v)) != SQLITE_OK ||
		    put_value(&t->keys.arena, v) < 0) {
			forget(s, t);
			return;
		}
	}
	if (keyset_commit(&t->keys, off, t->npk) < 0) {
		forget(s, t);
		return;
	}
	s->key_bytes += t->keys.arena.size - before;
	if (s->key_bytes > KEY_BYTES_MAX)
		forget(s, t);
}

void th_sqls__on_preupdate(void *payload, sqlite3 *db, int op, const char *dbname,
                           const char *table, sqlite3_int64 key1, sqlite3_int64 key2)
{
	th_sqls *s = payload;
	th_sqls__tab *t;

	(void)key1;
	(void)key2;
	if (dbname == NULL || strcmp(dbname, "main") != 0 || table == NULL ||
	    (t = th_sqls__tab_find(s, table)) == NULL)
		return; /* a table the statements made: it is read whole */
	t->touched = 1;
	if (t->inexact)
		return;
	if (t->npk == 0 || sqlite3_preupdate_count(db) != (int)t->ncols) {
		forget(s, t);
		return;
	}
	if (op != SQLITE_INSERT)
		record(s, t, db, 1);
	if (op != SQLITE_DELETE && !t->inexact)
		record(s, t, db, 0);
}

/* --- reading back ------------------------------------------------------------------------------
 */

int th_sqls_tables(char ***out, th_sqls *s, th_error *err)
{
	sqlite3_stmt *st = NULL;
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc, error = TH_OK;

	th_sqls__begin_internal(s);
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT "
	                       "LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
	                       -1, &st, NULL) != SQLITE_OK) {
		error = th_sqlcache__error(err, s->db, "cannot list tables");
		goto cleanup;
	}
	for (;;) {
		if (n + 1 >= cap) {
			char **p = realloc(v, (cap ? cap * 2 : 16) * sizeof(*p));
			if (p == NULL) {
				error = th_error_set(err, TH_ENOMEM, "out of memory");
				goto cleanup;
			}
			v = p;
			cap = cap ? cap * 2 : 16;
		}
		v[n] = NULL;
		if ((rc = sqlite3_step(st)) != SQLITE_ROW)
			break;
		if ((v[n] = strdup((const char *)sqlite3_column_text(st, 0))) == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
		n++;
	}
	if (rc != SQLITE_DONE) {
		error = th_sqlcache__error(err, s->db, "cannot list tables");
		goto cleanup;
	}
	*out = v;
	v = NULL;
cleanup:
	sqlite3_finalize(st);
	th_sqls__end_internal(s);
	while (v != NULL && n > 0)
		free(v[--n]);
	free(v);
	return error;
}

void th_sqls_table_dispose(th_sqls_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->ncols; i++) {
		free(t->cols[i].name);
		free(t->cols[i].decltype);
	}
	free(t->cols);
	memset(t, 0, sizeof(*t));
}

/* Append `s` as an SQL string literal. */
static int put_literal(th_buf *b, const char *s, th_error *err)
{
	int error = th_buf_putc(b, '\'', err);

	for (; error == TH_OK && *s; s++)
		if ((error = th_buf_putc(b, *s, err)) == TH_OK && *s == '\'')
			error = th_buf_putc(b, '\'', err);
	return error < 0 ? error : th_buf_putc(b, '\'', err);
}

/* Prepare prefix + `name` (as an identifier, or a string literal when `literal`) + suffix. */
static int name_stmt(sqlite3_stmt **st, th_sqls *s, const char *prefix, const char *name,
                     int literal, const char *suffix, th_error *err)
{
	th_buf sql = TH_BUF_INIT;
	int error;

	if ((error = th_buf_puts(&sql, prefix, err)) < 0 ||
	    (error = literal ? put_literal(&sql, name, err) : th_sqls__put_ident(&sql, name, err)) <
	            0 ||
	    (error = th_buf_puts(&sql, suffix, err)) < 0)
		goto cleanup;
	if (sqlite3_prepare_v2(s->db, sql.ptr, -1, st, NULL) != SQLITE_OK)
		error = th_sqlcache__error(err, s->db, "cannot read a table");
cleanup:
	th_buf_dispose(&sql);
	return error;
}

int th_sqls_table_info(th_sqls_table *out, th_sqls *s, const char *name, th_error *err)
{
	sqlite3_stmt *st = NULL;
	th_sqls_table t;
	th_sqls__tab *base;
	size_t cap = 0;
	int rc, error;

	memset(&t, 0, sizeof(t));
	th_sqls__begin_internal(s);
	/* hidden: 0 an ordinary column, 2 and 3 generated ones (SELECT * has them); 1 is a
	 * virtual table's hidden column. */
	if ((error = name_stmt(&st, s,
	                       "SELECT name, type, \"notnull\", pk FROM pragma_table_xinfo(", name,
	                       1, ") WHERE hidden != 1 ORDER BY cid", err)) < 0)
		goto cleanup;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		th_sqls_column *c;
		const char *decl = (const char *)sqlite3_column_text(st, 1);
		if (t.ncols == cap) {
			th_sqls_column *p = realloc(t.cols, (cap ? cap * 2 : 16) * sizeof(*p));
			if (p == NULL) {
				error = th_error_set(err, TH_ENOMEM, "out of memory");
				goto cleanup;
			}
			t.cols = p;
			cap = cap ? cap * 2 : 16;
		}
		c = &t.cols[t.ncols++];
		memset(c, 0, sizeof(*c));
		c->name = strdup((const char *)sqlite3_column_text(st, 0));
		c->decltype = strdup(decl ? decl : "");
		c->notnull = sqlite3_column_int(st, 2);
		c->pk = sqlite3_column_int(st, 3);
		if (c->name == NULL || c->decltype == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	if (rc != SQLITE_DONE) {
		error = th_sqlcache__error(err, s->db, "cannot read a table");
		goto cleanup;
	}
	if (t.ncols == 0) {
		error = th_error_set(err, TH_ENOTFOUND, "table '%s' not found", name);
		goto cleanup;
	}
	base = th_sqls__tab_find(s, name);
	t.in_base = base != NULL;
	t.changed = base == NULL || base->touched || th_sqls__ddl_touched(s, name);
	t.exact = base != NULL && !base->inexact && base->npk > 0 &&
	          !th_sqls__ddl_touched(s, name) && base->ncols == t.ncols;
	*out = t;
	memset(&t, 0, sizeof(t));
cleanup:
	sqlite3_finalize(st);
	th_sqls__end_internal(s);
	th_sqls_table_dispose(&t);
	return error;
}

/* The values of the current row of `st` from column `first`, n of them, into v. */
static void row_values(th_sqlv *v, sqlite3_stmt *st, int first, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int col = first + (int)i;
		memset(&v[i], 0, sizeof(v[i]));
		switch (sqlite3_column_type(st, col)) {
		case SQLITE_INTEGER:
			v[i].type = TH_SQLV_INTEGER;
			v[i].i = sqlite3_column_int64(st, col);
			break;
		case SQLITE_FLOAT:
			v[i].type = TH_SQLV_REAL;
			v[i].d = sqlite3_column_double(st, col);
			break;
		case SQLITE_TEXT:
			v[i].type = TH_SQLV_TEXT;
			v[i].s = (const char *)sqlite3_column_text(st, col);
			v[i].len = (size_t)sqlite3_column_bytes(st, col);
			break;
		case SQLITE_BLOB:
			v[i].type = TH_SQLV_BLOB;
			v[i].s = sqlite3_column_blob(st, col);
			v[i].len = (size_t)sqlite3_column_bytes(st, col);
			break;
		default:
			v[i].type = TH_SQLV_NULL;
		}
	}
}

/* Decode the tuple at p into v (n values) and bind them to st from parameter 1. */
static void tuple_bind(th_sqlv *v, sqlite3_stmt *st, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char tag = *p++;
		uint32_t len;
		memset(&v[i], 0, sizeof(v[i]));
		switch (tag) {
		case 1:
			v[i].type = TH_SQLV_INTEGER;
			memcpy(&v[i].i, p, 8);
			p += 8;
			sqlite3_bind_int64(st, (int)i + 1, v[i].i);
			break;
		case 2:
			v[i].type = TH_SQLV_REAL;
			memcpy(&v[i].d, p, 8);
			p += 8;
			sqlite3_bind_double(st, (int)i + 1, v[i].d);
			break;
		case 3:
		case 4:
			memcpy(&len, p, 4);
			p += 4;
			v[i].type = tag == 3 ? TH_SQLV_TEXT : TH_SQLV_BLOB;
			v[i].s = (const char *)p;
			v[i].len = len;
			if (tag == 3)
				sqlite3_bind_text(st, (int)i + 1, v[i].s, (int)len, SQLITE_STATIC);
			else
				sqlite3_bind_blob(st, (int)i + 1, p, (int)len, SQLITE_STATIC);
			p += len;
			break;
		default:
			sqlite3_bind_null(st, (int)i + 1);
		}
	}
}

int th_sqls_changed(th_sqls *s, const char *name, th_sqls_row_fn cb, void *payload, th_error *err)
{
	th_sqls__tab *t = th_sqls__tab_find(s, name);
	th_buf sql = TH_BUF_INIT;
	sqlite3_stmt *st = NULL;
	th_sqlv *key = NULL, *row = NULL;
	size_t i;
	int rc, error = TH_OK;

	if (t == NULL || t->inexact || t->npk == 0 || th_sqls__ddl_touched(s, name))
		return th_error_set(err, TH_EINVALID, "the changes of table '%s' were not recorded",
		                    name);
	if (t->keys.n == 0)
		return TH_OK;
	th_sqls__begin_internal(s);
	if ((error = th_buf_puts(&sql, "SELECT * FROM ", err)) < 0 ||
	    (error = th_sqls__put_ident(&sql, t->name, err)) < 0 ||
	    (error = th_buf_puts(&sql, " WHERE ", err)) < 0)
		goto cleanup;
	for (i = 0; i < t->npk; i++)
		if ((i && (error = th_buf_puts(&sql, " AND ", err)) < 0) ||
		    (error = th_sqls__put_ident(&sql, t->cols[t->pk[i]], err)) < 0 ||
		    (error = th_buf_printf(&sql, err, " = ?%zu", i + 1)) < 0)
			goto cleanup;
	if (sqlite3_prepare_v2(s->db, sql.ptr, -1, &st, NULL) != SQLITE_OK) {
		error = th_sqlcache__error(err, s->db, "cannot read changed rows");
		goto cleanup;
	}
	if ((key = calloc(t->npk, sizeof(*key))) == NULL ||
	    (row = calloc(t->ncols + 1, sizeof(*row))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < t->keys.nslots && error == TH_OK; i++) {
		uint64_t slot = t->keys.slots[i];
		if (slot == 0)
			continue;
		tuple_bind(key, st, (const unsigned char *)t->keys.arena.ptr + (slot - 1), t->npk);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			row_values(row, st, 0, t->ncols);
			th_sqlcache__budget_enter(NULL);
			error = cb(payload, key, t->npk, row, t->ncols, err);
			th_sqlcache__budget_enter(s->budget);
		} else if (rc == SQLITE_DONE) {
			th_sqlcache__budget_enter(NULL);
			error = cb(payload, key, t->npk, NULL, t->ncols, err);
			th_sqlcache__budget_enter(s->budget);
		} else {
			error = th_sqlcache__error(err, s->db, "cannot read changed rows");
		}
		sqlite3_reset(st);
	}
cleanup:
	sqlite3_finalize(st);
	th_sqls__end_internal(s);
	free(key);
	free(row);
	th_buf_dispose(&sql);
	return error;
}

int th_sqls_scan(th_sqls *s, const char *name, th_sqls_row_fn cb, void *payload, th_error *err)
{
	sqlite3_stmt *st = NULL;
	th_sqlv *row = NULL;
	size_t n;
	int rc = SQLITE_DONE, error = TH_OK;

	th_sqls__begin_internal(s);
	if ((error = name_stmt(&st, s, "SELECT * FROM ", name, 0, "", err)) < 0)
		goto cleanup;
	n = (size_t)sqlite3_column_count(st);
	if ((row = calloc(n + 1, sizeof(*row))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	while (error == TH_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_values(row, st, 0, n);
		th_sqlcache__budget_enter(NULL);
		error = cb(payload, NULL, 0, row, n, err);
		th_sqlcache__budget_enter(s->budget);
	}
	if (error == TH_OK && rc != SQLITE_DONE)
		error = th_sqlcache__error(err, s->db, "cannot read a table");
cleanup:
	sqlite3_finalize(st);
	th_sqls__end_internal(s);
	free(row);
	return error;
}
