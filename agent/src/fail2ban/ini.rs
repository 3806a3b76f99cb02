//! fail2ban's dialect of Python's configparser, read by hand.
//!
//! fail2ban files are INI files with extras this module owns: `[INCLUDES]`
//! `before`/`after` lists (relative to the including file), a `.local` file read
//! after each `.conf`, `%(name)s` interpolation that also knows `%(known/name)s`
//! (the value before a later file replaced it) and `%(section/name)s`. Keys are
//! lower-cased, values keep their continuation lines, `#`/`;` start full-line
//! comments and ` ;` an inline one. Every value remembers its file and line so
//! errors further on can name them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a fail2ban file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IniError {
    /// The file cannot be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's explanation.
        message: String,
    },
    /// A line that is neither a section, an option, a comment nor a continuation.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// `%(name)s` names nothing, or names itself.
    #[error("{path}:{line}: option {option:?}: {message}")]
    Interpolation {
        /// The file of the option.
        path: PathBuf,
        /// Its line.
        line: usize,
        /// The option.
        option: String,
        /// What is wrong.
        message: String,
    },
}

/// One option's value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// Raw text (continuation lines joined with `\n`), before interpolation.
    pub text: String,
    /// Index into [`Ini::files`].
    pub file: usize,
    /// 1-based line of the key.
    pub line: usize,
}

/// One section's options, by lower-case key.
pub type Section = BTreeMap<String, Value>;

/// The merged content of a file, its includes and its `.local`.
#[derive(Debug, Clone, Default)]
pub struct Ini {
    /// Files read, in the order they were merged.
    pub files: Vec<PathBuf>,
    defaults: Section,
    sections: BTreeMap<String, Section>,
    /// Per section, the values that a later file replaced (`%(known/x)s`).
    known: BTreeMap<String, Section>,
    /// Section names in first-seen order.
    order: Vec<String>,
}

/// How deep `%(x)s` may nest before it is called a loop.
const MAX_DEPTH: usize = 20;

impl Ini {
    /// Reads `path` with its `[INCLUDES]` and its `.local` (each included file's too).
    pub fn load(path: &Path) -> Result<Ini, IniError> {
        let mut ini = Ini::default();
        let mut files = Vec::new();
        includes(path, &mut Vec::new(), &mut files, true)?;
        for (p, parsed) in files {
            ini.merge(p, parsed);
        }
        Ok(ini)
    }

    /// Reads several files in turn, later ones overriding (jail.conf, jail.local,
    /// jail.d/*), each with its includes and `.local`.
    pub fn load_all(paths: &[PathBuf]) -> Result<Ini, IniError> {
        let mut ini = Ini::default();
        for path in paths {
            let mut files = Vec::new();
            // A .local that is on the list itself is read at its own turn.
            let auto_local = !paths.contains(&path.with_extension("local"));
            includes(path, &mut Vec::new(), &mut files, auto_local)?;
            for (p, parsed) in files {
                ini.merge(p, parsed);
            }
        }
        Ok(ini)
    }

    /// Parses text as one file (tests, inline definitions).
    pub fn from_text(name: &Path, text: &str) -> Result<Ini, IniError> {
        let mut ini = Ini::default();
        ini.merge(name.to_owned(), parse(name, text)?);
        Ok(ini)
    }

    fn merge(&mut self, path: PathBuf, parsed: Parsed) {
        let file = self.files.len();
        self.files.push(path);
        for (name, opts) in parsed.sections {
            let fixed = opts.into_iter().map(|(k, mut v)| {
                v.file = file;
                (k, v)
            });
            if name == "DEFAULT" {
                self.defaults.extend(fixed);
                continue;
            }
            if !self.sections.contains_key(&name) {
                self.order.push(name.clone());
            }
            let sec = self.sections.entry(name.clone()).or_default();
            for (k, v) in fixed {
                if let Some(old) = sec.insert(k.clone(), v) {
                    self.known.entry(name.clone()).or_default().insert(k, old);
                }
            }
        }
    }

    /// Section names (not DEFAULT) in the order first seen.
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// Whether the section exists.
    pub fn has_section(&self, name: &str) -> bool {
        self.sections.contains_key(name)
    }

    /// The section's own options, without DEFAULT.
    pub fn own(&self, section: &str) -> Option<&Section> {
        self.sections.get(section)
    }

    /// The DEFAULT section.
    pub fn defaults(&self) -> &Section {
        &self.defaults
    }

    /// The raw value of `key` in `section`, falling back on DEFAULT.
    pub fn raw(&self, section: &str, key: &str) -> Option<&Value> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .or_else(|| self.defaults.get(key))
    }

    /// The value of `key` in `section` (or DEFAULT), `%(x)s` interpolated, with
    /// `vars` taking precedence over both (configparser's `vars`).
    pub fn get(
        &self,
        section: &str,
        key: &str,
        vars: &BTreeMap<String, String>,
    ) -> Result<Option<String>, IniError> {
        if let Some(v) = vars.get(key) {
            return self.interpolate(section, key, v, None, vars, 0).map(Some);
        }
        let Some((ctx, v)) = self.lookup(section, key) else {
            return Ok(None);
        };
        let bare = key.rsplit('/').next().unwrap_or(key);
        self.interpolate(ctx, bare, &v.text, Some(v), vars, 0)
            .map(Some)
    }

    /// Where `key` of `section` was written, as `file:line`.
    pub fn place(&self, section: &str, key: &str) -> Option<(PathBuf, usize)> {
        self.lookup(section, key)
            .map(|(_, v)| (self.files[v.file].clone(), v.line))
    }

    /// `get_ex`: `sec/opt` and `known/opt` forms, else the plain option; with the
    /// section whose options its own `%(x)s` references see.
    fn lookup<'a>(&'a self, section: &'a str, key: &str) -> Option<(&'a str, &'a Value)> {
        if let Some((sec, opt)) = key.split_once('/') {
            let found = match sec.to_ascii_lowercase().as_str() {
                "known" => self
                    .known
                    .get(section)
                    .and_then(|s| s.get(opt))
                    .or_else(|| self.defaults.get(opt))
                    .map(|v| (section, v)),
                "default" => self.defaults.get(opt).map(|v| (section, v)),
                _ => self
                    .sections
                    .get_key_value(sec)
                    .and_then(|(name, s)| s.get(opt).map(|v| (name.as_str(), v)))
                    .or_else(|| self.defaults.get(opt).map(|v| (section, v))),
            };
            if found.is_some() {
                return found;
            }
        }
        self.raw(section, key).map(|v| (section, v))
    }

    fn interpolate(
        &self,
        section: &str,
        key: &str,
        text: &str,
        at: Option<&Value>,
        vars: &BTreeMap<String, String>,
        depth: usize,
    ) -> Result<String, IniError> {
        let err = |message: String| {
            let (path, line) = at.map_or((PathBuf::new(), 0), |v| {
                (self.files.get(v.file).cloned().unwrap_or_default(), v.line)
            });
            IniError::Interpolation {
                path,
                line,
                option: key.to_owned(),
                message,
            }
        };
        if depth > MAX_DEPTH {
            return Err(err("%(...)s references nest too deep (a loop?)".into()));
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            if let Some(r) = rest.strip_prefix("%%") {
                out.push('%');
                rest = r;
            } else if let Some(r) = rest.strip_prefix("%(") {
                let Some(end) = r.find(")s") else {
                    return Err(err(format!("unterminated %( in {text:?}")));
                };
                let name = r[..end].to_ascii_lowercase();
                rest = &r[end + 2..];
                // A reference to the option being defined means its earlier value.
                let (ctx, val, vat) = if let Some(v) = vars.get(&name).filter(|_| name != key) {
                    (section, v.clone(), None)
                } else {
                    let found = if name == key {
                        self.lookup(section, &format!("known/{name}"))
                            .filter(|(_, v)| at.is_none_or(|a| *a != **v))
                    } else {
                        self.lookup(section, &name)
                    };
                    match found {
                        Some((ctx, v)) => (ctx, v.text.clone(), Some(v)),
                        None => {
                            return Err(err(format!("%({name})s names no option")));
                        }
                    }
                };
                let sub_key = name.rsplit('/').next().unwrap_or(&name).to_owned();
                out.push_str(&self.interpolate(
                    ctx,
                    &sub_key,
                    &val,
                    vat.or(at),
                    vars,
                    depth + 1,
                )?);
            } else {
                // A lone percent sign: configparser refuses it, fail2ban files use
                // it literally in datepatterns only through %%; keep it.
                out.push('%');
                rest = &rest[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// One parsed file: sections in order, each with its options.
#[derive(Debug, Default)]
struct Parsed {
    sections: Vec<(String, Section)>,
}

impl Parsed {
    fn get(&self, section: &str, key: &str) -> Option<&Value> {
        self.sections
            .iter()
            .rev()
            .find(|(n, _)| n == section)
            .and_then(|(_, s)| s.get(key))
    }
}

fn read(path: &Path) -> Result<String, IniError> {
    let bytes = std::fs::read(path).map_err(|e| IniError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The files `path` stands for, in merge order: its `before` includes, itself,
/// its `after` includes, then the same for its `.local` if one exists.
fn includes(
    path: &Path,
    seen: &mut Vec<PathBuf>,
    out: &mut Vec<(PathBuf, Parsed)>,
    auto_local: bool,
) -> Result<(), IniError> {
    let mut candidates = vec![path.to_owned()];
    if auto_local && path.extension().is_some_and(|e| e == "conf") {
        let local = path.with_extension("local");
        if local.exists() {
            candidates.push(local);
        }
    }
    for (i, file) in candidates.into_iter().enumerate() {
        if seen.contains(&file) {
            continue;
        }
        // A missing .conf with a .local present is fine (custom filters).
        if i == 0 && !file.exists() && path.with_extension("local").exists() {
            continue;
        }
        let parsed = parse(&file, &read(&file)?)?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let list = |key: &str| -> Vec<PathBuf> {
            parsed
                .get("INCLUDES", key)
                .map(|v| {
                    v.text
                        .split_whitespace()
                        .map(|n| dir.join(n))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let (before, after) = (list("before"), list("after"));
        seen.push(file.clone());
        for b in before {
            if b.exists() || b.with_extension("local").exists() {
                includes(&b, seen, out, true)?;
            }
        }
        out.push((file.clone(), parsed));
        for a in after {
            if a.exists() || a.with_extension("local").exists() {
                includes(&a, seen, out, true)?;
            }
        }
        seen.pop();
    }
    Ok(())
}

fn is_comment(trimmed: &str) -> bool {
    trimmed.starts_with('#') || trimmed.starts_with(';')
}

/// Cuts an inline comment: `;` after whitespace.
fn cut_inline(s: &str) -> &str {
    let b = s.as_bytes();
    for i in 1..b.len() {
        if b[i] == b';' && b[i - 1].is_ascii_whitespace() {
            return &s[..i];
        }
    }
    s
}

fn parse(path: &Path, text: &str) -> Result<Parsed, IniError> {
    let mut out = Parsed::default();
    // (section index, key) of the option continuation lines extend.
    let mut current: Option<String> = None;
    let mut blank_run = 0usize;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            blank_run += 1;
            continue;
        }
        if is_comment(trimmed) {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if indented && let Some(key) = &current {
            let (_, sec) = out
                .sections
                .last_mut()
                .expect("an option lives in a section");
            let v = sec.get_mut(key).expect("current key exists");
            for _ in 0..blank_run {
                v.text.push('\n');
            }
            if !v.text.is_empty() || blank_run > 0 {
                v.text.push('\n');
            }
            v.text.push_str(cut_inline(trimmed).trim_end());
            blank_run = 0;
            continue;
        }
        blank_run = 0;
        if trimmed.starts_with('[') {
            let Some(end) = trimmed.find(']') else {
                return Err(IniError::Syntax {
                    path: path.to_owned(),
                    line: line_no,
                    message: format!("section header without ']': {trimmed:?}"),
                });
            };
            out.sections
                .push((trimmed[1..end].to_owned(), Section::new()));
            current = None;
            continue;
        }
        let Some(cut) = trimmed.find(['=', ':']) else {
            return Err(IniError::Syntax {
                path: path.to_owned(),
                line: line_no,
                message: format!("neither 'key = value' nor a [section]: {trimmed:?}"),
            });
        };
        let Some((_, sec)) = out.sections.last_mut() else {
            return Err(IniError::Syntax {
                path: path.to_owned(),
                line: line_no,
                message: "option before any [section]".into(),
            });
        };
        let key = trimmed[..cut].trim().to_ascii_lowercase();
        let value = cut_inline(&trimmed[cut + 1..]).trim().to_owned();
        sec.insert(
            key.clone(),
            Value {
                text: value,
                file: 0,
                line: line_no,
            },
        );
        current = Some(key);
    }
    // Trailing blank lines are never part of a value.
    for (_, sec) in &mut out.sections {
        for v in sec.values_mut() {
            let t = v.text.trim_end().len();
            v.text.truncate(t);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn multi_line_values_comments_and_case() {
        let ini = Ini::from_text(
            Path::new("t.conf"),
            "# head\n[Definition]\nFailRegex = ^one <HOST>$\n            ^two <HOST>$ ; note\n  # a comment inside\n\n            ^three <HOST>$\nignoreregex =\nx: y;z\n",
        )
        .unwrap();
        let e = BTreeMap::new();
        assert_eq!(
            ini.get("Definition", "failregex", &e).unwrap().unwrap(),
            "^one <HOST>$\n^two <HOST>$\n\n^three <HOST>$"
        );
        assert_eq!(
            ini.get("Definition", "ignoreregex", &e).unwrap().unwrap(),
            ""
        );
        assert_eq!(ini.get("Definition", "x", &e).unwrap().unwrap(), "y;z");
        assert_eq!(ini.place("Definition", "failregex").unwrap().1, 3);
    }

    #[test]
    fn interpolation_vars_default_and_known() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("common.conf"),
            "[DEFAULT]\n_daemon = \\S*\n__prefix = %(_daemon)s\\[\\d+\\]:\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("f.conf"),
            "[INCLUDES]\nbefore = common.conf\nafter = f-after.conf\n[DEFAULT]\n_daemon = food\n[Definition]\nre = ^%(__prefix)s x %(mode)s\nmode = normal\nlist = a\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("f.local"),
            "[Definition]\nlist = %(known/list)s b\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("f-after.conf"), "[Definition]\nlate = 1\n").unwrap();
        let ini = Ini::load(&dir.path().join("f.conf")).unwrap();
        let e = BTreeMap::new();
        assert_eq!(
            ini.get("Definition", "re", &e).unwrap().unwrap(),
            "^food\\[\\d+\\]: x normal"
        );
        assert_eq!(
            ini.get("Definition", "re", &vars(&[("mode", "aggressive")]))
                .unwrap()
                .unwrap(),
            "^food\\[\\d+\\]: x aggressive"
        );
        assert_eq!(ini.get("Definition", "list", &e).unwrap().unwrap(), "a b");
        assert_eq!(ini.get("Definition", "late", &e).unwrap().unwrap(), "1");
        assert_eq!(ini.files.len(), 4);
    }

    #[test]
    fn unknown_reference_names_file_and_line() {
        let ini = Ini::from_text(Path::new("x.conf"), "[D]\n\na = %(nope)s\n").unwrap();
        let e = ini.get("D", "a", &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.conf:3: option \"a\": %(nope)s names no option"
        );
    }

    #[test]
    fn garbage_line_is_an_error() {
        let e = Ini::from_text(Path::new("x.conf"), "[D]\nno delimiter here\n").unwrap_err();
        assert!(e.to_string().starts_with("x.conf:2:"), "{e}");
    }
}
