//! What real drivers never send: garbage instead of a handshake response, packets over
//! `max_packet_size`, wrong sequence ids, empty and unknown commands, a client vanishing
//! mid-result. dbmesh answers with an ERR where MySQL would, closes the connection when the
//! stream can no longer be trusted, and keeps serving everyone else.

use dbmesh_integration::{
    err_code, mysql_config, MysqlDatabase, Proxy, RawClient, APP_PASSWORD, APP_USER,
};
use mysql_async::prelude::*;
use mysql_async::Conn;

async fn setup(prefix: &str, extra_server: &str) -> (MysqlDatabase, Proxy) {
    let db = MysqlDatabase::create(prefix);
    let config = mysql_config("shop", &db.url(), "").replace(
        "connect_timeout_ms = 2000",
        &format!("connect_timeout_ms = 2000\n{extra_server}"),
    );
    (db, Proxy::start(&config).await)
}

/// Another client still gets served.
async fn assert_proxy_serves(proxy: &Proxy) {
    let mut conn = Conn::new(proxy.app_opts("shop")).await.unwrap();
    let n: Option<i64> = conn.query_first("SELECT 3 * 7").await.unwrap();
    assert_eq!(n, Some(21));
    conn.disconnect().await.unwrap();
}

/// The error code of the only packet before the connection closed.
fn only_error(packets: &[(u8, Vec<u8>)]) -> u16 {
    assert_eq!(packets.len(), 1, "one ERR, then close: {packets:?}");
    err_code(&packets[0].1).expect("an ERR packet").0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framed_garbage_as_handshake_response_gets_1043_and_is_closed() {
    let (_db, proxy) = setup("bad_hello", "").await;
    let mut c = RawClient::connect(proxy.mysql_port()).await;
    let (seq, greeting) = c.read_packet().await.unwrap();
    assert_eq!(greeting[0], 10, "protocol 10 greeting");
    c.write_packet(seq + 1, &[0u8; 40]).await;
    assert_eq!(only_error(&c.read_until_closed().await), 1043);
    assert_proxy_serves(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unframed_garbage_then_hangup_closes_the_connection() {
    let (_db, proxy) = setup("bad_http", "").await;
    let mut c = RawClient::connect(proxy.mysql_port()).await;
    c.read_packet().await.unwrap();
    // "GET " reads as a 5.5 MB frame; the client then hangs up before sending it.
    c.write_raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    c.shutdown_write().await;
    assert!(c.read_until_closed().await.is_empty());
    assert_proxy_serves(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_response_with_a_wrong_sequence_id_gets_1156_and_is_closed() {
    let (_db, proxy) = setup("bad_hello_seq", "").await;
    let mut c = RawClient::connect(proxy.mysql_port()).await;
    c.read_packet().await.unwrap();
    c.write_packet(7, &[0u8; 40]).await;
    assert_eq!(only_error(&c.read_until_closed().await), 1156);
    assert_proxy_serves(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_over_max_packet_size_gets_1153_and_is_closed() {
    let (_db, proxy) = setup("bad_big", "max_packet_size = 4096").await;
    let mut c = RawClient::login(proxy.mysql_port(), APP_USER, APP_PASSWORD, "shop").await;
    // At the limit is fine.
    let mut fits = b"\x03SELECT '".to_vec();
    fits.resize(4096 - 1, b'a');
    fits.push(b'\'');
    let reply = c.command(&fits).await;
    assert_eq!(reply[0].1, vec![1], "{:?}", err_code(&reply[0].1));
    // One byte more is not.
    let mut big = b"\x03SELECT '".to_vec();
    big.resize(4096, b'a');
    big.push(b'\'');
    c.write_packet(0, &big).await;
    let packets = c.read_until_closed().await;
    assert_eq!(only_error(&packets), 1153);
    assert_eq!(
        packets[0].0, 1,
        "the ERR answers the command: sequence id 1"
    );
    assert_proxy_serves(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_with_a_wrong_sequence_id_gets_1156_and_is_closed() {
    let (_db, proxy) = setup("bad_seq", "").await;
    let mut c = RawClient::login(proxy.mysql_port(), APP_USER, APP_PASSWORD, "shop").await;
    c.write_packet(3, b"\x03SELECT 1").await;
    assert_eq!(only_error(&c.read_until_closed().await), 1156);
    assert_proxy_serves(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_command_packet_is_an_error_and_closes() {
    let (_db, proxy) = setup("bad_empty", "").await;
    let mut c = RawClient::login(proxy.mysql_port(), APP_USER, APP_PASSWORD, "shop").await;
    c.write_packet(0, b"").await;
    assert_eq!(only_error(&c.read_until_closed().await), 1835);
    assert_proxy_serves(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_command_gets_1047_and_the_connection_stays_usable() {
    let (_db, proxy) = setup("bad_cmd", "").await;
    let mut c = RawClient::login(proxy.mysql_port(), APP_USER, APP_PASSWORD, "shop").await;
    let reply = c.command(&[0x55, 1, 2, 3]).await;
    assert_eq!(err_code(&reply[0].1).unwrap().0, 1047);
    let reply = c.command(b"\x03SELECT 1").await;
    assert_eq!(reply[0].1, vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_vanishing_mid_result_frees_its_backend_connection() {
    let (_db, proxy) = setup("bad_vanish", "").await;
    let cluster = proxy.server.runtime.cluster();
    let pool = &cluster.databases["shop"].data_sources["ds_0"].mysql;
    let mut c = RawClient::login(proxy.mysql_port(), APP_USER, APP_PASSWORD, "shop").await;
    // ~100 MB of result: far more than socket buffers hold, so the proxy is mid-relay.
    c.write_packet(0, b"\x03SELECT seq, REPEAT('x', 90) FROM seq_1_to_1000000")
        .await;
    c.read_packet().await.unwrap();
    assert_eq!(pool.in_use(), 1);
    drop(c);
    // The slot comes back (the half-read backend connection is discarded, not pooled).
    while pool.in_use() > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        pool.idle_count(),
        0,
        "a connection with unread rows went back to the pool"
    );
    assert_proxy_serves(&proxy).await;
}
