//! A streaming reader for LDIF content records (RFC 2849), as written by `ldifde`,
//! `ldapsearch -LLL` and most directory export tools.
//!
//! It reads one record at a time from any `BufRead`, so memory is bounded by the largest
//! single entry, not by the file. Supported: folded lines, base64 values (`::`), comments,
//! `version: 1`, attribute options (`;binary` is dropped, others are kept in the name), CRLF or
//! LF line ends and a UTF-8 byte order mark. `changetype: add` (which `ldifde` writes on every
//! record) is read as a content record. Refused with a line number: URL values (`:<`), other
//! change records, an `ldapsearch` result trailer with a non-zero result code, a file that
//! ends without a line break or without the empty line that ends every entry, and UTF-16 (a
//! truncated export must never look like a complete one).

use std::io::BufRead;

use base64::Engine as _;

use super::Entry;

/// The longest logical (unfolded) line accepted, to bound memory on a corrupt file.
const MAX_LINE: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LdifError {
    #[error("line {line}: {message}")]
    Syntax { line: u64, message: String },
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
}

fn syntax(line: u64, message: impl Into<String>) -> LdifError {
    LdifError::Syntax {
        line,
        message: message.into(),
    }
}

/// One unfolded line and the number of the physical line it starts on.
struct Line {
    no: u64,
    text: Vec<u8>,
}

pub struct LdifReader<R> {
    inner: R,
    physical: Vec<u8>,
    line_no: u64,
    /// A physical line read ahead while looking for continuation lines.
    lookahead: Option<Line>,
    at_start: bool,
    failed: bool,
    /// The record just read ended with the file instead of an empty line.
    unterminated: bool,
}

impl<R: BufRead> LdifReader<R> {
    pub fn new(inner: R) -> Self {
        LdifReader {
            inner,
            physical: Vec::with_capacity(256),
            line_no: 0,
            lookahead: None,
            at_start: true,
            failed: false,
            unterminated: false,
        }
    }

    /// Reads the next physical line without its line end; `None` at end of file.
    fn read_physical(&mut self) -> Result<Option<Line>, LdifError> {
        self.physical.clear();
        let n = self.inner.read_until(b'\n', &mut self.physical)?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        let mut text = std::mem::take(&mut self.physical);
        if self.line_no == 1
            && (text.starts_with(b"\xFF\xFE") || text.starts_with(b"\xFE\xFF") || text.contains(&0))
        {
            return Err(syntax(
                1,
                "the export is UTF-16 (ldifde -u, or a `>` redirect in Windows PowerShell 5.1), \
                 dirsync reads UTF-8: export again without -u (ldifde writes UTF-8 with base64 \
                 for non-ASCII values), or convert it: Get-Content in.ldif | Set-Content \
                 -Encoding UTF8 out.ldif",
            ));
        }
        if text.last() == Some(&b'\n') {
            text.pop();
        } else {
            return Err(syntax(
                self.line_no,
                "the export ends without a final line break, in the middle of a line: it looks \
                 truncated; export it again",
            ));
        }
        if text.last() == Some(&b'\r') {
            text.pop();
        }
        if self.line_no == 1 && text.starts_with(b"\xEF\xBB\xBF") {
            text.drain(..3);
        }
        self.physical = Vec::with_capacity(256);
        Ok(Some(Line {
            no: self.line_no,
            text,
        }))
    }

    /// Reads the next logical line (continuation lines joined). An empty `text` is a record
    /// separator.
    fn read_logical(&mut self) -> Result<Option<Line>, LdifError> {
        let mut line = match self.lookahead.take() {
            Some(l) => l,
            None => match self.read_physical()? {
                Some(l) => l,
                None => return Ok(None),
            },
        };
        if line.text.first() == Some(&b' ') {
            return Err(syntax(
                line.no,
                "continuation line (starting with a space) without a line to continue",
            ));
        }
        loop {
            match self.read_physical()? {
                Some(next) if next.text.first() == Some(&b' ') && !line.text.is_empty() => {
                    if line.text.len() + next.text.len() > MAX_LINE {
                        return Err(syntax(line.no, "line longer than 16 MiB"));
                    }
                    line.text.extend_from_slice(&next.text[1..]);
                }
                other => {
                    self.lookahead = other;
                    return Ok(Some(line));
                }
            }
        }
    }

    /// Reads the lines of the next record (comments dropped); `None` at end of file.
    fn read_record_lines(&mut self) -> Result<Option<Vec<Line>>, LdifError> {
        let mut lines = Vec::new();
        while let Some(line) = self.read_logical()? {
            if line.text.is_empty() {
                if lines.is_empty() {
                    continue;
                }
                return Ok(Some(lines));
            }
            if line.text.first() == Some(&b'#') {
                continue;
            }
            lines.push(line);
        }
        self.unterminated = !lines.is_empty();
        Ok(if lines.is_empty() { None } else { Some(lines) })
    }

    fn next_entry(&mut self) -> Result<Option<Entry>, LdifError> {
        loop {
            let Some(mut lines) = self.read_record_lines()? else {
                return Ok(None);
            };
            if self.at_start {
                self.at_start = false;
                let (name, value) = split_line(&lines[0])?;
                if name.eq_ignore_ascii_case("version") {
                    if value != b"1" {
                        return Err(syntax(lines[0].no, "unsupported LDIF version (expected 1)"));
                    }
                    lines.remove(0);
                    if lines.is_empty() {
                        continue;
                    }
                }
            }
            let entry = parse_record(&lines)?;
            // The last record ended with the file, not with an empty line: a cut export looks
            // exactly like this (an ldapsearch trailer, checked whole, may end so).
            if self.unterminated && entry.is_some() {
                return Err(syntax(
                    lines[0].no,
                    format!(
                        "the export ends in the middle of an entry (the record from line {} has \
                         no empty line after it): it looks truncated. ldifde and ldapsearch end \
                         every entry with an empty line; export again, or, for a file made by \
                         hand, add an empty line at its end",
                        lines[0].no
                    ),
                ));
            }
            if let Some(entry) = entry {
                return Ok(Some(entry));
            }
        }
    }
}

impl<R: BufRead> Iterator for LdifReader<R> {
    type Item = Result<Entry, LdifError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.next_entry().transpose();
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        item
    }
}

/// Splits `name: value`, `name:: base64` into the name and the decoded value.
fn split_line(line: &Line) -> Result<(&str, Vec<u8>), LdifError> {
    let colon = line
        .text
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| syntax(line.no, "expected \"attribute: value\" (no colon found)"))?;
    let name = std::str::from_utf8(&line.text[..colon])
        .ok()
        .filter(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-;.=_".contains(&b))
        })
        .ok_or_else(|| {
            let name = String::from_utf8_lossy(&line.text[..colon.min(64)]);
            syntax(
                line.no,
                format!("invalid attribute name {name:?} before the colon"),
            )
        })?;
    let rest = &line.text[colon + 1..];
    let value = match rest.first() {
        Some(b':') => {
            let encoded: Vec<u8> = rest[1..].iter().copied().filter(|b| *b != b' ').collect();
            base64::engine::general_purpose::STANDARD
                .decode(&encoded)
                .map_err(|e| syntax(line.no, format!("invalid base64 value of {name}: {e}")))?
        }
        Some(b'<') => {
            return Err(syntax(
                line.no,
                format!("URL values (\"{name}:<\") are not supported: export the value inline"),
            ))
        }
        _ => {
            let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
            rest[start..].to_vec()
        }
    };
    Ok((name, value))
}

/// Parses one record. `None` for records that carry no entry (an ldapsearch trailer).
fn parse_record(lines: &[Line]) -> Result<Option<Entry>, LdifError> {
    let (first, value) = split_line(&lines[0])?;
    if first.eq_ignore_ascii_case("search") {
        return check_ldapsearch_trailer(lines).map(|()| None);
    }
    if !first.eq_ignore_ascii_case("dn") {
        return Err(syntax(
            lines[0].no,
            format!("a record must start with \"dn:\", found \"{first}:\""),
        ));
    }
    let dn =
        String::from_utf8(value).map_err(|_| syntax(lines[0].no, "the DN is not valid UTF-8"))?;
    let mut entry = Entry::new(dn);
    for line in &lines[1..] {
        let (name, value) = split_line(line)?;
        if name.eq_ignore_ascii_case("changetype") {
            if value.eq_ignore_ascii_case(b"add") {
                continue;
            }
            return Err(syntax(
                line.no,
                format!(
                    "change records (changetype: {}) are not supported: export content records",
                    String::from_utf8_lossy(&value)
                ),
            ));
        }
        if name.eq_ignore_ascii_case("control") {
            return Err(syntax(
                line.no,
                "change records with controls are not supported",
            ));
        }
        entry.push(&attribute_key(name), value);
    }
    Ok(Some(entry))
}

/// The attribute name without the `;binary` transfer option (other options are kept).
fn attribute_key(name: &str) -> String {
    if !name.contains(';') {
        return name.to_owned();
    }
    name.split(';')
        .filter(|part| !part.eq_ignore_ascii_case("binary"))
        .collect::<Vec<_>>()
        .join(";")
}

/// `ldapsearch` (without `-LLL`) ends its output with `search: N` / `result: CODE text`.
/// A non-zero code means the export is incomplete.
fn check_ldapsearch_trailer(lines: &[Line]) -> Result<(), LdifError> {
    for line in lines {
        let (name, value) = split_line(line)?;
        if name.eq_ignore_ascii_case("result") {
            let text = String::from_utf8_lossy(&value);
            let code = text.split_whitespace().next().unwrap_or("");
            if code != "0" {
                return Err(syntax(
                    line.no,
                    format!(
                        "the export is incomplete: ldapsearch reported \"result: {text}\"; \
                         export again with paging (-E pr=1000/noprompt)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: impl AsRef<[u8]>) -> Result<Vec<Entry>, LdifError> {
        LdifReader::new(text.as_ref()).collect()
    }

    fn err(text: impl AsRef<[u8]>) -> String {
        read(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_folded_lines_base64_comments_and_multiple_values() {
        let text = b"version: 1\n\n# a comment\n#  folded comment\ndn: CN=J\xC3\xB6rg,DC=ex\n\
                    objectClass: top\nobjectClass: user\nproxyAddresses: SMTP:jo@exa\n mple.com\n\
                    proxyAddresses:: c210cDpqLmRvZUBleGFtcGxlLmNvbQ==\n\
                    objectGUID;binary:: AAEC/w==\n\ndn: CN=B,DC=ex\nmail:   b@example.com\n\n";
        let entries = read(text).unwrap();
        assert_eq!(entries.len(), 2);
        let a = &entries[0];
        assert_eq!(a.dn, "CN=Jörg,DC=ex");
        assert_eq!(a.texts("objectclass").collect::<Vec<_>>(), ["top", "user"]);
        assert_eq!(
            a.texts("proxyaddresses").collect::<Vec<_>>(),
            ["SMTP:jo@example.com", "smtp:j.doe@example.com"]
        );
        assert_eq!(a.values("objectguid"), [vec![0u8, 1, 2, 255]]);
        assert_eq!(entries[1].first_text("mail"), Some("b@example.com"));
    }

    #[test]
    fn accepts_crlf_bom_and_ldifde_changetype_add() {
        let text = "\u{feff}dn: CN=A,DC=ex\r\nchangetype: add\r\nmail: a@example.com\r\n\r\n";
        let entries = read(text).unwrap();
        assert_eq!(entries[0].dn, "CN=A,DC=ex");
        assert_eq!(entries[0].first_text("mail"), Some("a@example.com"));
        assert!(entries[0].values("changetype").is_empty());
    }

    #[test]
    fn folded_dn_and_value_with_multibyte_split() {
        // A fold may split a UTF-8 sequence: the bytes are joined before decoding.
        let text = b"dn: CN=M\xC3\n \xBCller,DC=ex\ndisplayName: M\xC3\xBCller\n\n";
        let entries = read(text).unwrap();
        assert_eq!(entries[0].dn, "CN=Müller,DC=ex");
    }

    #[test]
    fn errors_carry_line_numbers() {
        assert_eq!(
            err("dn: CN=A\nmail a@example.com\n"),
            "line 2: expected \"attribute: value\" (no colon found)"
        );
        assert_eq!(
            err("dn: CN=A\nmail:: !!!\n"),
            "line 2: invalid base64 value of mail: Invalid symbol 33, offset 0."
        );
        assert!(err("dn: CN=A\njpegPhoto:< file:///x.jpg\n").starts_with("line 2: URL values"));
        assert!(err("dn: CN=A\nchangetype: modify\n").starts_with("line 2: change records"));
        assert!(err("\n\nmail: a@example.com\n").starts_with("line 3: a record must start"));
        assert!(err(" folded\n").starts_with("line 1: continuation line"));
        assert!(err("dn: CN=A\n\n\ndn: CN=B\nmail\n").starts_with("line 5:"));
    }

    #[test]
    fn ldapsearch_trailer_with_size_limit_is_an_error() {
        let ok = "dn: CN=A\nmail: a@x\n\n# search result\nsearch: 2\nresult: 0 Success\n";
        assert_eq!(read(ok).unwrap().len(), 1);
        let cut = "dn: CN=A\nmail: a@x\n\nsearch: 2\nresult: 4 Size limit exceeded\n";
        assert!(
            err(cut).contains("the export is incomplete"),
            "{}",
            err(cut)
        );
    }

    #[test]
    fn a_truncated_or_utf16_export_is_refused() {
        let whole = "dn: CN=A\nmail: a@example.com\n\ndn: CN=B\nmail: b@example.com\n\n";
        assert_eq!(read(whole).unwrap().len(), 2);
        // Cut anywhere but after an entry's empty line: refused, never fewer entries.
        for cut in 1..whole.len() {
            let text = &whole[..cut];
            if text.ends_with("\n\n") {
                continue;
            }
            let e = err(text);
            assert!(e.contains("looks truncated"), "cut at {cut}: {e}");
        }
        let e = err("dn: CN=A\nmail: a@exa");
        assert!(
            e.starts_with("line 2: the export ends without a final line break"),
            "{e}"
        );
        let e = err("dn: CN=A\nmail: a@example.com\n");
        assert!(
            e.starts_with("line 1: the export ends in the middle of an entry"),
            "{e}"
        );
        let utf16: Vec<u8> = "\u{feff}dn: CN=A\r\n\r\n"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert!(
            err(&utf16).contains("the export is UTF-16"),
            "{}",
            err(&utf16)
        );
        let no_bom: Vec<u8> = "dn: CN=A\r\n\r\n"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert!(err(&no_bom).contains("the export is UTF-16"));
    }

    #[test]
    fn stops_after_the_first_error() {
        let mut reader = LdifReader::new("dn: A\nbad\n\ndn: B\n".as_bytes());
        assert!(reader.next().unwrap().is_err());
        assert!(reader.next().is_none());
    }
}
