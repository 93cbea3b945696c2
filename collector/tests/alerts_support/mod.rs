//! For the alert tests: an HTTP sink on loopback that answers as told and
//! records every request, a real Alertmanager, and config files.
#![allow(dead_code)] // each test file uses a different part of this

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;

/// One request the sink received, and what it answered.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub at: Instant,
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: String,
    pub status: u16,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `status` of an Alertmanager-webhook-shaped body.
    pub fn alert_status(&self) -> String {
        self.json()["status"].as_str().unwrap_or("").to_string()
    }
}

/// What the sink answers to its n-th request (0-based): status and headers.
pub type Answer = Box<dyn Fn(usize) -> (u16, Vec<(String, String)>) + Send + Sync>;

/// A tiny HTTP/1.1 server on 127.0.0.1 (one request per connection).
pub struct Sink {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    /// Answers 200 to everything.
    pub fn ok() -> Sink {
        Sink::start(Box::new(|_| (200, vec![])))
    }

    /// Answers `status` to the first `n` requests, then 200.
    pub fn failing_first(n: usize, status: u16) -> Sink {
        Sink::start(Box::new(move |i| if i < n { (status, vec![]) } else { (200, vec![]) }))
    }

    pub fn start(answer: Answer) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let n = requests.lock().unwrap().len();
                            if let Some(r) = serve(stream, &answer, n) {
                                requests.lock().unwrap().push(r);
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Sink {
            url,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the requests so far; panics after
    /// `timeout` with what was received.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&[Recorded]) -> bool) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.requests();
            if pred(&r) {
                return r;
            }
            if Instant::now() > deadline {
                let bodies: Vec<String> = r.iter().map(|r| format!("{} {}", r.status, r.body)).collect();
                panic!(
                    "sink: timed out waiting for {what}; received {}:\n{}",
                    r.len(),
                    bodies.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, answer: &Answer, n: usize) -> Option<Recorded> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    // A connection closed before its request (a collector killed while
    // connecting) is not a request.
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let (status, extra) = answer(n);
    let mut out = stream;
    let mut resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n");
    for (k, v) in &extra {
        resp.push_str(&format!("{k}: {v}\r\n"));
    }
    resp.push_str("\r\n");
    let _ = out.write_all(resp.as_bytes());
    let _ = out.flush();
    Some(Recorded {
        at: Instant::now(),
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
    })
}

/// `sha256=` + hex HMAC-SHA256, computed here independently of the
/// collector's code.
pub fn expected_signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Writes `vitalsign.toml` in `dir`: listening on a free port, data in
/// `dir/data`, no static dirs, then `extra` (top-level keys, then the
/// `[alerts]` tables), then no rate limits.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("vitalsign.toml");
    let none = dir.join("no-such-dir");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nwww_dir = {:?}\nagent_dir = {:?}\n\n{extra}\n\n[limits]\nrate_per_ip = 0\n",
        dir.join("data").display().to_string(),
        none.display().to_string(),
        none.display().to_string(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Polls `f` until it returns Some; panics with `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A real Alertmanager on a free loopback port, clustering off, with a
/// temporary config and storage; stopped on drop.
pub struct Alertmanager {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Alertmanager {
    pub fn start(dir: &Path) -> Alertmanager {
        assert!(
            Path::new(ALERTMANAGER).exists(),
            "{ALERTMANAGER} is missing: install it with scripts/setup-alertmanager.sh \
             (Debian's prometheus-alertmanager package)"
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.join("alertmanager.yml");
        // One route to a receiver with no integrations: alerts are kept
        // and listed, nothing is sent anywhere.
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let log = dir.join("alertmanager.log");
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prometheus-alertmanager");
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let agent = agent();
        let ready = format!("{}/-/ready", am.url);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !agent.get(&ready).call().is_ok_and(|r| r.status() == 200) {
            assert!(
                Instant::now() < deadline,
                "Alertmanager did not get ready; log:\n{}",
                std::fs::read_to_string(&am.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        am
    }

    /// `GET /api/v2/alerts`: the alerts Alertmanager holds as not resolved.
    pub fn alerts(&self) -> Vec<Value> {
        let mut r = agent().get(&format!("{}/api/v2/alerts", self.url)).call().unwrap();
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        v.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        // Shorter than the collector's 5 s keep-alive: a pooled connection
        // is never reused just as the server closes it (a spurious EOF).
        .max_idle_age(Duration::from_secs(2))
        .build()
        .into()
}
