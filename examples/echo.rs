//! An upstream that shows the headers it received: put it behind latchkey
//! (or behind nginx, Caddy or Traefik asking latchkey) and open it in a
//! browser to see X-Auth-User-Id, X-Auth-Email and X-Auth-Roles arrive, and
//! that nothing a client forged got through. Programs get the same as JSON.
//!
//! ```sh
//! cargo run --example echo -- 127.0.0.1:3000
//! ```
//!
//! It is latchkey's built-in echo app (`latchkey::cli::echo`), the same one
//! `latchkey demo` runs, on an address of your choice. Ctrl-C stops it.

use std::net::SocketAddr;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    let addr: SocketAddr = match arg.as_deref().unwrap_or("127.0.0.1:3000").parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "echo: {:?} is not an address like 127.0.0.1:3000: {e}",
                arg.unwrap_or_default()
            );
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("echo: listening on http://{addr}/ (Ctrl-C stops)");
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    latchkey::cli::echo::serve(listener, ctrl_c).await;
    ExitCode::SUCCESS
}
