//! One small interface over object storage: a local folder, `file://`, `s3://`, `gs://` or
//! `az://`, chosen by URL, with a timeout on every call and bounded retries.
//!
//! [`Store`] is synchronous: it owns a small tokio runtime of its own and blocks on each call,
//! so callers (the CLI) stay plain code.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::ArchiveError;

/// The longest any one store call may take, retries included, before it is abandoned.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Timeout of one HTTP request to a cloud store.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout to open a connection to a cloud store.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries of one failed cloud request (transient errors only), with exponential backoff.
pub const MAX_RETRIES: usize = 3;

/// One object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key relative to the store's root (the URL's path), `/`-separated.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An object store opened from a URL, with the URL's path as the root of every key.
pub struct Store {
    url: String,
    inner: Arc<dyn ObjectStore>,
    root: String,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url)
            .field("root", &self.root)
            .finish()
    }
}

impl Store {
    /// Opens the store a URL names: a plain path or `file://` (a local folder, created when
    /// missing), `s3://BUCKET[/PREFIX]`, `gs://BUCKET[/PREFIX]`, `az://CONTAINER[/PREFIX]`.
    /// Credentials come from each cloud's usual environment variables (`AWS_*`,
    /// `GOOGLE_*`, `AZURE_*`), as the cloud's own tools read them.
    pub fn open(url: &str) -> Result<Store, ArchiveError> {
        Store::open_with_options(url, &[])
    }

    /// Opens a store to read from, which must already be there: opening a local folder
    /// creates it, so a mistyped path would read as an empty archive ("no run matches")
    /// instead of the mistake it is. `label` names the store in the error (the flag or the
    /// reference it came from); `hint` says what to give instead.
    pub fn open_existing(url: &str, label: &str, hint: &str) -> Result<Store, ArchiveError> {
        let local = match url.split_once("://") {
            None => Some(std::path::PathBuf::from(url)),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("file") => {
                Some(std::path::PathBuf::from(rest))
            }
            Some(_) => None,
        };
        if let Some(dir) = local.filter(|d| !d.is_dir()) {
            return Err(ArchiveError::NotFound(format!(
                "{label}: the archive folder {} does not exist; {hint}",
                dir.display()
            )));
        }
        Store::open(url)
    }

    /// Opens a store as [`Store::open`] does, with settings that take precedence over the
    /// environment's: object_store's configuration keys for the cloud the URL names (e.g.
    /// `aws_endpoint`, `aws_access_key_id`, `aws_allow_http`); ignored for local folders.
    pub fn open_with_options(
        url: &str,
        options: &[(String, String)],
    ) -> Result<Store, ArchiveError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ArchiveError::Runtime(e.to_string()))?;
        let bad = |why: String| ArchiveError::BadUrl {
            url: url.to_owned(),
            why,
        };
        let (inner, root): (Arc<dyn ObjectStore>, String) = match url.split_once("://") {
            None => local(Path::new(url), url)?,
            Some((scheme, _)) => {
                let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
                let root = parsed.path().trim_matches('/').to_owned();
                match scheme.to_ascii_lowercase().as_str() {
                    "file" => {
                        let path = parsed
                            .to_file_path()
                            .map_err(|()| bad("not a local path".into()))?;
                        local(&path, url)?
                    }
                    "s3" | "s3a" => (cloud::s3(url, options)?, root),
                    "gs" => (cloud::gcs(url, options)?, root),
                    "az" | "azure" | "abfs" | "abfss" => (cloud::azure(url, options)?, root),
                    other => {
                        return Err(bad(format!(
                        "unknown scheme {other}://; use a folder, file://, s3://, gs:// or az://"
                    )))
                    }
                }
            }
        };
        if root.split('/').any(|s| s == ".." || s == ".") {
            return Err(bad("the path may not contain . or .. segments".into()));
        }
        Ok(Store {
            url: url.to_owned(),
            inner,
            root,
            runtime,
        })
    }

    /// The URL the store was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of a key, for messages.
    pub fn url_of(&self, key: &str) -> String {
        format!("{}/{key}", self.url.trim_end_matches('/'))
    }

    fn path(&self, key: &str) -> Result<ObjectPath, ArchiveError> {
        let full = if self.root.is_empty() {
            key.to_owned()
        } else if key.is_empty() {
            self.root.clone()
        } else {
            format!("{}/{key}", self.root)
        };
        ObjectPath::parse(&full).map_err(|e| ArchiveError::BadKey {
            key: key.to_owned(),
            why: e.to_string(),
        })
    }

    fn relative(&self, path: &ObjectPath) -> String {
        let full = path.as_ref();
        if self.root.is_empty() {
            full.to_owned()
        } else {
            full.strip_prefix(&self.root)
                .map(|s| s.trim_start_matches('/').to_owned())
                .unwrap_or_else(|| full.to_owned())
        }
    }

    fn call<T>(
        &self,
        op: &'static str,
        key: &str,
        fut: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> Result<T, ArchiveError> {
        let started = std::time::Instant::now();
        match self
            .runtime
            .block_on(async { tokio::time::timeout(CALL_TIMEOUT, fut).await })
        {
            Ok(Ok(v)) => Ok(v),
            // Requests that waited out their timeout: the store never answered (a connection
            // never accepted, or accepted and left without a reply).
            Ok(Err(source)) if unanswered(&source) => Err(ArchiveError::Timeout {
                op,
                url: self.url_of(key),
                seconds: started.elapsed().as_secs(),
            }),
            Ok(Err(source)) => Err(ArchiveError::Store {
                op,
                url: self.url_of(key),
                cause: Box::new(source),
            }),
            Err(_) => Err(ArchiveError::Timeout {
                op,
                url: self.url_of(key),
                seconds: CALL_TIMEOUT.as_secs(),
            }),
        }
    }

    /// Stores an object whole: a single put, so a reader sees all of it or nothing (local
    /// folders write a temporary file and rename it).
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        let path = self.path(key)?;
        let inner = self.inner.clone();
        self.call("write", key, async move {
            inner.put(&path, PutPayload::from(bytes)).await.map(|_| ())
        })
    }

    /// Reads a whole object; `Ok(None)` when there is none.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        let path = self.path(key)?;
        let inner = self.inner.clone();
        let got = self.call("read", key, async move {
            match inner.get(&path).await {
                Ok(r) => r.bytes().await.map(|b| Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        Ok(got)
    }

    /// Every object under a key prefix (`""`: the whole root), sorted by key.
    pub fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, ArchiveError> {
        let path = if prefix.is_empty() && self.root.is_empty() {
            None
        } else {
            Some(self.path(prefix.trim_end_matches('/'))?)
        };
        let inner = self.inner.clone();
        let metas = self.call("list", prefix, async move {
            let mut stream = inner.list(path.as_ref());
            let mut out = Vec::new();
            while let Some(meta) = stream.next().await {
                match meta {
                    Ok(m) => out.push(m),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })?;
        let mut out: Vec<ObjectInfo> = metas
            .iter()
            .map(|m| ObjectInfo {
                key: self.relative(&m.location),
                size: m.size,
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Deletes an object (deleting one that is gone is not an error).
    pub fn delete(&self, key: &str) -> Result<(), ArchiveError> {
        let path = self.path(key)?;
        let inner = self.inner.clone();
        self.call("delete", key, async move {
            match inner.delete(&path).await {
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                other => other,
            }
        })
    }
}

/// True when a cloud request failed by timing out (object_store's `HttpErrorKind::Timeout`
/// somewhere in the error's causes), as opposed to being refused or answered with an error.
fn unanswered(e: &object_store::Error) -> bool {
    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    {
        use object_store::client::{HttpError, HttpErrorKind};
        if crate::errors::causes(e).any(|c| {
            c.downcast_ref::<HttpError>()
                .is_some_and(|h| h.kind() == HttpErrorKind::Timeout)
        }) {
            return true;
        }
    }
    let _ = e;
    false
}

/// A local folder, created when missing; empty folders are removed as objects are deleted.
fn local(dir: &Path, url: &str) -> Result<(Arc<dyn ObjectStore>, String), ArchiveError> {
    let dir: PathBuf = dir.to_owned();
    std::fs::create_dir_all(&dir).map_err(|source| ArchiveError::Io {
        path: dir.clone(),
        source,
    })?;
    let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
        .map_err(|e| ArchiveError::BadUrl {
            url: url.to_owned(),
            why: e.to_string(),
        })?
        .with_automatic_cleanup(true);
    Ok((Arc::new(store), String::new()))
}

/// The cloud backends, each behind its cargo feature.
mod cloud {
    use std::sync::Arc;

    use object_store::ObjectStore;

    use crate::archive::ArchiveError;

    /// Timeouts of every request, set on top of the environment's other client settings
    /// (`with_client_options` would replace those, `AWS_ALLOW_HTTP` among them); and
    /// certificates always verified, whatever the environment says
    /// (`AWS_ALLOW_INVALID_CERTIFICATES` and its GOOGLE_ and AZURE_ twins are overridden).
    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    fn client_settings() -> Vec<(object_store::ClientConfigKey, String)> {
        use object_store::ClientConfigKey;
        vec![
            (
                ClientConfigKey::AllowInvalidCertificates,
                "false".to_owned(),
            ),
            (
                ClientConfigKey::Timeout,
                format!("{}s", super::REQUEST_TIMEOUT.as_secs()),
            ),
            (
                ClientConfigKey::ConnectTimeout,
                format!("{}s", super::CONNECT_TIMEOUT.as_secs()),
            ),
        ]
    }

    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    fn retry() -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: std::time::Duration::from_millis(100),
                max_backoff: std::time::Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: super::MAX_RETRIES,
            retry_timeout: std::time::Duration::from_secs(60),
        }
    }

    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    fn built<T: ObjectStore>(
        url: &str,
        r: object_store::Result<T>,
    ) -> Result<Arc<dyn ObjectStore>, ArchiveError> {
        r.map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|e| ArchiveError::BadUrl {
                url: url.to_owned(),
                why: e.to_string(),
            })
    }

    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    fn bad_option(url: &str, e: object_store::Error) -> ArchiveError {
        ArchiveError::BadUrl {
            url: url.to_owned(),
            why: e.to_string(),
        }
    }

    #[allow(dead_code)]
    fn missing(url: &str, feature: &str) -> ArchiveError {
        ArchiveError::BadUrl {
            url: url.to_owned(),
            why: format!("this build has no {feature} support (cargo feature `{feature}`)"),
        }
    }

    /// S3 and S3-compatible stores: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_DEFAULT_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, web identity...
    pub fn s3(
        url: &str,
        options: &[(String, String)],
    ) -> Result<Arc<dyn ObjectStore>, ArchiveError> {
        #[cfg(feature = "s3")]
        {
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
            let mut builder = AmazonS3Builder::from_env()
                .with_url(url)
                .with_retry(retry());
            for (key, value) in client_settings() {
                builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
            }
            for (key, value) in options {
                let key: AmazonS3ConfigKey = key
                    .parse()
                    .map_err(|e: object_store::Error| bad_option(url, e))?;
                builder = builder.with_config(key, value);
            }
            built(url, builder.build())
        }
        #[cfg(not(feature = "s3"))]
        {
            let _ = options;
            Err(missing(url, "s3"))
        }
    }

    /// Google Cloud Storage: `GOOGLE_SERVICE_ACCOUNT`, `GOOGLE_APPLICATION_CREDENTIALS`, ...
    pub fn gcs(
        url: &str,
        options: &[(String, String)],
    ) -> Result<Arc<dyn ObjectStore>, ArchiveError> {
        #[cfg(feature = "gcs")]
        {
            use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
            let mut builder = GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .with_retry(retry());
            for (key, value) in client_settings() {
                builder = builder.with_config(GoogleConfigKey::Client(key), value);
            }
            for (key, value) in options {
                let key: GoogleConfigKey = key
                    .parse()
                    .map_err(|e: object_store::Error| bad_option(url, e))?;
                builder = builder.with_config(key, value);
            }
            built(url, builder.build())
        }
        #[cfg(not(feature = "gcs"))]
        {
            let _ = options;
            Err(missing(url, "gcs"))
        }
    }

    /// Azure Blob Storage: `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, ...
    pub fn azure(
        url: &str,
        options: &[(String, String)],
    ) -> Result<Arc<dyn ObjectStore>, ArchiveError> {
        #[cfg(feature = "azure")]
        {
            use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
            let mut builder = MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_retry(retry());
            for (key, value) in client_settings() {
                builder = builder.with_config(AzureConfigKey::Client(key), value);
            }
            for (key, value) in options {
                let key: AzureConfigKey = key
                    .parse()
                    .map_err(|e: object_store::Error| bad_option(url, e))?;
                builder = builder.with_config(key, value);
            }
            built(url, builder.build())
        }
        #[cfg(not(feature = "azure"))]
        {
            let _ = options;
            Err(missing(url, "azure"))
        }
    }
}
