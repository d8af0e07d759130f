//! The `local` cluster driver (to be written).

/// Local cluster settings.
#[derive(Clone, Debug, Default)]
pub struct LocalClusterConfig;

/// Runs instances as processes on this machine.
#[derive(Debug)]
pub struct LocalCluster;
