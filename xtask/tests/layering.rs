//! The module structure of the operator, xtask, testbed and simulator (issue 17): no import cycle between modules, and in xtask
//! commands over libraries (a command module imports libraries only, and no library imports a command).
//!
//! Edges are the `crate::a::b` and `super::x` paths of every file (its `#[cfg(test)] mod tests` and the files of
//! `#[cfg(test)] mod x;` declarations left out), each
//! resolved to the deepest module file it names. An edge between two modules counts between the two siblings
//! that contain them (below their nearest common ancestor), so a cycle anywhere in the tree shows as a cycle
//! between siblings; a module naming its own ancestor or descendant is not an edge.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

struct Crate {
    name: &'static str,
    /// Module path of every file.
    modules: BTreeMap<Module, PathBuf>,
    /// Sibling edges, each with the file (and the path it wrote) that made it.
    edges: BTreeMap<(Module, Module), String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Module = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a file without comments, its unit tests and string literals' contents.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") && lines.peek().is_some_and(|n| n.trim_start().starts_with("mod ")) {
            break;
        }
        let without_comment = match t.find("//") {
            Some(i) => &t[..i],
            None => t,
        };
        // Drop string literals (paths in messages are not imports).
        let mut in_str = false;
        let mut prev = ' ';
        for c in without_comment.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path after `prefix` (`crate::` or `super::`), use-groups expanded one level: `crate::{a, b::c}` gives
/// `a` and `b::c`.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        let after = &rest[i + prefix.len()..];
        rest = after;
        if before.is_some_and(ident_char) || before == Some(':') {
            continue;
        }
        let mut heads = Vec::new();
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => heads.push(std::mem::take(&mut item)),
                    _ if depth == 0 => item.push(c),
                    _ => {}
                }
            }
            heads.push(item);
        } else {
            heads.push(after.to_string());
        }
        for h in heads {
            let h = h.trim();
            let mut segs = Vec::new();
            let mut s = h;
            loop {
                let end = s.find(|c: char| !ident_char(c)).unwrap_or(s.len());
                if end == 0 {
                    break;
                }
                segs.push(s[..end].to_string());
                match s[end..].strip_prefix("::") {
                    Some(next) => s = next,
                    None => break,
                }
            }
            if !segs.is_empty() && segs[0] != "self" {
                found.push(segs);
            }
        }
    }
    found
}

fn scan(name: &'static str, src: &Path) -> Crate {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    let modules: BTreeMap<Module, PathBuf> = files.iter().map(|f| (module_of(src, f), f.clone())).collect();
    // Modules declared `#[cfg(test)] mod x;` (a tests.rs beside its module) are tests: they may use anything.
    let mut test_only: Vec<Module> = Vec::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let mut lines = text.lines().map(str::trim);
        while let Some(line) = lines.next() {
            if line == "#[cfg(test)]"
                && let Some(decl) = lines.next()
                && let Some(name) = decl.split("mod ").nth(1).and_then(|r| r.strip_suffix(';'))
            {
                test_only.push(module.iter().cloned().chain([name.to_string()]).collect());
            }
        }
    }
    let mut edges = BTreeMap::new();
    for (from, file) in &modules {
        if test_only.iter().any(|t| from.starts_with(t)) {
            continue;
        }
        let text = code(&std::fs::read_to_string(file).unwrap());
        let is_dir_module = file.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs");
        let mut targets: Vec<Vec<String>> = paths_after(&text, "crate::");
        for p in paths_after(&text, "super::") {
            // `super` of a.rs / a/mod.rs is a's parent.
            let mut base = from.clone();
            let _ = is_dir_module;
            base.pop();
            base.extend(p);
            targets.push(base);
        }
        for path in targets {
            // The deepest module the path names.
            let to = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|m| modules.contains_key(m))
                .unwrap_or_default();
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue; // itself, an ancestor or a descendant
            }
            let edge = (from[..=common].to_vec(), to[..=common].to_vec());
            edges.entry(edge).or_insert_with(|| {
                format!("{} names {}", file.strip_prefix(root()).unwrap().display(), path.join("::"))
            });
        }
    }
    Crate { name, modules, edges }
}

/// Strongly connected components with more than one module (Tarjan would do; the graphs are small).
fn cycles(edges: &BTreeMap<(Module, Module), String>) -> Vec<BTreeSet<Module>> {
    let mut next: BTreeMap<&Module, Vec<&Module>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    let reach = |from: &Module| {
        let mut seen: BTreeSet<&Module> = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(m) = todo.pop() {
            for n in next.get(m).into_iter().flatten() {
                if seen.insert(*n) {
                    todo.push(n);
                }
            }
        }
        seen
    };
    let nodes: BTreeSet<&Module> = edges.keys().flat_map(|(a, b)| [a, b]).collect();
    let reachable: BTreeMap<&Module, BTreeSet<&Module>> = nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut components: Vec<BTreeSet<Module>> = Vec::new();
    for n in &nodes {
        if components.iter().any(|c| c.contains(*n)) {
            continue;
        }
        let c: BTreeSet<Module> = nodes
            .iter()
            .filter(|m| *m != n && reachable[*n].contains(**m) && reachable[**m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        if !c.is_empty() {
            let mut c = c;
            c.insert((*n).clone());
            components.push(c);
        }
    }
    components
}

fn name(m: &Module) -> String {
    if m.is_empty() { "crate".to_string() } else { m.join("::") }
}

fn crates() -> Vec<Crate> {
    let root = root();
    vec![
        scan("xtask", &root.join("xtask/src")),
        scan("ako-testbed", &root.join("testbed/src")),
        scan("ako-simulator", &root.join("simulator/src")),
        scan("aerospike-kubernetes-operator", &root.join("src")),
    ]
}

#[test]
fn no_import_cycle_between_modules() {
    let mut problems = Vec::new();
    for c in crates() {
        let cycles = cycles(&c.edges);
        eprintln!("{}: {} modules, {} sibling edges, {} cycles", c.name, c.modules.len(), c.edges.len(), cycles.len());
        for cycle in cycles {
            let names: Vec<String> = cycle.iter().map(name).collect();
            let why: Vec<&String> =
                c.edges.iter().filter(|((a, b), _)| cycle.contains(a) && cycle.contains(b)).map(|(_, w)| w).collect();
            problems.push(format!("{}: cycle between {}: {why:#?}", c.name, names.join(", ")));
        }
    }
    assert!(problems.is_empty(), "import cycles:\n{}", problems.join("\n"));
}

/// xtask's `commands` are thin: one per task, over the library modules. A command names no other command, and no
/// library module names a command.
#[test]
fn commands_sit_on_top_of_the_libraries() {
    let xtask = crates().into_iter().next().unwrap();
    let commands = |m: &Module| m.first().is_some_and(|s| s == "commands");
    assert!(xtask.modules.keys().any(commands), "xtask/src/commands is where the commands are");
    let mut problems = Vec::new();
    for ((from, to), why) in &xtask.edges {
        let upward = commands(to) && !commands(from);
        let sideways = commands(from) && commands(to);
        if upward || sideways {
            problems.push(format!("{} -> {}: {why}", name(from), name(to)));
        }
    }
    assert!(problems.is_empty(), "commands imported by libraries or other commands:\n{}", problems.join("\n"));
}
