//! `latchkey keys generate`: a fresh signing key (PEM) for identity
//! assertions and bearer tokens, and the config lines that use it. Making
//! and reading keys is `identity::keys`'; this writes the file and the lines.

use std::io::Write as _;
use std::path::Path;

use rand::RngCore;

use super::tokens::{now_ms, CliError};
use crate::identity::keys::{generate_pem, Alg, JWKS_MAX_AGE};
use crate::signin::time_text::{human_duration, rfc3339};

/// `latchkey keys generate [--alg es256|eddsa] [--kid ID] [--out FILE]`:
/// a fresh private key (PEM) and the config lines that use it.
pub fn generate_key(alg: Alg, kid: Option<String>, out: Option<&Path>) -> Result<(), CliError> {
    let kid = kid.unwrap_or_else(default_kid);
    let pem = generate_pem(alg)?;
    let file = match out {
        Some(path) => {
            write_private(path, &pem)?;
            path.display().to_string()
        }
        None => format!("/etc/latchkey/keys/{kid}.pem"),
    };
    let saved = match out {
        Some(_) => format!(
            "Wrote a new {} private key to {file} (mode 0600).",
            alg.name()
        ),
        None => format!(
            "A new {} private key is on standard output. Save it where only latchkey can\n\
             read it, e.g. {file} (chmod 600), or run again with --out {file}.",
            alg.name()
        ),
    };
    eprintln!(
        "{saved}\n\n\
         Then list it in latchkey.toml; the first key signs, every key is published\n\
         at /.latchkey/jwks.json:\n\n  \
         [assertion]\n  \
         keys = [\n    \
         {{ kid = \"{kid}\", file = \"{file}\" }},\n  \
         ]\n\n\
         To rotate without a gap: add the new key last, wait {} (how long\n\
         verifiers may cache the JWKS), move it first, and remove the old key once\n\
         the tokens it signed have expired.",
        human_duration(JWKS_MAX_AGE)
    );
    if out.is_none() {
        print!("{pem}");
    }
    Ok(())
}

/// Today's date and four random hex digits: `2026-11-03-9f2c`.
fn default_kid() -> String {
    let date = rfc3339(now_ms());
    let mut b = [0u8; 2];
    rand::rng().fill_bytes(&mut b);
    format!(
        "{}-{:02x}{:02x}",
        date.get(..10).unwrap_or("key"),
        b[0],
        b[1]
    )
}

fn write_private(path: &Path, pem: &str) -> Result<(), CliError> {
    let err = |source| CliError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(err)?;
    f.write_all(pem.as_bytes()).map_err(err)
}

/// Parses `--alg`.
pub fn parse_alg(s: &str) -> Result<Alg, String> {
    match s.to_ascii_lowercase().as_str() {
        "es256" => Ok(Alg::Es256),
        "eddsa" | "ed25519" => Ok(Alg::EdDsa),
        _ => Err(format!("{s:?}: expected es256 or eddsa")),
    }
}
