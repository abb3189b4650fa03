/* export_csv.c: the CSV exporter (see include/tablehub/export.h): a header line of the column
 * names, then one line a row, fields written by th_csv_write_field as the reader (src/csv.c) reads
 * them back: NULL as an unquoted empty field, an empty string as "", quotes where needed. LF line
 * ends, UTF-8 as stored, no BOM. Stateless: each call writes whole lines.
 */
#include <string.h>

#include "tablehub/csv.h"
#include "tablehub/export.h"

static int csv_begin(void *state, th_buf *out, size_t n, const char *const *names,
                     const char *const *types, th_error *err)
{
	size_t i;
	int error;

	(void)state;
	(void)types;
	for (i = 0; i < n; i++)
		if ((i && (error = th_buf_putc(out, ',', err)) < 0) ||
		    (error = th_csv_write_field(out, names[i], strlen(names[i]), 0, ',', err)) < 0)
			return error;
	return th_buf_putc(out, '\n', err);
}

static int csv_row(void *state, th_buf *out, const th_cell *cells, size_t n, th_error *err)
{
	size_t i;
	int error;

	(void)state;
	for (i = 0; i < n; i++)
		if ((i && (error = th_buf_putc(out, ',', err)) < 0) ||
		    (error = th_csv_write_field(out, cells[i].s, cells[i].len, cells[i].is_null,
		                                ',', err)) < 0)
			return error;
	return th_buf_putc(out, '\n', err);
}

const th_exporter th_exporter_csv = {
	.name = "csv",
	.media_type = "text/csv; charset=utf-8",
	.extension = "csv",
	.state_size = 0,
	.begin = csv_begin,
	.row = csv_row,
	.end = NULL,
	.dispose = NULL,
};
