//! The baseline of `scripts/bench-collector.sh`: an actix-web server whose
//! `POST /v1/beacon` reads the body and answers 204, doing nothing else.
//! Same worker count and settings as the collector.
//!
//! `cargo run --release -p vitalsign-collector --example noop_server -- 127.0.0.1:0 [WORKERS]`

use std::io::Write;

use actix_web::{web, App, HttpResponse, HttpServer};

async fn beacon(body: web::Bytes) -> HttpResponse {
    std::hint::black_box(body);
    HttpResponse::NoContent().finish()
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let workers = args
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(|| {
            App::new()
                .app_data(web::PayloadConfig::new(64 * 1024))
                .route("/v1/beacon", web::post().to(beacon))
        })
        .workers(workers)
        .backlog(4096)
        .bind(&listen)?;
        let addr = server.addrs()[0];
        let mut out = std::io::stdout().lock();
        writeln!(out, "noop server listening on http://{addr}")?;
        out.flush()?;
        drop(out);
        server.run().await
    })
}
