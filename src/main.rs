//! The `latchkey` binary: the allocator, then the command line (`cli`).

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the hot path allocates small,
/// short-lived buffers on two threads at once (see README, Performance).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    latchkey::cli::main()
}
