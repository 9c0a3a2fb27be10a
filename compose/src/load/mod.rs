//! The load pipeline, one file per stage (see ARCHITECTURE.md).
