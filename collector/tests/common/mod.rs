//! Runs the real collector binary on a free port with a fresh data dir and
//! talks to it over real HTTP.
#![allow(dead_code)] // each test file uses a different part of this

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_vitalsign-collector");
pub const PREFIX: &str = "vitalsign collector listening on http://";
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running collector; killed on drop.
pub struct Collector {
    child: Child,
    pub addr: String,
    pub log: PathBuf,
    agent: ureq::Agent,
}

pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// The collector command with a data dir, listening on a free port, with
/// static dirs that do not exist (unless `args` names others).
pub fn command(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    let none = data_dir.join("no-such-dir");
    let mut full: Vec<String> = vec![];
    if !args.contains(&"--config") {
        full.extend(["--listen".into(), "127.0.0.1:0".into()]);
        full.extend(["--data-dir".into(), data_dir.display().to_string()]);
    }
    if !args.contains(&"--www-dir") && !args.contains(&"--config") {
        full.extend(["--www-dir".into(), none.display().to_string()]);
    }
    if !args.contains(&"--agent-dir") && !args.contains(&"--config") {
        full.extend(["--agent-dir".into(), none.display().to_string()]);
    }
    full.extend(args.iter().map(|s| s.to_string()));
    cmd.args(full).env("RUST_LOG", "info");
    cmd
}

impl Collector {
    /// Starts on `data_dir` with the defaults of [`command`] plus `args`.
    pub fn start(data_dir: &Path, args: &[&str]) -> Collector {
        Collector::spawn(command(data_dir, args), data_dir)
    }

    /// Starts `cmd`, logging stderr to a file in `log_dir`, and waits for
    /// the listening line, then for `/readyz` to say ready (the store opens
    /// and loads after the collector listens), as an orchestrator would
    /// before sending traffic.
    pub fn spawn(cmd: Command, log_dir: &Path) -> Collector {
        let c = Collector::spawn_listening(cmd, log_dir);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let r = c.get("/readyz");
            if r.status == 200 {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "collector not ready: {}; log:\n{}",
                r.body,
                std::fs::read_to_string(&c.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts `cmd` like [`Collector::spawn`] but returns as soon as it
    /// listens (its store may still be opening or loading).
    pub fn spawn_listening(mut cmd: Command, log_dir: &Path) -> Collector {
        std::fs::create_dir_all(log_dir).unwrap();
        let log = log_dir.join(format!("collector-{}.log", std::process::id()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn collector");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix(PREFIX) {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "collector did not start; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            // Shorter than the collector's 5 s keep-alive: a pooled connection
            // is never reused just as the server closes it (a spurious EOF).
            .max_idle_age(Duration::from_secs(2))
            .build()
            .into();
        Collector {
            child,
            addr,
            log,
            agent,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn reply(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut resp = resp.expect("HTTP request failed");
        Reply {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.body_mut().read_to_string().unwrap(),
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        Collector::reply(self.agent.get(&self.url(path)).call())
    }

    /// GET with extra headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.get(&self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Collector::reply(req.call())
    }

    /// POST to /v1/beacon with extra headers.
    pub fn post_with(&self, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Reply {
        let mut req = self.agent.post(&self.url("/v1/beacon"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Collector::reply(req.send(body.as_ref()))
    }

    /// OPTIONS with extra headers.
    pub fn options_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.options(&self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Collector::reply(req.call())
    }

    pub fn post(&self, content_type: &str, body: impl AsRef<[u8]>) -> Reply {
        Collector::reply(
            self.agent
                .post(&self.url("/v1/beacon"))
                .header("Content-Type", content_type)
                .send(body.as_ref()),
        )
    }

    /// Posts with `Transfer-Encoding: chunked` (no Content-Length).
    pub fn post_chunked(&self, content_type: &str, body: &[u8]) -> Reply {
        let mut reader = body;
        Collector::reply(
            self.agent
                .post(&self.url("/v1/beacon"))
                .header("Content-Type", content_type)
                .send(ureq::SendBody::from_reader(&mut reader)),
        )
    }

    /// Posts like `navigator.sendBeacon` does.
    pub fn beacon(&self, body: &str) -> Reply {
        self.post("text/plain;charset=UTF-8", body)
    }

    pub fn options(&self, path: &str) -> Reply {
        Collector::reply(self.agent.options(&self.url(path)).call())
    }

    pub fn summary(&self) -> Value {
        let r = self.get("/v1/summary");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// The summary reduced to the pages and their metrics' count and p75:
    /// `{"pages": [{"site", "page", "metrics": {"FCP": {"count", "p75"}}}]}`.
    pub fn compact_summary(&self) -> Value {
        compact(&self.summary())
    }

    /// Reads `/metrics` and returns the value of the sample named exactly
    /// `sample` (with its labels), or None.
    pub fn metric_sample(&self, sample: &str) -> Option<f64> {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
            .lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
    }

    /// Sends SIGKILL and waits for the process to be gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "collector did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A beacon JSON with one metric report.
pub fn beacon_json(page: &str, name: &str, id: &str, value: f64) -> String {
    serde_json::json!({
        "schemaVersion": 1,
        "page": page,
        "pageViewId": "pv-1",
        "navigationType": "navigate",
        "formFactor": "desktop",
        "metrics": [{
            "name": name, "value": value, "delta": value, "id": id,
            "rating": "good", "navigationType": "navigate"
        }]
    })
    .to_string()
}

/// `{"count", "p75"}` of `summary.pages[page].metrics[name]`, or Null.
pub fn metric(summary: &Value, page: &str, name: &str) -> Value {
    summary["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["page"] == page)
        .map(|p| count_and_p75(&p["metrics"][name]))
        .unwrap_or(Value::Null)
}

fn count_and_p75(m: &Value) -> Value {
    if m.is_null() {
        return Value::Null;
    }
    serde_json::json!({"count": m["count"], "p75": m["p75"]})
}

/// See [`Collector::compact_summary`].
pub fn compact(summary: &Value) -> Value {
    let pages: Vec<Value> = summary["pages"]
        .as_array()
        .expect("pages")
        .iter()
        .map(|p| {
            let metrics: serde_json::Map<String, Value> = p["metrics"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, m)| (k.clone(), count_and_p75(m)))
                .collect();
            serde_json::json!({"site": p["site"], "page": p["page"], "metrics": metrics})
        })
        .collect();
    serde_json::json!({ "pages": pages })
}

/// Gzips `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[path = "../../src/testutil.rs"]
mod testutil;
#[allow(unused_imports)] // not every test file uses it
pub use testutil::Rng;

/// Waits, if needed, so that the next few seconds do not cross a UTC hour
/// (tests that compare windows computed here and in the collector).
pub fn away_from_hour_boundary() {
    let hour = 3_600_000;
    let now = collector::time::now_ms();
    let left = hour - now.rem_euclid(hour);
    if left < 10_000 {
        std::thread::sleep(Duration::from_millis(left as u64 + 100));
    }
}
