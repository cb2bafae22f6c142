use super::*;

#[test]
fn a_library_is_hashed_inside_its_root_through_an_absolute_link() {
    let root = tempfile::tempdir().unwrap();
    let lib = root.path().join("opt/binpack-test/lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("libreal.so.1"), b"in the root").unwrap();
    // Followed on the host, this link would name a file the host does not have.
    std::os::unix::fs::symlink("/opt/binpack-test/lib/libreal.so.1", lib.join("libx.so")).unwrap();
    let f = File::of_root("/lib/libx.so", root.path(), "/opt/binpack-test/lib/libx.so");
    assert_eq!(f.unwrap(), File::of_bytes("/lib/libx.so", b"in the root"));
}

#[test]
fn same_input_same_bytes_and_sorted_packages() {
    let comps = vec![
        Component {
            ecosystem: Ecosystem::Npm,
            name: "@scope/b".into(),
            version: "1.0.0".into(),
            license: Some("MIT".into()),
        },
        Component {
            ecosystem: Ecosystem::Cargo,
            name: "a".into(),
            version: "0.1.0".into(),
            license: Some("MIT/Apache-2.0".into()),
        },
    ];
    let input = Input {
        name: "app:latest".into(),
        components: &comps,
        files: vec![File::of_bytes("/usr/lib/libx.so", b"x")],
        ..Input::default()
    };
    let a = spdx(&input);
    assert_eq!(a, spdx(&input));
    let doc: serde_json::Value = serde_json::from_slice(&a).unwrap();
    let purls: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .collect();
    assert_eq!(purls, ["pkg:cargo/a@0.1.0", "pkg:npm/%40scope/b@1.0.0"]);
    assert_eq!(doc["packages"][1]["licenseDeclared"], "MIT OR Apache-2.0");
    assert_eq!(doc["files"][0]["fileName"], "./usr/lib/libx.so");
    assert_eq!(doc["creationInfo"]["created"], "1970-01-01T00:00:00Z");
    assert!(doc["documentNamespace"]
        .as_str()
        .unwrap()
        .starts_with("urn:uuid:"));
}
