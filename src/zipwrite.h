/* zipwrite.h: a streaming writer of zip archives (src/zipwrite.c), internal to src/: entries
 * deflated as their bytes arrive, appended to the caller's buffers, so an archive of any size is
 * written in constant memory and can be sent while it is made.
 *
 * An entry's size and CRC are known only at its end, so each entry has general purpose bit 3 set:
 * the local header carries zeros and a data descriptor after the data carries the values; the
 * central directory at the end has them all. ZIP64 records are written where a size, an offset
 * or the count needs them (entries over 4 GiB, archives over 4 GiB, 65,535 entries or more).
 */
#ifndef TABLEHUB_SRC_ZIPWRITE_H
#define TABLEHUB_SRC_ZIPWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "tablehub/buf.h"
#include "tablehub/error.h"

typedef struct th_zipw th_zipw;

/* A new archive whose entries are deflated at zlib level `level` (0-9), dated `mtime` (seconds
 * since the epoch, UTC). `force_zip64` writes the ZIP64 records even where the sizes do not
 * need them (for the tests of that path). Returns TH_OK or TH_ENOMEM; free with th_zipw_free. */
int th_zipw_new(th_zipw **out, int level, int64_t mtime, int force_zip64, th_error *err);

/* Start entry `name` (UTF-8, at most 65,535 bytes; the previous entry must have ended): its local
 * header is appended to `out`. Returns TH_OK, TH_EINVALID (a bad name) or TH_ENOMEM. */
int th_zipw_begin(th_zipw *z, th_buf *out, const char *name, th_error *err);

/* The entry's next `len` bytes, deflated, appended to `out` (possibly none yet: zlib buffers).
 * Returns TH_OK or TH_ENOMEM. */
int th_zipw_data(th_zipw *z, th_buf *out, const void *data, size_t len, th_error *err);

/* End the entry: the rest of its deflated bytes and its data descriptor. TH_OK or TH_ENOMEM. */
int th_zipw_end(th_zipw *z, th_buf *out, th_error *err);

/* End the archive: the central directory and the end records. TH_OK or TH_ENOMEM. */
int th_zipw_finish(th_zipw *z, th_buf *out, th_error *err);

/* Accepts NULL. */
void th_zipw_free(th_zipw *z);

#endif
