/* cli_query.c: `tablehub query [--data DIR] OWNER/DB REF SQL`, read-only SQL at a ref, locally.
 *
 * The same snapshots, sandbox and limits as the HTTP endpoint (src/query.c). Output, for a person
 * by default: a boxed table like the mysql client's, numbers right-aligned, NULL as NULL, control
 * characters shown escaped so a row stays on one line; with --csv, CSV through the exporter that
 * `tablehub export` and the HTTP download use (streamed, not held); with --json, the HTTP
 * endpoint's DoltHub-shaped body (query_json.c). Needs no lock: it works beside a running server.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tablehub/text.h"
#include "tablehub/buf.h"
#include "tablehub/datadir.h"
#include "tablehub/export.h"
#include "tablehub/log.h"
#include "tablehub/query.h"
#include "query_json.h"

static const char query_usage[] =
        "usage: tablehub query [--data DIR] [--csv | --json] [--limit N] [--timeout-ms N] "
        "[--timing]\n"
        "                      OWNER/DB REF SQL\n"
        "\n"
        "Run one read-only SQL statement (SQLite's dialect) against the tables at REF (a branch, "
        "a\n"
        "tag or a commit id). Every table is an SQL table of the same name.\n"
        "  --csv            print CSV instead of a table\n"
        "  --json           print the HTTP API's JSON response\n"
        "  --limit N        stop after N rows (default 1000; 0 for no limit)\n"
        "  --timeout-ms N   stop the statement after N ms (default 10000)\n"
        "  --timing         print the time spent (snapshot, statement) on stderr\n";

static int usage_error(const char *msg)
{
	fprintf(stderr, "tablehub query: %s\n\n%s", msg, query_usage);
	return 2;
}

/* Take a flag without a value out of argv. */
static int take_flag(int *argc, char **argv, const char *name)
{
	int i, j;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], name) != 0)
			continue;
		for (j = i; j + 1 < *argc; j++)
			argv[j] = argv[j + 1];
		(*argc)--;
		return 1;
	}
	return 0;
}

static int parse_u64(uint64_t *out, const char *s)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* --- the table printer ---------------------------------------------------------------------- */

typedef struct table_out {
	size_t ncols;
	char **names;
	int *right;     /* right-align the column (numbers) */
	size_t *width;  /* display width of the widest cell */
	th_buf cells;   /* every shown cell, NUL-terminated, row after row */
	size_t *starts; /* offset of each cell in `cells` */
	size_t nstarts, cap;
	uint64_t rows;
} table_out;

/* Display width of UTF-8 text: one per code point (no East Asian widths: good enough). */
static size_t display_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Append s[0..len) with control characters escaped (\n, \t, \r, \xHH). */
static int put_shown(th_buf *b, const char *s, size_t len, th_error *err)
{
	size_t i;
	int error = TH_OK;

	for (i = 0; i < len && error == TH_OK; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			error = th_buf_puts(b, "\\n", err);
		else if (c == '\t')
			error = th_buf_puts(b, "\\t", err);
		else if (c == '\r')
			error = th_buf_puts(b, "\\r", err);
		else if (c < 0x20 || c == 0x7f)
			error = th_buf_printf(b, err, "\\x%02x", c);
		else
			error = th_buf_putc(b, (char)c, err);
	}
	return error;
}

static int push_cell(table_out *t, size_t col, const char *s, size_t len, int is_null,
                     th_error *err)
{
	size_t start = t->cells.size, w;
	int error;

	if (t->nstarts == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		size_t *v = realloc(t->starts, cap * sizeof(*v));
		if (v == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		t->starts = v;
		t->cap = cap;
	}
	if ((error = is_null ? th_buf_puts(&t->cells, "NULL", err)
	                     : put_shown(&t->cells, s, len, err)) < 0 ||
	    (error = th_buf_putc(&t->cells, '\0', err)) < 0)
		return error;
	t->starts[t->nstarts++] = start;
	w = display_width(t->cells.ptr + start);
	if (w > t->width[col])
		t->width[col] = w;
	return TH_OK;
}

static int table_columns(void *payload, size_t n, const char *const *names,
                         const char *const *types, th_error *err)
{
	table_out *t = payload;
	size_t i;

	t->ncols = n;
	t->names = calloc(n + 1, sizeof(*t->names));
	t->right = calloc(n + 1, sizeof(*t->right));
	t->width = calloc(n + 1, sizeof(*t->width));
	if (t->names == NULL || t->right == NULL || t->width == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		th_buf shown = TH_BUF_INIT;
		int error = put_shown(&shown, names[i], strlen(names[i]), err);
		if (error < 0) {
			th_buf_dispose(&shown);
			return error;
		}
		t->names[i] = shown.ptr ? th_buf_detach(&shown) : strdup("");
		if (t->names[i] == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		t->width[i] = display_width(t->names[i]);
		t->right[i] = strcmp(types[i], "integer") == 0 || strcmp(types[i], "real") == 0;
	}
	return TH_OK;
}

static int table_row(void *payload, const th_cell *cells, size_t n, th_error *err)
{
	table_out *t = payload;
	size_t i;
	int error;

	for (i = 0; i < n && i < t->ncols; i++)
		if ((error = push_cell(t, i, cells[i].s, cells[i].len, cells[i].is_null, err)) < 0)
			return error;
	t->rows++;
	return TH_OK;
}

static void print_rule(const table_out *t)
{
	size_t i, k;

	for (i = 0; i < t->ncols; i++) {
		putchar('+');
		for (k = 0; k < t->width[i] + 2; k++)
			putchar('-');
	}
	puts("+");
}

static void print_cell(const char *s, size_t width, int right)
{
	size_t pad = width - display_width(s);

	printf("| %*s%s%*s ", right ? (int)pad : 0, "", s, right ? 0 : (int)pad, "");
}

static void table_print(const table_out *t)
{
	size_t i, r, at = 0;

	if (t->ncols == 0) {
		puts("(no columns)");
		return;
	}
	print_rule(t);
	for (i = 0; i < t->ncols; i++)
		print_cell(t->names[i], t->width[i], 0);
	puts("|");
	print_rule(t);
	for (r = 0; r < t->rows; r++) {
		for (i = 0; i < t->ncols; i++)
			print_cell(t->cells.ptr + t->starts[at++], t->width[i], t->right[i]);
		puts("|");
	}
	if (t->rows > 0)
		print_rule(t);
	printf("(%llu row%s)\n", (unsigned long long)t->rows, t->rows == 1 ? "" : "s");
}

static void table_dispose(table_out *t)
{
	size_t i;

	for (i = 0; t->names && i < t->ncols; i++)
		free(t->names[i]);
	free(t->names);
	free(t->right);
	free(t->width);
	free(t->starts);
	th_buf_dispose(&t->cells);
}

/* --- CSV, through the exporter ------------------------------------------------------------- */

#define OUT_BLOCK (64 * 1024)

/* A sink that writes the result through an exporter to stdout, a block at a time. */
typedef struct export_out {
	th_export *x;
	th_buf buf;
} export_out;

static int export_flush(export_out *e, size_t at_least, th_error *err)
{
	if (e->buf.size < at_least || e->buf.size == 0)
		return TH_OK;
	if (fwrite(e->buf.ptr, 1, e->buf.size, stdout) != e->buf.size)
		return th_error_set(err, TH_ESTORE, "cannot write the output");
	th_buf_clear(&e->buf);
	return TH_OK;
}

static int export_columns(void *payload, size_t n, const char *const *names,
                          const char *const *types, th_error *err)
{
	export_out *e = payload;
	int error = th_export_begin(e->x, &e->buf, n, names, types, err);

	return error < 0 ? error : export_flush(e, OUT_BLOCK, err);
}

static int export_row(void *payload, const th_cell *cells, size_t n, th_error *err)
{
	export_out *e = payload;
	int error = th_export_row(e->x, &e->buf, cells, n, err);

	return error < 0 ? error : export_flush(e, OUT_BLOCK, err);
}

/* --- the printer of a result, shared with `query --remote` --------------------------------- */

struct cli_result {
	int csv;
	table_out table;
	export_out out;
};

int cli_result_new(cli_result **out, th_sql_sink *sink, int csv, th_error *err)
{
	cli_result *r = calloc(1, sizeof(*r));
	int error;

	if (r == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	r->csv = csv;
	if (csv) {
		if ((error = th_export_new(&r->out.x, &th_exporter_csv, err)) < 0) {
			free(r);
			return error;
		}
		sink->columns = export_columns;
		sink->row = export_row;
		sink->payload = &r->out;
	} else {
		sink->columns = table_columns;
		sink->row = table_row;
		sink->payload = &r->table;
	}
	*out = r;
	return TH_OK;
}

int cli_result_finish(cli_result *r, th_error *err)
{
	int error;

	if (!r->csv) {
		table_print(&r->table);
		return TH_OK;
	}
	if ((error = th_export_end(r->out.x, &r->out.buf, err)) < 0)
		return error;
	return export_flush(&r->out, 0, err);
}

void cli_result_free(cli_result *r)
{
	if (r == NULL)
		return;
	if (r->csv)
		export_flush(&r->out, 0, NULL); /* the rows before a failure, as they came */
	table_dispose(&r->table);
	th_export_free(r->out.x);
	th_buf_dispose(&r->out.buf);
	free(r);
}

/* --- the command ---------------------------------------------------------------------------- */

int cli_query(int argc, char **argv)
{
	const char *data = cli_take_data_dir(&argc, argv);
	int missing = 0;
	const char *limit = cli_take_opt(&argc, argv, "--limit", &missing);
	const char *timeout = cli_take_opt(&argc, argv, "--timeout-ms", &missing);
	int as_json = take_flag(&argc, argv, "--json");
	int as_csv = take_flag(&argc, argv, "--csv");
	int timing = take_flag(&argc, argv, "--timing");
	char owner[65], db[65];
	th_query_target t;
	th_query_opts o;
	th_query_info info;
	th_error err = { 0 };
	th_sql_sink sink;
	cli_result *res = NULL;
	api_query_body body = { TH_BUF_INIT, TH_BUF_INIT };
	uint64_t v;
	int i, error, rc = 1;

	memset(&info, 0, sizeof(info));
	if (th_log_min < TH_LOG_WARN)
		th_log_min =
		        TH_LOG_WARN; /* a person reads stdout here: no "snapshot built" lines */
	if (take_flag(&argc, argv, "--help") || take_flag(&argc, argv, "-h")) {
		fputs(query_usage, stdout);
		return 0;
	}
	if (missing)
		return usage_error("an option is missing its value");
	for (i = 1; i < argc; i++)
		if (argv[i][0] == '-' && argv[i][1] == '-' && isalpha((unsigned char)argv[i][2])) {
			char msg[256];
			snprintf(msg, sizeof(msg), "unknown option '%s'", argv[i]);
			return usage_error(msg);
		}
	if (argc != 4)
		return usage_error("expected: OWNER/DB REF SQL");
	if (as_json && as_csv)
		return usage_error("--csv and --json exclude each other");
	th_query_opts_init(&o);
	if (limit != NULL) {
		if (parse_u64(&v, limit) < 0)
			return usage_error("--limit must be a number (0 for no limit)");
		o.max_rows = v;
	}
	if (timeout != NULL) {
		if (parse_u64(&v, timeout) < 0 || v > UINT32_MAX)
			return usage_error("--timeout-ms must be a number of milliseconds");
		o.time_ms = (uint32_t)v;
	}
	if (th_split_db_name(owner, db, argv[1], &err) < 0) {
		fprintf(stderr, "tablehub query: %s\n", err.msg);
		return 2;
	}
	t.datadir = data;
	t.owner = owner;
	t.db = db;
	t.ref = argv[2];

	if (as_json) {
		error = api_query_json(&body, &info, &t, argv[3], &o, &err);
		if (body.head.ptr != NULL) {
			fwrite(body.head.ptr, 1, body.head.size, stdout);
			fwrite(body.rest.ptr ? body.rest.ptr : "", 1, body.rest.size, stdout);
			putchar('\n');
		}
		rc = error < 0 ? 1 : 0;
		goto cleanup;
	}
	if (cli_result_new(&res, &sink, as_csv, &err) < 0) {
		fprintf(stderr, "tablehub query: %s\n", err.msg);
		goto cleanup;
	}
	if ((error = th_query_run(&info, &t, argv[3], &o, &sink, &err)) < 0 ||
	    (error = cli_result_finish(res, &err)) < 0) {
		cli_result_free(res); /* the CSV rows before the failure, as they came */
		res = NULL;
		fflush(stdout);
		fprintf(stderr, "tablehub query: %s\n", err.msg);
		goto cleanup;
	}
	if (info.truncated) {
		fflush(stdout);
		fprintf(stderr,
		        "tablehub query: the result was cut at %llu rows; use --limit N (0: no "
		        "limit)\n",
		        (unsigned long long)o.max_rows);
	}
	rc = 0;
cleanup:
	if (timing)
		fprintf(stderr, "snapshot: %.1f ms (%s), statement: %.1f ms\n", info.build_ms,
		        info.origin == TH_SNAP_BUILT      ? "built"
		        : info.origin == TH_SNAP_ADVANCED ? "built from an ancestor"
		                                          : "cached",
		        info.query_ms);
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "tablehub query: cannot write the output\n");
		rc = 1;
	}
	cli_result_free(res);
	api_query_body_dispose(&body);
	return rc;
}
