//! The OpenWhisk controller as owl's upstream: one pooled HTTP client (TLS when the
//! controller URL is https), the streaming reverse proxy, and the few API calls owl
//! makes on a caller's behalf (who the caller is, what an action is).

pub(crate) mod api;
pub(crate) mod client;
pub(crate) mod proxy;

pub(crate) use client::{ControllerClient, ControllerError};
