// Config parsing: `FileConfig::from_toml` then `Settings::compile` on
// arbitrary text. Property: either a config or a list of problems, never a
// panic.

use latchkey::config::FileConfig;
use latchkey::app::settings::Settings;

/// The property this target checks, for one input (also replayed by the
/// test suite over `fuzz/regressions/config/`).
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = FileConfig::from_toml(text) else {
        return;
    };
    if let Err(problems) = Settings::compile(&cfg) {
        assert!(!problems.is_empty(), "an error without problems");
    }
}
