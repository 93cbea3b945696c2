//! The ClickHouse schema: created and migrated by the collector at start,
//! with a version table (`vitalsign_schema`), as the SQLite engine does
//! with `user_version`.
//!
//! - `reports`: the raw reports, one row per report as received (a
//!   re-report is a row of its own: reads keep the latest value of each
//!   `(site, metric, report_id)` with `argMax`, and the page, form factor
//!   and time of its first row with `argMin`, as the SQLite engine does).
//!   `MergeTree`, partitioned by month, ordered by site, metric, page key,
//!   time; enumerations as `LowCardinality(String)` of their wire names
//!   (explicit codes, pinned by a test); a TTL for the retention.
//!   `insert_deduplication_token` needs `non_replicated_deduplication_window`
//!   on a non-replicated table (on the rollup too: a retried batch must
//!   not feed the view twice, with
//!   `deduplicate_blocks_in_dependent_materialized_views`).
//! - `reports_rollup`: the hourly rollup, an `AggregatingMergeTree` fed by
//!   the materialized view `reports_rollup_mv`: counts per rating (at the
//!   reference thresholds) and per bin of the collector's own sketch
//!   (`sketch::bin_of`, from the value's bits) as signed sums, so that the
//!   settle runs' correction rows make re-reports count once (see
//!   `rollup.rs`), the last receipt, and `quantilesDD` states (CLS scaled
//!   by [`CLS_SCALE`] before sketching; every row, for ad-hoc queries).
//!   Until version 3 this was `reports_hourly`, with `count`/`countIf`
//!   states that cannot take a value out again.
//! - `rollup_runs`: the settle runs, claimed and finished.
//! - `leases`: claims of the alert evaluator's lease (see `lease.rs`).
//! - `alert_snapshots`, `alert_commands`: the alert state shared by the
//!   collectors (see `alert_state.rs`).
//! - `pages`: the page catalog, the pages admitted under the caps by all
//!   collectors (see `catalog.rs`), a `ReplacingMergeTree` on `(site,
//!   page)`; its migration fills it from the rollup's pages.
//!
//! [`cluster_ddl`] gives the same tables for a replicated cluster
//! (`ReplicatedMergeTree` and `Distributed`), documented in
//! `docs/clickhouse.md` and checked as text by a test.

use beacon::MetricName;

/// The schema version this code writes.
pub const SCHEMA_VERSION: u32 = 5;

/// CLS is sketched as `value * CLS_SCALE` in the rollup's `quantilesDD`
/// (its values are mostly below 1).
pub const CLS_SCALE: f64 = 1000.0;

/// `quantilesDD`'s relative accuracy in the rollup, and the levels kept.
pub const DD_ACCURACY: f64 = 0.005;
pub const DD_LEVELS: [f64; 4] = [0.5, 0.75, 0.95, 0.99];

/// Blocks remembered for `insert_deduplication_token` on the raw table.
pub const DEDUP_WINDOW: u32 = 10_000;

pub const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS vitalsign_schema (
    version UInt32,
    applied_ms Int64
) ENGINE = MergeTree ORDER BY version";

/// `multiIf` over the metric's name giving its `good` (`which` = 0) or
/// `poor` (1) threshold.
fn threshold_expr(which: usize) -> String {
    let mut out = String::from("multiIf(");
    for m in MetricName::ALL {
        let t = m.thresholds();
        let v = if which == 0 { t.good } else { t.poor };
        out.push_str(&format!("metric = '{}', {v:?}, ", m.as_str()));
    }
    out.push_str("nan)");
    out
}

/// The sketch bin of `value` as `sketch::bin_of` computes it (the top bits
/// of the IEEE-754 double), -1 for zero.
pub fn bin_expr(value: &str) -> String {
    format!(
        "if({value} <= 0, toInt64(-1), toInt64(bitShiftRight(reinterpretAsUInt64({value}), {})))",
        52 - crate::sketch::SUB_BIN_BITS
    )
}

fn raw_columns() -> &'static str {
    "site LowCardinality(String),
    page String,
    metric LowCardinality(String),
    report_id String,
    value Float64,
    delta Float64,
    navigation_type LowCardinality(String),
    form_factor LowCardinality(String),
    page_view_id String,
    session_id String,
    received_ms Int64,
    seq UInt64,
    attribution String,
    time DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(received_ms, 'UTC'),
    inserted_ms Int64 DEFAULT toUnixTimestamp64Milli(now64(3))"
}

/// The index the rollup's settle runs find a report's earlier rows by.
const REPORT_ID_INDEX: &str = "report_ids report_id TYPE bloom_filter GRANULARITY 1";

/// The column version 3 adds to `reports` (in [`raw_columns`] since).
const INSERTED_MS: &str = "inserted_ms Int64 DEFAULT toUnixTimestamp64Milli(now64(3))";

/// The rollup of versions 1 and 2 (`reports_hourly`), dropped by version 3.
fn hourly_columns() -> String {
    format!(
        "site LowCardinality(String),
    metric LowCardinality(String),
    page String,
    form_factor LowCardinality(String),
    hour DateTime('UTC'),
    reports AggregateFunction(count),
    good AggregateFunction(countIf, UInt8),
    needs_improvement AggregateFunction(countIf, UInt8),
    quantiles AggregateFunction(quantilesDD({DD_ACCURACY}, {}), Float64),
    bins SimpleAggregateFunction(sumMap, Tuple(Array(Int64), Array(UInt64)))",
        dd_levels()
    )
}

fn dd_levels() -> String {
    DD_LEVELS.iter().map(|l| format!("{l}")).collect::<Vec<_>>().join(", ")
}

/// The view of versions 1 and 2 into `reports_hourly`.
fn hourly_mv_select(source: &str) -> String {
    let (good, poor) = (threshold_expr(0), threshold_expr(1));
    format!(
        "SELECT site, metric, page, form_factor, toStartOfHour(time) AS hour,
    countState() AS reports,
    countIfState(value <= {good}) AS good,
    countIfState(value > {good} AND value <= {poor}) AS needs_improvement,
    quantilesDDState({DD_ACCURACY}, {levels})(if(metric = 'CLS', value * {CLS_SCALE:?}, value)) AS quantiles,
    sumMap([{bin}], [toUInt64(1)]) AS bins
FROM {source}
GROUP BY site, metric, page, form_factor, hour",
        levels = dd_levels(),
        bin = bin_expr("value"),
    )
}

/// The rollup since version 3 (see `rollup.rs`): signed counts per rating
/// and per sketch bin, so that correction rows can take a re-report's
/// earlier value out; `run` is 0 for the view's rows and the end of its
/// settle run for a correction row. `quantilesDD` states are the view's
/// alone (every row, re-reports included: for ad-hoc queries).
fn rollup_columns() -> String {
    format!(
        "site LowCardinality(String),
    metric LowCardinality(String),
    page String,
    form_factor LowCardinality(String),
    hour DateTime('UTC'),
    run Int64,
    good SimpleAggregateFunction(sum, Int64),
    needs_improvement SimpleAggregateFunction(sum, Int64),
    poor SimpleAggregateFunction(sum, Int64),
    bins SimpleAggregateFunction(sumMap, Tuple(Array(Int64), Array(Int64))),
    last_ms SimpleAggregateFunction(max, Int64),
    quantiles AggregateFunction(quantilesDD({DD_ACCURACY}, {}), Float64)",
        dd_levels()
    )
}

/// The rollup's key: correction rows of different runs stay apart, so
/// that reads can leave out a run that has not finished.
const ROLLUP_ORDER: &str = "ORDER BY (site, metric, page, form_factor, hour, run)";

/// The view into `reports_rollup`, of the rows inserted from `origin_ms`
/// on (those before were copied by the migration; 0: all).
pub fn rollup_mv_select(source: &str, origin_ms: i64) -> String {
    let (good, poor) = (threshold_expr(0), threshold_expr(1));
    let since = if origin_ms > 0 {
        format!("\nWHERE inserted_ms >= {origin_ms}")
    } else {
        String::new()
    };
    format!(
        "SELECT site, metric, page, form_factor, toStartOfHour(time) AS hour, toInt64(0) AS run,
    toInt64(countIf(value <= {good})) AS good,
    toInt64(countIf(value > {good} AND value <= {poor})) AS needs_improvement,
    toInt64(countIf(value > {poor})) AS poor,
    sumMap([{bin}], [toInt64(1)]) AS bins,
    max(received_ms) AS last_ms,
    quantilesDDState({DD_ACCURACY}, {levels})(if(metric = 'CLS', value * {CLS_SCALE:?}, value)) AS quantiles
FROM {source}{since}
GROUP BY site, metric, page, form_factor, hour",
        levels = dd_levels(),
        bin = bin_expr("value"),
    )
}

/// The view's statement (its `origin_ms` is decided at migration time).
pub fn rollup_mv(origin_ms: i64) -> String {
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS reports_rollup_mv TO reports_rollup AS\n{}",
        rollup_mv_select("reports", origin_ms)
    )
}

fn runs_columns() -> &'static str {
    "from_ms Int64,
    to_ms Int64,
    done UInt8,
    at_ms Int64"
}

/// The statements of each version, in order. Each is idempotent (`IF NOT
/// EXISTS`), so that collectors starting together may run them twice.
pub fn migrations(retention_days: u32) -> Vec<(u32, Vec<String>)> {
    let days = retention_days.max(1);
    vec![
        (
            1,
            vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS reports (
    {}
) ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (site, metric, page, time)
TTL toDateTime(time) + INTERVAL {days} DAY
SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}",
                    raw_columns()
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS reports_hourly (
    {}
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (site, metric, page, form_factor, hour)
TTL hour + INTERVAL {days} DAY
SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}",
                    hourly_columns()
                ),
                format!(
                    "CREATE MATERIALIZED VIEW IF NOT EXISTS reports_hourly_mv TO reports_hourly AS\n{}",
                    hourly_mv_select("reports")
                ),
            ],
        ),
        (
            2,
            vec![format!(
                "CREATE TABLE IF NOT EXISTS leases (
    name String,
    epoch UInt64,
    holder String,
    expires_ms Int64,
    claimed_ms Int64
) ENGINE = MergeTree
ORDER BY (name, epoch)
SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}"
            )],
        ),
        // The rollup made exact (`rollup.rs`): insert times on the raw
        // rows, signed counts, settle runs. The view and the copy of the
        // rows inserted before it follow these (`rollup::create_view`).
        (
            3,
            vec![
                format!("ALTER TABLE reports ADD COLUMN IF NOT EXISTS {INSERTED_MS}"),
                // Rows from before get the migration's time (once: a
                // column already written is not computed again).
                "ALTER TABLE reports MATERIALIZE COLUMN inserted_ms SETTINGS mutations_sync = 2".to_string(),
                format!("ALTER TABLE reports ADD INDEX IF NOT EXISTS {REPORT_ID_INDEX}"),
                "ALTER TABLE reports MATERIALIZE INDEX report_ids SETTINGS mutations_sync = 2".to_string(),
                "DROP VIEW IF EXISTS reports_hourly_mv".to_string(),
                "DROP TABLE IF EXISTS reports_hourly".to_string(),
                format!(
                    "CREATE TABLE IF NOT EXISTS reports_rollup (
    {}
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
{ROLLUP_ORDER}
TTL hour + INTERVAL {days} DAY
SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}",
                    rollup_columns()
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS rollup_runs (
    {}
) ENGINE = MergeTree
ORDER BY (from_ms, done)
SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}",
                    runs_columns()
                ),
            ],
        ),
        // The alert state shared by the collectors (`alert_state.rs`).
        (
            4,
            vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS alert_snapshots (
    {SNAPSHOT_COLUMNS}
) ENGINE = ReplacingMergeTree(version)
ORDER BY tuple()"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS alert_commands (
    {COMMAND_COLUMNS}
) ENGINE = MergeTree
ORDER BY (at_ms, id)
TTL toDateTime(intDiv(at_ms, 1000)) + INTERVAL {COMMAND_TTL_DAYS} DAY"
                ),
            ],
        ),
        // The page catalog (`catalog.rs`).
        (
            5,
            vec![
                PAGES_TABLE.to_string(),
                // The pages stored before the catalog (written twice by
                // collectors migrating together: one row once merged, and
                // the catalog's reads group).
                "INSERT INTO pages (site, page, first_ms)
SELECT site, page, toInt64(toUnixTimestamp(min(hour))) * 1000 FROM reports_rollup
WHERE (site, page) NOT IN (SELECT site, page FROM pages)
GROUP BY site, page"
                    .to_string(),
            ],
        ),
    ]
}

/// `alert_snapshots`: `version` orders them as `(epoch, seq)` does.
const SNAPSHOT_COLUMNS: &str = "epoch UInt64,
    seq UInt64,
    holder String,
    taken_ms Int64,
    data String,
    version UInt128 MATERIALIZED bitOr(bitShiftLeft(toUInt128(epoch), 64), toUInt128(seq))";

const COMMAND_COLUMNS: &str = "id String,
    at_ms Int64,
    body String";

/// Days an alert command is kept (the holder reads one day back).
const COMMAND_TTL_DAYS: u32 = 7;
/// The page catalog's table (see `catalog.rs`).
const PAGES_TABLE: &str = "CREATE TABLE IF NOT EXISTS pages (
    site String,
    page String,
    first_ms Int64
) ENGINE = ReplacingMergeTree
ORDER BY (site, page)";

/// The retention, applied to a database made with another one.
pub fn retention_ddl(retention_days: u32) -> Vec<String> {
    let days = retention_days.max(1);
    vec![
        format!("ALTER TABLE reports MODIFY TTL toDateTime(time) + INTERVAL {days} DAY"),
        format!("ALTER TABLE reports_rollup MODIFY TTL hour + INTERVAL {days} DAY"),
    ]
}

/// The schema for a replicated cluster named `cluster`: each table as a
/// `Replicated*MergeTree` on every shard (`ON CLUSTER`), with a
/// `Distributed` table over the shards for reads and inserts, sharded by
/// `(site, metric, report_id)` so that a report and its re-reports meet on
/// one shard (the rollup by page: its correction rows go through the
/// `Distributed` table). The schema version, the leases, the settle runs
/// and the alert state (snapshots, commands) are one table each
/// replicated on every node of every shard (no `{shard}` in their path):
/// every collector must see the same claims and the same state, and so
/// is the page catalog's `pages` (every collector must see the admitted
/// pages). Run by an
/// operator (the collector runs [`migrations`] on a
/// single server); see `docs/clickhouse.md`.
pub fn cluster_ddl(cluster: &str, database: &str, retention_days: u32) -> Vec<String> {
    let days = retention_days.max(1);
    let on = format!("ON CLUSTER '{cluster}'");
    vec![
        format!("CREATE DATABASE IF NOT EXISTS {database} {on}"),
        format!("CREATE TABLE IF NOT EXISTS {database}.vitalsign_schema {on} (\n    version UInt32,\n    applied_ms Int64\n) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{database}/vitalsign_schema', '{{replica}}') ORDER BY version"),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.reports_local {on} (
    {}
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{database}/reports', '{{replica}}')
PARTITION BY toYYYYMM(time)
ORDER BY (site, metric, page, time)
TTL toDateTime(time) + INTERVAL {days} DAY
SETTINGS replicated_deduplication_window = {DEDUP_WINDOW}",
            raw_columns()
        ),
        format!("ALTER TABLE {database}.reports_local {on} ADD INDEX IF NOT EXISTS {REPORT_ID_INDEX}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.reports {on} AS {database}.reports_local
ENGINE = Distributed('{cluster}', '{database}', 'reports_local', cityHash64(site, metric, report_id))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.reports_rollup_local {on} (
    {}
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{{shard}}/{database}/reports_rollup', '{{replica}}')
PARTITION BY toYYYYMM(hour)
{ROLLUP_ORDER}
TTL hour + INTERVAL {days} DAY
SETTINGS replicated_deduplication_window = {DEDUP_WINDOW}",
            rollup_columns()
        ),
        format!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.reports_rollup_mv {on} TO {database}.reports_rollup_local AS\n{}",
            rollup_mv_select(&format!("{database}.reports_local"), 0)
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.reports_rollup {on} AS {database}.reports_rollup_local
ENGINE = Distributed('{cluster}', '{database}', 'reports_rollup_local', cityHash64(site, metric, page))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.rollup_runs {on} (
    {}
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{database}/rollup_runs', '{{replica}}')
ORDER BY (from_ms, done)
SETTINGS replicated_deduplication_window = {DEDUP_WINDOW}",
            runs_columns()
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.leases {on} (
    name String,
    epoch UInt64,
    holder String,
    expires_ms Int64,
    claimed_ms Int64
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{database}/leases', '{{replica}}')
ORDER BY (name, epoch)
SETTINGS replicated_deduplication_window = {DEDUP_WINDOW}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.alert_snapshots {on} (
    {SNAPSHOT_COLUMNS}
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{database}/alert_snapshots', '{{replica}}', version)
ORDER BY tuple()"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.alert_commands {on} (
    {COMMAND_COLUMNS}
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{database}/alert_commands', '{{replica}}')
ORDER BY (at_ms, id)
TTL toDateTime(intDiv(at_ms, 1000)) + INTERVAL {COMMAND_TTL_DAYS} DAY"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.pages {on} (
    site String,
    page String,
    first_ms Int64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{database}/pages', '{{replica}}')
ORDER BY (site, page)"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_in_the_rollup_are_the_reference_ones() {
        let good = threshold_expr(0);
        assert_eq!(
            good,
            "multiIf(metric = 'FCP', 1800.0, metric = 'LCP', 2500.0, metric = 'CLS', 0.1, metric = 'INP', 200.0, \
             metric = 'TTFB', 800.0, nan)"
        );
        assert!(threshold_expr(1).contains("metric = 'CLS', 0.25"));
    }

    #[test]
    fn migrations_are_numbered_up_to_the_version() {
        let m = migrations(35);
        let versions: Vec<u32> = m.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
        let all = m.iter().flat_map(|(_, s)| s).cloned().collect::<Vec<_>>().join("\n");
        for needle in [
            "ENGINE = MergeTree\nPARTITION BY toYYYYMM(time)\nORDER BY (site, metric, page, time)",
            "TTL toDateTime(time) + INTERVAL 35 DAY",
            "metric LowCardinality(String)",
            "ENGINE = AggregatingMergeTree",
            "CREATE TABLE IF NOT EXISTS reports_rollup",
            "ORDER BY (site, metric, page, form_factor, hour, run)",
            "good SimpleAggregateFunction(sum, Int64)",
            "bins SimpleAggregateFunction(sumMap, Tuple(Array(Int64), Array(Int64)))",
            "ADD COLUMN IF NOT EXISTS inserted_ms Int64 DEFAULT toUnixTimestamp64Milli(now64(3))",
            "DROP TABLE IF EXISTS reports_hourly",
            "ADD INDEX IF NOT EXISTS report_ids report_id TYPE bloom_filter GRANULARITY 1",
            "non_replicated_deduplication_window = 10000",
        ] {
            assert!(all.contains(needle), "{needle}");
        }
        let view = rollup_mv(0);
        for needle in [
            "CREATE MATERIALIZED VIEW IF NOT EXISTS reports_rollup_mv TO reports_rollup",
            "quantilesDDState(0.005, 0.5, 0.75, 0.95, 0.99)(if(metric = 'CLS', value * 1000.0, value))",
            "toInt64(countIf(value <= multiIf(",
            "sumMap([if(value <= 0, toInt64(-1), toInt64(bitShiftRight(reinterpretAsUInt64(value), 46)))], [toInt64(1)])",
        ] {
            assert!(view.contains(needle), "{needle}\n{view}");
        }
        assert!(!view.contains("WHERE"), "{view}");
        assert!(rollup_mv(1234).contains("WHERE inserted_ms >= 1234"));
    }

    #[test]
    fn the_cluster_ddl_is_replicated_and_distributed() {
        let ddl = cluster_ddl("vs", "vitalsign", 35).join(";\n");
        for needle in [
            "CREATE DATABASE IF NOT EXISTS vitalsign ON CLUSTER 'vs'",
            "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/vitalsign/reports', '{replica}')",
            "ENGINE = Distributed('vs', 'vitalsign', 'reports_local', cityHash64(site, metric, report_id))",
            "ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/vitalsign/reports_rollup', '{replica}')",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS vitalsign.reports_rollup_mv ON CLUSTER 'vs' TO vitalsign.reports_rollup_local",
            "FROM vitalsign.reports_local",
            "ENGINE = Distributed('vs', 'vitalsign', 'reports_rollup_local', cityHash64(site, metric, page))",
            "ENGINE = ReplicatedMergeTree('/clickhouse/tables/vitalsign/rollup_runs', '{replica}')",
            "ENGINE = ReplicatedMergeTree('/clickhouse/tables/vitalsign/leases', '{replica}')",
            "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/vitalsign/pages', '{replica}')",
            "SETTINGS replicated_deduplication_window = 10000",
        ] {
            assert!(ddl.contains(needle), "{needle}\n{ddl}");
        }
        assert!(ddl.contains(
            "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/vitalsign/alert_snapshots', '{replica}', version)"
        ));
        assert_eq!(ddl.matches("ON CLUSTER 'vs'").count(), 13);
    }
}

#[cfg(test)]
mod docs {
    use super::*;

    /// docs/clickhouse.md gives the cluster DDL verbatim (for cluster
    /// `vitalsign_cluster`, database `vitalsign`, 35 days).
    #[test]
    fn the_deployment_guide_holds_the_cluster_ddl_as_the_code_makes_it() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/clickhouse.md")).unwrap();
        if std::env::var("PRINT_DDL").is_ok() {
            for s in cluster_ddl("vitalsign_cluster", "vitalsign", 35) {
                println!("{s};\n");
            }
        }
        for s in cluster_ddl("vitalsign_cluster", "vitalsign", 35) {
            assert!(doc.contains(&format!("{s};")), "docs/clickhouse.md lacks:\n{s};");
        }
    }
}
