//! Typed backend configuration of a storage element, as given at creation and stored with the
//! element (JSON tagged by `kind`). The stored form carries a remote secret sealed by the
//! caller's [`SecretSealer`]; the public form carries none.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::BackendError;

/// Encrypts remote credentials before they are stored (the index holds them sealed under
/// the master key, like account secrets) and decrypts them when an element is opened.
pub trait SecretSealer: Send + Sync {
    fn seal(&self, plain: &str) -> Result<String, String>;
    fn open(&self, sealed: &str) -> Result<String, String>;
}

/// A secret that never shows in `Debug` output (logs).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// Where an element's bytes live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BackendConfig {
    Local(LocalConfig),
    S3(S3Config),
}

/// A directory of this machine.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// Absolute directory of the element's files; `None`: `<data-dir>/elements/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Set for an element adopted from an earlier implementation's directory (`element
    /// import`): how its legacy sidecars map to keys. Never given at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    pub key_template: String,
}

/// A prefix of a bucket of an S3-compatible service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `http://host:port` or `https://host`.
    pub endpoint: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub bucket: String,
    /// Empty, or ending with `/`: every name of the element is stored under it.
    #[serde(default)]
    pub prefix: String,
    /// Path-style addressing (`endpoint/bucket/key`), what MinIO, Ceph and Garage expect.
    #[serde(default = "yes")]
    pub path_style: bool,
    pub access_key_id: String,
    /// Plain text in memory only: given at creation, or opened from `secret_access_key_sealed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
    /// The secret as stored: sealed by the `SecretSealer`. Never accepted at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_sealed: Option<String>,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn yes() -> bool {
    true
}

fn invalid(msg: impl Into<String>) -> BackendError {
    BackendError::Config(msg.into())
}

impl BackendConfig {
    /// The `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendConfig::Local(_) => "local",
            BackendConfig::S3(_) => "s3",
        }
    }

    /// Parses and validates a configuration given by a client (the admin API's `backend`
    /// field, the CLI's `--backend-json`); every error names the field at fault.
    pub fn from_request(value: Value) -> Result<BackendConfig, BackendError> {
        let config: BackendConfig =
            serde_json::from_value(value).map_err(|e| invalid(format!("backend: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), BackendError> {
        match self {
            BackendConfig::Local(l) => {
                if l.import.is_some() {
                    return Err(invalid(
                        "backend.import: not accepted here; `artstore element import` sets it",
                    ));
                }
                if let Some(p) = &l.path
                    && !p.is_absolute()
                {
                    return Err(invalid(format!(
                        "backend.path: {} must be an absolute path",
                        p.display()
                    )));
                }
                Ok(())
            }
            BackendConfig::S3(s) => s.validate(),
        }
    }

    /// Parses what `to_stored` wrote (and the local rows of earlier releases), opening a
    /// sealed secret with `secrets`.
    pub fn from_stored(
        text: &str,
        secrets: &dyn SecretSealer,
    ) -> Result<BackendConfig, BackendError> {
        let mut config: BackendConfig = serde_json::from_str(text)
            .map_err(|e| invalid(format!("stored backend configuration: {e}")))?;
        if let BackendConfig::S3(s) = &mut config
            && let Some(sealed) = s.secret_access_key_sealed.take()
        {
            let plain = secrets.open(&sealed).map_err(|e| {
                invalid(format!(
                    "the stored secret_access_key cannot be opened: {e}"
                ))
            })?;
            s.secret_access_key = Some(Secret::new(plain));
        }
        Ok(config)
    }

    /// The JSON stored with the element: a remote secret sealed by `secrets`.
    pub fn to_stored(&self, secrets: &dyn SecretSealer) -> Result<String, BackendError> {
        let mut config = self.clone();
        if let BackendConfig::S3(s) = &mut config
            && let Some(plain) = s.secret_access_key.take()
        {
            let sealed = secrets
                .seal(plain.expose())
                .map_err(|e| invalid(format!("cannot seal secret_access_key: {e}")))?;
            s.secret_access_key_sealed = Some(sealed);
        }
        serde_json::to_string(&config).map_err(|e| invalid(e.to_string()))
    }

    /// What the admin API and the CLI show: the stored configuration without any secret.
    /// A text that is not a configuration shows as it is.
    pub fn public_view(stored: &str) -> Value {
        let Ok(mut v) = serde_json::from_str::<Value>(stored) else {
            return Value::String(stored.to_owned());
        };
        if let Some(o) = v.as_object_mut() {
            o.remove("secret_access_key");
            o.remove("secret_access_key_sealed");
        }
        v
    }

    /// The `kind` of a stored configuration (`None`: unreadable).
    pub fn stored_kind(stored: &str) -> Option<String> {
        serde_json::from_str::<Value>(stored)
            .ok()?
            .get("kind")?
            .as_str()
            .map(str::to_owned)
    }
}

impl S3Config {
    fn validate(&self) -> Result<(), BackendError> {
        let url = url::Url::parse(&self.endpoint).map_err(|e| {
            invalid(format!(
                "backend.endpoint: {:?} is not a URL ({e})",
                self.endpoint
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none_or(str::is_empty)
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
            || !matches!(url.path(), "" | "/")
        {
            return Err(invalid(format!(
                "backend.endpoint: {:?} must be http://host[:port] or https://host[:port], without path, credentials or query",
                self.endpoint
            )));
        }
        if self.region.is_empty() || self.region.len() > 64 {
            return Err(invalid("backend.region: must be 1-64 characters"));
        }
        if !valid_bucket(&self.bucket) {
            return Err(invalid(format!(
                "backend.bucket: {:?} is not an S3 bucket name (3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit)",
                self.bucket
            )));
        }
        if !(self.prefix.is_empty() || self.prefix.ends_with('/'))
            || self.prefix.starts_with('/')
            || self.prefix.split('/').any(|s| s == "." || s == "..")
            || self.prefix.len() > 512
        {
            return Err(invalid(format!(
                "backend.prefix: {:?} must be empty or end with '/', without a leading '/' or '.'/'..' segments",
                self.prefix
            )));
        }
        if self.access_key_id.is_empty() {
            return Err(invalid("backend.access_key_id: must not be empty"));
        }
        if self.secret_access_key_sealed.is_some() {
            return Err(invalid("backend: unknown field `secret_access_key_sealed`"));
        }
        if self
            .secret_access_key
            .as_ref()
            .is_none_or(|s| s.expose().is_empty())
        {
            return Err(invalid("backend.secret_access_key: missing or empty"));
        }
        Ok(())
    }
}

/// S3 bucket naming rules.
fn valid_bucket(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Rot;
    impl SecretSealer for Rot {
        fn seal(&self, plain: &str) -> Result<String, String> {
            Ok(plain.chars().rev().collect())
        }
        fn open(&self, sealed: &str) -> Result<String, String> {
            Ok(sealed.chars().rev().collect())
        }
    }

    fn s3() -> Value {
        json!({"kind": "s3", "endpoint": "http://127.0.0.1:9000", "region": "eu-west-1",
            "bucket": "archive", "prefix": "el1/", "path_style": true,
            "access_key_id": "AK", "secret_access_key": "SK"})
    }

    fn err(v: Value) -> String {
        BackendConfig::from_request(v).unwrap_err().to_string()
    }

    #[test]
    fn earlier_local_rows_still_parse() {
        for text in [
            r#"{"kind":"local"}"#,
            r#"{"kind":"local","path":"/srv/a"}"#,
            r#"{"kind":"local","path":"/srv/a","import":{"key_template":"{file}"}}"#,
        ] {
            let c = BackendConfig::from_stored(text, &Rot).unwrap();
            assert_eq!(c.kind(), "local");
            assert_eq!(c.to_stored(&Rot).unwrap(), text, "round trip");
        }
    }

    #[test]
    fn bad_requests_name_the_field() {
        assert!(err(json!({"kind": "ftp"})).contains("unknown variant `ftp`"));
        assert!(err(json!({"kind": "local", "colour": 1})).contains("unknown field `colour`"));
        assert!(err(json!({"path": "/x"})).contains("missing field `kind`"));
        assert!(err(json!({"kind": "local", "path": "rel"})).contains("backend.path"));
        let mut v = s3();
        v["endpoint"] = json!("ftp://h");
        assert!(err(v).contains("backend.endpoint"));
        let mut v = s3();
        v["bucket"] = json!("Bad_Bucket");
        assert!(err(v).contains("backend.bucket"));
        let mut v = s3();
        v["prefix"] = json!("noslash");
        assert!(err(v).contains("backend.prefix"));
        let mut v = s3();
        v["extra"] = json!(1);
        assert!(err(v).contains("unknown field `extra`"));
        let mut v = s3();
        v.as_object_mut().unwrap().remove("secret_access_key");
        assert!(err(v).contains("backend.secret_access_key"));
    }

    #[test]
    fn the_secret_is_sealed_when_stored_and_never_shown() {
        let c = BackendConfig::from_request(s3()).unwrap();
        assert!(!format!("{c:?}").contains("SK"), "Debug hides the secret");
        let stored = c.to_stored(&Rot).unwrap();
        let v: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(v["secret_access_key_sealed"], "KS");
        assert!(v.get("secret_access_key").is_none());
        assert_eq!(BackendConfig::from_stored(&stored, &Rot).unwrap(), c);
        let shown = BackendConfig::public_view(&stored);
        assert_eq!(shown["bucket"], "archive");
        assert!(!shown.to_string().contains("KS"));
    }
}
