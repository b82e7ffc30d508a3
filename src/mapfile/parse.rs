//! Reading a MAP file back (for `dirsync diff`, the deletion guard and the round-trip check):
//! strict, every error with its line number; a file is sorted once, never per line.
use std::io::BufRead;

use super::{MapFile, Record, Setting, Text, END_MARKER};

impl Record {
    fn from_parts(tag: &str, values: &[&str]) -> Result<Record, String> {
        let own = |i: usize| Text::from(values[i]);
        let want = |n: usize| {
            if values.len() == n {
                Ok(())
            } else {
                Err(format!("{tag} takes {n} value(s), found {}", values.len()))
            }
        };
        Ok(match tag {
            "DIR:" => {
                want(1)?;
                Record::Dir(own(0))
            }
            "MAP:" => {
                want(2)?;
                Record::Map {
                    alias: own(0),
                    primary: own(1),
                }
            }
            "PROFILE:" => {
                want(2)?;
                Record::Profile {
                    address: own(0),
                    profile: own(1),
                }
            }
            "UCFG:" => {
                want(3)?;
                Record::Ucfg(Setting::new(own(0), own(1), own(2)))
            }
            "P13N:" => {
                want(3)?;
                Record::P13n(Setting::new(own(0), own(1), own(2)))
            }
            other => return Err(format!("unknown record type \"{other}\"")),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("reading the MAP file failed: {0}")]
    Io(#[from] std::io::Error),
}

/// One data line, split: `customer|domain TAB tag TAB values…`.
pub(super) struct Line<'a> {
    customer: &'a str,
    domain: &'a str,
    tag: &'a str,
    values: Vec<&'a str>,
}

pub(super) fn split_line(line: &str) -> Result<Line<'_>, String> {
    let mut fields = line.split('\t');
    let prefix = fields.next().unwrap_or_default();
    let (customer, domain) = prefix
        .split_once('|')
        .ok_or("expected \"customer|domain\" before the first TAB")?;
    let tag = fields.next().ok_or("no record type after the domain")?;
    Ok(Line {
        customer,
        domain,
        tag,
        values: fields.collect(),
    })
}

/// Parses a MAP file (CRLF or LF). Strict: a file that does not end with `++++`, a line that
/// is not `customer|domain TAB TAG: TAB values`, a record before its `DOMAIN:` line, a second
/// One data line into the map: its `DOMAIN:` declaration or its record.
fn add_line(map: &mut Option<MapFile>, line: &str) -> Result<(), String> {
    let Line {
        customer,
        domain,
        tag,
        values,
    } = split_line(line)?;
    let map = map.get_or_insert_with(|| MapFile::new(customer));
    if map.customer_id != customer {
        return Err(format!(
            "customer id {customer} differs from {} on line 1",
            map.customer_id
        ));
    }
    if tag == "DOMAIN:" {
        if values != [domain] {
            return Err(format!("DOMAIN: must repeat the domain {domain}"));
        }
        if map.domains.contains_key(domain) {
            return Err(format!("second DOMAIN: line for {domain}"));
        }
        map.add_domain(domain);
        return Ok(());
    }
    let record = Record::from_parts(tag, &values)?;
    let block = map
        .domains
        .get_mut(domain)
        .ok_or_else(|| format!("{tag} line before the DOMAIN: line of {domain}"))?;
    // A file in order (as dirsync writes it) shows a repeat right here, with its line; a
    // hand-edited one is sorted once at the end (never an insert per line).
    if block.last_like(&record) == Some(&record) {
        return Err(format!("repeated {tag} record"));
    }
    block.push(record);
    Ok(())
}

/// `DOMAIN:` or a repeated record is an error with its line number.
pub fn parse(reader: impl BufRead) -> Result<MapFile, MapError> {
    let mut map: Option<MapFile> = None;
    let mut ended = false;
    let mut line_no = 0;
    for line in reader.split(b'\n') {
        let mut line = line?;
        line_no += 1;
        let err = |message: String| MapError::Syntax {
            line: line_no,
            message,
        };
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if ended {
            if line.is_empty() {
                continue;
            }
            return Err(err(format!("text after the end marker {END_MARKER}")));
        }
        let line = String::from_utf8(line).map_err(|_| err("not valid UTF-8".into()))?;
        if line == END_MARKER {
            ended = true;
            continue;
        }
        add_line(&mut map, &line).map_err(err)?;
    }
    if !ended {
        return Err(MapError::Syntax {
            line: line_no,
            message: format!("the file does not end with {END_MARKER}: it is incomplete"),
        });
    }
    let mut map = map.unwrap_or_default();
    for (domain, block) in &mut map.domains {
        if let Some(r) = block.sort() {
            return Err(MapError::Syntax {
                line: line_no,
                message: format!(
                    "repeated {} record in {domain}: {} (the file is not in order, so the \
                     line of the repeat is not known)",
                    r.tag(),
                    r.values().join(" ")
                ),
            });
        }
    }
    Ok(map)
}
