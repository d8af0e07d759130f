//! SQL `LIKE` patterns: `%` matches any sequence of characters, `_` exactly one, and
//! `\` makes the next character literal. Patterns are compiled once
//! ([`LikePattern::compile`]) and matched per row without allocation (except for
//! `ILIKE`, which lower-cases the subject).

use super::EvalError;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// One literal character.
    Char(char),
    /// `_`: any one character.
    One,
    /// `%`: any sequence (consecutive `%` are merged).
    Many,
}

/// A compiled `LIKE` / `ILIKE` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LikePattern {
    tokens: Vec<Token>,
    case_insensitive: bool,
}

impl LikePattern {
    /// Compile `pattern`; `case_insensitive` for `ILIKE` (Unicode lower-casing of both
    /// sides). A pattern ending in a lone `\` is an error.
    pub fn compile(pattern: &str, case_insensitive: bool) -> Result<LikePattern, EvalError> {
        let mut tokens = Vec::new();
        let lowered;
        let source = if case_insensitive {
            lowered = pattern.to_lowercase();
            lowered.as_str()
        } else {
            pattern
        };
        let mut chars = source.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    if tokens.last() != Some(&Token::Many) {
                        tokens.push(Token::Many);
                    }
                }
                '_' => tokens.push(Token::One),
                '\\' => match chars.next() {
                    Some(n) => tokens.push(Token::Char(n)),
                    None => {
                        return Err(EvalError::new(format!(
                            "LIKE pattern '{pattern}' ends with the escape character"
                        )))
                    }
                },
                c => tokens.push(Token::Char(c)),
            }
        }
        Ok(LikePattern {
            tokens,
            case_insensitive,
        })
    }

    /// True when `s` matches the whole pattern.
    pub fn matches(&self, s: &str) -> bool {
        if self.case_insensitive {
            let lowered: Vec<char> = s.to_lowercase().chars().collect();
            self.match_seq(&lowered)
        } else if s.is_ascii() {
            // One byte per character: no decoding, no allocation.
            self.match_seq(s.as_bytes())
        } else {
            let chars: Vec<char> = s.chars().collect();
            self.match_seq(&chars)
        }
    }

    /// Greedy wildcard matching with backtracking to the last `%` (linear-ish, no
    /// exponential blow-up), over characters or ASCII bytes.
    fn match_seq<C: Copy + Into<char>>(&self, s: &[C]) -> bool {
        let p = &self.tokens;
        let (mut pi, mut si) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            match p.get(pi) {
                Some(Token::Many) => {
                    star = Some((pi, si));
                    pi += 1;
                }
                Some(Token::One) => {
                    pi += 1;
                    si += 1;
                }
                Some(Token::Char(c)) if *c == s[si].into() => {
                    pi += 1;
                    si += 1;
                }
                _ => match star {
                    Some((sp, ss)) => {
                        pi = sp + 1;
                        si = ss + 1;
                        star = Some((sp, ss + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|t| *t == Token::Many)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_cases() {
        let cases: &[(&str, &str, bool, bool)] = &[
            ("hello", "hello", false, true),
            ("hello", "h%", false, true),
            ("hello", "%llo", false, true),
            ("hello", "%l%", false, true),
            ("hello", "h_llo", false, true),
            ("hello", "h_lo", false, false),
            ("hello", "", false, false),
            ("", "", false, true),
            ("", "%", false, true),
            ("", "_", false, false),
            ("hello", "HELLO", false, false),
            ("hello", "HEL%", true, true),
            ("100%", "100\\%", false, true),
            ("1000", "100\\%", false, false),
            ("a_b", "a\\_b", false, true),
            ("axb", "a\\_b", false, false),
            ("abcabc", "%abc", false, true),
            ("aaab", "%a%b", false, true),
            ("mississippi", "m%iss%pi", false, true),
            ("mississippi", "m%iss%px", false, false),
            ("héllo", "h_llo", false, true),
            ("back\\slash", "back\\\\slash", false, true),
        ];
        for (s, p, ci, want) in cases {
            let pat = LikePattern::compile(p, *ci).expect("valid pattern");
            assert_eq!(pat.matches(s), *want, "{s:?} LIKE {p:?} (ci={ci})");
        }
    }

    #[test]
    fn trailing_escape_is_an_error() {
        assert!(LikePattern::compile("abc\\", false).is_err());
    }
}
