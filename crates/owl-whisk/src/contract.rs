//! What the gateway, `owl sync` and the owl runtime agree on beyond OpenWhisk's own
//! contract: the keys by which owl's `openwhisk` envelope asks the runtime for the
//! activation's whole log and the runtime answers with it (docs/runtime.md), and
//! which of the runtime's launchers runs a kind.

/// The envelope key by which owl asks for the activation's logs: the action's log
/// limit in bytes. The runtime removes it before the action sees the envelope.
pub const LOG_LIMIT_KEY: &str = "owl:log_limit";
/// The answer's key holding the activation's log lines.
pub const LOGS_KEY: &str = "owl:logs";
/// The answer's key holding the action's result.
pub const RESULT_KEY: &str = "owl:result";

/// Which launcher runs the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Node.js, through the runtime's own `launcher.js`.
    Nodejs,
    /// Python 3, through the runtime's own `launcher.py`.
    Python,
    /// Any ActionLoop executable (an OpenWhisk runtime's `exec`): the generic bridge.
    ActionLoop,
}

impl Kind {
    /// Reads an OpenWhisk kind (`nodejs:20`, `python:3.11`, `go:1.22`, `actionloop`…).
    pub fn parse(kind: &str) -> Kind {
        let family = kind.split(':').next().unwrap_or("").trim();
        match family {
            "nodejs" | "node" | "js" => Kind::Nodejs,
            "python" | "python3" | "py" => Kind::Python,
            _ => Kind::ActionLoop,
        }
    }

    /// True for the launchers shipped with the runtime (they speak the runtime's small
    /// extensions: an init error text in the ack, developer errors).
    pub fn is_own(self) -> bool {
        !matches!(self, Kind::ActionLoop)
    }
}
