//! `image history`: the config's history entries joined with layer sizes, newest first.

use crate::store::ImageRecord;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image id on the newest row, `<missing>` below (as Docker shows pulled images).
    pub id: String,
    pub created: Option<String>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

pub fn history(img: &ImageRecord) -> Vec<HistoryRow> {
    let entries = img.config.history().clone().unwrap_or_default();
    let mut layers = img.layers.iter();
    let mut rows = Vec::new();
    for h in &entries {
        let size = if h.empty_layer().unwrap_or(false) {
            0
        } else {
            layers.next().map(|l| l.size).unwrap_or(0)
        };
        rows.push(HistoryRow {
            id: "<missing>".into(),
            created: h.created().clone(),
            created_by: h.created_by().clone().unwrap_or_default(),
            size,
            comment: h.comment().clone().unwrap_or_default(),
        });
    }
    // Layers without history entries (configs that omit history).
    for l in layers {
        rows.push(HistoryRow {
            id: "<missing>".into(),
            created: None,
            created_by: String::new(),
            size: l.size,
            comment: String::new(),
        });
    }
    rows.reverse();
    if let Some(first) = rows.first_mut() {
        first.id = img.id.clone();
    }
    rows
}
