// Scenarios of MariaDB Connector/J (Debian's libmariadb-java), run by test_jdbc_e2e.py.
//
//   java -cp <classes>:<mariadb-java-client.jar> JdbcScenarios '<runs>'
//
// <runs>: one line per run, "scenario<TAB>jdbc-url<TAB>user<TAB>password<TAB>argument" (the
// argument: the stored procedure of multi and metadata, db.name). Runs go one after
// the other in this JVM (starting one costs more than most scenarios); prints a JSON array
// with what each run saw (values, ResultSetMetaData, DatabaseMetaData, errors), for the test
// to compare the same scenario directly against MariaDB and through myguard.

import java.math.BigDecimal;
import java.sql.CallableStatement;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class JdbcScenarios {
    private final String url;
    private final String user;
    private final String password;

    JdbcScenarios(String url, String user, String password) {
        this.url = url;
        this.user = user;
        this.password = password;
    }

    Connection connect(String... options) throws SQLException {
        String u = url;
        for (String option : options) u += (u.contains("?") ? "&" : "?") + option;
        return DriverManager.getConnection(u, user, password);
    }

    // -- JSON ---------------------------------------------------------------------------------

    static void json(StringBuilder out, Object v) {
        if (v == null) {
            out.append("null");
        } else if (v instanceof String) {
            out.append('"');
            for (char c : ((String) v).toCharArray()) {
                if (c == '"' || c == '\\') out.append('\\').append(c);
                else if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
                else out.append(c);
            }
            out.append('"');
        } else if (v instanceof Boolean || v instanceof Integer || v instanceof Long) {
            out.append(v);
        } else if (v instanceof Map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) out.append(',');
                first = false;
                json(out, String.valueOf(e.getKey()));
                out.append(':');
                json(out, e.getValue());
            }
            out.append('}');
        } else if (v instanceof List) {
            out.append('[');
            boolean first = true;
            for (Object x : (List<?>) v) {
                if (!first) out.append(',');
                first = false;
                json(out, x);
            }
            out.append(']');
        } else {
            json(out, v.toString());
        }
    }

    static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) s.append(String.format("%02x", x));
        return s.toString();
    }

    // A value as "Class:text" (byte[] as hex): the Java type the driver chose is part of it.
    static Object value(Object v) {
        if (v == null) return null;
        if (v instanceof byte[]) return "byte[]:" + hex((byte[]) v);
        return v.getClass().getSimpleName() + ":" + v;
    }

    // -- results ------------------------------------------------------------------------------

    static List<Object> columns(ResultSetMetaData md) throws SQLException {
        List<Object> cols = new ArrayList<>();
        for (int i = 1; i <= md.getColumnCount(); i++) {
            cols.add(map(
                "label", md.getColumnLabel(i),
                "name", md.getColumnName(i),
                "table", md.getTableName(i),
                "catalog", md.getCatalogName(i),
                "type", md.getColumnType(i),
                "typeName", md.getColumnTypeName(i),
                "className", md.getColumnClassName(i),
                "precision", md.getPrecision(i),
                "scale", md.getScale(i),
                "displaySize", md.getColumnDisplaySize(i),
                "nullable", md.isNullable(i),
                "signed", md.isSigned(i),
                "autoIncrement", md.isAutoIncrement(i)));
        }
        return cols;
    }

    // Every row: getObject() with its class, and getString().
    static Map<String, Object> table(ResultSet rs) throws SQLException {
        ResultSetMetaData md = rs.getMetaData();
        List<Object> rows = new ArrayList<>();
        List<Object> strings = new ArrayList<>();
        while (rs.next()) {
            List<Object> row = new ArrayList<>();
            List<Object> text = new ArrayList<>();
            for (int i = 1; i <= md.getColumnCount(); i++) {
                row.add(value(rs.getObject(i)));
                text.add(rs.getString(i));
            }
            rows.add(row);
            strings.add(text);
        }
        rs.close();
        return map("columns", columns(md), "rows", rows, "strings", strings);
    }

    // Only the values, as getString() gives them (DatabaseMetaData results).
    static Map<String, Object> plain(ResultSet rs) throws SQLException {
        ResultSetMetaData md = rs.getMetaData();
        List<Object> labels = new ArrayList<>();
        for (int i = 1; i <= md.getColumnCount(); i++) labels.add(md.getColumnLabel(i));
        List<Object> rows = new ArrayList<>();
        while (rs.next()) {
            List<Object> row = new ArrayList<>();
            for (int i = 1; i <= md.getColumnCount(); i++) row.add(rs.getString(i));
            rows.add(row);
        }
        rs.close();
        return map("columns", labels, "rows", rows);
    }

    static Map<String, Object> error(SQLException e) {
        // Without what differs between two servers: the address the driver tried, and the
        // connection id in "(conn=N) message" (myguard's own session id through it).
        String message = String.valueOf(e.getMessage())
            .replaceFirst("^Could not connect to address=\\S+ : ", "")
            .replaceFirst("^\\(conn=\\d+\\) ", "");
        return map(
            "error", map(
                "code", e.getErrorCode(),
                "state", e.getSQLState(),
                "message", message,
                "class", e.getClass().getSimpleName()));
    }

    // Every result of Statement.execute(): result sets and update counts, in order.
    static List<Object> results(Statement st, boolean isResultSet) throws SQLException {
        List<Object> out = new ArrayList<>();
        while (true) {
            if (isResultSet) {
                out.add(table(st.getResultSet()));
            } else {
                int count = st.getUpdateCount();
                if (count == -1) return out;
                out.add(map("updateCount", count));
            }
            isResultSet = st.getMoreResults();
        }
    }

    interface Action {
        Object run() throws SQLException;
    }

    static Object attempt(Action action) {
        try {
            return map("ok", action.run());
        } catch (SQLException e) {
            return error(e);
        }
    }

    static Map<String, Object> query(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            return table(st.executeQuery(sql));
        }
    }

    static void update(Connection c, String... sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            for (String s : sql) st.execute(s);
        }
    }

    static long count(Connection c, String table) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT COUNT(*) FROM " + table)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    static Map<String, Long> counters(Connection c) throws SQLException {
        Map<String, Long> out = new LinkedHashMap<>();
        try (Statement st = c.createStatement();
             ResultSet rs = st.executeQuery(
                 "SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_prepare', 'Com_stmt_execute',"
                     + " 'Com_stmt_close', 'Com_stmt_send_long_data', 'Com_stmt_reset')")) {
            while (rs.next()) out.put(rs.getString(1), rs.getLong(2));
        }
        return out;
    }

    // -- scenarios ----------------------------------------------------------------------------

    static final String TYPES_DDL = "CREATE TABLE jd_types ("
        + " id INT PRIMARY KEY, ti TINYINT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,"
        + " de DECIMAL(20,6), dbl DOUBLE, da DATE, dt DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME,"
        + " yr YEAR, bo BOOLEAN, ch CHAR(4), vc VARCHAR(100), tx TEXT, bl BLOB, vb VARBINARY(16),"
        + " bt BIT(8), en ENUM('a','b'), js JSON"
        + ") DEFAULT CHARSET=utf8mb4";
    static final String TYPES_ROWS = "INSERT INTO jd_types VALUES"
        + " (1, -128, 4294967295, -9223372036854775808, 18446744073709551615,"
        + "  12345678901234.567891, 2.5, '2024-02-29', '2024-02-29 13:14:15.123456',"
        + "  '2001-09-09 01:46:40.999', '23:59:58', 2155, TRUE, 'abcd', 'Grüße 😀 漢字',"
        + "  REPEAT('long text ', 300), X'00FF7F80', X'000102', b'10100101', 'b', '{\"a\": [1, null]}'),"
        + " (2, 127, 0, 9223372036854775807, 0, -0.000001, -1e300, '1000-01-01',"
        + "  '1000-01-01 00:00:00.000001', '1980-01-01 00:00:00', '00:00:00', 1901, FALSE, '', '',"
        + "  '', '', '', b'0', 'a', '[]'),"
        + " (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
        + "  NULL, NULL, NULL, NULL, NULL, NULL)";

    Object session() throws SQLException {
        try (Connection c = connect()) {
            DatabaseMetaData md = c.getMetaData();
            return map(
                "query", query(c,
                    "SELECT 1 + 1 AS two, DATABASE() AS db, @@character_set_client AS cs_client,"
                        + " @@character_set_results AS cs_results, @@collation_connection AS coll,"
                        + " @@autocommit AS ac, @@in_transaction AS tx"),
                "catalog", c.getCatalog(),
                "autoCommit", c.getAutoCommit(),
                "isolation", c.getTransactionIsolation(),
                "readOnly", c.isReadOnly(),
                "valid", c.isValid(5),
                "product", md.getDatabaseProductName() + " " + md.getDatabaseProductVersion(),
                "driver", md.getDriverName() + " " + md.getDriverVersion());
        }
    }

    Object login() {
        try (Connection c = connect()) {
            return map("connected", c.isValid(5));
        } catch (SQLException e) {
            return error(e);
        }
    }

    // Connector/J asks for CLIENT_IGNORE_SPACE: on every connection the server then reads
    // "COUNT (*)" as the function. Three connections one after the other, as an application
    // opens them (through myguard the later ones get a backend connection from its pool).
    Object ignoreSpace() throws Exception {
        List<Object> out = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            try (Connection c = connect()) {
                out.add(map(
                    "mode", query(c, "SELECT @@sql_mode LIKE '%IGNORE_SPACE%' AS ignore_space").get("strings"),
                    "count", attempt(() -> query(c, "SELECT COUNT (*) AS n FROM shop.orders").get("strings"))));
            }
            Thread.sleep(200);  // the session has ended
        }
        return out;
    }

    // Column types and NULLs: Statement (text protocol), PreparedStatement prepared on the
    // server (binary protocol), and the metadata of a statement prepared but not executed.
    Object types() throws SQLException {
        try (Connection c = connect(); Connection s = connect("useServerPrepStmts=true")) {
            update(c, "DROP TABLE IF EXISTS jd_types", TYPES_DDL, TYPES_ROWS);
            Map<String, Object> out = new LinkedHashMap<>();
            String select = "SELECT *, 'end' AS end_marker FROM jd_types WHERE id > ? ORDER BY id";
            try (PreparedStatement ps = c.prepareStatement(select)) {  // client side: text
                ps.setInt(1, 0);
                out.put("text", table(ps.executeQuery()));
            }
            try (PreparedStatement ps = s.prepareStatement(select)) {  // server side: binary
                out.put("preparedMetadata", columns(ps.getMetaData()));
                ps.setInt(1, 0);
                out.put("binary", table(ps.executeQuery()));
            }
            out.put("literals", query(c,
                "SELECT NULL AS n, -1.5 AS dec_lit, 2.5e0 AS dbl_lit, X'00FF' AS bin,"
                    + " CAST(18446744073709551615 AS UNSIGNED) AS umax, _utf8mb4'🎉' AS emoji,"
                    + " CAST(NULL AS DATE) AS null_date, '列' AS `列`"));
            update(c, "DROP TABLE jd_types");
            return out;
        }
    }

    // Server-side prepared statements: parameters of each type, reuse, a batch.
    Object prepared() throws SQLException {
        try (Connection c = connect("useServerPrepStmts=true")) {
            update(c, "DROP TABLE IF EXISTS jd_prep",
                "CREATE TABLE jd_prep (id INT PRIMARY KEY, s VARCHAR(40), d DECIMAL(8,2),"
                    + " at DATETIME, b VARBINARY(8)) DEFAULT CHARSET=utf8mb4");
            Map<String, Long> before = counters(c);
            List<Object> inserts = new ArrayList<>();
            String insert = "INSERT INTO jd_prep VALUES (?, ?, ?, ?, ?)";
            try (PreparedStatement ps = c.prepareStatement(insert)) {
                for (int i = 0; i < 10; i++) {
                    ps.setInt(1, i);
                    if (i % 5 == 0) ps.setNull(2, Types.VARCHAR);
                    else ps.setString(2, "row " + i + " ✓");
                    ps.setBigDecimal(3, new BigDecimal(i).multiply(new BigDecimal("1.25")));
                    ps.setTimestamp(4, java.sql.Timestamp.valueOf(String.format("2024-03-%02d 10:00:00", i + 1)));
                    ps.setBytes(5, new byte[] {(byte) i, (byte) 0xff});
                    inserts.add(ps.executeUpdate());
                }
            }
            List<Object> batch = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement(insert)) {  // the same text again
                for (int i = 10; i < 20; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "batch " + i);
                    ps.setBigDecimal(3, new BigDecimal("0.50"));
                    ps.setNull(4, Types.TIMESTAMP);
                    ps.setNull(5, Types.VARBINARY);
                    ps.addBatch();
                }
                for (int n : ps.executeBatch()) batch.add(n);
            }
            List<Object> selects = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT id, s, d, at, b FROM jd_prep WHERE id >= ? AND (s LIKE ? OR s IS NULL)"
                        + " ORDER BY id LIMIT 3")) {
                Object[][] params = {{0, "%"}, {4, "row%"}, {12, "batch%"}, {1000, "%"}};
                for (Object[] p : params) {
                    ps.setInt(1, (Integer) p[0]);
                    ps.setString(2, (String) p[1]);
                    selects.add(table(ps.executeQuery()));
                }
            }
            Map<String, Long> after = counters(c);
            Map<String, Object> delta = new LinkedHashMap<>();
            for (String k : after.keySet()) delta.put(k, after.get(k) - before.get(k));
            Object total = query(c, "SELECT COUNT(*), SUM(d) FROM jd_prep");
            update(c, "DROP TABLE jd_prep");
            return map("inserts", inserts, "batch", batch, "selects", selects, "total", total,
                "counters", delta);
        }
    }

    // Several statements in one text (allowMultiQueries), an error among them, a procedure.
    Object multi(String procedure) throws SQLException {
        try (Connection c = connect("allowMultiQueries=true")) {
            Map<String, Object> out = new LinkedHashMap<>();
            update(c, "DROP TABLE IF EXISTS jd_multi");
            try (Statement st = c.createStatement()) {
                out.put("batch", results(st, st.execute(
                    "SELECT 1 AS one; SELECT 2 AS two, 'b' AS bee; CREATE TABLE jd_multi (id INT"
                        + " AUTO_INCREMENT PRIMARY KEY, v INT); INSERT INTO jd_multi (v) VALUES (7), (8);"
                        + " SELECT * FROM jd_multi")));
            }
            out.put("failing", attempt(() -> {
                try (Statement st = c.createStatement()) {
                    return results(st, st.execute(
                        "SELECT 'before error' AS s; SELECT * FROM no_such_table_jd; SELECT 'after'"));
                }
            }));
            try (CallableStatement cs = c.prepareCall("{call " + procedure + "(?)}")) {
                cs.setInt(1, 5);
                out.put("call", results(cs, cs.execute()));
                cs.setInt(1, 2);
                out.put("callAgain", results(cs, cs.execute()));
            }
            try (Statement st = c.createStatement()) {
                out.put("callText", results(st, st.execute("CALL " + procedure + "(1)")));
            }
            out.put("after", query(c, "SELECT 'still usable' AS s"));
            update(c, "DROP TABLE jd_multi");
            return out;
        }
    }

    Object noMulti() throws SQLException {
        try (Connection c = connect()) {
            return map(
                "batch", attempt(() -> {
                    try (Statement st = c.createStatement()) {
                        return results(st, st.execute("SELECT 1; SELECT 2"));
                    }
                }),
                "after", query(c, "SELECT 3 AS three"));
        }
    }

    // Rollback, savepoints and commit, as another connection sees them.
    Object transactions() throws SQLException {
        try (Connection c = connect(); Connection other = connect()) {
            update(c, "DROP TABLE IF EXISTS jd_tx", "CREATE TABLE jd_tx (id INT PRIMARY KEY) ENGINE=InnoDB");
            Map<String, Object> out = new LinkedHashMap<>();
            c.setAutoCommit(false);
            update(c, "INSERT INTO jd_tx VALUES (1), (2)");
            out.put("inside", List.of(count(c, "jd_tx"), count(other, "jd_tx")));
            out.put("inTransaction", query(c, "SELECT @@in_transaction AS tx, @@autocommit AS ac"));
            c.rollback();
            out.put("rolledBack", List.of(count(c, "jd_tx"), count(other, "jd_tx")));
            update(c, "INSERT INTO jd_tx VALUES (3)");
            Savepoint sp = c.setSavepoint("jd_sp");
            update(c, "INSERT INTO jd_tx VALUES (4)");
            c.rollback(sp);
            out.put("toSavepoint", List.of(count(c, "jd_tx"), count(other, "jd_tx")));
            update(c, "INSERT INTO jd_tx VALUES (5)");
            c.commit();
            out.put("committed", List.of(count(c, "jd_tx"), count(other, "jd_tx")));
            c.setAutoCommit(true);
            out.put("rows", query(other, "SELECT id FROM jd_tx ORDER BY id"));
            update(c, "DROP TABLE jd_tx");
            return out;
        }
    }

    // The server's errors with their codes, SQLSTATEs and exception classes.
    Object errors() throws SQLException {
        try (Connection c = connect(); Connection s = connect("useServerPrepStmts=true")) {
            update(c, "DROP TABLE IF EXISTS jd_err", "CREATE TABLE jd_err (id INT PRIMARY KEY, v VARCHAR(10))",
                "INSERT INTO jd_err VALUES (1, 'one')");
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("duplicateText", attempt(() -> {
                try (Statement st = c.createStatement()) {
                    return st.executeUpdate("INSERT INTO jd_err VALUES (1, 'again')");
                }
            }));
            out.put("duplicateBinary", attempt(() -> {
                try (PreparedStatement ps = s.prepareStatement("INSERT INTO jd_err VALUES (?, ?)")) {
                    ps.setInt(1, 1);
                    ps.setString(2, "again");
                    return ps.executeUpdate();
                }
            }));
            out.put("syntax", attempt(() -> query(c, "SELEC 1")));
            out.put("syntaxPrepare", attempt(() -> {
                try (PreparedStatement ps = s.prepareStatement("SELEC ?")) {
                    ps.setInt(1, 1);
                    return table(ps.executeQuery());
                }
            }));
            out.put("noTable", attempt(() -> {
                try (PreparedStatement ps = s.prepareStatement("SELECT * FROM no_such_table_jd WHERE id = ?")) {
                    ps.setInt(1, 1);
                    return table(ps.executeQuery());
                }
            }));
            out.put("tooLong", attempt(() -> {
                try (PreparedStatement ps = s.prepareStatement("INSERT INTO jd_err VALUES (?, ?)")) {
                    ps.setInt(1, 2);
                    ps.setString(2, "x".repeat(11));
                    return ps.executeUpdate();
                }
            }));
            out.put("after", query(s, "SELECT * FROM jd_err"));
            update(c, "DROP TABLE jd_err");
            return out;
        }
    }

    // shop.customers as the run's user: Statement, client-side and server-side PreparedStatement.
    Object masking() throws SQLException {
        String sql = "SELECT id, name, email, birth_date, credit_limit FROM shop.customers WHERE id > ? ORDER BY id";
        try (Connection c = connect(); Connection s = connect("useServerPrepStmts=true")) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("statement", query(c, sql.replace("?", "0")));
            try (PreparedStatement ps = c.prepareStatement(sql)) {
                ps.setInt(1, 0);
                out.put("clientPrepared", table(ps.executeQuery()));
            }
            try (PreparedStatement ps = s.prepareStatement(sql)) {
                ps.setInt(1, 0);
                out.put("serverPrepared", table(ps.executeQuery()));
                ps.setInt(1, 6);
                out.put("serverPreparedAgain", table(ps.executeQuery()));
            }
            return out;
        }
    }

    // An unbounded DELETE is refused by the guardrails; the session stays usable.
    Object guardrail() throws SQLException {
        try (Connection c = connect(); Connection s = connect("useServerPrepStmts=true")) {
            return map(
                "statement", attempt(() -> {
                    try (Statement st = c.createStatement()) {
                        return st.executeUpdate("DELETE FROM shop.customers");
                    }
                }),
                "serverPrepared", attempt(() -> {
                    try (PreparedStatement ps = s.prepareStatement("DELETE FROM shop.customers")) {
                        return ps.executeUpdate();
                    }
                }),
                "after", List.of(count(c, "shop.customers"), count(s, "shop.customers")));
        }
    }

    // What BI tools ask DatabaseMetaData when they open a connection and browse a schema.
    Object metadata(String procedure) throws SQLException {
        try (Connection c = connect()) {
            DatabaseMetaData md = c.getMetaData();
            String[] proc = procedure.split("\\.");
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("product", md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            out.put("versions", List.of(md.getDatabaseMajorVersion(), md.getDatabaseMinorVersion(),
                md.getJDBCMajorVersion()));
            out.put("quote", md.getIdentifierQuoteString());
            out.put("catalogTerm", md.getCatalogTerm());
            out.put("supports", List.of(md.supportsTransactions(), md.supportsMultipleResultSets(),
                md.supportsBatchUpdates(), md.supportsSavepoints(), md.supportsStoredProcedures()));
            out.put("keywords", md.getSQLKeywords());
            out.put("catalogs", plain(md.getCatalogs()));
            out.put("schemas", plain(md.getSchemas()));
            out.put("tableTypes", plain(md.getTableTypes()));
            out.put("tables", plain(md.getTables("shop", null, "%", new String[] {"TABLE", "VIEW"})));
            out.put("columns", plain(md.getColumns("shop", null, "customers", "%")));
            out.put("primaryKeys", plain(md.getPrimaryKeys("shop", null, "orders")));
            out.put("importedKeys", plain(md.getImportedKeys("shop", null, "orders")));
            out.put("exportedKeys", plain(md.getExportedKeys("shop", null, "customers")));
            out.put("indexInfo", plain(md.getIndexInfo("shop", null, "orders", false, false)));
            out.put("procedures", plain(md.getProcedures(proc[0], null, proc[1])));
            out.put("procedureColumns", plain(md.getProcedureColumns(proc[0], null, proc[1], "%")));
            out.put("typeInfo", plain(md.getTypeInfo()));
            out.put("limit0", query(c, "SELECT * FROM shop.orders WHERE 1 = 0"));
            return out;
        }
    }

    Object run(String scenario, String argument) throws Exception {
        switch (scenario) {
            case "session": return session();
            case "login": return login();
            case "ignoreSpace": return ignoreSpace();
            case "types": return types();
            case "prepared": return prepared();
            case "multi": return multi(argument);
            case "noMulti": return noMulti();
            case "transactions": return transactions();
            case "errors": return errors();
            case "masking": return masking();
            case "guardrail": return guardrail();
            case "metadata": return metadata(argument);
            default: throw new IllegalArgumentException("unknown scenario " + scenario);
        }
    }

    public static void main(String[] args) throws Exception {
        List<Object> results = new ArrayList<>();
        for (String line : args[0].split("\n")) {
            String[] f = line.split("\t", -1);
            try {
                results.add(new JdbcScenarios(f[1], f[2], f[3]).run(f[0], f[4]));
            } catch (Exception e) {  // an unexpected failure: reported, the other runs go on
                java.io.StringWriter trace = new java.io.StringWriter();
                e.printStackTrace(new java.io.PrintWriter(trace));
                results.add(map("crash", trace.toString()));
            }
        }
        StringBuilder out = new StringBuilder();
        json(out, results);
        System.out.write(out.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
        System.out.flush();
    }
}
