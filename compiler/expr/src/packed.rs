//! Packed rows: a row's datums in one byte string, for the keys and rows that stateful
//! operators keep.
//!
//! ```text
//! Row = Vec<Datum> (32 bytes a datum, one allocation per row and per VARCHAR)
//!   ──pack──▶ PackedRow (one allocation; fixed-width values in 1 + 4/8/16 bytes)
//! ```
//!
//! A [`Row`] is what operators evaluate; a [`PackedRow`] is what they *hold*: a group
//! key of a `Reduce`, the row it last emitted. The encoding keeps order: comparing two
//! packed rows byte by byte (`memcmp`) gives what comparing the rows datum by datum
//! gives ([`Datum`]'s derived order, a shorter row before its extensions), and equal
//! rows pack to equal bytes (`-0.0` and `0.0`, and every NaN, as `Datum` equates them),
//! so a packed key is hashed and compared as plain bytes — once, with no pointer to
//! follow. A probe packs the key columns of an input row into a reused buffer
//! ([`pack_columns`]) and looks the bytes up, so no key is allocated unless a new entry
//! is created.
//!
//! Each datum is a tag byte (the variant's position in [`Datum`], so that datums of
//! different variants order as `Datum` orders them) and then:
//!
//! | datum | bytes after the tag |
//! |---|---|
//! | NULL | none |
//! | BOOLEAN | 0 or 1 |
//! | INT/BIGINT, TIMESTAMP, INTERVAL | 8, big-endian, sign bit flipped |
//! | DATE | 4, big-endian, sign bit flipped |
//! | DOUBLE | 8: the total-order bits of the canonical value |
//! | DECIMAL | 16, big-endian, sign bit flipped |
//! | VARCHAR | the UTF-8 bytes, each 0x00 written 0x00 0xFF, then 0x00 0x00 |

use crate::datum::{Datum, Row, F64};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

const NULL: u8 = 0;
const BOOL: u8 = 1;
const INT: u8 = 2;
const FLOAT: u8 = 3;
const DECIMAL: u8 = 4;
const STR: u8 = 5;
const DATE: u8 = 6;
const TIMESTAMP: u8 = 7;
const INTERVAL: u8 = 8;

/// A row packed into one byte string whose byte order is the row order (see the
/// module docs).
///
/// Serialized as its bytes (for the exchange of differential arrangements keyed by it).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct PackedRow(Box<[u8]>);

impl Hash for PackedRow {
    /// As its bytes hash, so that a map keyed by packed rows is probed with `&[u8]`.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_ref().hash(state)
    }
}

impl Borrow<[u8]> for PackedRow {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for PackedRow {
    /// As [`PackedRow::from_bytes`]: lets a map keyed by packed rows insert a probed key
    /// (`entry_ref`).
    fn from(bytes: &[u8]) -> Self {
        PackedRow::from_bytes(bytes)
    }
}

impl fmt::Debug for PackedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PackedRow").field(&self.unpack()).finish()
    }
}

impl PackedRow {
    /// Packs `datums`.
    pub fn pack<'a>(datums: impl IntoIterator<Item = &'a Datum> + Clone) -> Self {
        // Sized up front: one allocation, which the boxed slice keeps.
        let len: usize = datums.clone().into_iter().map(packed_len).sum();
        let mut buf = Vec::with_capacity(len);
        for d in datums {
            pack_datum(d, &mut buf);
        }
        PackedRow(buf.into_boxed_slice())
    }

    /// The packed row of bytes made by [`pack_columns`] or [`pack_datum`].
    pub fn from_bytes(bytes: &[u8]) -> Self {
        PackedRow(bytes.into())
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The datums, in order.
    pub fn iter(&self) -> Datums<'_> {
        Datums { rest: &self.0 }
    }

    /// The row.
    pub fn unpack(&self) -> Row {
        // Every datum takes at least one byte; most take nine.
        let mut row = Vec::with_capacity(self.0.len().div_ceil(9).max(1));
        row.extend(self.iter());
        row
    }
}

/// The bytes [`pack_datum`] writes for `d` (a VARCHAR's NUL bytes aside).
fn packed_len(d: &Datum) -> usize {
    match d {
        Datum::Null => 1,
        Datum::Bool(_) => 2,
        Datum::Date(_) => 5,
        Datum::Int(_) | Datum::Float(_) | Datum::Timestamp(_) | Datum::Interval(_) => 9,
        Datum::Decimal(_) => 17,
        Datum::Str(s) => s.len() + 3,
    }
}

/// Appends the packing of `d` to `buf`.
pub fn pack_datum(d: &Datum, buf: &mut Vec<u8>) {
    match d {
        Datum::Null => buf.push(NULL),
        Datum::Bool(b) => buf.extend_from_slice(&[BOOL, u8::from(*b)]),
        Datum::Int(v) => {
            buf.push(INT);
            buf.extend_from_slice(&((*v as u64) ^ (1 << 63)).to_be_bytes());
        }
        Datum::Float(f) => {
            buf.push(FLOAT);
            // `Datum` orders doubles by `total_cmp` of the canonical value.
            let bits = f.canonical().to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            buf.extend_from_slice(&ordered.to_be_bytes());
        }
        Datum::Decimal(v) => {
            buf.push(DECIMAL);
            buf.extend_from_slice(&((*v as u128) ^ (1 << 127)).to_be_bytes());
        }
        Datum::Str(s) => {
            buf.push(STR);
            // Runs between NUL bytes are copied as they are; a NUL is written 0x00 0xFF.
            let mut rest = s.as_bytes();
            while let Some(at) = memchr::memchr(0, rest) {
                buf.extend_from_slice(&rest[..=at]);
                buf.push(0xFF);
                rest = &rest[at + 1..];
            }
            buf.extend_from_slice(rest);
            buf.extend_from_slice(&[0, 0]);
        }
        Datum::Date(v) => {
            buf.push(DATE);
            buf.extend_from_slice(&((*v as u32) ^ (1 << 31)).to_be_bytes());
        }
        Datum::Timestamp(v) => {
            buf.push(TIMESTAMP);
            buf.extend_from_slice(&((*v as u64) ^ (1 << 63)).to_be_bytes());
        }
        Datum::Interval(v) => {
            buf.push(INTERVAL);
            buf.extend_from_slice(&((*v as u64) ^ (1 << 63)).to_be_bytes());
        }
    }
}

/// Replaces `buf` with the packing of `row`'s columns `cols` (a missing column packs
/// as NULL): the bytes a key is probed with.
pub fn pack_columns(row: &[Datum], cols: &[usize], buf: &mut Vec<u8>) {
    buf.clear();
    for &c in cols {
        pack_datum(row.get(c).unwrap_or(&Datum::Null), buf);
    }
}

/// The datums of a packed row, in order.
pub struct Datums<'a> {
    rest: &'a [u8],
}

impl Datums<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.rest.len());
        out[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        out
    }
}

impl Iterator for Datums<'_> {
    type Item = Datum;

    fn next(&mut self) -> Option<Datum> {
        let (&tag, rest) = self.rest.split_first()?;
        self.rest = rest;
        let i64_of = |b: [u8; 8]| (u64::from_be_bytes(b) ^ (1 << 63)) as i64;
        Some(match tag {
            BOOL => Datum::Bool(self.take::<1>()[0] != 0),
            INT => Datum::Int(i64_of(self.take())),
            FLOAT => {
                let ordered = u64::from_be_bytes(self.take());
                let bits = if ordered >> 63 == 1 {
                    ordered & !(1 << 63)
                } else {
                    !ordered
                };
                Datum::Float(F64(f64::from_bits(bits)))
            }
            DECIMAL => Datum::Decimal((u128::from_be_bytes(self.take()) ^ (1 << 127)) as i128),
            STR => {
                // Runs up to each NUL: 0x00 0xFF is a NUL of the string, 0x00 0x00 its end.
                let mut bytes = Vec::new();
                loop {
                    let Some(at) = memchr::memchr(0, self.rest) else {
                        bytes.extend_from_slice(self.rest);
                        self.rest = &[];
                        break;
                    };
                    bytes.extend_from_slice(&self.rest[..at]);
                    let escaped = self.rest.get(at + 1) == Some(&0xFF);
                    self.rest = self.rest.get(at + 2..).unwrap_or_default();
                    if !escaped {
                        break;
                    }
                    bytes.push(0);
                }
                // Packed from a `String`: valid UTF-8 (lossy only for corrupt bytes).
                Datum::Str(
                    String::from_utf8(bytes)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                )
            }
            DATE => Datum::Date((u32::from_be_bytes(self.take()) ^ (1 << 31)) as i32),
            TIMESTAMP => Datum::Timestamp(i64_of(self.take())),
            INTERVAL => Datum::Interval(i64_of(self.take())),
            _ => Datum::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn datum() -> impl Strategy<Value = Datum> {
        prop_oneof![
            Just(Datum::Null),
            any::<bool>().prop_map(Datum::Bool),
            prop_oneof![any::<i64>(), -3i64..3].prop_map(Datum::Int),
            prop_oneof![
                any::<f64>(),
                Just(-0.0),
                Just(0.0),
                Just(f64::NAN),
                Just(-f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                -2.0f64..2.0
            ]
            .prop_map(|f| Datum::Float(F64(f))),
            prop_oneof![any::<i128>(), -3i128..3].prop_map(Datum::Decimal),
            "[a\\x00b]{0,4}".prop_map(Datum::Str),
            any::<String>().prop_map(Datum::Str),
            any::<i32>().prop_map(Datum::Date),
            prop_oneof![any::<i64>(), -3i64..3].prop_map(Datum::Timestamp),
            any::<i64>().prop_map(Datum::Interval),
        ]
    }

    fn row() -> impl Strategy<Value = Row> {
        proptest::collection::vec(datum(), 0..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Packing keeps order and equality, and unpacks to an equal row.
        #[test]
        fn packed_bytes_order_as_rows_do(a in row(), b in row()) {
            let (pa, pb) = (PackedRow::pack(&a), PackedRow::pack(&b));
            prop_assert_eq!(pa.cmp(&pb), a.cmp(&b), "{:?} vs {:?}", a, b);
            prop_assert_eq!(pa == pb, a == b);
            prop_assert_eq!(pa.unpack(), a.clone());
            prop_assert_eq!(pa.iter().count(), a.len());
        }

        /// A probe packed from an input row's columns is the key packed from the key row.
        #[test]
        fn columns_pack_as_the_key_row(a in row(), b in row()) {
            let wide: Row = a.iter().chain(&b).cloned().collect();
            let cols: Vec<usize> = (a.len()..wide.len()).collect();
            let mut buf = vec![9, 9];
            pack_columns(&wide, &cols, &mut buf);
            let key = PackedRow::pack(&b);
            prop_assert_eq!(buf.as_slice(), key.as_bytes());
        }
    }

    #[test]
    fn zero_and_nan_pack_as_datum_equates_them() {
        let pack = |f: f64| PackedRow::pack(&[Datum::Float(F64(f))]);
        assert_eq!(pack(-0.0), pack(0.0));
        assert_eq!(pack(f64::NAN), pack(-f64::NAN));
        assert_eq!(pack(1.0).unpack(), vec![Datum::Float(F64(1.0))]);
    }
}
