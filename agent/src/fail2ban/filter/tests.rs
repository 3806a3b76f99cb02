use super::*;

#[test]
fn dbg_filter() {
    let Ok(f) = std::env::var("F2B_FILTER") else {
        return;
    };
    let line = std::env::var("F2B_LINE").unwrap();
    let d = Definition::read(Path::new(&f), &BTreeMap::new()).unwrap();
    eprintln!(
        "date {:?}\npref {:?}",
        d.datepattern,
        d.prefregex
            .as_ref()
            .map(|p| super::super::regex::to_rust_syntax(&resolve_tags(&p.text, true)))
    );
    for l in &d.failregex {
        eprintln!(
            "fail {}",
            super::super::regex::to_rust_syntax(&resolve_tags(&l.text, true))
        );
    }
    let m = Matcher::build(&d).unwrap();
    let mut buf = String::new();
    let v = m.examine(&line, &TimeZone::UTC, SystemTime::now(), &mut buf);
    eprintln!("buf {buf:?}\n{v:?}");
    panic!()
}
