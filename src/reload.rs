//! Hot reload of the policy file: on change (a file watch on its directory, which also
//! sees Kubernetes ConfigMap symlink swaps) and on SIGHUP. A reload only happens when
//! the file's content changed (SIGHUP always reloads); a file that does not compile
//! keeps the current policy (see [`Gateway::reload_from`]).

use crate::gateway::Gateway;
use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Events are gathered for this long before a reload, so an editor's burst of writes
/// becomes one reload.
const DEBOUNCE: Duration = Duration::from_millis(200);

fn digest(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|b| Sha256::digest(&b).into())
}

/// Keeps the watch alive; dropping it stops watching.
pub(crate) struct Watch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches `path` and reloads `gw` when its content changes.
pub(crate) fn watch(gw: Arc<Gateway>, path: PathBuf) -> anyhow::Result<Watch> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    let mut last = digest(&path);
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(DEBOUNCE).await;
            while rx.try_recv().is_ok() {}
            let now = digest(&path);
            if now.is_none() || now == last {
                continue;
            }
            last = now;
            tracing::info!(file = %path.display(), "policy file changed; reloading");
            let _ = gw.reload_from(&path).await;
        }
    });
    Ok(Watch {
        _watcher: watcher,
        task,
    })
}

/// Reloads `gw` from `path` on every SIGHUP.
pub(crate) fn reload_on_sighup(gw: Arc<Gateway>, path: PathBuf) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload by changing the policy file");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the policy");
            let _ = gw.reload_from(&path).await;
        }
    });
}
