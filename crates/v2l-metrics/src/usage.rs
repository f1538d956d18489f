//! Codebook usage: how many of the codebook's entries a set of token ids
//! uses, and the perplexity `exp(H(p))` of the id histogram (natural log).

use crate::error::{MetricsError, Result};

/// Usage statistics of token ids over a codebook.
#[derive(Debug, Clone, PartialEq)]
pub struct CodebookUsage {
    /// Codebook size.
    pub size: usize,
    /// Ids counted.
    pub total: usize,
    /// Distinct ids used.
    pub used: usize,
    /// `used / size`.
    pub fraction: f64,
    /// `exp(−Σ p log p)` of the id histogram (1 … `used`).
    pub perplexity: f64,
}

/// Counts `ids` against a codebook of `size` entries.
///
/// # Errors
/// [`MetricsError::Undefined`] for no ids or `size == 0`;
/// [`MetricsError::OutOfRange`] naming the first id `≥ size`.
pub fn codebook_usage(ids: impl IntoIterator<Item = u32>, size: usize) -> Result<CodebookUsage> {
    if size == 0 {
        return Err(MetricsError::Undefined("codebook of size 0".into()));
    }
    let mut counts = vec![0u64; size];
    let mut total = 0usize;
    for (index, id) in ids.into_iter().enumerate() {
        let slot = counts
            .get_mut(id as usize)
            .ok_or(MetricsError::OutOfRange {
                what: "token ids",
                index,
                value: f64::from(id),
            })?;
        *slot += 1;
        total += 1;
    }
    if total == 0 {
        return Err(MetricsError::Undefined("usage of no token ids".into()));
    }
    let used = counts.iter().filter(|&&c| c > 0).count();
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.ln()
        })
        .sum();
    Ok(CodebookUsage {
        size,
        total,
        used,
        fraction: used as f64 / size as f64,
        perplexity: entropy.exp(),
    })
}
