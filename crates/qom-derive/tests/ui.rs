//! Mistakes in derive attributes are compile errors pointing at the
//! attribute; the typed hooks refuse what could deadlock or take the wrong
//! state. Each file under `ui/` is one mistake, with the compiler's answer
//! beside it (regenerate with `TRYBUILD=overwrite` and read the diff).

#[test]
fn compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
