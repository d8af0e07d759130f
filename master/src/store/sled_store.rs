//! The sled-backed [`Store`](super::Store) (to be written).

/// On-disk store.
#[derive(Debug)]
pub struct SledStore;
