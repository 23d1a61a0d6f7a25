//! Values and column metadata of every common type arrive through dbmesh exactly as a direct
//! connection to MariaDB sees them, over the text protocol (COM_QUERY) and the binary
//! protocol (COM_STMT_EXECUTE).

use dbmesh_integration::{mysql_config, MysqlDatabase, Proxy};
use mysql_async::consts::ColumnFlags;
use mysql_async::prelude::*;
use mysql_async::{Column, Conn, Row, Value};

const CREATE: &str = "CREATE TABLE t (
    id INT PRIMARY KEY,
    i INT,
    big BIGINT UNSIGNED,
    dec_v DECIMAL(10,2),
    dbl DOUBLE,
    vc VARCHAR(50) CHARACTER SET utf8mb4,
    txt TEXT,
    bin BLOB,
    d DATE,
    dt DATETIME(6),
    ts TIMESTAMP NULL,
    j JSON
)";

/// Column metadata as a comparable tuple (mysql_async's `Column` has no `PartialEq`).
type Meta = (
    String,
    u16,
    u32,
    u16,
    u8,
    String,
    String,
    String,
    String,
    String,
);

fn meta(c: &Column) -> Meta {
    (
        format!("{:?}", c.column_type()),
        c.character_set(),
        c.column_length(),
        c.flags().bits(),
        c.decimals(),
        c.name_str().into_owned(),
        c.org_name_str().into_owned(),
        c.table_str().into_owned(),
        c.org_table_str().into_owned(),
        c.schema_str().into_owned(),
    )
}

/// Everything a result carries: column metadata and raw values.
#[derive(Debug, PartialEq)]
struct Outcome {
    columns: Vec<Meta>,
    rows: Vec<Vec<Value>>,
}

async fn text(conn: &mut Conn, sql: &str) -> Outcome {
    let mut result = conn.query_iter(sql).await.unwrap();
    let columns = result.columns_ref().iter().map(meta).collect();
    let rows: Vec<Row> = result.collect().await.unwrap();
    Outcome {
        columns,
        rows: rows.into_iter().map(Row::unwrap).collect(),
    }
}

async fn binary(conn: &mut Conn, sql: &str, params: Vec<Value>) -> Outcome {
    let stmt = conn.prep(sql).await.unwrap();
    let columns = stmt.columns().iter().map(meta).collect::<Vec<_>>();
    let rows: Vec<Row> = conn.exec(&stmt, params).await.unwrap();
    conn.close(stmt).await.unwrap();
    Outcome {
        columns,
        rows: rows.into_iter().map(Row::unwrap).collect(),
    }
}

async fn setup() -> (MysqlDatabase, Proxy, Conn, Conn) {
    let db = MysqlDatabase::create("types");
    let proxy = Proxy::start(&mysql_config("shop", &db.url(), "")).await;
    let mut direct = Conn::new(db.direct_opts()).await.unwrap();
    direct.query_drop(CREATE).await.unwrap();
    direct
        .query_drop(
            "INSERT INTO t VALUES
             (1, -2147483648, 18446744073709551615, -12345678.90, 3.141592653589793,
              'héllo 👋 wörld', 'plain text', X'00FF00FF7F80', '2024-02-29',
              '2024-02-29 23:59:58.123456', '2038-01-19 03:14:07', '{\"a\": [1, 2.5, \"👋\"]}'),
             (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        )
        .await
        .unwrap();
    let proxied = Conn::new(proxy.app_opts("shop")).await.unwrap();
    (db, proxy, direct, proxied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_protocol_values_and_column_metadata_equal_direct() {
    let (db, _proxy, mut direct, mut proxied) = setup().await;
    let sql = "SELECT * FROM t ORDER BY id";
    let via_proxy = text(&mut proxied, sql).await;
    assert_eq!(via_proxy, text(&mut direct, sql).await);

    // And the values are the ones stored, not merely the same garbage on both sides.
    assert_eq!(via_proxy.rows.len(), 2);
    let row = &via_proxy.rows[0];
    assert_eq!(row[2], Value::Bytes(b"18446744073709551615".to_vec()));
    assert_eq!(row[3], Value::Bytes(b"-12345678.90".to_vec()));
    assert_eq!(row[5], Value::Bytes("héllo 👋 wörld".as_bytes().to_vec()));
    assert_eq!(
        row[7],
        Value::Bytes(vec![0x00, 0xFF, 0x00, 0xFF, 0x7F, 0x80])
    );
    assert_eq!(row[9], Value::Bytes(b"2024-02-29 23:59:58.123456".to_vec()));
    assert!(via_proxy.rows[1][1..].iter().all(|v| *v == Value::NULL));
    // TEXT is utf8mb4 (45), BLOB is binary (63) with the BINARY flag.
    assert_eq!(via_proxy.columns[6].1, 45);
    assert_eq!(via_proxy.columns[7].1, 63);
    assert_ne!(via_proxy.columns[7].3 & ColumnFlags::BINARY_FLAG.bits(), 0);
    assert_eq!(
        via_proxy.columns[0].9, db.name,
        "schema is the physical database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_protocol_values_and_column_metadata_equal_direct() {
    let (_db, _proxy, mut direct, mut proxied) = setup().await;
    let sql = "SELECT * FROM t WHERE id >= ? ORDER BY id";
    let via_proxy = binary(&mut proxied, sql, vec![Value::Int(0)]).await;
    assert_eq!(
        via_proxy,
        binary(&mut direct, sql, vec![Value::Int(0)]).await
    );

    assert_eq!(via_proxy.rows.len(), 2);
    let row = &via_proxy.rows[0];
    assert_eq!(row[1], Value::Int(-2147483648));
    assert_eq!(row[2], Value::UInt(u64::MAX));
    assert_eq!(row[4], Value::Double(std::f64::consts::PI));
    assert_eq!(row[8], Value::Date(2024, 2, 29, 0, 0, 0, 0));
    assert_eq!(row[9], Value::Date(2024, 2, 29, 23, 59, 58, 123456));
    assert_eq!(
        row[7],
        Value::Bytes(vec![0x00, 0xFF, 0x00, 0xFF, 0x7F, 0x80])
    );
    assert!(via_proxy.rows[1][1..].iter().all(|v| *v == Value::NULL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_parameters_round_trip_through_the_binary_protocol() {
    let (_db, _proxy, mut direct, mut proxied) = setup().await;
    let blob = vec![0u8, 0xFF, 0, 0xFE, b'\'', b'\\', 0];
    let params = vec![
        Value::Int(3),
        Value::Int(i64::from(i32::MAX)),
        Value::UInt(u64::MAX),
        Value::Bytes(b"-0.01".to_vec()),
        Value::Double(-1.5e300),
        Value::Bytes("🦀 crab".as_bytes().to_vec()),
        Value::Bytes(b"t\0ext".to_vec()),
        Value::Bytes(blob.clone()),
        Value::Date(1999, 12, 31, 0, 0, 0, 0),
        Value::Date(2000, 1, 1, 0, 0, 0, 1),
        Value::Date(2001, 2, 3, 4, 5, 6, 0),
        Value::Bytes(br#"{"k": null}"#.to_vec()),
    ];
    proxied
        .exec_drop("INSERT INTO t VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", params)
        .await
        .unwrap();
    let sql = "SELECT * FROM t WHERE id = 3";
    let stored = text(&mut direct, sql).await;
    assert_eq!(text(&mut proxied, sql).await, stored);
    let row = &stored.rows[0];
    assert_eq!(row[2], Value::Bytes(b"18446744073709551615".to_vec()));
    assert_eq!(row[3], Value::Bytes(b"-0.01".to_vec()));
    assert_eq!(row[5], Value::Bytes("🦀 crab".as_bytes().to_vec()));
    assert_eq!(row[7], Value::Bytes(blob));
    assert_eq!(row[9], Value::Bytes(b"2000-01-01 00:00:00.000001".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expressions_without_tables_equal_direct_in_both_protocols() {
    let (_db, _proxy, mut direct, mut proxied) = setup().await;
    let sql =
        "SELECT 1 AS one, NULL AS nothing, 'x' AS s, 2.50 AS d, CAST(X'00FF' AS BINARY) AS b, \
               NOW(6) IS NOT NULL AS now_set, JSON_OBJECT('a', 1) AS j";
    let via_proxy = text(&mut proxied, sql).await;
    assert_eq!(via_proxy, text(&mut direct, sql).await);
    assert_eq!(via_proxy.rows.len(), 1);
    assert_eq!(
        binary(&mut proxied, sql, vec![]).await,
        binary(&mut direct, sql, vec![]).await
    );
}
