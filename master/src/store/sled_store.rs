//! The sled-backed [`Store`](super::Store) (to be written).

/// On-disk store.
#[derive(Debug)]
pub struct SledStore;
impl SledStore {
    /// stub
    pub fn open(_p: &std::path::Path) -> Result<Self, super::StoreError> {
        Err(super::StoreError::Io("stub".into()))
    }
}
impl super::Store for SledStore {
    fn create_job(
        &self,
        _: &crate::model::Job,
        _: &crate::model::JobStatus,
    ) -> Result<(), super::StoreError> {
        unimplemented!()
    }
    fn update_job(&self, _: &crate::model::Job, _: u64) -> Result<(), super::StoreError> {
        unimplemented!()
    }
    fn get_job(&self, _: &str) -> Result<Option<crate::model::Job>, super::StoreError> {
        unimplemented!()
    }
    fn list_jobs(&self) -> Result<Vec<crate::model::Job>, super::StoreError> {
        unimplemented!()
    }
    fn delete_job(&self, _: &str) -> Result<Option<crate::model::Job>, super::StoreError> {
        unimplemented!()
    }
    fn get_status(&self, _: &str) -> Result<Option<crate::model::JobStatus>, super::StoreError> {
        unimplemented!()
    }
    fn put_status(&self, _: &crate::model::JobStatus) -> Result<(), super::StoreError> {
        unimplemented!()
    }
    fn append_event(
        &self,
        _: &str,
        _: super::NewEvent,
    ) -> Result<crate::model::JobEvent, super::StoreError> {
        unimplemented!()
    }
    fn list_events(
        &self,
        _: &str,
        _: u64,
        _: usize,
    ) -> Result<Vec<crate::model::JobEvent>, super::StoreError> {
        unimplemented!()
    }
    fn create_table(&self, _: &crate::model::StoredTable) -> Result<(), super::StoreError> {
        unimplemented!()
    }
    fn get_table(&self, _: &str) -> Result<Option<crate::model::StoredTable>, super::StoreError> {
        unimplemented!()
    }
    fn list_tables(&self) -> Result<Vec<crate::model::StoredTable>, super::StoreError> {
        unimplemented!()
    }
    fn delete_table(&self, _: &str) -> Result<bool, super::StoreError> {
        unimplemented!()
    }
    fn next_id(&self) -> Result<u64, super::StoreError> {
        unimplemented!()
    }
}
