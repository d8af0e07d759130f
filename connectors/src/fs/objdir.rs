//! [`ObjectDir`]: a directory of small objects (checkpoint records, manifests) in any
//! store the filesystem connector reaches — a local directory or an object-store URL —
//! read and written whole. A put is atomic (object stores replace objects whole; the
//! local store writes a temporary file and renames it).

use super::{block_on, io, Location};
use crate::Result;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::collections::BTreeMap;

/// A directory of small objects.
#[derive(Clone, Debug)]
pub struct ObjectDir {
    loc: Location,
    display: String,
}

impl ObjectDir {
    /// A local directory (created on first put) or a `s3://`/`gs://`/`az://`/`file://`
    /// URL; cloud credentials come from the environment.
    pub fn open(dir: &str) -> Result<ObjectDir> {
        Ok(ObjectDir {
            // Not a table: an operator's directory, whose S3 credentials can only be
            // the process's own.
            loc: Location::parse_with(
                dir,
                &BTreeMap::from([(super::S3_AUTH.to_string(), "ambient".to_string())]),
            )?,
            display: dir.to_string(),
        })
    }

    /// The directory as given.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Writes (or replaces) `name`.
    pub fn put(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.loc.child(name);
        block_on(self.loc.store.put(&path, PutPayload::from(bytes)))?.map_err(io)?;
        Ok(())
    }

    /// The content of `name`, or `None` when there is no such object.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.loc.child(name);
        let store = &self.loc.store;
        block_on(async {
            match store.get(&path).await {
                Ok(r) => r.bytes().await.map(|b| Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?
        .map_err(io)
    }

    /// The names of the objects directly in the directory, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let store = self.loc.store.clone();
        let root = self.loc.root.clone();
        let listed = block_on(async move { store.list_with_delimiter(Some(&root)).await })?;
        let listed = match listed {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let mut names: Vec<String> = listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Deletes `name` (nothing when it does not exist).
    pub fn delete(&self, name: &str) -> Result<()> {
        let path = self.loc.child(name);
        let store = &self.loc.store;
        block_on(async {
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })?
        .map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_list_delete_in_a_local_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = ObjectDir::open(dir.path().join("chk").to_str().unwrap()).unwrap();
        assert_eq!(d.list().unwrap(), Vec::<String>::new());
        assert_eq!(d.get("a.json").unwrap(), None);
        d.put("b.json", b"2".to_vec()).unwrap();
        d.put("a.json", b"1".to_vec()).unwrap();
        d.put("a.json", b"11".to_vec()).unwrap();
        assert_eq!(d.list().unwrap(), vec!["a.json", "b.json"]);
        assert_eq!(d.get("a.json").unwrap(), Some(b"11".to_vec()));
        d.delete("a.json").unwrap();
        d.delete("a.json").unwrap();
        assert_eq!(d.list().unwrap(), vec!["b.json"]);
    }
}
