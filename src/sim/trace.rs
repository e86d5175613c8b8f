//! The run's trace: one fixed-format line per event, folded into a rolling FNV-1a hash.
//!
//! The hash names a run's behaviour: two runs with the same seed and options must produce the
//! same hash, and the first line where two traces differ is where determinism broke. Lines are
//! formatted into one reused buffer; their text is kept only when asked (`--trace`, replays that
//! show the last events, determinism checks), so a plain run pays for the hash alone.

use std::fmt::{self, Write as _};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over `bytes`, continuing from `hash`.
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The trace of one run.
#[derive(Debug, Clone)]
pub struct Trace {
    hash: u64,
    events: u64,
    buf: String,
    /// Every line, when kept.
    lines: Option<Vec<String>>,
}

impl Trace {
    pub fn new(keep_lines: bool) -> Self {
        Trace { hash: FNV_OFFSET, events: 0, buf: String::new(), lines: keep_lines.then(Vec::new) }
    }

    /// Records one line (without its newline).
    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        self.buf.clear();
        self.buf.write_fmt(args).expect("writing to a String cannot fail");
        self.buf.push('\n');
        self.hash = fnv1a(self.hash, self.buf.as_bytes());
        self.events += 1;
        if let Some(lines) = &mut self.lines {
            lines.push(self.buf.trim_end_matches('\n').to_owned());
        }
    }

    /// The rolling hash of every line so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// How many lines were recorded.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The kept lines (empty unless kept).
    pub fn lines(&self) -> &[String] {
        self.lines.as_deref().unwrap_or(&[])
    }

    /// Takes the kept lines out.
    pub fn into_lines(self) -> Vec<String> {
        self.lines.unwrap_or_default()
    }
}

/// The index of the first line where `a` and `b` differ (or where the shorter one ends).
pub fn first_difference(a: &[String], b: &[String]) -> Option<usize> {
    let common = a.iter().zip(b).position(|(x, y)| x != y);
    common.or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn the_hash_covers_every_line_and_kept_lines_match() {
        let mut a = Trace::new(true);
        let mut b = Trace::new(false);
        for t in [a.clone(), b.clone()] {
            assert_eq!(t.hash(), FNV_OFFSET);
        }
        a.line(format_args!("1 x {}", 5));
        b.line(format_args!("1 x {}", 5));
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.lines(), ["1 x 5"]);
        b.line(format_args!("2 y"));
        assert_ne!(a.hash(), b.hash());
        assert_eq!(b.events(), 2);
        let x: Vec<String> = vec!["a".into(), "b".into()];
        let y: Vec<String> = vec!["a".into(), "c".into()];
        assert_eq!(first_difference(&x, &y), Some(1));
        assert_eq!(first_difference(&x, &x[..1]), Some(1));
        assert_eq!(first_difference(&x, &x), None);
    }
}
