//! The weight-loading layer: every model crate builds its parameters
//! through a [`Loader`], from a file of named tensors or from a seeded
//! initialiser.
//!
//! - **Prefix scoping**: [`Loader::pp`] returns a loader for a sub-module
//!   (`encoder` → `encoder.conv_in` → `encoder.conv_in.weight`); all scopes
//!   share one record of what was read.
//! - **dtype conversion**: every tensor is read as f32 whatever its stored
//!   type (the readers of `v2l-io` convert f16, bf16, f64 and integers).
//! - **Layouts declared once**: a parameter names its on-disk [`Layout`]
//!   (e.g. PyTorch's `[out, in]` linear weight for burn's `[in, out]`);
//!   loading converts to the module's layout and [`Names::export`] converts
//!   back, so files keep the reference's layout.
//! - **Every problem reported together**: a missing, mis-shaped, unreadable
//!   or non-finite tensor is recorded, building goes on with zeros, and
//!   [`Loader::finish`] returns one [`LoadError`] listing all of them, plus
//!   the file's tensors under the model's namespaces that nothing read.
//! - **Initialisation** for training from scratch: [`Loader::random`] draws
//!   each parameter from its [`Init`] in build order from one seeded stream.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::rc::Rc;

use burn::module::{Module, ModuleVisitor, Param, ParamId, RunningState};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use v2l_io::tensors::TensorSource;

use crate::init::{Init, InitRng};

/// How a parameter is laid out in files relative to the module's tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The same shape and order in the file and the module.
    Same,
    /// The file holds `[a, r₁, r₂, …]`, seen as the matrix `[a, Π rᵢ]`; the
    /// module holds its transpose `[Π rᵢ, a]` (PyTorch's `nn.Linear`
    /// `[out, in]` → burn's `Linear` `[in, out]`; a conv kernel used as a
    /// patch-embedding matrix).
    Transposed,
    /// Flax / TensorFlow conv kernel `[kh, kw, in, out]` in the file,
    /// PyTorch / burn `[out, in, kh, kw]` in the module.
    HwioToOihw,
}

impl Layout {
    /// The module-side shape of a tensor stored as `file_shape`.
    pub fn module_shape(self, file_shape: &[usize]) -> Vec<usize> {
        match self {
            Self::Same => file_shape.to_vec(),
            Self::Transposed => {
                let (a, rest) = split_first(file_shape);
                vec![rest, a]
            }
            Self::HwioToOihw => match file_shape {
                [kh, kw, i, o] => vec![*o, *i, *kh, *kw],
                other => other.to_vec(),
            },
        }
    }

    /// File-layout values → module-layout values.
    pub fn to_module(self, file_shape: &[usize], values: Vec<f32>) -> Vec<f32> {
        self.convert(file_shape, values, true)
    }

    /// Module-layout values → file-layout values (the inverse of
    /// [`to_module`](Self::to_module)).
    pub fn to_file(self, file_shape: &[usize], values: Vec<f32>) -> Vec<f32> {
        self.convert(file_shape, values, false)
    }

    fn convert(self, file_shape: &[usize], values: Vec<f32>, to_module: bool) -> Vec<f32> {
        let (a, rest) = split_first(file_shape);
        match (self, to_module) {
            (Self::Same, _) => values,
            (Self::Transposed, true) => transpose(&values, a, rest),
            (Self::Transposed, false) => transpose(&values, rest, a),
            (Self::HwioToOihw, _) => permute(&values, file_shape, to_module),
        }
    }
}

/// HWIO `[kh, kw, in, out]` values to OIHW (`to_module`) or back. Other
/// ranks are returned unchanged.
fn permute(values: &[f32], file_shape: &[usize], to_module: bool) -> Vec<f32> {
    let &[kh, kw, i, o] = file_shape else {
        return values.to_vec();
    };
    if kh * kw * i * o != values.len() {
        return values.to_vec();
    }
    let mut out = vec![0.0f32; values.len()];
    for y in 0..kh {
        for x in 0..kw {
            for c in 0..i {
                for n in 0..o {
                    let file = ((y * kw + x) * i + c) * o + n;
                    let module = ((n * i + c) * kh + y) * kw + x;
                    let (to, from) = if to_module {
                        (module, file)
                    } else {
                        (file, module)
                    };
                    out[to] = values[from];
                }
            }
        }
    }
    out
}

fn split_first(shape: &[usize]) -> (usize, usize) {
    match shape.split_first() {
        Some((&a, rest)) => (a, rest.iter().product()),
        None => (1, 1),
    }
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    if rows * cols != data.len() {
        return data.to_vec();
    }
    let mut out = vec![0.0f32; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// A tensor whose shape differs from what the architecture needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeProblem {
    /// The tensor's name in the file.
    pub key: String,
    /// Shape the architecture needs (file layout).
    pub expected: Vec<usize>,
    /// Shape found in the file.
    pub found: Vec<usize>,
}

/// A tensor holding a NaN or an infinity (reported only by loaders made
/// with [`Loader::check_finite`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueProblem {
    /// The tensor's name in the file.
    pub key: String,
    /// Flat index (file layout) of the first non-finite value.
    pub index: usize,
    /// That value.
    pub value: f32,
}

/// A tensor that is listed in the file but could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadProblem {
    /// The tensor's name in the file.
    pub key: String,
    /// The reader's message.
    pub message: String,
}

/// Every problem met while building a module from a file, reported at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadError {
    /// The file (as its source describes itself).
    pub file: String,
    /// Tensors the architecture needs that the file lacks.
    pub missing: Vec<String>,
    /// Tensors under the model's namespaces that nothing read.
    pub unexpected: Vec<String>,
    /// Tensors of the wrong shape.
    pub shapes: Vec<ShapeProblem>,
    /// Tensors holding NaN or infinity.
    pub values: Vec<ValueProblem>,
    /// Tensors that could not be read.
    pub unreadable: Vec<ReadProblem>,
}

impl LoadError {
    /// Number of problems listed.
    pub fn count(&self) -> usize {
        self.missing.len()
            + self.unexpected.len()
            + self.shapes.len()
            + self.values.len()
            + self.unreadable.len()
    }

    fn is_empty(&self) -> bool {
        self.count() == 0
    }
}

/// At most this many names per kind of problem in the message.
const LISTED: usize = 12;

/// `N what: a, b, … (M more)`.
fn list<T>(what: &str, items: &[T], show: impl Fn(&T) -> String) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let mut s = items
        .iter()
        .take(LISTED)
        .map(show)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > LISTED {
        s.push_str(&format!(", … ({} more)", items.len() - LISTED));
    }
    Some(format!("{} {what}: {s}", items.len()))
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            list("missing", &self.missing, |k| format!("`{k}`")),
            list("unexpected", &self.unexpected, |k| format!("`{k}`")),
            list("mis-shaped", &self.shapes, |s| {
                format!("`{}` is {:?}, expected {:?}", s.key, s.found, s.expected)
            }),
            list("non-finite", &self.values, |v| {
                format!("`{}` holds {} at flat index {}", v.key, v.value, v.index)
            }),
            list("unreadable", &self.unreadable, |r| {
                format!("`{}` ({})", r.key, r.message)
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        write!(f, "{}: {}", self.file, parts.join("; "))
    }
}

impl std::error::Error for LoadError {}

/// Which of the file's tensors that nothing read count as unexpected in
/// [`Loader::finish`].
#[derive(Debug, Clone, Copy)]
pub enum Unexpected<'a> {
    /// None (the file may hold more than this module, e.g. both CLIP towers).
    Ignore,
    /// Those under the finishing loader's prefix whose remaining name starts
    /// with one of these namespaces.
    Under(&'a [&'a str]),
    /// Every tensor under the finishing loader's prefix.
    All,
}

/// A parameter's name, on-disk layout and on-disk shape, by [`ParamId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedParam {
    /// burn's id of the parameter.
    pub id: ParamId,
    /// Full name in files.
    pub name: String,
    /// How the file lays it out.
    pub layout: Layout,
    /// Its shape in files.
    pub file_shape: Vec<usize>,
}

/// A tensor by name in file layout: `(name, shape, row-major values)`.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Failure to export a module's parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// A named parameter is not in the module (it was replaced by one
    /// built elsewhere).
    #[error("parameter `{0}` is not in the module")]
    NotInModule(String),
    /// The backend returned data that is not convertible to f32.
    #[error("parameter `{name}`: {message}")]
    Data {
        /// The parameter.
        name: String,
        /// The backend's message.
        message: String,
    },
}

/// The names of every parameter a [`Loader`] built, in build order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    entries: Vec<NamedParam>,
}

impl Names {
    /// The entries in build order.
    pub fn entries(&self) -> &[NamedParam] {
        &self.entries
    }

    /// Number of named parameters.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was named.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name of a parameter id.
    pub fn name_of(&self, id: ParamId) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.name.as_str())
    }

    /// Every named parameter of `module` in file naming and layout, in build
    /// order (what a model file or bundle stores).
    ///
    /// # Errors
    /// A named parameter is missing from `module`; the backend's data does
    /// not convert to f32.
    pub fn export<B: Backend, M: Module<B>>(
        &self,
        module: &M,
    ) -> Result<Vec<NamedTensor>, ExportError> {
        struct Collect<'n, B: Backend> {
            wanted: &'n HashMap<ParamId, usize>,
            found: HashMap<ParamId, TensorData>,
            _b: std::marker::PhantomData<B>,
        }
        impl<B: Backend> ModuleVisitor<B> for Collect<'_, B> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if self.wanted.contains_key(&param.id) {
                    self.found.insert(param.id, param.val().into_data());
                }
            }
        }
        let wanted: HashMap<ParamId, usize> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id, i))
            .collect();
        let mut c = Collect::<B> {
            wanted: &wanted,
            found: HashMap::new(),
            _b: std::marker::PhantomData,
        };
        module.visit(&mut c);
        let mut out = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let data = c
                .found
                .remove(&e.id)
                .ok_or_else(|| ExportError::NotInModule(e.name.clone()))?;
            let values =
                data.convert::<f32>()
                    .into_vec::<f32>()
                    .map_err(|err| ExportError::Data {
                        name: e.name.clone(),
                        message: format!("{err:?}"),
                    })?;
            out.push((
                e.name.clone(),
                e.file_shape.clone(),
                e.layout.to_file(&e.file_shape, values),
            ));
        }
        Ok(out)
    }
}

enum Values<'a> {
    Source(&'a dyn TensorSource),
    Random(Box<InitRng>),
}

struct State<'a> {
    values: Values<'a>,
    check_finite: bool,
    used: BTreeSet<String>,
    report: LoadError,
    names: Vec<NamedParam>,
}

/// Whether a prefix is joined to a name without a `.`.
fn raw(prefix: &str) -> bool {
    prefix.is_empty() || prefix.ends_with('.') || prefix.ends_with('/')
}

/// Builds module parameters from a tensor file or a seeded initialiser,
/// under a name prefix. Cheap to clone; clones and [`pp`](Self::pp) scopes
/// share one record of what was read.
pub struct Loader<'a, B: Backend> {
    state: Rc<RefCell<State<'a>>>,
    prefix: String,
    device: B::Device,
}

impl<B: Backend> Clone for Loader<'_, B> {
    fn clone(&self) -> Self {
        Self {
            state: Rc::clone(&self.state),
            prefix: self.prefix.clone(),
            device: self.device.clone(),
        }
    }
}

impl<B: Backend> fmt::Debug for Loader<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.borrow();
        write!(
            f,
            "Loader({:?} under {:?}: {} read, {} problems)",
            s.report.file,
            self.prefix,
            s.used.len(),
            s.report.count()
        )
    }
}

impl<'a, B: Backend> Loader<'a, B> {
    fn new(values: Values<'a>, file: String, device: &B::Device) -> Self {
        Self {
            state: Rc::new(RefCell::new(State {
                values,
                check_finite: false,
                used: BTreeSet::new(),
                report: LoadError {
                    file,
                    ..LoadError::default()
                },
                names: Vec::new(),
            })),
            prefix: String::new(),
            device: device.clone(),
        }
    }

    /// Read parameters from `source`.
    pub fn from_source(source: &'a dyn TensorSource, device: &B::Device) -> Self {
        let file = source.describe().to_string();
        Self::new(Values::Source(source), file, device)
    }

    /// Draw parameters from their [`Init`], seeded.
    pub fn random(seed: u64, device: &B::Device) -> Self {
        Self::new(
            Values::Random(Box::new(InitRng::new(seed))),
            "random initialisation".into(),
            device,
        )
    }

    /// Also report tensors holding NaN or infinity.
    pub fn check_finite(self) -> Self {
        self.state.borrow_mut().check_finite = true;
        self
    }

    /// A loader for the sub-module `name` (`"a"` then `"b"` → `a.b.`).
    /// A prefix ending in `.` or `/` is joined as it is (raw prefixes such
    /// as `global_encoder.`; slash-separated names such as Flax's).
    pub fn pp(&self, name: impl AsRef<str>) -> Self {
        let name = name.as_ref();
        let mut prefix = self.prefix.clone();
        if !raw(&prefix) {
            prefix.push('.');
        }
        prefix.push_str(name);
        Self {
            state: Rc::clone(&self.state),
            prefix,
            device: self.device.clone(),
        }
    }

    /// The full file name of `name` under this loader's prefix.
    pub fn key(&self, name: &str) -> String {
        if raw(&self.prefix) {
            format!("{}{name}", self.prefix)
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// This loader's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The device tensors are created on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Whether parameters are drawn rather than read.
    pub fn is_random(&self) -> bool {
        matches!(self.state.borrow().values, Values::Random(_))
    }

    /// The stored shape of `name`, if the file has it (`None` when random).
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        match &self.state.borrow().values {
            Values::Source(s) => s.shape(&self.key(name)),
            Values::Random(_) => None,
        }
    }

    /// Whether the file has `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.shape(name).is_some()
    }

    /// The values of `name` in file layout, checked against `file_shape`.
    /// On a problem it is recorded for [`finish`](Self::finish) and zeros
    /// are returned so that building can go on.
    pub fn values(&self, name: &str, file_shape: &[usize], init: Init) -> Vec<f32> {
        let key = self.key(name);
        let n: usize = file_shape.iter().product();
        let mut guard = self.state.borrow_mut();
        let st = &mut *guard;
        let source = match &mut st.values {
            Values::Random(rng) => return rng.sample(init, n),
            Values::Source(s) => *s,
        };
        let Some(found) = source.shape(&key) else {
            st.report.missing.extend(source.missing_names(&key));
            return vec![0.0; n];
        };
        st.used.insert(key.clone());
        if found != file_shape {
            st.report.shapes.push(ShapeProblem {
                key: source.file_names(&key).join(" + "),
                expected: file_shape.to_vec(),
                found,
            });
            return vec![0.0; n];
        }
        match source.read_f32(&key) {
            Ok((_, v)) if v.len() == n => {
                if st.check_finite {
                    if let Some((index, &value)) =
                        v.iter().enumerate().find(|(_, x)| !x.is_finite())
                    {
                        st.report.values.push(ValueProblem {
                            key: source.file_names(&key).join(" + "),
                            index,
                            value,
                        });
                    }
                }
                v
            }
            Ok((shape, v)) => {
                st.report.unreadable.push(ReadProblem {
                    key,
                    message: format!(
                        "the reader returned {} values of shape {shape:?} for {n}",
                        v.len()
                    ),
                });
                vec![0.0; n]
            }
            Err(e) => {
                st.report.unreadable.push(ReadProblem {
                    key,
                    message: e.to_string(),
                });
                vec![0.0; n]
            }
        }
    }

    /// A tensor of `name` stored as `file_shape` in `layout`, in the
    /// module's layout (not a parameter: nothing is named for export).
    pub fn tensor<const D: usize>(
        &self,
        name: &str,
        layout: Layout,
        file_shape: &[usize],
        init: Init,
    ) -> Tensor<B, D> {
        let values = layout.to_module(file_shape, self.values(name, file_shape, init));
        let shape = layout.module_shape(file_shape);
        Tensor::from_data(TensorData::new(values, shape), &self.device)
    }

    /// A trainable parameter of `name` stored as `file_shape` in `layout`,
    /// named for [`Names::export`].
    pub fn param_as<const D: usize>(
        &self,
        name: &str,
        layout: Layout,
        file_shape: &[usize],
        init: Init,
    ) -> Param<Tensor<B, D>> {
        let p = Param::from_tensor(self.tensor::<D>(name, layout, file_shape, init));
        self.name_param(p.id, name, layout, file_shape);
        p
    }

    /// Name a module state that is not built by [`param_as`](Self::param_as)
    /// (e.g. a `RunningState` created with this `id`) for
    /// [`Names::export`].
    pub fn name_param(&self, id: ParamId, name: &str, layout: Layout, file_shape: &[usize]) {
        self.state.borrow_mut().names.push(NamedParam {
            id,
            name: self.key(name),
            layout,
            file_shape: file_shape.to_vec(),
        });
    }

    /// A trainable parameter of `name` with the same shape in the file.
    pub fn param<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        init: Init,
    ) -> Param<Tensor<B, D>> {
        self.param_as(name, Layout::Same, &shape, init)
    }

    /// A running statistic of `name` (e.g. BatchNorm's `running_mean`):
    /// state updated in the forward pass, not trained, named for export.
    pub fn running<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        init: Init,
    ) -> RunningState<Tensor<B, D>> {
        let id = ParamId::new();
        let t = self.tensor::<D>(name, Layout::Same, &shape, init);
        self.name_param(id, name, Layout::Same, &shape);
        RunningState::with_id(id, t)
    }

    /// A frozen (no-gradient) parameter of `name`.
    pub fn frozen<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        init: Init,
    ) -> Param<Tensor<B, D>> {
        self.param(name, shape, init).set_require_grad(false)
    }

    /// Finish loading: the names of every parameter built (for
    /// [`Names::export`]), or one error listing every problem, with the
    /// tensors under this loader's prefix that nothing read counted as
    /// `unexpected`.
    ///
    /// # Errors
    /// [`LoadError`] when any tensor was missing, mis-shaped, unreadable,
    /// non-finite (if checked) or unexpected.
    pub fn finish(&self, unexpected: Unexpected<'_>) -> Result<Names, Box<LoadError>> {
        let st = self.state.borrow();
        let mut report = st.report.clone();
        if let Values::Source(source) = &st.values {
            let prefix = &self.prefix;
            let wanted = |rest: &str| match unexpected {
                Unexpected::Ignore => false,
                Unexpected::All => true,
                Unexpected::Under(ns) => ns.iter().any(|n| rest.starts_with(n)),
            };
            let mut extra: Vec<String> = source
                .keys()
                .into_iter()
                .filter(|k| !st.used.contains(k))
                .filter(|k| k.strip_prefix(prefix.as_str()).is_some_and(wanted))
                .collect();
            extra.sort();
            report.unexpected = extra;
        }
        if report.is_empty() {
            Ok(Names {
                entries: st.names.clone(),
            })
        } else {
            Err(Box::new(report))
        }
    }
}
