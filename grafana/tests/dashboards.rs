//! Every dashboard queries only what the schema defines, through the provisioned datasource, and
//! every measurement the writer writes is on some dashboard.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use voltmesh_metrics::{measurement, MEASUREMENTS};

const DATASOURCE_UID: &str = "voltmesh-influxdb";

fn dashboard_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("grafana/dashboards exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Every string literal that follows `prefix` in `query` (`prefix` ends just before the `"`).
fn quoted_after(query: &str, prefix: &str) -> Vec<String> {
    query
        .match_indices(prefix)
        .filter_map(|(i, _)| {
            let rest = query[i + prefix.len()..].trim_start().strip_prefix('"')?;
            rest.find('"').map(|end| rest[..end].to_owned())
        })
        .collect()
}

/// Tag keys compared in `r.<key> == "..."` or `r.<key> =~ /.../` (not `_measurement`/`_field`).
fn compared_tags(query: &str) -> Vec<String> {
    query
        .match_indices("r.")
        .filter_map(|(i, _)| {
            let rest = &query[i + 2..];
            let key: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let after = rest[key.len()..].trim_start();
            let compared = after.starts_with("==") || after.starts_with("=~");
            (compared && !key.is_empty() && !key.starts_with('_')).then_some(key)
        })
        .collect()
}

/// What one Flux query names.
#[derive(Debug, Default)]
struct Named {
    measurements: Vec<String>,
    fields: Vec<String>,
    tags: Vec<String>,
}

fn names_in(query: &str) -> Named {
    let mut measurements = quoted_after(query, "r._measurement ==");
    measurements.extend(quoted_after(query, "measurement:"));
    let mut tags = compared_tags(query);
    tags.extend(quoted_after(query, "tag:"));
    Named {
        measurements,
        fields: quoted_after(query, "r._field =="),
        tags,
    }
}

/// The problems with one query, as text (empty: fine).
fn check_query(query: &str, needs_measurement: bool) -> Vec<String> {
    let named = names_in(query);
    let mut problems = Vec::new();
    if needs_measurement && named.measurements.is_empty() {
        problems.push("names no measurement".to_owned());
    }
    let specs: Vec<_> = named
        .measurements
        .iter()
        .filter_map(|m| {
            let spec = measurement(m);
            if spec.is_none() {
                problems.push(format!("measurement {m:?} is not in the schema"));
            }
            spec
        })
        .collect();
    for field in &named.fields {
        if !specs.iter().any(|s| s.field(field).is_some()) {
            problems.push(format!(
                "field {field:?} is not a field of {:?}",
                named.measurements
            ));
        }
    }
    for tag in &named.tags {
        let known = if specs.is_empty() {
            MEASUREMENTS.iter().any(|s| s.has_tag(tag))
        } else {
            specs.iter().any(|s| s.has_tag(tag))
        };
        if !known {
            problems.push(format!(
                "tag {tag:?} is not a tag of {:?}",
                named.measurements
            ));
        }
    }
    problems
}

/// Calls `f` on every object in `value` that has a `"query"` string, with a path for messages.
fn walk_queries<'a>(value: &'a Value, path: &str, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(map) => {
            if map.get("query").is_some_and(Value::is_string) {
                out.push((path.to_owned(), value));
            }
            for (k, v) in map {
                walk_queries(v, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk_queries(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn datasource_uids<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(uid) = map
                .get("datasource")
                .and_then(|d| d.get("uid"))
                .and_then(Value::as_str)
            {
                out.push(uid);
            }
            map.values().for_each(|v| datasource_uids(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| datasource_uids(v, out)),
        _ => {}
    }
}

#[test]
fn the_checker_catches_unknown_names() {
    let ok = r#"from(bucket: v.defaultBucket)
        |> filter(fn: (r) => r._measurement == "clearing" and r.neighborhood == "${neighborhood}")
        |> filter(fn: (r) => r._field == "price" or r._field == "retail")"#;
    assert_eq!(check_query(ok, true), Vec::<String>::new());
    let bad_field = ok.replace("\"retail\"", "\"retail_price\"");
    assert_eq!(check_query(&bad_field, true).len(), 1, "{bad_field}");
    let bad_measurement = ok.replace("\"clearing\"", "\"clearings\"");
    assert!(check_query(&bad_measurement, true)
        .iter()
        .any(|p| p.contains("clearings")));
    let bad_tag = ok.replace("r.neighborhood", "r.order_id");
    assert_eq!(check_query(&bad_tag, true).len(), 1);
    let field_of_another = ok.replace("\"price\"", "\"import_wh\"");
    assert_eq!(check_query(&field_of_another, true).len(), 1);
    assert_eq!(check_query("from(bucket: \"x\")", true).len(), 1);
}

#[test]
fn dashboards_query_only_schema_names_through_the_provisioned_datasource() {
    let files = dashboard_files();
    assert!(
        files.len() >= 5,
        "expected the five dashboards, found {files:?}"
    );
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    let mut uids = BTreeSet::new();
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let text = std::fs::read_to_string(file).expect("readable");
        let dashboard: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        let uid = dashboard["uid"].as_str().unwrap_or_default().to_owned();
        assert!(!uid.is_empty(), "{name} has no uid");
        assert!(uids.insert(uid.clone()), "{name}: uid {uid} is used twice");

        let variables: BTreeSet<&str> = dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str())
            .collect();

        let mut queries = Vec::new();
        walk_queries(&dashboard, "", &mut queries);
        assert!(!queries.is_empty(), "{name} has no queries");
        for (path, holder) in queries {
            let query = holder["query"].as_str().unwrap_or_default();
            // Panel targets must name a measurement; variable queries may list tag values only.
            let is_target = path.contains(".targets[");
            for p in check_query(query, is_target) {
                problems.push(format!("{name}{path}: {p}"));
            }
            for m in names_in(query).measurements {
                used.insert(m);
            }
            for var in quoted_vars(query) {
                if !variables.contains(var.as_str()) {
                    problems.push(format!("{name}{path}: undefined variable ${{{var}}}"));
                }
            }
        }

        let mut ds = Vec::new();
        datasource_uids(&dashboard, &mut ds);
        assert!(!ds.is_empty(), "{name} names no datasource");
        for uid in ds {
            if uid != DATASOURCE_UID {
                problems.push(format!(
                    "{name}: datasource uid {uid:?} is not {DATASOURCE_UID:?}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "dashboard problems:\n{}",
        problems.join("\n")
    );

    let unused: Vec<&str> = MEASUREMENTS
        .iter()
        .map(|m| m.name)
        .filter(|m| !used.contains(*m))
        .collect();
    assert!(
        unused.is_empty(),
        "measurements no dashboard shows: {unused:?}"
    );
}

/// Grafana variables referenced as `${name}` or `${name:format}`.
fn quoted_vars(query: &str) -> Vec<String> {
    query
        .match_indices("${")
        .filter_map(|(i, _)| {
            let rest = &query[i + 2..];
            let end = rest.find('}')?;
            let var = rest[..end].split(':').next()?;
            Some(var.to_owned())
        })
        .collect()
}
