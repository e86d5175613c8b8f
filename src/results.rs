//! Machine-readable results of `chatroom sim` and `chatroom check`, for CI systems and batch
//! jobs: JSON lines (`--json FILE`, one object per seed or check) and JUnit XML (`--junit FILE`,
//! one test case each). A sweep sharded over a CI matrix (`--shard K/N`) writes one JSON-lines
//! file per shard; `chatroom sim merge` reads them back, orders them by seed and writes one file
//! of each kind (plain `cat` of the JSON lines works too: every line stands alone).
//!
//! One line, keys always in this order:
//!
//! ```text
//! {"tool":"sim","name":"seed 42","seed":42,"options":{"faults":"swarm",...},"result":"fail",
//!  "invariant":"per-sender order is kept","detail":"...","at_ms":1234,"hash":"0123456789abcdef",
//!  "wall_ms":3.217,"stats":{"events":5120,...}}
//! ```
//!
//! `result` is `ok` or `fail`; `invariant`, `detail` and `at_ms` are `null` unless it failed;
//! `seed` and `at_ms` are `null` for `chatroom check` (no seed; its violations are steps, not
//! times). Written and read by hand (a small JSON value type below): the format is flat and the
//! crate needs no JSON dependency for it.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

/// One result: a seed of a sweep, a single run or replay, or a model check.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// `sim` or `check`.
    pub tool: String,
    /// What ran, for people and JUnit: `seed 42`, `replay FILE`, `check users=2 ops=2 ...`.
    pub name: String,
    pub seed: Option<u64>,
    /// The options it ran with, in a fixed order, as text.
    pub options: Vec<(String, String)>,
    /// The violated invariant, if any.
    pub failure: Option<Failure>,
    /// The run's deterministic fingerprint (the trace hash of a simulation), as hex.
    pub hash: String,
    pub wall_ms: f64,
    /// Counters (events, delivered, checks, crashes; states explored, unique, depth).
    pub stats: Vec<(String, u64)>,
}

/// A violated invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub invariant: String,
    pub detail: String,
    /// Simulated time of the violation (simulations only).
    pub at_ms: Option<u64>,
}

impl RunResult {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// The result as one line of JSON (no newline).
    pub fn to_json_line(&self) -> String {
        let text = |s: &str| Json::Str(s.to_owned());
        let num = |n: u64| Json::Num(n.to_string());
        let failure = self.failure.as_ref();
        let object = Json::Obj(vec![
            ("tool".into(), text(&self.tool)),
            ("name".into(), text(&self.name)),
            ("seed".into(), self.seed.map_or(Json::Null, num)),
            (
                "options".into(),
                Json::Obj(self.options.iter().map(|(k, v)| (k.clone(), text(v))).collect()),
            ),
            ("result".into(), text(if self.passed() { "ok" } else { "fail" })),
            ("invariant".into(), failure.map_or(Json::Null, |f| text(&f.invariant))),
            ("detail".into(), failure.map_or(Json::Null, |f| text(&f.detail))),
            ("at_ms".into(), failure.and_then(|f| f.at_ms).map_or(Json::Null, num)),
            ("hash".into(), text(&self.hash)),
            ("wall_ms".into(), Json::Num(format!("{:.3}", self.wall_ms))),
            (
                "stats".into(),
                Json::Obj(self.stats.iter().map(|(k, v)| (k.clone(), num(*v))).collect()),
            ),
        ]);
        object.to_string()
    }

    /// Reads a line written by [`RunResult::to_json_line`].
    pub fn from_json_line(line: &str) -> Result<RunResult, String> {
        let value = Json::parse(line)?;
        let field = |key: &str| value.get(key).ok_or_else(|| format!("no {key:?} in {line}"));
        let text = |key: &str| -> Result<String, String> {
            field(key)?.as_str().map(str::to_owned).ok_or_else(|| format!("{key:?} is not text"))
        };
        let optional_u64 = |key: &str| -> Result<Option<u64>, String> {
            match field(key)? {
                Json::Null => Ok(None),
                other => other.as_u64().map(Some).ok_or_else(|| format!("{key:?} is not a u64")),
            }
        };
        let pairs = |key: &str| -> Result<Vec<(String, Json)>, String> {
            match field(key)? {
                Json::Obj(pairs) => Ok(pairs.clone()),
                _ => Err(format!("{key:?} is not an object")),
            }
        };
        let options = pairs("options")?
            .into_iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect::<Option<Vec<_>>>()
            .ok_or("an option is not text")?;
        let stats = pairs("stats")?
            .into_iter()
            .map(|(k, v)| v.as_u64().map(|v| (k.clone(), v)))
            .collect::<Option<Vec<_>>>()
            .ok_or("a stat is not a u64")?;
        let failure = match text("result")?.as_str() {
            "ok" => None,
            "fail" => Some(Failure {
                invariant: text("invariant")?,
                detail: text("detail")?,
                at_ms: optional_u64("at_ms")?,
            }),
            other => return Err(format!("result {other:?} is neither ok nor fail")),
        };
        let wall_ms = match field("wall_ms")? {
            Json::Num(n) => n.parse().map_err(|_| format!("bad wall_ms {n}"))?,
            _ => return Err("wall_ms is not a number".into()),
        };
        Ok(RunResult {
            tool: text("tool")?,
            name: text("name")?,
            seed: optional_u64("seed")?,
            options,
            failure,
            hash: text("hash")?,
            wall_ms,
            stats,
        })
    }
}

/// Where `chatroom sim`, `chatroom sim merge` and `chatroom check` also write their results.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ResultFiles {
    /// Also write the results as JSON lines (one object per run) to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write the results as JUnit XML (one test case per run) to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

impl ResultFiles {
    /// Writes `results` as JSON lines and as JUnit (suite `suite`) to the files given.
    pub fn write(&self, suite: &str, results: &[RunResult]) -> Result<(), String> {
        let write = |path: &PathBuf, text: String| {
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        if let Some(path) = &self.json {
            write(path, json_lines(results))?;
        }
        if let Some(path) = &self.junit {
            write(path, junit(suite, results))?;
        }
        Ok(())
    }
}

/// Every result as JSON lines, each ending in a newline.
pub fn json_lines(results: &[RunResult]) -> String {
    results.iter().map(|r| r.to_json_line() + "\n").collect()
}

/// Reads JSON lines; blank lines are skipped, a bad line is an error naming its number.
pub fn parse_json_lines(text: &str) -> Result<Vec<RunResult>, String> {
    let lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
    lines
        .map(|(i, line)| {
            RunResult::from_json_line(line).map_err(|e| format!("line {}: {e}", i + 1))
        })
        .collect()
}

/// Every result as one JUnit XML test suite named `suite`: a test case per result, a
/// `<failure>` naming the invariant for each that failed, and its options and hash as the
/// case's `<system-out>` (what CI systems show next to it).
pub fn junit(suite: &str, results: &[RunResult]) -> String {
    let failures = results.iter().filter(|r| !r.passed()).count();
    let wall_s: f64 = results.iter().map(|r| r.wall_ms).sum::<f64>() / 1000.0;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{wall_s:.3}\">",
        xml(suite),
        results.len()
    );
    for result in results {
        let classname = format!("chatroom.{}", result.tool);
        let _ = write!(
            out,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
            xml(&classname),
            xml(&result.name),
            result.wall_ms / 1000.0
        );
        if let Some(failure) = &result.failure {
            let at = failure.at_ms.map(|ms| format!(" at {ms} ms")).unwrap_or_default();
            let _ = write!(
                out,
                "\n    <failure message=\"{}\" type=\"invariant\">{}{}</failure>",
                xml(&failure.invariant),
                xml(&failure.detail),
                xml(&at)
            );
        }
        let options: Vec<String> = result.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(
            out,
            "\n    <system-out>{} hash={}</system-out>\n  </testcase>\n",
            xml(&options.join(" ")),
            xml(&result.hash)
        );
    }
    out.push_str("</testsuite>\n");
    out
}

/// Text escaped for XML (and HTML) content and attribute values, for JUnit files and the
/// space-time diagram alike. Characters XML 1.0 cannot carry at all (most control characters)
/// are written as `?`.
pub(crate) fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value, as much of JSON as these files use. Numbers keep their text, so a `u64` seed
/// survives exactly (a float would round it above 2^53).
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    /// Keys in their written order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// Parses one JSON value; anything after it but whitespace is an error.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut parser = Parser { bytes: text.as_bytes(), pos: 0 };
        let value = parser.value(0)?;
        parser.space();
        if parser.pos != parser.bytes.len() {
            return Err(format!("unexpected text at byte {}", parser.pos));
        }
        Ok(value)
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Num(n) => f.write_str(n),
            Json::Str(s) => write_json_str(f, s),
            Json::Arr(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Obj(pairs) => {
                f.write_str("{")?;
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_json_str(f, key)?;
                    write!(f, ":{value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_json_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Nesting deeper than this is refused (these files nest two levels).
const DEPTH_MAX: usize = 32;

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while self.bytes.get(self.pos).is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn error<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.pos))
    }

    fn eat(&mut self, byte: u8) -> Result<(), String> {
        self.space();
        if self.bytes.get(self.pos) == Some(&byte) {
            self.pos += 1;
            Ok(())
        } else {
            self.error(&format!("expected {:?}", byte as char))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > DEPTH_MAX {
            return self.error("nested too deeply");
        }
        self.space();
        match self.bytes.get(self.pos) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Json::Str),
            Some(b'-' | b'0'..=b'9') => Ok(self.number()),
            Some(_) => {
                for (word, value) in
                    [("null", Json::Null), ("true", Json::Bool(true)), ("false", Json::Bool(false))]
                {
                    if self.bytes[self.pos..].starts_with(word.as_bytes()) {
                        self.pos += word.len();
                        return Ok(value);
                    }
                }
                self.error("unexpected character")
            }
            None => self.error("unexpected end"),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, String> {
        self.eat(b'{')?;
        let mut pairs = Vec::new();
        self.space();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Json::Obj(pairs));
        }
        loop {
            self.space();
            let key = self.string()?;
            self.eat(b':')?;
            pairs.push((key, self.value(depth + 1)?));
            self.space();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Obj(pairs));
                }
                _ => return self.error("expected ',' or '}'"),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, String> {
        self.eat(b'[')?;
        let mut items = Vec::new();
        self.space();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Json::Arr(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.space();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Arr(items));
                }
                _ => return self.error("expected ',' or ']'"),
            }
        }
    }

    fn number(&mut self) -> Json {
        let start = self.pos;
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.pos += 1;
        }
        Json::Num(String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned())
    }

    fn string(&mut self) -> Result<String, String> {
        if self.bytes.get(self.pos) != Some(&b'"') {
            return self.error("expected a string");
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while self.bytes.get(self.pos).is_some_and(|&b| b != b'"' && b != b'\\') {
                self.pos += 1;
            }
            let run = std::str::from_utf8(&self.bytes[start..self.pos])
                .map_err(|_| format!("invalid UTF-8 at byte {start}"))?;
            out.push_str(run);
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                _ => return self.error("unterminated string"),
            }
        }
    }

    fn escape(&mut self) -> Result<char, String> {
        let Some(&byte) = self.bytes.get(self.pos) else { return self.error("unfinished escape") };
        self.pos += 1;
        Ok(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                if (0xd800..0xdc00).contains(&unit) {
                    // A surrogate pair: the low half must follow.
                    if !self.bytes[self.pos..].starts_with(b"\\u") {
                        return self.error("lone surrogate");
                    }
                    self.pos += 2;
                    let low = self.hex4()?;
                    if !(0xdc00..0xe000).contains(&low) {
                        return self.error("bad surrogate pair");
                    }
                    let code = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                    char::from_u32(code).ok_or_else(|| format!("bad code point {code:#x}"))?
                } else {
                    char::from_u32(unit).ok_or_else(|| format!("bad code point {unit:#x}"))?
                }
            }
            _ => return self.error("unknown escape"),
        })
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.bytes.get(self.pos..self.pos + 4).ok_or("unfinished \\u escape")?;
        let text = std::str::from_utf8(digits).map_err(|_| "bad \\u escape")?;
        let unit = u32::from_str_radix(text, 16).map_err(|_| format!("bad \\u escape {text:?}"))?;
        self.pos += 4;
        Ok(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seed: u64, failed: bool) -> RunResult {
        RunResult {
            tool: "sim".into(),
            name: format!("seed {seed}"),
            seed: Some(seed),
            options: vec![("faults".into(), "swarm".into()), ("clients".into(), "4".into())],
            failure: failed.then(|| Failure {
                invariant: "per-sender order is kept".into(),
                detail: "relay 7 got \"#1.2 <hi> & \\ \u{1}\" \n after #1.3".into(),
                at_ms: Some(1234),
            }),
            hash: "00ff00ff00ff00ff".into(),
            wall_ms: 3.25,
            stats: vec![("events".into(), 5120), ("delivered".into(), 12)],
        }
    }

    #[test]
    fn a_result_round_trips_through_its_json_line() {
        for result in [sample(u64::MAX, true), sample(0, false)] {
            let line = result.to_json_line();
            assert!(!line.contains('\n'), "one line: {line}");
            assert_eq!(RunResult::from_json_line(&line).unwrap(), result, "{line}");
        }
    }

    #[test]
    fn the_json_line_layout_is_pinned() {
        let line = sample(42, false).to_json_line();
        assert_eq!(
            line,
            "{\"tool\":\"sim\",\"name\":\"seed 42\",\"seed\":42,\
             \"options\":{\"faults\":\"swarm\",\"clients\":\"4\"},\"result\":\"ok\",\
             \"invariant\":null,\"detail\":null,\"at_ms\":null,\"hash\":\"00ff00ff00ff00ff\",\
             \"wall_ms\":3.250,\"stats\":{\"events\":5120,\"delivered\":12}}"
        );
    }

    #[test]
    fn json_escapes_and_unicode_parse_back() {
        let value =
            Json::parse(r#"{"a":"\u00e9\ud83d\ude00\n\"\\\/","b":[1,-2.5e3,true,null],"c":{}}"#)
                .unwrap();
        assert_eq!(value.get("a").and_then(Json::as_str), Some("é😀\n\"\\/"));
        assert_eq!(
            value.to_string(),
            "{\"a\":\"é😀\\n\\\"\\\\/\",\"b\":[1,-2.5e3,true,null],\"c\":{}}"
        );
        for bad in ["", "{", "{\"a\":}", "[1,]", "\"\\ud83d\"", "{} x", "\"\\q\"", "nul"] {
            assert!(Json::parse(bad).is_err(), "{bad:?} accepted");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(Json::parse(&deep).is_err(), "nesting is bounded");
    }

    #[test]
    fn junit_names_each_case_and_each_failing_invariant_escaped() {
        let xml = junit("chatroom sim", &[sample(1, false), sample(2, true)]);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"chatroom sim\" tests=\"2\" failures=\"1\""), "{xml}");
        assert_eq!(xml.matches("<testcase ").count(), 2);
        assert_eq!(xml.matches("<failure ").count(), 1);
        assert!(xml.contains("<failure message=\"per-sender order is kept\" type=\"invariant\">relay 7 got &quot;#1.2 &lt;hi&gt; &amp; \\ ?&quot; &#10; after #1.3 at 1234 ms</failure>"), "{xml}");
        assert!(
            xml.contains("<system-out>faults=swarm clients=4 hash=00ff00ff00ff00ff</system-out>")
        );
        assert!(xml.trim_end().ends_with("</testsuite>"));
    }

    #[test]
    fn json_lines_parse_back_and_name_a_bad_line() {
        let text = json_lines(&[sample(1, false), sample(2, true)]) + "\n";
        assert_eq!(parse_json_lines(&text).unwrap(), [sample(1, false), sample(2, true)]);
        let broken = text.replacen("\"result\":\"ok\"", "\"result\":\"maybe\"", 1);
        let error = parse_json_lines(&broken).unwrap_err();
        assert!(error.starts_with("line 1: "), "{error}");
    }
}
