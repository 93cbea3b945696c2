//! Settings: defaults, overridden by a TOML file, overridden by environment
//! variables, overridden by flags. `docs/collector.md` documents each.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "data";
pub const DEFAULT_WWW_DIR: &str = "www";
pub const DEFAULT_AGENT_DIR: &str = "npm/dist";
pub const DEFAULT_RETENTION_DAYS: u32 = 35;
pub const DEFAULT_MAX_PAGES_PER_SITE: u32 = 10_000;
pub const DEFAULT_MAX_SITES: u32 = 1_000;
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_METRICS: usize = crate::validate::MAX_METRICS;
pub const DEFAULT_RATE_PER_IP: u32 = 100;
pub const DEFAULT_BURST_PER_IP: u32 = 1_000;
pub const DEFAULT_RATE_PER_SITE: u32 = 0;
pub const DEFAULT_QUEUE_LEN: usize = 4_096;
/// Distinct page keys of all sites together: each costs memory (about
/// 10 KB for a page of one 5-metric beacon, `examples/bench_memory.rs`), and
/// the per-site cap times the site cap alone would allow 98 GB. 50,000
/// pages take at most about 0.5 GB, which leaves the other half of 1 GB
/// for reports (about 80 bytes each).
pub const DEFAULT_MAX_PAGES: u32 = 50_000;
/// Longest a beacon body may take to arrive, once its headers have.
pub const DEFAULT_BODY_TIMEOUT_MS: i64 = 10_000;

/// User-Agent substrings (case-insensitive) of crawlers and lab tools whose
/// beacons are dropped: their timings are not real users'.
pub const DEFAULT_BOT_USER_AGENTS: &[&str] = &[
    "bot",
    "crawler",
    "spider",
    "slurp",
    "facebookexternalhit",
    "mediapartners-google",
    "adsbot-google",
    "apis-google",
    "google-inspectiontool",
    "chrome-lighthouse",
    "ptst",
    "gtmetrix",
    "pingdom",
];

/// The vitalsign collector: receives Core Web Vitals beacons from the
/// agent, stores them in SQLite and serves summaries.
///
/// Every setting comes from the first of: this flag, its environment
/// variable, the --config file, the default.
#[derive(Clone, Debug, Default, Parser)]
#[command(name = "vitalsign-collector", version)]
pub struct Cli {
    /// Address and port to listen on; port 0 picks a free port
    /// [default: 127.0.0.1:8080]
    #[arg(long, env = "VITALSIGN_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<String>,

    /// Directory for the database (vitalsign.db); created if missing
    /// [default: ./data]
    #[arg(long, env = "VITALSIGN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// TOML file with settings (see docs/collector.md)
    #[arg(long, env = "VITALSIGN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Static site served at / (index.html as index); not served if missing
    /// [default: www]
    #[arg(long, env = "VITALSIGN_WWW_DIR", value_name = "DIR")]
    pub www_dir: Option<PathBuf>,

    /// Built agent served at /agent/; not served if missing
    /// [default: npm/dist]
    #[arg(long, env = "VITALSIGN_AGENT_DIR", value_name = "DIR")]
    pub agent_dir: Option<PathBuf>,

    /// HTTP worker threads [default: number of CPUs]
    #[arg(long, env = "VITALSIGN_WORKERS", value_name = "N")]
    pub workers: Option<usize>,

    /// Days of reports kept, today included [default: 35]
    #[arg(long, env = "VITALSIGN_RETENTION_DAYS", value_name = "DAYS")]
    pub retention_days: Option<u32>,

    /// Distinct page keys per site; reports of further pages count under
    /// "(other)" [default: 10000]
    #[arg(long, env = "VITALSIGN_MAX_PAGES_PER_SITE", value_name = "N")]
    pub max_pages_per_site: Option<u32>,

    /// Distinct page keys of all sites together; past it, new pages of any
    /// site count under its "(other)" page [default: 50000]
    #[arg(long, env = "VITALSIGN_MAX_PAGES", value_name = "N")]
    pub max_pages: Option<u32>,

    /// Distinct sites accepted when no [[sites]] are configured; 0: no
    /// limit [default: 1000]
    #[arg(long, env = "VITALSIGN_MAX_SITES", value_name = "N")]
    pub max_sites: Option<u32>,

    /// Largest beacon body, after gzip inflation [default: 65536]
    #[arg(long, env = "VITALSIGN_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Longest a beacon body may take to arrive once the headers have
    /// (a client trickling it gets 408), e.g. 10s [default: 10s]
    #[arg(long, env = "VITALSIGN_BODY_TIMEOUT", value_name = "DURATION")]
    pub body_timeout: Option<String>,

    /// Most metric reports in one beacon, at most 256 [default: 256]
    #[arg(long, env = "VITALSIGN_MAX_METRICS", value_name = "N")]
    pub max_metrics: Option<usize>,

    /// Beacons per second per client IP (IPv6: per /64); 0: no limit
    /// [default: 100]
    #[arg(long, env = "VITALSIGN_RATE_PER_IP", value_name = "N")]
    pub rate_per_ip: Option<u32>,

    /// Beacons a client IP may send at once above its rate [default: 1000]
    #[arg(long, env = "VITALSIGN_BURST_PER_IP", value_name = "N")]
    pub burst_per_ip: Option<u32>,

    /// Beacons per second per site; 0: no limit [default: 0]
    #[arg(long, env = "VITALSIGN_RATE_PER_SITE", value_name = "N")]
    pub rate_per_site: Option<u32>,

    /// Beacons a site may send at once above its rate [default: the rate]
    #[arg(long, env = "VITALSIGN_BURST_PER_SITE", value_name = "N")]
    pub burst_per_site: Option<u32>,

    /// Beacons that may wait for the database writer; past that beacons
    /// get 503 [default: 4096]
    #[arg(long, env = "VITALSIGN_QUEUE_LEN", value_name = "N")]
    pub queue_len: Option<usize>,

    /// API key required by the read APIs (all sites); repeat the flag or
    /// separate keys with commas in the variable
    #[arg(
        long = "api-key",
        env = "VITALSIGN_API_KEYS",
        value_name = "KEY",
        value_delimiter = ','
    )]
    pub api_keys: Vec<String>,

    /// Take the client IP from X-Forwarded-For / Forwarded (only behind a
    /// proxy that sets them) [default: false]
    #[arg(long, env = "VITALSIGN_TRUST_FORWARDED_FOR", value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    pub trust_forwarded_for: Option<bool>,

    /// fsync every commit, to survive power loss too [default: false]
    #[arg(long, env = "VITALSIGN_FSYNC", value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    pub fsync: Option<bool>,

    /// Log format: text or json [default: text]
    #[arg(long, env = "VITALSIGN_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// The collector's URL as people reach it, for dashboard links in alert
    /// notifications [default: http:// and the listening address]
    #[arg(long, env = "VITALSIGN_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Storage engine: sqlite (one collector, a file in the data
    /// directory) or clickhouse (several collectors sharing one ClickHouse)
    /// [default: sqlite]
    #[arg(long, env = "VITALSIGN_STORE", value_name = "ENGINE")]
    pub store: Option<StoreKind>,

    /// ClickHouse HTTP URL (store = clickhouse) [default: http://localhost:8123]
    #[arg(long, env = "VITALSIGN_CLICKHOUSE_URL", value_name = "URL")]
    pub clickhouse_url: Option<String>,

    /// ClickHouse database, created if missing [default: vitalsign]
    #[arg(long, env = "VITALSIGN_CLICKHOUSE_DATABASE", value_name = "NAME")]
    pub clickhouse_database: Option<String>,

    /// ClickHouse user [default: the server's default user]
    #[arg(long, env = "VITALSIGN_CLICKHOUSE_USER", value_name = "USER")]
    pub clickhouse_user: Option<String>,

    /// ClickHouse password [default: none]
    #[arg(
        long,
        env = "VITALSIGN_CLICKHOUSE_PASSWORD",
        value_name = "PASS",
        hide_env_values = true
    )]
    pub clickhouse_password: Option<String>,
}

/// The storage engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Sqlite,
    #[value(name = "clickhouse")]
    #[serde(rename = "clickhouse")]
    ClickHouse,
}

pub const DEFAULT_CLICKHOUSE_URL: &str = "http://localhost:8123";
pub const DEFAULT_CLICKHOUSE_DATABASE: &str = "vitalsign";

/// `[clickhouse]` of the config file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileClickHouse {
    pub url: Option<String>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The alert evaluation lease's term (`15s`): a collector that dies is
    /// taken over within it.
    pub lease_term: Option<String>,
}

/// The alert lease's term unless configured.
pub const DEFAULT_LEASE_TERM_MS: i64 = 15_000;

/// Where ClickHouse is (used when `store` is `clickhouse`).
#[derive(Clone, PartialEq, Eq)]
pub struct ClickHouseSettings {
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub lease_term_ms: i64,
}

impl std::fmt::Debug for ClickHouseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSettings")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("lease_term_ms", &self.lease_term_ms)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The `--config` file. Unknown keys are errors, so a typo is not ignored.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub www_dir: Option<PathBuf>,
    pub agent_dir: Option<PathBuf>,
    pub workers: Option<usize>,
    pub retention_days: Option<u32>,
    pub max_pages_per_site: Option<u32>,
    pub max_pages: Option<u32>,
    pub max_sites: Option<u32>,
    pub queue_len: Option<usize>,
    #[serde(default)]
    pub api_keys: Vec<String>,
    pub trust_forwarded_for: Option<bool>,
    pub fsync: Option<bool>,
    pub log_format: Option<LogFormat>,
    /// Replaces [`DEFAULT_BOT_USER_AGENTS`].
    pub bot_user_agents: Option<Vec<String>>,
    #[serde(default)]
    pub limits: FileLimits,
    #[serde(default)]
    pub sites: Vec<SiteConfig>,
    pub public_url: Option<String>,
    /// `[alerts]`: rules and receivers.
    #[serde(default)]
    pub alerts: crate::alerts::AlertsFile,
    pub store: Option<StoreKind>,
    #[serde(default)]
    pub clickhouse: FileClickHouse,
}

/// `[limits]` of the config file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    pub max_body_bytes: Option<usize>,
    pub body_timeout: Option<String>,
    pub max_metrics: Option<usize>,
    pub rate_per_ip: Option<u32>,
    pub burst_per_ip: Option<u32>,
    pub rate_per_site: Option<u32>,
    pub burst_per_site: Option<u32>,
}

/// One `[[sites]]` entry. When any is configured, only these sites are
/// accepted.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site as beacons name it: the host of the page URLs, with the
    /// port when they name one (`shop.example`, `localhost:3000`).
    pub host: String,
    /// Browser origins allowed to send this site's beacons. Default:
    /// `https://HOST` and `http://HOST`.
    pub origins: Option<Vec<String>>,
    /// API keys that may read this site's data only.
    #[serde(default)]
    pub api_keys: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid setting {key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

fn clickhouse_settings(file: &FileConfig, cli: &Cli) -> Result<ClickHouseSettings, ConfigError> {
    let f = &file.clickhouse;
    let url = cli
        .clickhouse_url
        .clone()
        .or_else(|| f.url.clone())
        .unwrap_or_else(|| DEFAULT_CLICKHOUSE_URL.into());
    let ok = url::Url::parse(url.trim()).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
    if !ok {
        return Err(invalid("clickhouse.url", format!("{url:?} is not an http(s) URL")));
    }
    let database = cli
        .clickhouse_database
        .clone()
        .or_else(|| f.database.clone())
        .unwrap_or_else(|| DEFAULT_CLICKHOUSE_DATABASE.into());
    if database.is_empty() || !database.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(invalid(
            "clickhouse.database",
            format!("{database:?} is not a database name (letters, digits and _)"),
        ));
    }
    let empty_none = |s: Option<String>| s.filter(|s| !s.is_empty());
    // The lease's safety margin is 2 s: a term of 3 margins at least.
    let min_term = 3 * crate::store::clickhouse::lease::SAFETY_MS;
    let lease_term_ms = match &f.lease_term {
        None => DEFAULT_LEASE_TERM_MS,
        Some(text) => match crate::alerts::rule::parse_duration(text) {
            Some(ms) if ms >= min_term => ms,
            _ => {
                return Err(invalid(
                    "clickhouse.lease_term",
                    format!("{text:?} is not a duration of at least {}s", min_term / 1000),
                ))
            }
        },
    };
    Ok(ClickHouseSettings {
        url: url.trim().trim_end_matches('/').to_string(),
        database,
        user: empty_none(cli.clickhouse_user.clone().or_else(|| f.user.clone())),
        password: empty_none(cli.clickhouse_password.clone().or_else(|| f.password.clone())),
        lease_term_ms,
    })
}

/// Limits on beacons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub body_timeout: std::time::Duration,
    pub max_metrics: usize,
    /// Beacons per second; 0: no limit.
    pub rate_per_ip: u32,
    pub burst_per_ip: u32,
    pub rate_per_site: u32,
    pub burst_per_site: u32,
}

/// A configured site, checked and normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub host: String,
    /// Serialised origins (`https://shop.example`).
    pub origins: HashSet<String>,
    pub api_keys: Vec<String>,
}

/// The settings the collector runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `ADDR:PORT` (a host name is allowed and resolved at bind time).
    pub listen: String,
    pub data_dir: PathBuf,
    pub www_dir: PathBuf,
    pub agent_dir: PathBuf,
    pub workers: usize,
    pub retention_days: u32,
    pub max_pages_per_site: u32,
    pub max_pages: u32,
    pub max_sites: u32,
    pub queue_len: usize,
    pub limits: Limits,
    /// Keys that may read every site.
    pub api_keys: Vec<String>,
    /// Empty: every site is accepted.
    pub sites: Vec<Site>,
    pub trust_forwarded_for: bool,
    pub fsync: bool,
    pub log_format: LogFormat,
    /// Lower-case substrings.
    pub bot_user_agents: Vec<String>,
    /// Base of dashboard links; `None`: from the listening address.
    pub public_url: Option<String>,
    pub alerts: crate::alerts::AlertsConfig,
    pub store: StoreKind,
    pub clickhouse: ClickHouseSettings,
}

impl Default for Config {
    fn default() -> Config {
        Config::merge(&FileConfig::default(), &Cli::default()).expect("defaults are valid")
    }
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        FileConfig::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    pub fn parse(text: &str) -> Result<FileConfig, toml::de::Error> {
        toml::from_str(text)
    }
}

/// `https://Shop.Example:443/x` -> `https://shop.example`.
fn normalise_origin(origin: &str) -> Option<String> {
    let url = url::Url::parse(origin).ok()?;
    let o = url.origin();
    o.is_tuple().then(|| o.ascii_serialization())
}

impl Config {
    /// Defaults, then the file named by `--config` (if any), then the
    /// environment and flags (which clap has already merged into `cli`).
    pub fn from_cli(cli: &Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Config::merge(&file, cli)
    }

    /// Each setting from the first layer that has it: flags (or their
    /// environment variables), file, default. Checks the result.
    pub fn merge(file: &FileConfig, cli: &Cli) -> Result<Config, ConfigError> {
        let l = &file.limits;
        let rate_per_site = cli.rate_per_site.or(l.rate_per_site).unwrap_or(DEFAULT_RATE_PER_SITE);
        let workers = cli
            .workers
            .or(file.workers)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let body_timeout = match cli.body_timeout.as_deref().or(l.body_timeout.as_deref()) {
            None => DEFAULT_BODY_TIMEOUT_MS,
            Some(text) => crate::alerts::rule::parse_duration(text)
                .filter(|ms| (100..=600_000).contains(ms))
                .ok_or_else(|| {
                    invalid(
                        "limits.body_timeout",
                        format!("{text:?} is not a duration from 100ms to 10m (like \"10s\")"),
                    )
                })?,
        };
        let limits = Limits {
            body_timeout: std::time::Duration::from_millis(body_timeout as u64),
            max_body_bytes: cli
                .max_body_bytes
                .or(l.max_body_bytes)
                .unwrap_or(DEFAULT_MAX_BODY_BYTES),
            max_metrics: cli.max_metrics.or(l.max_metrics).unwrap_or(DEFAULT_MAX_METRICS),
            rate_per_ip: cli.rate_per_ip.or(l.rate_per_ip).unwrap_or(DEFAULT_RATE_PER_IP),
            burst_per_ip: cli.burst_per_ip.or(l.burst_per_ip).unwrap_or(DEFAULT_BURST_PER_IP),
            rate_per_site,
            burst_per_site: cli.burst_per_site.or(l.burst_per_site).unwrap_or(rate_per_site),
        };
        let mut api_keys = if cli.api_keys.is_empty() {
            file.api_keys.clone()
        } else {
            cli.api_keys.clone()
        };
        api_keys.retain(|k| !k.trim().is_empty());
        let mut sites: Vec<Site> = Vec::new();
        for (i, s) in file.sites.iter().enumerate() {
            let key = |k: &str| format!("sites[{i}].{k}");
            let host = s.host.trim().to_ascii_lowercase();
            let parsed = url::Url::parse(&format!("http://{host}/"))
                .ok()
                .and_then(|u| crate::validate::site_of(&u))
                .filter(|h| *h == host);
            if host.is_empty() || parsed.is_none() {
                return Err(invalid(
                    key("host"),
                    format!("{:?} is not a host[:port] (no scheme, no path)", s.host),
                ));
            }
            if sites.iter().any(|o| o.host == host) {
                return Err(invalid(key("host"), format!("{host} is configured twice")));
            }
            let origins = match &s.origins {
                Some(list) => list
                    .iter()
                    .map(|o| {
                        normalise_origin(o).ok_or_else(|| {
                            invalid(
                                key("origins"),
                                format!("{o:?} is not an origin like https://shop.example"),
                            )
                        })
                    })
                    .collect::<Result<HashSet<_>, _>>()?,
                None => [format!("https://{host}"), format!("http://{host}")]
                    .iter()
                    .filter_map(|o| normalise_origin(o))
                    .collect(),
            };
            let mut keys = s.api_keys.clone();
            keys.retain(|k| !k.trim().is_empty());
            sites.push(Site {
                host,
                origins,
                api_keys: keys,
            });
        }
        let config = Config {
            listen: cli
                .listen
                .clone()
                .or_else(|| file.listen.clone())
                .unwrap_or_else(|| DEFAULT_LISTEN.into()),
            data_dir: cli
                .data_dir
                .clone()
                .or_else(|| file.data_dir.clone())
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            www_dir: cli
                .www_dir
                .clone()
                .or_else(|| file.www_dir.clone())
                .unwrap_or_else(|| DEFAULT_WWW_DIR.into()),
            agent_dir: cli
                .agent_dir
                .clone()
                .or_else(|| file.agent_dir.clone())
                .unwrap_or_else(|| DEFAULT_AGENT_DIR.into()),
            workers,
            retention_days: cli
                .retention_days
                .or(file.retention_days)
                .unwrap_or(DEFAULT_RETENTION_DAYS),
            max_pages_per_site: cli
                .max_pages_per_site
                .or(file.max_pages_per_site)
                .unwrap_or(DEFAULT_MAX_PAGES_PER_SITE),
            max_pages: cli.max_pages.or(file.max_pages).unwrap_or(DEFAULT_MAX_PAGES),
            max_sites: cli.max_sites.or(file.max_sites).unwrap_or(DEFAULT_MAX_SITES),
            queue_len: cli.queue_len.or(file.queue_len).unwrap_or(DEFAULT_QUEUE_LEN),
            limits,
            api_keys,
            sites,
            trust_forwarded_for: cli.trust_forwarded_for.or(file.trust_forwarded_for).unwrap_or(false),
            fsync: cli.fsync.or(file.fsync).unwrap_or(false),
            log_format: cli.log_format.or(file.log_format).unwrap_or_default(),
            bot_user_agents: file
                .bot_user_agents
                .clone()
                .unwrap_or_else(|| DEFAULT_BOT_USER_AGENTS.iter().map(|s| s.to_string()).collect())
                .into_iter()
                .map(|s| s.to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
            public_url: match cli.public_url.clone().or_else(|| file.public_url.clone()) {
                Some(url) if !url.trim().is_empty() => {
                    let ok = url::Url::parse(url.trim())
                        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
                    if !ok {
                        return Err(invalid("public_url", format!("{url:?} is not an http(s) URL")));
                    }
                    Some(url.trim().trim_end_matches('/').to_string())
                }
                _ => None,
            },
            alerts: crate::alerts::AlertsConfig::from_file(&file.alerts).map_err(|e| invalid(e.key, e.message))?,
            store: cli.store.or(file.store).unwrap_or_default(),
            clickhouse: clickhouse_settings(file, cli)?,
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.retention_days == 0 {
            return Err(invalid("retention_days", "must be at least 1"));
        }
        if self.max_pages_per_site == 0 {
            return Err(invalid("max_pages_per_site", "must be at least 1"));
        }
        if self.workers == 0 {
            return Err(invalid("workers", "must be at least 1"));
        }
        if self.queue_len == 0 {
            return Err(invalid("queue_len", "must be at least 1"));
        }
        let l = &self.limits;
        if !(1024..=16 << 20).contains(&l.max_body_bytes) {
            return Err(invalid("limits.max_body_bytes", "must be within 1024..=16777216"));
        }
        if !(1..=crate::validate::MAX_METRICS).contains(&l.max_metrics) {
            return Err(invalid("limits.max_metrics", "must be within 1..=256"));
        }
        if l.rate_per_ip > 0 && l.burst_per_ip == 0 {
            return Err(invalid(
                "limits.burst_per_ip",
                "must be at least 1 when rate_per_ip is set",
            ));
        }
        if l.rate_per_site > 0 && l.burst_per_site == 0 {
            return Err(invalid(
                "limits.burst_per_site",
                "must be at least 1 when rate_per_site is set",
            ));
        }
        Ok(())
    }

    /// Where the database lives.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(crate::store::DB_FILE_NAME)
    }

    /// The ClickHouse engine's settings.
    pub fn clickhouse_options(&self) -> crate::store::ClickHouseOptions {
        let c = &self.clickhouse;
        let mut o = crate::store::ClickHouseOptions::new(c.url.clone(), c.database.clone(), &self.data_dir);
        o.user = c.user.clone();
        o.password = c.password.clone();
        o.retention_days = self.retention_days;
        o.queue_len = self.queue_len;
        // The caps as the SQLite engine gets them (store_options).
        o.max_pages_per_site = self.max_pages_per_site;
        o.max_pages = self.max_pages;
        o.max_sites = if self.sites.is_empty() { self.max_sites } else { 0 };
        o
    }

    /// The store's settings.
    pub fn store_options(&self) -> crate::store::SqliteOptions {
        crate::store::SqliteOptions {
            queue_len: self.queue_len,
            retention_days: self.retention_days,
            max_pages_per_site: self.max_pages_per_site,
            max_pages: self.max_pages,
            max_sites: if self.sites.is_empty() { self.max_sites } else { 0 },
            fsync: self.fsync,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alert_lease_term_is_configurable_down_to_three_safety_margins() {
        let term = |text: &str| {
            let file = FileConfig::parse(&format!("[clickhouse]\nlease_term = \"{text}\"\n")).unwrap();
            Config::merge(&file, &Cli::parse_from(["x"])).map(|c| c.clickhouse.lease_term_ms)
        };
        assert_eq!(Config::default().clickhouse.lease_term_ms, DEFAULT_LEASE_TERM_MS);
        assert_eq!(term("6s").unwrap(), 6_000);
        assert_eq!(term("1m").unwrap(), 60_000);
        for bad in ["5s", "soon"] {
            let e = term(bad).unwrap_err().to_string();
            assert!(e.contains("clickhouse.lease_term"), "{e}");
        }
    }

    #[test]
    fn the_store_and_clickhouse_come_from_flags_file_and_defaults() {
        let c = Config::default();
        assert_eq!(c.store, StoreKind::Sqlite);
        assert_eq!(c.clickhouse.url, DEFAULT_CLICKHOUSE_URL);
        assert_eq!(c.clickhouse.database, DEFAULT_CLICKHOUSE_DATABASE);
        let file = FileConfig::parse(
            "store = \"clickhouse\"\n[clickhouse]\nurl = \"http://ch:8123/\"\ndatabase = \"rum\"\nuser = \"u\"\npassword = \"p\"\n",
        )
        .unwrap();
        let c = Config::merge(&file, &Cli::parse_from(["x"])).unwrap();
        assert_eq!(c.store, StoreKind::ClickHouse);
        assert_eq!(
            c.clickhouse,
            ClickHouseSettings {
                url: "http://ch:8123".into(),
                database: "rum".into(),
                user: Some("u".into()),
                password: Some("p".into()),
                lease_term_ms: DEFAULT_LEASE_TERM_MS,
            }
        );
        assert!(
            !format!("{:?}", c.clickhouse).contains("\"p\""),
            "the password is not logged"
        );
        let cli = Cli::parse_from([
            "x",
            "--store",
            "sqlite",
            "--clickhouse-url",
            "https://other:8443",
            "--clickhouse-database",
            "db2",
            "--clickhouse-user",
            "u2",
            "--clickhouse-password",
            "p2",
        ]);
        let c = Config::merge(&file, &cli).unwrap();
        assert_eq!(c.store, StoreKind::Sqlite);
        assert_eq!(c.clickhouse.url, "https://other:8443");
        assert_eq!(c.clickhouse.database, "db2");
        assert_eq!(c.clickhouse.user.as_deref(), Some("u2"));
        assert_eq!(c.clickhouse.password.as_deref(), Some("p2"));
        let o = c.clickhouse_options();
        assert_eq!((o.url.as_str(), o.database.as_str()), ("https://other:8443", "db2"));
        // The caps as the SQLite engine gets them.
        let s = c.store_options();
        assert_eq!(
            (o.max_pages_per_site, o.max_pages, o.max_sites),
            (s.max_pages_per_site, s.max_pages, s.max_sites)
        );
        assert_eq!(
            (o.max_pages_per_site, o.max_pages, o.max_sites),
            (DEFAULT_MAX_PAGES_PER_SITE, DEFAULT_MAX_PAGES, DEFAULT_MAX_SITES)
        );
        for (toml, key) in [
            ("[clickhouse]\nurl = \"ftp://x\"", "clickhouse.url"),
            ("[clickhouse]\ndatabase = \"a-b\"", "clickhouse.database"),
        ] {
            let err = Config::merge(&FileConfig::parse(toml).unwrap(), &Cli::parse_from(["x"])).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
        assert!(FileConfig::parse("store = \"mysql\"").is_err());
        assert!(FileConfig::parse("[clickhouse]\nhost = \"x\"").is_err());
    }

    #[test]
    fn flags_override_file_override_defaults() {
        let file = FileConfig::parse(
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/vs\"\nretention_days = 10\n[limits]\nrate_per_ip = 5\n",
        )
        .unwrap();
        let cli = Cli::parse_from(["x", "--data-dir", "/tmp/d", "--rate-per-ip", "7"]);
        let c = Config::merge(&file, &cli).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/d"));
        assert_eq!(c.www_dir, PathBuf::from(DEFAULT_WWW_DIR));
        assert_eq!(c.agent_dir, PathBuf::from(DEFAULT_AGENT_DIR));
        assert_eq!(c.retention_days, 10);
        assert_eq!(c.limits.rate_per_ip, 7);
        assert_eq!(c.limits.burst_per_ip, DEFAULT_BURST_PER_IP);
        assert_eq!(c.max_pages_per_site, DEFAULT_MAX_PAGES_PER_SITE);
        assert!(c.sites.is_empty());
    }

    #[test]
    fn sites_are_normalised() {
        let file = FileConfig::parse(
            r#"
            api_keys = ["admin-key"]
            [[sites]]
            host = "Shop.Example"
            api_keys = ["shop-key"]
            [[sites]]
            host = "localhost:3000"
            origins = ["http://localhost:3000/", "HTTPS://App.Example:443"]
            "#,
        )
        .unwrap();
        let c = Config::merge(&file, &Cli::parse_from(["x"])).unwrap();
        assert_eq!(c.api_keys, vec!["admin-key"]);
        assert_eq!(c.sites[0].host, "shop.example");
        assert!(c.sites[0].origins.contains("https://shop.example"));
        assert!(c.sites[0].origins.contains("http://shop.example"));
        assert_eq!(c.sites[0].api_keys, vec!["shop-key"]);
        let o = &c.sites[1].origins;
        assert!(
            o.contains("http://localhost:3000") && o.contains("https://app.example"),
            "{o:?}"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        for (text, key) in [
            ("[[sites]]\nhost = \"https://x.example/\"", "sites[0].host"),
            (
                "[[sites]]\nhost = \"a.example\"\n[[sites]]\nhost = \"A.example\"",
                "sites[1].host",
            ),
            (
                "[[sites]]\nhost = \"a.example\"\norigins = [\"a.example\"]",
                "sites[0].origins",
            ),
            ("retention_days = 0", "retention_days"),
            ("[limits]\nmax_metrics = 1000", "limits.max_metrics"),
            ("[limits]\nmax_body_bytes = 10", "limits.max_body_bytes"),
        ] {
            let file = FileConfig::parse(text).unwrap();
            let err = Config::merge(&file, &Cli::parse_from(["x"])).unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_types_are_errors() {
        assert!(FileConfig::parse("listn = \"x\"").is_err());
        assert!(FileConfig::parse("listen = 8080").is_err());
        assert!(FileConfig::parse("[limits]\nrate = 1").is_err());
        assert!(FileConfig::parse("[[sites]]\nhost = \"a\"\norigin = []").is_err());
    }

    #[test]
    fn alerts_and_public_url() {
        let file = FileConfig::parse(
            "public_url = \"https://rum.example/\"\n[alerts]\nevaluation_interval = \"1s\"\n\
             [[alerts.rules]]\nname = \"x\"\nmetric = \"LCP\"\nthreshold = 1\n",
        )
        .unwrap();
        let c = Config::merge(&file, &Cli::parse_from(["x"])).unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://rum.example"));
        assert_eq!((c.alerts.evaluation_interval_ms, c.alerts.rules.len()), (1000, 1));
        let c = Config::merge(&file, &Cli::parse_from(["x", "--public-url", "http://other:1"])).unwrap();
        assert_eq!(c.public_url.as_deref(), Some("http://other:1"));
        let c = Config::default();
        assert_eq!((c.public_url, c.alerts.rules.len()), (None, 5), "built-in rules");
        for (text, key) in [
            (
                "[[alerts.rules]]\nname = \"x\"\nmetric = \"LCP\"\n",
                "alerts.rules[0].threshold",
            ),
            ("public_url = \"rum.example\"", "public_url"),
        ] {
            let err = Config::merge(&FileConfig::parse(text).unwrap(), &Cli::parse_from(["x"])).unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
        assert!(FileConfig::parse("[alerts]\nrulez = []").is_err());
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = FileConfig::load(Path::new("/nonexistent/vs.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/vs.toml"), "{err}");
    }

    #[test]
    fn api_keys_from_a_comma_separated_flag_value() {
        let cli = Cli::parse_from(["x", "--api-key", "a,b", "--api-key", "c"]);
        assert_eq!(cli.api_keys, vec!["a", "b", "c"]);
        let cli = Cli::parse_from(["x", "--trust-forwarded-for", "--fsync=false"]);
        assert_eq!((cli.trust_forwarded_for, cli.fsync), (Some(true), Some(false)));
    }
}
