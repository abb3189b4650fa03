// sqlgen.js: the SQL the table page sends through the read-only SQL API: one page of rows at a
// time, by key (keyset paging: WHERE (key) > (last key) ORDER BY key LIMIT n), so a page of a
// 1,000,000-row table reads n rows from the primary key's index and never counts or skips rows.
// Sorting by another column pages by (column, key), with SQLite's NULL order (first when
// ascending). Values go into the SQL as literals of the column's type, quoted and escaped.

export const ident = (name) => '"' + String(name).replace(/"/g, '""') + '"';

const INT = /^-?\d{1,19}$/;
const REAL = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

// A SQL literal for text value `v` of a column of `type` (booleans are stored as 1 and 0).
export function literal(v, type) {
  if (v === null || v === undefined) return 'NULL';
  const s = String(v);
  if (type === 'integer' && INT.test(s)) return s;
  if (type === 'real' && REAL.test(s)) return s;
  if (type === 'boolean' && /^(true|false|1|0)$/i.test(s)) return /^(true|1)$/i.test(s) ? '1' : '0';
  if (type === 'rowid' && INT.test(s)) return s;
  return "'" + s.replace(/'/g, "''") + "'";
}

export const FILTER_OPS = [
  ['eq', 'is'],
  ['ne', 'is not'],
  ['contains', 'contains'],
  ['lt', '<'],
  ['le', '≤'],
  ['gt', '>'],
  ['ge', '≥'],
  ['null', 'is NULL'],
  ['notnull', 'is not NULL'],
];

// The WHERE condition of a filter on column `col` of `type`, or '' when there is none.
export function filterSql(col, type, op, value) {
  if (!col || !op) return '';
  const c = ident(col);
  switch (op) {
    case 'null':
      return `${c} IS NULL`;
    case 'notnull':
      return `${c} IS NOT NULL`;
    case 'eq':
      return `${c} = ${literal(value, type)}`;
    case 'ne':
      return `${c} IS NOT ${literal(value, type)}`;
    case 'lt':
      return `${c} < ${literal(value, type)}`;
    case 'le':
      return `${c} <= ${literal(value, type)}`;
    case 'gt':
      return `${c} > ${literal(value, type)}`;
    case 'ge':
      return `${c} >= ${literal(value, type)}`;
    case 'contains': {
      const esc = String(value ?? '').replace(/[\\%_]/g, (m) => '\\' + m);
      return `${c} LIKE ${literal('%' + esc + '%', 'text')} ESCAPE '\\'`;
    }
    default:
      return '';
  }
}

// Rows strictly after (`greater`) or before position `vals` in ascending (sort, keys...) order.
// cols: [{name, type}] = the order columns, the first one the (nullable) sort column when
// `sorted`, the rest the key. vals: their values at the position.
export function beyond(cols, vals, greater, sorted) {
  const op = greater ? '>' : '<';
  const tuple = (cs, vs) => [
    '(' + cs.map((c) => ident(c.name)).join(', ') + ')',
    '(' + cs.map((c, i) => literal(vs[i], c.type)).join(', ') + ')',
  ];
  if (!sorted) {
    const [a, b] = tuple(cols, vals);
    return `${a} ${op} ${b}`;
  }
  const s = ident(cols[0].name);
  const rest = cols.slice(1);
  const restCmp = () => {
    const [a, b] = tuple(rest, vals.slice(1));
    return `${a} ${op} ${b}`;
  };
  const v = vals[0];
  if (v === null || v === undefined) {
    // NULLs come first: after a NULL, the later NULLs and every non-NULL; before it, earlier NULLs.
    if (greater) return rest.length ? `((${s} IS NULL AND ${restCmp()}) OR ${s} IS NOT NULL)` : `${s} IS NOT NULL`;
    return rest.length ? `(${s} IS NULL AND ${restCmp()})` : '0';
  }
  const lit = literal(v, cols[0].type);
  const tie = rest.length ? ` OR (${s} = ${lit} AND ${restCmp()})` : '';
  if (greater) return `(${s} > ${lit}${tie})`;
  return `(${s} < ${lit}${tie} OR ${s} IS NULL)`;
}

// The query of one page. dir: 'asc' or 'desc' (the person's order); cursor: {after|before|from:
// values}; n: rows wanted (one more is asked to know whether there is a further page).
// Returns {sql, reversed}: reversed rows (a page before the cursor) are to be flipped back.
export function pageSql({ table, select, where, order, sorted, desc, cursor, n }) {
  const conds = where ? [where] : [];
  let forward = true;
  if (cursor && cursor.after) {
    conds.push(beyond(order, cursor.after, !desc, sorted));
  } else if (cursor && cursor.before) {
    conds.push(beyond(order, cursor.before, !!desc, sorted));
    forward = false;
  } else if (cursor && cursor.from) {
    const [a, b] = [
      '(' + order.map((c) => ident(c.name)).join(', ') + ')',
      '(' + order.map((c, i) => literal(cursor.from[i], c.type)).join(', ') + ')',
    ];
    conds.push(`${a} >= ${b}`);
  }
  const asc = forward !== !!desc;
  const dirWord = asc ? 'ASC' : 'DESC';
  const sql =
    `SELECT ${select} FROM ${ident(table)}` +
    (conds.length ? ` WHERE ${conds.map((c) => `(${c})`).join(' AND ')}` : '') +
    ` ORDER BY ${order.map((c) => `${ident(c.name)} ${dirWord}`).join(', ')} LIMIT ${n + 1}`;
  return { sql, reversed: !forward };
}
