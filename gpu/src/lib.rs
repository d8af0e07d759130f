//! Columnar kernels.
