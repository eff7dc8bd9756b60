//! placeholder
/// Runs the demo.
pub async fn run(_p: std::path::PathBuf, _l: std::net::SocketAddr, _o: bool) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
