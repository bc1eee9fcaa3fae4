//! Numbers, booleans and byte sizes written as text.
//!
//! These follow the C library conventions QEMU builds on (`strtoll`,
//! `strtoull`, `strtod`) so that every string QEMU accepts is accepted
//! here with the same value, and every string it refuses is refused.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// Why a string is not a number of the wanted kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberError {
    /// Not a number at all, or followed by something else (`EINVAL`).
    Invalid,
    /// A number, but too large or (for sizes) negative (`ERANGE`).
    OutOfRange,
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NumberError::Invalid => "invalid number",
            NumberError::OutOfRange => "number out of range",
        })
    }
}

impl std::error::Error for NumberError {}

/// Parse a boolean the way QEMU's option parsers do.
///
/// Exactly `on`, `yes`, `true`, `y` and `off`, `no`, `false`, `n`;
/// case matters, so `On` is refused.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "on" | "yes" | "true" | "y" => Some(true),
        "off" | "no" | "false" | "n" => Some(false),
        _ => None,
    }
}

/// Parse a signed 64-bit integer in base 0 (decimal, `0x` hex, `0` octal).
///
/// Leading white space and a sign are allowed; the rest of the string must
/// be the number. `08` is invalid (8 is not an octal digit).
pub fn parse_i64(s: &str) -> Result<i64, NumberError> {
    let scan = scan_integer(s.as_bytes(), 0, Radix::Auto).ok_or(NumberError::Invalid)?;
    // Trailing text outranks overflow, as in QEMU's strto* wrappers.
    if scan.end != s.len() {
        return Err(NumberError::Invalid);
    }
    let magnitude = scan.magnitude.ok_or(NumberError::OutOfRange)?;
    let wide = if scan.negative {
        -i128::from(magnitude)
    } else {
        i128::from(magnitude)
    };
    i64::try_from(wide).map_err(|_| NumberError::OutOfRange)
}

/// Parse an unsigned 64-bit integer in base 0 (decimal, `0x` hex, `0` octal).
///
/// Like `strtoull`, a leading `-` negates modulo 2^64, so `-1` is
/// 18446744073709551615; only a magnitude above 2^64-1 is out of range.
pub fn parse_u64(s: &str) -> Result<u64, NumberError> {
    let scan = scan_integer(s.as_bytes(), 0, Radix::Auto).ok_or(NumberError::Invalid)?;
    if scan.end != s.len() {
        return Err(NumberError::Invalid);
    }
    let magnitude = scan.magnitude.ok_or(NumberError::OutOfRange)?;
    Ok(if scan.negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    })
}

/// Read an integer at the start of `s` as `strtoull`/`strtoll` in base 0
/// would: leading white space, an optional sign, `0x` hex or `0` octal.
/// Returns whether a `-` was seen, the magnitude (`None` on overflow) and
/// the length used; `None` when there is no number at all.
pub(crate) fn scan_c_integer(s: &str) -> Option<(bool, Option<u64>, usize)> {
    scan_integer(s.as_bytes(), 0, Radix::Auto).map(|scan| (scan.negative, scan.magnitude, scan.end))
}

/// Parse a finite floating-point number (QEMU's `qemu_strtod_finite`).
///
/// Leading white space is skipped; infinities, NaN and overflow are refused.
/// Hexadecimal floating-point is not supported.
pub(crate) fn parse_f64(s: &str) -> Result<f64, NumberError> {
    let t = s.trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
    if t.is_empty()
        || t.bytes()
            .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E'))
    {
        // Rust would read "inf"/"nan"; C's strtod would, but QEMU refuses them.
        return Err(NumberError::Invalid);
    }
    let v: f64 = t.parse().map_err(|_| NumberError::Invalid)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(NumberError::OutOfRange)
    }
}

/// Parse a byte count exactly as QEMU's `qemu_strtosz` does.
///
/// * leading white space and `+` are allowed;
/// * decimal digits with an optional `.fraction`, or `0x` hex;
/// * one optional suffix `B K M G T P E` (any case, powers of 1024);
/// * a fraction needs a suffix larger than `B` (`1.0B` is tolerated) and is
///   rounded half up to the byte;
/// * hex takes neither a fraction nor a suffix;
/// * negative values and values above 2^64-1 are out of range;
/// * anything left over makes the whole string invalid.
pub fn parse_size(s: &str) -> Result<u64, NumberError> {
    let b = s.as_bytes();
    let (value, end) = match size_prefix(b) {
        Ok(ok) => ok,
        Err((err, end)) => return Err(finish(b, end, err)),
    };
    if end != b.len() {
        return Err(NumberError::Invalid);
    }
    Ok(value)
}

/// Leftover text turns any error into `Invalid` (QEMU checks it last).
fn finish(b: &[u8], end: usize, err: NumberError) -> NumberError {
    if end < b.len() {
        NumberError::Invalid
    } else {
        err
    }
}

/// The scaled value and where parsing stopped, or an error and the same.
fn size_prefix(b: &[u8]) -> Result<(u64, usize), (NumberError, usize)> {
    let integral = scan_integer(b, 0, Radix::Decimal);
    let (mut whole, mut end, mut failed) = match integral {
        // Sizes are never negative; QEMU reports even "-0" as out of range.
        Some(scan) if scan.negative => return Err((NumberError::OutOfRange, scan.end)),
        Some(Scan {
            magnitude: None,
            end,
            ..
        }) => return Err((NumberError::OutOfRange, end)),
        Some(Scan {
            magnitude: Some(m),
            end,
            ..
        }) => (m, end, false),
        None => (0, 0, true),
    };
    let mut fraction_bits: u64 = 0;

    if !failed && whole == 0 && matches!(b.get(end), Some(b'x' | b'X')) {
        let scan = scan_integer(b, 0, Radix::Hex).ok_or((NumberError::Invalid, 0))?;
        end = scan.end;
        whole = scan.magnitude.ok_or((NumberError::OutOfRange, end))?;
        if b.get(end) == Some(&b'.') || b.get(end).and_then(|&c| suffix_multiplier(c)).is_some() {
            return Err((NumberError::Invalid, 0));
        }
    } else if b.get(end) == Some(&b'.') || (failed && b.contains(&b'.')) {
        if !failed && !b.get(end + 1).is_some_and(u8::is_ascii_digit) {
            // "1." and "1.k": a bare point with no digits after it.
            end += 1;
        } else {
            let (fraction, used) = scan_fraction(b.get(end..).unwrap_or_default());
            end += used;
            match fraction {
                Fraction::Invalid => failed = true,
                Fraction::Tiny => {
                    failed = false;
                    fraction_bits = 1;
                }
                Fraction::Value(1.0) => {
                    // Rounded up to a whole unit: carry into the integer part.
                    failed = false;
                    whole = whole.checked_add(1).ok_or((NumberError::OutOfRange, end))?;
                }
                Fraction::Value(f) => {
                    failed = false;
                    // A 64-bit binary fixed-point fraction; exact for a double.
                    fraction_bits = (f * 18_446_744_073_709_551_616.0) as u64;
                }
            }
        }
    }
    if failed {
        return Err((NumberError::Invalid, end));
    }
    if b.get(..end).unwrap_or_default().contains(&b'-') {
        return Err((NumberError::Invalid, 0));
    }

    let multiplier = match b.get(end).and_then(|&c| suffix_multiplier(c)) {
        Some(m) => {
            end += 1;
            m
        }
        None => 1,
    };
    if multiplier == 1 {
        if fraction_bits != 0 {
            return Err((NumberError::Invalid, 0));
        }
        return Ok((whole, end));
    }
    // Exact 64.64 fixed point times the multiplier, rounded half up.
    let scaled_fraction = u128::from(fraction_bits) * u128::from(multiplier);
    let round_up = (scaled_fraction >> 63) & 1;
    let total = u128::from(whole) * u128::from(multiplier) + (scaled_fraction >> 64) + round_up;
    u64::try_from(total)
        .map(|v| (v, end))
        .map_err(|_| (NumberError::OutOfRange, end))
}

/// The value of a size suffix letter.
fn suffix_multiplier(c: u8) -> Option<u64> {
    let shift = match c.to_ascii_uppercase() {
        b'B' => 0,
        b'K' => 10,
        b'M' => 20,
        b'G' => 30,
        b'T' => 40,
        b'P' => 50,
        b'E' => 60,
        _ => return None,
    };
    Some(1u64 << shift)
}

/// The outcome of reading a fraction with `strtod`.
enum Fraction {
    /// No number there (or not a finite one).
    Invalid,
    /// Non-zero but below the smallest normal double (C reports `ERANGE`).
    Tiny,
    /// A value; at most 1.0 once rounded.
    Value(f64),
}

/// Read what `strtod` would from `b`, which has no exponent because QEMU
/// reads `e` as the exa suffix: cut the text at the first `e` or `E` first.
fn scan_fraction(b: &[u8]) -> (Fraction, usize) {
    let cut = b
        .iter()
        .position(|&c| c == b'e' || c == b'E')
        .unwrap_or(b.len());
    let b = b.get(..cut).unwrap_or_default();
    let mut i = b.iter().take_while(|&&c| is_c_space(c)).count();
    let start = i;
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_digits = count_digits(b, i);
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        frac_digits = count_digits(b, i + 1);
        if int_digits + frac_digits > 0 {
            i += 1 + frac_digits;
        }
    }
    if int_digits + frac_digits == 0 {
        return (Fraction::Invalid, 0);
    }
    let text = std::str::from_utf8(b.get(start..i).unwrap_or_default()).unwrap_or("");
    let Ok(value) = text.parse::<f64>() else {
        return (Fraction::Invalid, 0);
    };
    let has_nonzero = b
        .get(start..i)
        .unwrap_or_default()
        .iter()
        .any(|c| (b'1'..=b'9').contains(c));
    if has_nonzero && value.abs() < f64::MIN_POSITIVE {
        return (Fraction::Tiny, i);
    }
    (Fraction::Value(value), i)
}

fn count_digits(b: &[u8], from: usize) -> usize {
    b.get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count()
}

/// C's `isspace` in the "C" locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The base an integer is read in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Radix {
    /// Base 0: a `0x` prefix means hex, a leading `0` octal, else decimal.
    Auto,
    /// Base 10.
    Decimal,
    /// Base 16, with an optional `0x` prefix.
    Hex,
}

/// What `strtoull` saw: a sign, a magnitude (`None` when it overflowed)
/// and the index just past the last character it used.
struct Scan {
    negative: bool,
    magnitude: Option<u64>,
    end: usize,
}

/// Read an integer from `b[from..]` as `strtoull` would; `None` when there
/// is no number at all.
fn scan_integer(b: &[u8], from: usize, radix: Radix) -> Option<Scan> {
    let mut i = from
        + b.get(from..)?
            .iter()
            .take_while(|&&c| is_c_space(c))
            .count();
    let negative = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let has_hex_prefix = b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    let base: u32 = match radix {
        Radix::Decimal => 10,
        Radix::Hex => 16,
        Radix::Auto if has_hex_prefix => 16,
        Radix::Auto if b.get(i) == Some(&b'0') => 8,
        Radix::Auto => 10,
    };
    if base == 16 && has_hex_prefix {
        i += 2;
    }
    let digits_start = i;
    let mut magnitude = Some(0u64);
    while let Some(d) = b.get(i).and_then(|&c| char::from(c).to_digit(base)) {
        magnitude = magnitude
            .and_then(|m| m.checked_mul(u64::from(base)))
            .and_then(|m| m.checked_add(u64::from(d)));
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    Some(Scan {
        negative,
        magnitude,
        end: i,
    })
}

/// Render a byte count for people, like QEMU's `size_to_str`.
///
/// Three significant digits and an IEC suffix: `512 B`, `4 KiB`,
/// `1.5 GiB`, `0.977 KiB` (for 1000: the unit switches at 1000, not 1024).
pub fn format_size_iec(bytes: u64) -> String {
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    // Scaling by 1024/1000 first moves to the next unit from 1000 on, which
    // keeps the printed number below four digits.
    let scaled = bytes as f64 / (1000.0 / 1024.0);
    let exponent = binary_exponent(scaled);
    let unit = usize::try_from((exponent - 1) / 10)
        .unwrap_or(0)
        .min(SUFFIXES.len() - 1);
    let divisor = (1u64 << (unit * 10)) as f64;
    let suffix = SUFFIXES.get(unit).copied().unwrap_or("");
    format!("{} {}B", format_general3(bytes as f64 / divisor), suffix)
}

/// The exponent `frexp` returns: `x = m * 2^e` with `0.5 <= m < 1`.
fn binary_exponent(x: f64) -> i32 {
    if x == 0.0 || !x.is_finite() {
        return 0;
    }
    let biased = ((x.to_bits() >> 52) & 0x7ff) as i32;
    // Every size scaled up by 1.024 is either zero or a normal double.
    biased - 1022
}

/// C's `%.3g`: three significant digits, trailing zeros dropped,
/// exponent notation outside 1e-4 ..= 999.
fn format_general3(v: f64) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    let sci = format!("{v:.2e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..3).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", strip_zeros(mantissa), exp.unsigned_abs());
    }
    let decimals = usize::try_from(2 - exp).unwrap_or(0);
    strip_zeros(&format!("{v:.decimals$}")).to_owned()
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A byte count that keyval and string input parse with size suffixes.
///
/// It serializes as a plain number. Deserializers in this crate recognise
/// it by its newtype name: the keyval one reads size syntax (`1G`), strict
/// JSON reads a `uint64`. Other deserializers see a `u64` newtype that
/// also accepts size strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

/// The newtype name by which this crate's deserializers spot [`Size`].
pub(crate) const SIZE_NEWTYPE: &str = "$qom::Size";

impl Size {
    /// The name [`Size`] passes to `deserialize_newtype_struct`; another
    /// deserializer that wants size syntax (`1G`) for it can match on this.
    pub const NEWTYPE_NAME: &'static str = SIZE_NEWTYPE;
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for Size {
    fn from(v: u64) -> Self {
        Size(v)
    }
}

impl From<Size> for u64 {
    fn from(s: Size) -> Self {
        s.0
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(SIZE_NEWTYPE, SizeVisitor)
    }
}

struct SizeVisitor;

impl<'de> Visitor<'de> for SizeVisitor {
    type Value = Size;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("size")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Size, D::Error> {
        u64::deserialize(d).map(Size)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
        Ok(Size(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
        parse_size(v)
            .map(Size)
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

#[cfg(test)]
mod tests;
