#!/usr/bin/env node
// lakecheck runs one SQL query with DuckDB over a local Causality event lake
// and prints the result rows as JSON lines. It exists for tests: the Go
// package appliance/warehouse/laketest drives it to check, with an engine
// other than the writer, that the lake reads the way DESIGN.md promises.
//
//	node lakecheck.mjs [--autocast | --no-autocast] [--hive-types T] <lake-root> <sql | ->
//
// <lake-root> is the directory that holds events/ (the warehouse root, a
// local path). A view named `events` is defined as
//
//	read_parquet('<lake-root>/events/**/*.parquet', hive_partitioning = true)
//
// so the partition columns app_id, year, month, day and hour come from the
// path. --autocast / --no-autocast pass hive_types_autocast = true / false
// explicitly; without either, DuckDB's default applies. --hive-types passes
// DuckDB's hive_types option verbatim, e.g. "{'app_id': VARCHAR}" (DuckDB
// types an app_id partition whose values all look like integers as BIGINT
// otherwise). An SQL argument of "-" reads the query from standard input.
//
// Output: one JSON object per row, keys in column order. Values are
// converted so that nothing is lost in JSON:
//   - every integer type (TINYINT ... HUGEINT, unsigned ones too) is a JSON
//     number written with all its digits, also past 2^53; parse it with
//     arbitrary precision (Go: json.Decoder.UseNumber);
//   - FLOAT/DOUBLE are numbers, except NaN and ±Infinity, which are strings;
//   - DECIMAL is a string with its exact digits;
//   - every TIMESTAMP flavour (with or without time zone, s/ms/us/ns) is an
//     ISO 8601 string in UTC ending in "Z", with milliseconds, extended to
//     micro- or nanoseconds only when those digits are not zero
//     ("2026-11-07T03:04:05.678Z"); ±infinity timestamps are "infinity" and
//     "-infinity". A TIMESTAMP without time zone is read as UTC wall time,
//     which is how Parquet and Hive store it;
//   - DATE is "YYYY-MM-DD"; other types follow @duckdb/node-api's JSON
//     conversion (strings for TIME, UUID, BLOB; arrays/objects for nested).
// The session time zone is UTC, so casts to text inside the query are
// deterministic too.
//
// Errors go to standard error. Exit status: 1 for a failed query (bad SQL,
// unreadable file), 2 for a usage error, 3 when no file matches the glob
// (an empty lake: DuckDB cannot define the view then) and the query needed
// the events view.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  DuckDBInstance,
  DuckDBTypeId,
  JsonDuckDBValueConverter,
} from '@duckdb/node-api';

const EXIT_EMPTY = 3;

function usage(msg) {
  if (msg) process.stderr.write(`lakecheck: ${msg}\n`);
  process.stderr.write(
    'usage: node lakecheck.mjs [--autocast | --no-autocast] [--hive-types T] <lake-root> <sql | ->\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  let autocast;
  let hiveTypes;
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--autocast') autocast = true;
    else if (a === '--no-autocast') autocast = false;
    else if (a === '--hive-types') {
      if (i + 1 >= argv.length) usage('--hive-types wants a value');
      hiveTypes = argv[++i];
    }
    else if (a === '--') positional.push(...argv.slice(i + 1)), (i = argv.length);
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('--')) usage(`unknown flag ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 2) usage('want exactly <lake-root> and <sql>');
  let [root, sql] = positional;
  if (sql === '-') sql = readFileSync(0, 'utf8');
  if (sql.trim() === '') usage('empty SQL');
  return { root, sql, autocast, hiveTypes };
}

// sqlString quotes s as an SQL string literal.
function sqlString(s) {
  return `'${s.replaceAll("'", "''")}'`;
}

// DuckDB expands glob characters anywhere in a read_parquet path, so a root
// containing them would silently read a different set of files.
function checkRoot(root) {
  if (/[*?[\]{}]/.test(root)) {
    usage(`lake root ${JSON.stringify(root)} contains a glob character (* ? [ ] { })`);
  }
}

const pad = (n, w) => String(n).padStart(w, '0');

// isoUTC renders an instant given as a whole count of units since the Unix
// epoch (unitsPerSecond = 1, 1e3, 1e6 or 1e9) as an ISO 8601 UTC string.
function isoUTC(count, unitsPerSecond) {
  const per = BigInt(unitsPerSecond);
  let secs = count / per;
  let frac = count % per;
  if (frac < 0n) {
    frac += per;
    secs -= 1n;
  }
  const date = new Date(Number(secs) * 1000);
  if (Number.isNaN(date.getTime())) return null; // outside Date's range
  const year = date.getUTCFullYear();
  const yearText =
    year >= 0 && year <= 9999 ? pad(year, 4) : (year < 0 ? '-' : '+') + pad(Math.abs(year), 6);
  // Fraction as nanoseconds, then trimmed to 3, 6 or 9 digits.
  let nanos = pad((frac * 1_000_000_000n) / per, 9);
  if (nanos.endsWith('000000')) nanos = nanos.slice(0, 3);
  else if (nanos.endsWith('000')) nanos = nanos.slice(0, 6);
  return (
    `${yearText}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)}` +
    `T${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}` +
    `.${nanos}Z`
  );
}

function timestampJSON(value, count, unitsPerSecond) {
  if (!value.isFinite) return count > 0n ? 'infinity' : '-infinity';
  return isoUTC(count, unitsPerSecond) ?? value.toString();
}

const integerTypes = new Set([
  DuckDBTypeId.TINYINT,
  DuckDBTypeId.SMALLINT,
  DuckDBTypeId.INTEGER,
  DuckDBTypeId.BIGINT,
  DuckDBTypeId.HUGEINT,
  DuckDBTypeId.UTINYINT,
  DuckDBTypeId.USMALLINT,
  DuckDBTypeId.UINTEGER,
  DuckDBTypeId.UBIGINT,
  DuckDBTypeId.UHUGEINT,
]);

// convert is a DuckDBValueConverter: integers stay exact (bigint, written
// raw by toJSONText), timestamps become ISO UTC strings, and everything else
// is @duckdb/node-api's JSON conversion, which recurses into nested values
// through this function so the rules above hold inside lists and structs.
function convert(value, type, self) {
  if (value == null) return null;
  if (integerTypes.has(type.typeId)) return BigInt(value);
  switch (type.typeId) {
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_TZ:
      return timestampJSON(value, value.micros, 1_000_000);
    case DuckDBTypeId.TIMESTAMP_MS:
      return timestampJSON(value, value.millis, 1_000);
    case DuckDBTypeId.TIMESTAMP_S:
      return timestampJSON(value, value.seconds, 1);
    case DuckDBTypeId.TIMESTAMP_NS:
      return timestampJSON(value, value.nanos, 1_000_000_000);
    default:
      return JsonDuckDBValueConverter(value, type, self);
  }
}

// toJSONText is JSON.stringify that also writes bigint values as plain JSON
// numbers with every digit (JSON.stringify throws on bigint).
function toJSONText(v) {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'bigint':
      return v.toString();
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : JSON.stringify(String(v));
    case 'string':
    case 'boolean':
      return JSON.stringify(v);
    case 'object':
      if (Array.isArray(v)) return `[${v.map(toJSONText).join(',')}]`;
      return `{${Object.entries(v)
        .map(([k, x]) => `${JSON.stringify(k)}:${toJSONText(x)}`)
        .join(',')}}`;
    default:
      throw new Error(`cannot render ${typeof v} as JSON`);
  }
}

async function main() {
  const { root, sql, autocast, hiveTypes } = parseArgs(process.argv.slice(2));
  checkRoot(root);
  const glob = path.join(path.resolve(root), 'events', '**', '*.parquet');
  const options = ['hive_partitioning = true'];
  if (autocast !== undefined) options.push(`hive_types_autocast = ${autocast}`);
  if (hiveTypes !== undefined) options.push(`hive_types = ${hiveTypes}`);

  const instance = await DuckDBInstance.create(':memory:', {
    // Everything needed (parquet, json, icu) is built in; never reach out.
    autoinstall_known_extensions: 'false',
    threads: '2',
  });
  const conn = await instance.connect();
  try {
    await conn.run(`SET TimeZone = 'UTC'`);
    let empty = false;
    try {
      await conn.run(
        `CREATE VIEW events AS SELECT * FROM read_parquet(${sqlString(glob)}, ${options.join(', ')})`,
      );
    } catch (err) {
      // DuckDB binds the view at once and refuses a glob that matches no
      // file. Leave the view out: a query that does not need it still runs.
      if (!/No files found that match the pattern/.test(err?.message ?? '')) throw err;
      empty = true;
    }
    let result;
    try {
      result = await conn.run(sql);
    } catch (err) {
      if (!empty || !/Table with name events does not exist/.test(err?.message ?? '')) throw err;
      process.stderr.write(`lakecheck: the lake is empty: no file matches ${glob}\n`);
      process.exitCode = EXIT_EMPTY;
      return;
    }
    const names = result.deduplicatedColumnNames();
    const out = [];
    for await (const rows of result.yieldConvertedRows(convert)) {
      for (const row of rows) {
        const obj = {};
        names.forEach((n, i) => (obj[n] = row[i]));
        out.push(toJSONText(obj));
        if (out.length >= 1024) {
          process.stdout.write(out.join('\n') + '\n');
          out.length = 0;
        }
      }
    }
    if (out.length > 0) process.stdout.write(out.join('\n') + '\n');
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

main().catch((err) => {
  process.stderr.write(`lakecheck: ${err?.message ?? err}\n`);
  process.exitCode = 1;
});
