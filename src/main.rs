//! The `binpack` command line: a thin edge over the library's pipeline.

mod cli;

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    // An interrupted run removes its temporary files; outputs are only ever renamed into place.
    binpack::support::cleanup::on_signals(|sig| {
        use binpack::support::cleanup;
        cleanup::stop_descendants();
        cleanup::remove_all();
        // A container the build was starting as the signal came is registered just after the
        // first sweep: sweep once more before leaving.
        std::thread::sleep(std::time::Duration::from_millis(300));
        cleanup::remove_all();
        std::process::exit(cleanup::exit_code(sig));
    });
    let argv = match cli::config::expand_args(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(e) => {
            error(&format!("{e:#}"));
            return ExitCode::from(2);
        }
    };
    // `--json` (before `--`, on the command line or from the config): errors are JSON too.
    let json = (argv.iter().take_while(|a| *a != "--")).any(|a| a == "--json");
    let args = cli::Cli::parse_from(argv); // usage errors exit 2
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // The signal handler is cleaning up and will exit with 128 + the signal: let it finish.
        Err(_) if binpack::support::cleanup::interrupted() => loop {
            std::thread::park();
        },
        // A reader that closed the pipe (`binpack ... | head -1`) chose to read no further: the
        // work is done, so binpack ends quietly and successfully, as ripgrep does.
        Err(e)
            if e.downcast_ref()
                .is_some_and(cli::StdoutError::is_closed_pipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            error(&e.to_string());
            if json {
                // What a script reads from stdout: an object naming the failure.
                let obj = serde_json::json!({ "error": e.to_string() });
                let _ = writeln!(std::io::stdout(), "{obj}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The error on stderr; if even that cannot be written, the exit code still tells.
fn error(message: &str) {
    let _ = writeln!(std::io::stderr(), "binpack: error: {message}");
}
