//! The `latchkey` command line: parsing (clap) and dispatch. `serve` and
//! `demo` run the gateway (`serve.rs`, `demo.rs`); `users`, `sessions`,
//! `tokens` and `keys` work on the configured store and keys (`admin.rs`,
//! `tokens.rs`, `keys.rs`); `check` compiles a file and compares it with
//! a running instance (`check.rs`), `check --explain` says which rule
//! decides a request (`explain.rs`). The only layer that uses `anyhow`.

pub(crate) mod admin;
mod check;
pub(crate) mod demo;
pub mod echo;
pub(crate) mod explain;
pub(crate) mod keys;
pub(crate) mod serve;
pub(crate) mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::app::settings::Settings;
use crate::config::FileConfig;
use admin::{AdminError, SessionsCommand, UsersCommand};

#[derive(Parser)]
#[command(
    name = "latchkey",
    version,
    about = "An authentication gateway: magic-link sign-in in front of your apps"
)]
struct Cli {
    /// Log lines as text for people, or as one JSON object per line.
    #[arg(
        long,
        global = true,
        env = "LATCHKEY_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file [default: $LATCHKEY_CONFIG, else ./latchkey.toml]
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Once serving, write the bound addresses here (`listen=ADDR`, and
        /// `admin=ADDR` with an admin listener): the way to learn the port
        /// of `listen = "127.0.0.1:0"`.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Validate a config, print the compiled rules, exit 1 listing every problem.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// A running instance's admin listener (`http://HOST:PORT`, its
        /// `server.admin_listen`): also name the keys this file changes that
        /// it would take only after a restart.
        #[arg(long, value_name = "ADMIN_URL", conflicts_with = "explain")]
        running: Option<String>,
        /// Instead of the report: which rule decides a request to this URL,
        /// the decision (allow, sign in, step up, forbid) and why.
        #[arg(long, value_name = "URL")]
        explain: Option<String>,
        /// With --explain: the request's method.
        #[arg(long, default_value = "GET", requires = "explain")]
        method: String,
        /// With --explain: the caller, a user from [[users]].
        #[arg(
            long,
            value_name = "EMAIL",
            requires = "explain",
            conflicts_with = "roles"
        )]
        user: Option<String>,
        /// With --explain: the caller's roles (comma-separated).
        #[arg(long, value_name = "a,b", requires = "explain")]
        roles: Option<String>,
        /// With --explain: how the session was made (`passkey` proves one).
        #[arg(long, requires = "explain")]
        amr: Option<String>,
    },
    /// Manage users in the configured store (not those in the config file).
    Users {
        /// Config file [default: $LATCHKEY_CONFIG, else ./latchkey.toml]
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// List or end sessions in the configured store.
    Sessions {
        /// Config file [default: $LATCHKEY_CONFIG, else ./latchkey.toml]
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Everything running with no set-up: memory store, links printed here, a built-in echo app.
    Demo {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Long-lived bearer tokens for scripts and API clients (needs [redis]).
    Tokens {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: TokensAction,
    },
    /// Signing keys for identity assertions and bearer tokens.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Subcommand)]
enum TokensAction {
    /// Make a token; it is printed once on standard output.
    Issue {
        /// The user it speaks for (in [[users]] or the store).
        #[arg(long)]
        email: String,
        /// How long it is valid, like "30d" or "12h".
        #[arg(long, default_value = "30d")]
        ttl: String,
        /// What it is for, shown by `tokens list`.
        #[arg(long)]
        name: String,
    },
    /// List live tokens (id, name, user, dates; never the token itself).
    List {
        #[arg(long)]
        email: Option<String>,
    },
    /// Revoke a token by its id: it stops working on its next request.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Print a fresh signing key (PEM) and the config lines that use it.
    Generate {
        /// es256 (P-256, the default) or eddsa (Ed25519).
        #[arg(long, default_value = "es256", value_parser = keys::parse_alg)]
        alg: crate::identity::keys::Alg,
        /// Key id [default: today's date and 4 random hex digits].
        #[arg(long)]
        kid: Option<String>,
        /// Write the key to this new file (mode 0600) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs the `latchkey` command line; the binary's `main` is only this.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Check {
            config,
            explain: Some(url),
            method,
            user,
            roles,
            amr,
            ..
        } => {
            let caller = explain::Caller {
                user: user.as_deref(),
                roles: roles.as_deref(),
                amr: amr.as_deref(),
            };
            return check_explain(config, &url, &method, &caller);
        }
        Command::Check {
            config, running, ..
        } => return check::check(config, running),
        Command::Serve { config, ready_file } => run(|| serve::serve(config, ready_file)),
        Command::Demo { listen } => run(|| demo::demo(listen)),
        Command::Users { config, command } => {
            return admin(config, |s| async move { admin::users(&s, command).await })
        }
        Command::Sessions { config, command } => {
            return admin(
                config,
                |s| async move { admin::sessions(&s, command).await },
            )
        }
        Command::Tokens { config, action } => run(|| tokens(config, action)),
        Command::Keys {
            action: KeysAction::Generate { alg, kid, out },
        } => keys::generate_key(alg, kid, out.as_deref()).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by `LATCHKEY_LOG` (default `info`). Text
/// is coloured only on a terminal; JSON carries the request's span (its
/// `request_id`) on every line logged while serving it.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

pub(crate) fn config_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("LATCHKEY_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("latchkey.toml"))
}

/// Loads and compiles, printing every problem; `None` if there were any.
pub(crate) fn load(path: &std::path::Path) -> Option<(FileConfig, Settings)> {
    if !path.is_file() {
        eprintln!(
            "latchkey: config file {} not found (give one with --config FILE or LATCHKEY_CONFIG)",
            path.display()
        );
        return None;
    }
    let compiled = FileConfig::load(Some(path))
        .map_err(|e| e.problems())
        .and_then(|cfg| Settings::compile(&cfg).map(|s| (cfg, s)));
    match compiled {
        Ok(s) => Some(s),
        Err(problems) => {
            eprintln!("{}: {} problem(s):", path.display(), problems.len());
            for p in problems {
                eprintln!("  - {p}");
            }
            None
        }
    }
}

fn check_explain(
    config: Option<PathBuf>,
    url: &str,
    method: &str,
    caller: &explain::Caller<'_>,
) -> ExitCode {
    let Some((_, settings)) = load(&config_path(config)) else {
        return ExitCode::FAILURE;
    };
    match explain::explain(&settings, url, method, caller) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("latchkey: {e}");
            ExitCode::from(2)
        }
    }
}

/// `users` and `sessions`: prints what the command says, or its error.
fn admin<F, Fut>(config: Option<PathBuf>, f: F) -> ExitCode
where
    F: FnOnce(Settings) -> Fut,
    Fut: std::future::Future<Output = Result<String, AdminError>>,
{
    let Some((_, settings)) = load(&config_path(config)) else {
        return ExitCode::FAILURE;
    };
    match run(|| async { Ok(f(settings).await) }) {
        Ok(Ok(out)) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("latchkey: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("latchkey: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run<T, F, Fut>(f: F) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    // One crypto provider for every TLS user in the process (lettre's SMTP).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f())
}

async fn tokens(config: Option<PathBuf>, action: TokensAction) -> anyhow::Result<()> {
    use tokens as cli;
    let path = config_path(config);
    let (_, settings) =
        load(&path).ok_or_else(|| anyhow::anyhow!("the config has problems; nothing done"))?;
    match action {
        TokensAction::Issue { email, ttl, name } => {
            cli::issue(&settings, &email, &ttl, &name).await
        }
        TokensAction::List { email } => cli::list(&settings, email.as_deref()).await,
        TokensAction::Revoke { id } => cli::revoke(&settings, &id).await,
    }
    .map_err(Into::into)
}
