//! The `[output]` section: where the MAP file is written and with which line ends.

use std::path::PathBuf;

use serde::Deserialize;

use super::LineEnding;
use crate::problems::Problems;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    path: Option<PathBuf>,
    line_ending: Option<String>,
}

#[derive(Debug, Clone)]
pub struct OutputConfig {
    pub path: PathBuf,
    pub line_ending: LineEnding,
}

/// Validates `[output]`.
pub fn validate(o: RawOutput, pr: &mut Problems) -> Option<OutputConfig> {
    let path = pr.required(
        "output.path",
        o.path,
        "where to write the MAP file, e.g. \"out/retarus.map\"",
    );
    let line_ending = match o.line_ending.as_deref() {
        None | Some("crlf") => LineEnding::Crlf,
        Some("lf") => LineEnding::Lf,
        Some(other) => {
            pr.problem(
                "output.line_ending",
                format!("{other:?}; expected \"crlf\" or \"lf\""),
            );
            LineEnding::Crlf
        }
    };
    Some(OutputConfig {
        path: pr.path("output.path", path?),
        line_ending,
    })
}
