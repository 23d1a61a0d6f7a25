//! COPY through dbmesh: 100k rows in and out with tokio-postgres (COPY FROM STDIN / TO
//! STDOUT) and with psql's `\copy`, byte-for-byte what a direct connection moves; a failing
//! COPY leaves the connection usable.

use bytes::Bytes;
use dbmesh_integration::{
    pg_config, pg_connect, pg_sqlstate, run_program, PgDatabase, Proxy, TempDir, APP_PASSWORD,
    APP_USER,
};
use futures_util::{SinkExt, TryStreamExt};
use tokio_postgres::Client;

const ROWS: usize = 100_000;
const TABLE: &str = "CREATE TABLE items (id int8 PRIMARY KEY, name text, price numeric(12,2), \
                     tags int4[], note text)";

/// 100k rows of COPY text: UTF-8, escapes, arrays and NULLs.
fn copy_text() -> String {
    let mut s = String::with_capacity(ROWS * 48);
    for i in 0..ROWS {
        let note = if i % 7 == 0 {
            "\\N".to_string()
        } else {
            format!("line\\tone\\nzwei {i} 👋")
        };
        s += &format!(
            "{i}\titem-{i}-ü\t{}.{:02}\t{{{},{}}}\t{note}\n",
            i * 3,
            i % 100,
            i,
            i + 1
        );
    }
    s
}

async fn copy_out(c: &Client, sql: &str) -> Vec<u8> {
    let stream = c.copy_out(sql).await.unwrap();
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    chunks.concat()
}

async fn setup() -> (PgDatabase, Proxy, Client, Client) {
    let db = PgDatabase::create("pgcopy");
    let direct = pg_connect(&db.direct_dsn()).await.unwrap();
    direct.batch_execute(TABLE).await.unwrap();
    let proxy = Proxy::start(&pg_config("shop", &db.url(), "")).await;
    let through = pg_connect(&proxy.pg_dsn(APP_USER, APP_PASSWORD, "shop"))
        .await
        .unwrap();
    (db, proxy, direct, through)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_and_out_of_100k_rows_matches_a_direct_connection() {
    let (_db, _proxy, direct, through) = setup().await;
    let data = copy_text();
    let sink = through.copy_in("COPY items FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    // In pieces that cut rows in half, as a client streaming a file does.
    for piece in data.as_bytes().chunks(50_000) {
        sink.send(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), ROWS as u64);

    let count: i64 = direct
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, ROWS as i64);
    let out_direct = copy_out(&direct, "COPY items TO STDOUT").await;
    assert_eq!(
        out_direct,
        data.as_bytes(),
        "the rows stored are the rows sent"
    );
    assert_eq!(copy_out(&through, "COPY items TO STDOUT").await, out_direct);
    let binary = "COPY (SELECT * FROM items ORDER BY id) TO STDOUT (FORMAT binary)";
    let bin_direct = copy_out(&direct, binary).await;
    assert!(bin_direct.len() > ROWS * 20);
    assert_eq!(copy_out(&through, binary).await, bin_direct);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_copy_leaves_the_connection_usable() {
    let (_db, _proxy, direct, through) = setup().await;
    let sink = through
        .copy_in("COPY items (id, name) FROM STDIN")
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from_static(b"1\tone\nnot-a-number\ttwo\n"))
        .await
        .unwrap();
    let e = sink.finish().await.unwrap_err();
    assert_eq!(pg_sqlstate(&e), "22P02");
    let n: i64 = through
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    through
        .batch_execute("INSERT INTO items (id) VALUES (5)")
        .await
        .unwrap();
    let n: i64 = direct
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_backslash_copy_moves_100k_rows_both_ways() {
    let (_db, proxy, direct, _through) = setup().await;
    let dir = TempDir::new("pgcopy");
    let input = dir.path.join("in.tsv");
    let output = dir.path.join("out.tsv");
    std::fs::write(&input, copy_text()).unwrap();
    let dsn = format!(
        "host=127.0.0.1 port={} user={APP_USER} dbname=shop",
        proxy.postgres_port()
    );
    let args = vec![
        "-X".into(),
        "-v".into(),
        "ON_ERROR_STOP=1".into(),
        "-c".into(),
        format!("\\copy items FROM '{}'", input.display()),
        "-c".into(),
        format!(
            "\\copy (SELECT * FROM items ORDER BY id) TO '{}'",
            output.display()
        ),
        dsn,
    ];
    let out = run_program("psql", &args, &[("PGPASSWORD", APP_PASSWORD)]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .collect::<Vec<_>>(),
        [format!("COPY {ROWS}"), format!("COPY {ROWS}")]
    );
    let count: i64 = direct
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, ROWS as i64);
    assert_eq!(
        std::fs::read(&output).unwrap(),
        std::fs::read(&input).unwrap()
    );
}
