/* csv.h: writing delimited text (src/csv_write.c), the counterpart of the CSV reader (src/csv.c,
 * reached through reader.h's format table as "Csv", "Psv" and "Tsv").
 */
#ifndef TABLEHUB_CSV_H
#define TABLEHUB_CSV_H

#include <stddef.h>
#include "buf.h"
#include "error.h"

/* Append one CSV field to out: NULL as an unquoted empty field, an empty string as "", quoted
 * (quotes doubled) when it holds `delim`, a quote, CR or LF, or starts or ends with a space.
 * Returns TH_OK or TH_ENOMEM. */
int th_csv_write_field(th_buf *out, const char *s, size_t len, int is_null, char delim,
                       th_error *err);

#endif
