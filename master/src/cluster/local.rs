//! The `local` cluster driver (to be written).

/// Local cluster settings.
#[derive(Clone, Debug, Default)]
pub struct LocalClusterConfig {
    pub capacity: crate::model::Capacity,
}

/// Runs instances as processes on this machine.
#[derive(Debug)]
pub struct LocalCluster;
impl LocalClusterConfig {
    /// stub
    pub fn new(_d: std::path::PathBuf, _e: std::path::PathBuf) -> Self {
        LocalClusterConfig {
            capacity: Default::default(),
        }
    }
}
impl LocalCluster {
    /// stub
    pub fn new(_c: LocalClusterConfig) -> Result<Self, super::ClusterError> {
        Ok(LocalCluster)
    }
}
impl super::Cluster for LocalCluster {
    fn name(&self) -> &str {
        "local"
    }
    fn kind(&self) -> &'static str {
        "local"
    }
    fn capacity(&self) -> crate::model::Capacity {
        Default::default()
    }
    fn launch(&self, _: &super::LaunchSpec) -> Result<(), super::ClusterError> {
        unimplemented!()
    }
    fn stop(&self, _: &str) -> Result<(), super::ClusterError> {
        unimplemented!()
    }
    fn kill(&self, _: &str) -> Result<(), super::ClusterError> {
        unimplemented!()
    }
    fn observe(&self) -> Result<Vec<crate::model::ObservedInstance>, super::ClusterError> {
        unimplemented!()
    }
    fn retire(&self, _: &str) -> Result<(), super::ClusterError> {
        unimplemented!()
    }
    fn logs(&self, _: &str, _: u64) -> Result<String, super::ClusterError> {
        unimplemented!()
    }
}
