//! A small RFC 4180 CSV record splitter and field writer.
//!
//! Own code (rather than the `csv` crate) because the reader must tell a quoted empty
//! field (`""`, the empty string) from an unquoted one (NULL), report the line each
//! record starts on, and keep going after a malformed record.

use std::borrow::Cow;

/// The largest record accepted, in bytes.
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 20;

/// The error of a record whose quoted field does not end before the data does.
pub(crate) const UNTERMINATED: &str = "unterminated quoted field";

/// One field of a record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// The unescaped bytes.
    pub bytes: Cow<'a, [u8]>,
    /// Whether it was written in quotes.
    pub quoted: bool,
}

/// What [`Reader::next_record`] found.
#[derive(Debug)]
pub(crate) struct RecordMeta<'a> {
    /// 1-based line the record starts on.
    pub line: usize,
    /// The record's raw bytes (without the line break).
    pub raw: &'a [u8],
    /// Why the record is malformed, if it is (fields are then incomplete).
    pub error: Option<String>,
}

/// Splits a buffer into records.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    line: usize,
    delim: u8,
}

impl<'a> Reader<'a> {
    #[cfg(test)]
    pub(crate) fn new(data: &'a [u8], delim: u8) -> Self {
        Reader::resume(data, 0, 1, delim)
    }

    /// A reader continuing at byte `pos`, which is on line `line`.
    pub(crate) fn resume(data: &'a [u8], pos: usize, line: usize, delim: u8) -> Self {
        Reader {
            data,
            pos,
            line,
            delim,
        }
    }

    /// The byte offset of the next record.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The line the next record starts on.
    pub(crate) fn line(&self) -> usize {
        self.line
    }

    /// Resynchronises after the record starting at byte `start` on line `line` that
    /// cannot end (an unterminated quote would take the rest of the file as one field):
    /// the next record starts at the line after the record's first line. Returns that
    /// first line (without its line break), the raw bytes to report.
    pub(crate) fn resync(&mut self, start: usize, line: usize) -> &'a [u8] {
        let d = self.data;
        let start = start.min(d.len());
        let (mut end, next, next_line) = match d[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (start + i, start + i + 1, line + 1),
            None => (d.len(), d.len(), line),
        };
        if end > start && d[end - 1] == b'\r' {
            end -= 1;
        }
        self.pos = next;
        self.line = next_line;
        &d[start..end]
    }

    /// Skip to the end of the current line (after an error), counting it.
    fn skip_line(&mut self) {
        match memchr::memchr(b'\n', &self.data[self.pos..]) {
            Some(i) => {
                self.pos += i + 1;
                self.line += 1;
            }
            None => self.pos = self.data.len(),
        }
    }

    /// The next non-empty record, its fields in `fields` (cleared first).
    pub(crate) fn next_record(&mut self, fields: &mut Vec<Field<'a>>) -> Option<RecordMeta<'a>> {
        loop {
            fields.clear();
            if self.pos >= self.data.len() {
                return None;
            }
            let start = self.pos;
            let line = self.line;
            let error = self.parse_record(fields);
            let mut end = self.pos;
            // Trim the line break from the raw bytes.
            while end > start && matches!(self.data[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            if error.is_none() && end > start + MAX_RECORD_BYTES {
                return Some(RecordMeta {
                    line,
                    raw: &self.data[start..end],
                    error: Some(format!(
                        "record of {} bytes is larger than the limit of {MAX_RECORD_BYTES}",
                        end - start
                    )),
                });
            }
            if error.is_none() && fields.len() == 1 && end == start {
                continue; // an empty line
            }
            return Some(RecordMeta {
                line,
                raw: &self.data[start..end],
                error,
            });
        }
    }

    /// Parse one record starting at `pos`; leaves `pos` after its line break.
    fn parse_record(&mut self, fields: &mut Vec<Field<'a>>) -> Option<String> {
        let d = self.data;
        loop {
            // One field.
            if self.pos < d.len() && d[self.pos] == b'"' {
                self.pos += 1;
                let begin = self.pos;
                let mut owned: Option<Vec<u8>> = None;
                let mut seg = begin;
                loop {
                    // The next quote; the line breaks before it are inside the field.
                    let rest = &d[self.pos..];
                    let Some(i) = memchr::memchr(b'"', rest) else {
                        self.line += memchr::memchr_iter(b'\n', rest).count();
                        self.pos = d.len();
                        return Some(UNTERMINATED.into());
                    };
                    self.line += memchr::memchr_iter(b'\n', &rest[..i]).count();
                    self.pos += i;
                    if d.get(self.pos + 1) == Some(&b'"') {
                        let o = owned.get_or_insert_with(Vec::new);
                        o.extend_from_slice(&d[seg..=self.pos]);
                        self.pos += 2;
                        seg = self.pos;
                        continue;
                    }
                    break;
                }
                let bytes = match owned {
                    Some(mut o) => {
                        o.extend_from_slice(&d[seg..self.pos]);
                        Cow::Owned(o)
                    }
                    None => Cow::Borrowed(&d[begin..self.pos]),
                };
                self.pos += 1; // closing quote
                fields.push(Field {
                    bytes,
                    quoted: true,
                });
            } else {
                let begin = self.pos;
                self.pos =
                    memchr::memchr2(self.delim, b'\n', &d[begin..]).map_or(d.len(), |i| begin + i);
                let mut end = self.pos;
                if end > begin && d[end - 1] == b'\r' && (end == d.len() || d[end] == b'\n') {
                    end -= 1;
                }
                fields.push(Field {
                    bytes: Cow::Borrowed(&d[begin..end]),
                    quoted: false,
                });
            }
            // After a field: a delimiter, a line break or the end.
            if self.pos >= d.len() {
                return None;
            }
            match d[self.pos] {
                b if b == self.delim => self.pos += 1,
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    return None;
                }
                b'\r' if d.get(self.pos + 1) == Some(&b'\n') => {
                    self.pos += 2;
                    self.line += 1;
                    return None;
                }
                b'\r' if self.pos + 1 == d.len() => {
                    self.pos += 1;
                    return None;
                }
                _ => {
                    self.skip_line();
                    return Some("unexpected character after a closing quote".into());
                }
            }
        }
    }
}

/// Append `s` as a CSV field, quoted when it has to be (or when it is empty, so that
/// it reads back as an empty string rather than NULL).
pub(crate) fn write_field(out: &mut String, s: &str, delim: u8, null_literal: &str) {
    let needs = s.is_empty()
        || s == null_literal
        || s.bytes()
            .any(|b| b == delim || b == b'"' || b == b'\n' || b == b'\r')
        || s.starts_with(char::is_whitespace)
        || s.ends_with(char::is_whitespace);
    if needs {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rec = (usize, Vec<(String, bool)>, Option<String>);

    fn all(data: &[u8]) -> Vec<Rec> {
        let mut r = Reader::new(data, b',');
        let mut fields = Vec::new();
        let mut out = Vec::new();
        while let Some(m) = r.next_record(&mut fields) {
            out.push((
                m.line,
                fields
                    .iter()
                    .map(|f| (String::from_utf8_lossy(&f.bytes).into_owned(), f.quoted))
                    .collect(),
                m.error,
            ));
        }
        out
    }

    #[test]
    fn splits_quoted_and_multiline_records() {
        let recs = all(b"a,\"b,\"\"c\"\"\",\r\n\n\"x\ny\",,\"\"\nlast");
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].0, 1);
        assert_eq!(
            recs[0].1,
            vec![
                ("a".into(), false),
                ("b,\"c\"".into(), true),
                ("".into(), false)
            ]
        );
        assert_eq!(recs[1].0, 3);
        assert_eq!(
            recs[1].1,
            vec![("x\ny".into(), true), ("".into(), false), ("".into(), true)]
        );
        assert_eq!(recs[2].0, 5);
        assert_eq!(recs[2].1, vec![("last".into(), false)]);
    }

    #[test]
    fn malformed_records_do_not_stop_the_reader() {
        let recs = all(b"\"a\"b,c\nok\n\"open");
        assert_eq!(recs.len(), 3);
        assert!(recs[0].2.is_some());
        assert_eq!(recs[1].1, vec![("ok".into(), false)]);
        assert_eq!(recs[1].0, 2);
        assert!(recs[2].2.as_deref().unwrap().contains("unterminated"));
    }

    #[test]
    fn resync_after_an_unterminated_quote_goes_on_at_the_next_line() {
        let data = b"1,a\n2,\"open\r\n3,c\n4,d\n";
        let mut r = Reader::new(data, b',');
        let mut fields = Vec::new();
        assert!(r.next_record(&mut fields).unwrap().error.is_none());
        let (start, line) = (r.position(), r.line());
        let m = r.next_record(&mut fields).unwrap();
        assert_eq!(m.error.as_deref(), Some(UNTERMINATED));
        assert_eq!(m.line, 2);
        assert_eq!(r.resync(start, line), b"2,\"open");
        assert_eq!((r.position(), r.line()), (13, 3));
        let mut rest = Vec::new();
        while let Some(m) = r.next_record(&mut fields) {
            assert!(m.error.is_none());
            rest.push((
                m.line,
                String::from_utf8_lossy(&fields[0].bytes).into_owned(),
            ));
        }
        assert_eq!(rest, vec![(3, "3".to_string()), (4, "4".to_string())]);
        // On the last line (no line break): the rest of the data.
        let mut r = Reader::new(b"\"x", b',');
        assert_eq!(r.resync(0, 1), b"\"x");
        assert_eq!(r.position(), 2);
    }

    #[test]
    fn writes_quotes_when_needed() {
        let mut s = String::new();
        write_field(&mut s, "a\"b", b',', "");
        s.push('|');
        write_field(&mut s, "", b',', "");
        s.push('|');
        write_field(&mut s, "plain", b',', "");
        assert_eq!(s, "\"a\"\"b\"|\"\"|plain");
    }
}
