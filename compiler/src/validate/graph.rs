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
    pub operator_inputs: Vec<Vec<Upstream>>,
    pub sink_inputs: Vec<Vec<Upstream>>,
    /// Operator spec indices, each after all operators it reads from.
    /// Operators on a cycle are left out.
    pub order: Vec<usize>,
}

impl Graph {
    /// True when a sink or operator reads `<window>.late` of operator `t`.
    pub fn reads_late(&self, t: usize) -> bool {
        self.operator_inputs
            .iter()
            .chain(self.sink_inputs.iter())
            .flatten()
            .any(|u| *u == Upstream::Late(t))
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
    let operator_inputs = spec
        .operators
        .iter()
        .map(|t| inputs(&names, cx, t.spec.section(), &t.name, t.spec.input(), &valid, false))
        .collect();
    let sink_inputs = spec
        .sinks
        .iter()
        .map(|s| inputs(&names, cx, "sinks", &s.name, s.spec.common.input.as_ref(), &valid, true))
        .collect();
    let mut graph = Graph {
        operator_inputs,
        sink_inputs,
        order: Vec::new(),
    };
    graph.order = order(spec, &graph, cx);
    graph
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

fn inputs(
    spec: &Directory,
    cx: &mut Cx,
    section: &str,
    name: &str,
    input: Option<&Inputs>,
    valid: &Names,
    is_sink: bool,
) -> Vec<Upstream> {
    let Some(input) = input else {
        let at = cx.key(&[section, name]);
        cx.error(SpecError::missing_input(name, &at, valid));
        return Vec::new();
    };
    let names = input.names();
    if names.is_empty() {
        let at = cx.value(&[section, name, "input"]);
        cx.error(SpecError::missing_input(name, &at, valid));
    }
    let many = matches!(input, Inputs::Many(_));
    let mut resolved = Vec::new();
    for (i, input_name) in names.iter().enumerate() {
        let index = i.to_string();
        let path: Vec<&str> = if many {
            vec![section, name, "input", &index]
        } else {
            vec![section, name, "input"]
        };
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
                .is_some_and(|w| spec.defines("windows", w) || spec.defines("patterns", w))
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
        let at = cx.value(&[section, name, "input"]);
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
        for up in &graph.operator_inputs[t] {
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
    for up in graph.operator_inputs.iter().chain(graph.sink_inputs.iter()).flatten() {
        match *up {
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
