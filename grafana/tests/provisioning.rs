//! The provisioning YAML parses into typed structs and agrees with the writer and the dashboards.

mod common;

use common::provisioning::{self, DatasourceFile, QueryLanguage};
use voltmesh_metrics::MetricsConfig;

#[test]
fn datasource_is_influxdb2_with_flux_on_the_writers_org_and_bucket() {
    let file = provisioning::datasources();
    assert_eq!(file.api_version, 1);
    assert_eq!(file.datasources.len(), 1);
    let ds = &file.datasources[0];
    assert_eq!(ds.uid, "voltmesh-influxdb", "the uid every dashboard uses");
    assert_eq!(ds.json_data.version, QueryLanguage::Flux);
    let writer = MetricsConfig::default();
    assert_eq!(ds.json_data.organization, writer.org);
    assert_eq!(ds.json_data.default_bucket, writer.bucket);
    assert!(
        ds.secure_json_data.token.starts_with('$'),
        "the token comes from the environment, never from git"
    );
    assert!(ds.url.starts_with("http://"), "{}", ds.url);
    assert!(ds.is_default);
}

#[test]
fn dashboard_provider_loads_files_read_only() {
    let file = provisioning::providers();
    assert_eq!(file.api_version, 1);
    assert_eq!(file.providers.len(), 1);
    let p = &file.providers[0];
    assert!(p.disable_deletion && !p.allow_ui_updates);
    assert!(p.options.path.starts_with('/'), "{}", p.options.path);
    assert!(p.update_interval_seconds > 0);
}

#[test]
fn a_misspelt_key_or_unknown_query_language_is_refused() {
    let good = std::fs::read_to_string(
        provisioning::grafana_dir().join("provisioning/datasources/influxdb.yaml"),
    )
    .expect("readable");
    assert!(serde_yaml_ng::from_str::<DatasourceFile>(&good).is_ok());
    let typo = good.replace("defaultBucket:", "defaultBuckett:");
    assert!(serde_yaml_ng::from_str::<DatasourceFile>(&typo).is_err());
    let language = good.replace("version: Flux", "version: Fluxx");
    assert!(serde_yaml_ng::from_str::<DatasourceFile>(&language).is_err());
}
