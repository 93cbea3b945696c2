//! Finding 2: a documented switch (`[alerts] enabled = false`) panicked at
//! start-up. Every setting that `docs/collector.md` documents starts and
//! stops the real binary cleanly, in each form it is documented in (file
//! key, flag, environment variable). A setting documented without a sample
//! here fails the test, so new settings get a start-up test too.

mod common;

#[path = "../src/store/clickhouse/shim_process.rs"]
mod shim_process;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use common::{Collector, BIN};

/// One row of the configuration table: file key, flag, variable.
struct Documented {
    key: String,
    flag: Option<String>,
    env: Option<String>,
}

/// The rows of the table under "## Configuration" in docs/collector.md.
fn documented() -> Vec<Documented> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/collector.md")).unwrap();
    let section = doc.split("## Configuration").nth(1).unwrap();
    let cell = |c: &str| {
        let c = c.trim();
        let name = c.split('`').nth(1)?;
        (c != "-").then(|| name.to_string())
    };
    section
        .lines()
        .skip_while(|l| !l.starts_with("| file key"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cols: Vec<&str> = l.split('|').collect();
            Documented {
                key: cell(cols[1]).expect("a file key"),
                flag: cell(cols[2]),
                env: cell(cols[3]),
            }
        })
        .collect()
}

/// A TOML line (or table) and a command-line value for `key`: not the
/// default, so that the setting is really used.
fn sample(key: &str) -> Option<(&'static str, &'static str)> {
    Some(match key {
        "listen" => ("listen = \"127.0.0.1:0\"", "127.0.0.1:0"),
        "data_dir" => ("", ""), // always set by the test
        "www_dir" => ("www_dir = \"www-elsewhere\"", "www-elsewhere"),
        "agent_dir" => ("agent_dir = \"agent-elsewhere\"", "agent-elsewhere"),
        "workers" => ("workers = 1", "1"),
        "retention_days" => ("retention_days = 3", "3"),
        "max_pages_per_site" => ("max_pages_per_site = 5", "5"),
        "max_pages" => ("max_pages = 7", "7"),
        "max_sites" => ("max_sites = 2", "2"),
        "queue_len" => ("queue_len = 16", "16"),
        "api_keys" => ("api_keys = [\"k-1\", \"k-2\"]", "k-1"),
        "trust_forwarded_for" => ("trust_forwarded_for = true", "true"),
        "fsync" => ("fsync = true", "true"),
        "log_format" => ("log_format = \"json\"", "json"),
        "bot_user_agents" => ("bot_user_agents = [\"crawlr\"]", ""),
        "limits.max_body_bytes" => ("[limits]\nmax_body_bytes = 2048", "2048"),
        "limits.body_timeout" => ("[limits]\nbody_timeout = \"2s\"", "2s"),
        "limits.max_metrics" => ("[limits]\nmax_metrics = 3", "3"),
        "limits.rate_per_ip" => ("[limits]\nrate_per_ip = 5", "5"),
        "limits.burst_per_ip" => ("[limits]\nburst_per_ip = 5", "5"),
        "limits.rate_per_site" => ("[limits]\nrate_per_site = 5", "5"),
        "limits.burst_per_site" => ("[limits]\nrate_per_site = 5\nburst_per_site = 9", "9"),
        "[[sites]]" => (
            "[[sites]]\nhost = \"shop.example\"\napi_keys = [\"shop-key\"]\n[[sites]]\nhost = \"app.example:8443\"\norigins = [\"https://app.example\"]",
            "",
        ),
        // `{ch}`: the URL of a chDB front end the test starts; every run
        // gets it in VITALSIGN_CLICKHOUSE_URL too (so `--store clickhouse`
        // alone finds it).
        "store" => ("store = \"clickhouse\"\nclickhouse = { url = \"{ch}\" }", "clickhouse"),
        "clickhouse.url" => ("[clickhouse]\nurl = \"{ch}\"", "{ch}"),
        "clickhouse.database" => ("[clickhouse]\ndatabase = \"rum_test\"", "rum_test"),
        "clickhouse.user" => ("[clickhouse]\nuser = \"rum\"", "rum"),
        "clickhouse.password" => ("[clickhouse]\npassword = \"secret\"", "secret"),
        "clickhouse.lease_term" => ("[clickhouse]\nlease_term = \"7s\"", ""),
        _ => return None,
    })
}

/// The `[alerts]` settings (documented in their own section).
const ALERTS: &[(&str, &str)] = &[
    ("alerts.enabled", "[alerts]\nenabled = false"),
    ("alerts.evaluation_interval", "[alerts]\nevaluation_interval = \"1s\""),
    ("alerts.history_retention", "[alerts]\nhistory_retention = \"2d\""),
    (
        "alerts.rules",
        "[[alerts.rules]]\nname = \"lcp\"\nkind = \"threshold\"\nmetric = \"LCP\"\npercentile = 90\nthreshold = 3000\n\
         site = \"*\"\npage = \"/checkout/*\"\nform_factor = \"phone\"\nwindow = \"2h\"\nmin_samples = 10\nfor = \"1m\"\n\
         resolve_margin_percent = 5\nrepeat_interval = \"1h\"\nseverity = \"critical\"\n\
         [[alerts.rules]]\nname = \"inp-regression\"\nkind = \"regression\"\nmetric = \"INP\"\nworse_by_percent = 20\n\
         baseline = \"7d\"\nbaseline_min_samples = 50",
    ),
    (
        "alerts.receivers",
        "[[alerts.receivers]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"s\"\n\
         timeout = \"2s\"\nmax_attempts = 3\ninitial_backoff = \"1s\"\nmax_backoff = \"1m\"\n\
         [[alerts.receivers]]\nname = \"chat\"\ntype = \"slack\"\nurl = \"http://127.0.0.1:9/slack\"\n\
         [[alerts.receivers]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"http://127.0.0.1:9\"\nresend_interval = \"1m\"",
    ),
    ("public_url", "public_url = \"https://rum.example\""),
];

/// Starts the binary as `cmd` says, checks it serves and is ready, stops it
/// with SIGTERM; `Err` says what went wrong.
fn start_and_stop(what: &str, mut cmd: Command, dir: &Path) -> Result<(), String> {
    cmd.current_dir(dir).env("RUST_LOG", "info");
    let c = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Collector::spawn(cmd, dir)))
        .map_err(|e| format!("{what}: {}", e.downcast_ref::<String>().cloned().unwrap_or_default()))?;
    if c.get("/healthz").status != 200 {
        return Err(format!("{what}: /healthz not 200"));
    }
    let log = c.log.clone();
    let status = c.terminate();
    let log = std::fs::read_to_string(log).unwrap_or_default();
    if !status.success() || log.contains("panicked") {
        return Err(format!("{what}: exit {status}; log:\n{log}"));
    }
    Ok(())
}

/// A command on a fresh directory of its own under `root`, with a config
/// file holding `toml` (and the data dir and a free port).
fn with_file(root: &Path, name: &str, toml: &str) -> (Command, std::path::PathBuf) {
    let dir = root.join(name.replace(['.', '[', ']'], "_"));
    std::fs::create_dir_all(&dir).unwrap();
    // Top-level keys before the first table (TOML files later bare keys
    // under the last table).
    let base = if toml.starts_with("listen") {
        "data_dir = \"data\""
    } else {
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\""
    };
    let text = if toml.starts_with('[') {
        format!("{base}\n{toml}\n")
    } else {
        format!("{toml}\n{base}\n")
    };
    std::fs::write(dir.join("vitalsign.toml"), text).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["--config", "vitalsign.toml"]);
    (cmd, dir)
}

#[test]
fn every_documented_setting_starts_and_stops_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let rows = documented();
    assert!(rows.len() >= 20, "the table was not found: {} rows", rows.len());
    let shim = shim_process::Shim::start(&root.path().join("clickhouse"));
    let ch = shim.url();
    let mut runs: Vec<(String, Command, std::path::PathBuf)> = Vec::new();
    let mut missing = Vec::new();
    for row in &rows {
        let Some((toml, value)) = sample(&row.key) else {
            missing.push(row.key.clone());
            continue;
        };
        let (toml, value) = (toml.replace("{ch}", &ch), value.replace("{ch}", &ch));
        let (toml, value) = (toml.as_str(), value.as_str());
        if !toml.is_empty() {
            let (cmd, dir) = with_file(root.path(), &format!("file-{}", row.key), toml);
            runs.push((format!("{} in the file", row.key), cmd, dir));
        }
        if value.is_empty() {
            continue;
        }
        let dir = root.path().join(format!("flag-{}", row.key.replace('.', "_")));
        if let Some(flag) = &row.flag {
            let args: Vec<&str> = match flag.strip_suffix("[=BOOL]") {
                // `common::command` passes --listen (127.0.0.1:0) already.
                _ if flag == "--listen" => vec![],
                Some(bare) => vec![bare],
                None => vec![flag.as_str(), value],
            };
            let cmd = common::command(&dir.join("data"), &args);
            runs.push((format!("{flag} {value}"), cmd, dir.clone()));
        }
        if let Some(env) = &row.env {
            let dir = root.path().join(format!("env-{}", row.key.replace('.', "_")));
            let mut cmd = if env == "VITALSIGN_LISTEN" {
                let mut cmd = Command::new(BIN);
                cmd.args(["--data-dir", &dir.join("data").display().to_string()]);
                cmd
            } else {
                common::command(&dir.join("data"), &[])
            };
            cmd.env(env, value);
            runs.push((format!("{env}={value}"), cmd, dir));
        }
    }
    assert!(
        missing.is_empty(),
        "documented settings without a start-up test sample: {missing:?}"
    );
    for (key, toml) in ALERTS {
        let (cmd, dir) = with_file(root.path(), key, toml);
        runs.push((format!("{key} in the file"), cmd, dir));
    }
    let (flag_dir, env_dir) = (root.path().join("flag-public_url"), root.path().join("env-public_url"));
    let mut cmd = common::command(&flag_dir.join("data"), &["--public-url", "https://rum.example"]);
    cmd.arg("--log-format").arg("text");
    runs.push(("--public-url".into(), cmd, flag_dir));
    let mut cmd = common::command(&env_dir.join("data"), &[]);
    cmd.env("VITALSIGN_PUBLIC_URL", "https://rum.example");
    runs.push(("VITALSIGN_PUBLIC_URL".into(), cmd, env_dir));

    let count = runs.len();
    let queue = Mutex::new(runs);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let Some((what, cmd, dir)) = queue.lock().unwrap().pop() else {
                    break;
                };
                std::fs::create_dir_all(&dir).unwrap();
                let mut cmd = cmd;
                if !what.starts_with("VITALSIGN_CLICKHOUSE_URL") {
                    cmd.env("VITALSIGN_CLICKHOUSE_URL", &ch);
                }
                if let Err(e) = start_and_stop(&what, cmd, &dir) {
                    failures.lock().unwrap().push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {count} starts failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(count > 60, "{count} starts");
}
