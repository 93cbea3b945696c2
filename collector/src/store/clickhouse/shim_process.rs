//! Starts and stops `tests/clickhouse/shim.py`, the ClickHouse HTTP front
//! end over chDB, as a real server process on a free port. For tests (the
//! unit tests of the engine, and integration tests through `#[path]`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Shim {
    child: Option<Child>,
    pub port: u16,
    pub path: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/clickhouse/shim.py")
}

impl Shim {
    /// A shim over the chDB data in `path` on a free port.
    pub fn start(path: &Path) -> Shim {
        Shim::start_on(path, 0)
    }

    /// On `port` (0: a free one), e.g. to restart one that was stopped.
    pub fn start_on(path: &Path, port: u16) -> Shim {
        Shim::start_with(path, port, &[])
    }

    /// With extra arguments (`--user U --password P`).
    pub fn start_with(path: &Path, port: u16, extra: &[&str]) -> Shim {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(&python)
            .arg(script())
            .args(["--port", &port.to_string(), "--path"])
            .arg(path)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python} (run scripts/setup.sh): {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .ok();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "the chDB shim did not start (is chdb-core installed? scripts/setup.sh installs it); it said {line:?}"
                )
            });
        Shim {
            child: Some(child),
            port,
            path: path.to_owned(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the process (as a crash would) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        let mut last = None;
        for _ in 0..50 {
            match std::panic::catch_unwind(|| Shim::start_on(&self.path, self.port)) {
                Ok(mut s) => {
                    self.child = s.child.take();
                    return;
                }
                Err(e) => last = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::panic::resume_unwind(last.expect("tried"));
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        self.stop();
    }
}
