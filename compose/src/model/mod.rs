//! The typed Compose model.
