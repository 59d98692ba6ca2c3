//! The import direction of every crate, checked from the source text (this suite links none of
//! Varco's crates). For each crate under `crates/`, the module tree is read from its root
//! (`src/lib.rs`, else `src/main.rs`) by following `mod name;`, and every path that names a
//! module of the crate explicitly is an arrow from the module that writes it:
//! `crate::a::b` (in `use` trees, grouped or not, `pub use` included, and inline in
//! expressions and types), `super::` and `self::`, and a name a `use` bound to a module of the
//! crate (`use crate::leaf::pages;` then `pages::simple`), and a path through a child module
//! the file declares (`file::FileSink` in `audit/mod.rs`, which declares `mod file;`).
//!
//! Two rules:
//! - no crate has an import loop among its modules (the loop is printed);
//! - in the broker, arrows only point down the layer table [`BROKER_LAYERS`], and no route
//!   imports another route.
//!
//! Inline `mod tests { .. }` blocks count as part of the file that holds them. The crate root's
//! own paths are not arrows: its `mod` and `pub use` lines are the crate's public face (so a
//! module may use an error type the root defines while the root re-exports that module).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The broker's rooms, lowest first: a module may import its own layer or a lower one. Each
/// top-level module of the broker must be listed (a new one has to be placed).
const BROKER_LAYERS: &[(&str, u8)] = &[
    ("leaf", 0),
    ("features", 1),
    ("config", 2),
    ("state", 3),
    ("routes", 4),
    ("server", 5),
    ("reload", 6),
    ("cli", 6),
];

/// The layer whose modules may not import one another (each is its own endpoint family).
const SIBLINGS_APART: &str = "routes";

type Module = Vec<String>;

/// A crate's modules (path from the root, e.g. `["leaf", "http"]`) and the arrows between
/// them, each with one place it was written, for the message.
#[derive(Default)]
struct Graph {
    modules: BTreeMap<Module, PathBuf>,
    edges: BTreeMap<Module, BTreeMap<Module, String>>,
}

// === Reading the source ===

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// The tokens of `src` with comments, strings and character literals removed (they may
/// contain `crate::` in prose or in a test's data).
fn tokens(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if (ch == 'r' || (ch == 'b' && at(i + 1) == 'r'))
            && !at(i.wrapping_sub(1)).is_alphanumeric()
            && {
                let mut j = i + if ch == 'b' { 2 } else { 1 };
                while at(j) == '#' {
                    j += 1;
                }
                at(j) == '"'
            }
        {
            // Raw string: r"..", r#".."#, br#".."#.
            i += if ch == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while at(i) == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if ch == '\'' {
            // A character literal ('x', '\n', '\u{..}'), else a lifetime ('a).
            if at(i + 1) == '\\' {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            if word == "b" && at(i) == '"' {
                continue; // byte string: the '"' branch skips it
            }
            if word == "r" && at(i) == '#' && (at(i + 1).is_alphabetic() || at(i + 1) == '_') {
                continue; // raw identifier r#name: the name follows
            }
            out.push(Tok::Ident(word));
        } else if ch == ':' && at(i + 1) == ':' {
            out.push(Tok::Path);
            i += 2;
        } else if ch.is_whitespace() {
            i += 1;
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    out
}

fn ident(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

/// One file's declarations of child modules (`mod a;`) and the paths it writes, each as
/// segments with `crate`/`super`/`self` (or a bound name) first.
#[derive(Default, Debug)]
struct FileRefs {
    children: Vec<String>,
    /// (path, written inside how many inline modules)
    paths: Vec<(Vec<String>, usize)>,
    /// `use` items: (path, bound name, inline depth)
    uses: Vec<(Vec<String>, Option<String>, usize)>,
}

fn read_refs(src: &str) -> FileRefs {
    let t = tokens(src);
    let mut refs = FileRefs::default();
    let mut depth = 0usize;
    // Brace depths at which inline modules opened.
    let mut inline: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < t.len() {
        match &t[i] {
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(k) if k == "mod" => {
                match (ident(t.get(i + 1)), t.get(i + 2)) {
                    (Some(name), Some(Tok::Punct(';'))) if inline.is_empty() => {
                        refs.children.push(name.to_owned());
                    }
                    (Some(_), Some(Tok::Punct('{'))) => inline.push(depth + 1),
                    _ => {}
                }
                i += 2;
            }
            Tok::Ident(k) if k == "use" => {
                let mut j = i + 1;
                if t.get(j) == Some(&Tok::Path) {
                    j += 1;
                }
                let mut found = Vec::new();
                use_tree(&t, &mut j, &[], &mut found);
                for (path, bound) in found {
                    refs.uses.push((path, bound, inline.len()));
                }
                i = j;
            }
            Tok::Ident(first)
                if t.get(i + 1) == Some(&Tok::Path)
                    && t.get(i.wrapping_sub(1)) != Some(&Tok::Path) =>
            {
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while t.get(j) == Some(&Tok::Path) {
                    match ident(t.get(j + 1)) {
                        Some(s) => {
                            path.push(s.to_owned());
                            j += 2;
                        }
                        None => break,
                    }
                }
                refs.paths.push((path, inline.len()));
                i = j;
            }
            _ => i += 1,
        }
    }
    refs
}

/// Reads one use tree at `t[*j]` (`a::b`, `a::{b, c::d as e}`, `a::*`, `a::{self}`),
/// appending each leaf path under `prefix` with the name it binds (`None` for a glob).
fn use_tree(
    t: &[Tok],
    j: &mut usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix.to_vec();
    loop {
        match t.get(*j) {
            Some(Tok::Ident(s)) => {
                if s == "self"
                    && !path.is_empty()
                    && !prefix.is_empty()
                    && path.len() == prefix.len()
                {
                    // `a::{self}`: binds `a` itself.
                } else {
                    path.push(s.clone());
                }
                *j += 1;
                if t.get(*j) == Some(&Tok::Path) {
                    *j += 1;
                    continue;
                }
                let mut bound = path.last().cloned();
                if ident(t.get(*j)) == Some("as") {
                    bound = ident(t.get(*j + 1)).map(str::to_owned);
                    *j += 2;
                }
                out.push((path, bound));
                break;
            }
            Some(Tok::Punct('*')) => {
                *j += 1;
                out.push((path, None));
                break;
            }
            Some(Tok::Punct('{')) => {
                *j += 1;
                loop {
                    match t.get(*j) {
                        Some(Tok::Punct('}')) => {
                            *j += 1;
                            break;
                        }
                        Some(Tok::Punct(',')) => *j += 1,
                        None => return,
                        _ => use_tree(t, j, &path, out),
                    }
                }
                break;
            }
            _ => break,
        }
    }
    // Stop at the end of the item.
    if prefix.is_empty() {
        while let Some(tok) = t.get(*j) {
            *j += 1;
            if *tok == Tok::Punct(';') {
                break;
            }
        }
    }
}

/// Where module `name` declared in `file` lives: `name.rs` or `name/mod.rs` next to a root or
/// `mod.rs` file, else under the file's own directory (`a.rs` -> `a/name.rs`).
fn child_file(file: &Path, is_dir_owner: bool, name: &str) -> Option<PathBuf> {
    let dir = if is_dir_owner {
        file.parent()?.to_path_buf()
    } else {
        file.with_extension("")
    };
    [
        dir.join(format!("{name}.rs")),
        dir.join(name).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// The module graph of the crate rooted at `root` (`lib.rs` or `main.rs`).
fn graph(root: &Path) -> Graph {
    let mut g = Graph::default();
    let mut todo: Vec<(Module, PathBuf, bool)> = vec![(Vec::new(), root.to_path_buf(), true)];
    let mut refs: Vec<(Module, FileRefs)> = Vec::new();
    while let Some((module, file, dir_owner)) = todo.pop() {
        let src =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let r = read_refs(&src);
        for child in &r.children {
            let path = child_file(&file, dir_owner, child)
                .unwrap_or_else(|| panic!("{}: no file for `mod {child};`", file.display()));
            let owner = path.file_name().is_some_and(|n| n == "mod.rs");
            let mut m = module.clone();
            m.push(child.clone());
            todo.push((m, path, owner));
        }
        g.modules.insert(module.clone(), file);
        refs.push((module, r));
    }
    for (module, r) in refs {
        let file = g.modules[&module].display().to_string();
        let file = file
            .rsplit_once("/src/")
            .map_or(file.clone(), |(_, f)| format!("src/{f}"));
        let mut bound: BTreeMap<String, Module> = BTreeMap::new();
        let children: BTreeSet<Module> = r
            .children
            .iter()
            .map(|c| {
                let mut m = module.clone();
                m.push(c.clone());
                m
            })
            .collect();
        let add = |g: &mut Graph, target: Option<Module>, what: &[String]| {
            if let Some(to) = target {
                // The crate root is the crate's public face: its `pub use` lines re-export
                // what the modules define, and are not a dependency of any of them.
                if to != module && !module.is_empty() {
                    g.edges
                        .entry(module.clone())
                        .or_default()
                        .entry(to)
                        .or_insert_with(|| format!("{file}: {}", what.join("::")));
                }
            }
        };
        for (path, name, depth) in &r.uses {
            let abs = absolute(&module, *depth, path, &BTreeMap::new(), &children);
            let target = abs.as_ref().and_then(|a| owning_module(&g.modules, a));
            if let (Some(a), Some(n)) = (&abs, name) {
                if g.modules.contains_key(a) {
                    bound.insert(n.clone(), a.clone());
                }
            }
            add(&mut g, target, path);
        }
        for (path, depth) in &r.paths {
            let abs = absolute(&module, *depth, path, &bound, &children);
            let target = abs.as_ref().and_then(|a| owning_module(&g.modules, a));
            add(&mut g, target, path);
        }
    }
    g
}

/// `path` as written in `module` (inside `depth` inline modules), from the crate root; `None`
/// for a path into another crate.
fn absolute(
    module: &Module,
    depth: usize,
    path: &[String],
    bound: &BTreeMap<String, Module>,
    children: &BTreeSet<Module>,
) -> Option<Module> {
    let first = path.first()?;
    let (mut base, rest) = match first.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (module.clone(), &path[1..]),
        "super" => {
            let mut base = module.clone();
            let mut inline = depth;
            let mut k = 0;
            while path.get(k).map(String::as_str) == Some("super") {
                if inline > 0 {
                    inline -= 1;
                } else {
                    base.pop()?;
                }
                k += 1;
            }
            (base, &path[k..])
        }
        // A name a `use` bound to a module, else a child module of this one.
        name => match bound.get(name) {
            Some(m) => (m.clone(), &path[1..]),
            None => {
                let mut child = module.clone();
                child.push(name.to_owned());
                (children.contains(&child).then_some(child)?, &path[1..])
            }
        },
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The longest prefix of `path` that is a module of the crate.
fn owning_module(modules: &BTreeMap<Module, PathBuf>, path: &[String]) -> Option<Module> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains_key(m))
}

// === The rules ===

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// One import loop of the graph, as the modules around it, if there is any.
fn find_cycle(g: &Graph) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark: BTreeMap<&Module, Mark> = g.modules.keys().map(|m| (m, Mark::New)).collect();
    let none = BTreeMap::new();
    for start in g.modules.keys() {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative depth-first search; `stack` is the current path.
        let mut stack: Vec<(&Module, Vec<&Module>)> = Vec::new();
        let next = |m: &Module| g.edges.get(m).unwrap_or(&none).keys().collect::<Vec<_>>();
        mark.insert(start, Mark::Open);
        stack.push((start, next(start)));
        while let Some(top) = stack.last_mut() {
            let m: &Module = top.0;
            match top.1.pop() {
                Some(n) => match mark.get(n).copied().unwrap_or(Mark::Done) {
                    Mark::New => {
                        mark.insert(n, Mark::Open);
                        stack.push((n, next(n)));
                    }
                    Mark::Open => {
                        let from = stack.iter().position(|(s, _)| *s == n).unwrap_or(0);
                        let mut cycle: Vec<Module> =
                            stack[from..].iter().map(|(s, _)| (*s).clone()).collect();
                        cycle.push(n.clone());
                        return Some(cycle);
                    }
                    Mark::Done => {}
                },
                None => {
                    mark.insert(m, Mark::Done);
                    stack.pop();
                }
            }
        }
    }
    None
}

fn describe_cycle(g: &Graph, cycle: &[Module]) -> String {
    let mut s = String::from("import loop:\n");
    for w in cycle.windows(2) {
        let at = g
            .edges
            .get(&w[0])
            .and_then(|e| e.get(&w[1]))
            .cloned()
            .unwrap_or_default();
        s.push_str(&format!("  {} -> {}   ({at})\n", name(&w[0]), name(&w[1])));
    }
    s
}

/// Every arrow that breaks the layer table: upward, between two routes, or from/to a
/// top-level module the table does not place.
fn layer_violations(g: &Graph, layers: &[(&str, u8)], apart: &str) -> Vec<String> {
    let layer = |m: &Module| {
        m.first()
            .and_then(|top| layers.iter().find(|(n, _)| n == top))
            .map(|(_, l)| *l)
    };
    let mut bad = Vec::new();
    for m in g.modules.keys() {
        if m.len() == 1 && layer(m).is_none() {
            bad.push(format!(
                "module `{}` is in no layer: add it to the layer table",
                name(m)
            ));
        }
    }
    for (from, tos) in &g.edges {
        for (to, at) in tos {
            let (Some(lf), Some(lt)) = (layer(from), layer(to)) else {
                continue; // the crate root: declarations only
            };
            if lt > lf {
                bad.push(format!("{} -> {} points up ({at})", name(from), name(to)));
            }
            let in_apart = |m: &Module| m.len() >= 2 && m[0] == apart;
            if in_apart(from) && in_apart(to) && from[1] != to[1] {
                bad.push(format!(
                    "route {} imports route {} ({at})",
                    name(from),
                    name(to)
                ));
            }
        }
    }
    bad
}

fn workspace() -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests.parent().unwrap_or(tests).to_path_buf()
}

fn crate_root(dir: &Path) -> Option<PathBuf> {
    ["src/lib.rs", "src/main.rs"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

// === The tests ===

#[test]
fn no_crate_has_an_import_loop() {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    crates.sort();
    let mut failures = Vec::new();
    let mut checked = 0;
    for dir in crates {
        let krate = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(root) = crate_root(&dir) else {
            continue;
        };
        let g = graph(&root);
        checked += 1;
        if let Some(cycle) = find_cycle(&g) {
            failures.push(format!("crate {krate}: {}", describe_cycle(&g, &cycle)));
        }
    }
    assert!(checked >= 8, "only {checked} crates found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn broker_imports_point_down_the_layers() {
    let g = graph(&workspace().join("crates/broker/src/lib.rs"));
    // The tree is what the table speaks of.
    for (top, _) in BROKER_LAYERS {
        assert!(
            g.modules.contains_key(&vec![top.to_string()]),
            "no broker module `{top}`"
        );
    }
    assert!(
        g.modules.len() > 40,
        "only {} modules read",
        g.modules.len()
    );
    let bad = layer_violations(&g, BROKER_LAYERS, SIBLINGS_APART);
    assert!(bad.is_empty(), "broker layering:\n  {}", bad.join("\n  "));
    // Nothing imports the router but the command line.
    let server = vec!["server".to_string()];
    for (from, tos) in &g.edges {
        if tos.contains_key(&server) {
            assert_eq!(name(from), "cli", "{} imports the router", name(from));
        }
    }
}

/// Writes a tiny crate under the system temp directory and returns its root file.
fn synthetic(tag: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("varco-layers-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let p = dir.join(path);
        let parent = p.parent().unwrap_or(&dir);
        if let Err(e) = std::fs::create_dir_all(parent).and_then(|()| std::fs::write(&p, text)) {
            panic!("{}: {e}", p.display());
        }
    }
    dir.join("lib.rs")
}

fn arrows(g: &Graph) -> BTreeSet<String> {
    g.edges
        .iter()
        .flat_map(|(f, tos)| {
            tos.keys()
                .map(move |t| format!("{} -> {}", name(f), name(t)))
        })
        .collect()
}

#[test]
fn the_checker_reads_every_kind_of_path_and_finds_a_loop() {
    let root = synthetic(
        "loop",
        &[
            (
                "lib.rs",
                "pub mod a;\npub mod b;\nmod c;\nmod d;\npub use b::X;\n",
            ),
            // A grouped, nested use; `self` inside a group.
            ("a.rs", "use crate::{b::{self, X}, c};\npub fn f() {}\n"),
            // An inline expression path, and prose that must not count.
            (
                "b.rs",
                "/// crate::d::nothing\npub struct X;\npub fn g() { let s = \"crate::d\"; crate::c::h(); }\n",
            ),
            // `super::` from a file; a `pub use`.
            ("c.rs", "pub use super::a::f;\npub fn h() {}\n"),
            // `super` inside an inline test module stays in the file; a bound name.
            (
                "d/mod.rs",
                "mod e;\n#[cfg(test)] mod tests { use super::*; }\nuse crate::b;\nfn k() { b::g(); e::m(); }\n",
            ),
            (
                "d/e.rs",
                "fn m() { super::super::b::g(); let _ = 'x'; let _l: &'static str = \"\"; }\n",
            ),
        ],
    );
    let g = graph(&root);
    assert_eq!(
        g.modules.len(),
        6,
        "{:?}",
        g.modules.keys().collect::<Vec<_>>()
    );
    let got = arrows(&g);
    let want: BTreeSet<String> = [
        "a -> b",
        "a -> c",
        "b -> c",
        "c -> a",
        "d -> b",
        "d -> d::e",
        "d::e -> b",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(got, want);
    let cycle = find_cycle(&g).expect("a -> c -> a is a loop");
    let text = describe_cycle(&g, &cycle);
    assert!(text.contains("c -> a"), "{text}");
    assert_eq!(cycle.first(), cycle.last());
}

#[test]
fn the_layer_rule_refuses_upward_arrows_and_route_to_route() {
    let root = synthetic(
        "layers",
        &[
            ("lib.rs", "mod low;\nmod high;\nmod routes;\nmod stray;\n"),
            ("low.rs", "use crate::high::Thing;\n"),
            ("high.rs", "pub struct Thing;\n"),
            ("routes/mod.rs", "mod one;\nmod two;\n"),
            (
                "routes/one.rs",
                "use crate::low;\nfn f() { crate::routes::two::g(); }\n",
            ),
            ("routes/two.rs", "pub fn g() {}\n"),
            ("stray.rs", ""),
        ],
    );
    let g = graph(&root);
    assert!(find_cycle(&g).is_none());
    let bad = layer_violations(&g, &[("low", 0), ("high", 1), ("routes", 2)], "routes");
    assert_eq!(bad.len(), 3, "{bad:#?}");
    assert!(bad.iter().any(|b| b.starts_with("low -> high points up")));
    assert!(
        bad.iter()
            .any(|b| b.starts_with("route routes::one imports route routes::two"))
    );
    assert!(bad.iter().any(|b| b.contains("`stray` is in no layer")));
}
