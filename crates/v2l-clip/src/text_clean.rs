//! The text cleaning CLIP applies before BPE: an ftfy-style fix, Python's `html.unescape`
//! twice, whitespace collapsing and Python's `str.lower`.
//!
//! Everything here re-implements the behaviour of the Python functions named in the docs from
//! their specification and observed outputs; `tests/it/tokenizer.rs` checks it against outputs
//! recorded with ftfy 6.3.1 and CPython 3.11 (`scripts/gen_clip_tokenizer_fixtures.py`).

mod html_entities;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use html_entities::HTML5;

/// Cleans `text` the way OpenAI CLIP's `simple_tokenizer` does before pre-tokenisation:
/// `whitespace_clean(basic_clean(text)).lower()`, where `basic_clean` is
/// `ftfy.fix_text` → `html.unescape` → `html.unescape` → `str.strip`, and `whitespace_clean`
/// replaces every run of Unicode whitespace with one space and strips the ends.
///
/// # The ftfy part
///
/// `ftfy.fix_text` (ftfy 6, default configuration) is reproduced except for its mojibake
/// repair. Like ftfy, the text is fixed line by line (segments end after each `\n`, and are at
/// most 1,000,000 code points long); within a segment these fixes run in ftfy's order, repeated
/// until nothing changes:
///
/// 1. HTML entities ending in `;` (`&amp;`, `&eacute;`, `&#233;`, `&#xE9;`, and the all-caps
///    forms ftfy accepts such as `&EACUTE;`), but not once a segment containing `<` has been
///    seen: from then on ftfy leaves entities to the later `html.unescape`;
/// 2. C1 control characters U+0080..U+009F read as Windows-1252 (`\u{93}` → `“`);
/// 3. Latin ligatures (`ﬁ` → `fi`, `Ĳ` → `IJ`, `ǅ` → `Dž`, …);
/// 4. fullwidth and halfwidth forms U+FF01..U+FFEF to their NFKC form, U+3000 to a space;
/// 5. curly quotes to `'` and `"` (U+02BC, U+2018..U+201B; U+201C..U+201F);
/// 6. line breaks (`\r\n`, `\r`, U+2028, U+2029, U+0085) to `\n`;
/// 7. ANSI terminal escapes (`ESC [ digits/; letter`) removed;
/// 8. control characters removed (U+0000..U+0008, U+000B, U+000E..U+001F, U+007F,
///    U+206A..U+206F, U+FEFF, U+FFF9..U+FFFC);
/// 9. NFC normalisation.
///
/// ftfy's `fix_surrogates` has nothing to do: a Rust `&str` cannot hold surrogate code points.
///
/// **Not implemented: `fix_encoding` (mojibake repair).** ftfy re-decodes text that its
/// "badness" heuristic judges to be UTF-8 misread as Latin-1, Windows-125x, MacRoman or CP437
/// (`cafÃ©` → `café`, `doesnÃ¢â‚¬â„¢t` → `doesn't`, `â€œ` → `"`); this function leaves such text
/// as it is. Pure ASCII input is never affected, and neither is text whose non-ASCII
/// characters are ordinary letters, symbols and emoji; inputs that differ are those containing
/// sequences typical of mojibake: a Latin-1 / Windows-1252 letter such as `Ã`, `Â`, `â`, `Ð`
/// followed by another symbol from those code pages (`©`, `€`, `™`, `œ`, `\u{a0}`…), or C1 control
/// characters next to such letters. None of the 81,152 LLaMA-2 and SmolLM2 vocabulary pieces
/// is affected (checked by the tests).
///
/// # Unicode versions
///
/// Python's side mixes Unicode versions (CPython 3.11's `unicodedata` and `str.lower` are
/// Unicode 14.0, the `regex` module 2026.11 is 17.0); here normalisation, case mapping and the
/// character classes come from `unicode-normalization`, the standard library and the `regex`
/// crate (Rust 1.95's standard library is Unicode 17.0, `regex` 1.13 is 16.0). For every code
/// point assigned in Unicode 14 the tests find the same lower-casing, whitespace, `\p{L}` and
/// `\p{N}` as Python; the differences are limited to characters assigned later: 55 capitals
/// that Rust lower-cases and CPython 3.11 does not (U+1C89, U+A7CB..U+A7DC, Garay
/// U+10D50..U+10D65, Beria Erfe U+16EA0..U+16EB8), and letters and digits new in Unicode 17
/// (CJK Extension J and others) that the `regex` crate does not yet class as `\p{L}` / `\p{N}`
/// (they then pre-tokenise as punctuation runs). Which result is "the reference" for those
/// depends on the Python version anyway.
pub fn clean_text(text: &str) -> String {
    let fixed = fix_text(text);
    let once = html_unescape(&fixed);
    let twice = html_unescape(&once);
    let collapsed = collapse_whitespace(py_strip(&twice));
    collapsed.to_lowercase()
}

/// Python's `str.isspace`: the Unicode `White_Space` characters plus U+001C..U+001F.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` without arguments.
fn py_strip(text: &str) -> &str {
    text.trim_matches(py_isspace)
}

/// `re.sub(r"\s+", " ", text).strip()` with the `regex` module's `\s` (= `White_Space`).
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
                in_space = true;
            }
        } else {
            out.push(c);
            in_space = false;
        }
    }
    let stripped = py_strip(&out);
    if stripped.len() == out.len() {
        out
    } else {
        stripped.to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// ftfy.fix_text without fix_encoding
// ---------------------------------------------------------------------------------------------

/// Longest segment ftfy fixes at once (`max_decode_length`), in code points.
const MAX_SEGMENT_CHARS: usize = 1_000_000;

/// `ftfy.fix_text(text)` with `fix_encoding=False` (see [`clean_text`]).
fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape = true;
    let mut rest = text;
    while !rest.is_empty() {
        let end = segment_end(rest);
        let (segment, tail) = rest.split_at(end);
        // ftfy turns HTML unescaping off for this and every later segment.
        if unescape && segment.contains('<') {
            unescape = false;
        }
        fix_segment(segment, unescape, &mut out);
        rest = tail;
    }
    out
}

/// Byte length of the first segment of `text`: through its first `\n`, at most
/// [`MAX_SEGMENT_CHARS`] code points.
fn segment_end(text: &str) -> usize {
    for (n, (i, c)) in text.char_indices().enumerate() {
        if n == MAX_SEGMENT_CHARS {
            return i;
        }
        if c == '\n' {
            return i + 1;
        }
    }
    text.len()
}

/// One ftfy pass over a segment, repeated to a fixed point, appended to `out`.
fn fix_segment(segment: &str, unescape: bool, out: &mut String) {
    if !needs_fixing(segment, unescape) {
        out.push_str(segment);
        return;
    }
    let mut text = segment.to_owned();
    loop {
        let mut next = text.clone();
        if unescape {
            next = apply(next, ftfy_unescape_html);
        }
        next = apply(next, fix_c1_controls);
        next = apply(next, fix_latin_ligatures);
        next = apply(next, fix_character_width);
        next = apply(next, uncurl_quotes);
        next = apply(next, fix_line_breaks);
        next = apply(next, remove_terminal_escapes);
        next = apply(next, remove_control_chars);
        next = apply(next, nfc);
        if next == text {
            out.push_str(&text);
            return;
        }
        text = next;
    }
}

/// Runs one fixer, keeping the allocation when it changes nothing.
fn apply(text: String, fixer: fn(&str) -> Cow<'_, str>) -> String {
    match fixer(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(fixed) => fixed,
    }
}

/// Whether any fixer could change `text` (a fast path for clean text).
fn needs_fixing(text: &str, unescape: bool) -> bool {
    let triggers = text.chars().any(|c| {
        (unescape && c == '&')
            || c == '\r'
            || is_removed_control(c)
            || (!c.is_ascii()
                && (('\u{80}'..='\u{9f}').contains(&c)
                    || ligature(c).is_some()
                    || c == '\u{3000}'
                    || ('\u{ff01}'..='\u{ffef}').contains(&c)
                    || quote(c).is_some()
                    || matches!(c, '\u{2028}' | '\u{2029}')))
    });
    triggers || is_nfc_quick(text.chars()) != IsNormalized::Yes
}

/// Maps each char through `f` (`None` = keep), borrowing when nothing maps.
fn map_chars(text: &str, f: impl Fn(char) -> Option<Cow<'static, str>>) -> Cow<'_, str> {
    let Some(first) = text.char_indices().find(|&(_, c)| f(c).is_some()) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first.0]);
    for c in text[first.0..].chars() {
        match f(c) {
            Some(s) => out.push_str(&s),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Windows-1252 for bytes 0x80..0x9F; the five bytes it leaves undefined keep their C1 code
/// point (ftfy's "sloppy" codec).
const CP1252_C1: [char; 32] = [
    '\u{20ac}', '\u{81}', '\u{201a}', '\u{192}', '\u{201e}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2c6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8d}', '\u{17d}', '\u{8f}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2dc}', '\u{2122}', '\u{161}', '\u{203a}', '\u{153}', '\u{9d}', '\u{17e}', '\u{178}',
];

/// The Windows-1252 reading of a C1 control character, if `c` is one.
fn cp1252_c1(c: char) -> Option<char> {
    let i = (c as usize).checked_sub(0x80)?;
    CP1252_C1.get(i).copied()
}

fn fix_c1_controls(text: &str) -> Cow<'_, str> {
    map_chars(text, |c| {
        let fixed = cp1252_c1(c)?;
        (fixed != c).then(|| Cow::Owned(fixed.to_string()))
    })
}

/// ftfy's Latin ligatures and legacy digraphs.
fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{132}' => "IJ",
        '\u{133}' => "ij",
        '\u{149}' => "\u{2bc}n",
        '\u{1f1}' => "DZ",
        '\u{1f2}' => "Dz",
        '\u{1f3}' => "dz",
        '\u{1c4}' => "D\u{17d}",
        '\u{1c5}' => "D\u{17e}",
        '\u{1c6}' => "d\u{17e}",
        '\u{1c7}' => "LJ",
        '\u{1c8}' => "Lj",
        '\u{1c9}' => "lj",
        '\u{1ca}' => "NJ",
        '\u{1cb}' => "Nj",
        '\u{1cc}' => "nj",
        '\u{fb00}' => "ff",
        '\u{fb01}' => "fi",
        '\u{fb02}' => "fl",
        '\u{fb03}' => "ffi",
        '\u{fb04}' => "ffl",
        '\u{fb05}' => "\u{17f}t",
        '\u{fb06}' => "st",
        _ => return None,
    })
}

fn fix_latin_ligatures(text: &str) -> Cow<'_, str> {
    map_chars(text, |c| ligature(c).map(Cow::Borrowed))
}

fn fix_character_width(text: &str) -> Cow<'_, str> {
    map_chars(text, |c| {
        if c == '\u{3000}' {
            return Some(Cow::Borrowed(" "));
        }
        if !('\u{ff01}'..='\u{ffef}').contains(&c) {
            return None;
        }
        let folded: String = std::iter::once(c).nfkc().collect();
        let mut chars = folded.chars();
        let unchanged = chars.next() == Some(c) && chars.next().is_none();
        (!unchanged).then_some(Cow::Owned(folded))
    })
}

/// The straight quote for a curly one.
fn quote(c: char) -> Option<&'static str> {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => Some("'"),
        '\u{201c}'..='\u{201f}' => Some("\""),
        _ => None,
    }
}

fn uncurl_quotes(text: &str) -> Cow<'_, str> {
    map_chars(text, |c| quote(c).map(Cow::Borrowed))
}

fn fix_line_breaks(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| matches!(c, '\r' | '\u{2028}' | '\u{2029}' | '\u{85}'))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // `\r\n` becomes the `\n` that follows.
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => out.push('\n'),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `ESC [`, digits (Unicode decimal digits, as Python's `\d`) or `;`, then an ASCII letter.
static ANSI_ESCAPE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\x1b\[(?:\d|;)*[a-zA-Z]").ok());

fn remove_terminal_escapes(text: &str) -> Cow<'_, str> {
    match ANSI_ESCAPE.as_ref() {
        Some(re) if text.contains('\u{1b}') => re.replace_all(text, ""),
        _ => Cow::Borrowed(text),
    }
}

/// The control characters ftfy's `remove_control_chars` deletes.
fn is_removed_control(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}'
        | '\u{b}'
        | '\u{e}'..='\u{1f}'
        | '\u{7f}'
        | '\u{206a}'..='\u{206f}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffc}')
}

fn remove_control_chars(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_removed_control) {
        Cow::Owned(text.chars().filter(|&c| !is_removed_control(c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

fn nfc(text: &str) -> Cow<'_, str> {
    if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        return Cow::Borrowed(text);
    }
    let normalized: String = text.nfc().collect();
    if normalized == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(normalized)
    }
}

// ---------------------------------------------------------------------------------------------
// HTML character references
// ---------------------------------------------------------------------------------------------

/// The replacement text of an HTML5 named reference (`name` without `&`, with its `;` if any).
fn html5_entity(name: &str) -> Option<&'static str> {
    HTML5
        .binary_search_by(|&(key, _)| key.cmp(name))
        .ok()
        .and_then(|i| HTML5.get(i))
        .map(|&(_, value)| value)
}

/// The all-caps entity names ftfy decodes besides the HTML5 ones: for every all-lowercase
/// name ending in `;` whose upper-case spelling `html.unescape` leaves alone, that spelling
/// maps to the upper-cased replacement (`&EACUTE;` → `É`).
static FTFY_UPPER: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for &(name, value) in HTML5 {
        if !name.ends_with(';') || name.bytes().any(|b| b.is_ascii_uppercase()) {
            continue;
        }
        let upper = name.to_ascii_uppercase();
        let entity = format!("&{upper}");
        if html_unescape(&entity) == entity {
            map.insert(upper, value.to_uppercase());
        }
    }
    map
});

/// ftfy's `unescape_html`: replaces `&name;`, `&#digits;` and `&#xhex;` (1 to 24 ASCII
/// alphanumerics before the `;`) that it can decode; unlike `html.unescape` it never decodes
/// references without a `;`.
fn ftfy_unescape_html(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while let Some(off) = text.get(i..).and_then(|rest| rest.find('&')) {
        let amp = i + off;
        let body_start = if bytes.get(amp + 1) == Some(&b'#') {
            amp + 2
        } else {
            amp + 1
        };
        let run = bytes.get(body_start..).map_or(0, |b| {
            b.iter().take_while(|b| b.is_ascii_alphanumeric()).count()
        });
        let end = body_start + run; // index of the expected ';'
        if (1..=24).contains(&run) && bytes.get(end) == Some(&b';') {
            let entity = &text[amp..=end];
            if let Some(replacement) = ftfy_entity(entity) {
                out.push_str(&text[copied..amp]);
                out.push_str(&replacement);
                copied = end + 1;
            }
            i = end + 1;
        } else {
            i = amp + 1;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// The replacement ftfy makes for one `&...;` match, if any.
fn ftfy_entity(entity: &str) -> Option<Cow<'static, str>> {
    let name = entity.get(1..)?;
    if let Some(value) = html5_entity(name) {
        return Some(Cow::Borrowed(value));
    }
    if let Some(value) = FTFY_UPPER.get(name) {
        return Some(Cow::Owned(value.clone()));
    }
    if name.starts_with('#') {
        // Only a reference `html.unescape` decodes whole (its `;` consumed, and not itself
        // producing a `;`).
        let decoded = html_unescape(entity);
        if !decoded.contains(';') {
            return Some(Cow::Owned(decoded.into_owned()));
        }
    }
    None
}

/// Python's `html.unescape`: named references of the HTML5 table (longest prefix for the
/// legacy names without `;`), decimal and hexadecimal references with the HTML5 rules for
/// invalid code points.
fn html_unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while let Some(off) = text.get(i..).and_then(|rest| rest.find('&')) {
        let amp = i + off;
        let after = text.get(amp + 1..).unwrap_or("");
        match charref(after) {
            Some((consumed, replacement)) => {
                out.push_str(&text[copied..amp]);
                out.push_str(&replacement);
                copied = amp + 1 + consumed;
                i = copied;
            }
            None => i = amp + 1,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Parses the reference after a `&`: the bytes it consumes and its replacement.
fn charref(after: &str) -> Option<(usize, Cow<'static, str>)> {
    let bytes = after.as_bytes();
    if bytes.first() == Some(&b'#') {
        let (digits_start, radix) = match bytes.get(1) {
            Some(b'x' | b'X') => (2, 16),
            _ => (1, 10),
        };
        let digits = bytes.get(digits_start..).map_or(0, |b| {
            b.iter()
                .take_while(|b| {
                    if radix == 16 {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
                .count()
        });
        if digits == 0 {
            return None;
        }
        let mut value: u64 = 0;
        for &b in &bytes[digits_start..digits_start + digits] {
            let d = char::from(b).to_digit(radix).map_or(0, u64::from);
            value = value.saturating_mul(u64::from(radix)).saturating_add(d);
        }
        let mut consumed = digits_start + digits;
        if bytes.get(consumed) == Some(&b';') {
            consumed += 1;
        }
        return Some((consumed, Cow::Owned(numeric_charref(value))));
    }
    // A named reference: 1 to 32 characters other than tab, LF, FF, space, `<`, `&`, `#`, `;`,
    // then an optional `;`.
    let mut name_end = 0;
    let mut count = 0;
    for (i, c) in after.char_indices() {
        if count == 32 || matches!(c, '\t' | '\n' | '\u{c}' | ' ' | '<' | '&' | '#' | ';') {
            break;
        }
        name_end = i + c.len_utf8();
        count += 1;
    }
    if count == 0 {
        return None;
    }
    let full_end = if bytes.get(name_end) == Some(&b';') {
        name_end + 1
    } else {
        name_end
    };
    let full = &after[..full_end];
    if let Some(value) = html5_entity(full) {
        return Some((full_end, Cow::Borrowed(value)));
    }
    // The longest prefix of at least two characters that is a (legacy, `;`-less) name; the
    // rest stays as text.
    let ends: Vec<usize> = full.char_indices().map(|(i, _)| i).skip(2).collect();
    for &end in ends.iter().rev() {
        if let Some(value) = html5_entity(&full[..end]) {
            return Some((end, Cow::Borrowed(value)));
        }
    }
    None
}

/// The text of a numeric character reference, as Python's `html.unescape` decodes it.
fn numeric_charref(value: u64) -> String {
    match value {
        0 => return '\u{fffd}'.to_string(),
        0x0d => return '\r'.to_string(),
        0x80..=0x9f => {
            return u32::try_from(value)
                .ok()
                .and_then(char::from_u32)
                .and_then(cp1252_c1)
                .unwrap_or('\u{fffd}')
                .to_string()
        }
        _ => {}
    }
    let Some(c) = u32::try_from(value).ok().and_then(char::from_u32) else {
        // Surrogates and values beyond U+10FFFF.
        return '\u{fffd}'.to_string();
    };
    let invalid = matches!(value, 0x1..=0x8 | 0xb | 0xe..=0x1f | 0x7f..=0x9f | 0xfdd0..=0xfdef)
        || value & 0xfffe == 0xfffe;
    if invalid {
        String::new()
    } else {
        c.to_string()
    }
}
