//! Typed Grafana provisioning files (unknown keys refused, so a typo fails to parse).

use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatasourceFile {
    pub api_version: u32,
    pub datasources: Vec<Datasource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DatasourceType {
    #[serde(rename = "influxdb")]
    InfluxDb,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Access {
    #[serde(rename = "proxy")]
    Proxy,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
pub enum QueryLanguage {
    Flux,
    InfluxQL,
    #[serde(rename = "SQL")]
    Sql,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Datasource {
    pub name: String,
    pub uid: String,
    #[serde(rename = "type")]
    pub kind: DatasourceType,
    pub access: Access,
    pub url: String,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub editable: bool,
    pub json_data: InfluxJsonData,
    pub secure_json_data: SecureJsonData,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InfluxJsonData {
    pub version: QueryLanguage,
    pub organization: String,
    pub default_bucket: String,
    pub time_interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecureJsonData {
    pub token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderFile {
    pub api_version: u32,
    pub providers: Vec<Provider>,
}

#[derive(Debug, Deserialize)]
pub enum ProviderType {
    #[serde(rename = "file")]
    File,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Provider {
    pub name: String,
    pub org_id: u32,
    pub folder: String,
    #[serde(rename = "type")]
    pub kind: ProviderType,
    pub disable_deletion: bool,
    pub allow_ui_updates: bool,
    pub update_interval_seconds: u32,
    pub options: ProviderOptions,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderOptions {
    pub path: String,
    pub folders_from_files_structure: bool,
}

pub fn grafana_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = grafana_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn datasources() -> DatasourceFile {
    serde_yaml_ng::from_str(&read("provisioning/datasources/influxdb.yaml"))
        .unwrap_or_else(|e| panic!("provisioning/datasources/influxdb.yaml: {e}"))
}

pub fn providers() -> ProviderFile {
    serde_yaml_ng::from_str(&read("provisioning/dashboards/voltmesh.yaml"))
        .unwrap_or_else(|e| panic!("provisioning/dashboards/voltmesh.yaml: {e}"))
}
