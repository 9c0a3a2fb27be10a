//! The image builder (`rcompose image build`, compose `build:`): a Dockerfile is parsed
//! (`dockerfile`), its stages resolved and run step by step (`exec`): metadata steps change
//! the image config, `COPY`/`ADD` produce a layer from the context (`context`, `.dockerignore`
//! rules in `ignore`), `RUN` runs in a container of the engine and its filesystem diff
//! becomes a layer. Every step is cached (`cache`) by its parent, its expanded instruction
//! and the content of the files it reads. Progress goes out as [`BuildEvent`]s.

pub mod dockerfile;
pub mod expand;
pub mod ignore;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

/// Why a build failed. Errors in a step name the Dockerfile and the line.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{file}:{line}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: {instruction}: {message}")]
    Step {
        file: String,
        line: usize,
        instruction: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Container(#[from] crate::container::ContainerError),
}
