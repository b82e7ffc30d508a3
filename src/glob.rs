//! Shell-style wildcards (`*` any run, `?` one character), as OpenSSH host patterns and
//! address patterns use them.

pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
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
    }
}
