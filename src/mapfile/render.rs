//! Rendering the MAP file: [`render_line`] is THE place where the line layout is decided, and
//! every value is checked as its line is written, so no value can ever break a line.
use super::verify::{bad_value, parses_back};
use super::{Fields, LineEnding, MapFile, END_MARKER};

impl MapFile {
    /// The file's bytes. Deterministic: the same records always give the same bytes.
    pub fn render(&self, eol: LineEnding) -> String {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail, and the text is UTF-8 (built from Strings).
        let _ = self.render_to(eol, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Writes the file to `out`, line by line: a large map is never held twice in memory.
    pub fn render_to(&self, eol: LineEnding, out: &mut impl std::io::Write) -> std::io::Result<()> {
        self.render_lines(eol, out, |_, _, _| Ok(()))
            .map_err(|e| match e {
                RenderError::Io(e) => e,
                other => std::io::Error::other(other.to_string()),
            })
    }

    /// As [`render_to`](Self::render_to), checking every line as it is written: it must
    /// parse back into the record it was rendered from (the round trip of map-format.md),
    /// or nothing more is written.
    pub fn render_checked_to(
        &self,
        eol: LineEnding,
        out: &mut impl std::io::Write,
    ) -> Result<(), RenderError> {
        self.render_lines(eol, out, |line, domain, (tag, values)| {
            if let Some(bad) = values.iter().find(|v| !valid_value(v)) {
                return Err(RenderError::Value(bad_value(domain, tag, bad)));
            }
            if parses_back(line, &self.customer_id, domain, tag, values) {
                Ok(())
            } else {
                Err(RenderError::RoundTrip(
                    "does not parse back into the record it was written from".into(),
                ))
            }
        })
    }

    /// Renders every line, asking `check` about each (without its line ending) first.
    fn render_lines(
        &self,
        eol: LineEnding,
        out: &mut impl std::io::Write,
        mut check: impl FnMut(&str, &str, (&str, &[&str])) -> Result<(), RenderError>,
    ) -> Result<(), RenderError> {
        let mut line = String::with_capacity(256);
        let mut number = 0;
        for (domain, records) in &self.domains {
            let lines = std::iter::once(("DOMAIN:", Fields::new([domain, "", ""], 1)))
                .chain(records.iter().map(|r| (r.tag(), r.values())));
            for (tag, values) in lines {
                number += 1;
                line.clear();
                render_line(&mut line, &self.customer_id, domain, tag, &values);
                match check(&line, domain, (tag, &values)) {
                    Err(RenderError::RoundTrip(why)) => {
                        return Err(RenderError::RoundTrip(format!(
                            "line {number}: {line:?} {why}"
                        )))
                    }
                    other => other?,
                }
                line.push_str(eol.as_str());
                out.write_all(line.as_bytes())?;
            }
        }
        out.write_all(END_MARKER.as_bytes())?;
        out.write_all(eol.as_str().as_bytes())?;
        Ok(())
    }
}

/// Renders one line, without its line ending. THE place where the line layout is decided:
/// `customer|domain`, TAB, tag, then each value after a TAB.
fn render_line(out: &mut String, customer: &str, domain: &str, tag: &str, values: &[&str]) {
    out.push_str(customer);
    out.push('|');
    out.push_str(domain);
    out.push('\t');
    out.push_str(tag);
    for value in values {
        out.push('\t');
        out.push_str(value);
    }
}

/// Why a MAP file could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    RoundTrip(String),
    /// A value that would break its line (see [`valid_value`]).
    #[error("{0}")]
    Value(String),
}

/// A value may not contain control characters (TAB, CR, LF …) nor start or end with a space:
/// nothing may be able to break a line.
pub fn valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    // Printable ASCII, no space at either end: most values, checked without decoding.
    let plain = bytes.iter().all(|b| (b' '..=b'~').contains(b))
        && bytes.first().is_some_and(|b| *b != b' ')
        && bytes.last().is_some_and(|b| *b != b' ');
    plain || (!value.is_empty() && !value.chars().any(char::is_control) && value.trim() == value)
}

/// Cleans free text from the directory (display names, titles) for a MAP value: control
/// characters become spaces, runs of spaces one space, and the result is trimmed. Returns the
/// value and whether anything was changed (callers warn, naming the entry).
pub fn clean_value(raw: &str) -> (String, bool) {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.pop();
    }
    let changed = out != raw;
    (out, changed)
}
