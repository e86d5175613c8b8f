//! Username and password rules, and the `*`/`?` patterns of the list command.

/// Longest username, in characters.
pub const NAME_LEN_MAX: usize = 32;
/// Longest password, in bytes.
pub const PASSWORD_LEN_MAX: usize = 128;

/// The refusal of a username outside the rules.
pub const INVALID_NAME: &str = "Invalid username: use 1 to 32 characters of A-Z a-z 0-9 _ . -";

/// Checks a username: 1 to 32 characters of `A-Z a-z 0-9 _ . -`.
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || name.len() > NAME_LEN_MAX || !name.chars().all(ok_char) {
        return Err(INVALID_NAME);
    }
    Ok(())
}

/// Checks a password: 1 to 128 bytes, no newline (the parser already split on newlines).
pub fn validate_password(password: &str) -> Result<(), &'static str> {
    if password.is_empty() || password.len() > PASSWORD_LEN_MAX {
        return Err("Invalid password: use 1 to 128 bytes");
    }
    Ok(())
}

/// The key under which a name is unique: names compare case-insensitively.
pub(crate) fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Case-insensitive glob match: `*` matches any run of characters, `?` exactly one. See
/// [`Glob`]; compile the pattern once to match many names.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if text.is_ascii() {
        return Glob::new(pattern).matches(text);
    }
    char_glob_match(pattern, text)
}

/// A compiled `*`/`?` pattern (ASCII case-insensitive), matched against ASCII names (every
/// valid username is ASCII) without allocating.
///
/// The pattern is split at its stars into segments of literals and `?`. A name matches when
/// the first segment matches its start, the last its end, and the middle segments occur in
/// order in between, each taken at its leftmost place. Leftmost is always safe: a star absorbs
/// whatever lies between, and an earlier end leaves more room for the rest. So one pass finds a
/// match without backtracking; each segment is searched with a window that moves by one byte,
/// so the cost is at most (name length) x (pattern length), about 2,000 byte comparisons for a
/// 32-byte name and a 64-byte pattern, and linear in their sum for patterns whose segments
/// mismatch early (the usual case).
#[derive(Debug, Clone)]
pub struct Glob {
    /// Lower-cased pattern bytes.
    pattern: Vec<u8>,
    /// (start, end) of each segment in `pattern`, between stars.
    segments: Vec<(usize, usize)>,
}

impl Glob {
    pub fn new(pattern: &str) -> Self {
        let pattern: Vec<u8> = pattern.bytes().map(|b| b.to_ascii_lowercase()).collect();
        let mut segments = Vec::new();
        let mut start = 0;
        for (i, &b) in pattern.iter().enumerate() {
            if b == b'*' {
                segments.push((start, i));
                start = i + 1;
            }
        }
        segments.push((start, pattern.len()));
        Glob { pattern, segments }
    }

    /// The lower-cased literal text every match starts with (before the first `*` or `?`).
    pub fn literal_prefix(&self) -> &str {
        let end = self.pattern.iter().position(|&b| b == b'*' || b == b'?');
        let prefix = &self.pattern[..end.unwrap_or(self.pattern.len())];
        // Cut at an ASCII byte, so still UTF-8; a pattern that is not UTF-8 cannot occur.
        std::str::from_utf8(prefix).unwrap_or("")
    }

    fn segment(&self, index: usize) -> &[u8] {
        let (start, end) = self.segments[index];
        &self.pattern[start..end]
    }

    /// Whether `text` (ASCII; other text never matches a `?` correctly, so use
    /// [`glob_match`]) matches.
    pub fn matches(&self, text: &str) -> bool {
        let text = text.as_bytes();
        let fits = |segment: &[u8], at: &[u8]| {
            segment.len() == at.len()
                && segment.iter().zip(at).all(|(&p, &t)| p == b'?' || p == t.to_ascii_lowercase())
        };
        let last = self.segments.len() - 1;
        if last == 0 {
            return fits(self.segment(0), text);
        }
        let (first, tail) = (self.segment(0), self.segment(last));
        if text.len() < first.len() + tail.len()
            || !fits(first, &text[..first.len()])
            || !fits(tail, &text[text.len() - tail.len()..])
        {
            return false;
        }
        let (mut at, end) = (first.len(), text.len() - tail.len());
        for index in 1..last {
            let segment = self.segment(index);
            if segment.is_empty() {
                continue;
            }
            let found = (at..(end + 1).saturating_sub(segment.len()))
                .find(|&i| fits(segment, &text[i..i + segment.len()]));
            match found {
                Some(i) => at = i + segment.len(),
                None => return false,
            }
        }
        true
    }
}

/// [`glob_match`] for text that is not ASCII, where `?` must match one whole character.
fn char_glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let t: Vec<char> = text.chars().map(|c| c.to_ascii_lowercase()).collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_pi, star_ti)) = star {
            pi = star_pi + 1;
            ti = star_ti + 1;
            star = Some((star_pi, star_ti + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("tester").is_ok());
        assert!(validate_name("A.b-c_9").is_ok());
        assert!(validate_name(&"x".repeat(32)).is_ok());
        for bad in ["", "a b", "é", "a\tb", "a:b", &"x".repeat(33)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_password("p").is_ok());
        assert!(validate_password("").is_err());
        assert!(validate_password(&"p".repeat(129)).is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match("", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("t*", "Tester"));
        assert!(glob_match("?bc", "abc"));
        assert!(!glob_match("?bc", "bc"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("a*c*f", "abcde"));
        assert!(glob_match("*a*", "banana"));
        assert!(!glob_match("abc", "abcd"));
        let hostile = "*a".repeat(500) + "b";
        assert!(!glob_match(&hostile, &"a".repeat(32)));
        assert!(glob_match("é?", "éx"));
        assert!(!glob_match("ab*ba", "aba"), "the two ends must not overlap");
        assert!(glob_match("a**b", "ab"));
        assert!(glob_match("*?", "x"));
        assert!(!glob_match("*?", ""));
        assert_eq!(Glob::new("Tes?er*").literal_prefix(), "tes");
    }

    /// The segment matcher agrees with the backtracking one on every small pattern and name.
    #[test]
    fn the_segment_matcher_agrees_with_backtracking() {
        let alphabet = ['a', 'b', '*', '?'];
        let mut patterns = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = patterns
                .iter()
                .filter(|p| p.len() == patterns.last().map_or(0, String::len))
                .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
                .collect();
            patterns.extend(longer);
        }
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = texts
                .iter()
                .filter(|t| t.len() == texts.last().map_or(0, String::len))
                .flat_map(|t| ['a', 'B'].iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(longer);
        }
        for pattern in &patterns {
            let glob = Glob::new(pattern);
            for text in &texts {
                let want = char_glob_match(pattern, text);
                assert_eq!(glob.matches(text), want, "{pattern:?} against {text:?}");
            }
        }
    }
}
