//! ggml tensor element types: ids, names, block geometry.

use std::fmt;

/// The element type of a tensor in a GGUF file (ggml's `enum ggml_type`).
///
/// Every id ggml has ever assigned is listed, so that a file using a type this
/// crate cannot dequantise still opens, and the error names the type. Block
/// geometry ([`GgmlType::block_size`], [`GgmlType::type_size`]) follows ggml:
/// a tensor row of `n` elements occupies `n / block_size * type_size` bytes.
///
/// Ids 4 and 5 (`Q4_2`, `Q4_3`) and 31–33, 36–38 (the repacked
/// `Q4_0_4_4`…`IQ4_NL_8_8`) were removed from ggml; files using them are
/// rejected when opened, as ggml does.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum GgmlType {
    /// 32-bit IEEE float (id 0).
    F32,
    /// 16-bit IEEE float (id 1).
    F16,
    /// 4-bit, blocks of 32: f16 scale `d`, values `(q - 8)·d` (id 2).
    Q4_0,
    /// 4-bit, blocks of 32: f16 scale `d` and minimum `m`, values `q·d + m` (id 3).
    Q4_1,
    /// Removed from ggml (id 4).
    Q4_2,
    /// Removed from ggml (id 5).
    Q4_3,
    /// 5-bit, blocks of 32: f16 `d`, 32 high bits, 16 bytes of nibbles;
    /// values `(q - 16)·d` (id 6).
    Q5_0,
    /// 5-bit, blocks of 32: f16 `d` and `m`, 32 high bits, 16 bytes of
    /// nibbles; values `q·d + m` (id 7).
    Q5_1,
    /// 8-bit, blocks of 32: f16 scale `d`, 32 signed bytes, values `q·d` (id 8).
    Q8_0,
    /// 8-bit, blocks of 32: f16 `d`, f16 block sum, 32 signed bytes (id 9;
    /// an intermediate type of ggml's dot products, not found in model files).
    Q8_1,
    /// 2-bit k-quant, super-blocks of 256 (id 10).
    Q2_K,
    /// 3-bit k-quant, super-blocks of 256 (id 11).
    Q3_K,
    /// 4-bit k-quant, super-blocks of 256 (id 12).
    Q4_K,
    /// 5-bit k-quant, super-blocks of 256 (id 13).
    Q5_K,
    /// 6-bit k-quant, super-blocks of 256 (id 14).
    Q6_K,
    /// 8-bit k-quant, super-blocks of 256 (id 15).
    Q8_K,
    /// Importance-matrix 2-bit, extra-extra-small (id 16).
    IQ2_XXS,
    /// Importance-matrix 2-bit, extra-small (id 17).
    IQ2_XS,
    /// Importance-matrix 3-bit, extra-extra-small (id 18).
    IQ3_XXS,
    /// Importance-matrix 1-bit, small (id 19).
    IQ1_S,
    /// Importance-matrix 4-bit, non-linear, blocks of 32 (id 20).
    IQ4_NL,
    /// Importance-matrix 3-bit, small (id 21).
    IQ3_S,
    /// Importance-matrix 2-bit, small (id 22).
    IQ2_S,
    /// Importance-matrix 4-bit, extra-small (id 23).
    IQ4_XS,
    /// 8-bit signed integer (id 24).
    I8,
    /// 16-bit signed integer (id 25).
    I16,
    /// 32-bit signed integer (id 26).
    I32,
    /// 64-bit signed integer (id 27).
    I64,
    /// 64-bit IEEE float (id 28).
    F64,
    /// Importance-matrix 1-bit, medium (id 29).
    IQ1_M,
    /// bfloat16 (id 30).
    BF16,
    /// Removed from ggml (id 31).
    Q4_0_4_4,
    /// Removed from ggml (id 32).
    Q4_0_4_8,
    /// Removed from ggml (id 33).
    Q4_0_8_8,
    /// Ternary, 1.69 bits per weight (id 34).
    TQ1_0,
    /// Ternary, 2 bits per weight (id 35).
    TQ2_0,
    /// Removed from ggml (id 36).
    IQ4_NL_4_4,
    /// Removed from ggml (id 37).
    IQ4_NL_4_8,
    /// Removed from ggml (id 38).
    IQ4_NL_8_8,
    /// Microscaling FP4, blocks of 32 (id 39).
    MXFP4,
    /// NVIDIA FP4, blocks of 64 (id 40).
    NVFP4,
    /// 1-bit, blocks of 128 (id 41).
    Q1_0,
}

/// `(type, id, name, geometry)`; geometry is `(block_size, type_size)`, `None`
/// for types removed from ggml.
type Row = (GgmlType, u32, &'static str, Option<(u64, u64)>);

/// ggml's `QK_K`: elements per k-quant super-block.
const QK_K: u64 = 256;

const TABLE: [Row; 42] = {
    use GgmlType as T;
    [
        (T::F32, 0, "F32", Some((1, 4))),
        (T::F16, 1, "F16", Some((1, 2))),
        (T::Q4_0, 2, "Q4_0", Some((32, 2 + 16))),
        (T::Q4_1, 3, "Q4_1", Some((32, 2 + 2 + 16))),
        (T::Q4_2, 4, "Q4_2", None),
        (T::Q4_3, 5, "Q4_3", None),
        (T::Q5_0, 6, "Q5_0", Some((32, 2 + 4 + 16))),
        (T::Q5_1, 7, "Q5_1", Some((32, 2 + 2 + 4 + 16))),
        (T::Q8_0, 8, "Q8_0", Some((32, 2 + 32))),
        (T::Q8_1, 9, "Q8_1", Some((32, 2 + 2 + 32))),
        (
            T::Q2_K,
            10,
            "Q2_K",
            Some((QK_K, 2 + 2 + QK_K / 16 + QK_K / 4)),
        ),
        (
            T::Q3_K,
            11,
            "Q3_K",
            Some((QK_K, 2 + QK_K / 4 + QK_K / 8 + 12)),
        ),
        (T::Q4_K, 12, "Q4_K", Some((QK_K, 2 + 2 + QK_K / 2 + 12))),
        (
            T::Q5_K,
            13,
            "Q5_K",
            Some((QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12)),
        ),
        (
            T::Q6_K,
            14,
            "Q6_K",
            Some((QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16)),
        ),
        (T::Q8_K, 15, "Q8_K", Some((QK_K, 4 + QK_K + QK_K / 8))),
        (T::IQ2_XXS, 16, "IQ2_XXS", Some((QK_K, 2 + QK_K / 4))),
        (
            T::IQ2_XS,
            17,
            "IQ2_XS",
            Some((QK_K, 2 + QK_K / 4 + QK_K / 32)),
        ),
        (
            T::IQ3_XXS,
            18,
            "IQ3_XXS",
            Some((QK_K, 2 + QK_K / 4 + QK_K / 8)),
        ),
        (
            T::IQ1_S,
            19,
            "IQ1_S",
            Some((QK_K, 2 + QK_K / 8 + QK_K / 16)),
        ),
        (T::IQ4_NL, 20, "IQ4_NL", Some((32, 2 + 16))),
        (
            T::IQ3_S,
            21,
            "IQ3_S",
            Some((QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4)),
        ),
        (
            T::IQ2_S,
            22,
            "IQ2_S",
            Some((QK_K, 2 + QK_K / 4 + QK_K / 16)),
        ),
        (
            T::IQ4_XS,
            23,
            "IQ4_XS",
            Some((QK_K, 2 + 2 + QK_K / 2 + QK_K / 64)),
        ),
        (T::I8, 24, "I8", Some((1, 1))),
        (T::I16, 25, "I16", Some((1, 2))),
        (T::I32, 26, "I32", Some((1, 4))),
        (T::I64, 27, "I64", Some((1, 8))),
        (T::F64, 28, "F64", Some((1, 8))),
        (
            T::IQ1_M,
            29,
            "IQ1_M",
            Some((QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32)),
        ),
        (T::BF16, 30, "BF16", Some((1, 2))),
        (T::Q4_0_4_4, 31, "Q4_0_4_4", None),
        (T::Q4_0_4_8, 32, "Q4_0_4_8", None),
        (T::Q4_0_8_8, 33, "Q4_0_8_8", None),
        (T::TQ1_0, 34, "TQ1_0", Some((QK_K, 2 + 4 * 13))),
        (T::TQ2_0, 35, "TQ2_0", Some((QK_K, 2 + 64))),
        (T::IQ4_NL_4_4, 36, "IQ4_NL_4_4", None),
        (T::IQ4_NL_4_8, 37, "IQ4_NL_4_8", None),
        (T::IQ4_NL_8_8, 38, "IQ4_NL_8_8", None),
        (T::MXFP4, 39, "MXFP4", Some((32, 1 + 16))),
        (T::NVFP4, 40, "NVFP4", Some((64, 4 + 32))),
        (T::Q1_0, 41, "Q1_0", Some((128, 2 + 16))),
    ]
};

impl GgmlType {
    /// Every type this crate can dequantise to `f32`, in ggml id order.
    pub const DEQUANTIZABLE: &'static [GgmlType] = &[
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
        GgmlType::BF16,
    ];

    /// Every known type, in id order.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        TABLE.iter().map(|row| row.0)
    }

    fn row(self) -> &'static Row {
        // The table is in enum order, so the discriminant indexes it.
        &TABLE[self as usize]
    }

    /// The type with ggml id `id`, or `None` for an id ggml never assigned.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        let row = TABLE.get(usize::try_from(id).ok()?)?;
        Some(row.0)
    }

    /// ggml's numeric id (the value stored in a GGUF tensor info).
    pub fn id(self) -> u32 {
        self.row().1
    }

    /// ggml's name for the type (`"Q4_1"`, `"BF16"`, …).
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// The type named `name` (ggml spelling, case-sensitive).
    pub fn from_name(name: &str) -> Option<GgmlType> {
        TABLE.iter().find(|row| row.2 == name).map(|row| row.0)
    }

    /// Elements per block (1 for plain number types); `None` for removed types.
    pub fn block_size(self) -> Option<u64> {
        self.row().3.map(|g| g.0)
    }

    /// Bytes per block; `None` for removed types.
    pub fn type_size(self) -> Option<u64> {
        self.row().3.map(|g| g.1)
    }

    /// Whether ggml removed this type (files using it are rejected).
    pub fn is_removed(self) -> bool {
        self.row().3.is_none()
    }

    /// Whether the type is block-quantised (block size above 1).
    pub fn is_quantized(self) -> bool {
        self.block_size().is_some_and(|b| b > 1)
    }

    /// Whether [`crate::gguf::dequantize`] supports this type.
    pub fn can_dequantize(self) -> bool {
        Self::DEQUANTIZABLE.contains(&self)
    }

    /// Bytes taken by `n_elements` elements, or `None` when `n_elements` is
    /// not a whole number of blocks, the type was removed, or the size
    /// overflows `u64`.
    pub fn bytes_for(self, n_elements: u64) -> Option<u64> {
        let (block, size) = self.row().3?;
        if !n_elements.is_multiple_of(block) {
            return None;
        }
        (n_elements / block).checked_mul(size)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
