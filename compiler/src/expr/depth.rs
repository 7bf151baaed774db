//! The nesting limit of expressions, checked on the text before `syn` parses it.
//!
//! Parsing, checking and emitting an expression recurse once per level of nesting, so
//! a hostile spec (5,000 nested parentheses) would overflow the stack. Nesting is
//! bounded here; long flat chains (`a + b + … `, `x && y && …`) are not nesting and
//! are not limited.

use super::ExprSpan;

/// The deepest nesting an expression may have: brackets (parentheses, calls, indexes,
/// `if` branches), `if`s in one `else if` chain, prefix operators in a row (`!!x`) and
/// calls or indexes chained on a result (`s.trim().lower()`, `m[0][1]`), which all
/// nest one expression in another. Documented in docs/language.md.
pub const MAX_NESTING: usize = 256;

/// What nests inside one open bracket without brackets of its own.
#[derive(Default)]
struct Level {
    /// The length of the `else if` chain last seen (each `if` nests in the one before).
    else_ifs: usize,
    /// Calls and indexes chained on a result since the last operator.
    postfix: usize,
}

/// Where the nesting of `text` first goes beyond [`MAX_NESTING`], if it does: the
/// span of the bracket, keyword or operator that went one level too deep.
pub fn too_deep(text: &str) -> Option<ExprSpan> {
    let bytes = text.as_bytes();
    let mut levels = vec![Level::default()];
    // The `else_ifs` and `postfix` of every open level, summed.
    let mut inner = 0usize;
    let mut prefix_run = 0usize;
    // True where an operand is expected, so `-` and `!` are prefix operators.
    let mut operand_next = true;
    let mut after_else = false;
    // The last byte that was not whitespace.
    let mut prev = b' ';
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let depth = |levels: &Vec<Level>, inner: usize, extra: usize| levels.len() - 1 + inner + extra;
        let chained = matches!(prev, b')' | b']');
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b == b'_') {
            after_else = false;
        }
        let start = i;
        match b {
            b'"' => {
                i = skip_string(bytes, i);
                operand_next = false;
                prefix_run = 0;
            }
            b'r' if matches!(bytes.get(i + 1), Some(b'"' | b'#')) && !ident_before(bytes, i) => {
                i = skip_raw_string(bytes, i);
                operand_next = false;
                prefix_run = 0;
            }
            b'(' | b'[' | b'{' | b'.' => {
                if chained && b != b'{' {
                    if let Some(level) = levels.last_mut() {
                        level.postfix += 1;
                    }
                    inner += 1;
                }
                if b != b'.' {
                    if depth(&levels, inner, prefix_run + 1) > MAX_NESTING {
                        return Some(start..start + 1);
                    }
                    levels.push(Level::default());
                    operand_next = true;
                    prefix_run = 0;
                } else if depth(&levels, inner, prefix_run) > MAX_NESTING {
                    return Some(start..start + 1);
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                if levels.len() > 1 {
                    let level = levels.pop().unwrap_or_default();
                    inner -= level.else_ifs + level.postfix;
                }
                operand_next = false;
                i += 1;
            }
            b'!' | b'-' | b'&' | b'*' if operand_next => {
                prefix_run += 1;
                if depth(&levels, inner, prefix_run) > MAX_NESTING {
                    return Some(start..start + 1);
                }
                i += 1;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.') {
                    i += 1;
                }
                let word = &text[start..i];
                prefix_run = 0;
                if word == "if" {
                    if let Some(level) = levels.last_mut() {
                        if !after_else {
                            inner -= level.else_ifs;
                            level.else_ifs = 0;
                        }
                        level.else_ifs += 1;
                    }
                    inner += 1;
                    if depth(&levels, inner, 0) > MAX_NESTING {
                        return Some(start..i);
                    }
                }
                after_else = word == "else";
                operand_next = word == "if" || after_else;
            }
            // Any other operator or separator: an operand follows, a postfix chain ends.
            _ => {
                operand_next = true;
                prefix_run = 0;
                if let Some(level) = levels.last_mut() {
                    inner -= level.postfix;
                    level.postfix = 0;
                }
                i += 1;
            }
        }
        prev = bytes[i - 1];
    }
    None
}

/// True when the byte before `i` continues an identifier (`bar"` is not a raw string).
fn ident_before(bytes: &[u8], i: usize) -> bool {
    i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')
}

/// The index after the string literal starting at `start` (a `"`).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The index after the raw string literal starting at `start` (`r"…"`, `r#"…"#`).
fn skip_raw_string(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    let hashes = bytes[i..].iter().take_while(|&&b| b == b'#').count();
    i += hashes;
    if bytes.get(i) != Some(&b'"') {
        return start + 1;
    }
    i += 1;
    while i < bytes.len() {
        if bytes[i] == b'"' && bytes[i + 1..].iter().take(hashes).filter(|&&b| b == b'#').count() == hashes {
            return i + 1 + hashes;
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, inner: &str, close: &str, n: usize) -> String {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn nesting_up_to_the_limit_is_fine() {
        assert_eq!(too_deep(&nested("(", "x", ")", MAX_NESTING)), None);
        assert_eq!(too_deep(&nested("abs(", "x", ")", MAX_NESTING)), None);
        assert_eq!(too_deep(&format!("{}x", "!".repeat(MAX_NESTING))), None);
        assert_eq!(too_deep("if a { (1) } else { [2][0] } + -(3) * -x - y"), None);
    }

    #[test]
    fn nesting_beyond_the_limit_is_found_where_it_happens() {
        let text = nested("(", "x", ")", 5000);
        assert_eq!(too_deep(&text), Some(MAX_NESTING..MAX_NESTING + 1));
        assert!(too_deep(&nested("abs(", "x", ")", MAX_NESTING + 1)).is_some());
        assert!(too_deep(&nested("[", "x", "]", 1000)).is_some());
        assert!(too_deep(&format!("{}x", "!".repeat(MAX_NESTING + 1))).is_some());
        assert!(too_deep(&format!("{}x", "- ".repeat(5000))).is_some());
        let else_ifs = format!("{} {{ 0 }}", "if a { 1 } else ".repeat(MAX_NESTING + 1));
        assert!(too_deep(&else_ifs).is_some());
        let methods = format!("s{}", ".lower()".repeat(MAX_NESTING + 2));
        assert!(too_deep(&methods).is_some());
        let indexes = format!("m{}", "[0]".repeat(MAX_NESTING + 2));
        assert!(too_deep(&indexes).is_some());
    }

    #[test]
    fn flat_chains_and_strings_are_not_nesting() {
        let sum = vec!["x"; 3000].join(" + ");
        assert_eq!(too_deep(&sum), None);
        let and = vec!["(x > 0)"; 4000].join(" && ");
        assert_eq!(too_deep(&and), None);
        let minus = vec!["-x"; 3000].join(" - ");
        assert_eq!(too_deep(&minus), None);
        let parens_in_strings = format!("concat(\"{}\", r#\"{}\"#)", "(".repeat(1000), "[\"".repeat(1000));
        assert_eq!(too_deep(&parens_in_strings), None);
        let ifs = vec!["if a { 1 } else { 2 }"; 3000].join(" + ");
        assert_eq!(too_deep(&ifs), None);
        let methods = vec!["s.trim().lower()"; 3000].join(" + ");
        assert_eq!(too_deep(&methods), None);
    }
}
