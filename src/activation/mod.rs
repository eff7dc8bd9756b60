//! Activation records, journaled before the answer leaves: the stores (embedded SQLite, or OpenWhisk's
//! CouchDB activations database), the recorder that writes them in batches without
//! ever losing one silently, and the parser of list queries. The activations API that
//! reads them back is `api::activations`, above the gateway.

pub(crate) mod couchdb;
pub mod query;
pub mod recorder;
pub mod sqlite;
pub mod store;

pub use recorder::Recorder;
pub use store::{ActivationReader, ActivationStore, ListQuery, StoreError};
