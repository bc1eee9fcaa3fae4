use super::*;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;
const EIB: u64 = 1 << 60;

use NumberError::{Invalid, OutOfRange};

#[test]
fn bool_words() {
    for s in ["on", "yes", "true", "y"] {
        assert_eq!(parse_bool(s), Some(true), "{s}");
    }
    for s in ["off", "no", "false", "n"] {
        assert_eq!(parse_bool(s), Some(false), "{s}");
    }
    for s in ["offer", "On", "TRUE", "", "1", "0", " on"] {
        assert_eq!(parse_bool(s), None, "{s}");
    }
}

#[test]
fn u64_base0() {
    assert_eq!(parse_u64("0"), Ok(0));
    assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
    assert_eq!(parse_u64("-1"), Ok(u64::MAX));
    assert_eq!(parse_u64("-18446744073709551615"), Ok(1));
    assert_eq!(parse_u64("18446744073709551616"), Err(OutOfRange));
    assert_eq!(parse_u64("-18446744073709551616"), Err(OutOfRange));
    assert_eq!(parse_u64("0x2a"), Ok(42));
    assert_eq!(parse_u64("0X2A"), Ok(42));
    assert_eq!(parse_u64("052"), Ok(42));
    assert_eq!(parse_u64(" +42"), Ok(42));
    assert_eq!(parse_u64("3.14"), Err(Invalid));
    assert_eq!(parse_u64("08"), Err(Invalid));
    assert_eq!(parse_u64("0x"), Err(Invalid));
    assert_eq!(parse_u64(""), Err(Invalid));
    assert_eq!(parse_u64("-"), Err(Invalid));
    assert_eq!(parse_u64("42 "), Err(Invalid));
    // Trailing text is reported ahead of overflow.
    assert_eq!(parse_u64("99999999999999999999x"), Err(Invalid));
}

#[test]
fn i64_base0() {
    assert_eq!(parse_i64("-9223372036854775808"), Ok(i64::MIN));
    assert_eq!(parse_i64("9223372036854775807"), Ok(i64::MAX));
    assert_eq!(parse_i64("9223372036854775808"), Err(OutOfRange));
    assert_eq!(parse_i64("-9223372036854775809"), Err(OutOfRange));
    assert_eq!(parse_i64("-0x10"), Ok(-16));
    assert_eq!(parse_i64("010"), Ok(8));
    assert_eq!(parse_i64("0"), Ok(0));
    assert_eq!(parse_i64("1e3"), Err(Invalid));
    assert_eq!(parse_i64("abc"), Err(Invalid));
}

#[test]
fn f64_finite() {
    assert_eq!(parse_f64("2.5"), Ok(2.5));
    assert_eq!(parse_f64(" -1e3"), Ok(-1000.0));
    assert_eq!(parse_f64("inf"), Err(Invalid));
    assert_eq!(parse_f64("nan"), Err(Invalid));
    assert_eq!(parse_f64("1e999"), Err(OutOfRange));
    assert_eq!(parse_f64("1x"), Err(Invalid));
}

/// /keyval/visit/size
#[test]
fn size_keyval_cases() {
    assert_eq!(parse_size("0"), Ok(0));
    assert_eq!(parse_size("9007199254740991"), Ok((1 << 53) - 1));
    assert_eq!(parse_size("9007199254740992"), Ok(1 << 53));
    assert_eq!(parse_size("9007199254740993"), Ok((1 << 53) + 1));
    assert_eq!(parse_size("9223372036854774784"), Ok(0x7fff_ffff_ffff_fc00));
    assert_eq!(parse_size("9223372036854775295"), Ok(0x7fff_ffff_ffff_fdff));
    assert_eq!(
        parse_size("18446744073709550591"),
        Ok(0xffff_ffff_ffff_fbff)
    );
    assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    assert_eq!(parse_size("-1"), Err(OutOfRange));
    assert_eq!(parse_size("18446744073709551616"), Err(OutOfRange));
    assert_eq!(parse_size("8b"), Ok(8));
    assert_eq!(parse_size("1.5k"), Ok(1536));
    assert_eq!(parse_size("2M"), Ok(2 * MIB));
    assert_eq!(parse_size("0.1G"), Ok(GIB / 10));
    assert_eq!(parse_size("16777215T"), Ok(16_777_215 * TIB));
    assert_eq!(parse_size("16777216T"), Err(OutOfRange));
    assert_eq!(parse_size("0Z"), Err(Invalid));
    assert_eq!(parse_size("16Gi"), Err(Invalid));
}

/// /cutils/strtosz/*
#[test]
fn size_cutils_cases() {
    assert_eq!(parse_size("12345"), Ok(12345));
    assert_eq!(parse_size(" +12345"), Ok(12345));
    assert_eq!(parse_size("08"), Ok(8));
    assert_eq!(parse_size("0xab"), Ok(0xab));
    assert_eq!(parse_size("0x1B"), Ok(0x1b)); // B is a hex digit here
    assert_eq!(parse_size("0x20M"), Err(Invalid));
    assert_eq!(parse_size("0x1.8k"), Err(Invalid));
    assert_eq!(parse_size("0x"), Err(Invalid));
    assert_eq!(parse_size("1.k"), Ok(KIB));
    assert_eq!(parse_size("1."), Ok(1));
    assert_eq!(parse_size(" .5k"), Ok(512));
    assert_eq!(parse_size("+.5k"), Ok(512));
    assert_eq!(parse_size("12.345M"), Ok(12_944_671));
    assert_eq!(parse_size("1.9999k"), Ok(2048));
    assert_eq!(parse_size("1.0B"), Ok(1));
    assert_eq!(parse_size("1.1"), Err(Invalid));
    assert_eq!(parse_size("1.1B"), Err(Invalid));
    assert_eq!(parse_size("0.5"), Err(Invalid));
    assert_eq!(parse_size("1kiB"), Err(Invalid));
    assert_eq!(parse_size("-1"), Err(OutOfRange));
    assert_eq!(parse_size(" -0"), Err(OutOfRange));
    assert_eq!(parse_size("-.5k"), Err(Invalid));
    assert_eq!(parse_size("20E"), Err(OutOfRange));
    assert_eq!(parse_size("15E"), Ok(15 * EIB));
    assert_eq!(parse_size("1.5E"), Ok(EIB + EIB / 2));
    assert_eq!(parse_size("inf"), Err(Invalid));
    assert_eq!(parse_size("NaN"), Err(Invalid));
    assert_eq!(parse_size("0b1000"), Err(Invalid));
    assert_eq!(parse_size("1.5e1k"), Err(Invalid));
    assert_eq!(parse_size(""), Err(Invalid));
    assert_eq!(parse_size(" "), Err(Invalid));
    assert_eq!(parse_size("."), Err(Invalid));
    assert_eq!(parse_size("k"), Err(Invalid));
    assert_eq!(parse_size("1 k"), Err(Invalid));
    assert_eq!(parse_size("1k "), Err(Invalid));
    assert_eq!(parse_size("1K"), Ok(KIB));
    assert_eq!(parse_size("1g"), Ok(GIB));
    assert_eq!(parse_size("1t"), Ok(TIB));
    assert_eq!(parse_size("1p"), Ok(1 << 50));
    assert_eq!(parse_size("1e"), Ok(EIB));
}

#[test]
fn iec_rendering() {
    assert_eq!(format_size_iec(0), "0 B");
    assert_eq!(format_size_iec(1), "1 B");
    assert_eq!(format_size_iec(512), "512 B");
    assert_eq!(format_size_iec(999), "999 B");
    assert_eq!(format_size_iec(1000), "0.977 KiB");
    assert_eq!(format_size_iec(1023), "0.999 KiB");
    assert_eq!(format_size_iec(4 * KIB), "4 KiB");
    assert_eq!(format_size_iec(1536), "1.5 KiB");
    assert_eq!(format_size_iec(2 * MIB), "2 MiB");
    assert_eq!(format_size_iec(GIB + GIB / 2), "1.5 GiB");
    assert_eq!(format_size_iec(12_944_671), "12.3 MiB");
    assert_eq!(format_size_iec(TIB), "1 TiB");
    assert_eq!(format_size_iec(u64::MAX), "16 EiB");
}

#[test]
fn general_format_matches_c() {
    assert_eq!(format_general3(1000.0), "1e+03");
    assert_eq!(format_general3(999.6), "1e+03");
    assert_eq!(format_general3(0.000_123_4), "0.000123");
    assert_eq!(format_general3(0.000_012_34), "1.23e-05");
    assert_eq!(format_general3(100.0), "100");
    assert_eq!(format_general3(10.25), "10.2"); // round-half-even on an exact tie
}

#[test]
fn size_serde() {
    assert_eq!(serde_json::to_string(&Size(5)).unwrap(), "5");
    assert_eq!(serde_json::from_str::<Size>("7").unwrap(), Size(7));
    // Plain serde_json sees a u64 newtype: size strings are not numbers.
    assert!(serde_json::from_str::<Size>("\"1k\"").is_err());
}
