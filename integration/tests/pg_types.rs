//! Values and column metadata through dbmesh are exactly what a direct connection gets, for
//! the common PostgreSQL types, in text (simple query) and binary (extended protocol) format,
//! as results and as parameters.

use dbmesh_integration::{pg_config, pg_connect, PgDatabase, Proxy, APP_PASSWORD, APP_USER};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::{Client, SimpleQueryMessage};

const CREATE: &str = "CREATE TABLE typed (
    id int4 PRIMARY KEY, s int2, i int4, b int8, n numeric(20,6), f float8, t text,
    by bytea, ok bool, d date, ts timestamp(6), tz timestamptz, u uuid, j jsonb, a int4[],
    v varchar(12))";

const ROWS: &str = "INSERT INTO typed VALUES
 (1, -32768, 2147483647, -9223372036854775808, -12345678901234.123456, 3.141592653589793,
  'héllo 👋 ünïcødé', '\\x00ff0102037f80fe00', true, '2024-02-29', '2024-02-29 13:45:56.123456',
  '2024-02-29 13:45:56.654321+05:30', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{\"a\": [1, 2, {\"b\": null}], \"e\": \"👋\"}', '{1,NULL,-3}', 'twelve chars'),
 (2, 0, 0, 0, 0, 'NaN', '', '\\x', false, '4713-01-01 BC', '1970-01-01 00:00:00',
  'infinity', '00000000-0000-0000-0000-000000000000', '[]', '{}', ''),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)";

const SELECT: &str = "SELECT * FROM typed ORDER BY id";

/// A column value exactly as it crossed the wire (any type, binary format), or NULL.
#[derive(Debug, PartialEq, Clone)]
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

impl ToSql for Raw {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            Some(b) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    tokio_postgres::types::to_sql_checked!();
}

/// What a client learns from a RowDescription through tokio-postgres's extended protocol.
type ColumnMeta = (String, u32, Option<u32>, Option<i16>, i32);

async fn described_columns(c: &Client, sql: &str) -> (Vec<ColumnMeta>, Vec<u32>) {
    let st = c.prepare(sql).await.unwrap();
    let cols = st
        .columns()
        .iter()
        .map(|c| {
            (
                c.name().to_string(),
                c.type_().oid(),
                c.table_oid(),
                c.column_id(),
                c.type_modifier(),
            )
        })
        .collect();
    (cols, st.params().iter().map(Type::oid).collect())
}

async fn binary_rows(c: &Client, sql: &str) -> Vec<Vec<Raw>> {
    c.query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get::<_, Raw>(i)).collect())
        .collect()
}

/// Column names and text values of a simple query.
async fn text_rows(c: &Client, sql: &str) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for m in c.simple_query(sql).await.unwrap() {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                names = cols.iter().map(|c| c.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(r) => {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
            }
            _ => {}
        }
    }
    (names, rows)
}

async fn setup() -> (PgDatabase, Proxy, Client, Client) {
    let db = PgDatabase::create("pgtypes");
    let direct = pg_connect(&db.direct_dsn()).await.unwrap();
    direct.batch_execute(CREATE).await.unwrap();
    direct.batch_execute(ROWS).await.unwrap();
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let through = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    (db, proxy, direct, through)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_results_and_column_names_match_a_direct_connection() {
    let (_db, _proxy, direct, through) = setup().await;
    let expected = text_rows(&direct, SELECT).await;
    assert_eq!(expected.1.len(), 3, "fixture rows");
    assert_eq!(expected.1[0][6].as_deref(), Some("héllo 👋 ünïcødé"));
    assert_eq!(expected.1[0][7].as_deref(), Some("\\x00ff0102037f80fe00"));
    assert_eq!(expected.1[2][1], None);
    assert_eq!(text_rows(&through, SELECT).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_results_and_row_description_match_a_direct_connection() {
    let (_db, _proxy, direct, through) = setup().await;
    let sql = "SELECT *, $1::int8 + b AS computed, NULL::text AS nothing FROM typed \
               WHERE id <= $1 ORDER BY id";
    let meta = described_columns(&direct, sql).await;
    assert_eq!(meta.0.len(), 18);
    assert_eq!(
        meta.0[4],
        (
            "n".to_string(),
            Type::NUMERIC.oid(),
            meta.0[0].2,
            Some(5),
            (20 << 16 | 6) + 4
        )
    );
    assert_eq!(meta.0[16].2, None, "computed columns have no table");
    assert_eq!(meta.1, vec![Type::INT8.oid()]);
    assert_eq!(described_columns(&through, sql).await, meta);

    let rows = binary_rows(&direct, SELECT).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][1], Raw(Some((-32768i16).to_be_bytes().to_vec())));
    assert_eq!(rows[2][15], Raw(None));
    assert_eq!(binary_rows(&through, SELECT).await, rows);

    // Typed parameters go out in binary too.
    let q = "SELECT $1::int8 * 2, $2::text || '!', $3::bytea, $4::bool";
    let params: [&(dyn ToSql + Sync); 4] = [&21i64, &"👋", &vec![0u8, 255], &true];
    let d = direct.query_one(q, &params).await.unwrap();
    let p = through.query_one(q, &params).await.unwrap();
    assert_eq!(p.get::<_, i64>(0), 42);
    assert_eq!(p.get::<_, String>(1), "👋!");
    for i in 0..4 {
        assert_eq!(p.get::<_, Raw>(i), d.get::<_, Raw>(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_parameters_of_every_type_store_the_same_values() {
    let (_db, _proxy, direct, through) = setup().await;
    direct
        .batch_execute("CREATE TABLE copied (LIKE typed)")
        .await
        .unwrap();
    // Every value read in binary from the direct connection goes back in as a binary
    // parameter through dbmesh.
    let insert = through
        .prepare(
            "INSERT INTO copied VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
        )
        .await
        .unwrap();
    for row in binary_rows(&direct, SELECT).await {
        let params: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| v as _).collect();
        assert_eq!(through.execute(&insert, &params).await.unwrap(), 1);
    }
    let original = text_rows(&direct, SELECT).await.1;
    let copied = text_rows(&direct, "SELECT * FROM copied ORDER BY id")
        .await
        .1;
    assert_eq!(copied.len(), 3);
    assert_eq!(copied, original);
}
