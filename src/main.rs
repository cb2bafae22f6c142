//! The `binpack` command line: a thin edge over the library's pipeline.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // An interrupted run removes its temporary files; outputs are only ever renamed into place.
    let _ = ctrlc::set_handler(|| {
        binpack::cleanup::remove_all();
        std::process::exit(130);
    });
    let args = cli::Cli::parse(); // usage errors exit 2
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("binpack: error: {e}");
            ExitCode::FAILURE
        }
    }
}
