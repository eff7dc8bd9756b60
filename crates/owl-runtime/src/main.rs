//! `owl-runtime`: the bootstrap of a `provided.al2023` Lambda function that runs
//! OpenWhisk actions (packaged as `bootstrap` by deploy/runtime/package.sh; see
//! docs/runtime.md). Everything lives in the `owl_runtime` library.

fn main() -> std::process::ExitCode {
    owl_runtime::main()
}
