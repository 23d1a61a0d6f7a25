#!/usr/bin/env node
// Differential check: node mysql2 (promise API) direct vs. through the proxy.
//
// Usage:
//   node mysql2_check.js --direct HOST:PORT --direct-user U --direct-password P
//        --direct-db PHYSICAL_DB --proxy HOST:PORT --proxy-user U
//        --proxy-password P --proxy-db LOGICAL_DB
//
// Creates a uniquely named fixture table in PHYSICAL_DB over the direct
// connection, runs each check over both connections (text protocol `query`
// and binary protocol `execute`/`prepare`), compares values and the `fields`
// metadata, and drops the table.  Exit 0 if everything matched, 1 on any
// difference, 2 on setup failure.
'use strict';

const crypto = require('crypto');
const path = require('path');

let mysql;
try {
  mysql = require('mysql2/promise');
} catch (e) {
  try {
    mysql = require(path.join(__dirname, 'node_modules', 'mysql2', 'promise'));
  } catch (e2) {
    console.log('mysql2 is not installed (cd integration/drivers && npm install)');
    process.exit(2);
  }
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

function parseArgs(argv) {
  const want = ['direct', 'direct-user', 'direct-password', 'direct-db',
    'proxy', 'proxy-user', 'proxy-password', 'proxy-db'];
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let m = /^--([a-z-]+)=(.*)$/s.exec(a);
    if (m) {
      out[m[1]] = m[2];
      continue;
    }
    m = /^--([a-z-]+)$/.exec(a);
    if (m && i + 1 < argv.length) {
      out[m[1]] = argv[++i];
      continue;
    }
    usage(`unexpected argument ${JSON.stringify(a)}`);
  }
  for (const k of Object.keys(out)) {
    if (!want.includes(k)) usage(`unknown option --${k}`);
  }
  for (const k of want) {
    if (out[k] === undefined) {
      if (k.endsWith('-password')) out[k] = '';
      else usage(`missing --${k}`);
    }
  }
  return out;
}

function usage(msg) {
  console.log(`error: ${msg}`);
  console.log('usage: node mysql2_check.js --direct HOST:PORT --direct-user U --direct-password P ' +
    '--direct-db PHYSICAL_DB --proxy HOST:PORT --proxy-user U --proxy-password P --proxy-db LOGICAL_DB');
  process.exit(2);
}

function hostPort(s) {
  const i = s.lastIndexOf(':');
  if (i <= 0) usage(`expected HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

const args = parseArgs(process.argv.slice(2));
const PHYSICAL_DB = args['direct-db'];
const DIRECT = {
  label: 'direct', ...hostPort(args.direct), user: args['direct-user'],
  password: args['direct-password'], db: args['direct-db'],
};
const PROXY = {
  label: 'proxy', ...hostPort(args.proxy), user: args['proxy-user'],
  password: args['proxy-password'], db: args['proxy-db'],
};

// The proxy may report a column's schema either as the physical database
// (pass-through) or as the logical name the client asked for; both are fine.
function normSchema(side, v) {
  return v === side.db ? PHYSICAL_DB : v;
}

const SUFFIX = `${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
const T = `drv_mysql2_${SUFFIX}`;

const CREATE_TABLE =
  `CREATE TABLE \`${T}\` (` +
  ' id INT NOT NULL PRIMARY KEY,' +
  ' i INT,' +
  ' bu BIGINT UNSIGNED,' +
  ' d DECIMAL(10,2),' +
  ' dbl DOUBLE,' +
  ' vc VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,' +
  ' tx TEXT,' +
  ' bl BLOB,' +
  ' dt DATE,' +
  ' dtm DATETIME(6),' +
  ' ts TIMESTAMP NULL DEFAULT NULL,' +
  ' js JSON' +
  ') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci';

const INSERT_ROWS =
  `INSERT INTO \`${T}\` VALUES ` +
  "(1, 42, 18446744073709551615, -12345678.90, 3.141592653589793," +
  " 'héllo 👋', 'some text\\nsecond line', X'00FF0102037F80FE00'," +
  " '2024-02-29', '2024-02-29 13:45:56.123456', '2024-02-29 13:45:56'," +
  " '{\"a\": [1, 2, {\"b\": null}], \"e\": \"👋\"}')," +
  "(2, -7, 0, 0.01, -1.5e300, '', '', X'', '1970-01-01'," +
  " '1000-01-01 00:00:00.000001', '2001-09-09 01:46:40', '[]')," +
  '(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),' +
  '(4, 2147483647, 9223372036854775808, 99999999.99, 0,' +
  " 'ASCII only', REPEAT('0123456789', 500), X'FF00FF00'," +
  " '9999-12-31', '9999-12-31 23:59:59.999999', '2030-06-15 12:00:00'," +
  " 'null')";

// ---------------------------------------------------------------------------
// Normalisation and diff
// ---------------------------------------------------------------------------

const STATUS_MASK = 0x0001 | 0x0002 | 0x0008; // IN_TRANS | AUTOCOMMIT | MORE_RESULTS_EXISTS

function normValue(v) {
  if (v === null) return null;
  if (v === undefined) return 'undefined';
  if (Buffer.isBuffer(v)) return `Buffer(hex:${v.toString('hex')})`;
  if (v instanceof Date) return `Date(${isNaN(v.getTime()) ? 'Invalid' : v.toISOString()})`;
  if (typeof v === 'bigint') return `bigint(${v})`;
  if (typeof v === 'number') return `number(${Object.is(v, -0) ? '-0' : String(v)})`;
  if (typeof v === 'string') return `string(${JSON.stringify(v)})`;
  if (typeof v === 'boolean') return `boolean(${v})`;
  if (Array.isArray(v)) return v.map(normValue);
  if (typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v)) o[k] = normValue(v[k]);
    return o;
  }
  return `${typeof v}(${String(v)})`;
}

function normField(side, f) {
  if (!f) return f;
  const o = {
    catalog: f.catalog,
    schema: normSchema(side, f.schema),
    table: f.table,
    orgTable: f.orgTable,
    name: f.name,
    orgName: f.orgName,
    characterSet: f.characterSet,
    encoding: f.encoding,
    columnLength: f.columnLength,
    columnType: f.columnType,
    type: f.type,
    flags: f.flags,
    decimals: f.decimals,
  };
  // MariaDB extended metadata (only present when negotiated)
  if (f.extendedTypeName !== undefined) o.extendedTypeName = f.extendedTypeName;
  if (f.extendedFormat !== undefined) o.extendedFormat = f.extendedFormat;
  return o;
}

function normFields(side, fields) {
  if (fields === undefined) return 'undefined';
  if (fields === null) return null;
  if (Array.isArray(fields) && fields.length && Array.isArray(fields[0])) {
    return fields.map((fs) => normFields(side, fs));
  }
  if (Array.isArray(fields)) return fields.map((f) => (f ? normField(side, f) : f));
  return normField(side, fields);
}

function isHeader(r) {
  return r && typeof r === 'object' && !Array.isArray(r) && 'affectedRows' in r;
}

function normHeader(h) {
  return {
    fieldCount: h.fieldCount,
    affectedRows: h.affectedRows,
    insertIdKind: typeof h.insertId === 'number' ? (h.insertId > 0 ? 'positive' : String(h.insertId)) : typeof h.insertId,
    info: h.info,
    serverStatusMasked: typeof h.serverStatus === 'number' ? h.serverStatus & STATUS_MASK : h.serverStatus,
    warningStatus: h.warningStatus,
    changedRows: h.changedRows,
  };
}

function normResult(side, [rows, fields]) {
  let r;
  if (isHeader(rows)) r = { header: normHeader(rows) };
  else if (Array.isArray(rows)) {
    r = {
      rows: rows.map((x) => (isHeader(x) ? { header: normHeader(x) } : normValue(x))),
    };
  } else r = { rows: normValue(rows) };
  r.fields = normFields(side, fields);
  return r;
}

function normError(e) {
  return {
    code: e.code, errno: e.errno, sqlState: e.sqlState, sqlMessage: e.sqlMessage,
    fatal: e.fatal === undefined ? 'undefined' : e.fatal,
  };
}

function flatten(obj, prefix, out) {
  if (obj !== null && typeof obj === 'object') {
    const keys = Object.keys(obj);
    if (keys.length === 0) out[prefix || '.'] = Array.isArray(obj) ? '[]' : '{}';
    for (const k of keys) {
      const p = Array.isArray(obj) ? `${prefix}[${k}]` : (prefix ? `${prefix}.${k}` : k);
      flatten(obj[k], p, out);
    }
  } else {
    out[prefix || '.'] = obj;
  }
  return out;
}

function short(v, width = 300) {
  const s = v === undefined ? 'undefined' : JSON.stringify(v);
  return s.length > width ? `${s.slice(0, width)}...(${s.length} chars)` : s;
}

function diffLines(a, b, limit = 60) {
  const fa = flatten(a, '', {});
  const fb = flatten(b, '', {});
  const keys = [...Object.keys(fa), ...Object.keys(fb).filter((k) => !(k in fa))];
  const lines = [];
  for (const k of keys) {
    if (!(k in fb)) lines.push(`  ${k}: direct=${short(fa[k])}  proxy=<missing>`);
    else if (!(k in fa)) lines.push(`  ${k}: direct=<missing>  proxy=${short(fb[k])}`);
    else if (fa[k] !== fb[k]) lines.push(`  ${k}: direct=${short(fa[k])}  proxy=${short(fb[k])}`);
  }
  if (lines.length > limit) {
    const more = lines.length - limit;
    lines.length = limit;
    lines.push(`  ... and ${more} more differences`);
  }
  return lines;
}

function stable(v) {
  return JSON.stringify(flatten(v, '', {}));
}

// ---------------------------------------------------------------------------
// Runner
// ---------------------------------------------------------------------------

let passed = 0;
let failed = 0;

async function runSide(fn, side) {
  try {
    return { ok: true, value: await fn(side) };
  } catch (e) {
    return { ok: false, error: e };
  }
}

async function check(name, fn) {
  const full = `mysql2: ${name}`;
  const rd = await runSide(fn, DIRECT);
  const rp = await runSide(fn, PROXY);
  for (const [label, r] of [['direct', rd], ['proxy', rp]]) {
    if (!r.ok) {
      failed++;
      console.log(`FAIL ${full}  (unexpected exception on ${label} side)`);
      console.log(`  ${r.error && r.error.code ? r.error.code + ': ' : ''}${r.error && r.error.message}`);
      const stack = String((r.error && r.error.stack) || '').split('\n')
        .filter((l) => l.includes(__filename));
      for (const line of stack) console.log(`    | ${line.trim()}`);
      return false;
    }
  }
  if (process.env.DRV_CHECK_DUMP) {
    console.log(`---- ${full} (direct result)`);
    console.log(JSON.stringify(rd.value, null, 1));
  }
  if (stable(rd.value) === stable(rp.value)) {
    passed++;
    console.log(`ok   ${full}`);
    return true;
  }
  failed++;
  console.log(`FAIL ${full}  (direct and proxy differ)`);
  for (const line of diffLines(rd.value, rp.value)) console.log(line);
  return false;
}

const STRINGS_OPTS = { supportBigNumbers: true, bigNumberStrings: true, dateStrings: true };

async function connect(side, extra = {}) {
  return mysql.createConnection({
    host: side.host,
    port: side.port,
    user: side.user,
    password: side.password,
    database: side.db,
    connectTimeout: 10000,
    ...extra,
  });
}

async function withConn(side, extra, fn) {
  const conn = await connect(side, extra);
  try {
    return await fn(conn);
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}

async function directCount(where) {
  return withConn(DIRECT, {}, async (c) => {
    const [rows] = await c.query(`SELECT COUNT(*) AS n FROM \`${T}\` WHERE ${where}`);
    return Number(rows[0].n);
  });
}

async function directRows(sql) {
  return withConn(DIRECT, STRINGS_OPTS, async (c) => normValue((await c.query(sql))[0]));
}

async function captureError(p) {
  try {
    await p;
    return 'no error raised';
  } catch (e) {
    return normError(e);
  }
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

const CTE = 'WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 1000) ';

async function checks() {
  for (const [optName, opts] of [['string opts', STRINGS_OPTS], ['default opts', {}]]) {
    await check(`query (text) SELECT * values+fields [${optName}]`, (side) =>
      withConn(side, opts, async (c) =>
        normResult(side, await c.query(`SELECT * FROM \`${T}\` ORDER BY id`))));

    await check(`execute (binary) SELECT * values+fields [${optName}]`, (side) =>
      withConn(side, opts, async (c) => ({
        all: normResult(side, await c.execute(`SELECT * FROM \`${T}\` WHERE id >= ? ORDER BY id`, [0])),
        byId: normResult(side, await c.execute(`SELECT * FROM \`${T}\` WHERE id = ?`, [1])),
        rowsAsArray: normResult(side, await c.execute({
          sql: `SELECT * FROM \`${T}\` WHERE id = ?`, rowsAsArray: true,
        }, [3])),
      })));
  }

  await check('query expression columns values+fields', (side) =>
    withConn(side, STRINGS_OPTS, async (c) => normResult(side, await c.query(
      "SELECT 1 AS one, 'x' AS s, NULL AS n, 1.50 AS dec_lit, 2.5e0 AS dbl_lit, X'00FF' AS bin_lit," +
      ' 18446744073709551615 AS big, id + 1 AS id1, UPPER(vc) AS up, LENGTH(bl) AS bl_len' +
      ` FROM \`${T}\` ORDER BY id`))));

  await check('execute with parameters of several types', (side) =>
    withConn(side, STRINGS_OPTS, async (c) => {
      const out = {};
      out.echo = normResult(side, await c.execute(
        'SELECT ? AS i, ? AS neg, ? AS f, ? AS s, ? AS n, ? AS b, ? AS big, ? AS bool',
        [7, -123456789, 0.25, 'héllo 👋', null, Buffer.from([0, 255, 0x27, 0x5c]), 9007199254740993n, true]));
      out.whereString = normResult(side, await c.execute(
        `SELECT id, vc FROM \`${T}\` WHERE vc = ? OR id = ? ORDER BY id`, ['héllo 👋', 4]));
      out.whereNull = normResult(side, await c.execute(
        `SELECT id FROM \`${T}\` WHERE i <=> ? ORDER BY id`, [null]));
      const ins = `INSERT INTO \`${T}\` (id, i, bu, d, dbl, vc, tx, bl, dt, dtm, ts, js)` +
        ' VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
      try {
        out.insert = normResult(side, await c.execute(ins, [
          301, -42, '18446744073709551615', '-1234.56', 2.718281828459045, 'héllo 👋 execute',
          'long text '.repeat(100), Buffer.from([0, 255, 0, 98, 105, 110, 254, 0]), '2023-12-31',
          '2023-12-31 23:59:58.987654', '2023-06-01 12:00:01', '{"k": "👋", "n": [1, 2]}',
        ]));
        out.insertNulls = normResult(side, await c.execute(ins, [302, null, null, null, null, null,
          null, null, null, null, null, null]));
        out.insertDateObj = normResult(side, await c.execute(
          `INSERT INTO \`${T}\` (id, dtm, ts) VALUES (?, ?, ?)`,
          [303, new Date(2022, 0, 2, 3, 4, 5, 678), new Date(2022, 6, 1, 10, 20, 30)]));
        out.readBackExecute = normResult(side, await c.execute(
          `SELECT * FROM \`${T}\` WHERE id BETWEEN ? AND ? ORDER BY id`, [301, 303]));
        out.readBackQuery = normResult(side, await c.query(
          `SELECT * FROM \`${T}\` WHERE id BETWEEN 301 AND 303 ORDER BY id`));
        out.readBackDirect = await directRows(`SELECT * FROM \`${T}\` WHERE id BETWEEN 301 AND 303 ORDER BY id`);
      } finally {
        await c.query(`DELETE FROM \`${T}\` WHERE id BETWEEN 301 AND 303`);
      }
      return out;
    }));

  await check('prepare once, execute many (statement metadata, varying params)', (side) =>
    withConn(side, STRINGS_OPTS, async (c) => {
      const out = {};
      const s1 = await c.prepare(`SELECT id, i, vc, dtm FROM \`${T}\` WHERE id = ?`);
      const s2 = await c.prepare(`SELECT id, bu, d FROM \`${T}\` WHERE id BETWEEN ? AND ? ORDER BY id`);
      out.s1Columns = normFields(side, s1.statement.columns);
      out.s1Parameters = normFields(side, s1.statement.parameters);
      out.s2Columns = normFields(side, s2.statement.columns);
      out.s2Parameters = normFields(side, s2.statement.parameters);
      out.runs = [];
      for (const p of [3, 1, 999, 2, 4, 1]) {
        out.runs.push(normResult(side, await s1.execute([p])));
        out.runs.push(normResult(side, await s2.execute([p, p + 1])));
      }
      await s1.close();
      await s2.close();
      out.afterClose = normResult(side, await c.query('SELECT 1 AS still_alive'));
      return out;
    }));

  await check('multipleStatements query', (side) =>
    withConn(side, { ...STRINGS_OPTS, multipleStatements: true }, async (c) => ({
      two: normResult(side, await c.query('SELECT 1 AS a; SELECT \'x\' AS b, 2 AS c')),
      mixed: normResult(side, await c.query(
        `SELECT id, vc FROM \`${T}\` WHERE id = 1; DO 1; SELECT COUNT(*) AS n FROM \`${T}\``)),
      errorInSecond: await captureError(c.query('SELECT 10 AS first; SELEC 2')),
      after: normResult(side, await c.query('SELECT 3 AS after')),
    })));

  await check('error then good query (query and execute)', (side) =>
    withConn(side, STRINGS_OPTS, async (c) => {
      const out = {};
      out.querySyntax = await captureError(c.query('SELEC 1'));
      out.queryThenGood = normResult(side, await c.query('SELECT 42 AS answer'));
      out.executeSyntax = await captureError(c.execute('SELEC ?', [1]));
      out.executeThenGood = normResult(side, await c.execute('SELECT ? + 1 AS answer', [41]));
      out.unknownColumn = await captureError(c.query(`SELECT nosuchcol FROM \`${T}\``));
      out.duplicateKey = await captureError(c.execute(`INSERT INTO \`${T}\` (id) VALUES (?)`, [1]));
      out.finalGood = normResult(side, await c.execute(`SELECT id FROM \`${T}\` WHERE id = ?`, [2]));
      return out;
    }));

  await check('BEGIN/INSERT/ROLLBACK', (side) =>
    withConn(side, STRINGS_OPTS, async (c) => {
      const out = {};
      out.begin = normResult(side, await c.query('BEGIN'));
      out.insert = normResult(side, await c.query(`INSERT INTO \`${T}\` (id, vc) VALUES (960, 'tx')`));
      out.inside = normResult(side, await c.query(`SELECT id, vc FROM \`${T}\` WHERE id = 960`));
      out.directSeesUncommitted = await directCount('id = 960');
      out.rollback = normResult(side, await c.query('ROLLBACK'));
      out.afterSameConn = normResult(side, await c.query(`SELECT COUNT(*) AS n FROM \`${T}\` WHERE id = 960`));
      out.afterDirect = await directCount('id = 960');

      await c.beginTransaction();
      out.apiInsert = normResult(side, await c.execute(`INSERT INTO \`${T}\` (id, vc) VALUES (?, ?)`, [961, 'tx2']));
      out.apiDirectSeesUncommitted = await directCount('id = 961');
      await c.rollback();
      out.apiAfterSameConn = normResult(side, await c.execute(`SELECT COUNT(*) AS n FROM \`${T}\` WHERE id = ?`, [961]));
      out.apiAfterDirect = await directCount('id = 961');
      return out;
    }));

  await check('1000-row result via query and execute (count/sum/rows)', (side) =>
    withConn(side, STRINGS_OPTS, async (c) => {
      const sql = CTE + "SELECT n, n * n AS sq, REPEAT('x', MOD(n, 97)) AS pad FROM seq";
      const out = {};
      for (const [label, r] of [['query', await c.query(sql)], ['execute', await c.execute(sql, [])]]) {
        const rows = r[0];
        out[label] = {
          count: rows.length,
          sum: rows.reduce((acc, x) => acc + Number(x.n), 0),
          sha256: crypto.createHash('sha256').update(JSON.stringify(normValue(rows))).digest('hex'),
          fields: normFields(side, r[1]),
        };
      }
      out.agg = normResult(side, await c.query(CTE + 'SELECT COUNT(*) AS c, SUM(n) AS s FROM seq'));
      return out;
    }));

  await check('ping', (side) =>
    withConn(side, {}, async (c) => {
      await c.ping();
      return { ping: 'ok', after: normResult(side, await c.query('SELECT 1 AS one')) };
    }));
}

async function main() {
  let setup;
  try {
    setup = await connect(DIRECT);
  } catch (e) {
    console.log(`setup: cannot connect to direct ${DIRECT.host}:${DIRECT.port}: ${e.message}`);
    return 2;
  }
  try {
    await setup.query(CREATE_TABLE);
    await setup.query(INSERT_ROWS);
    let proxyOk = true;
    try {
      await withConn(PROXY, {}, (c) => c.ping());
    } catch (e) {
      proxyOk = false;
      failed++;
      console.log(`FAIL mysql2: connect to proxy ${PROXY.host}:${PROXY.port} as ${JSON.stringify(PROXY.user)}` +
        ` db ${JSON.stringify(PROXY.db)}  ${e.code || ''} ${e.message}`);
    }
    if (proxyOk) await checks();
  } catch (e) {
    failed++;
    console.log(`FAIL mysql2: setup/run aborted: ${e && e.stack}`);
  } finally {
    try {
      await setup.query(`DROP TABLE IF EXISTS \`${T}\``);
    } catch (e) {
      try {
        await withConn(DIRECT, {}, (c) => c.query(`DROP TABLE IF EXISTS \`${T}\``));
      } catch (e2) {
        console.log(`warning: cleanup failed: ${e2.message}`);
      }
    }
    await setup.end().catch(() => setup.destroy());
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.log(`fatal: ${e && e.stack}`);
    process.exit(2);
  },
);
