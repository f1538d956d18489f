//! GGUF reader: fixtures written by gguf-py (`scripts/gen_gguf_fixtures.py`),
//! hand-built malformed files, and the real SmolLM2-135M Q4_1 file when cached.

use std::path::{Path, PathBuf};

use serde_json::Value;
use v2l_llm::gguf::{
    dequantize, GgmlType, GgufArray, GgufError, GgufFile, GgufValue, GgufValueType,
};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf")
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).unwrap()
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture_bytes(name)).unwrap()
}

fn usize_list(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn u64_list(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// f64 equality up to the last bit or two: serde_json's default float parser
/// is not guaranteed to round correctly.
fn close_f64(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 4.0 * f64::EPSILON * a.abs().max(b.abs())
}

// ----------------------------------------------------------------- metadata

/// Compares one scalar GGUF value with its JSON form (`want` is the bare value).
fn check_scalar(ctx: &str, want: &Value, got: &GgufValue) {
    match got {
        GgufValue::U8(v) => assert_eq!(want.as_u64(), Some(u64::from(*v)), "{ctx}"),
        GgufValue::U16(v) => assert_eq!(want.as_u64(), Some(u64::from(*v)), "{ctx}"),
        GgufValue::U32(v) => assert_eq!(want.as_u64(), Some(u64::from(*v)), "{ctx}"),
        GgufValue::U64(v) => assert_eq!(want.as_u64(), Some(*v), "{ctx}"),
        GgufValue::I8(v) => assert_eq!(want.as_i64(), Some(i64::from(*v)), "{ctx}"),
        GgufValue::I16(v) => assert_eq!(want.as_i64(), Some(i64::from(*v)), "{ctx}"),
        GgufValue::I32(v) => assert_eq!(want.as_i64(), Some(i64::from(*v)), "{ctx}"),
        GgufValue::I64(v) => assert_eq!(want.as_i64(), Some(*v), "{ctx}"),
        GgufValue::F32(v) => {
            let w = want.as_f64().unwrap() as f32;
            assert_eq!(w.to_bits(), v.to_bits(), "{ctx}: {w} vs {v}");
        }
        GgufValue::F64(v) => {
            let w = want.as_f64().unwrap();
            assert!(close_f64(w, *v), "{ctx}: {w} vs {v}");
        }
        GgufValue::Bool(v) => assert_eq!(want.as_bool(), Some(*v), "{ctx}"),
        GgufValue::String(v) => assert_eq!(want.as_str(), Some(v.as_str()), "{ctx}"),
        GgufValue::Array(a) => panic!("{ctx}: unexpected array {a:?}"),
    }
}

/// Compares an array with its JSON form `{"element_type", "value": [...]}`
/// (nested arrays are objects of the same form).
fn check_array(ctx: &str, want: &Value, got: &GgufArray) {
    assert_eq!(
        want["element_type"].as_str(),
        Some(got.element_type().name()),
        "{ctx}: element type"
    );
    let items = want["value"].as_array().unwrap();
    assert_eq!(items.len(), got.len(), "{ctx}: length");
    for (i, item) in items.iter().enumerate() {
        let ctx = format!("{ctx}[{i}]");
        match got.get(i).unwrap() {
            GgufValue::Array(inner) => {
                assert_eq!(item["type"].as_str(), Some("ARRAY"), "{ctx}");
                check_array(&ctx, item, &inner);
            }
            scalar => check_scalar(&ctx, item, &scalar),
        }
    }
}

fn check_value(key: &str, want: &Value, got: &GgufValue) {
    assert_eq!(
        want["type"].as_str(),
        Some(got.value_type().name()),
        "{key}: type"
    );
    match got {
        GgufValue::Array(a) => check_array(key, want, a),
        scalar => check_scalar(key, &want["value"], scalar),
    }
}

#[test]
fn values_fixture_every_metadata_type() {
    let doc = fixture_json("values.json");
    let f = GgufFile::open(fixture_dir().join("values.gguf")).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    assert_eq!(f.data_offset(), doc["data_offset"].as_u64().unwrap());
    assert_eq!(f.data_offset() % 32, 0);
    let want = doc["metadata"].as_object().unwrap();
    assert_eq!(f.metadata().len(), want.len());
    for (key, w) in want {
        let got = f.get(key).unwrap_or_else(|| panic!("missing {key}"));
        check_value(key, w, got);
    }
    // Every value type (and every array element type) is present.
    for id in 0..=12 {
        let ty = GgufValueType::from_id(id).unwrap();
        assert_eq!(ty.id(), id);
        assert!(
            f.metadata().values().any(|v| v.value_type() == ty),
            "no {ty} value"
        );
        assert!(
            f.metadata()
                .values()
                .any(|v| v.as_array().is_some_and(|a| a.element_type() == ty)),
            "no ARRAY[{ty}] value"
        );
    }
    assert_eq!(GgufValueType::from_id(13), None);

    // The tensor.
    let (shape, values) = f.read_f32("t").unwrap();
    assert_eq!(shape, [2, 3]);
    assert_eq!(values, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let t = f.tensor_info("t").unwrap();
    assert_eq!(t.gguf_dims(), [3, 2]);
    assert_eq!(t.shape(), [2, 3]);
    assert_eq!(t.file_offset(), f.data_offset() + t.offset());
}

#[test]
fn typed_getters() {
    let f = GgufFile::open(fixture_dir().join("values.gguf")).unwrap();
    assert_eq!(f.get_str("general.architecture").unwrap(), "test");
    assert_eq!(f.get_u8("test.u8").unwrap(), 200);
    assert_eq!(f.get_u32("test.u8").unwrap(), 200, "integers widen");
    assert_eq!(f.get_i64("test.u8").unwrap(), 200);
    assert_eq!(f.get_i8("test.i8").unwrap(), -100);
    assert_eq!(f.get_u16("test.u16").unwrap(), 60000);
    assert_eq!(f.get_i16("test.i16").unwrap(), -30000);
    assert_eq!(f.get_u32("test.u32").unwrap(), 4_000_000_000);
    assert_eq!(f.get_i32("test.i32").unwrap(), -2_000_000_000);
    assert_eq!(f.get_u64("test.u64").unwrap(), u64::MAX);
    assert_eq!(f.get_i64("test.i64").unwrap(), i64::MIN);
    assert_eq!(f.get_usize("test.u16").unwrap(), 60000);
    assert_eq!(f.get_f32("test.f32").unwrap(), 1.234_567_8_f32);
    assert_eq!(f.get_f64("test.f32").unwrap(), f64::from(1.234_567_8_f32));
    assert_eq!(f.get_f32("test.f64").unwrap(), std::f32::consts::E);
    assert!(f.get_bool("test.bool_true").unwrap());
    assert!(!f.get_bool("test.bool_false").unwrap());
    assert_eq!(f.get_str("test.string_empty").unwrap(), "");
    assert_eq!(
        f.get_str_array("arr.str").unwrap(),
        ["a", "", "ünïcödé", "Ġthe"]
    );
    assert_eq!(
        f.get_i32_array("arr.i32").unwrap(),
        [i32::MIN, i32::MAX, 3, 1]
    );
    assert_eq!(f.get_u32_array("arr.u32").unwrap(), [0, u32::MAX, 49152]);
    assert_eq!(f.get_f32_array("arr.f32").unwrap()[..2], [1.5f32, -2.25f32]);
    assert_eq!(f.get_array("arr.nested_i32").unwrap().len(), 3);

    // Errors name the key and the types.
    let e = f.get_i8("test.u8").unwrap_err();
    assert!(matches!(e, GgufError::OutOfRange { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "metadata key \"test.u8\": value 200 does not fit in i8"
    );
    let e = f.get_u64("test.i64").unwrap_err();
    assert!(matches!(e, GgufError::OutOfRange { .. }), "{e:?}");
    let e = f.get_str("test.u32").unwrap_err();
    assert_eq!(
        e.to_string(),
        "metadata key \"test.u32\" has type UINT32, expected STRING"
    );
    let e = f.get_str_array("arr.i32").unwrap_err();
    assert_eq!(
        e.to_string(),
        "metadata key \"arr.i32\" has type ARRAY[INT32], expected ARRAY[STRING]"
    );
    let e = f.get_u32("test.f32").unwrap_err();
    assert_eq!(
        e.to_string(),
        "metadata key \"test.f32\" has type FLOAT32, expected an integer type"
    );
    let e = f.get_f32("test.string").unwrap_err();
    assert!(matches!(e, GgufError::WrongType { .. }), "{e:?}");
    let e = f.get_bool("test.u8").unwrap_err();
    assert!(matches!(e, GgufError::WrongType { .. }), "{e:?}");
    let e = f.get_u32("llama.context_length").unwrap_err();
    assert_eq!(
        e.to_string(),
        "metadata key \"llama.context_length\" is missing"
    );
    assert!(!f.contains_key("llama.context_length"));
    let e = f.tensor_info("nope").unwrap_err();
    assert_eq!(e.to_string(), "no tensor named \"nope\" in the GGUF file");
    assert!(matches!(
        f.read_f32("nope"),
        Err(GgufError::TensorNotFound { .. })
    ));
}

// ------------------------------------------------------------------ tensors

/// The expected values (stored flat; shapes are checked against the JSON).
fn read_npy(rel: &str) -> Vec<f32> {
    let arr = v2l_assets::readers::npy::read(fixture_dir().join(rel)).unwrap();
    assert_eq!(arr.shape().len(), 1, "{rel}");
    arr.to_f32().unwrap()
}

fn assert_bits_eq(ctx: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{ctx}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{ctx}[{i}]: {g} vs {w}");
    }
}

fn check_tensors_fixture(f: &GgufFile) {
    let doc = fixture_json("tensors.json");
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.get_u32("general.alignment").unwrap(), 64);
    assert_eq!(f.data_offset(), doc["data_offset"].as_u64().unwrap());
    let want = doc["tensors"].as_array().unwrap();
    assert_eq!(f.tensors().len(), want.len());
    let mut dequantised = std::collections::BTreeSet::new();
    for (t, w) in f.tensors().iter().zip(want) {
        let name = w["name"].as_str().unwrap();
        assert_eq!(t.name(), name);
        assert_eq!(t.ggml_type().name(), w["type"].as_str().unwrap(), "{name}");
        assert_eq!(t.shape(), usize_list(&w["shape"]), "{name}");
        assert_eq!(t.gguf_dims(), u64_list(&w["gguf_dims"]), "{name}");
        assert_eq!(
            t.file_offset(),
            w["file_offset"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(t.n_bytes() as u64, w["n_bytes"].as_u64().unwrap(), "{name}");
        assert_eq!(
            t.n_elements(),
            t.shape().iter().product::<usize>(),
            "{name}"
        );
        assert_eq!(t.offset() % 64, 0, "{name}");
        assert_eq!(f.read_raw(name).unwrap().len(), t.n_bytes(), "{name}");
        match w["expected"].as_str() {
            Some(rel) => {
                let (shape, values) = f.read_f32(name).unwrap();
                let want_values = read_npy(rel);
                assert_eq!(shape, t.shape(), "{name}");
                assert_bits_eq(name, &values, &want_values);
                dequantised.insert(t.ggml_type());
            }
            None => {
                let e = f.read_f32(name).unwrap_err();
                assert!(matches!(e, GgufError::UnsupportedType { .. }), "{e:?}");
                assert_eq!(
                    e.to_string(),
                    format!(
                        "tensor {name} has type {}, which is not supported; supported: \
                         F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, \
                         Q6_K, I8, I16, I32, I64, F64, BF16",
                        t.ggml_type()
                    )
                );
            }
        }
    }
    // Every dequantisable type was checked against gguf-py.
    let all: std::collections::BTreeSet<_> = GgmlType::DEQUANTIZABLE.iter().copied().collect();
    assert_eq!(dequantised, all);
}

#[test]
fn tensors_fixture_matches_gguf_py_from_file() {
    let f = GgufFile::open(fixture_dir().join("tensors.gguf")).unwrap();
    check_tensors_fixture(&f);
}

#[test]
fn tensors_fixture_matches_gguf_py_from_memory() {
    let f = GgufFile::from_bytes(fixture_bytes("tensors.gguf")).unwrap();
    assert_eq!(f.path(), None);
    check_tensors_fixture(&f);
}

#[test]
fn ggml_type_table() {
    for id in 0..=41u32 {
        let t = GgmlType::from_id(id).unwrap();
        assert_eq!(t.id(), id);
        assert_eq!(GgmlType::from_name(t.name()), Some(t));
        assert_eq!(t.to_string(), t.name());
    }
    assert_eq!(GgmlType::from_id(42), None);
    assert_eq!(GgmlType::all().count(), 42);
    for removed in [4, 5, 31, 32, 33, 36, 37, 38] {
        assert!(
            GgmlType::from_id(removed).unwrap().is_removed(),
            "{removed}"
        );
    }
    // Block geometry agrees with gguf-py's table, except Q8_1, which gguf-py
    // still lists with f32 scales (40 bytes); ggml's block_q8_1 holds two
    // f16 (36 bytes).
    let doc = fixture_json("tensors.json");
    let sizes = doc["quant_sizes"].as_object().unwrap();
    for (name, geom) in sizes {
        let t = GgmlType::from_name(name).unwrap_or_else(|| panic!("unknown type {name}"));
        let geom = u64_list(geom);
        let ours = [t.block_size().unwrap(), t.type_size().unwrap()];
        if t == GgmlType::Q8_1 {
            assert_eq!(ours, [32, 36]);
            continue;
        }
        assert_eq!(ours.as_slice(), geom.as_slice(), "{name}");
    }
    assert!(GgmlType::Q4_1.is_quantized());
    assert!(!GgmlType::BF16.is_quantized());
    assert_eq!(GgmlType::Q4_1.bytes_for(64), Some(40));
    assert_eq!(GgmlType::Q4_1.bytes_for(48), None);
}

// ------------------------------------------------------- dequantise by hand

fn f16_bytes(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_le_bytes()
}

#[test]
fn q4_nibble_order() {
    // Byte j holds element j in its low nibble and element j + 16 in its
    // high nibble.
    let mut block = f16_bytes(1.0).to_vec();
    block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let mut out = [0f32; 32];
    dequantize(GgmlType::Q4_0, &block, &mut out).unwrap();
    for j in 0..16 {
        assert_eq!(out[j], j as f32 - 8.0);
        assert_eq!(out[16 + j], 7.0 - j as f32);
    }

    let mut block = f16_bytes(0.5).to_vec();
    block.extend(f16_bytes(-1.0));
    block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    dequantize(GgmlType::Q4_1, &block, &mut out).unwrap();
    for j in 0..16 {
        assert_eq!(out[j], 0.5 * j as f32 - 1.0);
        assert_eq!(out[16 + j], 0.5 * (15 - j) as f32 - 1.0);
    }

    // Q5_0: bit j of qh is bit 4 of element j.
    let mut block = f16_bytes(1.0).to_vec();
    block.extend(0x8000_0001u32.to_le_bytes());
    block.extend([0u8; 16]);
    dequantize(GgmlType::Q5_0, &block, &mut out).unwrap();
    assert_eq!(out[0], 0.0);
    assert_eq!(out[1], -16.0);
    assert_eq!(out[31], 0.0);
}

#[test]
fn dequantize_checks_sizes_and_types() {
    let mut out = [0f32; 32];
    let e = dequantize(GgmlType::Q4_0, &[0u8; 17], &mut out).unwrap_err();
    assert!(matches!(e, GgufError::SizeMismatch { .. }), "{e:?}");
    let e = dequantize(GgmlType::Q4_0, &[0u8; 18], &mut out[..31]).unwrap_err();
    assert!(matches!(e, GgufError::SizeMismatch { .. }), "{e:?}");
    let e = dequantize(GgmlType::IQ2_XXS, &[0u8; 66], &mut [0f32; 256]).unwrap_err();
    assert!(e
        .to_string()
        .starts_with("the buffer has type IQ2_XXS, which is not supported"));
    let e = dequantize(GgmlType::Q4_2, &[], &mut []).unwrap_err();
    assert!(matches!(e, GgufError::UnsupportedType { .. }), "{e:?}");
    dequantize(GgmlType::Q8_0, &[], &mut []).unwrap();
}

/// Tiny deterministic generator for test data.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn parallel_dequantisation_matches_block_by_block() {
    // Big enough for the rayon path; compared with many small (serial) calls.
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for (ty, n_blocks) in [
        (GgmlType::Q4_1, 4099usize),
        (GgmlType::Q8_0, 2050),
        (GgmlType::Q6_K, 300),
        (GgmlType::F16, 70_001),
    ] {
        let bs = ty.block_size().unwrap() as usize;
        let ts = ty.type_size().unwrap() as usize;
        let mut data: Vec<u8> = (0..n_blocks * ts).map(|_| rng.next() as u8).collect();
        if ty != GgmlType::F16 {
            // Finite scales; for these types every f16 field is at the start
            // or end of the block.
            for block in data.chunks_exact_mut(ts) {
                let s = f16_bytes((rng.below(2000) as f32 - 1000.0) * 1e-5);
                match ty {
                    GgmlType::Q6_K => block[ts - 2..].copy_from_slice(&s),
                    _ => {
                        block[..2].copy_from_slice(&s);
                        if ty == GgmlType::Q4_1 {
                            block[2..4].copy_from_slice(&s);
                        }
                    }
                }
            }
        }
        let mut whole = vec![0f32; n_blocks * bs];
        dequantize(ty, &data, &mut whole).unwrap();
        let mut pieces = vec![0f32; n_blocks * bs];
        for (d, o) in data.chunks(ts * 7).zip(pieces.chunks_mut(bs * 7)) {
            dequantize(ty, d, o).unwrap();
        }
        let same = whole
            .iter()
            .zip(&pieces)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{ty}");
    }
}

// ----------------------------------------------------- malformed headers

#[test]
fn rejects_bad_magic_versions_and_big_endian() {
    let e = GgufFile::from_bytes(Vec::new()).unwrap_err();
    assert!(matches!(e, GgufError::Truncated { .. }), "{e:?}");
    let e = GgufFile::from_bytes(b"GGU".to_vec()).unwrap_err();
    assert!(matches!(e, GgufError::Truncated { .. }), "{e:?}");

    let mut bytes = fixture_bytes("values.gguf");
    bytes[3] = b'G';
    let e = GgufFile::from_bytes(bytes).unwrap_err();
    assert!(
        matches!(e, GgufError::BadMagic { found } if &found == b"GGUG"),
        "{e:?}"
    );

    let e = GgufFile::open(fixture_dir().join("big_endian.gguf")).unwrap_err();
    assert!(matches!(e, GgufError::BigEndian { version: 3 }), "{e:?}");
    assert!(e.to_string().contains("big-endian"), "{e}");

    let with_version = |v: u32| {
        let mut bytes = fixture_bytes("values.gguf");
        bytes[4..8].copy_from_slice(&v.to_le_bytes());
        GgufFile::from_bytes(bytes)
    };
    // Version 2 has the same layout as 3.
    let f = with_version(2).unwrap();
    assert_eq!(f.version(), 2);
    assert_eq!(f.read_f32("t").unwrap().1.len(), 6);
    for v in [0, 1, 4, 0xFFFF_FFFF] {
        let e = with_version(v).unwrap_err();
        assert!(
            matches!(e, GgufError::UnsupportedVersion { version } if version == v),
            "{e:?}"
        );
    }
    let e = with_version(0x0200_0000).unwrap_err();
    assert!(matches!(e, GgufError::BigEndian { version: 2 }), "{e:?}");
}

#[test]
fn every_truncation_is_an_error() {
    for name in ["values.gguf", "tensors.gguf"] {
        let bytes = fixture_bytes(name);
        let full = GgufFile::from_bytes(bytes.clone()).unwrap();
        // The end of the last tensor's data (the rest is padding).
        let data_end = full
            .tensors()
            .iter()
            .map(|t| t.file_offset() + t.n_bytes() as u64)
            .max()
            .unwrap() as usize;
        for len in 0..data_end {
            let r = GgufFile::from_bytes(bytes[..len].to_vec());
            let e = r.expect_err(&format!("{name} cut to {len} bytes opened"));
            if len as u64 >= full.data_offset() {
                // The index is intact: the error names a tensor.
                assert!(
                    matches!(&e, GgufError::Invalid { context, reason }
                        if context.starts_with("tensor ") && reason.contains("runs past the end")),
                    "{name} cut to {len}: {e}"
                );
            }
        }
        // Cutting into the final padding is harmless.
        let f = GgufFile::from_bytes(bytes[..data_end].to_vec()).unwrap();
        assert_eq!(f.tensors().len(), full.tensors().len());
    }
    // A truncated header names what it was reading; a very short one is
    // caught by the count check.
    let bytes = fixture_bytes("values.gguf");
    let e = GgufFile::from_bytes(bytes[..600].to_vec()).unwrap_err();
    assert!(
        matches!(&e, GgufError::Truncated { context, .. } if context.contains("metadata")),
        "{e}"
    );
    let e = GgufFile::from_bytes(bytes[..30].to_vec()).unwrap_err();
    assert!(
        invalid_reason(&e).1.contains("metadata entries cannot fit"),
        "{e}"
    );
}

#[test]
fn random_corruption_never_panics() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    for name in ["values.gguf", "tensors.gguf"] {
        let original = fixture_bytes(name);
        let header_len = GgufFile::from_bytes(original.clone())
            .unwrap()
            .data_offset() as usize;
        for round in 0..1500 {
            let mut bytes = original.clone();
            let flips = 1 + rng.below(4);
            for _ in 0..flips {
                let at = rng.below(header_len as u64) as usize;
                bytes[at] = match round % 3 {
                    0 => bytes[at] ^ (1 << rng.below(8)),
                    1 => rng.next() as u8,
                    _ => 0xFF,
                };
            }
            if let Ok(f) = GgufFile::from_bytes(bytes) {
                for t in f.tensors() {
                    let _ = f.read_f32(t.name());
                }
            }
        }
    }
}

/// Builds GGUF files byte by byte, for malformed cases gguf-py cannot write.
struct Builder {
    version: u32,
    kvs: Vec<u8>,
    n_kv: u64,
    infos: Vec<u8>,
    n_tensors: u64,
    alignment: usize,
    data: Vec<u8>,
}

const T_U8: u32 = 0;
const T_U32: u32 = 4;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;

fn gguf_str(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

impl Builder {
    fn new() -> Builder {
        Builder {
            version: 3,
            kvs: Vec::new(),
            n_kv: 0,
            infos: Vec::new(),
            n_tensors: 0,
            alignment: 32,
            data: Vec::new(),
        }
    }

    fn kv_raw(mut self, key: &[u8], ty: u32, payload: &[u8]) -> Builder {
        self.kvs.extend(gguf_str(key));
        self.kvs.extend(ty.to_le_bytes());
        self.kvs.extend_from_slice(payload);
        self.n_kv += 1;
        self
    }

    fn kv_u32(self, key: &str, v: u32) -> Builder {
        self.kv_raw(key.as_bytes(), T_U32, &v.to_le_bytes())
    }

    fn tensor(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Builder {
        self.infos.extend(gguf_str(name.as_bytes()));
        self.infos.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self.n_tensors += 1;
        self
    }

    fn data(mut self, data: &[u8]) -> Builder {
        self.data = data.to_vec();
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend(self.n_tensors.to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kvs);
        out.extend(&self.infos);
        // Pad to the data section only when there is data: metadata-only
        // cases must end exactly where their last value does.
        while self.n_tensors > 0 && !out.len().is_multiple_of(self.alignment) {
            out.push(0);
        }
        out.extend(&self.data);
        out
    }

    fn open(&self) -> Result<GgufFile, GgufError> {
        GgufFile::from_bytes(self.bytes())
    }
}

fn invalid_reason(e: &GgufError) -> (&str, &str) {
    match e {
        GgufError::Invalid { context, reason } => (context, reason),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn hand_built_valid_file() {
    let mut data = Vec::new();
    for x in [1.0f32, -2.0, 3.5, 0.25] {
        data.extend(x.to_le_bytes());
    }
    data.resize(64, 0);
    data.extend(f16_bytes(2.0));
    data.extend([0x21u8; 16]); // every element (1 - 8)·2 or (2 - 8)·2
    let empty_array = {
        let mut p = T_STRING.to_le_bytes().to_vec();
        p.extend(0u64.to_le_bytes());
        p
    };
    let f = Builder::new()
        .kv_raw(b"empty", T_ARRAY, &empty_array)
        .kv_raw(b"flag", T_BOOL, &[1])
        .tensor("w", &[2, 2], 0, 0)
        .tensor("q", &[32], 2, 64)
        .data(&data)
        .open()
        .unwrap();
    assert_eq!(f.get_str_array("empty").unwrap().len(), 0);
    assert!(f.get_bool("flag").unwrap());
    assert_eq!(
        f.read_f32("w").unwrap(),
        (vec![2, 2], vec![1.0, -2.0, 3.5, 0.25])
    );
    let (shape, q) = f.read_f32("q").unwrap();
    assert_eq!(shape, [32]);
    assert!(q[..16].iter().all(|&x| x == -14.0));
    assert!(q[16..].iter().all(|&x| x == -12.0));

    // A custom alignment moves the data section.
    let mut b = Builder::new()
        .kv_u32("general.alignment", 256)
        .tensor("w", &[2], 0, 0);
    b.alignment = 256;
    let f = b.data(&[0, 0, 128, 63, 0, 0, 0, 64]).open().unwrap();
    assert_eq!(f.alignment(), 256);
    assert_eq!(f.data_offset(), 256);
    assert_eq!(f.read_f32("w").unwrap().1, [1.0, 2.0]);

    // A zero-size tensor in a file that ends before its data section.
    let mut bytes = Builder::new().tensor("z", &[0, 3], 0, 0).bytes();
    bytes.truncate(24 + (8 + 1) + 4 + 2 * 8 + 4 + 8); // header + one tensor info
    let f = GgufFile::from_bytes(bytes).unwrap();
    assert!(f.data_offset() > f.file_len());
    assert_eq!(f.read_f32("z").unwrap(), (vec![3, 0], vec![]));

    // No tensors, no padding: fine.
    let bytes = Builder::new().kv_u32("x", 1).bytes();
    assert_eq!(bytes.len(), 4 + 4 + 8 + 8 + 8 + 1 + 4 + 4);
    let f = GgufFile::from_bytes(bytes).unwrap();
    assert!(f.tensors().is_empty());
    assert_eq!(f.get_u32("x").unwrap(), 1);
}

#[test]
fn malformed_tensor_infos() {
    let data = [0u8; 64];
    let t = |name: &str, dims: &[u64], ty: u32, offset: u64| {
        Builder::new()
            .tensor(name, dims, ty, offset)
            .data(&data)
            .open()
            .unwrap_err()
    };

    let e = t("w", &[32], 0, 0); // 128 bytes, 64 present
    let (ctx, reason) = invalid_reason(&e);
    assert_eq!(ctx, "tensor \"w\"");
    assert!(reason.contains("runs past the end"), "{reason}");

    let e = t("w", &[4], 0, 1 << 40);
    assert!(invalid_reason(&e).1.contains("runs past the end"), "{e}");
    let e = t("w", &[4], 0, u64::MAX / 32 * 32); // offset + size overflows
    assert!(invalid_reason(&e).1.contains("runs past the end"), "{e}");
    let e = t("w", &[4], 0, 4);
    assert!(
        invalid_reason(&e)
            .1
            .contains("not a multiple of the alignment 32"),
        "{e}"
    );

    let e = t("w", &[4], 99, 0);
    assert!(
        matches!(&e, GgufError::UnknownTensorType { tensor, type_id: 99 } if tensor == "w"),
        "{e:?}"
    );
    let e = t("w", &[32], 31, 0);
    assert!(
        invalid_reason(&e)
            .1
            .contains("Q4_0_4_4 (id 31) was removed"),
        "{e}"
    );
    let e = t("w", &[1, 1, 1, 1, 1], 0, 0);
    assert!(invalid_reason(&e).1.contains("5 dimensions"), "{e}");
    let e = t("w", &[u64::MAX, 1], 0, 0);
    assert!(invalid_reason(&e).1.contains("out of range"), "{e}");
    let e = t("w", &[1 << 40, 1 << 40], 0, 0);
    assert!(invalid_reason(&e).1.contains("overflows"), "{e}");
    let e = t("blk.0.ffn_up.weight", &[16, 2], 2, 0);
    let (ctx, reason) = invalid_reason(&e);
    assert_eq!(ctx, "tensor \"blk.0.ffn_up.weight\"");
    assert!(
        reason.contains("not a multiple of the Q4_0 block size 32"),
        "{reason}"
    );

    // Overlapping data.
    let e = Builder::new()
        .tensor("a", &[8], 0, 0)
        .tensor("b", &[8], 0, 0)
        .data(&data)
        .open()
        .unwrap_err();
    assert!(
        invalid_reason(&e).1.contains("overlaps tensor \"a\""),
        "{e}"
    );

    // Duplicate names.
    let e = Builder::new()
        .tensor("a", &[8], 0, 0)
        .tensor("a", &[8], 0, 32)
        .data(&data)
        .open()
        .unwrap_err();
    assert!(
        matches!(&e, GgufError::DuplicateTensor { tensor } if tensor == "a"),
        "{e:?}"
    );

    // Absurd tensor count.
    let mut b = Builder::new();
    b.n_tensors = u64::MAX;
    let e = b.open().unwrap_err();
    assert!(
        invalid_reason(&e).1.contains("tensor infos cannot fit"),
        "{e}"
    );
}

#[test]
fn unsupported_tensor_type_is_named() {
    // IQ2_XXS: 256 elements in one 66-byte block.
    let f = Builder::new()
        .tensor("blk.0.attn_q.weight", &[256], 16, 0)
        .data(&[0u8; 66])
        .open()
        .unwrap();
    let t = f.tensor_info("blk.0.attn_q.weight").unwrap();
    assert_eq!(t.ggml_type(), GgmlType::IQ2_XXS);
    assert_eq!(t.n_bytes(), 66);
    assert_eq!(f.read_raw("blk.0.attn_q.weight").unwrap().len(), 66);
    let e = f.read_f32("blk.0.attn_q.weight").unwrap_err();
    assert_eq!(
        e.to_string(),
        "tensor blk.0.attn_q.weight has type IQ2_XXS, which is not supported; supported: \
         F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, I8, I16, I32, \
         I64, F64, BF16"
    );
}

#[test]
fn malformed_metadata() {
    let kv = |key: &[u8], ty: u32, payload: &[u8]| {
        Builder::new().kv_raw(key, ty, payload).open().unwrap_err()
    };

    let e = kv(b"k", 13, &[0; 8]);
    assert!(
        matches!(&e, GgufError::UnknownValueType { context, type_id: 13 } if context == "metadata key \"k\""),
        "{e:?}"
    );
    let e = kv(b"k", T_BOOL, &[2]);
    assert!(invalid_reason(&e).1.contains("bool byte is 2"), "{e}");
    let e = kv(b"\xff\xfe", T_U8, &[0]);
    assert!(
        matches!(&e, GgufError::InvalidUtf8 { context, .. } if context == "key of metadata entry 0"),
        "{e:?}"
    );
    let e = kv(b"k", T_STRING, &gguf_str(b"ok\xc3"));
    assert!(
        matches!(&e, GgufError::InvalidUtf8 { context, .. } if context == "metadata key \"k\""),
        "{e:?}"
    );
    // A string claiming more bytes than the file holds.
    let e = kv(b"k", T_STRING, &u64::MAX.to_le_bytes());
    assert!(
        matches!(&e, GgufError::Truncated { context, .. } if context.starts_with("metadata key \"k\"")),
        "{e:?}"
    );
    // An array claiming more elements than the file can hold.
    let mut payload = T_U32.to_le_bytes().to_vec();
    payload.extend((1u64 << 40).to_le_bytes());
    let e = kv(b"k", T_ARRAY, &payload);
    assert!(invalid_reason(&e).1.contains("cannot fit"), "{e}");
    // Nesting deeper than the limit.
    let mut payload = Vec::new();
    for _ in 0..20 {
        payload.extend(T_ARRAY.to_le_bytes());
        payload.extend(1u64.to_le_bytes());
    }
    payload.extend(T_U8.to_le_bytes());
    payload.extend(0u64.to_le_bytes());
    let e = kv(b"k", T_ARRAY, &payload);
    assert!(invalid_reason(&e).1.contains("nested"), "{e}");
    // An array element that is truncated names its index.
    let mut payload = T_STRING.to_le_bytes().to_vec();
    payload.extend(2u64.to_le_bytes());
    payload.extend(gguf_str(b"a"));
    payload.extend(5u64.to_le_bytes());
    payload.extend(b"bc");
    let e = kv(b"tokens", T_ARRAY, &payload);
    assert!(
        matches!(&e, GgufError::Truncated { context, .. } if context.starts_with("metadata key \"tokens\"[1]")),
        "{e:?}"
    );

    // Duplicate keys.
    let e = Builder::new()
        .kv_u32("a", 1)
        .kv_u32("a", 2)
        .open()
        .unwrap_err();
    assert!(
        matches!(&e, GgufError::DuplicateKey { key } if key == "a"),
        "{e:?}"
    );

    // Bad alignments.
    for a in [0u32, 48] {
        let e = Builder::new()
            .kv_u32("general.alignment", a)
            .open()
            .unwrap_err();
        assert!(invalid_reason(&e).1.contains("not a power of two"), "{e}");
    }
    let e = Builder::new()
        .kv_raw(b"general.alignment", T_U64, &64u64.to_le_bytes())
        .open()
        .unwrap_err();
    assert!(
        matches!(
            e,
            GgufError::WrongType {
                expected: "UINT32",
                ..
            }
        ),
        "{e:?}"
    );

    // Absurd metadata count.
    let mut b = Builder::new();
    b.n_kv = 1 << 60;
    let e = b.open().unwrap_err();
    assert!(
        invalid_reason(&e).1.contains("metadata entries cannot fit"),
        "{e}"
    );
}

#[test]
fn file_truncated_after_open_is_an_io_error() {
    let dir = std::env::temp_dir().join(format!("v2l-gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tensors.gguf");
    std::fs::write(&path, fixture_bytes("tensors.gguf")).unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.path(), Some(path.as_path()));
    let cut = f.tensor_info("q6_k_bits").unwrap().file_offset();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let e = f.read_f32("q6_k_bits").unwrap_err();
    assert!(matches!(e, GgufError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("tensor \"q6_k_bits\""), "{e}");
    // Earlier tensors still read.
    assert!(f.read_f32("q8_0").is_ok());
    drop(f);
    std::fs::remove_dir_all(&dir).unwrap();

    let e = GgufFile::open(dir.join("missing.gguf")).unwrap_err();
    assert!(matches!(e, GgufError::Io { .. }), "{e:?}");
    assert!(e.to_string().starts_with("opening "), "{e}");
}

// ------------------------------------------------------------ real SmolLM2

#[test]
fn smollm2_q4_1_matches_gguf_py() {
    let Some(path) =
        v2l_assets::fetch::test_asset("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf").unwrap()
    else {
        return;
    };
    let doc = fixture_json("smollm2_q4_1.json");
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.file_len(), doc["size"].as_u64().unwrap());
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), doc["alignment"].as_u64().unwrap());
    assert_eq!(f.data_offset(), doc["data_offset"].as_u64().unwrap());

    // Metadata: every scalar, and samples of every array.
    let scalars = doc["metadata"].as_object().unwrap();
    let arrays = doc["arrays"].as_object().unwrap();
    assert_eq!(f.metadata().len(), scalars.len() + arrays.len());
    for (key, want) in scalars {
        check_value(key, want, f.get(key).unwrap());
    }
    for (key, want) in arrays {
        let a = f.get_array(key).unwrap();
        assert_eq!(
            want["element_type"].as_str(),
            Some(a.element_type().name()),
            "{key}"
        );
        assert_eq!(want["len"].as_u64(), Some(a.len() as u64), "{key}");
        for (i, v) in want["samples"].as_object().unwrap() {
            let i: usize = i.parse().unwrap();
            check_scalar(&format!("{key}[{i}]"), v, &a.get(i).unwrap());
        }
    }
    let token_types = f.get_i32_array("tokenizer.ggml.token_type").unwrap();
    for (ty, count) in arrays["tokenizer.ggml.token_type"]["histogram"]
        .as_object()
        .unwrap()
    {
        let ty: i32 = ty.parse().unwrap();
        let n = token_types.iter().filter(|&&t| t == ty).count();
        assert_eq!(Some(n as u64), count.as_u64(), "token type {ty}");
    }

    // The values the LLM loader will use, through the typed getters.
    assert_eq!(f.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(f.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(f.get_u32("llama.context_length").unwrap(), 8192);
    assert_eq!(f.get_u32("llama.embedding_length").unwrap(), 576);
    assert_eq!(f.get_u32("llama.feed_forward_length").unwrap(), 1536);
    assert_eq!(f.get_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(f.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(f.get_u32("llama.rope.dimension_count").unwrap(), 64);
    assert_eq!(f.get_f32("llama.rope.freq_base").unwrap(), 100_000.0);
    assert_eq!(
        f.get_f32("llama.attention.layer_norm_rms_epsilon").unwrap(),
        1e-5
    );
    assert_eq!(f.get_u32("llama.vocab_size").unwrap(), 49152);
    assert_eq!(f.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    assert_eq!(f.get_str("tokenizer.ggml.pre").unwrap(), "smollm");
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens").unwrap().len(),
        49152
    );
    assert_eq!(f.get_str_array("tokenizer.ggml.merges").unwrap()[0], "Ġ t");
    assert_eq!(f.get_u32("tokenizer.ggml.bos_token_id").unwrap(), 1);
    assert_eq!(f.get_u32("tokenizer.ggml.eos_token_id").unwrap(), 2);
    assert!(!f.get_bool("tokenizer.ggml.add_bos_token").unwrap());

    // Tensors: index, and checksums of the dequantised values.
    let want = doc["tensors"].as_array().unwrap();
    assert_eq!(f.tensors().len(), want.len());
    let mut counts = std::collections::BTreeMap::new();
    for (t, w) in f.tensors().iter().zip(want) {
        let name = w["name"].as_str().unwrap();
        assert_eq!(t.name(), name);
        assert_eq!(t.ggml_type().name(), w["type"].as_str().unwrap(), "{name}");
        assert_eq!(t.shape(), usize_list(&w["shape"]), "{name}");
        assert_eq!(t.gguf_dims(), u64_list(&w["gguf_dims"]), "{name}");
        assert_eq!(
            t.file_offset(),
            w["file_offset"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(t.n_bytes() as u64, w["n_bytes"].as_u64().unwrap(), "{name}");
        *counts.entry(t.ggml_type()).or_insert(0) += 1;

        let (shape, values) = f.read_f32(name).unwrap();
        assert_eq!(shape, t.shape(), "{name}");
        let first: Vec<f32> = w["first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_bits_eq(name, &values[..first.len()], &first);
        let (mut sum, mut sum_abs, mut sum_sq) = (0f64, 0f64, 0f64);
        for &x in &values {
            let x = f64::from(x);
            sum += x;
            sum_abs += x.abs();
            sum_sq += x * x;
        }
        let want_abs = w["sum_abs"].as_f64().unwrap();
        let tol = 1e-6 * want_abs.max(1e-30);
        assert!(
            (sum - w["sum"].as_f64().unwrap()).abs() <= tol,
            "{name}: sum {sum}"
        );
        assert!(
            (sum_abs - want_abs).abs() <= tol,
            "{name}: sum_abs {sum_abs}"
        );
        let want_sq = w["sum_sq"].as_f64().unwrap();
        assert!(
            (sum_sq - want_sq).abs() <= 1e-6 * want_sq.max(1e-30),
            "{name}: sum_sq {sum_sq}"
        );
    }
    assert_eq!(counts.get(&GgmlType::Q4_1), Some(&210));
    assert_eq!(counts.get(&GgmlType::F32), Some(&61));
    assert_eq!(counts.get(&GgmlType::Q8_0), Some(&1));
    assert_eq!(
        f.tensor_info("token_embd.weight").unwrap().shape(),
        [49152, 576]
    );
}
