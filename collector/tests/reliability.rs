//! What a `204` promises under ordinary operation: re-reports while the
//! alert engine writes, restarts, a full disk, slow clients. Each test
//! runs the real binary on a real data directory.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::Collector;
use serde_json::json;

/// A client that sees every status (no error for 4xx/5xx).
fn client(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// Every report of site `a.example` in `/v1/export`, by id: its value.
fn exported_values(c: &Collector) -> HashMap<String, f64> {
    let r = c.get("/v1/export?format=json&site=a.example");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["value"].as_f64().unwrap()))
        .collect()
}

/// Compares the last acknowledged value of each id with the export.
fn assert_exported(acked: &HashMap<String, f64>, stored: &HashMap<String, f64>) {
    let wrong: Vec<String> = acked
        .iter()
        .filter(|(id, v)| stored.get(*id) != Some(v))
        .map(|(id, v)| format!("{id}: acknowledged {v}, exported {:?}", stored.get(id)))
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} ids differ, e.g. {wrong:?}",
        acked.iter().filter(|(id, v)| stored.get(*id) != Some(v)).count(),
        acked.len()
    );
}

/// A config file for a collector on a free port with its data in `dir`,
/// plus `extra` (TOML); its path.
fn config_file(dir: &std::path::Path, extra: &str) -> String {
    let path = dir.join("vitalsign.toml");
    let none = dir.join("none").display().to_string();
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nwww_dir = {none:?}\nagent_dir = {none:?}\n{extra}",
        dir.join("data").display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Alert rules that flip on every page as values go back and forth, and a
/// receiver that refuses connections (so the outbox records attempts too).
const FLIPPING_ALERTS: &str = r#"
[alerts]
evaluation_interval = "1s"

[[alerts.receivers]]
name = "nowhere"
type = "webhook"
url = "http://127.0.0.1:9/"
max_attempts = 1000
initial_backoff = "200ms"
max_backoff = "200ms"

[[alerts.rules]]
name = "cls"
metric = "CLS"
threshold = 0.1
min_samples = 1
for = "0"
resolve_margin_percent = 0

[[alerts.rules]]
name = "inp"
metric = "INP"
threshold = 200
min_samples = 1
for = "0"
resolve_margin_percent = 0

[[alerts.rules]]
name = "inp-pending"
metric = "INP"
threshold = 150
min_samples = 1
for = "1s"
resolve_margin_percent = 0
"#;

/// Finding 1: the alert engine's writes (a second writer of the metric
/// store's file) made re-reports fail with `500 database is locked`.
#[test]
fn re_reports_are_stored_while_alerts_flip_every_second() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), FLIPPING_ALERTS);
    let c = Collector::start(dir.path(), &["--config", &config, "--rate-per-ip", "0"]);
    let url = c.url("/v1/beacon");
    let acked = Mutex::new(HashMap::new());
    let failures = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (url, acked, failures, stop) = (&url, &acked, &failures, &stop);
            s.spawn(move || {
                let agent = client(Duration::from_secs(10));
                let mut mine: HashMap<String, f64> = HashMap::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // 8 page views per thread at a time, each re-reporting
                    // its CLS and INP as they grow, across good and poor.
                    let view = i % 8;
                    let round = i / 8;
                    let page = format!("https://a.example/p{}", (t * 8 + view) % 12);
                    let generation = round / 20; // a new page view every 20 rounds
                    let cls_id = format!("cls-{t}-{view}-{generation}");
                    let inp_id = format!("inp-{t}-{view}-{generation}");
                    let step = (round % 20) as f64;
                    let (cls, inp) = if (round / 3).is_multiple_of(2) {
                        (0.01 * (step + 1.0), 40.0 + step)
                    } else {
                        (0.3 + 0.01 * step, 600.0 + step)
                    };
                    let body = json!({"schemaVersion": 1, "page": page, "pageViewId": format!("pv-{t}-{view}-{generation}"),
                        "metrics": [
                            {"name": "CLS", "value": cls, "delta": 0.01, "id": cls_id, "rating": "good", "navigationType": "navigate"},
                            {"name": "INP", "value": inp, "delta": 1, "id": inp_id, "rating": "good", "navigationType": "navigate"},
                            {"name": "LCP", "value": 1000 + i, "delta": 1000 + i, "id": format!("lcp-{t}-{i}"), "rating": "good", "navigationType": "navigate"}
                        ]});
                    match agent
                        .post(url)
                        .header("Content-Type", "text/plain;charset=UTF-8")
                        .send(body.to_string().as_bytes())
                    {
                        Ok(r) if r.status() == 204 => {
                            mine.insert(cls_id, cls);
                            mine.insert(inp_id, inp);
                            mine.insert(format!("lcp-{t}-{i}"), (1000 + i) as f64);
                        }
                        Ok(mut r) => failures.lock().unwrap().push(format!(
                            "{}: {}",
                            r.status(),
                            r.body_mut().read_to_string().unwrap_or_default()
                        )),
                        Err(e) => failures.lock().unwrap().push(format!("request failed: {e}")),
                    }
                    i += 1;
                }
                acked.lock().unwrap().extend(mine);
            });
        }
        // Several evaluations, each flipping some series.
        std::thread::sleep(Duration::from_secs(6));
        stop.store(true, Ordering::Relaxed);
    });
    let failures = failures.into_inner().unwrap();
    let acked = acked.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} beacons failed in {:?} (first: {:?})",
        failures.len(),
        started.elapsed(),
        &failures[..failures.len().min(3)]
    );
    assert!(acked.len() > 300, "the load ran: {} ids", acked.len());
    // The alerts did flip meanwhile (the test exercises what it claims).
    let alerts = c.get("/v1/alerts?state=all&history=50").json();
    let transitions: usize = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["history"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(transitions >= 6, "alert transitions: {transitions}: {alerts}");
    assert_exported(&acked, &exported_values(&c));
}

/// What a raw HTTP exchange ended with.
#[derive(Debug)]
enum Sent {
    /// The status code and the body.
    Answered(u16, String),
    /// The TCP connection was refused: nothing listened.
    Refused,
    /// Anything else (reset, timeout): the beacon may or may not be stored.
    Failed(String),
}

/// Posts `body` as `sendBeacon` would, on a connection of its own
/// (`Connection: close`), with a plain TCP socket: a refusal is told apart
/// from every other failure.
fn post_raw(addr: &str, body: &str) -> Sent {
    use std::io::{Read, Write};
    let mut stream = match std::net::TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Sent::Refused,
        Err(e) => return Sent::Failed(format!("connect: {e}")),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let request = format!(
        "POST /v1/beacon HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Err(e) = stream.write_all(request.as_bytes()) {
        return Sent::Failed(format!("write: {e}"));
    }
    let mut answer = String::new();
    if let Err(e) = stream.read_to_string(&mut answer) {
        return Sent::Failed(format!("read: {e}"));
    }
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok());
    match status {
        Some(status) => Sent::Answered(status, answer),
        None => Sent::Failed(format!("no status line: {answer:?}")),
    }
}

/// The collector command on `data`, serving the listening socket
/// `listener` by socket activation (`LISTEN_FDS`, as systemd passes it):
/// the socket outlives each collector process, so connections made while
/// none runs wait in its backlog.
fn activated(listener: &std::net::TcpListener, data: &std::path::Path, args: &[&str]) -> std::process::Command {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let none = data.join("none").display().to_string();
    let mut cmd = std::process::Command::new("sh");
    // `$$` is the shell's pid, which `exec` hands to the collector.
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"")
        .arg(common::BIN)
        .args([
            "--data-dir",
            &data.display().to_string(),
            "--www-dir",
            &none,
            "--agent-dir",
            &none,
        ])
        .args(args)
        .env("RUST_LOG", "info");
    let fd = listener.as_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Descriptor 3, without close-on-exec (dup2 clears it; on 3
            // itself it is cleared by hand).
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) >= 0
            } else {
                libc::dup2(fd, 3) >= 0
            };
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd
}

/// Seeds `data` with `n` LCP reports (so that loading it takes a moment).
fn seed(data: &std::path::Path, n: usize) {
    use collector::beacon::{FormFactor, MetricName, NavigationType};
    use collector::store::{NewBeacon, NewReport, Sqlite, SqliteOptions, Store};
    let store = Sqlite::open_in_dir(data, SqliteOptions::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = collector::time::now_ms();
    rt.block_on(async {
        for chunk in 0..n / 1000 {
            let beacons = (0..1000)
                .map(|i| NewBeacon {
                    site: "seed.example".into(),
                    page: format!("https://seed.example/{}", i % 50),
                    form_factor: Some(FormFactor::Desktop),
                    page_view_id: None,
                    session_id: None,
                    received_at_ms: now,
                    reports: vec![NewReport {
                        metric: MetricName::Lcp,
                        report_id: format!("seed-{chunk}-{i}"),
                        value: 1000.0 + i as f64,
                        delta: 1.0,
                        navigation_type: NavigationType::Navigate,
                        attribution: None,
                    }],
                })
                .collect();
            store.insert(beacons).await.unwrap();
        }
    });
    store.close().unwrap();
}

/// Finding 3: nothing listened until the store had loaded (seconds on a
/// large store), so a restart refused beacons. Now the collector binds at
/// once, takes beacons into its intake while loading, and, with the socket
/// passed by a supervisor, not even the moments between two processes
/// refuse a connection.
#[test]
fn beacons_across_a_restart_are_never_refused_and_every_204_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data, 200_000);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let args = ["--rate-per-ip", "0"];
    let first = Collector::spawn(activated(&listener, &data, &args), dir.path());
    assert_eq!(first.addr, addr, "serves the passed socket");

    let stop = AtomicBool::new(false);
    let acked = Mutex::new(HashMap::new());
    let outcomes = Mutex::new(HashMap::<String, usize>::new());
    let second = std::thread::scope(|s| {
        for t in 0..4 {
            let (addr, stop, acked, outcomes) = (&addr, &stop, &acked, &outcomes);
            s.spawn(move || {
                let mut mine = HashMap::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // CLS re-reported under one id per 10 beacons, across
                    // the restart; LCP new each time.
                    let cls_id = format!("cls-{t}-{}", i / 10);
                    let cls = 0.01 * (i % 10 + 1) as f64;
                    let lcp_id = format!("lcp-{t}-{i}");
                    let body = json!({"schemaVersion": 1, "page": format!("https://a.example/{}", i % 7), "metrics": [
                        {"name": "CLS", "value": cls, "delta": 0.01, "id": cls_id, "rating": "good", "navigationType": "navigate"},
                        {"name": "LCP", "value": 500 + i, "delta": 500 + i, "id": lcp_id, "rating": "good", "navigationType": "navigate"}]})
                    .to_string();
                    let outcome = match post_raw(addr, &body) {
                        Sent::Answered(204, _) => {
                            mine.insert(cls_id, cls);
                            mine.insert(lcp_id, (500 + i) as f64);
                            "204".to_string()
                        }
                        Sent::Answered(503, answer) => {
                            assert!(answer.to_ascii_lowercase().contains("retry-after:"), "{answer}");
                            "503".into()
                        }
                        Sent::Answered(status, answer) => panic!("unexpected {status}: {answer}"),
                        Sent::Refused => "refused".into(),
                        Sent::Failed(e) => format!("failed: {e}"),
                    };
                    *outcomes.lock().unwrap().entry(outcome).or_default() += 1;
                    i += 1;
                }
                acked.lock().unwrap().extend(mine);
            });
        }
        std::thread::sleep(Duration::from_millis(700));
        let status = first.terminate();
        assert!(status.success(), "{status}");
        // A moment with no collector at all: connections wait in the backlog.
        std::thread::sleep(Duration::from_millis(200));
        let second = Collector::spawn_listening(activated(&listener, &data, &args), dir.path());
        let started = Instant::now();
        while second.get("/readyz").status != 200 {
            assert!(started.elapsed() < Duration::from_secs(30), "not ready after 30 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        second
    });
    let outcomes = outcomes.into_inner().unwrap();
    let refused = outcomes.get("refused").copied().unwrap_or(0);
    assert_eq!(refused, 0, "connections refused: {outcomes:?}");
    // Nor reset: the old process takes every connection it accepted
    // before it stops (actix drops those still queued for a worker).
    assert!(!outcomes.keys().any(|k| k.starts_with("failed")), "{outcomes:?}");
    assert!(outcomes.get("204").copied().unwrap_or(0) > 100, "{outcomes:?}");
    // The second collector took beacons while it was loading.
    let deferred = second.metric_sample("vitalsign_reports_deferred_total").unwrap();
    assert!(deferred > 0.0, "no beacon arrived while loading: {outcomes:?}");
    let acked = acked.into_inner().unwrap();
    let stored = exported_values(&second);
    assert_exported(&acked, &stored);
    assert_eq!(stored.len(), acked.len(), "nothing unacknowledged is counted twice");
    eprintln!("restart: {outcomes:?}, {deferred} reports taken while loading");
}

/// A tmpfs of its own for a test (needs root, as CI runs): unmounted on
/// drop.
struct SmallDisk {
    mount: std::path::PathBuf,
}

impl SmallDisk {
    /// `None` (the test says why and passes) where it cannot be mounted.
    fn mount(at: std::path::PathBuf, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(&at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here (not root?); CI runs this test as root");
            return None;
        }
        Some(SmallDisk { mount: at })
    }

    /// Writes a file until the disk has no space left at all.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.mount.join("filler")).unwrap();
        for chunk in [1 << 16, 4096, 512, 1] {
            let bytes = vec![0u8; chunk];
            while f.write_all(&bytes).and_then(|()| f.flush()).is_ok() {}
        }
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.mount.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// Polls `path` until it answers `status` (at most 15 s).
fn wait_for(c: &Collector, path: &str, status: u16) -> common::Reply {
    let started = Instant::now();
    loop {
        let r = c.get(path);
        if r.status == status {
            return r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{path}: {} after 15 s, not {status}: {}",
            r.status,
            r.body
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Finding 4: on a full disk, beacons got 500 while `/readyz` said ready,
/// and a start on a full disk exited with "disk I/O error".
#[test]
fn a_full_disk_answers_503_fails_readiness_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(dir.path().join("disk"), "8m") else {
        return;
    };
    let data = disk.mount.join("data");
    let args = ["--rate-per-ip", "0"];
    // The log goes outside the small disk.
    let c = Collector::spawn(common::command(&data, &args), dir.path());
    let mut acked = HashMap::new();
    /// Sends an LCP report; remembers it if acknowledged.
    fn send_to(c: &Collector, acked: &mut HashMap<String, f64>, id: String, value: f64) -> common::Reply {
        let r = c.beacon(&common::beacon_json("https://a.example/x", "LCP", &id, value));
        if r.status == 204 {
            acked.insert(id, value);
        }
        r
    }
    macro_rules! send {
        ($c:expr, $id:expr, $v:expr) => {
            send_to($c, &mut acked, $id, $v)
        };
    }
    for i in 0..20 {
        assert_eq!(send!(&c, format!("before-{i}"), 1000.0 + i as f64).status, 204);
    }
    disk.fill();
    // What the WAL had room for still commits; then 503, never 500.
    let mut refused = None;
    for i in 0..5000 {
        let r = send!(&c, format!("full-{i}"), 2000.0);
        match r.status {
            204 => continue,
            503 => {
                refused = Some(r);
                break;
            }
            s => panic!("beacon on a full disk got {s}: {}", r.body),
        }
    }
    let refused = refused.expect("a full disk never refused a beacon");
    assert_eq!(refused.json()["reason"], "disk_full", "{}", refused.body);
    assert!(refused.header("retry-after").is_some(), "{:?}", refused.headers);
    let ready = c.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(
        ready.json()["reason"].as_str().unwrap().contains("disk full"),
        "{}",
        ready.body
    );
    assert!(ready.header("retry-after").is_some());
    assert_eq!(c.metric_sample("vitalsign_store_disk_full"), Some(1.0));
    assert_eq!(c.metric_sample("vitalsign_ready"), Some(0.0));
    // Reads go on.
    assert_eq!(c.get("/v1/summary").status, 200);

    disk.free();
    wait_for(&c, "/readyz", 200);
    assert_eq!(send!(&c, "after".into(), 3000.0).status, 204);
    assert_exported_site(&c, &acked);
    assert!(c.terminate().success());

    // A start on a full disk: it listens, serves reads, refuses writes
    // with 503, and takes them again once space is back.
    disk.fill();
    let c = Collector::spawn_listening(common::command(&data, &args), dir.path());
    let summary = wait_for(&c, "/v1/summary", 200);
    let count = summary.json()["sites"][0]["metrics"]["LCP"]["count"].as_u64();
    assert_eq!(count, Some(acked.len() as u64), "{}", summary.body);
    let ready = c.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(
        ready.json()["reason"].as_str().unwrap().contains("disk full"),
        "{}",
        ready.body
    );
    let r = send!(&c, "while-full".into(), 4000.0);
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (503, json!("disk_full")),
        "{}",
        r.body
    );
    assert_exported_site(&c, &acked);
    disk.free();
    wait_for(&c, "/readyz", 200);
    assert_eq!(send!(&c, "at-last".into(), 5000.0).status, 204);
    assert_exported_site(&c, &acked);
    let log = std::fs::read_to_string(&c.log).unwrap();
    assert!(log.contains("serving the store read-only"), "{log}");
}

/// The export of site `a.example` equals `acked`, id by id.
fn assert_exported_site(c: &Collector, acked: &HashMap<String, f64>) {
    let stored = exported_values(c);
    assert_exported(acked, &stored);
    assert_eq!(stored.len(), acked.len(), "only what was acknowledged");
}

/// Finding 5: a body sent a byte every 10 s held its connection for 100 s,
/// and a graceful shutdown waited for it.
#[test]
fn a_trickling_body_gets_408_and_shutdown_does_not_wait_for_it() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--body-timeout", "1s"]);
    // Headers at once, then the body a byte at a time, 300 ms apart.
    let trickle = |addr: &str| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(
            b"POST /v1/beacon HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n{",
        )
        .unwrap();
        let mut writer = s.try_clone().unwrap();
        std::thread::spawn(move || {
            while writer.write_all(b" ").is_ok() {
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        s
    };
    let started = Instant::now();
    let mut s = trickle(&c.addr);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("body_timeout"), "{answer:?}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert!(c.metric_sample("vitalsign_beacons_rejected_total{reason=\"body_timeout\"}") >= Some(1.0));

    // SIGTERM with a trickling client attached: the collector stops within
    // the body timeout and a moment, not whenever the client finishes.
    let _held = trickle(&c.addr);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let status = c.terminate();
    let took = started.elapsed();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
}
