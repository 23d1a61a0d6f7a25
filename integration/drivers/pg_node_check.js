#!/usr/bin/env node
// Differential check: node-postgres (`pg`) direct vs. through the proxy.
//
// Same arguments as the other checks (see README.md). Creates a uniquely named
// fixture table in PHYSICAL_DB over the direct connection, runs each check on
// both connections and compares values and the raw RowDescription each driver
// exposes in `fields` (name, tableID, columnID, dataTypeID, dataTypeSize,
// dataTypeModifier, format), then drops the table. Exit 0 if everything
// matched, 1 on any difference, 2 on a usage or setup error.
'use strict';

const crypto = require('crypto');
const util = require('util');
const { Client } = require('pg');

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    let m = /^--([a-z-]+)=(.*)$/s.exec(argv[i]);
    if (m) { out[m[1]] = m[2]; continue; }
    m = /^--([a-z-]+)$/.exec(argv[i]);
    if (m && i + 1 < argv.length) { out[m[1]] = argv[++i]; continue; }
    console.log(`unexpected argument ${argv[i]}`);
    process.exit(2);
  }
  for (const k of ['direct', 'direct-user', 'direct-db', 'proxy', 'proxy-user', 'proxy-db']) {
    if (out[k] === undefined) { console.log(`missing --${k}`); process.exit(2); }
  }
  const side = (p) => {
    const [host, port] = [out[p].slice(0, out[p].lastIndexOf(':')),
      Number(out[p].slice(out[p].lastIndexOf(':') + 1))];
    return { host, port, user: out[`${p}-user`], password: out[`${p}-password`] || '',
      database: out[`${p}-db`] };
  };
  return { direct: side('direct'), proxy: side('proxy') };
}

const COLUMNS = 'id int4 PRIMARY KEY, s int2, i int4, b int8, n numeric(20,6), f float8, ' +
  't text, by bytea, ok bool, d date, ts timestamp(6), tz timestamptz, u uuid, j jsonb, ' +
  'a int4[], v varchar(12)';
const ROWS = "(1, -32768, 2147483647, -9223372036854775808, -12345678901234.123456, " +
  "3.141592653589793, 'héllo 👋 ünïcødé', '\\x00ff0102037f80fe00', true, '2024-02-29', " +
  "'2024-02-29 13:45:56.123456', '2024-02-29 13:45:56.654321+05:30', " +
  "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2, {\"b\": null}], \"e\": \"👋\"}', " +
  "'{1,NULL,-3}', 'twelve chars'), " +
  "(2, 0, 0, 0, 0, 'NaN', '', '\\x', false, '1970-01-01', '1970-01-01 00:00:00', " +
  "'2000-01-01 00:00:00+00', '00000000-0000-0000-0000-000000000000', '[]', '{}', ''), " +
  '(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)';

// Values as comparable JSON: Buffers as hex, Dates as ISO strings.
function norm(v) {
  return JSON.parse(JSON.stringify(v, function (k, x) {
    const raw = this[k];
    if (Buffer.isBuffer(raw)) return `hex:${raw.toString('hex')}`;
    if (raw instanceof Date) return `date:${raw.toISOString()}`;
    if (typeof raw === 'number' && !Number.isFinite(raw)) return `num:${raw}`;
    return x;
  }));
}

function result(r) {
  return norm({
    command: r.command, rowCount: r.rowCount, rows: r.rows,
    fields: r.fields.map((f) => ({ name: f.name, tableID: f.tableID, columnID: f.columnID,
      dataTypeID: f.dataTypeID, dataTypeSize: f.dataTypeSize,
      dataTypeModifier: f.dataTypeModifier, format: f.format })),
  });
}

function error(e) {
  return { code: e.code, message: e.message, position: e.position, severity: e.severity };
}

async function main() {
  const { direct, proxy } = parseArgs(process.argv.slice(2));
  const table = `drv_node_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  const select = `SELECT * FROM ${table} ORDER BY id`;
  let passed = 0;
  let failed = 0;

  const admin = new Client(direct);
  try {
    await admin.connect();
    await admin.query(`CREATE TABLE ${table} (${COLUMNS})`);
    await admin.query(`INSERT INTO ${table} VALUES ${ROWS}`);
  } catch (e) {
    console.log(`setup failed: ${e.message}`);
    process.exit(2);
  }

  async function check(name, fn) {
    const out = [];
    for (const side of [direct, proxy]) {
      const c = new Client(side);
      try {
        await c.connect();
        out.push(norm(await fn(c)));
      } catch (e) {
        out.push({ exception: String(e) });
      } finally {
        await c.end().catch(() => {});
      }
    }
    if (process.env.DRV_CHECK_DUMP) console.log(util.inspect(out[0], { depth: null }));
    if (util.isDeepStrictEqual(out[0], out[1]) && !out[0].exception) {
      passed++;
      console.log(`ok   pg: ${name}`);
    } else {
      failed++;
      console.log(`FAIL pg: ${name}\n  direct: ${JSON.stringify(out[0])}\n  proxy:  ${JSON.stringify(out[1])}`);
    }
  }

  try {
    await check('simple query: values and RowDescription', async (c) => result(await c.query(select)));
    await check('extended query with parameters', async (c) =>
      result(await c.query(`SELECT *, $1::int8 + 1 AS next FROM ${table} WHERE id <= $1 ORDER BY id`, [2])));
    await check('binary results', async (c) =>
      result(await c.query({ text: `SELECT id, s, i, b, f, ok, by, u, t FROM ${table} WHERE id > $1 ORDER BY id`,
        values: [0], binary: true })));
    await check('named prepared statements, reused', async (c) => {
      const out = [];
      for (const id of [1, 2, 3, 1]) {
        out.push(result(await c.query({ name: 'by_id', text: `SELECT t, a, j FROM ${table} WHERE id = $1`,
          values: [id] })));
      }
      out.push(result(await c.query({ name: 'pair', text: 'SELECT $1::text || $2::text AS s',
        values: ['a', 'ü'], rowMode: 'array' })));
      out.push(result(await c.query('SELECT count(*)::int AS n FROM pg_prepared_statements')));
      return out;
    });
    await check('several statements in one query', async (c) =>
      (await c.query(`SELECT 1 AS a; SELECT 'x' AS b, NULL::date AS c; UPDATE ${table} SET i = i WHERE false`)).map(result));
    await check('errors and recovery', async (c) => {
      const out = [];
      for (const sql of ['SELEKT 1', 'SELECT * FROM no_such_table', 'SELECT 1/0']) {
        out.push(await c.query(sql).then(result, error));
      }
      out.push(await c.query({ name: 'bad', text: 'SELECT $1::int', values: ['nope'] }).then(result, error));
      out.push(result(await c.query('BEGIN')));
      out.push(await c.query('SELECT 1/0').then(result, error));
      out.push(await c.query('SELECT 1').then(result, error));
      out.push(result(await c.query('ROLLBACK')));
      out.push(result(await c.query('SELECT 2 AS two')));
      return out;
    });
  } finally {
    await admin.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await admin.end().catch(() => {});
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.log(`FAIL pg: ${e.stack}`); process.exit(1); });
