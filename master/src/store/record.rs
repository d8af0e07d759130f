//! The typed record layer under the master's two sled stores (jobs in
//! [`SledStore`](super::SledStore), workflows in
//! [`SledWorkflowStore`](crate::workflow::SledWorkflowStore)): one JSON record per key,
//! typed reads and scans, compare-and-set creation, and the mapping of sled and
//! transaction failures to [`StoreError`].
//!
//! # The format header
//!
//! Every record is a JSON object whose `format_version` field is its header: a reader
//! decodes that field first and refuses ([`StoreError::Corrupt`]) a record written by a
//! newer master (`format_version > FORMAT_VERSION`), then decodes the record. The bytes
//! are exactly those every earlier master wrote — there is no framing around them — so
//! a store written before this layer is read as it is, and a store written through it
//! stays readable by an earlier master of the same format.
//!
//! Writes inside multi-tree transactions encode outside the transaction ([`encode`])
//! and insert the bytes; reads inside them decode with [`Records::decode`], so an
//! unreadable record names its tree and key the same way everywhere.

use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sluice_compiler::instance::{plan_from_json, plan_to_json};

use super::StoreError;
use crate::model::FORMAT_VERSION;

/// A sled failure as a store error.
pub(crate) fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

/// A transaction's failure as a store error.
pub(crate) fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => io(e),
    }
}

/// Aborts a transaction with this error.
pub(crate) fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

/// The JSON form of a record.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    // Job versions hold plans, deeper than serde_json accepts by default.
    plan_to_json(value).map_err(|e| StoreError::Io(format!("cannot encode a record: {e}")))
}

/// The header of a stored record, read before the rest.
#[derive(Deserialize)]
struct FormatHeader {
    format_version: u32,
}

/// Reads the record stored under `key` (a readable key, for errors): `Corrupt` when it
/// is not valid JSON of the type or was written by a newer master.
pub(crate) fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        key: key.to_string(),
        message,
    };
    let header: FormatHeader = plan_from_json(bytes).map_err(|e| corrupt(e.to_string()))?;
    if header.format_version > FORMAT_VERSION {
        return Err(corrupt(format!(
            "written by a newer master (format {})",
            header.format_version
        )));
    }
    plan_from_json(bytes).map_err(|e| corrupt(e.to_string()))
}

/// A key of tree `tree` as text, for errors (a `0x00` separator shows as `/`).
pub(crate) fn key_text(tree: &str, key: &[u8]) -> String {
    format!("{tree}/{}", String::from_utf8_lossy(key).replace('\0', "/"))
}

/// One sled tree whose values are records of type `T`. It dereferences to the tree,
/// for transactions and raw writes.
#[derive(Debug)]
pub(crate) struct Records<T> {
    tree: sled::Tree,
    name: &'static str,
    record: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Records<T> {
    /// Opens (or creates) tree `name` of `db`.
    pub fn open(db: &sled::Db, name: &'static str) -> Result<Self, StoreError> {
        Ok(Records {
            tree: db.open_tree(name).map_err(io)?,
            name,
            record: PhantomData,
        })
    }

    /// The tree itself (for multi-tree transactions).
    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Decodes `bytes`, the value stored under `key`.
    pub fn decode(&self, key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
        decode(&key_text(self.name, key), bytes)
    }

    /// The record under `key`, if any.
    pub fn read(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.tree
            .get(key)
            .map_err(io)?
            .map(|bytes| self.decode(key, &bytes))
            .transpose()
    }

    /// Every record, in key order.
    pub fn read_all(&self) -> Result<Vec<T>, StoreError> {
        self.tree
            .iter()
            .map(|entry| {
                let (key, value) = entry.map_err(io)?;
                self.decode(&key, &value)
            })
            .collect()
    }

    /// Every record whose key starts with `prefix`, with its key, in key order.
    pub fn read_prefix(&self, prefix: &[u8]) -> Result<Vec<(sled::IVec, T)>, StoreError> {
        self.tree
            .scan_prefix(prefix)
            .map(|entry| {
                let (key, value) = entry.map_err(io)?;
                let record = self.decode(&key, &value)?;
                Ok((key, record))
            })
            .collect()
    }

    /// Compare-and-set creation: stores `record` under `key` only when the key is free;
    /// false (and nothing written) when a record is already there.
    pub fn create(&self, key: &[u8], record: &T) -> Result<bool, StoreError> {
        let swapped = self
            .tree
            .compare_and_swap(key, None::<&[u8]>, Some(encode(record)?))
            .map_err(io)?;
        Ok(swapped.is_ok())
    }

    /// Writes `record` under `key`, whatever was there.
    pub fn put(&self, key: &[u8], record: &T) -> Result<(), StoreError> {
        self.tree.insert(key, encode(record)?).map_err(io)?;
        Ok(())
    }
}

impl<T> Deref for Records<T> {
    type Target = sled::Tree;

    fn deref(&self) -> &sled::Tree {
        &self.tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Thing {
        format_version: u32,
        name: String,
    }

    fn thing(name: &str) -> Thing {
        Thing {
            format_version: FORMAT_VERSION,
            name: name.to_string(),
        }
    }

    fn db() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        (dir, db)
    }

    #[test]
    fn records_written_before_this_layer_read_back_and_newer_ones_are_refused() {
        let (_dir, db) = db();
        let things: Records<Thing> = Records::open(&db, "things").unwrap();
        // As every earlier master wrote it: plain JSON with its format version.
        things
            .insert("a", &br#"{"format_version": 1, "name": "a"}"#[..])
            .unwrap();
        assert_eq!(things.read(b"a").unwrap(), Some(thing("a")));
        // What this layer writes is the same JSON.
        things.put(b"b", &thing("b")).unwrap();
        let raw: serde_json::Value =
            serde_json::from_slice(&things.get("b").unwrap().unwrap()).unwrap();
        assert_eq!(
            raw,
            serde_json::json!({"format_version": FORMAT_VERSION, "name": "b"})
        );
        assert_eq!(things.read_all().unwrap(), vec![thing("a"), thing("b")]);

        things
            .insert("c\0d", &br#"{"format_version": 99, "name": "c"}"#[..])
            .unwrap();
        assert_eq!(
            things.read(b"c\0d"),
            Err(StoreError::Corrupt {
                key: "things/c/d".to_string(),
                message: "written by a newer master (format 99)".to_string()
            })
        );
        assert!(things.read_all().is_err());
        assert_eq!(things.read(b"nothing").unwrap(), None);
    }

    #[test]
    fn create_is_compare_and_set_and_prefix_reads_keep_keys() {
        let (_dir, db) = db();
        let things: Records<Thing> = Records::open(&db, "things").unwrap();
        assert!(things.create(b"p\0x", &thing("x")).unwrap());
        assert!(!things.create(b"p\0x", &thing("other")).unwrap());
        assert_eq!(things.read(b"p\0x").unwrap(), Some(thing("x")));
        things.put(b"p\0y", &thing("y")).unwrap();
        things.put(b"q", &thing("q")).unwrap();
        let under_p: Vec<(Vec<u8>, Thing)> = things
            .read_prefix(b"p\0")
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v))
            .collect();
        assert_eq!(
            under_p,
            vec![
                (b"p\0x".to_vec(), thing("x")),
                (b"p\0y".to_vec(), thing("y"))
            ]
        );
    }
}
