//! `[store] path` checked as configuration: refused beside `[redis]`,
//! empty, or naming a directory. Nothing is opened here: `check` must not
//! take the lock of a running instance's store.

use std::path::PathBuf;

/// Compiles `[store] path` (`redis_given`: the config has `[redis]` too,
/// which is refused). Does not open the file: `check` must not take the
/// lock of a running instance's store.
pub fn compile(path: &str, redis_given: bool) -> Result<PathBuf, Vec<String>> {
    let mut problems = Vec::new();
    if redis_given {
        problems.push(
            "store.path: given together with [redis]; expected one store: [redis] (shared by every instance) or [store] path (one instance), not both".to_owned(),
        );
    }
    let file = PathBuf::from(path);
    if path.trim().is_empty() {
        problems.push(
            "store.path: empty; expected the store file, like \"/var/lib/latchkey/store\""
                .to_owned(),
        );
    } else if file.is_dir() {
        problems.push(format!(
            "store.path: {path:?} is a directory; expected the store file, like \"{}\"",
            file.join("store").display()
        ));
    }
    if problems.is_empty() {
        Ok(file)
    } else {
        Err(problems)
    }
}
