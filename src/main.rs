//! The `latchkey` command: parses the command line and hands off to the
//! library. The only place `anyhow` is used.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use latchkey::app::settings::Settings;
use latchkey::app::App;
use latchkey::cli::admin::{self, AdminError, SessionsCommand, UsersCommand};
use latchkey::config::{AppConfig, FileConfig, RuleConfig, UserConfig};
use latchkey::server::{self, ConfigSource};

/// mimalloc instead of glibc's malloc: the hot path allocates small,
/// short-lived buffers on two threads at once (see README, Performance).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        #[arg(long, default_value = "es256", value_parser = latchkey::cli::tokens::parse_alg)]
        alg: latchkey::identity::keys::Alg,
        /// Key id [default: today's date and 4 random hex digits].
        #[arg(long)]
        kid: Option<String>,
        /// Write the key to this new file (mode 0600) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Check { config } => return check(config),
        Command::Serve { config, ready_file } => run(|| serve(config, ready_file)),
        Command::Demo { listen } => run(|| demo(listen)),
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
        } => latchkey::cli::tokens::generate_key(alg, kid, out.as_deref()).map_err(Into::into),
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

fn config_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("LATCHKEY_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("latchkey.toml"))
}

/// Loads and compiles, printing every problem; `None` if there were any.
fn load(path: &std::path::Path) -> Option<(FileConfig, Settings)> {
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

fn check(config: Option<PathBuf>) -> ExitCode {
    let path = config_path(config);
    match load(&path) {
        Some((_, settings)) => {
            print!("{}", settings.describe());
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
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
    use latchkey::cli::tokens as cli;
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

async fn serve(config: Option<PathBuf>, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    let path = config_path(config);
    let (config, settings) =
        load(&path).ok_or_else(|| anyhow::anyhow!("the config has problems; nothing started"))?;
    start(settings, Some(ConfigSource { path, config }), ready_file).await
}

/// Serves until SIGTERM or Ctrl-C; SIGHUP re-reads `source` (none: demo).
async fn start(
    settings: Settings,
    source: Option<ConfigSource>,
    ready_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let listen = settings.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let admin = match settings.admin_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} (server.admin_listen)"))?,
        ),
        None => None,
    };
    let listen = listener.local_addr()?;
    let admin_addr = admin.as_ref().map(TcpListener::local_addr).transpose()?;
    let app = Arc::new(App::new(settings)?);
    if let Some(admin) = admin {
        let addr = admin.local_addr()?;
        tracing::info!(%addr, "admin listener: /healthz, /readyz, /metrics");
        tokio::spawn(latchkey::server::admin::serve(app.clone(), admin));
    }
    let https = app.settings.tls.is_some();
    tracing::info!(%listen, https, public_url = %app.settings.public_url, "latchkey is serving");
    if let Some(path) = ready_file {
        write_ready_file(&path, listen, admin_addr)?;
    }
    server::serve(app, listener, source, shutdown_signal()).await?;
    Ok(())
}

/// Writes the bound addresses to `path` in one step (a temporary file
/// renamed into place), so a reader never sees half of it.
fn write_ready_file(
    path: &std::path::Path,
    listen: SocketAddr,
    admin: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let mut text = format!("listen={listen}\n");
    if let Some(admin) = admin {
        text.push_str(&format!("admin={admin}\n"));
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing the ready file {}", path.display()))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
}

async fn demo(listen: SocketAddr) -> anyhow::Result<()> {
    let echo = TcpListener::bind("127.0.0.1:0")
        .await
        .context("starting the echo app")?;
    let echo_addr = echo.local_addr()?;
    tokio::spawn(latchkey::cli::echo::serve(echo, std::future::pending()));

    let port = listen.port();
    let upstream = format!("http://{echo_addr}");
    let mut cfg = FileConfig::default();
    cfg.server.listen = listen.to_string();
    cfg.server.public_url = format!("http://localhost:{port}");
    cfg.login.signup = "open".into();
    cfg.mail.transport = "console".into();
    cfg.users = vec![UserConfig {
        email: "alice@example.com".into(),
        roles: vec!["admin".into(), "member".into()],
    }];
    cfg.apps = ["localhost", "127.0.0.1"]
        .into_iter()
        .map(|host| AppConfig {
            host: host.into(),
            upstream: Some(upstream.clone()),
            ca_file: None,
        })
        .collect();
    cfg.rules = vec![
        RuleConfig {
            path: Some("/public/**".into()),
            policy: "public".into(),
            ..RuleConfig::default()
        },
        RuleConfig {
            path: Some("/admin/**".into()),
            policy: "roles".into(),
            roles: Some(vec!["admin".into()]),
            ..RuleConfig::default()
        },
    ];
    let settings =
        Settings::compile(&cfg).map_err(|p| anyhow::anyhow!("demo config: {}", p.join("; ")))?;
    println!(
        "\n  latchkey demo\n\n  \
         Open  http://localhost:{port}/  in your browser and sign in with any email address.\n  \
         The sign-in link is printed here (no mail is sent). alice@example.com is an admin;\n  \
         anyone else is a member. Try /admin/ (admins only) and /public/ (no sign-in).\n  \
         The app behind latchkey is a built-in echo: it shows the headers it received.\n  \
         Stop with Ctrl-C.\n"
    );
    start(settings, None, None).await
}
