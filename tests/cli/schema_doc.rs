//! docs/schema.md must describe every column of every table exactly as the code defines it.
//! Regenerate the generated blocks with `BERAKHLAK_UPDATE_SCHEMA_DOC=1 cargo test schema_doc`.

use berakhlak::publish::schema::{catalogue, Kind, QUARANTINE_COLUMNS};

fn block(table: &str, partitions: &[&str], cols: &[(String, Kind, String)]) -> String {
    let mut s = format!("<!-- columns:{table} -->\n| column | type | meaning |\n|---|---|---|\n");
    for p in partitions {
        s.push_str(&format!(
            "| `{p}` | partition (path only) | Hive partition directory `{p}=…`; not stored inside the files |\n"
        ));
    }
    for (name, kind, doc) in cols {
        s.push_str(&format!("| `{name}` | {} | {doc} |\n", kind.doc_name()));
    }
    s.push_str(&format!("<!-- /columns:{table} -->"));
    s
}

fn expected_blocks() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        catalogue().into_iter().map(|(table, parts, cols)| (table.to_string(), block(table, &parts, &cols))).collect();
    let q: Vec<(String, Kind, String)> =
        QUARANTINE_COLUMNS.iter().map(|(n, k, d)| (n.to_string(), *k, d.to_string())).collect();
    out.push(("quarantine".into(), block("quarantine", &["year"], &q)));
    out
}

#[test]
fn schema_doc_matches_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema.md");
    let mut doc = std::fs::read_to_string(&path).unwrap();
    let update = std::env::var("BERAKHLAK_UPDATE_SCHEMA_DOC").is_ok();
    for (table, expected) in expected_blocks() {
        let start_tag = format!("<!-- columns:{table} -->");
        let end_tag = format!("<!-- /columns:{table} -->");
        let start = doc.find(&start_tag).unwrap_or_else(|| panic!("docs/schema.md has no {start_tag} block"));
        let end = doc.find(&end_tag).unwrap_or_else(|| panic!("docs/schema.md has no {end_tag}")) + end_tag.len();
        let actual = &doc[start..end];
        if actual != expected {
            if update {
                doc.replace_range(start..end, &expected);
                continue;
            }
            panic!(
                "docs/schema.md is out of date for {table}; run BERAKHLAK_UPDATE_SCHEMA_DOC=1 cargo test schema_doc\n--- expected\n{expected}\n--- actual\n{actual}"
            );
        }
    }
    if update {
        std::fs::write(&path, doc).unwrap();
    }
}
