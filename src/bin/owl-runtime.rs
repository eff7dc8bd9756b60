//! `owl-runtime`: the bootstrap of a `provided.al2023` Lambda function that runs
//! OpenWhisk actions (packaged as `bootstrap` by deploy/runtime/package.sh; see
//! docs/runtime.md). Everything lives in `owl::runtime`.

fn main() -> std::process::ExitCode {
    owl::runtime::main()
}
