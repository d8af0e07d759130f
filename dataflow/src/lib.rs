//! Dataflow.
