//! The `owl` binary: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    owl::cli::main()
}
