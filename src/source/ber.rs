//! The part of BER that LDAP uses (RFC 4511 §5.1): definite lengths, tag numbers below 31.
//!
//! Reading borrows from the received bytes — a search result entry is walked in place and only
//! the values kept are copied. Writing builds the few small requests dirsync sends.

/// A malformed or truncated element: the server (or something between) sent bytes that are
/// not LDAP. Fail-closed: the read ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed LDAP message from the server: {0}")]
pub struct BerError(pub &'static str);

pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const ENUMERATED: u8 = 0x0a;
pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;

/// The header of the element at the start of `data`: its tag, the header's length and the
/// contents' length. `Ok(None)` while the header itself is incomplete.
pub fn header(data: &[u8]) -> Result<Option<(u8, usize, usize)>, BerError> {
    let (Some(&tag), Some(&first)) = (data.first(), data.get(1)) else {
        return Ok(None);
    };
    if tag & 0x1f == 0x1f {
        return Err(BerError("tag numbers above 30 are not LDAP"));
    }
    if first < 0x80 {
        return Ok(Some((tag, 2, usize::from(first))));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 {
        return Err(BerError("indefinite length"));
    }
    if count > 4 {
        return Err(BerError("length above 4 GB"));
    }
    let Some(bytes) = data.get(2..2 + count) else {
        return Ok(None);
    };
    let len = bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
    Ok(Some((tag, 2 + count, len)))
}

/// Walks the elements of a constructed value.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// The next element's tag and contents.
    pub fn next_element(&mut self) -> Result<(u8, &'a [u8]), BerError> {
        let (tag, head, len) = header(self.data)?.ok_or(BerError("truncated element"))?;
        let contents = self
            .data
            .get(head..head + len)
            .ok_or(BerError("element longer than its container"))?;
        self.data = &self.data[head + len..];
        Ok((tag, contents))
    }

    /// The contents of the next element, which must have tag `tag`.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], BerError> {
        match self.next_element()? {
            (t, contents) if t == tag => Ok(contents),
            _ => Err(BerError(what)),
        }
    }

    /// The contents of the next element if it has tag `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, BerError> {
        if self.peek_tag() == Some(tag) {
            self.next_element().map(|(_, c)| Some(c))
        } else {
            Ok(None)
        }
    }
}

/// An INTEGER or ENUMERATED value (two's complement, at most 8 bytes).
pub fn integer(contents: &[u8]) -> Result<i64, BerError> {
    if contents.is_empty() || contents.len() > 8 {
        return Err(BerError("integer of unexpected size"));
    }
    let negative = contents[0] & 0x80 != 0;
    let start = if negative { -1i64 } else { 0 };
    Ok(contents.iter().fold(start, |n, &b| (n << 8) | i64::from(b)))
}

/// One element: tag, length, contents.
pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    constructed(tag, &[contents])
}

/// A constructed element from already encoded parts, written straight into one buffer (no
/// intermediate copy: a bind request's parts hold the password, and the caller wipes the
/// buffers it knows about).
pub fn constructed(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// An INTEGER (or, with another tag, ENUMERATED) in the fewest bytes.
pub fn int(tag: u8, value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut skip = 0;
    while skip < 7 {
        let (b, next) = (bytes[skip], bytes[skip + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            skip += 1;
        } else {
            break;
        }
    }
    tlv(tag, &bytes[skip..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_in_the_fewest_bytes() {
        for (value, encoded) in [
            (0i64, vec![2, 1, 0]),
            (127, vec![2, 1, 0x7f]),
            (128, vec![2, 2, 0, 0x80]),
            (1000, vec![2, 2, 0x03, 0xe8]),
            (-1, vec![2, 1, 0xff]),
            (-129, vec![2, 2, 0xff, 0x7f]),
            (i64::from(i32::MAX), vec![2, 4, 0x7f, 0xff, 0xff, 0xff]),
        ] {
            assert_eq!(int(INTEGER, value), encoded, "{value}");
            assert_eq!(integer(&encoded[2..]), Ok(value));
        }
    }

    #[test]
    fn lengths_short_and_long() {
        let short = tlv(OCTET_STRING, &[7; 127]);
        assert_eq!(&short[..2], &[4, 127]);
        let long = tlv(OCTET_STRING, &[7; 300]);
        assert_eq!(&long[..4], &[4, 0x82, 1, 44]);
        assert_eq!(header(&long), Ok(Some((4, 4, 300))));
        let mut r = Reader::new(&long);
        assert_eq!(r.expect(OCTET_STRING, "x").map(<[u8]>::len), Ok(300));
        assert!(r.is_empty());
    }

    #[test]
    fn truncated_and_unsupported_input_is_an_error_not_a_panic() {
        assert_eq!(header(&[0x30]), Ok(None));
        assert_eq!(header(&[0x30, 0x82, 1]), Ok(None));
        assert!(header(&[0x30, 0x80]).is_err());
        assert!(header(&[0x1f, 1]).is_err());
        assert!(header(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(Reader::new(&[0x04, 5, 1, 2]).next_element().is_err());
        assert!(Reader::new(&[0x04, 1, 1]).expect(SEQUENCE, "x").is_err());
        assert!(integer(&[]).is_err());
    }
}
