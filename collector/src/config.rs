//! Settings: defaults, overridden by a TOML file, overridden by flags.

use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "data";
pub const DEFAULT_WWW_DIR: &str = "www";
pub const DEFAULT_AGENT_DIR: &str = "npm/dist";

/// The vitalsign collector: receives Core Web Vitals beacons from the
/// agent, stores them in SQLite and serves summaries.
///
/// Settings come from the defaults, then the --config file, then flags.
/// Relative paths are relative to the working directory.
#[derive(Clone, Debug, Default, Parser)]
#[command(name = "vitalsign-collector", version)]
pub struct Cli {
    /// Address and port to listen on; port 0 picks a free port
    /// [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,

    /// Directory for the database (vitalsign.db); created if missing
    /// [default: ./data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// TOML file with any of the keys listen, data_dir, www_dir, agent_dir
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Static site served at / (index.html as index); not served if missing
    /// [default: www]
    #[arg(long, value_name = "DIR")]
    pub www_dir: Option<PathBuf>,

    /// Built agent served at /agent/; not served if missing
    /// [default: npm/dist]
    #[arg(long, value_name = "DIR")]
    pub agent_dir: Option<PathBuf>,
}

/// The `--config` file. Unknown keys are errors, so a typo is not ignored.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub www_dir: Option<PathBuf>,
    pub agent_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
}

/// The settings the collector runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `ADDR:PORT` (a host name is allowed and resolved at bind time).
    pub listen: String,
    pub data_dir: PathBuf,
    pub www_dir: PathBuf,
    pub agent_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: DEFAULT_LISTEN.into(),
            data_dir: DEFAULT_DATA_DIR.into(),
            www_dir: DEFAULT_WWW_DIR.into(),
            agent_dir: DEFAULT_AGENT_DIR.into(),
        }
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

impl Config {
    /// Defaults, then the file named by `--config` (if any), then flags.
    pub fn from_cli(cli: &Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Ok(Config::merge(&file, cli))
    }

    /// Each setting from the first layer that has it: flags, file, default.
    pub fn merge(file: &FileConfig, cli: &Cli) -> Config {
        let d = Config::default();
        Config {
            listen: cli
                .listen
                .clone()
                .or_else(|| file.listen.clone())
                .unwrap_or(d.listen),
            data_dir: cli
                .data_dir
                .clone()
                .or_else(|| file.data_dir.clone())
                .unwrap_or(d.data_dir),
            www_dir: cli
                .www_dir
                .clone()
                .or_else(|| file.www_dir.clone())
                .unwrap_or(d.www_dir),
            agent_dir: cli
                .agent_dir
                .clone()
                .or_else(|| file.agent_dir.clone())
                .unwrap_or(d.agent_dir),
        }
    }

    /// Where the database lives.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(crate::store::DB_FILE_NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_override_defaults() {
        let file = FileConfig::parse("listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/vs\"").unwrap();
        let cli = Cli::parse_from(["x", "--data-dir", "/tmp/d"]);
        let c = Config::merge(&file, &cli);
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/d"));
        assert_eq!(c.www_dir, PathBuf::from(DEFAULT_WWW_DIR));
        assert_eq!(c.agent_dir, PathBuf::from(DEFAULT_AGENT_DIR));
    }

    #[test]
    fn unknown_keys_and_bad_types_are_errors() {
        assert!(FileConfig::parse("listn = \"x\"").is_err());
        assert!(FileConfig::parse("listen = 8080").is_err());
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = FileConfig::load(Path::new("/nonexistent/vs.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/vs.toml"), "{err}");
    }
}
