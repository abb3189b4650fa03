/* export_json.c: the JSON exporters (see include/tablehub/export.h): "json", one array of
 * objects, and "jsonl", one object a line (JSON lines, as the import reads them back).
 *
 * Each row is an object keyed by column name, in column order. A cell is typed by its column:
 * integers and reals bare (stored as JSON numbers already; a cell that is not one is written as a
 * string rather than break the document), booleans as true/false, NULL as null, every other type
 * (dates, datetimes, text, a query result's blobs) as a string. The keys are escaped once, in
 * begin, so a row costs its cells only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/export.h"

enum { CELL_STRING, CELL_NUMBER, CELL_BOOLEAN };

typedef struct json_state {
	size_t n;
	unsigned char *kind; /* CELL_* per column */
	size_t *key_off;     /* where column i's `"name":` starts in keys; key_off[n] = the end */
	th_buf keys;
	int lines; /* JSON lines: no brackets, no commas between rows */
	uint64_t rows;
} json_state;

/* Is s[0..len) a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number(const char *s, size_t len)
{
	size_t i = 0, d;

	if (i < len && s[i] == '-')
		i++;
	if (i < len && s[i] == '0')
		i++;
	else if (i < len && s[i] >= '1' && s[i] <= '9')
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return 0;
	if (i < len && s[i] == '.') {
		for (d = ++i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	return i == len;
}

static int json_begin_common(json_state *st, th_buf *out, size_t n, const char *const *names,
                             const char *const *types, th_error *err)
{
	size_t i;
	int error;

	st->n = n;
	if ((st->kind = calloc(n + 1, 1)) == NULL ||
	    (st->key_off = calloc(n + 1, sizeof(*st->key_off))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		const char *t = types[i] ? types[i] : "";
		st->kind[i] = strcmp(t, "integer") == 0 || strcmp(t, "real") == 0 ? CELL_NUMBER
		              : strcmp(t, "boolean") == 0                         ? CELL_BOOLEAN
		                                                                  : CELL_STRING;
		st->key_off[i] = st->keys.size;
		if ((error = th_buf_putc(&st->keys, i ? ',' : '{', err)) < 0 ||
		    (error = th_buf_put_json_string(&st->keys, names[i], strlen(names[i]), err)) <
		            0 ||
		    (error = th_buf_putc(&st->keys, ':', err)) < 0)
			return error;
	}
	st->key_off[n] = st->keys.size;
	return st->lines ? TH_OK : th_buf_putc(out, '[', err);
}

static int json_begin(void *state, th_buf *out, size_t n, const char *const *names,
                      const char *const *types, th_error *err)
{
	return json_begin_common(state, out, n, names, types, err);
}

static int jsonl_begin(void *state, th_buf *out, size_t n, const char *const *names,
                       const char *const *types, th_error *err)
{
	json_state *st = state;

	st->lines = 1;
	return json_begin_common(st, out, n, names, types, err);
}

static int put_cell(th_buf *out, int kind, const th_cell *c, th_error *err)
{
	if (c->is_null)
		return th_buf_put(out, "null", 4, err);
	switch (kind) {
	case CELL_NUMBER:
		if (json_number(c->s, c->len))
			return th_buf_put(out, c->s, c->len, err);
		break;
	case CELL_BOOLEAN:
		/* Stored as true/false; anything else is shown as the string it is. */
		if ((c->len == 4 && memcmp(c->s, "true", 4) == 0) ||
		    (c->len == 5 && memcmp(c->s, "false", 5) == 0))
			return th_buf_put(out, c->s, c->len, err);
		break;
	default:
		break;
	}
	return th_buf_put_json_string(out, c->s, c->len, err);
}

static int json_row(void *state, th_buf *out, const th_cell *cells, size_t n, th_error *err)
{
	json_state *st = state;
	size_t i;
	int error;

	if (n != st->n)
		return th_error_set(err, TH_EINVALID, "row of %zu cells for %zu columns", n, st->n);
	if (!st->lines && (error = th_buf_puts(out, st->rows ? ",\n" : "\n", err)) < 0)
		return error;
	if (n == 0 && (error = th_buf_putc(out, '{', err)) < 0)
		return error;
	for (i = 0; i < n; i++)
		if ((error = th_buf_put(out, st->keys.ptr + st->key_off[i],
		                        st->key_off[i + 1] - st->key_off[i], err)) < 0 ||
		    (error = put_cell(out, st->kind[i], &cells[i], err)) < 0)
			return error;
	if ((error = th_buf_putc(out, '}', err)) < 0 ||
	    (st->lines && (error = th_buf_putc(out, '\n', err)) < 0))
		return error;
	st->rows++;
	return TH_OK;
}

static int json_end(void *state, th_buf *out, th_error *err)
{
	json_state *st = state;

	if (st->lines)
		return TH_OK;
	return th_buf_puts(out, st->rows ? "\n]\n" : "]\n", err);
}

static void json_dispose(void *state)
{
	json_state *st = state;

	free(st->kind);
	free(st->key_off);
	th_buf_dispose(&st->keys);
}

const th_exporter th_exporter_json = {
	.name = "json",
	.media_type = "application/json; charset=utf-8",
	.extension = "json",
	.state_size = sizeof(json_state),
	.begin = json_begin,
	.row = json_row,
	.end = json_end,
	.dispose = json_dispose,
	.table = NULL,
};

const th_exporter th_exporter_jsonl = {
	.name = "jsonl",
	.media_type = "application/jsonl; charset=utf-8",
	.extension = "jsonl",
	.state_size = sizeof(json_state),
	.begin = jsonl_begin,
	.row = json_row,
	.end = json_end,
	.dispose = json_dispose,
	.table = NULL,
};
