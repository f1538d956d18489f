//! Which host search path runs on this CPU, chosen at run time.

use crate::error::{QuantError, Result};

/// Environment variable that forces a [`SearchPath`] by name (`portable`,
/// `avx2`, `avx512`, `avx512-bf16`) instead of [`SearchPath::fastest`].
pub const PATH_ENV: &str = "V2L_QUANT_PATH";

/// A host implementation of the search, fixed when a codebook is prepared
/// ([`crate::PreparedCodebook::with_path`]).
///
/// Every path returns the exact f32 search. The three packed paths
/// (`Avx2`, `Avx512`, `Avx512Bf16`) compute each score as the same chain of
/// fused multiply-adds in width order, so they return identical indices and
/// scores; `Portable` sums in `matrixmultiply`'s order, so its scores can
/// differ in the last bits and its picks only at such near-ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchPath {
    /// Row-major f32 tiles through `matrixmultiply`'s SGEMM. Any CPU.
    Portable,
    /// Packed 16-codeword panels, a 6 × 16 AVX2 + FMA microkernel.
    Avx2,
    /// The same panels, a 12 × 32 AVX-512F microkernel.
    Avx512,
    /// Screened search: bf16 inner products (`vdpbf16ps`, AVX-512 BF16)
    /// with a proven error bound pick the candidates, which are rescored
    /// by the exact f32 chain. Results identical to [`SearchPath::Avx512`]
    /// by construction (see `docs/quantizer.md`). The codebook is held as
    /// the high and low 16 bits of each f32, the same memory as f32.
    Avx512Bf16,
}

impl SearchPath {
    /// Every path, portable first.
    pub const ALL: [SearchPath; 4] = [
        SearchPath::Portable,
        SearchPath::Avx2,
        SearchPath::Avx512,
        SearchPath::Avx512Bf16,
    ];

    /// The path's name, as [`PATH_ENV`] accepts it.
    pub fn name(self) -> &'static str {
        match self {
            SearchPath::Portable => "portable",
            SearchPath::Avx2 => "avx2",
            SearchPath::Avx512 => "avx512",
            SearchPath::Avx512Bf16 => "avx512-bf16",
        }
    }

    /// The path named `name` (see [`SearchPath::name`]).
    ///
    /// # Errors
    /// [`QuantError::UnknownPath`] for any other name.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| QuantError::UnknownPath {
                name: name.to_string(),
            })
    }

    /// Whether this CPU has the instructions the path needs.
    pub fn is_available(self) -> bool {
        match self {
            SearchPath::Portable => true,
            SearchPath::Avx2 => has("avx2") && has("fma"),
            SearchPath::Avx512 => has("avx512f") && has("avx2") && has("fma"),
            SearchPath::Avx512Bf16 => {
                has("avx512f") && has("avx512bf16") && has("avx2") && has("fma")
            }
        }
    }

    /// The paths this CPU can run, portable first.
    pub fn available() -> Vec<SearchPath> {
        Self::ALL.into_iter().filter(|p| p.is_available()).collect()
    }

    /// The fastest available path: AVX-512 BF16 screening, then AVX-512F,
    /// then AVX2 + FMA, then portable (the order measured in
    /// `docs/benchmarks.md`).
    pub fn fastest() -> SearchPath {
        Self::ALL
            .into_iter()
            .rev()
            .find(|p| p.is_available())
            .unwrap_or(SearchPath::Portable)
    }

    /// The path [`crate::PreparedCodebook::new`] uses: the one named by
    /// [`PATH_ENV`] when set, else [`SearchPath::fastest`].
    ///
    /// # Errors
    /// [`QuantError::UnknownPath`] for an unknown name in the variable,
    /// [`QuantError::PathUnavailable`] for a path this CPU cannot run.
    pub fn selected() -> Result<SearchPath> {
        match std::env::var(PATH_ENV) {
            Ok(name) if !name.is_empty() => {
                let path = Self::from_name(&name)?;
                path.check()?;
                Ok(path)
            }
            _ => Ok(Self::fastest()),
        }
    }

    /// `Ok` when [`SearchPath::is_available`].
    ///
    /// # Errors
    /// [`QuantError::PathUnavailable`] naming the path and the CPU's flags.
    pub fn check(self) -> Result<()> {
        if self.is_available() {
            Ok(())
        } else {
            Err(QuantError::PathUnavailable {
                path: self.name(),
                cpu: cpu_features(),
            })
        }
    }

    /// Whether the path searches packed panels (not row-major tiles).
    pub(crate) fn is_packed(self) -> bool {
        self != SearchPath::Portable
    }
}

impl std::fmt::Display for SearchPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn has(feature: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match feature {
            "avx2" => std::arch::is_x86_feature_detected!("avx2"),
            "fma" => std::arch::is_x86_feature_detected!("fma"),
            "f16c" => std::arch::is_x86_feature_detected!("f16c"),
            "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
            "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
            "avx512vnni" => std::arch::is_x86_feature_detected!("avx512vnni"),
            "avx512bf16" => std::arch::is_x86_feature_detected!("avx512bf16"),
            "avx512fp16" => std::arch::is_x86_feature_detected!("avx512fp16"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = feature;
        false
    }
}

/// The SIMD flags of this CPU that matter to the search, space-separated
/// (`"none"` when there are none), e.g. `"avx2 fma f16c avx512f avx512bw
/// avx512vnni avx512bf16"`; benchmarks and test logs print it.
pub fn cpu_features() -> String {
    let names = [
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vnni",
        "avx512bf16",
        "avx512fp16",
    ];
    let found: Vec<&str> = names.into_iter().filter(|f| has(f)).collect();
    if found.is_empty() {
        format!("none ({})", std::env::consts::ARCH)
    } else {
        found.join(" ")
    }
}
