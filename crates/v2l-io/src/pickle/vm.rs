//! The pickle virtual machine: decodes opcodes into an arena of nodes (so that memoised
//! objects mutated later, like a numpy dtype that receives its state after being memoised,
//! stay shared), then resolves the result into a [`PickleValue`] tree.
//!
//! Nothing here imports or calls Python code: every global must be on the allow-list in
//! [`super::globals`], and "calling" one runs the matching Rust constructor.

use std::collections::HashMap;
use std::rc::Rc;

use super::globals::{self, Global, GlobalKind};
use super::value::{PickleValue, QualName, TorchStorageRef, TorchTensorRef};
use super::Limits;
use crate::array::{ArrayData, ByteOrder, Dtype, DtypeKind, NdArray};
use crate::error::{ReadError, Result};

type Id = usize;

/// Dict keys that can be compared cheaply, so a repeated key replaces the earlier entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyIndex {
    Str(String),
    Int(i64),
    Bytes(Rc<[u8]>),
    None,
}

#[derive(Debug, Default)]
struct DictNode {
    entries: Vec<(Id, Id)>,
    index: HashMap<KeyIndex, usize>,
}

impl DictNode {
    fn insert(&mut self, key: Id, value: Id, simple: Option<KeyIndex>) {
        match simple {
            Some(k) => {
                if let Some(&pos) = self.index.get(&k) {
                    if let Some(entry) = self.entries.get_mut(pos) {
                        *entry = (key, value);
                    }
                } else {
                    self.index.insert(k, self.entries.len());
                    self.entries.push((key, value));
                }
            }
            None => self.entries.push((key, value)),
        }
    }
}

#[derive(Debug)]
enum ArrayContent {
    Raw(Rc<[u8]>),
    Objects(Vec<Id>),
}

#[derive(Debug)]
enum Node {
    None,
    Bool(bool),
    Int(i64),
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Rc<[u8]>),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(DictNode),
    Set(Vec<Id>),
    Global(Global),
    Object {
        class: QualName,
        args: Vec<Id>,
        state: Option<Id>,
    },
    Dtype(Dtype),
    /// A numpy array; `dtype`/`data` are `None` between `_reconstruct` and `BUILD`.
    Array {
        dtype: Option<Dtype>,
        shape: Vec<usize>,
        fortran: bool,
        data: Option<ArrayContent>,
    },
    /// A storage from a persistent id; `view_offset` (elements) is non-zero only for a view
    /// of a root storage named by a legacy (non-zip) `torch.save` persistent id.
    Storage {
        storage: TorchStorageRef,
        view_offset: usize,
    },
    Tensor(TorchTensorRef),
}

impl Node {
    fn kind_name(&self) -> &'static str {
        match self {
            Node::None => "None",
            Node::Bool(_) => "bool",
            Node::Int(_) | Node::BigInt(_) => "int",
            Node::Float(_) => "float",
            Node::Str(_) => "str",
            Node::Bytes(_) => "bytes",
            Node::List(_) => "list",
            Node::Tuple(_) => "tuple",
            Node::Dict(_) => "dict",
            Node::Set(_) => "set",
            Node::Global(_) => "global",
            Node::Object { .. } => "object",
            Node::Dtype(_) => "numpy.dtype",
            Node::Array { .. } => "numpy.ndarray",
            Node::Storage { .. } => "torch storage",
            Node::Tensor(_) => "torch.Tensor",
        }
    }
}

/// Remaining output allowance while resolving (guards against memo-sharing bombs).
struct Budget {
    nodes: u64,
    bytes: u64,
    node_limit: u64,
    byte_limit: u64,
}

pub(super) struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    op_pos: usize,
    file: &'a str,
    limits: &'a Limits,
    arena: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
}

impl<'a> Vm<'a> {
    pub(super) fn new(data: &'a [u8], file: &'a str, limits: &'a Limits) -> Self {
        Vm {
            data,
            pos: 0,
            op_pos: 0,
            file,
            limits,
            arena: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    // ----- errors -------------------------------------------------------------------------

    fn malformed(&self, msg: impl Into<String>) -> ReadError {
        ReadError::MalformedPickle {
            file: self.file.to_string(),
            offset: self.op_pos as u64,
            msg: msg.into(),
        }
    }

    fn truncated(&self, what: impl Into<String>) -> ReadError {
        ReadError::Truncated {
            file: self.file.to_string(),
            offset: self.pos as u64,
            what: what.into(),
        }
    }

    fn unsupported(&self, what: impl Into<String>) -> ReadError {
        ReadError::Unsupported {
            file: self.file.to_string(),
            what: format!("{} (pickle byte {})", what.into(), self.op_pos),
        }
    }

    // ----- input --------------------------------------------------------------------------

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        let remaining = self.remaining();
        if n > remaining as u64 {
            return Err(self.truncated(format!(
                "{what} needs {n} bytes but only {remaining} remain"
            )));
        }
        let n = n as usize;
        let data: &'a [u8] = self.data;
        let slice = data
            .get(self.pos..self.pos + n)
            .ok_or_else(|| self.truncated(what.to_string()))?;
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let slice = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A `\n`-terminated line (protocol 0 arguments), without the newline (and any `\r`).
    fn line(&mut self, what: &str) -> Result<&'a [u8]> {
        let data: &'a [u8] = self.data;
        let rest = data.get(self.pos..).unwrap_or(&[]);
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.truncated(format!("{what}: line without a newline")))?;
        self.pos += end + 1;
        let line = &rest[..end];
        Ok(line.strip_suffix(b"\r").unwrap_or(line))
    }

    fn line_str(&mut self, what: &str) -> Result<&'a str> {
        let line = self.line(what)?;
        std::str::from_utf8(line).map_err(|_| self.malformed(format!("{what} is not UTF-8")))
    }

    fn line_u64(&mut self, what: &str) -> Result<u64> {
        let s = self.line_str(what)?;
        s.trim()
            .parse()
            .map_err(|_| self.malformed(format!("{what}: bad number {s:?}")))
    }

    // ----- stack --------------------------------------------------------------------------

    fn alloc(&mut self, node: Node) -> Id {
        self.arena.push(node);
        self.arena.len() - 1
    }

    fn push(&mut self, node: Node) {
        let id = self.alloc(node);
        self.stack.push(id);
    }

    fn base(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Id> {
        if self.stack.len() <= self.base() {
            return Err(self.malformed("stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.malformed("stack underflow"))
    }

    fn top(&self) -> Result<Id> {
        if self.stack.len() <= self.base() {
            return Err(self.malformed("stack underflow (no object to modify)"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.malformed("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>> {
        let base = self
            .marks
            .pop()
            .ok_or_else(|| self.malformed("MARK expected but none on the stack"))?;
        if base > self.stack.len() {
            return Err(self.malformed("MARK above the top of the stack"));
        }
        Ok(self.stack.split_off(base))
    }

    fn node(&self, id: Id) -> Result<&Node> {
        self.arena
            .get(id)
            .ok_or_else(|| self.malformed("internal: dangling object reference"))
    }

    fn memo_get(&self, key: u64) -> Result<Id> {
        self.memo
            .get(&key)
            .copied()
            .ok_or_else(|| self.malformed(format!("memo key {key} was never stored")))
    }

    fn memo_put(&mut self, key: u64) -> Result<()> {
        let top = self.top()?;
        self.memo.insert(key, top);
        Ok(())
    }

    // ----- node helpers -------------------------------------------------------------------

    fn str_of(&self, id: Id) -> Option<&str> {
        match self.arena.get(id)? {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    fn int_of(&self, id: Id) -> Option<i64> {
        match self.arena.get(id)? {
            Node::Int(i) => Some(*i),
            Node::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    fn bool_of(&self, id: Id) -> Option<bool> {
        match self.arena.get(id)? {
            Node::Bool(b) => Some(*b),
            Node::Int(i) => Some(*i != 0),
            _ => None,
        }
    }

    fn seq_of(&self, id: Id) -> Option<&[Id]> {
        match self.arena.get(id)? {
            Node::List(v) | Node::Tuple(v) | Node::Set(v) => Some(v),
            _ => None,
        }
    }

    fn usize_seq(&self, id: Id, what: &str) -> Result<Vec<usize>> {
        let items = self
            .seq_of(id)
            .ok_or_else(|| self.malformed(format!("{what} must be a tuple of ints")))?;
        items
            .iter()
            .map(|&i| {
                self.int_of(i)
                    .and_then(|v| usize::try_from(v).ok())
                    .ok_or_else(|| self.malformed(format!("{what} must hold non-negative ints")))
            })
            .collect()
    }

    fn global_of(&self, id: Id) -> Option<&Global> {
        match self.arena.get(id)? {
            Node::Global(g) => Some(g),
            _ => None,
        }
    }

    fn key_index(&self, id: Id) -> Option<KeyIndex> {
        match self.arena.get(id)? {
            Node::Str(s) => Some(KeyIndex::Str(s.clone())),
            Node::Int(i) => Some(KeyIndex::Int(*i)),
            Node::Bool(b) => Some(KeyIndex::Int(i64::from(*b))),
            Node::Bytes(b) => Some(KeyIndex::Bytes(b.clone())),
            Node::None => Some(KeyIndex::None),
            _ => None,
        }
    }

    /// Bytes of a `bytes` node, or of a `str` whose characters are all below 256 (latin-1).
    fn bytes_of(&self, id: Id) -> Option<Rc<[u8]>> {
        match self.arena.get(id)? {
            Node::Bytes(b) => Some(b.clone()),
            Node::Str(s) => latin1(s).map(Rc::from),
            _ => None,
        }
    }

    fn dict_insert(&mut self, dict: Id, key: Id, value: Id) -> Result<()> {
        let simple = self.key_index(key);
        let kind = match self.arena.get_mut(dict) {
            Some(Node::Dict(d)) => {
                d.insert(key, value, simple);
                return Ok(());
            }
            Some(other) => other.kind_name(),
            None => "nothing",
        };
        Err(self.malformed(format!("SETITEM(S) on a {kind}, not a dict")))
    }

    fn extend_list(&mut self, list: Id, items: Vec<Id>, set: bool) -> Result<()> {
        let kind = match self.arena.get_mut(list) {
            Some(Node::List(v)) if !set => {
                v.extend(items);
                return Ok(());
            }
            Some(Node::Set(v)) if set => {
                v.extend(items);
                return Ok(());
            }
            Some(other) => other.kind_name(),
            None => "nothing",
        };
        let op = if set { "ADDITEMS" } else { "APPEND(S)" };
        Err(self.malformed(format!("{op} on a {kind}")))
    }

    // ----- main loop ----------------------------------------------------------------------

    /// Runs to the `STOP` opcode; returns the value and the number of bytes consumed.
    pub(super) fn run(mut self) -> Result<(PickleValue, usize)> {
        loop {
            self.op_pos = self.pos;
            if self.remaining() == 0 {
                return Err(self.truncated("input ended before the STOP opcode"));
            }
            let op = self.u8("opcode")?;
            match op {
                // PROTO
                0x80 => {
                    let proto = self.u8("PROTO")?;
                    if proto > 5 {
                        return Err(self.unsupported(format!("pickle protocol {proto}")));
                    }
                }
                // FRAME: framing is only a read-ahead hint; check it fits.
                0x95 => {
                    let n = self.u64("FRAME length")?;
                    if n > self.remaining() as u64 {
                        return Err(self.truncated(format!(
                            "FRAME of {n} bytes but only {} remain",
                            self.remaining()
                        )));
                    }
                }
                b'.' => {
                    let id = self.pop()?;
                    let value = self.finish(id)?;
                    return Ok((value, self.pos));
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    if self.stack.len() > self.base() {
                        self.pop()?;
                    } else {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?;
                    self.stack.push(top);
                }
                // memo
                b'p' => {
                    let key = self.line_u64("PUT index")?;
                    self.memo_put(key)?;
                }
                b'q' => {
                    let key = u64::from(self.u8("BINPUT")?);
                    self.memo_put(key)?;
                }
                b'r' => {
                    let key = u64::from(self.u32("LONG_BINPUT")?);
                    self.memo_put(key)?;
                }
                0x94 => {
                    let key = self.memo.len() as u64;
                    self.memo_put(key)?;
                }
                b'g' => {
                    let key = self.line_u64("GET index")?;
                    let id = self.memo_get(key)?;
                    self.stack.push(id);
                }
                b'h' => {
                    let key = u64::from(self.u8("BINGET")?);
                    let id = self.memo_get(key)?;
                    self.stack.push(id);
                }
                b'j' => {
                    let key = u64::from(self.u32("LONG_BINGET")?);
                    let id = self.memo_get(key)?;
                    self.stack.push(id);
                }
                // constants and numbers
                b'N' => self.push(Node::None),
                0x88 => self.push(Node::Bool(true)),
                0x89 => self.push(Node::Bool(false)),
                b'I' => {
                    let s = self.line_str("INT")?;
                    let node = match s.trim() {
                        "00" => Node::Bool(false),
                        "01" => Node::Bool(true),
                        t => decimal_to_long(t)
                            .ok_or_else(|| self.malformed(format!("bad INT literal {t:?}")))?,
                    };
                    self.push(node);
                }
                b'L' => {
                    let s = self.line_str("LONG")?;
                    let t = s.trim().trim_end_matches('L');
                    let node = decimal_to_long(t)
                        .ok_or_else(|| self.malformed(format!("bad LONG literal {t:?}")))?;
                    self.push(node);
                }
                b'J' => {
                    let v = self.i32("BININT")?;
                    self.push(Node::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8("BININT1")?;
                    self.push(Node::Int(i64::from(v)));
                }
                b'M' => {
                    let v = self.u16("BININT2")?;
                    self.push(Node::Int(i64::from(v)));
                }
                0x8a => {
                    let n = self.u8("LONG1 length")?;
                    let bytes = self.take(u64::from(n), "LONG1")?;
                    self.push(decode_long(bytes));
                }
                0x8b => {
                    let n = self.i32("LONG4 length")?;
                    let n = u64::try_from(n)
                        .map_err(|_| self.malformed("LONG4 with a negative length"))?;
                    let bytes = self.take(n, "LONG4")?;
                    self.push(decode_long(bytes));
                }
                b'F' => {
                    let s = self.line_str("FLOAT")?;
                    let v: f64 = s
                        .trim()
                        .parse()
                        .map_err(|_| self.malformed(format!("bad FLOAT literal {s:?}")))?;
                    self.push(Node::Float(v));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.array("BINFLOAT")?);
                    self.push(Node::Float(v));
                }
                // strings
                b'S' => {
                    let line = self.line("STRING")?;
                    let bytes = unquote_python_bytes(line)
                        .ok_or_else(|| self.malformed("STRING is not a quoted literal"))?;
                    self.push(Node::Bytes(Rc::from(bytes)));
                }
                b'T' => {
                    let n = self.i32("BINSTRING length")?;
                    let n = u64::try_from(n)
                        .map_err(|_| self.malformed("BINSTRING with a negative length"))?;
                    let bytes = self.take(n, "BINSTRING")?;
                    self.push(Node::Bytes(Rc::from(bytes)));
                }
                b'U' => {
                    let n = self.u8("SHORT_BINSTRING length")?;
                    let bytes = self.take(u64::from(n), "SHORT_BINSTRING")?;
                    self.push(Node::Bytes(Rc::from(bytes)));
                }
                b'V' => {
                    let line = self.line("UNICODE")?;
                    let s = raw_unicode_escape(line)
                        .ok_or_else(|| self.malformed("bad raw-unicode-escape in UNICODE"))?;
                    self.push(Node::Str(s));
                }
                b'X' => {
                    let n = self.u32("BINUNICODE length")?;
                    self.push_utf8(u64::from(n), "BINUNICODE")?;
                }
                0x8c => {
                    let n = self.u8("SHORT_BINUNICODE length")?;
                    self.push_utf8(u64::from(n), "SHORT_BINUNICODE")?;
                }
                0x8d => {
                    let n = self.u64("BINUNICODE8 length")?;
                    self.push_utf8(n, "BINUNICODE8")?;
                }
                b'B' => {
                    let n = self.u32("BINBYTES length")?;
                    let bytes = self.take(u64::from(n), "BINBYTES")?;
                    self.push(Node::Bytes(Rc::from(bytes)));
                }
                b'C' => {
                    let n = self.u8("SHORT_BINBYTES length")?;
                    let bytes = self.take(u64::from(n), "SHORT_BINBYTES")?;
                    self.push(Node::Bytes(Rc::from(bytes)));
                }
                0x8e | 0x96 => {
                    let what = if op == 0x8e {
                        "BINBYTES8"
                    } else {
                        "BYTEARRAY8"
                    };
                    let n = self.u64(what)?;
                    let bytes = self.take(n, what)?;
                    self.push(Node::Bytes(Rc::from(bytes)));
                }
                // READONLY_BUFFER: a no-op for in-band buffers.
                0x98 => {
                    self.top()?;
                }
                // containers
                b']' => self.push(Node::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items));
                }
                b'a' => {
                    let v = self.pop()?;
                    let list = self.top()?;
                    self.extend_list(list, vec![v], false)?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.extend_list(list, items, false)?;
                }
                b')' => self.push(Node::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Node::Tuple(items));
                }
                b'}' => self.push(Node::Dict(DictNode::default())),
                b'd' => {
                    let items = self.pop_mark()?;
                    let dict = self.alloc(Node::Dict(DictNode::default()));
                    self.fill_dict(dict, &items)?;
                    self.stack.push(dict);
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let dict = self.top()?;
                    self.dict_insert(dict, k, v)?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let dict = self.top()?;
                    self.fill_dict(dict, &items)?;
                }
                0x8f => self.push(Node::Set(Vec::new())),
                0x90 => {
                    let items = self.pop_mark()?;
                    let set = self.top()?;
                    self.extend_list(set, items, true)?;
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Node::Set(items));
                }
                // globals and object construction
                b'c' => {
                    let module = self.line_str("GLOBAL module")?;
                    let name = self.line_str("GLOBAL name")?;
                    let g = self.allow(module, name)?;
                    self.push(Node::Global(g));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (self.str_of(module), self.str_of(name))
                    else {
                        return Err(self.malformed("STACK_GLOBAL needs two str operands"));
                    };
                    let (module, name) = (module.to_string(), name.to_string());
                    let g = self.allow(&module, &name)?;
                    self.push(Node::Global(g));
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let args = self
                        .seq_of(args)
                        .ok_or_else(|| self.malformed("REDUCE arguments must be a tuple"))?
                        .to_vec();
                    let id = self.call(func, args)?;
                    self.stack.push(id);
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let args = self
                        .seq_of(args)
                        .ok_or_else(|| self.malformed("NEWOBJ arguments must be a tuple"))?
                        .to_vec();
                    let id = self.call(cls, args)?;
                    self.stack.push(id);
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    match self.node(kwargs)? {
                        Node::Dict(d) if d.entries.is_empty() => {}
                        _ => {
                            return Err(
                                self.unsupported("NEWOBJ_EX with keyword arguments".to_string())
                            )
                        }
                    }
                    let args = self
                        .seq_of(args)
                        .ok_or_else(|| self.malformed("NEWOBJ_EX arguments must be a tuple"))?
                        .to_vec();
                    let id = self.call(cls, args)?;
                    self.stack.push(id);
                }
                b'i' => {
                    let module = self.line_str("INST module")?;
                    let name = self.line_str("INST name")?;
                    let g = self.allow(module, name)?;
                    let args = self.pop_mark()?;
                    let cls = self.alloc(Node::Global(g));
                    let id = self.call(cls, args)?;
                    self.stack.push(id);
                }
                b'o' => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return Err(self.malformed("OBJ without a class"));
                    }
                    let cls = items.remove(0);
                    let id = self.call(cls, items)?;
                    self.stack.push(id);
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    self.build(obj, state)?;
                }
                b'P' => {
                    let line = self.line("PERSID")?;
                    return Err(self.unsupported(format!(
                        "text persistent id {:?}",
                        String::from_utf8_lossy(line)
                    )));
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let node = self.persistent_load(pid)?;
                    self.push(node);
                }
                _ => {
                    return Err(ReadError::UnsupportedOpcode {
                        file: self.file.to_string(),
                        opcode: op,
                        offset: self.op_pos as u64,
                    })
                }
            }
        }
    }

    fn push_utf8(&mut self, n: u64, what: &str) -> Result<()> {
        let bytes = self.take(n, what)?;
        let s = std::str::from_utf8(bytes)
            .map_err(|_| self.malformed(format!("{what} is not valid UTF-8")))?;
        self.push(Node::Str(s.to_string()));
        Ok(())
    }

    fn fill_dict(&mut self, dict: Id, items: &[Id]) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return Err(self.malformed("odd number of items for a dict"));
        }
        for pair in items.chunks_exact(2) {
            self.dict_insert(dict, pair[0], pair[1])?;
        }
        Ok(())
    }

    fn allow(&self, module: &str, name: &str) -> Result<Global> {
        globals::resolve(module, name).ok_or_else(|| ReadError::DisallowedGlobal {
            file: self.file.to_string(),
            module: module.to_string(),
            name: name.to_string(),
            offset: self.op_pos as u64,
        })
    }

    // ----- calling allowed globals ----------------------------------------------------------

    /// "Calls" an allowed global with positional arguments; returns the resulting object.
    fn call(&mut self, func: Id, args: Vec<Id>) -> Result<Id> {
        let g = match self.node(func)? {
            Node::Global(g) => g.clone(),
            other => {
                return Err(self.malformed(format!(
                    "cannot call a {} (only allowed globals are callable)",
                    other.kind_name()
                )))
            }
        };
        let arity_err = |vm: &Self| vm.malformed(format!("bad arguments for `{}`", g.name));
        let node = match g.kind {
            GlobalKind::Dict => {
                let dict = self.alloc(Node::Dict(DictNode::default()));
                match args.as_slice() {
                    [] => {}
                    [src] => {
                        let pairs: Vec<(Id, Id)> = match self.node(*src)? {
                            Node::Dict(d) => d.entries.clone(),
                            Node::List(items) | Node::Tuple(items) => {
                                let mut pairs = Vec::with_capacity(items.len());
                                for &item in items {
                                    match self.seq_of(item) {
                                        Some([k, v]) => pairs.push((*k, *v)),
                                        _ => return Err(arity_err(self)),
                                    }
                                }
                                pairs
                            }
                            _ => return Err(arity_err(self)),
                        };
                        for (k, v) in pairs {
                            self.dict_insert(dict, k, v)?;
                        }
                    }
                    _ => return Err(arity_err(self)),
                }
                return Ok(dict);
            }
            GlobalKind::List | GlobalKind::Set => {
                let items = match args.as_slice() {
                    [] => Vec::new(),
                    [src] => self.seq_of(*src).ok_or_else(|| arity_err(self))?.to_vec(),
                    _ => return Err(arity_err(self)),
                };
                if g.kind == GlobalKind::List {
                    Node::List(items)
                } else {
                    Node::Set(items)
                }
            }
            GlobalKind::Bytes => match args.as_slice() {
                [] => Node::Bytes(Rc::from(Vec::new())),
                [src] => match self.node(*src)? {
                    Node::Bytes(b) => Node::Bytes(b.clone()),
                    Node::List(items) | Node::Tuple(items) => {
                        let bytes = items
                            .iter()
                            .map(|&i| self.int_of(i).and_then(|v| u8::try_from(v).ok()))
                            .collect::<Option<Vec<u8>>>()
                            .ok_or_else(|| arity_err(self))?;
                        Node::Bytes(Rc::from(bytes))
                    }
                    _ => return Err(arity_err(self)),
                },
                [s, enc] => self.encode(*s, Some(*enc), &g)?,
                _ => return Err(arity_err(self)),
            },
            GlobalKind::CodecsEncode => match args.as_slice() {
                [s] => self.encode(*s, None, &g)?,
                [s, enc] => self.encode(*s, Some(*enc), &g)?,
                _ => return Err(arity_err(self)),
            },
            GlobalKind::CopyregReconstructor => {
                let [cls, base, state] = args.as_slice() else {
                    return Err(arity_err(self));
                };
                let cls_g = self.global_of(*cls).cloned();
                let base_ok =
                    matches!(self.global_of(*base), Some(b) if b.kind == GlobalKind::Object);
                let state_none = matches!(self.node(*state)?, Node::None);
                match cls_g {
                    Some(c) if c.kind == GlobalKind::Opaque && base_ok && state_none => {
                        Node::Object {
                            class: c.name,
                            args: Vec::new(),
                            state: None,
                        }
                    }
                    _ => {
                        return Err(self.malformed(
                            "copyreg._reconstructor is only allowed as \
                             (<tolerated class>, builtins.object, None)",
                        ))
                    }
                }
            }
            GlobalKind::NpReconstruct => {
                let [cls, _shape, _typecode] = args.as_slice() else {
                    return Err(arity_err(self));
                };
                match self.global_of(*cls) {
                    Some(c) if c.kind == GlobalKind::NpNdarray => {}
                    _ => {
                        return Err(
                            self.malformed("numpy _reconstruct is only allowed for numpy.ndarray")
                        )
                    }
                }
                Node::Array {
                    dtype: None,
                    shape: Vec::new(),
                    fortran: false,
                    data: None,
                }
            }
            GlobalKind::NpDtype => {
                let Some(&descr) = args.first() else {
                    return Err(arity_err(self));
                };
                let descr = match self.node(descr)? {
                    Node::Str(s) => s.clone(),
                    Node::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    _ => return Err(arity_err(self)),
                };
                let dtype = Dtype::parse(&descr)
                    .ok_or_else(|| self.unsupported(format!("numpy dtype {descr:?}")))?;
                Node::Dtype(dtype)
            }
            GlobalKind::NpScalar => {
                let [dtype, value] = args.as_slice() else {
                    return Err(arity_err(self));
                };
                let Node::Dtype(dtype) = self.node(*dtype)? else {
                    return Err(arity_err(self));
                };
                let dtype = *dtype;
                let data = if dtype.kind == DtypeKind::Object {
                    ArrayContent::Objects(vec![*value])
                } else {
                    let bytes = self.bytes_of(*value).ok_or_else(|| arity_err(self))?;
                    ArrayContent::Raw(bytes)
                };
                self.check_array(dtype, &[], &data)?;
                Node::Array {
                    dtype: Some(dtype),
                    shape: Vec::new(),
                    fortran: false,
                    data: Some(data),
                }
            }
            GlobalKind::NpFromBuffer => {
                let [buf, dtype, shape, order] = args.as_slice() else {
                    return Err(arity_err(self));
                };
                let Node::Dtype(dtype) = self.node(*dtype)? else {
                    return Err(arity_err(self));
                };
                let dtype = *dtype;
                let bytes = self.bytes_of(*buf).ok_or_else(|| arity_err(self))?;
                let shape = self.usize_seq(*shape, "_frombuffer shape")?;
                let fortran = match self.str_of(*order) {
                    Some("F") => true,
                    Some("C" | "A" | "K") => false,
                    _ => return Err(arity_err(self)),
                };
                let data = ArrayContent::Raw(bytes);
                self.check_array(dtype, &shape, &data)?;
                Node::Array {
                    dtype: Some(dtype),
                    shape,
                    fortran,
                    data: Some(data),
                }
            }
            GlobalKind::TorchRebuildTensor => self.rebuild_tensor(&args, &g)?,
            GlobalKind::TorchRebuildParameter => {
                let Some(&data) = args.first() else {
                    return Err(arity_err(self));
                };
                let Node::Tensor(t) = self.node(data)? else {
                    return Err(self.malformed(format!("`{}` expects a tensor", g.name)));
                };
                let mut t = t.clone();
                if let Some(rg) = args.get(1).and_then(|&a| self.bool_of(a)) {
                    t.requires_grad = rg;
                }
                Node::Tensor(t)
            }
            GlobalKind::TorchRebuildFromType => {
                let [func, new_type, inner, _state] = args.as_slice() else {
                    return Err(arity_err(self));
                };
                let func_ok = matches!(
                    self.global_of(*func).map(|f| f.kind),
                    Some(GlobalKind::TorchRebuildTensor | GlobalKind::TorchRebuildParameter)
                );
                let type_ok = matches!(
                    self.global_of(*new_type).map(|f| f.kind),
                    Some(GlobalKind::TorchTensorClass)
                );
                if !func_ok || !type_ok {
                    return Err(self.malformed(
                        "_rebuild_from_type_v2 is only allowed with a torch rebuild function \
                         and torch.Tensor / nn.Parameter",
                    ));
                }
                let inner = self.seq_of(*inner).ok_or_else(|| arity_err(self))?.to_vec();
                return self.call(*func, inner);
            }
            GlobalKind::TorchSize => {
                let [src] = args.as_slice() else {
                    return Err(arity_err(self));
                };
                Node::Tuple(self.seq_of(*src).ok_or_else(|| arity_err(self))?.to_vec())
            }
            GlobalKind::JitRestoreTypeTag => {
                let Some(&value) = args.first() else {
                    return Err(arity_err(self));
                };
                return Ok(value);
            }
            GlobalKind::JitBuildList => {
                let [list] = args.as_slice() else {
                    return Err(arity_err(self));
                };
                if self.seq_of(*list).is_none() {
                    return Err(arity_err(self));
                }
                return Ok(*list);
            }
            GlobalKind::Opaque => Node::Object {
                class: g.name.clone(),
                args,
                state: None,
            },
            GlobalKind::Object
            | GlobalKind::NpNdarray
            | GlobalKind::TorchTensorClass
            | GlobalKind::TorchStorage(_)
            | GlobalKind::Reference => {
                return Err(self.malformed(format!("`{}` may not be called", g.name)))
            }
        };
        Ok(self.alloc(node))
    }

    fn encode(&self, s: Id, enc: Option<Id>, g: &Global) -> Result<Node> {
        let text = self
            .str_of(s)
            .ok_or_else(|| self.malformed(format!("`{}` expects a str", g.name)))?;
        let enc = match enc {
            None => "utf-8".to_string(),
            Some(e) => self
                .str_of(e)
                .ok_or_else(|| self.malformed(format!("`{}` expects an encoding name", g.name)))?
                .to_ascii_lowercase()
                .replace('_', "-"),
        };
        let bytes: Vec<u8> = match enc.as_str() {
            "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" => latin1(text)
                .ok_or_else(|| self.malformed("latin-1 text holds characters above U+00FF"))?,
            "utf-8" | "utf8" => text.as_bytes().to_vec(),
            "ascii" if text.is_ascii() => text.as_bytes().to_vec(),
            other => return Err(self.unsupported(format!("text encoding {other:?}"))),
        };
        Ok(Node::Bytes(Rc::from(bytes)))
    }

    fn check_array(&self, dtype: Dtype, shape: &[usize], data: &ArrayContent) -> Result<()> {
        let count = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| self.malformed(format!("array shape {shape:?} overflows")))?;
        match data {
            ArrayContent::Objects(items) if dtype.kind == DtypeKind::Object => {
                if items.len() != count {
                    return Err(self.malformed(format!(
                        "object array of shape {shape:?} holds {} items",
                        items.len()
                    )));
                }
            }
            ArrayContent::Raw(bytes) if dtype.kind != DtypeKind::Object => {
                if count.checked_mul(dtype.item_size) != Some(bytes.len()) {
                    return Err(self.malformed(format!(
                        "array of dtype {dtype} and shape {shape:?} has {} data bytes",
                        bytes.len()
                    )));
                }
            }
            _ => return Err(self.malformed(format!("array data does not match its dtype {dtype}"))),
        }
        Ok(())
    }

    fn rebuild_tensor(&self, args: &[Id], g: &Global) -> Result<Node> {
        if args.len() < 4 {
            return Err(self.malformed(format!("`{}` needs at least 4 arguments", g.name)));
        }
        let Node::Storage {
            storage,
            view_offset,
        } = self.node(args[0])?
        else {
            return Err(self.malformed(format!(
                "`{}`: first argument must be a storage (persistent id)",
                g.name
            )));
        };
        let storage_offset = self
            .int_of(args[1])
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| self.malformed("tensor storage offset must be a non-negative int"))?
            .checked_add(*view_offset)
            .ok_or_else(|| self.malformed("tensor storage offset overflows"))?;
        let shape = self.usize_seq(args[2], "tensor size")?;
        let stride = self.usize_seq(args[3], "tensor stride")?;
        if shape.len() != stride.len() {
            return Err(self.malformed(format!(
                "tensor size {shape:?} and stride {stride:?} differ in length"
            )));
        }
        let requires_grad = args.get(4).and_then(|&a| self.bool_of(a)).unwrap_or(false);
        Ok(Node::Tensor(TorchTensorRef {
            storage: storage.clone(),
            storage_offset,
            shape,
            stride,
            requires_grad,
        }))
    }

    /// A text-like field of a persistent id: `str`, or Python 2 `str` (bytes) as UTF-8.
    fn text_of(&self, id: Id) -> Option<String> {
        match self.arena.get(id)? {
            Node::Str(s) => Some(s.clone()),
            Node::Bytes(b) => std::str::from_utf8(b).ok().map(str::to_string),
            _ => None,
        }
    }

    /// A storage key: `str`, Python 2 `str` or `int`.
    fn storage_key_of(&self, id: Id) -> Option<String> {
        match self.arena.get(id)? {
            Node::Int(i) => Some(i.to_string()),
            _ => self.text_of(id),
        }
    }

    /// Decodes `('storage', <StorageClass>, key, location, numel)` (zip format) or the legacy
    /// `('storage', <StorageClass>, root_key, location, root_numel, view_metadata)` where
    /// `view_metadata` is `None` or `(view_key, offset, numel)` (offset and numel in elements).
    fn persistent_load(&self, pid: Id) -> Result<Node> {
        let items = self.seq_of(pid);
        let parsed = (|| {
            let (tag, class, key, location, numel, view) = match items? {
                [tag, class, key, location, numel] => (tag, class, key, location, numel, None),
                [tag, class, key, location, numel, view] => {
                    (tag, class, key, location, numel, Some(*view))
                }
                _ => return None,
            };
            if self.text_of(*tag)? != "storage" {
                return None;
            }
            let dtype = match self.global_of(*class)?.kind {
                GlobalKind::TorchStorage(d) => d,
                _ => return None,
            };
            let key = self.storage_key_of(*key)?;
            let location = self.text_of(*location)?;
            let numel = u64::try_from(self.int_of(*numel)?).ok()?;
            let view_offset = match view.map(|v| (v, self.node(v))) {
                None | Some((_, Ok(Node::None))) => 0,
                Some((v, _)) => {
                    let [_view_key, offset, size] = self.seq_of(v)? else {
                        return None;
                    };
                    let offset = u64::try_from(self.int_of(*offset)?).ok()?;
                    let size = u64::try_from(self.int_of(*size)?).ok()?;
                    if offset.checked_add(size)? > numel {
                        return None;
                    }
                    usize::try_from(offset).ok()?
                }
            };
            Some(Node::Storage {
                storage: TorchStorageRef {
                    dtype,
                    key,
                    location,
                    numel,
                },
                view_offset,
            })
        })();
        parsed.ok_or_else(|| {
            self.unsupported(
                "persistent id other than ('storage', <torch storage class>, key, location, \
                 numel[, view_metadata]) (or a storage view outside its root storage)"
                    .to_string(),
            )
        })
    }

    // ----- BUILD --------------------------------------------------------------------------

    fn build(&mut self, obj: Id, state: Id) -> Result<()> {
        enum Action {
            SetState,
            Array,
            Dtype,
            Ignore,
        }
        let action = match self.node(obj)? {
            Node::Object { .. } => Action::SetState,
            Node::Array { data: None, .. } => Action::Array,
            Node::Dtype(_) => Action::Dtype,
            // Instance attributes of an OrderedDict (`_metadata`) or a Parameter: dropped.
            Node::Dict(_) | Node::Tensor(_) => Action::Ignore,
            other => {
                return Err(self.malformed(format!("BUILD on a {}", other.kind_name())));
            }
        };
        match action {
            Action::SetState => {
                if let Some(Node::Object { state: s, .. }) = self.arena.get_mut(obj) {
                    *s = Some(state);
                }
            }
            Action::Ignore => {}
            Action::Dtype => {
                let new = self.dtype_state(obj, state)?;
                if let Some(node) = self.arena.get_mut(obj) {
                    *node = Node::Dtype(new);
                }
            }
            Action::Array => {
                let items = self
                    .seq_of(state)
                    .ok_or_else(|| self.malformed("numpy array state must be a tuple"))?
                    .to_vec();
                let (shape, dtype, fortran, raw) = match items.as_slice() {
                    [_, shape, dtype, fortran, raw] | [shape, dtype, fortran, raw] => {
                        (*shape, *dtype, *fortran, *raw)
                    }
                    _ => return Err(self.malformed("numpy array state has the wrong length")),
                };
                let shape = self.usize_seq(shape, "numpy array shape")?;
                let Node::Dtype(dtype) = self.node(dtype)? else {
                    return Err(self.malformed("numpy array state without a dtype"));
                };
                let dtype = *dtype;
                let fortran = self
                    .bool_of(fortran)
                    .ok_or_else(|| self.malformed("numpy fortran flag must be a bool"))?;
                let data = if dtype.kind == DtypeKind::Object {
                    ArrayContent::Objects(
                        self.seq_of(raw)
                            .ok_or_else(|| self.malformed("object array data must be a list"))?
                            .to_vec(),
                    )
                } else {
                    ArrayContent::Raw(
                        self.bytes_of(raw)
                            .ok_or_else(|| self.malformed("numpy array data must be bytes"))?,
                    )
                };
                self.check_array(dtype, &shape, &data)?;
                if let Some(node) = self.arena.get_mut(obj) {
                    *node = Node::Array {
                        dtype: Some(dtype),
                        shape,
                        fortran,
                        data: Some(data),
                    };
                }
            }
        }
        Ok(())
    }

    /// Applies a numpy dtype state `(version, byteorder, subdescr, names, fields, elsize,
    /// alignment, flags[, metadata])` (or the version-less older layout).
    fn dtype_state(&self, obj: Id, state: Id) -> Result<Dtype> {
        let Node::Dtype(mut dtype) = *self.node(obj)? else {
            return Err(self.malformed("internal: BUILD dtype on a non-dtype"));
        };
        let items = self
            .seq_of(state)
            .ok_or_else(|| self.malformed("numpy dtype state must be a tuple"))?;
        let off = usize::from(matches!(
            items.first().map(|&i| self.node(i)),
            Some(Ok(Node::Int(_)))
        ));
        let get = |k: usize| items.get(off + k).copied();
        if let Some(order) = get(0).and_then(|i| self.str_of(i)) {
            let multi_byte = match dtype.kind {
                DtypeKind::Int | DtypeKind::UInt | DtypeKind::Float | DtypeKind::Complex => {
                    dtype.item_size > 1
                }
                DtypeKind::Unicode => true,
                _ => false,
            };
            if multi_byte {
                dtype.byte_order = match order {
                    "<" => ByteOrder::Little,
                    ">" => ByteOrder::Big,
                    "=" | "|" => ByteOrder::native(),
                    _ => return Err(self.malformed(format!("bad dtype byte order {order:?}"))),
                };
            }
        }
        if let Some(names) = get(2) {
            if !matches!(self.node(names)?, Node::None) {
                return Err(self.unsupported("structured numpy dtype".to_string()));
            }
        }
        if let Some(elsize) = get(4).and_then(|i| self.int_of(i)) {
            if elsize > 0
                && matches!(
                    dtype.kind,
                    DtypeKind::Unicode | DtypeKind::Bytes | DtypeKind::Void
                )
            {
                dtype.item_size = usize::try_from(elsize)
                    .map_err(|_| self.malformed("bad dtype element size"))?;
            }
        }
        Ok(dtype)
    }

    // ----- resolution -----------------------------------------------------------------------

    fn finish(&self, id: Id) -> Result<PickleValue> {
        let input = self.data.len() as u64;
        let node_limit = self
            .limits
            .max_output_nodes
            .unwrap_or_else(|| input.saturating_mul(16).saturating_add(1 << 20));
        let byte_limit = self
            .limits
            .max_output_bytes
            .unwrap_or_else(|| input.saturating_mul(4).saturating_add(1 << 26));
        let mut budget = Budget {
            nodes: node_limit,
            bytes: byte_limit,
            node_limit,
            byte_limit,
        };
        self.resolve(id, 0, &mut budget)
    }

    fn spend(&self, budget: &mut Budget, bytes: usize) -> Result<()> {
        if budget.nodes == 0 {
            return Err(ReadError::LimitExceeded {
                file: self.file.to_string(),
                what: "number of decoded values (shared memo references)".to_string(),
                value: budget.node_limit.saturating_add(1),
                limit: budget.node_limit,
            });
        }
        budget.nodes -= 1;
        let bytes = bytes as u64;
        if bytes > budget.bytes {
            return Err(ReadError::LimitExceeded {
                file: self.file.to_string(),
                what: "bytes of decoded strings and buffers".to_string(),
                value: budget
                    .byte_limit
                    .saturating_sub(budget.bytes)
                    .saturating_add(bytes),
                limit: budget.byte_limit,
            });
        }
        budget.bytes -= bytes;
        Ok(())
    }

    fn resolve(&self, id: Id, depth: usize, budget: &mut Budget) -> Result<PickleValue> {
        if depth > self.limits.max_depth {
            return Err(ReadError::LimitExceeded {
                file: self.file.to_string(),
                what: "nesting depth (or a self-referencing object)".to_string(),
                value: depth as u64,
                limit: self.limits.max_depth as u64,
            });
        }
        let node = self.node(id)?;
        let size = match node {
            Node::Str(s) => s.len(),
            Node::Bytes(b) => b.len(),
            Node::Array {
                data: Some(ArrayContent::Raw(b)),
                ..
            } => b.len(),
            _ => 0,
        };
        self.spend(budget, size)?;
        let seq = |items: &[Id], budget: &mut Budget| -> Result<Vec<PickleValue>> {
            items
                .iter()
                .map(|&i| self.resolve(i, depth + 1, budget))
                .collect()
        };
        Ok(match node {
            Node::None => PickleValue::None,
            Node::Bool(b) => PickleValue::Bool(*b),
            Node::Int(i) => PickleValue::Int(*i),
            Node::BigInt(b) => PickleValue::BigInt(b.clone()),
            Node::Float(f) => PickleValue::Float(*f),
            Node::Str(s) => PickleValue::Str(s.clone()),
            Node::Bytes(b) => PickleValue::Bytes(b.to_vec()),
            Node::List(items) => PickleValue::List(seq(items, budget)?),
            Node::Tuple(items) => PickleValue::Tuple(seq(items, budget)?),
            Node::Set(items) => PickleValue::Set(seq(items, budget)?),
            Node::Dict(d) => {
                let mut out = Vec::with_capacity(d.entries.len());
                for &(k, v) in &d.entries {
                    let k = self.resolve(k, depth + 1, budget)?;
                    let v = self.resolve(v, depth + 1, budget)?;
                    out.push((k, v));
                }
                PickleValue::Dict(out)
            }
            Node::Global(g) => PickleValue::Global(g.name.clone()),
            Node::Object { class, args, state } => PickleValue::Object {
                class: class.clone(),
                args: seq(args, budget)?,
                state: match state {
                    Some(s) => Some(Box::new(self.resolve(*s, depth + 1, budget)?)),
                    None => None,
                },
            },
            Node::Dtype(d) => PickleValue::NumpyDtype(*d),
            Node::Array {
                dtype: Some(dtype),
                shape,
                fortran,
                data: Some(data),
            } => {
                let data = match data {
                    ArrayContent::Raw(b) => ArrayData::Raw(b.to_vec()),
                    ArrayContent::Objects(items) => ArrayData::Objects(seq(items, budget)?),
                };
                PickleValue::NdArray(NdArray::new(
                    *dtype,
                    shape.clone(),
                    *fortran,
                    data,
                    self.file,
                )?)
            }
            Node::Array { .. } => {
                return Err(self.malformed(
                    "numpy array created by _reconstruct never received its state (BUILD)",
                ))
            }
            Node::Storage { storage, .. } => PickleValue::TorchStorage(storage.clone()),
            Node::Tensor(t) => PickleValue::TorchTensor(t.clone()),
        })
    }
}

/// Decodes a little-endian two's-complement integer (LONG1/LONG4).
fn decode_long(bytes: &[u8]) -> Node {
    let Some(&last) = bytes.last() else {
        return Node::Int(0);
    };
    let negative = last & 0x80 != 0;
    let fill = if negative { 0xFF } else { 0x00 };
    // Drop redundant sign bytes.
    let mut len = bytes.len();
    while len > 1 && bytes[len - 1] == fill && (bytes[len - 2] & 0x80 != 0) == negative {
        len -= 1;
    }
    if len <= 8 {
        let mut buf = [fill; 8];
        buf[..len].copy_from_slice(&bytes[..len]);
        Node::Int(i64::from_le_bytes(buf))
    } else {
        Node::BigInt(bytes[..len].to_vec())
    }
}

/// Longest decimal literal accepted by the text INT/LONG opcodes (Python's own default
/// limit for int/str conversion is 4300 digits).
const MAX_DECIMAL_DIGITS: usize = 4300;

/// Parses a decimal integer literal of any size (text INT/LONG opcodes).
fn decimal_to_long(text: &str) -> Option<Node> {
    if let Ok(v) = text.parse::<i64>() {
        return Some(Node::Int(v));
    }
    let (negative, digits) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    if digits.is_empty() || digits.len() > MAX_DECIMAL_DIGITS {
        return None;
    }
    // Little-endian base-256 magnitude.
    let mut mag: Vec<u8> = vec![0];
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let mut carry = u32::from(d - b'0');
        for byte in mag.iter_mut() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xFF) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.push((carry & 0xFF) as u8);
            carry >>= 8;
        }
    }
    // Room for the sign bit, then two's complement.
    mag.push(0);
    if negative {
        let mut carry = 1u16;
        for byte in mag.iter_mut() {
            let v = u16::from(!*byte) + carry;
            *byte = (v & 0xFF) as u8;
            carry = v >> 8;
        }
    }
    Some(decode_long(&mag))
}

/// Encodes text as latin-1; `None` if a character is above U+00FF.
fn latin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Decodes a Python 2 `repr` of a byte string (protocol 0 `STRING`): quotes plus escapes.
fn unquote_python_bytes(line: &[u8]) -> Option<Vec<u8>> {
    let (&q, rest) = line.split_first()?;
    if q != b'\'' && q != b'"' {
        return None;
    }
    let (&last, body) = rest.split_last()?;
    if last != q {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let e = *body.get(i)?;
        i += 1;
        match e {
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'\n' => {}
            b'x' => {
                let hex = body.get(i..i + 2)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 {
                    match body.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                            n += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xFF) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Decodes Python's `raw-unicode-escape` (protocol 0 `UNICODE`): `\uXXXX` and `\UXXXXXXXX`
/// escapes; every other byte is a latin-1 character.
fn raw_unicode_escape(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        if c == b'\\' {
            let width = match line.get(i + 1) {
                Some(b'u') => Some(4),
                Some(b'U') => Some(8),
                _ => None,
            };
            if let Some(w) = width {
                let hex = line.get(i + 2..i + 2 + w)?;
                let v = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(char::from_u32(v)?);
                i += 2 + w;
                continue;
            }
        }
        out.push(char::from(c));
        i += 1;
    }
    Some(out)
}
