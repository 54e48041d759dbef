//! The template files: the built-in ones embedded from `templates/`, the
//! `branding.template_dir` files that replace them (or are `{% include %}`d),
//! and how values are escaped into them. Compiling and test-rendering them
//! is `Pages::new`'s; what each page shows is `Page`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use minijinja::{AutoEscape, Environment, Output, State, Value};

/// The built-in templates, by the name a file in `template_dir` must have to
/// replace one.
pub(super) const BUILTIN: &[(&str, &str)] = &[
    ("style.css", include_str!("../../../templates/style.css")),
    ("base.html", include_str!("../../../templates/base.html")),
    ("login.html", include_str!("../../../templates/login.html")),
    (
        "check_email.html",
        include_str!("../../../templates/check_email.html"),
    ),
    (
        "confirm.html",
        include_str!("../../../templates/confirm.html"),
    ),
    (
        "wrong_browser.html",
        include_str!("../../../templates/wrong_browser.html"),
    ),
    (
        "link_invalid.html",
        include_str!("../../../templates/link_invalid.html"),
    ),
    (
        "logout_confirm.html",
        include_str!("../../../templates/logout_confirm.html"),
    ),
    (
        "signed_out.html",
        include_str!("../../../templates/signed_out.html"),
    ),
    (
        "account.html",
        include_str!("../../../templates/account.html"),
    ),
    (
        "step_up.html",
        include_str!("../../../templates/step_up.html"),
    ),
    (
        "forbidden.html",
        include_str!("../../../templates/forbidden.html"),
    ),
    ("error.html", include_str!("../../../templates/error.html")),
    (
        "email_subject.txt",
        include_str!("../../../templates/email_subject.txt"),
    ),
    ("email.txt", include_str!("../../../templates/email.txt")),
    ("email.html", include_str!("../../../templates/email.html")),
    (
        "new_device.txt",
        include_str!("../../../templates/new_device.txt"),
    ),
    (
        "new_device.html",
        include_str!("../../../templates/new_device.html"),
    ),
];

/// Adds every template file of `dir` (not recursive) to `env`.
pub(super) fn load_dir(
    env: &mut Environment<'static>,
    dir: &str,
    overridden: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let path = Path::new(dir);
    if !path.exists() {
        problems.push(format!("branding.template_dir: {dir:?}: no such directory"));
        return;
    }
    if !path.is_dir() {
        problems.push(format!("branding.template_dir: {dir:?}: not a directory"));
        return;
    }
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(format!("branding.template_dir: {dir:?}: {e}"));
            return;
        }
    };
    // Sorted, so the order of problems does not depend on the file system.
    let mut files = BTreeMap::new();
    for entry in entries.flatten() {
        let file = entry.path();
        let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let is_template = [".html", ".txt", ".css"]
            .iter()
            .any(|ext| name.ends_with(ext));
        if is_template && !name.starts_with('.') && file.is_file() {
            files.insert(name.to_owned(), file);
        }
    }
    for (name, file) in files {
        match std::fs::read_to_string(&file) {
            Ok(source) => match env.add_template_owned(name.clone(), source) {
                Ok(()) => {
                    overridden.insert(name);
                }
                Err(e) => problems.push(format!("branding.template_dir: {file:?}: {e}")),
            },
            Err(e) => problems.push(format!("branding.template_dir: {file:?}: {e}")),
        }
    }
}

/// Like minijinja's default, but leaves `/` alone so URLs stay readable in
/// `href`s and mail (escaping `/` buys nothing inside quoted attributes).
pub(super) fn escape_formatter(
    out: &mut Output,
    state: &State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if let (AutoEscape::Html, Some(s), false) =
        (state.auto_escape(), value.as_str(), value.is_safe())
    {
        out.write_str(&escape_html(s))
            .map_err(|_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "write failed"))
    } else {
        minijinja::escape_formatter(out, state, value)
    }
}

pub(super) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}
