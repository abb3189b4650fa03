// filehead.js: the column names of a data file, read in the browser from its first 64 KiB, so the
// upload page can offer them as the primary key before anything is sent. CSV follows RFC 4180
// (quoted fields, doubled quotes, CRLF, a UTF-8 BOM); TSV and PSV use their delimiter; JSON is
// DoltHub's {"rows":[{...}]}, an array of rows or JSON lines, and the first row's keys are the
// columns.

export function typeOf(fileName) {
  const ext = (fileName.split('.').pop() || '').toLowerCase();
  return { csv: 'Csv', tsv: 'Tsv', psv: 'Psv', json: 'Json', jsonl: 'Json', ndjson: 'Json' }[ext] || 'Csv';
}

export function csvHeader(text, delim) {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const fields = [];
  let i = 0;
  let field = '';
  let quoted = false;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        field += ch;
      }
      i++;
      continue;
    }
    if (ch === '"' && field === '') {
      quoted = true;
    } else if (ch === delim) {
      fields.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      break;
    } else {
      field += ch;
    }
    i++;
  }
  if (quoted) throw new Error('the header line is longer than what was read, or a quote is not closed');
  fields.push(field);
  return fields.map((f) => f.trim());
}

export function jsonHeader(text) {
  let start;
  const wrapper = /^\s*\{\s*"rows"\s*:\s*\[/.exec(text);
  if (wrapper) start = text.indexOf('{', wrapper[0].length);
  else if (/^\s*\[/.test(text)) start = text.indexOf('{');
  else start = text.indexOf('{');
  if (start < 0) throw new Error('no JSON object found at the start of the file');
  let depth = 0;
  let inStr = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inStr) {
      if (ch === '\\') i++;
      else if (ch === '"') inStr = false;
    } else if (ch === '"') {
      inStr = true;
    } else if (ch === '{' || ch === '[') {
      depth++;
    } else if (ch === '}' || ch === ']') {
      depth--;
      if (depth === 0) {
        const row = JSON.parse(text.slice(start, i + 1));
        if (row === null || typeof row !== 'object' || Array.isArray(row)) throw new Error('the first row is not a JSON object');
        return Object.keys(row);
      }
    }
  }
  throw new Error('the first row is longer than what was read');
}

// The column names of `file` (a File) of DoltHub file type `type`.
export async function readHeader(file, type) {
  const text = await file.slice(0, 65536).text();
  if (type === 'Json') return jsonHeader(text);
  return csvHeader(text, type === 'Tsv' ? '\t' : type === 'Psv' ? '|' : ',');
}
