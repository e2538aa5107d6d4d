// Scenarios of the Node mysql2 client, run by test_mysql2_e2e.py.
//
//   node mysql2_scenarios.js '<spec JSON>'
//
// spec: {scenario, host, port, user, password, database, ssl, table, procedure}; ssl is
// null, {ca: "<file>"} (verified against that CA) or {trust: true} (any certificate). Prints one JSON
// document on stdout: what the scenario saw (values, column descriptions, errors), for the
// test to compare with the same scenario run directly against MariaDB.
'use strict';

const fs = require('fs');
const mysql = require('mysql2/promise');

const spec = JSON.parse(process.argv[2]);

function connectOptions(extra = {}) {
  const options = {
    host: spec.host,
    port: spec.port,
    user: spec.user,
    password: spec.password,
    database: spec.database,
    supportBigNumbers: true,
    connectTimeout: 10000,
    compress: Boolean(spec.compress),
    ...extra,
  };
  if (spec.ssl) {
    options.ssl = spec.ssl.ca
      ? { ca: fs.readFileSync(spec.ssl.ca), rejectUnauthorized: true }
      : { rejectUnauthorized: false };
  }
  return options;
}

function connect(extra) {
  return mysql.createConnection(connectOptions(extra));
}

// Values as JSON can carry them: Buffers as hex, Dates as ISO text, everything else as is.
function value(v) {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return { hex: v.toString('hex') };
  if (v instanceof Date) return { date: isNaN(v) ? 'invalid' : v.toISOString() };
  if (typeof v === 'bigint') return { bigint: v.toString() };
  if (Array.isArray(v)) return v.map(value);
  if (typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = value(x);
    return out;
  }
  return v;
}

function fields(list) {
  if (!list) return null;
  return list.map((f) => {
    const d = f.inspect();
    delete d.encoding; // derived from characterSet
    if (f.extendedTypeName) d.extendedTypeName = f.extendedTypeName;
    if (f.extendedFormat) d.extendedFormat = f.extendedFormat;
    return d;
  });
}

function rows(list) {
  return list.map((r) => (Array.isArray(r) ? r.map(value) : value(r)));
}

// One result of query()/execute(): rows and fields, or the OK packet's counts.
function result([res, flds]) {
  if (Array.isArray(res)) return { fields: fields(flds), rows: rows(res) };
  return {
    affectedRows: res.affectedRows,
    insertId: res.insertId,
    warningStatus: res.warningStatus,
    changedRows: res.changedRows,
  };
}

// Several results (multipleStatements, CALL): mysql2 gives arrays of results and of fields.
function results([res, flds]) {
  return res.map((r, i) => result([r, flds ? flds[i] : undefined]));
}

function error(e) {
  if (e.errno === undefined) throw e; // not an error from the server: the scenario is broken
  return { errno: e.errno, sqlState: e.sqlState, code: e.code, message: e.sqlMessage };
}

async function attempt(promise) {
  try {
    return { ok: result(await promise) };
  } catch (e) {
    return { error: error(e) };
  }
}

async function sessionCounters(conn) {
  const [r] = await conn.query(
    "SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_prepare', 'Com_stmt_execute', " +
      "'Com_stmt_close', 'Prepared_stmt_count')",
  );
  return Object.fromEntries(r.map((x) => [x.Variable_name, Number(x.Value)]));
}

const TYPES_DDL = `CREATE TABLE {t} (
  id INT PRIMARY KEY,
  ti TINYINT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  de DECIMAL(20,6), dbl DOUBLE, fl FLOAT,
  da DATE, dt DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME(2), yr YEAR,
  ch CHAR(4), vc VARCHAR(100), tx TEXT, bl BLOB, vb VARBINARY(16), bt BIT(8),
  en ENUM('a','b'), st SET('x','y'), js JSON
) DEFAULT CHARSET=utf8mb4`;

const TYPES_ROWS = [
  "(1, -128, 4294967295, -9223372036854775808, 18446744073709551615, 12345678901234.567891," +
    " 2.5, -1.25, '2024-02-29', '2024-02-29 13:14:15.123456', '2001-09-09 01:46:40.999'," +
    " '-838:59:59.99', 2155, 'abcd', 'Grüße 😀 漢字', REPEAT('long text ', 300), X'00FF7F80'," +
    " X'000102', b'10100101', 'b', 'x,y', '{\"a\": [1, null], \"ü\": \"✓\"}')",
  "(2, 127, 0, 9223372036854775807, 0, -0.000001, -1e300, 0, '1000-01-01'," +
    " '1000-01-01 00:00:00.000001', '1980-01-01 00:00:00', '00:00:00', 1901, '', '', ''," +
    " '', '', b'0', 'a', '', '[]')",
  '(3' + ', NULL'.repeat(21) + ')',
];

const scenarios = {
  // Connecting: is the socket TLS, what does the session look like.
  async session() {
    const conn = await connect();
    const stream = conn.connection.stream;
    const out = {
      tls: Boolean(stream.encrypted),
      authorized: stream.encrypted ? stream.authorized : null,
      query: result(
        await conn.query(
          'SELECT 1 + 1 AS two, DATABASE() AS db, @@character_set_client AS cs_client,' +
            ' @@character_set_results AS cs_results, @@collation_connection AS coll,' +
            ' @@autocommit AS ac, @@in_transaction AS tx',
        ),
      ),
    };
    await conn.end();
    return out;
  },

  // A client in a character set other than UTF-8 (mysql2 encodes the text in it): its
  // literals and names are read in that set.
  async koi8r() {
    const conn = await connect({ charset: 'KOI8R_GENERAL_CI' });
    const out = result(
      await conn.query(
        "SELECT 'Привет, мир' AS greeting, CHAR_LENGTH('Привет') AS len, число" +
          ' FROM (SELECT 7 AS число) AS т',
      ),
    );
    await conn.end();
    return out;
  },

  async login() {
    try {
      const conn = await connect();
      await conn.end();
      return { connected: true };
    } catch (e) {
      if (e.errno === undefined) return { clientError: e.message };
      return { error: error(e) };
    }
  },

  // mysql2 asks for CLIENT_IGNORE_SPACE: on every connection the server then reads
  // "COUNT (*)" as the function. Three connections one after the other, as an application
  // opens them (through myguard the later ones get a backend connection from its pool).
  async ignoreSpace() {
    const out = [];
    for (let i = 0; i < 3; i++) {
      const conn = await connect();
      const [[mode]] = await conn.query("SELECT @@sql_mode LIKE '%IGNORE_SPACE%' AS ignoreSpace");
      out.push({ ...mode, count: await attempt(conn.query('SELECT COUNT (*) AS n FROM shop.orders')) });
      await conn.end();
      await new Promise((resolve) => setTimeout(resolve, 200)); // the session has ended
    }
    return out;
  },

  // Column types and NULLs, text protocol (query) and binary protocol (execute).
  async types() {
    const t = spec.table;
    const conn = await connect();
    await conn.query(`DROP TABLE IF EXISTS ${t}`);
    await conn.query(TYPES_DDL.replace('{t}', t));
    await conn.query(`INSERT INTO ${t} VALUES ${TYPES_ROWS.join(', ')}`);
    const select = `SELECT *, 'end' AS end_marker FROM ${t} WHERE id > ? ORDER BY id`;
    const out = {
      text: result(await conn.query(select, [0])), // client-side interpolation: COM_QUERY
      binary: result(await conn.execute(select, [0])), // COM_STMT_PREPARE + EXECUTE
      literals: result(
        await conn.query(
          "SELECT NULL AS n, -1.5 AS dec_lit, 2.5e0 AS dbl_lit, X'00FF' AS bin," +
            " CAST(18446744073709551615 AS UNSIGNED) AS umax, _utf8mb4'🎉' AS emoji," +
            " TIME'-01:02:03.25' AS neg_time, CAST(NULL AS DATE) AS null_date, '列' AS `列`",
        ),
      ),
    };
    await conn.query(`DROP TABLE ${t}`);
    await conn.end();
    return out;
  },

  // Server-side prepared statements with parameters, executed again and again.
  async prepared() {
    const t = spec.table;
    const conn = await connect();
    await conn.query(`DROP TABLE IF EXISTS ${t}`);
    await conn.query(
      `CREATE TABLE ${t} (id INT PRIMARY KEY, s VARCHAR(40), d DECIMAL(8,2), at DATETIME)` +
        ' DEFAULT CHARSET=utf8mb4',
    );
    const before = await sessionCounters(conn);
    const inserts = [];
    for (let i = 0; i < 20; i++) {
      // execute() prepares once per connection and reuses the statement from its cache
      inserts.push(
        result(
          await conn.execute(`INSERT INTO ${t} VALUES (?, ?, ?, ?)`, [
            i,
            i % 5 === 0 ? null : `row ${i} ✓`,
            (i * 1.25).toFixed(2),
            `2024-03-${String(i + 1).padStart(2, '0')} 10:00:00`,
          ]),
        ),
      );
    }
    const selects = [];
    for (const low of [0, 7, 18, 1000]) {
      selects.push(
        result(await conn.execute(`SELECT id, s, d FROM ${t} WHERE id >= ? ORDER BY id LIMIT 3`, [low])),
      );
    }
    // An explicit statement handle, executed with several parameter sets, then closed.
    const stmt = await conn.prepare(`SELECT COUNT(*) AS n, SUM(d) AS total FROM ${t} WHERE s LIKE ?`);
    const handle = [];
    for (const pattern of ['row 1%', '%✓', 'none']) handle.push(result(await stmt.execute([pattern])));
    stmt.close();
    const after = await sessionCounters(conn);
    await conn.query(`DROP TABLE ${t}`);
    await conn.end();
    const delta = {};
    for (const k of Object.keys(after)) delta[k] = after[k] - before[k];
    delete delta.Prepared_stmt_count;
    return { inserts, selects, handle, counters: delta, open: after.Prepared_stmt_count };
  },

  // Several statements in one text (multipleStatements), an error among them, a procedure.
  async multi() {
    const t = spec.table;
    const conn = await connect({ multipleStatements: true });
    await conn.query(`DROP TABLE IF EXISTS ${t}`);
    const out = {};
    out.batch = results(
      await conn.query(
        `SELECT 1 AS one; SELECT 2 AS two, 'b' AS bee; CREATE TABLE ${t} (id INT AUTO_INCREMENT` +
          ` PRIMARY KEY, v INT); INSERT INTO ${t} (v) VALUES (7), (8); SELECT * FROM ${t}`,
      ),
    );
    try {
      await conn.query("SELECT 'before error'; SELECT * FROM no_such_table_n2; SELECT 'after'");
      out.failing = 'no error';
    } catch (e) {
      out.failing = error(e);
    }
    out.procedure = results(await conn.query(`CALL ${spec.procedure}(?)`, [5]));
    out.procedureAgain = results(await conn.execute(`CALL ${spec.procedure}(?)`, [6]));
    out.after = result(await conn.query("SELECT 'still usable' AS s"));
    await conn.query(`DROP TABLE ${t}`);
    await conn.end();
    return out;
  },

  // Without multipleStatements the server refuses a batch.
  async noMulti() {
    const conn = await connect();
    const out = {
      batch: await attempt(conn.query('SELECT 1; SELECT 2')),
      after: result(await conn.query('SELECT 3 AS three')),
    };
    await conn.end();
    return out;
  },

  // Rollback and commit, as another connection sees them.
  async transactions() {
    const t = spec.table;
    const conn = await connect();
    const other = await connect();
    const count = async (c) => (await c.query(`SELECT COUNT(*) AS n FROM ${t}`))[0][0].n;
    await conn.query(`DROP TABLE IF EXISTS ${t}`);
    await conn.query(`CREATE TABLE ${t} (id INT PRIMARY KEY) ENGINE=InnoDB`);
    const out = {};
    await conn.beginTransaction();
    await conn.execute(`INSERT INTO ${t} VALUES (?)`, [1]);
    await conn.query(`INSERT INTO ${t} VALUES (2)`);
    out.inside = [await count(conn), await count(other)];
    out.inTransaction = result(await conn.query('SELECT @@in_transaction AS tx'));
    await conn.rollback();
    out.rolledBack = [await count(conn), await count(other)];
    await conn.beginTransaction();
    await conn.query(`INSERT INTO ${t} VALUES (3), (4), (5)`);
    out.uncommitted = [await count(conn), await count(other)];
    await conn.commit();
    out.committed = [await count(conn), await count(other)];
    out.rows = result(await other.query(`SELECT id FROM ${t} ORDER BY id`));
    await conn.query(`DROP TABLE ${t}`);
    await conn.end();
    await other.end();
    return out;
  },

  // The server's errors with their codes and SQLSTATEs, text and binary protocol.
  async errors() {
    const t = spec.table;
    const conn = await connect();
    await conn.query(`DROP TABLE IF EXISTS ${t}`);
    await conn.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(10))`);
    await conn.query(`INSERT INTO ${t} VALUES (1, 'one')`);
    const out = {
      duplicateText: await attempt(conn.query(`INSERT INTO ${t} VALUES (1, 'again')`)),
      duplicateBinary: await attempt(conn.execute(`INSERT INTO ${t} VALUES (?, ?)`, [1, 'again'])),
      syntax: await attempt(conn.query('SELEC 1')),
      syntaxPrepare: await attempt(conn.execute('SELEC ?', [1])),
      noTable: await attempt(conn.execute('SELECT * FROM no_such_table_n2 WHERE id = ?', [1])),
      tooLong: await attempt(conn.execute(`INSERT INTO ${t} VALUES (?, ?)`, [2, 'x'.repeat(11)])),
      after: result(await conn.query(`SELECT * FROM ${t}`)),
    };
    await conn.query(`DROP TABLE ${t}`);
    await conn.end();
    return out;
  },

  // shop.customers as the spec's user: text and binary protocol.
  async masking() {
    const conn = await connect({ database: 'shop' });
    const sql = 'SELECT id, name, email, birth_date, credit_limit FROM customers WHERE id > ? ORDER BY id';
    const out = {
      text: result(await conn.query(sql, [0])),
      binary: result(await conn.execute(sql, [0])),
      binaryAgain: result(await conn.execute(sql, [6])),
    };
    await conn.end();
    return out;
  },

  // An unbounded DELETE is refused by the guardrails; the session stays usable.
  async guardrail() {
    const conn = await connect({ database: 'shop' });
    const out = {
      text: await attempt(conn.query('DELETE FROM shop.customers')),
      binary: await attempt(conn.execute('DELETE FROM shop.customers')),
      after: result(await conn.query('SELECT COUNT(*) AS n FROM shop.customers')),
    };
    await conn.end();
    return out;
  },

  // A pool of connections running queries concurrently; each session keeps its own state.
  async pool() {
    const pool = mysql.createPool(connectOptions({ connectionLimit: 6, waitForConnections: true }));
    let opened = 0;
    pool.on('connection', () => opened++);
    const work = [];
    for (let i = 0; i < 30; i++) {
      work.push(
        (async () => {
          const conn = await pool.getConnection();
          try {
            await conn.query('SET @mine = ?', [i]);
            const [r] = await conn.execute('SELECT @mine AS mine, ? * 2 AS twice, SLEEP(0.02) AS z', [i]);
            return [r[0].mine, r[0].twice];
          } finally {
            conn.release();
          }
        })(),
      );
    }
    for (let i = 0; i < 20; i++) {
      work.push(pool.query('SELECT ? AS n, COUNT(*) AS c FROM shop.orders', [i]).then(([r]) => [r[0].n, r[0].c]));
    }
    const answers = await Promise.all(work);
    const out = { answers, connections: opened };
    await pool.end();
    return out;
  },
};

(async () => {
  const run = scenarios[spec.scenario];
  if (!run) throw new Error(`unknown scenario ${spec.scenario}`);
  process.stdout.write(JSON.stringify(await run()));
})().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
