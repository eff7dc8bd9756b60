//! Request handlers that answer from owl's own state rather than from Lambda: they
//! sit above the gateway (they read the current runtime) and below the server (which
//! dispatches to them). The Lambda path's handler is `invoke`.

pub(crate) mod activations;
