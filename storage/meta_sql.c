/* meta_sql.c: the statement layer the SQL metadata backends share (storage/meta_sql.h): the
 * neutral row's column readers and the run, list and transaction helpers, which pin a connection
 * through the handle's driver and run the statement on it. The engines themselves are
 * storage/meta_sqlite.c and storage/meta_pg.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta_sql.h"

/* --- rows ------------------------------------------------------------------------------------ */

const char *th_msql__text(const th_mrow *r, int i)
{
	const char *t = r->ops->text(r, i);
	return t ? t : "";
}

size_t th_msql__len(const th_mrow *r, int i)
{
	return r->ops->len(r, i);
}

int64_t th_msql__int(const th_mrow *r, int i)
{
	return r->ops->int64(r, i);
}

int th_msql__null(const th_mrow *r, int i)
{
	return r->ops->text(r, i) == NULL;
}

void th_msql__copy(char *dst, size_t size, const th_mrow *r, int i)
{
	snprintf(dst, size, "%s", th_msql__text(r, i));
}

int th_msql__dup(char **out, const th_mrow *r, int i, int keep_null, th_error *err)
{
	if (keep_null && th_msql__null(r, i)) {
		*out = NULL;
		return TH_OK;
	}
	if ((*out = strdup(th_msql__text(r, i))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return TH_OK;
}

/* --- runs ------------------------------------------------------------------------------------ */

_Thread_local int th_msql__lazy_thread;

void th_meta_lazy(th_meta *m, int on)
{
	(void)m;
	th_msql__lazy_thread = on != 0;
}

int th_msql__lock(th_msql *s, th_error *err)
{
	return s->drv->lock(s, err);
}

void th_msql__unlock(th_msql *s)
{
	s->drv->unlock(s);
}

int th_msql__unlock_settle(th_msql *s, int result, th_error *err)
{
	int e;

	s->drv->unlock(s);
	if (result >= 0 && s->drv->settle != NULL && (e = s->drv->settle(s, err)) < 0)
		return e;
	return result;
}

int th_msql__vrun_locked(th_msql *s, const th_msql_stmt *stmt, th_msql_row_fn row, void *ctx,
                         th_error *err, const char *types, va_list ap)
{
	return s->drv->run(s, stmt, row, ctx, err, types, ap);
}

int th_msql__run_locked(th_msql *s, const th_msql_stmt *stmt, th_msql_row_fn row, void *ctx,
                        th_error *err, const char *types, ...)
{
	va_list ap;
	int error;

	va_start(ap, types);
	error = s->drv->run(s, stmt, row, ctx, err, types, ap);
	va_end(ap);
	return error;
}

int th_msql__run(th_msql *s, const th_msql_stmt *stmt, th_msql_row_fn row, void *ctx, th_error *err,
                 const char *types, ...)
{
	va_list ap;
	int error;

	if ((error = s->drv->lock(s, err)) < 0)
		return error;
	va_start(ap, types);
	error = s->drv->run(s, stmt, row, ctx, err, types, ap);
	va_end(ap);
	return th_msql__unlock_settle(s, error, err);
}

int th_msql__exec_locked(th_msql *s, const char *what, const char *sql, th_msql_row_fn row,
                         void *ctx, th_error *err, const char *types, ...)
{
	th_msql_stmt st = { MS_NOSLOT, what, sql, NULL };
	va_list ap;
	int error;

	va_start(ap, types);
	error = s->drv->run(s, &st, row, ctx, err, types, ap);
	va_end(ap);
	return error;
}

int th_msql__exec(th_msql *s, const char *what, const char *sql, th_msql_row_fn row, void *ctx,
                  th_error *err, const char *types, ...)
{
	th_msql_stmt st = { MS_NOSLOT, what, sql, NULL };
	va_list ap;
	int error;

	if ((error = s->drv->lock(s, err)) < 0)
		return error;
	va_start(ap, types);
	error = s->drv->run(s, &st, row, ctx, err, types, ap);
	va_end(ap);
	return th_msql__unlock_settle(s, error, err);
}

struct list_ctx {
	char *items;
	size_t n, cap, size, limit;
	int more;
	int (*read)(void *item, const th_mrow *r, th_error *err);
};

static int list_row(void *ctx, const th_mrow *r, th_error *err)
{
	struct list_ctx *l = ctx;
	int error;

	if (l->limit && l->n == l->limit) {
		l->more = 1;
		return TH_OK;
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		char *p = realloc(l->items, ncap * l->size);
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		l->items = p;
		l->cap = ncap;
	}
	if ((error = l->read(l->items + l->n * l->size, r, err)) < 0)
		return error;
	l->n++;
	return TH_OK;
}

int th_msql__list(void **items_out, size_t *n_out, int *more_out, th_msql *s,
                  const th_msql_stmt *stmt, size_t item_size, size_t limit,
                  int (*read)(void *item, const th_mrow *r, th_error *err),
                  void (*dispose)(void *item), th_error *err, const char *types, ...)
{
	struct list_ctx l = { NULL, 0, 0, item_size, limit, 0, read };
	va_list ap;
	size_t i;
	int error;

	if ((error = s->drv->lock(s, err)) < 0)
		return error;
	va_start(ap, types);
	error = s->drv->run(s, stmt, list_row, &l, err, types, ap);
	va_end(ap);
	error = th_msql__unlock_settle(s, error, err);
	if (error < 0) {
		for (i = 0; i < l.n; i++)
			dispose(l.items + i * item_size);
		free(l.items);
		return error;
	}
	*items_out = l.items;
	*n_out = l.n;
	if (more_out)
		*more_out = l.more;
	return TH_OK;
}

int th_msql__tx(th_msql *s, int (*fn)(th_msql *s, void *ctx, th_error *err), void *ctx,
                th_error *err)
{
	int error;

	if ((error = s->drv->lock(s, err)) < 0)
		return error;
	if ((error = s->drv->begin(s, err)) < 0)
		goto cleanup;
	if ((error = fn(s, ctx, err)) >= 0)
		error = s->drv->commit(s, err);
	if (error < 0)
		s->drv->rollback(s);
cleanup:
	error = th_msql__unlock_settle(s, error, err);
	return error < 0 ? error : TH_OK;
}
