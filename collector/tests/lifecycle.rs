//! Startup, configuration, static files, restart and shutdown of the real
//! binary.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{beacon_json, command, metric, Collector, BIN, PREFIX};
use serde_json::json;

const PAGE: &str = "http://127.0.0.1:8080/";

/// Runs the binary expecting it to fail at startup; returns its stderr.
fn failed_start(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "should fail: {args:?}");
    assert!(!stdout.contains(PREFIX), "must not claim to listen: {stdout}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn data_survives_a_restart_even_after_kill() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Collector::start(dir.path(), &[]);
        assert!(dir.path().join("vitalsign.db").is_file());
        for (id, v) in [("a", 100.0), ("b", 200.0), ("c", 300.0)] {
            assert_eq!(c.beacon(&beacon_json(PAGE, "FCP", id, v)).status, 204);
        }
        // Dropped: SIGKILL. A 204 means committed, so nothing is lost.
    }
    let c = Collector::start(dir.path(), &[]);
    assert_eq!(metric(&c.summary(), PAGE, "FCP"), json!({"count": 3, "p75": 300.0}));
    // Dedup still works against rows written by the previous process.
    assert_eq!(c.beacon(&beacon_json(PAGE, "FCP", "c", 50.0)).status, 204);
    assert_eq!(metric(&c.summary(), PAGE, "FCP"), json!({"count": 3, "p75": 200.0}));
}

#[test]
fn sigterm_shuts_down_cleanly_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    assert_eq!(c.beacon(&beacon_json(PAGE, "LCP", "l", 1234.0)).status, 204);
    let status = c.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let c = Collector::start(dir.path(), &[]);
    assert_eq!(metric(&c.summary(), PAGE, "LCP"), json!({"count": 1, "p75": 1234.0}));
}

#[test]
fn the_data_dir_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/c");
    let c = Collector::start(&nested, &[]);
    assert_eq!(c.get("/healthz").status, 200);
    assert!(nested.join("vitalsign.db").is_file());
}

#[test]
fn config_file_values_are_used_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("site");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "<h1>hello from www</h1>").unwrap();
    let file_data = dir.path().join("from-file");
    let config = dir.path().join("vitalsign.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nwww_dir = {:?}\nagent_dir = {:?}\n",
            file_data.display().to_string(),
            www.display().to_string(),
            dir.path().join("none").display().to_string(),
        ),
    )
    .unwrap();
    let config = config.display().to_string();

    let c = Collector::spawn(
        {
            let mut cmd = Command::new(BIN);
            cmd.args(["--config", &config]).env("RUST_LOG", "info");
            cmd
        },
        dir.path(),
    );
    assert!(file_data.join("vitalsign.db").is_file(), "data_dir from the file");
    let r = c.get("/");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("hello from www"), "www_dir from the file: {}", r.body);
    drop(c);

    let flag_data = dir.path().join("from-flag");
    let flag_data_s = flag_data.display().to_string();
    let c = Collector::spawn(
        {
            let mut cmd = Command::new(BIN);
            cmd.args(["--config", &config, "--data-dir", &flag_data_s]);
            cmd
        },
        dir.path(),
    );
    assert!(
        flag_data.join("vitalsign.db").is_file(),
        "--data-dir overrides the file"
    );
    assert_eq!(c.get("/").status, 200);
}

#[test]
fn a_bad_config_file_fails_startup_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml").display().to_string();
    let err = failed_start(&["--config", &missing, "--listen", "127.0.0.1:0"]);
    assert!(
        err.contains(&missing) && err.contains("cannot read config file"),
        "{err}"
    );

    for (name, text, problem) in [
        ("syntax.toml", "listen = ", "invalid config file"),
        ("typo.toml", "listn = \"127.0.0.1:0\"\n", "unknown field `listn`"),
        ("type.toml", "listen = 8080\n", "invalid type"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let path = path.display().to_string();
        let err = failed_start(&["--config", &path, "--data-dir", &dir.path().display().to_string()]);
        assert!(err.contains(&path), "{name}: {err}");
        assert!(err.contains(problem), "{name}: {err}");
    }
}

#[test]
fn an_unusable_listen_address_fails_startup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let err = failed_start(&["--listen", "not-an-address", "--data-dir", &data]);
    assert!(err.contains("cannot listen on not-an-address"), "{err}");
}

#[test]
fn static_dirs_are_served_with_the_right_types() {
    let dir = tempfile::tempdir().unwrap();
    let (www, agent) = (dir.path().join("www"), dir.path().join("agent"));
    std::fs::create_dir(&www).unwrap();
    std::fs::create_dir(&agent).unwrap();
    std::fs::write(www.join("index.html"), "<p>demo</p>").unwrap();
    std::fs::write(agent.join("vitalsign.js"), "export const x = 1;").unwrap();
    std::fs::write(agent.join("vitalsign_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let (www_s, agent_s) = (www.display().to_string(), agent.display().to_string());
    let c = Collector::start(
        &dir.path().join("data"),
        &["--www-dir", &www_s, "--agent-dir", &agent_s],
    );

    let r = c.get("/");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("demo"));
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let r = c.get("/agent/vitalsign.js");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/javascript"),
        "{:?}",
        r.headers
    );
    let r = c.get("/agent/vitalsign_bg.wasm");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/wasm"));
    // The API still wins over the `/` mount.
    assert_eq!(c.get("/healthz").status, 200);
    assert_eq!(c.get("/v1/summary").status, 200);
}

#[test]
fn missing_static_dirs_are_not_mounted() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    assert_eq!(c.get("/").status, 404);
    assert_eq!(c.get("/agent/vitalsign.js").status, 404);
    assert_eq!(c.get("/healthz").status, 200);
    let log = std::fs::read_to_string(&c.log).unwrap();
    assert!(log.contains("www directory not found"), "{log}");
}

#[test]
fn port_zero_prints_the_bound_port() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::spawn(command(dir.path(), &[]), dir.path());
    let (host, port) = c.addr.rsplit_once(':').unwrap();
    assert_eq!(host, "127.0.0.1");
    assert_ne!(port.parse::<u16>().unwrap(), 0);
    // The port really is ours.
    assert!(std::net::TcpStream::connect_timeout(&c.addr.parse().unwrap(), Duration::from_secs(2)).is_ok());
}

/// Finding 2: `[alerts] enabled = false` panicked at start-up (a tokio
/// runtime dropped inside actix's).
#[test]
fn alerts_can_be_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vitalsign.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[alerts]\nenabled = false\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let c = Collector::spawn(
        {
            let mut cmd = Command::new(BIN);
            cmd.args(["--config", &config]).env("RUST_LOG", "info");
            cmd
        },
        dir.path(),
    );
    assert_eq!(c.beacon(&beacon_json(PAGE, "LCP", "l", 1234.0)).status, 204);
    let rules = c.get("/v1/alerts/rules").json();
    assert_eq!(rules["enabled"], false);
    let log = c.log.clone();
    let status = c.terminate();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(status.success() && !log.contains("panicked"), "{status}: {log}");
}

/// Finding 9: the first start on a new store logged that the last run
/// "did not shut down cleanly". A real crash still says so.
#[test]
fn only_a_crash_is_logged_as_an_unclean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let unclean = "did not shut down cleanly";
    let c = Collector::start(dir.path(), &[]);
    assert_eq!(c.beacon(&beacon_json(PAGE, "LCP", "l", 1234.0)).status, 204);
    let log = c.log.clone();
    c.kill();
    assert!(!std::fs::read_to_string(&log).unwrap().contains(unclean), "first start");
    let c = Collector::start(dir.path(), &[]);
    assert_eq!(metric(&c.summary(), PAGE, "LCP"), json!({"count": 1, "p75": 1234.0}));
    assert!(
        std::fs::read_to_string(&log).unwrap().contains(unclean),
        "after SIGKILL"
    );
}
