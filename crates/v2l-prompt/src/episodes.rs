//! Few-shot episodes: the official CSV format, class names, and an episode
//! generator for any labelled image set.
//!
//! **CSV format** (the reference's `fewshot_split/{N}_way_{K}_shot.csv`,
//! spec §5.2): one episode per line, comma-separated `class/file` entries,
//! the last field dropped (the reference reads `line.split(",")[:-1]`, so
//! lines end with a comma). The first N·K entries are the support images,
//! the last kept entry is the query. The class of an entry is the part
//! before the first `/` (an ImageNet wnid such as `n01532829`, or for the
//! built-in datasets the label number).

use std::collections::BTreeMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{io, PromptError, Result};

/// One image of an episode: `class/file`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Item {
    /// The class id (before the first `/`).
    pub class: String,
    /// The whole entry (`class/file`), a path relative to the image root.
    pub path: String,
}

impl Item {
    /// Parse `class/file`.
    ///
    /// # Errors
    /// An entry without `/` or with an empty class or file.
    pub fn parse(entry: &str) -> std::result::Result<Self, String> {
        match entry.split_once('/') {
            Some((c, f)) if !c.is_empty() && !f.is_empty() => Ok(Self {
                class: c.to_string(),
                path: entry.to_string(),
            }),
            _ => Err(format!("entry {entry:?} is not `class/file`")),
        }
    }
}

/// One N-way K-shot episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    /// The N·K support images, in file order.
    pub support: Vec<Item>,
    /// The query image.
    pub query: Item,
}

impl Episode {
    /// The distinct class ids of the episode (support and query).
    pub fn classes(&self) -> Vec<&str> {
        let mut c: Vec<&str> = self
            .support
            .iter()
            .chain(std::iter::once(&self.query))
            .map(|i| i.class.as_str())
            .collect();
        c.sort_unstable();
        c.dedup();
        c
    }
}

/// Parse episode CSV text. `shape = Some((n, k))` also checks that every
/// line has N·K + 1 entries over N classes; `source` names the file in
/// errors. Blank lines are skipped.
///
/// # Errors
/// [`PromptError::Episode`] naming the line: a malformed entry, too few
/// entries, or (with `shape`) the wrong count.
pub fn parse_csv(text: &str, shape: Option<(usize, usize)>, source: &str) -> Result<Vec<Episode>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |message: String| PromptError::Episode {
            path: source.to_string(),
            line: i + 1,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        let mut fields: Vec<&str> = line.trim_end_matches('\r').split(',').collect();
        fields.pop(); // the reference drops the last field
        if fields.len() < 2 {
            return Err(err(format!(
                "{} entr{} before the final field; an episode needs support images and a query \
                 (lines end with a comma)",
                fields.len(),
                if fields.len() == 1 { "y" } else { "ies" }
            )));
        }
        let items = fields
            .iter()
            .map(|f| Item::parse(f.trim()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(err)?;
        let (query, support) = items.split_last().ok_or_else(|| err("no entries".into()))?;
        let episode = Episode {
            support: support.to_vec(),
            query: query.clone(),
        };
        if let Some((n, k)) = shape {
            if support.len() != n * k {
                return Err(err(format!(
                    "{} support images, a {n}-way {k}-shot episode has {}",
                    support.len(),
                    n * k
                )));
            }
            let classes = episode.classes().len();
            if classes != n {
                return Err(err(format!("{classes} classes, expected {n}")));
            }
        }
        out.push(episode);
    }
    if out.is_empty() {
        return Err(PromptError::Episode {
            path: source.to_string(),
            line: 0,
            message: "no episodes".into(),
        });
    }
    Ok(out)
}

/// Read an episode CSV file (see [`parse_csv`]).
///
/// # Errors
/// I/O errors and those of [`parse_csv`].
pub fn read_csv(path: impl AsRef<Path>, shape: Option<(usize, usize)>) -> Result<Vec<Episode>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    parse_csv(&text, shape, &path.display().to_string())
}

/// Episodes as CSV text in the reference's format (each line ends with a
/// comma).
pub fn write_csv(episodes: &[Episode]) -> String {
    let mut s = String::new();
    for e in episodes {
        for item in e.support.iter().chain(std::iter::once(&e.query)) {
            s.push_str(&item.path);
            s.push(',');
        }
        s.push('\n');
    }
    s
}

/// Draw `count` N-way K-shot episodes from labelled items with a seeded
/// RNG. Each episode takes N distinct classes, K support images per class
/// and one query from one of those classes (chosen uniformly); the query is
/// never one of the support images (no label leak). Support images are
/// shuffled.
///
/// # Errors
/// N or K of zero; fewer than N classes with K + 1 images.
pub fn generate_episodes(
    items: &[Item],
    n: usize,
    k: usize,
    count: usize,
    seed: u64,
) -> Result<Vec<Episode>> {
    if n == 0 || k == 0 || count == 0 {
        return Err(PromptError::InvalidInput(format!(
            "N ({n}), K ({k}) and the episode count ({count}) must be at least 1"
        )));
    }
    let mut by_class: BTreeMap<&str, Vec<&Item>> = BTreeMap::new();
    for it in items {
        by_class.entry(it.class.as_str()).or_default().push(it);
    }
    // Classes that can supply K support images and a query.
    let classes: Vec<&str> = by_class
        .iter()
        .filter(|(_, v)| v.len() > k)
        .map(|(c, _)| *c)
        .collect();
    if classes.len() < n {
        return Err(PromptError::InvalidInput(format!(
            "{} classes have at least {} images; a {n}-way {k}-shot episode needs {n}",
            classes.len(),
            k + 1
        )));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut chosen: Vec<&str> = classes.clone();
        chosen.shuffle(&mut rng);
        chosen.truncate(n);
        let query_class = chosen[rand::Rng::random_range(&mut rng, 0..n)];
        let mut support = Vec::with_capacity(n * k);
        let mut query = None;
        for c in &chosen {
            let mut pool: Vec<&Item> = by_class[c].clone();
            pool.shuffle(&mut rng);
            support.extend(pool[..k].iter().map(|&i| i.clone()));
            if *c == query_class {
                query = Some(pool[k].clone());
            }
        }
        support.shuffle(&mut rng);
        let query = query.ok_or_else(|| PromptError::InvalidInput("internal: no query".into()))?;
        out.push(Episode { support, query });
    }
    Ok(out)
}

/// Class id → class name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassNames {
    names: BTreeMap<String, String>,
}

/// The wnid of ImageNet class 27 ("eft"), which the reference's evaluation
/// scripts rename to two spaces.
pub const EFT_WNID: &str = "n01631663";

impl ClassNames {
    /// From (id, name) pairs.
    pub fn from_pairs<I, S, T>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (S, T)>,
        S: Into<String>,
        T: Into<String>,
    {
        Self {
            names: pairs
                .into_iter()
                .map(|(a, b)| (a.into(), b.into()))
                .collect(),
        }
    }

    /// A built-in dataset's names keyed by label number (`"0"` …):
    /// `fashion-mnist` or `mnist` (see `v2l_assets::datasets`).
    ///
    /// # Errors
    /// Another name.
    pub fn builtin(dataset: &str) -> Result<Self> {
        let names: &[&str] = match dataset {
            "fashion-mnist" => &v2l_assets::datasets::FASHION_MNIST_CLASSES,
            "mnist" => &v2l_assets::datasets::MNIST_CLASSES,
            other => {
                return Err(PromptError::InvalidInput(format!(
                    "no built-in class names for {other:?} (fashion-mnist, mnist)"
                )))
            }
        };
        Ok(Self::from_pairs(
            names.iter().enumerate().map(|(i, n)| (i.to_string(), *n)),
        ))
    }

    /// Parse a mapping file: the standard ImageNet class-index JSON
    /// (`{"0": ["n01440764", "tench"], …}`), a JSON object `{"wnid":
    /// "name"}`, or text lines `wnid name` (the rest of the line is the
    /// name). `eft_quirk` renames `n01631663` to two spaces, as the
    /// reference's evaluation scripts do.
    ///
    /// # Errors
    /// I/O errors; a file in none of these formats (naming the line).
    pub fn read(path: impl AsRef<Path>, eft_quirk: bool) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let mut names = Self::parse(&text, &path.display().to_string())?;
        if eft_quirk {
            if let Some(n) = names.names.get_mut(EFT_WNID) {
                *n = "  ".into();
            }
        }
        Ok(names)
    }

    /// Parse mapping text (see [`ClassNames::read`]).
    ///
    /// # Errors
    /// Text in none of the accepted formats.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let bad = |line: usize, message: String| PromptError::Episode {
            path: source.to_string(),
            line,
            message,
        };
        if text.trim_start().starts_with('{') {
            let v: serde_json::Value =
                serde_json::from_str(text).map_err(|e| bad(e.line(), e.to_string()))?;
            let obj = v
                .as_object()
                .ok_or_else(|| bad(1, "expected a JSON object".into()))?;
            let mut names = BTreeMap::new();
            for (k, val) in obj {
                match val {
                    serde_json::Value::String(n) => {
                        names.insert(k.clone(), n.clone());
                    }
                    serde_json::Value::Array(a) => match (a.first(), a.get(1)) {
                        (
                            Some(serde_json::Value::String(w)),
                            Some(serde_json::Value::String(n)),
                        ) => {
                            names.insert(w.clone(), n.clone());
                        }
                        _ => return Err(bad(1, format!("entry {k:?}: expected [wnid, name]"))),
                    },
                    _ => {
                        return Err(bad(
                            1,
                            format!("entry {k:?}: expected a name or [wnid, name]"),
                        ))
                    }
                }
            }
            return Ok(Self { names });
        }
        let mut names = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (id, name) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad(i + 1, format!("expected `id name`, found {line:?}")))?;
            names.insert(id.to_string(), name.trim().to_string());
        }
        if names.is_empty() {
            return Err(bad(0, "no class names".into()));
        }
        Ok(Self { names })
    }

    /// The name of class `id`.
    ///
    /// # Errors
    /// [`PromptError::UnknownClass`].
    pub fn name(&self, id: &str) -> Result<&str> {
        self.names
            .get(id)
            .map(String::as_str)
            .ok_or_else(|| PromptError::UnknownClass {
                id: id.to_string(),
                known: self.names.len(),
            })
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
