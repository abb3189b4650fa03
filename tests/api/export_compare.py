#!/usr/bin/env python3
"""export_compare.py: check that a table's exports agree cell by cell.

usage: export_compare.py TYPES CSV [--json FILE] [--jsonl FILE] [--sqlite DB TABLE KEY]

TYPES is the columns' types, comma-separated (integer, real, boolean, date, datetime, text), in
the order of the CSV header. CSV is the CSV export, the reference: a NULL is an unquoted empty
field and an empty string a quoted one (Python's csv module cannot tell them apart, so the
fields are read here). Each other export must give the same rows in the same order:
  --json    the JSON export, parsed by Python's json: an array of objects keyed by column;
  --jsonl   the JSON lines export: one object a line;
  --sqlite  a database the SQL export was loaded into by sqlite3; its rows are read ordered by
            KEY (comma-separated columns), which is the exports' key order for the keys used.
Integers compare as integers, reals as floats (12.50 is 12.5), booleans as true/false against
JSON's booleans and SQLite's 1/0; the rest as strings. A real in SQLite may also be the double
SQLite itself makes of the CSV text: before 3.43 its decimal conversion is off by an ulp for some
texts (0.095436), whether the text comes in an INSERT or through .import. Prints "N rows agree" and exits 0, or
prints the first difference and exits 1.
"""
import json
import sqlite3
import sys


def read_csv(path):
    """Rows of the CSV file as lists of str or None (unquoted empty field)."""
    data = open(path, encoding="utf-8", newline="").read()
    rows, row, field, quoted, i, n = [], [], [], False, 0, len(data)
    was_quoted = False
    while i < n:
        c = data[i]
        if quoted:
            if c == '"':
                if i + 1 < n and data[i + 1] == '"':
                    field.append('"')
                    i += 1
                else:
                    quoted = False
            else:
                field.append(c)
        elif c == '"':
            quoted = was_quoted = True
        elif c == ",":
            row.append("".join(field) if field or was_quoted else None)
            field, was_quoted = [], False
        elif c == "\n":
            row.append("".join(field) if field or was_quoted else None)
            rows.append(row)
            row, field, was_quoted = [], [], False
        else:
            field.append(c)
        i += 1
    if field or was_quoted or row:
        row.append("".join(field) if field or was_quoted else None)
        rows.append(row)
    return rows


SQLITE = sqlite3.connect(":memory:")


def same(kind, ref, value, source):
    """Does `value` (from `source`: json or sqlite) stand for the CSV cell `ref`?"""
    if ref is None or value is None:
        return ref is None and value is None
    if kind == "integer":
        return not isinstance(value, bool) and isinstance(value, int) and int(ref) == value
    if kind == "real":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if float(ref) == value:
            return True
        return source == "sqlite" and \
            SQLITE.execute("SELECT CAST(? AS REAL)", (ref,)).fetchone()[0] == value
    if kind == "boolean":
        want = ref == "true"
        if source == "json":
            return isinstance(value, bool) and value == want
        return value == (1 if want else 0)
    return isinstance(value, str) and value == ref


def compare(name, kinds, header, ref_rows, rows, source):
    if len(rows) != len(ref_rows):
        print(f"{name}: {len(rows)} rows, the CSV export has {len(ref_rows)}")
        return False
    for r, (ref, got) in enumerate(zip(ref_rows, rows)):
        if source == "json":
            if not isinstance(got, dict) or list(got.keys()) != header:
                print(f"{name}: row {r + 1} has keys {list(got.keys())}, want {header}")
                return False
            got = [got[h] for h in header]
        for c, kind in enumerate(kinds):
            if not same(kind, ref[c], got[c], source):
                print(f"{name}: row {r + 1}, column {header[c]} ({kind}): "
                      f"{got[c]!r}, the CSV export has {ref[c]!r}")
                return False
    return True


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    kinds = argv[1].split(",")
    csv_rows = read_csv(argv[2])
    header, ref_rows = csv_rows[0], csv_rows[1:]
    if len(header) != len(kinds):
        print(f"{len(kinds)} types for {len(header)} columns")
        return 2
    ok, i = True, 3
    while i < len(argv) and ok:
        opt = argv[i]
        if opt == "--json":
            ok = compare("json", kinds, header, ref_rows,
                         json.load(open(argv[i + 1], encoding="utf-8")), "json")
            i += 2
        elif opt == "--jsonl":
            with open(argv[i + 1], encoding="utf-8") as f:
                rows = [json.loads(line) for line in f]
            ok = compare("jsonl", kinds, header, ref_rows, rows, "json")
            i += 2
        elif opt == "--sqlite":
            db, table, key = argv[i + 1], argv[i + 2], argv[i + 3]
            con = sqlite3.connect(db)
            order = ", ".join('"%s"' % k for k in key.split(","))
            rows = con.execute(f'SELECT * FROM "{table}" ORDER BY {order}').fetchall()
            cols = [d[0] for d in con.execute(f'SELECT * FROM "{table}" LIMIT 0').description]
            if cols != header:
                print(f"sqlite: columns {cols}, the CSV export has {header}")
                return 1
            ok = compare("sqlite", kinds, header, ref_rows, rows, "sqlite")
            i += 4
        else:
            print(f"unknown option {opt}")
            return 2
    if not ok:
        return 1
    print(f"{len(ref_rows)} rows agree")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
