//! Username and password rules, and the `*`/`?` patterns of the list command.

/// Longest username, in characters.
pub const NAME_LEN_MAX: usize = 32;
/// Longest password, in bytes.
pub const PASSWORD_LEN_MAX: usize = 128;

/// Checks a username: 1 to 32 characters of `A-Z a-z 0-9 _ . -`.
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || name.len() > NAME_LEN_MAX || !name.chars().all(ok_char) {
        return Err("Invalid username: use 1 to 32 characters of A-Z a-z 0-9 _ . -");
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

/// Case-insensitive glob match: `*` matches any run of characters, `?` exactly one. Linear in
/// practice (greedy with one backtrack point), so a hostile pattern cannot blow up.
pub fn glob_match(pattern: &str, text: &str) -> bool {
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
    }
}
