//! Inputs that once crashed a reader (found by the fuzz targets in `fuzz/` or by the
//! allocation audit that came with them, docs/reliability.md, Fuzzing): each is committed
//! under `tests/fixtures/fuzz/` and must now end in a typed error.

use std::path::PathBuf;

use v2l_assets::readers::{npy, ReadError};

fn fuzz_fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "fuzz",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `.npy` of dtype `<U0` and shape `(10^12,)`: 128 bytes whose elements take no space, so the
/// data length bounded nothing and `to_strings` asked for 24 TB (allocation abort).
#[test]
fn npy_zero_size_dtype_with_huge_shape_is_limit_exceeded() {
    let data = fuzz_fixture("npy_u0_huge_shape.npy");
    let err = npy::from_bytes(&data, "npy_u0_huge_shape.npy").unwrap_err();
    assert!(
        matches!(
            &err,
            ReadError::LimitExceeded {
                value: 1_000_000_000_000,
                ..
            }
        ),
        "{err:?}"
    );
    // Within the limit the strings are still read (all empty).
    let at = data
        .windows(13)
        .position(|w| w == b"1000000000000")
        .unwrap();
    let mut small = data.clone();
    small[at..at + 13].copy_from_slice(b"         1000");
    let arr = npy::from_bytes(&small, "small").unwrap();
    assert_eq!(arr.to_strings().unwrap(), vec![String::new(); 1000]);
}
