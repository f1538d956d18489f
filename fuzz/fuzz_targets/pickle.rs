//! The allow-listed pickle VM (`v2l_io::pickle`): any bytes decode to a value
//! or a typed `ReadError`, never a panic, an unbounded allocation or a hang.
//! A decoded value is then read as the pickle-based tensor files are (a tree
//! of numpy arrays, as in the LPIPS `.ckpt` files).
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_io::pickle::{PickleTree, Unpickler};
use v2l_io::tensors::TensorSource;

fuzz_target!(|data: &[u8]| {
    let Ok((value, _used)) = Unpickler::new("fuzz.pkl").load_prefix(data) else {
        return;
    };
    let tree = PickleTree::new(&value, "fuzz.pkl");
    for key in tree.keys() {
        let _ = tree.shape(&key);
        let _ = tree.read_f32(&key);
    }
    if let Some(array) = value.as_ndarray() {
        let _ = array.to_f64();
        let _ = array.to_i64();
        let _ = array.to_strings();
    }
});
