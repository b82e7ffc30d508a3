//! Shell-style wildcards (`*` any run, `?` one character), as OpenSSH host patterns and
//! address patterns use them: a pattern is compiled once (wildmatch) and matched many times.

/// A compiled wildcard pattern that remembers how it was written.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    compiled: wildmatch::WildMatch,
}

impl Pattern {
    pub fn new(text: &str) -> Pattern {
        Pattern {
            text: text.to_owned(),
            compiled: wildmatch::WildMatch::new(text),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        self.compiled.matches(text)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.text == other.text
    }
}

/// Whether `text` matches `pattern` (compiled for this one use).
pub fn matches(pattern: &str, text: &str) -> bool {
    Pattern::new(pattern).matches(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn wildcards() {
        assert!(super::matches("test-*@example.com", "test-1@example.com"));
        assert!(super::matches("*.retarus.test", "a.retarus.test"));
        assert!(super::matches("a?c", "abc"));
        assert!(!super::matches("a?c", "abbc"));
        assert!(!super::matches("test-*@example.com", "test@example.com"));
        assert!(super::matches("*", ""));
        assert!(super::matches("*@*.example.com", "a@b.c.example.com"));
        assert!(!super::matches("a*", "ba"));
    }
}
