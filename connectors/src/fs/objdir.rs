//! [`ObjectDir`]: a directory of small objects (checkpoint records, manifests) in any
//! store the filesystem connector reaches — a local directory or an object-store URL —
//! read and written whole. A put is atomic (object stores replace objects whole; the
//! local store writes a temporary file and renames it); [`ObjectDir::create`] is a
//! conditional put that only one of several concurrent writers wins (S3's
//! `If-None-Match: *`, GCS's generation precondition, a hard link locally): the
//! checkpoint commit decision, which fences a second instance of a job.

use super::{block_on, io, Location};
use crate::Result;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
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

    /// Writes `name` only if no object of that name exists: `Ok(true)` when this call
    /// created it, `Ok(false)` when it already existed (written by someone else, or by
    /// an earlier try of this very call whose answer was lost: compare the content).
    pub fn create(&self, name: &str, bytes: Vec<u8>) -> Result<bool> {
        let path = self.loc.child(name);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match block_on(
            self.loc
                .store
                .put_opts(&path, PutPayload::from(bytes), opts),
        )? {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(io(e)),
        }
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

    /// The size of `name` in bytes, or `None` when there is no such object.
    pub fn size(&self, name: &str) -> Result<Option<u64>> {
        let path = self.loc.child(name);
        let store = &self.loc.store;
        block_on(async {
            match store.head(&path).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?
        .map_err(io)
    }

    /// What is directly in the directory (`None` when it does not exist).
    fn listing(&self) -> Result<Option<object_store::ListResult>> {
        let store = self.loc.store.clone();
        let root = self.loc.root.clone();
        match block_on(async move { store.list_with_delimiter(Some(&root)).await })? {
            Ok(l) => Ok(Some(l)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// The names of the objects directly in the directory, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .listing()?
            .map(|l| l.objects)
            .unwrap_or_default()
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The names of the sub-directories (common prefixes) directly in the directory,
    /// sorted.
    pub fn children(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .listing()?
            .map(|l| l.common_prefixes)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Deletes every object under the sub-directory `name` (and, locally, the
    /// directory itself).
    pub fn delete_dir(&self, name: &str) -> Result<()> {
        if let Some(local) = &self.loc.local {
            return match std::fs::remove_dir_all(local.join(name)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io(e)),
            };
        }
        let store = self.loc.store.clone();
        let prefix = self.loc.child(name);
        block_on(async move {
            use futures::TryStreamExt;
            let paths: Vec<_> = match store
                .list(Some(&prefix))
                .map_ok(|o| o.location)
                .try_collect::<Vec<_>>()
                .await
            {
                Ok(p) => p,
                Err(object_store::Error::NotFound { .. }) => return Ok(()),
                Err(e) => return Err(e),
            };
            for p in paths {
                match store.delete(&p).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })?
        .map_err(io)
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
        assert_eq!(d.size("a.json").unwrap(), Some(2));
        assert_eq!(d.size("none.json").unwrap(), None);
        d.delete("a.json").unwrap();
        d.delete("a.json").unwrap();
        assert_eq!(d.list().unwrap(), vec!["b.json"]);
        let root = ObjectDir::open(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(root.children().unwrap(), vec!["chk"]);
        root.delete_dir("chk").unwrap();
        root.delete_dir("chk").unwrap();
        assert_eq!(root.children().unwrap(), Vec::<String>::new());
        assert!(!dir.path().join("chk").exists());
    }

    #[test]
    fn create_is_won_by_exactly_one_of_concurrent_writers() {
        let dir = tempfile::tempdir().unwrap();
        let d = ObjectDir::open(dir.path().join("chk").to_str().unwrap()).unwrap();
        assert!(d.create("c.json", b"first".to_vec()).unwrap());
        assert!(!d.create("c.json", b"second".to_vec()).unwrap());
        assert_eq!(d.get("c.json").unwrap(), Some(b"first".to_vec()));
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let d = d.clone();
                    s.spawn(move || d.create("race.json", vec![i]).unwrap())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(winners, 1);
    }
}
