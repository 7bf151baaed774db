//! The pipeline graph: resolving `input:` names, finding cycles, ordering.

use std::collections::HashMap;

use super::Cx;
use crate::diagnostics::{Names, SpecError};
use crate::spec::{Inputs, OperatorSpec, Spec};

/// Where a component reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    Source(usize),
    /// A transform, window or table (index into `Spec::operators`).
    Operator(usize),
    /// The late records of a window (`<window>.late`).
    Late(usize),
    DeadLetters,
    /// A component that failed to load; already reported.
    Unreadable,
}

/// Resolved inputs (by spec index) and a topological order of operators.
pub struct Graph {
    /// Each operator's inputs (a join of two streams: its left side's).
    pub operator_inputs: Vec<Vec<Upstream>>,
    /// A join of two streams' right side's inputs; empty for every other operator.
    pub right_inputs: Vec<Vec<Upstream>>,
    /// The table a lookup join reads its rows from (index into `Spec::operators`): not
    /// an input (no records flow from it), but it is checked first and counts as read.
    pub lookup_tables: Vec<Option<usize>>,
    pub sink_inputs: Vec<Vec<Upstream>>,
    /// Operator spec indices, each after all operators it reads from.
    /// Operators on a cycle are left out.
    pub order: Vec<usize>,
}

impl Graph {
    /// True when a sink or operator reads `<window>.late` of operator `t`.
    pub fn reads_late(&self, t: usize) -> bool {
        self.all_inputs().any(|u| *u == Upstream::Late(t))
    }

    /// Every edge's upstream end.
    fn all_inputs(&self) -> impl Iterator<Item = &Upstream> {
        self.operator_inputs
            .iter()
            .chain(&self.right_inputs)
            .chain(&self.sink_inputs)
            .flatten()
    }

    /// Operator `t`'s inputs, of every side.
    pub fn inputs_of(&self, t: usize) -> impl Iterator<Item = &Upstream> {
        self.operator_inputs[t].iter().chain(&self.right_inputs[t])
    }
}

pub fn resolve(spec: &Spec, cx: &mut Cx) -> Graph {
    let late_names: Vec<String> = spec
        .operators
        .iter()
        .filter(|o| o.spec.has_late_output())
        .map(|o| format!("{}.late", o.name))
        .collect();
    let valid: Vec<&str> = spec
        .sources
        .iter()
        .map(|s| s.name.as_str())
        .chain(spec.operators.iter().map(|t| t.name.as_str()))
        .chain(late_names.iter().map(String::as_str))
        .chain(
            spec.unreadable
                .iter()
                .filter(|(s, _)| *s != "sinks")
                .map(|(_, n)| n.as_str()),
        )
        .collect();
    let valid = Names::new(valid);
    let names = Directory::new(spec);
    let mut operator_inputs = Vec::new();
    let mut right_inputs = Vec::new();
    for t in &spec.operators {
        let mut ports = t.spec.ports().into_iter().map(|(input, side)| {
            let path: Vec<&str> = [t.spec.section(), &t.name].into_iter().chain(side).collect();
            inputs(&names, cx, &path, &t.name, input, &valid, false)
        });
        operator_inputs.push(ports.next().unwrap_or_default());
        right_inputs.push(ports.next().unwrap_or_default());
    }
    let sink_inputs = spec
        .sinks
        .iter()
        .map(|s| {
            inputs(
                &names,
                cx,
                &["sinks", &s.name],
                &s.name,
                s.spec.common.input.as_ref(),
                &valid,
                true,
            )
        })
        .collect();
    let lookup_tables = spec
        .operators
        .iter()
        .map(|o| lookup_table(spec, &names, &o.name, &o.spec, cx))
        .collect();
    let mut graph = Graph {
        operator_inputs,
        right_inputs,
        lookup_tables,
        sink_inputs,
        order: Vec::new(),
    };
    graph.order = order(spec, &graph, cx);
    graph
}

/// The table named by a lookup join's `lookup.table`, reported when there is none.
fn lookup_table(spec: &Spec, names: &Directory, name: &str, op: &OperatorSpec, cx: &mut Cx) -> Option<usize> {
    let OperatorSpec::Join(j) = op else { return None };
    let table = j.lookup.as_ref()?.table.as_ref()?;
    let at = cx.value(&["joins", name, "lookup", "table"]);
    match names.operators.get(table.as_str()) {
        Some(&i) if matches!(spec.operators[i].spec, OperatorSpec::Table(_)) => return Some(i),
        Some(&i) => {
            let kind = spec.operators[i].spec.kind();
            cx.error(SpecError::invalid_value(
                "table",
                format!("`{table}` is a {kind}, not a table"),
                &at,
                Some("a lookup reads the current rows of a table (`tables:`)".into()),
            ));
        }
        None if names.defines("tables", table) => {} // unreadable: reported where it is
        None => {
            let tables: Vec<&str> = spec
                .operators
                .iter()
                .filter(|o| matches!(o.spec, OperatorSpec::Table(_)))
                .map(|o| o.name.as_str())
                .collect();
            let help = match tables.as_slice() {
                [] => "define it under `tables:`".to_string(),
                some => format!("the tables: {}", some.join(", ")),
            };
            cx.error(SpecError::invalid_value(
                "table",
                format!("no table `{table}`"),
                &at,
                Some(help),
            ));
        }
    }
    None
}

/// Every name an `input:` can refer to, looked up in constant time (a spec may have
/// thousands of components, each with inputs).
struct Directory<'a> {
    /// The first source, operator and window (for `<window>.late`) of each name.
    sources: HashMap<&'a str, usize>,
    operators: HashMap<&'a str, usize>,
    windows: HashMap<&'a str, usize>,
    /// The sections defining each name, readable or not.
    sections: HashMap<&'a str, Vec<&'static str>>,
}

impl<'a> Directory<'a> {
    fn new(spec: &'a Spec) -> Self {
        let mut d = Directory {
            sources: HashMap::new(),
            operators: HashMap::new(),
            windows: HashMap::new(),
            sections: HashMap::new(),
        };
        for (i, s) in spec.sources.iter().enumerate() {
            d.sources.entry(&s.name).or_insert(i);
            d.sections.entry(&s.name).or_default().push("sources");
        }
        for (i, o) in spec.operators.iter().enumerate() {
            d.operators.entry(&o.name).or_insert(i);
            if o.spec.has_late_output() {
                d.windows.entry(&o.name).or_insert(i);
            }
            d.sections.entry(&o.name).or_default().push(o.spec.section());
        }
        for s in &spec.sinks {
            d.sections.entry(&s.name).or_default().push("sinks");
        }
        for (section, name) in &spec.unreadable {
            d.sections.entry(name).or_default().push(section);
        }
        d
    }

    /// Like [`Spec::defines`].
    fn defines(&self, section: &str, name: &str) -> bool {
        self.sections.get(name).is_some_and(|s| s.contains(&section))
    }

    /// Like [`Spec::defines_operator`].
    fn defines_operator(&self, name: &str) -> bool {
        OperatorSpec::SECTIONS.iter().any(|s| self.defines(s, name))
    }
}

/// The inputs named by the `input:` in the mapping at `at` (a component, or a side of
/// a join).
fn inputs(
    spec: &Directory,
    cx: &mut Cx,
    at: &[&str],
    name: &str,
    input: Option<&Inputs>,
    valid: &Names,
    is_sink: bool,
) -> Vec<Upstream> {
    let input_path: Vec<&str> = at.iter().copied().chain(["input"]).collect();
    let Some(input) = input else {
        let at = cx.key(at);
        cx.error(SpecError::missing_input(name, &at, valid));
        return Vec::new();
    };
    let names = input.names();
    if names.is_empty() {
        let at = cx.value(&input_path);
        cx.error(SpecError::missing_input(name, &at, valid));
    }
    let many = matches!(input, Inputs::Many(_));
    let mut resolved = Vec::new();
    for (i, input_name) in names.iter().enumerate() {
        let index = i.to_string();
        let mut path = input_path.clone();
        if many {
            path.push(&index);
        }
        let at = cx.value(&path);
        if let Some(&i) = spec.sources.get(input_name) {
            resolved.push(Upstream::Source(i));
        } else if let Some(&i) = spec.operators.get(input_name) {
            resolved.push(Upstream::Operator(i));
        } else if let Some(&i) = input_name.strip_suffix(".late").and_then(|w| spec.windows.get(w)) {
            resolved.push(Upstream::Late(i));
        } else if spec.defines("sources", input_name)
            || spec.defines_operator(input_name)
            || input_name
                .strip_suffix(".late")
                .is_some_and(|w| ["windows", "patterns", "joins"].iter().any(|s| spec.defines(s, w)))
        {
            // Defined but unreadable: already reported where it is defined.
            resolved.push(Upstream::Unreadable);
        } else if *input_name == "dead_letter" && is_sink {
            resolved.push(Upstream::DeadLetters);
        } else if *input_name == "dead_letter" {
            cx.error(SpecError::invalid_value(
                "input",
                "`dead_letter` can only feed sinks",
                &at,
                Some("route dead letters to a sink: `input: dead_letter`".into()),
            ));
        } else if spec.defines("sinks", input_name) {
            cx.error(SpecError::sink_as_input(input_name, &at));
        } else {
            cx.error(SpecError::unknown_input(input_name, name, &at, valid));
        }
    }
    if resolved.contains(&Upstream::DeadLetters) && resolved.len() > 1 {
        let at = cx.value(&input_path);
        cx.error(SpecError::invalid_value(
            "input",
            "`dead_letter` cannot be mixed with other inputs",
            &at,
            Some("use a separate sink for dead letters".into()),
        ));
    }
    resolved
}

/// Depth-first topological sort; reports each cycle once, at the input that closes it.
fn order(spec: &Spec, graph: &Graph, cx: &mut Cx) -> Vec<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        t: usize,
        spec: &Spec,
        graph: &Graph,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        order: &mut Vec<usize>,
        cx: &mut Cx,
    ) -> bool {
        match marks[t] {
            Mark::Done => return true,
            Mark::Active => return false,
            Mark::New => {}
        }
        marks[t] = Mark::Active;
        stack.push(t);
        let mut ok = true;
        let table = graph.lookup_tables[t].map(Upstream::Operator);
        for up in graph.inputs_of(t).chain(table.as_ref()) {
            let (Upstream::Operator(u) | Upstream::Late(u)) = *up else {
                continue;
            };
            if marks[u] == Mark::Active {
                let start = stack.iter().position(|&s| s == u).unwrap_or(0);
                let mut names: Vec<&str> = stack[start..]
                    .iter()
                    .map(|&s| spec.operators[s].name.as_str())
                    .collect();
                names.push(&spec.operators[u].name);
                let op = &spec.operators[t];
                let at = cx.value(&[op.spec.section(), &op.name, "input"]);
                cx.error(SpecError::cycle(&names.join(" → "), &at));
                ok = false;
            } else if !visit(u, spec, graph, marks, stack, order, cx) {
                ok = false;
            }
        }
        stack.pop();
        marks[t] = Mark::Done;
        if ok {
            order.push(t);
        }
        ok
    }
    let mut marks = vec![Mark::New; spec.operators.len()];
    let mut order = Vec::new();
    for t in 0..spec.operators.len() {
        visit(t, spec, graph, &mut marks, &mut Vec::new(), &mut order, cx);
    }
    order
}

/// Warn about sources and operators whose output nobody reads.
pub fn warn_unused(spec: &Spec, graph: &Graph, cx: &mut Cx) {
    // An unreadable component may be the reader; better no warning than a false one.
    if !spec.unreadable.is_empty() {
        return;
    }
    let mut read_sources = vec![false; spec.sources.len()];
    let mut read_operators = vec![false; spec.operators.len()];
    let tables = graph.lookup_tables.iter().flatten().map(|&t| Upstream::Operator(t));
    for up in graph.all_inputs().copied().chain(tables) {
        match up {
            Upstream::Source(i) => read_sources[i] = true,
            Upstream::Operator(i) => read_operators[i] = true,
            _ => {}
        }
    }
    for (i, s) in spec.sources.iter().enumerate() {
        if !read_sources[i] {
            let at = cx.key(&["sources", &s.name]);
            cx.error(SpecError::unused_source(&s.name, &at));
        }
    }
    for (i, t) in spec.operators.iter().enumerate() {
        if !read_operators[i] {
            let at = cx.key(&[t.spec.section(), &t.name]);
            cx.error(SpecError::unused_transform(t.spec.kind(), &t.name, &at));
        }
    }
}
