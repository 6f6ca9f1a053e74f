//! Rust source read as module trees, for the layout tests ([`crate::layers`],
//! [`crate::test_layout`]): which file is which module of which crate, and which modules each
//! module names. The source is lexed by `proc-macro2`; `mod` declarations, `use` trees and paths
//! are then read from the tokens (not from a syntax tree: paths inside macro bodies, `$crate`
//! ones included, count too).
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    /// `::`
    Sep,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

impl Token {
    fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(s) => Some(s),
            _ => None,
        }
    }
    fn is(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }
}

/// The tokens of `src` that matter here, lexed by `proc-macro2` (the lexer the Rust macro
/// ecosystem uses): identifiers (with `$crate`, raw identifiers without their `r#`), string
/// literals, `::` and single punctuation, groups flattened to their delimiters; comments (doc
/// comments are `#[doc = "…"]` attributes, read as such), numbers and characters are dropped,
/// a lifetime's quote is dropped and its name kept as an identifier.
fn lex(src: &str) -> Result<Vec<Token>, String> {
    use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
    fn flatten(stream: TokenStream, out: &mut Vec<Token>) {
        let mut trees = stream.into_iter().peekable();
        while let Some(tree) = trees.next() {
            let line = tree.span().start().line;
            let tok = match tree {
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Brace => (Some('{'), Some('}')),
                        Delimiter::Bracket => (Some('['), Some(']')),
                        Delimiter::Parenthesis => (Some('('), Some(')')),
                        Delimiter::None => (None, None),
                    };
                    if let Some(c) = open {
                        out.push(Token {
                            tok: Tok::Punct(c),
                            line,
                        });
                    }
                    flatten(g.stream(), out);
                    if let Some(c) = close {
                        out.push(Token {
                            tok: Tok::Punct(c),
                            line: g.span_close().start().line,
                        });
                    }
                    continue;
                }
                TokenTree::Ident(id) => {
                    let word = id.to_string();
                    Tok::Ident(word.strip_prefix("r#").unwrap_or(&word).to_string())
                }
                TokenTree::Punct(p) => {
                    let c = p.as_char();
                    if c == ':'
                        && p.spacing() == Spacing::Joint
                        && matches!(trees.peek(), Some(TokenTree::Punct(q)) if q.as_char() == ':')
                    {
                        trees.next();
                        Tok::Sep
                    } else if c == '$' && matches!(trees.peek(), Some(TokenTree::Ident(_))) {
                        let Some(TokenTree::Ident(id)) = trees.next() else {
                            unreachable!()
                        };
                        Tok::Ident(format!("${id}"))
                    } else if c == '\'' {
                        continue; // a lifetime or label: its name follows as an identifier
                    } else {
                        Tok::Punct(c)
                    }
                }
                TokenTree::Literal(lit) => match string_literal(&lit.to_string()) {
                    Some(text) => Tok::Str(text),
                    None => continue,
                },
            };
            out.push(Token { tok, line });
        }
    }
    let stream: TokenStream = src.parse().map_err(|e| format!("{e}"))?;
    let mut out = vec![];
    flatten(stream, &mut out);
    Ok(out)
}

/// The text of a string literal as written (`"…"` or `r#"…"#`, escapes left as they are), or
/// `None` for any other literal.
fn string_literal(lit: &str) -> Option<String> {
    if let Some(body) = lit.strip_prefix('"') {
        return body.strip_suffix('"').map(str::to_string);
    }
    let raw = lit.strip_prefix('r')?;
    let hashes = raw.len() - raw.trim_start_matches('#').len();
    let body = raw[hashes..].strip_prefix('"')?;
    body.strip_suffix(&format!("\"{}", "#".repeat(hashes)))
        .map(str::to_string)
}

/// One leaf of a `use` tree.
#[derive(Debug, Clone)]
struct Use {
    path: Vec<String>,
    /// The name it binds (`None` for a glob).
    name: Option<String>,
    /// `pub`, `pub(crate)`, …: a re-export.
    public: bool,
    line: usize,
}

/// One module: a file, or an inline `mod x { … }` in one.
#[derive(Debug, Default)]
pub struct Module {
    /// The file it is in.
    pub file: PathBuf,
    children: BTreeMap<String, String>,
    items: BTreeSet<String>,
    uses: Vec<Use>,
    /// Paths in code (first segment not after `::`), with their lines.
    paths: Vec<(Vec<String>, usize)>,
}

/// One crate (a library or binary target) as its modules, named `crate`, `crate::a`, ….
#[derive(Debug, Default)]
pub struct Crate {
    /// `package` or `package (bin name)`.
    pub name: String,
    pub modules: BTreeMap<String, Module>,
    /// `mod x;` declarations whose file was not found.
    pub missing: Vec<String>,
}

/// A module naming another: `from` → `to`, at `file:line`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub at: String,
}

fn parent(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or_else(|| module.to_string(), |(p, _)| p.to_string())
}

impl Crate {
    /// Reads the crate whose root file is `root`, following its `mod` declarations.
    pub fn read(name: &str, root: &Path) -> Crate {
        let mut krate = Crate {
            name: name.to_string(),
            ..Crate::default()
        };
        krate.read_file("crate", root, true);
        krate
    }

    /// The files of this crate.
    pub fn files(&self) -> BTreeSet<PathBuf> {
        self.modules.values().map(|m| m.file.clone()).collect()
    }

    /// The module `name`, already met.
    fn module(&mut self, name: &str) -> &mut Module {
        self.modules.get_mut(name).expect("a module met before")
    }

    fn read_file(&mut self, module: &str, file: &Path, mod_rs: bool) {
        let src = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let t = lex(&src).unwrap_or_else(|e| {
            panic!(
                "{} is not Rust that proc-macro2 can lex: {e}",
                file.display()
            )
        });
        let here = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let file_dir = if mod_rs {
            here.clone()
        } else {
            here.join(file.file_stem().unwrap_or_default())
        };
        // (module, brace depth of its body, directory of its children's files)
        let mut stack = vec![(module.to_string(), 0usize, file_dir)];
        self.modules.insert(
            module.to_string(),
            Module {
                file: file.to_path_buf(),
                ..Module::default()
            },
        );
        let mut children_files = vec![];
        let mut path_attr: Option<String> = None;
        let (mut depth, mut i) = (0usize, 0usize);
        let ident = |i: usize| t.get(i).and_then(Token::ident);
        while i < t.len() {
            let (cur, body, dir) = stack.last().cloned().expect("a module");
            let top = depth == body;
            match &t[i].tok {
                Tok::Punct('{') => {
                    depth += 1;
                    path_attr = None;
                }
                Tok::Punct('}') => {
                    depth = depth.saturating_sub(1);
                    if depth < body {
                        stack.pop();
                    }
                    path_attr = None;
                }
                Tok::Punct(';') => path_attr = None,
                Tok::Punct('#')
                    if t.get(i + 1).is_some_and(|x| x.is('['))
                        && ident(i + 2) == Some("path")
                        && t.get(i + 3).is_some_and(|x| x.is('=')) =>
                {
                    if let Some(Tok::Str(p)) = t.get(i + 4).map(|x| &x.tok) {
                        path_attr = Some(p.clone());
                    }
                }
                Tok::Ident(w) if w == "mod" && top => {
                    if let Some(name) = ident(i + 1) {
                        let child = format!("{cur}::{name}");
                        self.module(&cur)
                            .children
                            .insert(name.to_string(), child.clone());
                        if t.get(i + 2).is_some_and(|x| x.is('{')) {
                            depth += 1;
                            self.modules.insert(
                                child.clone(),
                                Module {
                                    file: file.to_path_buf(),
                                    ..Module::default()
                                },
                            );
                            stack.push((child, depth, dir.join(name)));
                            i += 3;
                            continue;
                        }
                        let found = match path_attr.take() {
                            Some(p) => {
                                let base = if stack.len() == 1 { &here } else { &dir };
                                let p = base.join(p);
                                p.exists().then_some((p, true))
                            }
                            None => [
                                (dir.join(format!("{name}.rs")), false),
                                (dir.join(name).join("mod.rs"), true),
                            ]
                            .into_iter()
                            .find(|(p, _)| p.exists()),
                        };
                        match found {
                            Some((p, mod_rs)) => children_files.push((child, p, mod_rs)),
                            None => self.missing.push(format!(
                                "{}:{}: mod {name}; has no file in {}",
                                file.display(),
                                t[i].line,
                                dir.display()
                            )),
                        }
                        i += 2;
                        continue;
                    }
                }
                Tok::Ident(w)
                    if top
                        && matches!(
                            w.as_str(),
                            "fn" | "struct"
                                | "enum"
                                | "trait"
                                | "type"
                                | "const"
                                | "static"
                                | "union"
                                | "macro_rules"
                        ) =>
                {
                    // `macro_rules! name`: the name comes after the `!`.
                    let at = if w == "macro_rules" { i + 2 } else { i + 1 };
                    if let Some(name) = ident(at) {
                        self.module(&cur).items.insert(name.to_string());
                    }
                }
                Tok::Ident(w) if w == "use" && !t.get(i + 1).is_some_and(|x| x.is('<')) => {
                    let public = top && is_public(&t, i);
                    let line = t[i].line;
                    let mut leaves = vec![];
                    i += 1;
                    use_tree(&t, &mut i, vec![], &mut leaves);
                    let m = self.module(&cur);
                    for (path, name) in leaves {
                        m.uses.push(Use {
                            path,
                            name,
                            public,
                            line,
                        });
                    }
                    continue;
                }
                Tok::Ident(first)
                    if t.get(i + 1).is_some_and(|x| x.tok == Tok::Sep)
                        && !(i > 0 && (t[i - 1].tok == Tok::Sep || t[i - 1].is('.'))) =>
                {
                    let mut segs = vec![first.clone()];
                    let line = t[i].line;
                    i += 1;
                    while t.get(i).is_some_and(|x| x.tok == Tok::Sep) {
                        match ident(i + 1) {
                            Some(s) => {
                                segs.push(s.to_string());
                                i += 2;
                            }
                            None => break,
                        }
                    }
                    self.module(&cur).paths.push((segs, line));
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        for (child, p, mod_rs) in children_files {
            self.read_file(&child, &p, mod_rs);
        }
    }

    /// Where `path`, written in module `from`, leads: the module it names or the module of the
    /// item it names, and whether it names a module itself. `None` for another crate's path.
    /// Re-exports (`pub use`) and globs are followed to where the item is defined.
    fn resolve(&self, from: &str, path: &[String], hops: usize) -> Option<(String, bool)> {
        let (first, rest) = path.split_first()?;
        let mut cur = match first.as_str() {
            "crate" | "$crate" => "crate".to_string(),
            "self" => from.to_string(),
            "super" => parent(from),
            child => self.modules.get(from)?.children.get(child)?.clone(),
        };
        if hops > 16 {
            return Some((cur, true));
        }
        for (k, seg) in rest.iter().enumerate() {
            let m = self.modules.get(&cur)?;
            if seg == "super" {
                cur = parent(&cur);
            } else if seg == "self" {
            } else if let Some(child) = m.children.get(seg) {
                cur = child.clone();
            } else if m.items.contains(seg) {
                return Some((cur, false));
            } else if let Some(u) = m.uses.iter().find(|u| u.name.as_deref() == Some(seg)) {
                let (target, is_module) = self.resolve(&cur, &u.path, hops + 1)?;
                if !is_module {
                    return Some((target, false));
                }
                cur = target;
            } else if let Some(target) = m
                .uses
                .iter()
                .filter(|u| u.name.is_none())
                .filter_map(|u| self.resolve(&cur, &u.path, hops + 1))
                .find(|(g, _)| {
                    self.modules.get(g).is_some_and(|g| {
                        g.items.contains(seg)
                            || g.children.contains_key(seg)
                            || g.uses.iter().any(|u| u.name.as_deref() == Some(seg))
                    })
                })
            {
                let mut again = vec!["self".to_string()];
                again.extend(rest[k..].iter().cloned());
                return self.resolve(&target.0, &again, hops + 1);
            } else {
                // Not found (made by a macro, say): taken to be an item of this module.
                return Some((cur, false));
            }
        }
        Some((cur, true))
    }

    /// Which modules each module names: through its own `use` declarations (not `pub use`, which
    /// only re-exports) and the paths in its code, each resolved through re-exports to the module
    /// that defines what it names. A module naming itself is no edge.
    pub fn edges(&self) -> Vec<Edge> {
        let mut out = BTreeMap::new();
        for (name, m) in &self.modules {
            let named = m
                .uses
                .iter()
                .filter(|u| !u.public)
                .map(|u| (u.path.clone(), u.line))
                .chain(m.paths.iter().cloned());
            for (path, line) in named {
                if let Some((to, _)) = self.resolve(name, &path, 0) {
                    if &to != name && self.modules.contains_key(&to) {
                        out.entry((name.clone(), to)).or_insert_with(|| {
                            format!("{}:{line} ({})", m.file.display(), path.join("::"))
                        });
                    }
                }
            }
        }
        out.into_iter()
            .map(|((from, to), at)| Edge { from, to, at })
            .collect()
    }

    /// The strongly connected components of more than one module: the cycles.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let edges = self.edges();
        let names: Vec<&String> = self.modules.keys().collect();
        let index: BTreeMap<&String, usize> =
            names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut next = vec![vec![]; names.len()];
        for e in &edges {
            next[index[&e.from]].push(index[&e.to]);
        }
        strongly_connected(&next)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| c.into_iter().map(|i| names[i].clone()).collect())
            .collect()
    }
}

/// Whether the `use` at `i` is `pub` or `pub(…)`.
fn is_public(t: &[Token], i: usize) -> bool {
    let Some(mut j) = i.checked_sub(1) else {
        return false;
    };
    if t[j].is(')') {
        while j > 0 && !t[j].is('(') {
            j -= 1;
        }
        let Some(k) = j.checked_sub(1) else {
            return false;
        };
        j = k;
    }
    t[j].ident() == Some("pub")
}

/// Reads a `use` tree from `i` up to and with its `;`, appending its leaves (path, bound name).
fn use_tree(
    t: &[Token],
    i: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix;
    loop {
        let Some(x) = t.get(*i) else { return };
        match &x.tok {
            Tok::Ident(s) if s != "as" => {
                path.push(s.clone());
                *i += 1;
                if t.get(*i).is_some_and(|x| x.tok == Tok::Sep) {
                    *i += 1;
                    continue;
                }
                break;
            }
            Tok::Sep => *i += 1,
            Tok::Punct('{') => {
                *i += 1;
                while t.get(*i).is_some_and(|x| !x.is('}')) {
                    use_tree(t, i, path.clone(), out);
                    if t.get(*i).is_some_and(|x| x.is(',')) {
                        *i += 1;
                    }
                }
                *i += 1;
                finish(t, i);
                return;
            }
            Tok::Punct('*') => {
                *i += 1;
                out.push((path, None));
                finish(t, i);
                return;
            }
            _ => break,
        }
    }
    let mut name = path.last().cloned();
    if name.as_deref() == Some("self") {
        path.pop();
        name = path.last().cloned();
    }
    if t.get(*i).and_then(Token::ident) == Some("as") {
        name = t.get(*i + 1).and_then(Token::ident).map(str::to_string);
        *i += 2;
    }
    if !path.is_empty() {
        out.push((path, name));
    }
    finish(t, i);
}

/// Steps over the `;` that ends a `use` declaration.
fn finish(t: &[Token], i: &mut usize) {
    if t.get(*i).is_some_and(|x| x.is(';')) {
        *i += 1;
    }
}

/// Tarjan's algorithm over the adjacency lists `next`.
fn strongly_connected(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        next: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        counter: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.counter);
        s.low[v] = s.counter;
        s.counter += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.next[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = vec![];
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            component.sort_unstable();
            s.out.push(component);
        }
    }
    let n = next.len();
    let mut s = State {
        next,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: vec![],
        counter: 0,
        out: vec![],
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

/// One workspace package as `cargo metadata` describes it.
pub struct Package {
    pub name: String,
    /// The directory of its `Cargo.toml`.
    pub dir: PathBuf,
    /// (target name, kinds, root file) of every target.
    pub targets: Vec<(String, Vec<String>, PathBuf)>,
}

impl Package {
    /// Its library and binary crates (a `cdylib` and `rlib` of one root are one crate).
    pub fn crates(&self) -> Vec<Crate> {
        let mut seen = BTreeSet::new();
        self.targets
            .iter()
            .filter(|(_, kinds, _)| {
                kinds.iter().any(|k| {
                    matches!(
                        k.as_str(),
                        "lib" | "rlib" | "cdylib" | "dylib" | "staticlib" | "proc-macro" | "bin"
                    )
                })
            })
            .filter(|(_, _, root)| seen.insert(root.clone()))
            .map(|(target, kinds, root)| {
                let name = if kinds.iter().any(|k| k == "bin") {
                    format!("{} (bin {target})", self.name)
                } else {
                    self.name.clone()
                };
                Crate::read(&name, root)
            })
            .collect()
    }
}

/// What `cargo ARGS --offline`, run in this package's directory, prints; fails the test when it
/// fails.
pub fn cargo(args: &[&str]) -> Vec<u8> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .arg("--offline")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every package of the workspace, from `cargo metadata`.
pub fn workspace() -> Vec<Package> {
    let out = cargo(&["metadata", "--no-deps", "--format-version", "1"]);
    let meta: serde_json::Value = serde_json::from_slice(&out).expect("cargo metadata JSON");
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| Package {
            name: p["name"].as_str().unwrap_or_default().to_string(),
            dir: PathBuf::from(p["manifest_path"].as_str().unwrap_or_default())
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            targets: p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or_default().to_string(),
                        strings(&t["kind"]),
                        PathBuf::from(t["src_path"].as_str().unwrap_or_default()),
                    )
                })
                .collect(),
        })
        .collect()
}

/// Every `.rs` file under `dir`, skipping `target` directories.
pub fn rust_files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                out.extend(rust_files(&p));
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.insert(p);
        }
    }
    out
}

/// The reader finds the cycles it must and no others, on a small crate written here.
#[test]
fn the_module_reader_finds_cycles_through_uses_paths_and_macros_and_not_through_re_exports() {
    let dir = tempfile::tempdir().unwrap();
    let write = |file: &str, src: &str| {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, src).unwrap();
    };
    write(
        "lib.rs",
        "//! crate::a::x in a doc comment is no edge\n\
         pub mod a; pub mod b; pub mod c; pub mod d; pub mod e; mod inline { pub fn f() {} }\n\
         pub use a::A; #[path = \"elsewhere/f.rs\"] pub mod f;\n\
         #[macro_export] macro_rules! m { () => { $crate::e::E } }\n",
    );
    // a <-> b: a `use` one way, a path in code the other way.
    write("a.rs", "use crate::b::B;\npub struct A(B);\n");
    write(
        "b.rs",
        "pub struct B;\npub fn f() -> usize { let s = \"crate::c::C\"; crate::a::A::size(s) }\n",
    );
    // c names d through a glob, d names c through `super::`.
    write("c.rs", "use crate::d::*;\npub struct C;\n");
    write("d.rs", "pub struct D;\nfn g(_: super::c::C) {}\n");
    // e uses the macro of the crate root, which names e: a cycle crate <-> e.
    write("e.rs", "pub struct E;\nfn h() { crate::m!(); }\n");
    // f (found through #[path]) names the root's re-export of A: an edge to a, not to the root.
    write("elsewhere/f.rs", "fn k(r#type: crate::A) {}\n");
    let krate = Crate::read("sample", &dir.path().join("lib.rs"));
    assert!(krate.missing.is_empty(), "{:?}", krate.missing);
    let mut cycles = krate.cycles();
    cycles.sort();
    assert_eq!(
        cycles,
        vec![
            vec!["crate".to_string(), "crate::e".to_string()],
            vec!["crate::a".to_string(), "crate::b".to_string()],
            vec!["crate::c".to_string(), "crate::d".to_string()],
        ],
        "edges: {:#?}",
        krate.edges()
    );
    assert!(
        krate
            .edges()
            .iter()
            .any(|e| e.from == "crate::f" && e.to == "crate::a"),
        "{:#?}",
        krate.edges()
    );
}
