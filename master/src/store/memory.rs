//! The in-memory model of [`Store`](super::Store) (to be written).

/// In-memory store.
#[derive(Debug, Default)]
pub struct MemoryStore;
