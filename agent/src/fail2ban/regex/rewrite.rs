//! Python-only constructs rewritten for the `regex` crate, where an exact
//! equivalent exists, and a `regex`-crate superset of every other backtracking
//! pattern, so the backtracking engine runs only on lines that can match.
//!
//! Two constructs of fail2ban's stock filters (sshd's `Failed ...` lines) have
//! exact regular equivalents:
//! - a conditional `(?(g)yes|no)` on a group whose part in the match is decided
//!   by an earlier choice (`(g)?`, or one branch of an alternation): the choice
//!   is distributed over the rest of the sequence (`(P|Q)R` is `PR|QR`, `X?R` is
//!   `XR|R`, in that order, which keeps leftmost-first priority and captures),
//!   and each copy of the rest knows the group's state;
//! - a loop `(?:(?!W).)*` over a fixed word `W` whose extent is decided by what
//!   follows it (`W` itself, or the end of the text): it takes exactly the text
//!   in which `W` starts nowhere, a regular language written out from the word's
//!   matching automaton.
//!
//! The copies of a group made by distribution are numbered anew; the rewrite
//! says which original group each stands for, and only one copy can take part
//! in a match.

use std::collections::HashMap;

use fancy_regex::{Assertion, Expr, LookAround};

/// A pattern rewritten into `regex`-crate syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rewritten {
    /// The `regex`-crate pattern.
    pub text: String,
    /// Per group of `text` (0 is the whole match), the original pattern's group.
    pub groups: Vec<usize>,
    /// The original pattern's group names, by group index: with the rewrite
    /// running, the backtracking engine need not be compiled to learn them.
    pub names: Vec<Option<Box<str>>>,
}

/// Longest pattern text a rewrite may produce: distribution copies the rest of
/// a sequence once per choice.
const MAX_TEXT: usize = 64 << 10;
/// Longest look-ahead word whose absence is written out as an automaton.
const MAX_WORD: usize = 24;

#[derive(Debug, Clone)]
enum Node {
    /// A group-free, regular piece, printed by fancy-regex.
    Leaf(Expr),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    /// A capture group: the original group's index.
    Group(usize, Box<Node>),
    Repeat {
        child: Box<Node>,
        lo: usize,
        hi: usize,
        greedy: bool,
    },
    /// `(?(group)yes|no)`.
    Cond {
        group: usize,
        yes: Box<Node>,
        no: Box<Node>,
    },
    /// `(?:(?!word).)*` (`.` without newlines), greedy or lazy.
    NotWord {
        word: String,
    },
}

/// The exact `regex`-crate equivalent of a fancy-regex pattern (Rust syntax),
/// if the rewrites above remove every construct that needs backtracking.
pub(crate) fn exact(pattern: &str) -> Option<Rewritten> {
    let tree = fancy_regex::Expr::parse_tree(pattern).ok()?;
    let mut next = 1;
    let node = convert(&tree.expr, &mut next)?;
    let node = specialize(node, &HashMap::new())?;
    let node = unloop(node, &Follow::unknown(), &mut HashMap::new())?;
    let mut names = vec![None; next];
    for (name, at) in &tree.named_groups {
        for &i in at {
            *names.get_mut(i)? = Some(Box::from(name.as_str()));
        }
    }
    let mut out = Rewritten {
        text: String::new(),
        groups: vec![0],
        names,
    };
    print(&node, &mut out);
    (out.text.len() <= MAX_TEXT).then_some(out)
}

/// A regular pattern that matches every haystack `pattern` matches (and maybe
/// more): look-arounds taken out, conditionals made alternations, atomic and
/// possessive forms made plain, a backreference any text. `None` when the
/// pattern uses something else the `regex` crate lacks.
pub(crate) fn superset(pattern: &str) -> Option<String> {
    let tree = fancy_regex::Expr::parse_tree(pattern).ok()?;
    let e = loosen(&tree.expr)?;
    let mut text = String::new();
    e.to_str(&mut text, 0);
    Some(text)
}

fn loosen(e: &Expr) -> Option<Expr> {
    Some(match e {
        Expr::Empty | Expr::Any { .. } | Expr::Literal { .. } | Expr::Delegate { .. } => e.clone(),
        Expr::Assertion(a) => match a {
            Assertion::LeftWordBoundary | Assertion::RightWordBoundary => Expr::Empty,
            _ => e.clone(),
        },
        Expr::Concat(v) => Expr::Concat(v.iter().map(loosen).collect::<Option<_>>()?),
        Expr::Alt(v) => Expr::Alt(v.iter().map(loosen).collect::<Option<_>>()?),
        // Only matching matters here: no groups.
        Expr::Group(c) => Expr::Concat(vec![loosen(c)?]),
        Expr::Repeat {
            child,
            lo,
            hi,
            greedy,
        } => Expr::Repeat {
            child: Box::new(loosen(child)?),
            lo: *lo,
            hi: *hi,
            greedy: *greedy,
        },
        Expr::LookAround(..) | Expr::KeepOut | Expr::ContinueFromPreviousMatchEnd => Expr::Empty,
        Expr::AtomicGroup(c) => loosen(c)?,
        Expr::Backref { .. } => Expr::Repeat {
            child: Box::new(Expr::Any {
                newline: true,
                crlf: false,
            }),
            lo: 0,
            hi: usize::MAX,
            greedy: true,
        },
        Expr::Conditional {
            condition,
            true_branch,
            false_branch,
        } => {
            let yes = loosen(true_branch)?;
            let no = loosen(false_branch)?;
            match condition.as_ref() {
                Expr::BackrefExistsCondition { .. } => Expr::Alt(vec![yes, no]),
                // A look-around condition: either branch, after it.
                c => Expr::Alt(vec![
                    Expr::Concat(vec![loosen(c)?, yes]),
                    Expr::Concat(vec![loosen(c)?, no]),
                ]),
            }
        }
        _ => return None,
    })
}

/// The parse tree as nodes, groups numbered as fancy-regex numbers them (in
/// order of their opening parenthesis).
fn convert(e: &Expr, next: &mut usize) -> Option<Node> {
    Some(match e {
        Expr::Empty | Expr::Any { .. } | Expr::Literal { .. } | Expr::Delegate { .. } => {
            Node::Leaf(e.clone())
        }
        Expr::Assertion(a) => match a {
            // Python's `\<`/`\>` never reach here (they are literals); the
            // others print as the `regex` crate reads them.
            Assertion::LeftWordBoundary | Assertion::RightWordBoundary => return None,
            _ => Node::Leaf(e.clone()),
        },
        Expr::Concat(v) => {
            let mut items = Vec::with_capacity(v.len());
            for c in v {
                match convert(c, next)? {
                    Node::Concat(inner) => items.extend(inner),
                    n => items.push(n),
                }
            }
            Node::Concat(items)
        }
        Expr::Alt(v) => Node::Alt(v.iter().map(|c| convert(c, next)).collect::<Option<_>>()?),
        Expr::Group(c) => {
            let idx = *next;
            *next += 1;
            Node::Group(idx, Box::new(convert(c, next)?))
        }
        Expr::Repeat {
            child,
            lo,
            hi,
            greedy,
        } => match not_word(child) {
            // Greedy or lazy alike: only rewritten where the extent is forced.
            Some(word) if *lo == 0 && *hi == usize::MAX => Node::NotWord { word },
            _ => Node::Repeat {
                child: Box::new(convert(child, next)?),
                lo: *lo,
                hi: *hi,
                greedy: *greedy,
            },
        },
        Expr::Conditional {
            condition,
            true_branch,
            false_branch,
        } => match condition.as_ref() {
            Expr::BackrefExistsCondition {
                group,
                relative_recursion_level: None,
            } => Node::Cond {
                group: *group,
                yes: Box::new(convert(true_branch, next)?),
                no: Box::new(convert(false_branch, next)?),
            },
            _ => return None,
        },
        _ => return None,
    })
}

/// `W` of a loop body `(?!W).`: a plain word (case-sensitive literals) and a
/// dot that stops at a newline.
fn not_word(body: &Expr) -> Option<String> {
    let Expr::Concat(v) = body else {
        return None;
    };
    let [Expr::LookAround(inner, LookAround::LookAheadNeg), dot] = v.as_slice() else {
        return None;
    };
    if !matches!(
        dot,
        Expr::Any {
            newline: false,
            crlf: false
        }
    ) {
        return None;
    }
    let mut word = String::new();
    let mut push = |e: &Expr| match e {
        Expr::Literal { val, casei: false } => {
            word.push_str(val);
            Some(())
        }
        _ => None,
    };
    match inner.as_ref() {
        Expr::Concat(parts) => parts.iter().try_for_each(&mut push)?,
        e => push(e)?,
    }
    (!word.is_empty() && !word.contains('\n') && word.chars().count() <= MAX_WORD).then_some(word)
}

/// Groups defined anywhere in `n`.
fn defines(n: &Node, out: &mut Vec<usize>) {
    match n {
        Node::Leaf(_) | Node::NotWord { .. } => {}
        Node::Concat(v) | Node::Alt(v) => v.iter().for_each(|c| defines(c, out)),
        Node::Group(i, c) => {
            out.push(*i);
            defines(c, out);
        }
        Node::Repeat { child, .. } => defines(child, out),
        Node::Cond { yes, no, .. } => {
            defines(yes, out);
            defines(no, out);
        }
    }
}

/// Groups some conditional in `n` asks about.
fn asks(n: &Node, out: &mut Vec<usize>) {
    match n {
        Node::Leaf(_) | Node::NotWord { .. } => {}
        Node::Concat(v) | Node::Alt(v) => v.iter().for_each(|c| asks(c, out)),
        Node::Group(_, c) => asks(c, out),
        Node::Repeat { child, .. } => asks(child, out),
        Node::Cond { group, yes, no } => {
            out.push(*group);
            asks(yes, out);
            asks(no, out);
        }
    }
}

/// Resolves every conditional from the group states `known` (group -> took
/// part), distributing the choices that decide them; `None` if one cannot be.
fn specialize(n: Node, known: &HashMap<usize, bool>) -> Option<Node> {
    Some(match n {
        Node::Leaf(_) | Node::NotWord { .. } => n,
        Node::Cond { group, yes, no } => {
            let branch = if *known.get(&group)? { yes } else { no };
            specialize(*branch, known)?
        }
        Node::Group(i, c) => Node::Group(i, Box::new(specialize(*c, known)?)),
        Node::Alt(v) => Node::Alt(
            v.into_iter()
                .map(|c| specialize(c, known))
                .collect::<Option<_>>()?,
        ),
        Node::Repeat {
            child,
            lo,
            hi,
            greedy,
        } => {
            let mut inner = Vec::new();
            asks(&child, &mut inner);
            let mut defined = Vec::new();
            defines(&child, &mut defined);
            // A loop's own groups change from one iteration to the next.
            if inner.iter().any(|g| defined.contains(g)) {
                return None;
            }
            Node::Repeat {
                child: Box::new(specialize(*child, known)?),
                lo,
                hi,
                greedy,
            }
        }
        Node::Concat(items) => Node::Concat(specialize_seq(items, known)?),
    })
}

fn specialize_seq(mut items: Vec<Node>, known: &HashMap<usize, bool>) -> Option<Vec<Node>> {
    let known = known.clone();
    let mut out = Vec::with_capacity(items.len());
    let mut rest = items.drain(..).collect::<std::collections::VecDeque<_>>();
    while let Some(item) = rest.pop_front() {
        let mut later = Vec::new();
        rest.iter().for_each(|n| asks(n, &mut later));
        let mut defined = Vec::new();
        defines(&item, &mut defined);
        let targets: Vec<usize> = defined
            .iter()
            .copied()
            .filter(|g| later.contains(g))
            .collect();
        if targets.is_empty() {
            out.push(specialize(item, &known)?);
            continue;
        }
        // This item decides a later conditional: one copy of the rest per
        // way through it, in the order backtracking tries them.
        let tail: Vec<Node> = rest.drain(..).collect();
        let mut alts = Vec::new();
        for (variant, states) in split(item, &targets)? {
            let mut k = known.clone();
            k.extend(states);
            let mut seq = vec![specialize(variant, &k)?];
            seq.extend(specialize_seq(tail.clone(), &k)?);
            alts.push(Node::Concat(seq));
        }
        out.push(Node::Alt(alts));
        return Some(out);
    }
    Some(out)
}

type Variants = Vec<(Node, Vec<(usize, bool)>)>;

/// The ways through `n`, in backtracking order, each with whether each of
/// `targets` it defines took part.
fn split(n: Node, targets: &[usize]) -> Option<Variants> {
    let mut defined = Vec::new();
    defines(&n, &mut defined);
    if !defined.iter().any(|g| targets.contains(g)) {
        return Some(vec![(n, Vec::new())]);
    }
    let unset = |defined: &[usize]| -> Vec<(usize, bool)> {
        defined
            .iter()
            .filter(|g| targets.contains(g))
            .map(|&g| (g, false))
            .collect()
    };
    Some(match n {
        Node::Group(i, c) => split(*c, targets)?
            .into_iter()
            .map(|(v, mut s)| {
                if targets.contains(&i) {
                    s.push((i, true));
                }
                (Node::Group(i, Box::new(v)), s)
            })
            .collect(),
        Node::Alt(branches) => {
            let mut out = Vec::new();
            let all: Vec<Vec<usize>> = branches
                .iter()
                .map(|b| {
                    let mut d = Vec::new();
                    defines(b, &mut d);
                    d
                })
                .collect();
            for (i, b) in branches.into_iter().enumerate() {
                for (v, mut s) in split(b, targets)? {
                    for (j, d) in all.iter().enumerate() {
                        if j != i {
                            s.extend(unset(d));
                        }
                    }
                    out.push((v, s));
                }
            }
            out
        }
        Node::Repeat {
            child,
            lo: 0,
            hi: 1,
            greedy,
        } => {
            let taken = split(*child, targets)?;
            let skipped = (Node::Leaf(Expr::Empty), unset(&defined));
            if greedy {
                taken.into_iter().chain([skipped]).collect()
            } else {
                [skipped].into_iter().chain(taken).collect()
            }
        }
        Node::Concat(items) => {
            let mut acc: Variants = vec![(Node::Concat(Vec::new()), Vec::new())];
            for item in items {
                let ways = split(item, targets)?;
                let mut next = Vec::with_capacity(acc.len() * ways.len());
                for (prefix, s) in &acc {
                    for (w, ws) in &ways {
                        let Node::Concat(mut seq) = prefix.clone() else {
                            unreachable!("built as a sequence")
                        };
                        seq.push(w.clone());
                        let mut st = s.clone();
                        st.extend(ws.iter().copied());
                        next.push((Node::Concat(seq), st));
                    }
                }
                acc = next;
                if acc.len() > 64 {
                    return None;
                }
            }
            acc
        }
        // A loop or a conditional defining a group a later one asks about.
        _ => return None,
    })
}

/// What certainly follows a node: `lit`, then the end of the text if `end`,
/// else something unknown.
#[derive(Debug, Clone)]
struct Follow {
    lit: String,
    end: bool,
}

impl Follow {
    fn unknown() -> Follow {
        Follow {
            lit: String::new(),
            end: false,
        }
    }
}

/// The literal text `n` always matches, if that is all it does.
fn literal(n: &Node) -> Option<String> {
    match n {
        Node::Leaf(Expr::Literal { val, casei: false }) => Some(val.clone()),
        Node::Leaf(Expr::Empty) => Some(String::new()),
        Node::Concat(v) => v.iter().map(literal).collect(),
        Node::Group(_, c) => literal(c),
        _ => None,
    }
}

/// The regular text of each `(?:(?!W).)*` rewritten so far, by word and
/// what follows: distribution copies a loop once per choice before it, and
/// writing its automaton out is most of a rewrite's work.
type Unlooped = HashMap<(String, String, bool), Option<String>>;

/// Replaces each `(?:(?!W).)*` by its regular equivalent, where what follows
/// it forces its extent.
fn unloop(n: Node, follow: &Follow, memo: &mut Unlooped) -> Option<Node> {
    Some(match n {
        Node::Leaf(_) => n,
        Node::Cond { .. } => return None,
        Node::NotWord { word } => Node::Leaf(Expr::Delegate {
            inner: memo
                .entry((word, follow.lit.clone(), follow.end))
                .or_insert_with_key(|(word, _, _)| without_word(word, follow))
                .clone()?,
            casei: false,
        }),
        Node::Group(i, c) => Node::Group(i, Box::new(unloop(*c, follow, memo)?)),
        Node::Alt(v) => Node::Alt(
            v.into_iter()
                .map(|c| unloop(c, follow, memo))
                .collect::<Option<_>>()?,
        ),
        Node::Repeat {
            child,
            lo,
            hi,
            greedy,
        } => Node::Repeat {
            child: Box::new(unloop(*child, &Follow::unknown(), memo)?),
            lo,
            hi,
            greedy,
        },
        Node::Concat(items) => {
            // What follows each item, built from the back.
            let mut follows = vec![follow.clone(); items.len()];
            let mut f = follow.clone();
            for (i, item) in items.iter().enumerate().rev() {
                follows[i] = f.clone();
                f = match item {
                    Node::Leaf(Expr::Assertion(Assertion::EndText)) => Follow {
                        lit: String::new(),
                        end: true,
                    },
                    _ => match literal(item) {
                        Some(l) => Follow {
                            lit: l + &f.lit,
                            end: f.end,
                        },
                        None => Follow {
                            lit: leading(item),
                            end: false,
                        },
                    },
                };
            }
            Node::Concat(
                items
                    .into_iter()
                    .zip(follows)
                    .map(|(c, f)| unloop(c, &f, memo))
                    .collect::<Option<_>>()?,
            )
        }
    })
}

/// The literal text every match of `n` starts with.
fn leading(n: &Node) -> String {
    match n {
        Node::Leaf(Expr::Literal { val, casei: false }) => val.clone(),
        Node::Group(_, c) => leading(c),
        Node::Concat(v) => {
            let mut out = String::new();
            for c in v {
                match literal(c) {
                    Some(l) => out.push_str(&l),
                    None => {
                        out.push_str(&leading(c));
                        break;
                    }
                }
            }
            out
        }
        _ => String::new(),
    }
}

/// The regular pattern for `(?:(?!word).)*` followed by `follow`, if the
/// extent is forced: text without a newline in which `word` starts nowhere
/// (counting occurrences that run on into `follow`).
///
/// Forced means: `follow` starts with `word` (the loop cannot pass the first
/// occurrence and must stop at one, so it stops at the first) or is the end of
/// the text (the loop runs to it). Greedy and lazy then take the same text.
fn without_word(word: &str, follow: &Follow) -> Option<String> {
    let w: Vec<char> = word.chars().collect();
    let k = w.len();
    if !(follow.lit.starts_with(word) || (follow.lit.is_empty() && follow.end)) {
        return None;
    }
    // Texts ending in the first j characters of the word that `follow`
    // completes into an occurrence.
    let tail: Vec<char> = follow.lit.chars().collect();
    let completes = |j: usize| -> bool {
        let rest = &w[j..];
        tail.len() >= rest.len() && tail[..rest.len()] == *rest
    };
    // The word's matching automaton: state q = longest prefix of the word
    // that the text read so far ends with; state k (an occurrence) is dead.
    let mut fail = vec![0usize; k + 1];
    for q in 2..=k {
        let mut f = fail[q - 1];
        while f > 0 && w[f] != w[q - 1] {
            f = fail[f];
        }
        if w[f] == w[q - 1] {
            f += 1;
        }
        fail[q] = f;
    }
    let step = |q: usize, c: char| -> usize {
        let mut q = q;
        loop {
            if q < k && w[q] == c {
                return q + 1;
            }
            if q == 0 {
                return 0;
            }
            q = fail[q];
        }
    };
    // A state may end the text unless it (or a shorter border) completes.
    let accepting = |q: usize| -> bool {
        let mut b = q;
        loop {
            if b > 0 && completes(b) {
                return false;
            }
            if b == 0 {
                return true;
            }
            b = fail[b];
        }
    };
    let mut alphabet: Vec<char> = w.clone();
    alphabet.sort_unstable();
    alphabet.dedup();
    // Transition classes between live states: the word's characters, and
    // every other character but a newline (which takes the automaton to 0).
    let mut edge: Vec<Vec<Option<String>>> = vec![vec![None; k]; k];
    for (q, row) in edge.iter_mut().enumerate() {
        let mut by_target: Vec<Vec<char>> = vec![Vec::new(); k + 1];
        for &c in &alphabet {
            by_target[step(q, c)].push(c);
        }
        for (t, chars) in by_target.iter().enumerate().take(k) {
            let other = t == 0;
            if chars.is_empty() && !other {
                continue;
            }
            row[t] = Some(class(chars, other.then_some(&alphabet[..])));
        }
    }
    // State elimination; a fresh start (k) and end (k + 1).
    let n = k + 2;
    let mut r: Vec<Vec<Option<String>>> = vec![vec![None; n]; n];
    for q in 0..k {
        for t in 0..k {
            r[q][t] = edge[q][t].clone();
        }
        if accepting(q) {
            r[q][k + 1] = Some(String::new());
        }
    }
    r[k][0] = Some(String::new());
    // Deepest state first: each prefix of the word becomes a nested suffix
    // (some 500 bytes for a six-letter word, against 14 000 the other way).
    for q in (0..k).rev() {
        let lp = r[q][q].take().map(|l| format!("(?:{l})*"));
        for p in (0..n).filter(|&p| p != q) {
            let Some(pq) = r[p][q].clone() else { continue };
            for t in (0..n).filter(|&t| t != q) {
                let Some(qt) = r[q][t].clone() else { continue };
                let via = format!("(?:{pq}){}(?:{qt})", lp.as_deref().unwrap_or(""));
                r[p][t] = Some(match r[p][t].take() {
                    Some(old) => format!("(?:{old}|{via})"),
                    None => via,
                });
            }
        }
        for row in r.iter_mut() {
            row[q] = None;
        }
        r[q].fill(None);
        if r.iter().flatten().flatten().map(String::len).sum::<usize>() > MAX_TEXT {
            return None;
        }
    }
    let text = r[k][k + 1].take()?;
    Some(format!("(?:{text})"))
}

/// A class of `chars`, or with `others_than` every character outside that
/// set except a newline as well.
fn class(chars: &[char], others_than: Option<&[char]>) -> String {
    let esc = |c: char| format!("\\x{{{:x}}}", u32::from(c));
    match others_than {
        Some(set) => {
            let mut s = String::from("[^\\n");
            for &c in set.iter().filter(|c| !chars.contains(c)) {
                s.push_str(&esc(c));
            }
            s.push(']');
            s
        }
        None => {
            let mut s = String::from("[");
            for &c in chars {
                s.push_str(&esc(c));
            }
            s.push(']');
            s
        }
    }
}

/// Prints `n` in `regex`-crate syntax, numbering groups as they open.
fn print(n: &Node, out: &mut Rewritten) {
    match n {
        Node::Leaf(e) => {
            out.text.push_str("(?:");
            e.to_str(&mut out.text, 0);
            out.text.push(')');
        }
        Node::Concat(v) => {
            out.text.push_str("(?:");
            for c in v {
                print(c, out);
            }
            out.text.push(')');
        }
        Node::Alt(v) => {
            out.text.push_str("(?:");
            for (i, c) in v.iter().enumerate() {
                if i > 0 {
                    out.text.push('|');
                }
                print(c, out);
            }
            out.text.push(')');
        }
        Node::Group(i, c) => {
            out.groups.push(*i);
            out.text.push('(');
            print(c, out);
            out.text.push(')');
        }
        Node::Repeat {
            child,
            lo,
            hi,
            greedy,
        } => {
            out.text.push_str("(?:");
            print(child, out);
            out.text.push(')');
            match (lo, hi) {
                (0, 1) => out.text.push('?'),
                (0, &usize::MAX) => out.text.push('*'),
                (1, &usize::MAX) => out.text.push('+'),
                (lo, &usize::MAX) => out.text.push_str(&format!("{{{lo},}}")),
                (lo, hi) if lo == hi => out.text.push_str(&format!("{{{lo}}}")),
                (lo, hi) => out.text.push_str(&format!("{{{lo},{hi}}}")),
            }
            if !greedy {
                out.text.push('?');
            }
        }
        Node::Cond { .. } | Node::NotWord { .. } => unreachable!("rewritten before printing"),
    }
}

#[cfg(test)]
mod tests;
