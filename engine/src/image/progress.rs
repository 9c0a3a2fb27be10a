//! Progress events of pull and push. The engine emits them; the CLI renders bars on a TTY
//! or docker's plain lines otherwise.

/// One step of a pull or push, in docker's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// `latest: Pulling from library/busybox` / `The push refers to repository [...]`
    Start(String),
    /// Per-layer (or config) state, keyed by the short blob id.
    Layer { id: String, status: LayerStatus },
    /// A line printed after the layers (`Digest: sha256:…`, `Status: …`).
    Line(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    Waiting,
    AlreadyExists,
    /// Bytes done and total (0 when unknown).
    Downloading(u64, u64),
    Verifying,
    DownloadComplete,
    Extracting,
    PullComplete,
    Preparing,
    Pushing(u64, u64),
    Pushed,
    Mounted,
}

impl LayerStatus {
    /// docker's text for the state.
    pub fn label(&self) -> &'static str {
        match self {
            LayerStatus::Waiting => "Waiting",
            LayerStatus::AlreadyExists => "Already exists",
            LayerStatus::Downloading(..) => "Downloading",
            LayerStatus::Verifying => "Verifying Checksum",
            LayerStatus::DownloadComplete => "Download complete",
            LayerStatus::Extracting => "Extracting",
            LayerStatus::PullComplete => "Pull complete",
            LayerStatus::Preparing => "Preparing",
            LayerStatus::Pushing(..) => "Pushing",
            LayerStatus::Pushed => "Pushed",
            LayerStatus::Mounted => "Layer already exists",
        }
    }

    /// Whether the layer reached a final state.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            LayerStatus::AlreadyExists
                | LayerStatus::PullComplete
                | LayerStatus::Pushed
                | LayerStatus::Mounted
        )
    }
}

/// A progress sink shared by download threads.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Sync);

/// The 12-character id docker shows for a blob.
pub fn short_blob(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex[..hex.len().min(12)].to_string()
}
