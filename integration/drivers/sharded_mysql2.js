// A realistic workload on a sharded logical database through node mysql2, with
// both its text protocol (query) and server-side prepared statements (execute),
// checking results and where each row landed on the data sources (see
// shardwork.py for the layout and the arguments). Prints `ok   ...` per check
// and `N passed, M failed`; exit 0 only if nothing failed.
'use strict';

const mysql = require('mysql2/promise');

function parseArgs(argv) {
  const out = { shard: [] };
  for (let i = 0; i < argv.length; i++) {
    let [key, value] = argv[i].split(/=(.*)/s);
    if (value === undefined) value = argv[++i];
    key = key.replace(/^--/, '');
    if (key === 'shard') out.shard.push(value);
    else out[key] = value;
  }
  for (const k of ['proxy', 'proxy-user', 'proxy-db', 'direct', 'direct-user']) {
    if (!out[k]) {
      console.log(`missing --${k}`);
      process.exit(2);
    }
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const hostPort = (hp) => ({ host: hp.slice(0, hp.lastIndexOf(':')), port: +hp.slice(hp.lastIndexOf(':') + 1) });
const PROXY = { ...hostPort(args.proxy), user: args['proxy-user'], password: args['proxy-password'] || '', database: args['proxy-db'] };
const common = { supportBigNumbers: true, bigNumberStrings: true, dateStrings: true };

let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   mysql2: ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL mysql2: ${name}  ${e && e.stack}`);
  }
}

function eq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, expected ${w}`);
}

// Direct access to the data sources, to see where rows really are.
async function direct(i, sql, params = []) {
  const c = await mysql.createConnection({
    ...hostPort(args.direct), user: args['direct-user'], password: args['direct-password'] || '',
    database: args.shard[i], ...common,
  });
  try {
    const [rows] = await c.query(sql, params);
    return rows;
  } finally {
    await c.end();
  }
}

const nodeOf = (userId, orderId) => `ds_${((userId % 2) + 2) % 2}.t_order_${BigInt(orderId) % 2n}`;

// Every node holding an order with this key: [node, row].
async function located(orderId) {
  const found = [];
  for (let i = 0; i < 2; i++) {
    for (const t of ['t_order_0', 't_order_1']) {
      for (const r of await direct(i, `SELECT order_id, user_id, amount, note FROM ${t} WHERE order_id = ?`, [orderId])) {
        found.push([`ds_${i}.${t}`, r]);
      }
    }
  }
  return found;
}

async function assertPlaced(orderId, userId, amount) {
  const found = await located(orderId);
  eq(found.map(([n]) => n), [nodeOf(userId, orderId)], `node of order ${orderId}`);
  eq(found[0][1].user_id, userId, `user of order ${orderId}`);
  if (amount !== undefined) eq(found[0][1].amount, amount, `amount of order ${orderId}`);
}

async function countOrders(where, params = []) {
  let n = 0;
  for (let i = 0; i < 2; i++) {
    for (const t of ['t_order_0', 't_order_1']) {
      n += Number((await direct(i, `SELECT count(*) AS n FROM ${t} WHERE ${where}`, params))[0].n);
    }
  }
  return n;
}

async function main() {
  const c = await mysql.createConnection({ ...PROXY, ...common });

  await check('CREATE TABLE fans out (query)', async () => {
    await c.query('CREATE TABLE t_order (order_id BIGINT NOT NULL PRIMARY KEY, user_id INT NOT NULL, amount INT, note VARCHAR(64), created DATETIME NULL)');
    await c.query('CREATE TABLE t_province (id INT NOT NULL PRIMARY KEY, name VARCHAR(32))');
    for (let i = 0; i < 2; i++) {
      const tables = (await direct(i, 'SHOW TABLES')).map((r) => Object.values(r)[0]).sort();
      eq(tables, ['t_order_0', 't_order_1', 't_province'], `tables of ds_${i}`);
    }
  });

  await check('insertId is the generated key (query and execute)', async () => {
    let [r] = await c.query('INSERT INTO t_order (user_id, amount, note) VALUES (?, ?, ?)', [31, 1, 'q']);
    eq(r.affectedRows, 1, 'affectedRows');
    const k1 = r.insertId;
    if (!(Number(k1) > 2 ** 40)) throw new Error(`insertId ${k1} is no snowflake key`);
    await assertPlaced(k1, 31, 1);
    [r] = await c.execute('INSERT INTO t_order (user_id, amount, note, created) VALUES (?, ?, ?, ?)', [32, 2, 'e', new Date(Date.UTC(2024, 1, 29, 12))]);
    const k2 = r.insertId;
    await assertPlaced(k2, 32, 2);
    if (!(BigInt(k2) > BigInt(k1))) throw new Error(`keys do not grow: ${k1}, ${k2}`);
    const [rows] = await c.execute('SELECT order_id, user_id, amount, note FROM t_order WHERE user_id = ? AND order_id = ?', [32, k2]);
    eq(rows, [{ order_id: String(k2), user_id: 32, amount: 2, note: 'e' }], 'read back by key');
  });

  await check('bulk INSERT ... VALUES ? without the key is split per node', async () => {
    const values = [];
    for (let i = 0; i < 10; i++) values.push([100 + i, i, `bulk${i}`]);
    const [r] = await c.query('INSERT INTO t_order (user_id, amount, note) VALUES ?', [values]);
    eq(r.affectedRows, 10, 'affectedRows');
    // (Without CLIENT_SESSION_TRACK, which dbmesh does not offer, mysql2 also reads the
    // length byte in front of the text, as it does from a server.)
    eq(r.info.slice(-39), 'Records: 10  Duplicates: 0  Warnings: 0', 'info');
    const keys = [];
    for (const [userId, amount, note] of values) {
      const [rows] = await c.execute('SELECT order_id FROM t_order WHERE note = ?', [note]);
      eq(rows.length, 1, `rows of ${note}`);
      keys.push(BigInt(rows[0].order_id));
      await assertPlaced(rows[0].order_id, userId, amount);
    }
    eq(String(keys[0]), String(r.insertId), 'insertId is the first key');
    eq(keys.map(String), [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String), 'keys in row order');
  });

  await check('execute with the key, many times (statement cache)', async () => {
    for (let i = 0; i < 12; i++) {
      const [r] = await c.execute('INSERT INTO t_order (order_id, user_id, amount) VALUES (?, ?, ?)', [500 + i, 50 + i, i]);
      eq([r.affectedRows, r.insertId], [1, 0], 'affectedRows, insertId');
    }
    for (let i = 0; i < 12; i++) await assertPlaced(500 + i, 50 + i, i);
    for (let i = 0; i < 12; i++) {
      const [rows] = await c.execute('SELECT amount FROM t_order WHERE order_id = ? AND user_id = ?', [500 + i, 50 + i]);
      eq(rows, [{ amount: i }], `order ${500 + i}`);
    }
  });

  await check('selects across shards (query and execute)', async () => {
    const [q] = await c.query('SELECT order_id FROM t_order WHERE order_id BETWEEN 500 AND 511');
    eq(q.map((r) => Number(r.order_id)).sort((a, b) => a - b), [...Array(12).keys()].map((i) => 500 + i), 'query');
    const [e] = await c.execute('SELECT order_id FROM t_order WHERE order_id IN (?, ?, ?)', [500, 501, 502]);
    eq(e.map((r) => Number(r.order_id)).sort(), [500, 501, 502], 'execute IN');
    const [all] = await c.execute('SELECT count(*) AS n FROM t_order WHERE user_id = ?', [51]);
    eq(all.reduce((s, r) => s + Number(r.n), 0), 1, 'count per node, added up');
    // A page across shards: mysql2 binds every number as a double, LIMIT ? included.
    const [page] = await c.execute('SELECT order_id FROM t_order WHERE order_id BETWEEN ? AND ? ORDER BY order_id DESC LIMIT ?, ?', [500, 511, 2, 3]);
    eq(page.map((r) => Number(r.order_id)), [509, 508, 507], 'page');
    const [top] = await c.execute('SELECT user_id, amount FROM t_order WHERE amount >= ? ORDER BY amount LIMIT ?', [10, 2]);
    eq(top, [{ user_id: 60, amount: 10 }, { user_id: 61, amount: 11 }], 'top');
  });

  await check('UPDATE: affectedRows and changedRows across nodes', async () => {
    let [r] = await c.execute('UPDATE t_order SET amount = ? WHERE order_id BETWEEN ? AND ?', [7, 500, 511]);
    // mysql2 asks for CLIENT_FOUND_ROWS: affectedRows are the matched rows.
    eq([r.affectedRows, r.changedRows], [12, 11], 'affectedRows, changedRows');
    [r] = await c.query('UPDATE t_order SET amount = amount + 1 WHERE user_id = 55 AND order_id = 505');
    eq([r.affectedRows, r.changedRows], [1, 1], 'by key');
    await assertPlaced(505, 55, 8);
  });

  await check('DELETE by key and across nodes', async () => {
    let [r] = await c.execute('DELETE FROM t_order WHERE user_id = ? AND order_id = ?', [50, 500]);
    eq(r.affectedRows, 1, 'by key');
    eq(await located(500), [], 'deleted');
    [r] = await c.query("DELETE FROM t_order WHERE note LIKE 'bulk%'");
    eq(r.affectedRows, 10, 'across nodes');
    eq(await countOrders("note LIKE 'bulk%'"), 0, 'left');
  });

  await check('transactions over both data sources, committed and rolled back', async () => {
    await c.beginTransaction();
    await c.execute('INSERT INTO t_order (order_id, user_id, amount) VALUES (?, ?, ?)', [600, 60, 1]);
    await c.query('INSERT INTO t_order (order_id, user_id, amount) VALUES (601, 61, 1)');
    eq(await countOrders('order_id IN (600, 601)'), 0, 'seen directly before COMMIT');
    await c.commit();
    await assertPlaced(600, 60, 1);
    await assertPlaced(601, 61, 1);
    await c.beginTransaction();
    await c.execute('UPDATE t_order SET amount = ? WHERE order_id IN (?, ?)', [9, 600, 601]);
    const [r] = await c.execute('INSERT INTO t_order (user_id, amount, note) VALUES (?, ?, ?)', [62, 1, 'rb']);
    if (!(Number(r.insertId) > 2 ** 40)) throw new Error(`insertId ${r.insertId} in a transaction`);
    await c.rollback();
    eq(await countOrders("note = 'rb'"), 0, 'rolled-back insert');
    eq(await countOrders('order_id IN (600, 601) AND amount = 1'), 2, 'rolled-back update');
  });

  await check('broadcast table written once per data source, read once', async () => {
    const [r] = await c.execute('INSERT INTO t_province (id, name) VALUES (?, ?), (?, ?)', [1, 'Bern', 2, 'Vaud']);
    eq(r.affectedRows, 2, 'affectedRows');
    for (let i = 0; i < 2; i++) eq(await direct(i, 'SELECT id, name FROM t_province ORDER BY id'), [{ id: 1, name: 'Bern' }, { id: 2, name: 'Vaud' }], `ds_${i}`);
    const [rows] = await c.execute('SELECT name FROM t_province ORDER BY id');
    eq(rows, [{ name: 'Bern' }, { name: 'Vaud' }], 'read');
  });

  await check('an unroutable statement is an error and the connection stays usable', async () => {
    let err = null;
    try {
      await c.execute('UPDATE t_order SET user_id = ? WHERE order_id = ?', [1, 600]);
    } catch (e) {
      err = e;
    }
    eq(err && [err.errno, err.sqlState], [1235, '42000'], 'error');
    const [rows] = await c.execute('SELECT user_id FROM t_order WHERE order_id = ?', [600]);
    eq(rows, [{ user_id: 60 }], 'after the error');
  });

  await c.end();
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.log(`fatal: ${e && e.stack}`);
    process.exit(1);
  },
);
