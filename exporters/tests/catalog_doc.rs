//! docs/metrics.md is generated from the catalog and must stay up to date.

use std::path::PathBuf;

#[test]
fn docs_metrics_md_matches_the_catalog() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md");
    let want = wharf_exporters::catalog::markdown();
    if std::env::var_os("WHARF_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "docs/metrics.md is out of date with exporters/src/catalog.rs: regenerate it with \
         `WHARF_UPDATE_DOCS=1 cargo test -p wharf-exporters --test catalog_doc`"
    );
}
