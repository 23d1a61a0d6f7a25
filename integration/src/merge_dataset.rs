//! The dataset of the differential merge suites (`merge_mysql`, `merge_pg`): the same rows,
//! generated deterministically by a small LCG, loaded through dbmesh into
//! [`ORDERS_RULES`](crate::ORDERS_RULES) (2 data sources × 2 tables) and into one plain
//! database, so that every query can run both ways and the answers be compared.
//!
//! What the rows hold, on purpose: NULLs in every nullable column, duplicates in every
//! column but the keys, strings that differ only in case or by a trailing space, the empty
//! string, negative numbers, decimals, dates over three years, date-times with
//! milliseconds, and floats that are
//! multiples of 1/4 (so that their sums are exact in any order). `t_order_item` is bound
//! to `t_order` (the same `user_id` and `order_id` as its order, so joins stay on one
//! data source); `t_province` is a broadcast table.
//!
//! The INSERT statements are the same SQL on both backends; the DDL differs only in type
//! names.

/// How many rows `t_order` gets.
pub const MERGE_ORDERS: i64 = 3000;

/// The tables on MariaDB (created through dbmesh: each CREATE fans out to the actual
/// tables).
pub const MERGE_MYSQL_DDL: [&str; 3] = [
    "CREATE TABLE t_order (order_id BIGINT NOT NULL PRIMARY KEY, user_id INT NOT NULL, \
     amount INT, status VARCHAR(16), price DECIMAL(10,2), created DATE, score DOUBLE, \
     qty SMALLINT NOT NULL, province_id INT, updated DATETIME(3))",
    "CREATE TABLE t_order_item (item_id BIGINT NOT NULL PRIMARY KEY, order_id BIGINT NOT NULL, \
     user_id INT NOT NULL, sku VARCHAR(32), quantity INT NOT NULL, unit_price DECIMAL(8,2))",
    "CREATE TABLE t_province (id INT NOT NULL PRIMARY KEY, name VARCHAR(32))",
];

/// The tables on PostgreSQL.
pub const MERGE_PG_DDL: [&str; 3] = [
    "CREATE TABLE t_order (order_id BIGINT NOT NULL PRIMARY KEY, user_id INT NOT NULL, \
     amount INT, status VARCHAR(16), price NUMERIC(10,2), created DATE, score FLOAT8, \
     qty SMALLINT NOT NULL, province_id INT, updated TIMESTAMP(3))",
    "CREATE TABLE t_order_item (item_id BIGINT NOT NULL PRIMARY KEY, order_id BIGINT NOT NULL, \
     user_id INT NOT NULL, sku VARCHAR(32), quantity INT NOT NULL, unit_price NUMERIC(8,2))",
    "CREATE TABLE t_province (id INT NOT NULL PRIMARY KEY, name VARCHAR(32))",
];

/// Statuses: the same word in several cases, one with a trailing space (equal to `open`
/// under MariaDB's PAD SPACE `_ci` collations), the empty string, and NULL (`None`).
const STATUSES: [Option<&str>; 12] = [
    Some("open"),
    Some("OPEN"),
    Some("Open"),
    Some("open "),
    Some("closed"),
    Some("Closed"),
    Some("CLOSED"),
    Some("shipped"),
    Some("Shipped"),
    Some("returned"),
    Some(""),
    None,
];

const SKUS: [Option<&str>; 8] = [
    Some("A-1"),
    Some("a-1"),
    Some("B-2"),
    Some("b-2"),
    Some("C-3"),
    Some("Widget"),
    Some("WIDGET"),
    None,
];

const PROVINCES: [&str; 6] = ["North", "south", "EAST", "West", "centre", "Centre"];

/// A 64-bit LCG (Knuth's MMIX constants): the same rows on every run and machine.
struct Lcg(u64);

impl Lcg {
    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n) as i64
    }

    /// Whether to write NULL, about one time in `n`.
    fn null(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

fn quoted(s: Option<&str>) -> String {
    s.map_or("NULL".to_string(), |s| format!("'{s}'"))
}

/// `cents` as a decimal literal (`-12.05`).
fn decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

/// The date `days` after 2023-01-01, as a literal (civil-from-days, proleptic Gregorian).
fn date(days: i64) -> String {
    // Days since 1970-01-01 of 2023-01-01 is 19358.
    let z = days + 19358 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("'{year:04}-{month:02}-{day:02}'")
}

/// The dataset as multi-row INSERTs (a few hundred rows each), the same SQL for both
/// backends.
pub fn merge_inserts() -> Vec<String> {
    let mut rng = Lcg(0x5eed_d8e5);
    let mut orders = Vec::new();
    let mut items = Vec::new();
    for order_id in 1..=MERGE_ORDERS {
        let user_id = rng.below(40);
        let amount = if rng.null(12) {
            "NULL".to_string()
        } else {
            (rng.below(1001) - 500).to_string()
        };
        let status = quoted(STATUSES[rng.below(STATUSES.len() as u64) as usize]);
        // Steps of 0.25 over about 2000 values: duplicates, negatives, NULLs.
        let price = if rng.null(14) {
            "NULL".to_string()
        } else {
            decimal((rng.below(2000) - 500) * 25)
        };
        let created = if rng.null(20) {
            "NULL".to_string()
        } else {
            date(rng.below(1100))
        };
        let score = if rng.null(10) {
            "NULL".to_string()
        } else {
            format!("{}", (rng.below(161) - 80) as f64 * 0.25)
        };
        let qty = rng.below(21) - 10;
        let province = if rng.null(8) {
            "NULL".to_string()
        } else {
            rng.below(PROVINCES.len() as u64 + 1).to_string()
        };
        // Date-times with milliseconds over 60 days, on quarter hours (plus a second or not):
        // duplicates, and values equal but for the milliseconds.
        let updated = if rng.null(15) {
            "NULL".to_string()
        } else {
            let second = rng.below(96) * 900 + rng.below(2);
            let day = date(rng.below(60));
            format!(
                "'{} {:02}:{:02}:{:02}.{:03}'",
                day.trim_matches('\''),
                second / 3600,
                second / 60 % 60,
                second % 60,
                rng.below(4) * 250
            )
        };
        orders.push(format!(
            "({order_id}, {user_id}, {amount}, {status}, {price}, {created}, {score}, {qty}, {province}, {updated})"
        ));
        for k in 0..rng.below(4) {
            let sku = quoted(SKUS[rng.below(SKUS.len() as u64) as usize]);
            let quantity = rng.below(9) - 2;
            let unit_price = if rng.null(9) {
                "NULL".to_string()
            } else {
                decimal(rng.below(4000) * 5 - 1000)
            };
            items.push(format!(
                "({}, {order_id}, {user_id}, {sku}, {quantity}, {unit_price})",
                order_id * 10 + k
            ));
        }
    }
    let mut statements = Vec::new();
    for chunk in orders.chunks(300) {
        statements.push(format!(
            "INSERT INTO t_order (order_id, user_id, amount, status, price, created, score, qty, province_id, updated) VALUES {}",
            chunk.join(", ")
        ));
    }
    for chunk in items.chunks(300) {
        statements.push(format!(
            "INSERT INTO t_order_item (item_id, order_id, user_id, sku, quantity, unit_price) VALUES {}",
            chunk.join(", ")
        ));
    }
    // Province 0 has no row: a join drops its orders, a LEFT JOIN keeps them with NULLs.
    let provinces: Vec<String> = PROVINCES
        .iter()
        .enumerate()
        .map(|(i, name)| format!("({}, '{name}')", i + 1))
        .collect();
    statements.push(format!(
        "INSERT INTO t_province (id, name) VALUES {}",
        provinces.join(", ")
    ));
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_calendar_dates() {
        assert_eq!(date(0), "'2023-01-01'");
        assert_eq!(date(31 + 28), "'2023-03-01'");
        assert_eq!(date(365 + 31 + 28), "'2024-02-29'");
        assert_eq!(date(365 + 366), "'2025-01-01'");
    }

    #[test]
    fn decimals_keep_their_sign_and_cents() {
        assert_eq!(decimal(-5), "-0.05");
        assert_eq!(decimal(12345), "123.45");
        assert_eq!(decimal(0), "0.00");
    }

    #[test]
    fn the_dataset_is_the_same_every_time() {
        assert_eq!(merge_inserts(), merge_inserts());
        let rows: usize = merge_inserts()
            .iter()
            .filter(|s| s.starts_with("INSERT INTO t_order "))
            .map(|s| s.matches("), (").count() + 1)
            .sum();
        assert_eq!(rows as i64, MERGE_ORDERS);
    }
}
