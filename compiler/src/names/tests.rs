use super::*;

/// True when `s` parses as one Rust identifier (raw allowed), not a keyword.
fn is_ident(s: &str) -> bool {
    syn::parse_str::<syn::Ident>(s).is_ok()
}

#[test]
fn field_idents_table() {
    // (spec names of one struct, identifiers they get)
    let cases: &[(&[&str], &[&str])] = &[
        (&["device_id", "temperature"], &["device_id", "temperature"]),
        (
            &["type", "match", "gen", "box"],
            &["r#type", "r#match", "r#gen", "r#box"],
        ),
        (&["self"], &["self_"]),
        (&["self", "self_"], &["self__2", "self_"]),
        (&["self_", "self"], &["self_", "self__2"]),
        (&["Self", "super", "crate"], &["Self_", "super_", "crate_"]),
        (&["_"], &["__"]),
        (&["_", "__"], &["___2", "__"]),
        (&["__", "_"], &["__", "___2"]),
        (&["_1", "_2"], &["_1", "_2"]),
        (&["1a"], &["_1a"]),
        (&["a_b", "a__b", "aB"], &["a_b", "a__b", "aB"]),
        (&["deviceId", "device_id"], &["deviceId", "device_id"]),
        (&["result", "rec", "out", "t", "e"], &["result", "rec", "out", "t", "e"]),
        (&["a-b", "a_b"], &["a_b_2", "a_b"]),
    ];
    for (names, expected) in cases {
        let got = field_idents(names);
        assert_eq!(&got, expected, "for {names:?}");
        for ident in &got {
            assert!(is_ident(ident), "`{ident}` (from {names:?}) is not an identifier");
        }
    }
}

#[test]
fn long_field_names_are_bounded_and_stay_distinct() {
    let a = "a".repeat(300);
    let b = format!("{}b", "a".repeat(299));
    let got = field_idents(&[&a, &b]);
    assert!(got.iter().all(|i| i.len() <= MAX_LEN && is_ident(i)), "{got:?}");
    assert_ne!(got[0], got[1]);
}

#[test]
fn type_names_table() {
    // (spec names in the order they are asked for, with suffix; the struct names they get)
    type Asks<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Asks, &[&str])] = &[
        (&[("hot_devices", "")], &["HotDevices"]),
        (&[("a_b", ""), ("a__b", "")], &["AB", "AB_2"]),
        (&[("w_1", "Acc"), ("w1", "Acc")], &["W1Acc", "W1Acc_2"]),
        (&[("t_1", "Record"), ("t1", "Record")], &["T1Record", "T1Record_2"]),
        (
            &[("reading_record", ""), ("reading", "Record")],
            &["ReadingRecord", "ReadingRecord_2"],
        ),
        (&[("_", ""), ("__", ""), ("_1", "")], &["X", "X_2", "X1"]),
        (&[("_1", "Acc"), ("_1", "Agg")], &["X1Acc", "X1Agg"]),
        (&[("self", "")], &["Self_2"]),
        // Names the generated file uses are never taken.
        (
            &[("string", ""), ("box", ""), ("result", ""), ("option", "")],
            &["String_2", "Box_2", "Result_2", "Option_2"],
        ),
        (
            &[("nodes", ""), ("job", ""), ("output", ""), ("source", "")],
            &["Nodes_2", "Job_2", "Output_2", "Source_2"],
        ),
        (
            &[("count", ""), ("table", ""), ("window", "")],
            &["Count_2", "Table_2", "Window_2"],
        ),
        (&[("type", ""), ("match", "")], &["Type", "Match"]),
    ];
    for (asks, expected) in cases {
        let mut names = Names::default();
        let got: Vec<String> = asks
            .iter()
            .map(|(base, suffix)| names.type_name("", base, suffix))
            .collect();
        assert_eq!(&got, expected, "for {asks:?}");
        for name in &got {
            assert!(is_ident(name), "`{name}` is not an identifier");
        }
    }
}

#[test]
fn nested_type_names_follow_their_parent() {
    let mut names = Names::default();
    let parent = names.type_name("", "reading", "");
    assert_eq!(names.type_name(&parent, "location", ""), "ReadingLocation");
    // A schema with that name later does not merge with it.
    assert_eq!(names.type_name("", "reading_location", ""), "ReadingLocation_2");
}

#[test]
fn long_type_names_are_bounded_and_stay_distinct() {
    let mut names = Names::default();
    let a = names.type_name("", &"a".repeat(300), "Record");
    let b = names.type_name("", &format!("{}b", "a".repeat(299)), "Record");
    assert!(a.len() <= MAX_LEN && b.len() <= MAX_LEN, "{a} {b}");
    assert_ne!(a, b);
    assert!(is_ident(&a) && is_ident(&b));
}

#[test]
fn stems_are_bounded_and_unique() {
    let mut names = Names::default();
    assert_eq!(names.stem("hot"), "hot");
    assert_eq!(names.stem("_"), "_");
    assert_eq!(names.stem("_1"), "_1");
    let long = names.stem(&"x".repeat(300));
    assert!(long.len() <= MAX_LEN);
    for prefix in PREFIXES {
        assert!(is_ident(&format!("{prefix}{long}")));
        assert!(is_ident(&format!("{prefix}_")));
        assert!(is_ident(&format!("{prefix}_1")));
    }
    // A stem asked for twice (never the case for valid specs) is still made unique.
    assert_eq!(names.stem("hot"), "hot_2");
}

#[test]
fn prefixes_are_prefix_free() {
    for a in PREFIXES {
        for b in PREFIXES {
            assert!(
                a == b || !b.starts_with(a),
                "`{a}` is a prefix of `{b}`: `{a}x` and `{b}` stems could meet"
            );
        }
    }
}

#[test]
fn file_stems() {
    assert_eq!(file_stem("hot_devices"), "hot-devices");
    assert_eq!(file_stem("_"), "pipeline");
    assert_eq!(file_stem("_1"), "pipeline--1");
    let long = file_stem(&"n".repeat(300));
    assert!(long.len() <= MAX_LEN, "{long}");
    assert_ne!(long, file_stem(&format!("{}m", "n".repeat(299))));
}

#[test]
fn binary_names() {
    assert_eq!(binary_name("hot_devices"), "hot_devices");
    assert!(binary_name(&"n".repeat(300)).len() <= MAX_LEN);
}

#[test]
fn comment_text_stays_on_one_line() {
    assert_eq!(comment_text("pipelines/a.yaml"), "pipelines/a.yaml");
    let escaped = comment_text("a\nfn evil() {}\r\u{2028}b");
    assert!(!escaped.contains('\n') && !escaped.contains('\r') && !escaped.contains('\u{2028}'));
    assert_eq!(escaped, "a\\nfn evil() {}\\r\\u{2028}b");
}

/// Every name `rill_runtime::codegen` exports is reserved, so no struct shadows one:
/// its own names, and (through its one glob) the connectors' `exports`.
#[test]
fn every_runtime_export_is_reserved() {
    let read = |path: &str| syn::parse_file(&std::fs::read_to_string(path).unwrap()).unwrap();
    let codegen = read(concat!(env!("CARGO_MANIFEST_DIR"), "/../runtime/src/codegen.rs"));
    let connectors = read(concat!(env!("CARGO_MANIFEST_DIR"), "/../runtime/src/connectors/mod.rs"));
    let exports = connectors.items.into_iter().find_map(|item| match item {
        syn::Item::Mod(m) if m.ident == "exports" => m.content.map(|(_, items)| items),
        _ => None,
    });
    let mut exported = Vec::new();
    for item in codegen.items.into_iter().chain(exports.unwrap_or_default()) {
        if let syn::Item::Use(u) = item {
            leaves(&u.tree, &mut exported);
        }
    }
    assert!(exported.len() > 50, "read {exported:?}");
    assert!(exported.iter().any(|n| n == "FileSink"), "read {exported:?}");
    let reserved: Vec<&str> = reserved_types().collect();
    for name in exported {
        let starts_upper = name.starts_with(|c: char| c.is_ascii_uppercase());
        assert!(
            !starts_upper || reserved.contains(&name.as_str()),
            "`{name}` is exported by rill_runtime::codegen but not reserved (names::RESERVED_TYPES or a connector's RUNTIME_TYPES)"
        );
    }
}

fn leaves(tree: &syn::UseTree, out: &mut Vec<String>) {
    match tree {
        syn::UseTree::Path(p) => leaves(&p.tree, out),
        syn::UseTree::Name(n) => out.push(n.ident.to_string()),
        syn::UseTree::Rename(r) => out.push(r.rename.to_string()),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| leaves(t, out)),
        // The connectors' exports, read from their module.
        syn::UseTree::Glob(_) => {}
    }
}
